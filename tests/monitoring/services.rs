//! Services left out of the stack, and the optional postgres-exporter: what
//! goes with them (scrape jobs, datasources, configs), checked by the real
//! validators.

use std::process::Command;

use super::{assert_ok, common, monitoring_dir, render, tool, yaml};

/// The stack file as docker-compose reads it, with every revision set.
fn compose(dir: &std::path::Path) -> serde_yaml_ng::Value {
    let stack = std::fs::read_to_string(dir.join("stack.yml")).unwrap();
    let mut cmd = Command::new("docker-compose");
    cmd.args(["-f", "stack.yml", "config"]).current_dir(dir);
    for rev in stack.split("${").skip(1) {
        cmd.env(rev.split(':').next().unwrap(), "0123456789ab");
    }
    let out = cmd.output().expect("docker-compose");
    assert_ok(out.clone(), "docker-compose config");
    serde_yaml_ng::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_lab_stack_without_grafana_loki_alloy_and_cadvisor() {
    let (home, r) = render(&[
        r#"monitoring_disabled_services=["grafana","loki","alloy","cadvisor"]"#,
        "monitoring_postgres_exporter=true",
        "monitoring_postgres_password=pg-secret",
        "monitoring_postgres_host=db",
        "monitoring_postgres_network=backend",
        r#"monitoring_postgres_exporter_targets=["pg2.example:9187"]"#,
    ]);
    r.expect(0);
    let dir = monitoring_dir(&home);
    for gone in ["grafana", "loki", "alloy", "secrets/grafana_admin_password"] {
        assert!(!dir.join(gone).exists(), "{gone} rendered");
    }
    let config = compose(&dir);
    let services: Vec<&str> = config["services"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(
        services,
        [
            "alertmanager",
            "node-exporter",
            "postgres-exporter",
            "prometheus"
        ]
    );
    let pg = &config["services"]["postgres-exporter"];
    assert_eq!(
        pg["environment"]["DATA_SOURCE_URI"].as_str(),
        Some("db:5432/postgres?sslmode=disable")
    );
    assert_eq!(
        pg["environment"]["DATA_SOURCE_PASS_FILE"].as_str(),
        Some("/run/secrets/monitoring_postgres_password")
    );
    let networks = pg["networks"].as_mapping().unwrap();
    assert!(networks.contains_key("backend") && networks.contains_key("monitoring"));
    assert_eq!(
        config["networks"]["backend"]["external"].as_bool(),
        Some(true)
    );
    assert_eq!(pg["deploy"]["mode"].as_str(), Some("replicated"));
    let stack = std::fs::read_to_string(dir.join("stack.yml")).unwrap();
    assert!(
        !stack.contains("pg-secret"),
        "the password in the stack file"
    );
    let prom_dir = dir.join("prometheus");
    assert_ok(
        tool(
            "promtool",
            &["check", "config", "prometheus.yml"],
            &prom_dir,
        ),
        "promtool check config",
    );
    let prom = yaml(&prom_dir.join("prometheus.yml"));
    let jobs: Vec<String> = prom["scrape_configs"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|j| j["job_name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        jobs,
        ["prometheus", "node", "api", "postgres", "alertmanager"]
    );
    let postgres = serde_yaml_ng::to_string(&prom["scrape_configs"][3]).unwrap();
    assert!(
        postgres.contains("postgres-exporter:9187") && postgres.contains("pg2.example:9187"),
        "{postgres}"
    );
}

#[test]
fn a_shipper_without_loki_and_a_service_that_is_not_one_are_refused() {
    let (_, r) = render(&[r#"monitoring_disabled_services=["loki"]"#]);
    let r = r.expect(1);
    assert!(r.stderr.contains("ship logs nowhere"), "{}", r.stderr);
    let (_, r) = render(&[r#"monitoring_disabled_services=["grafanna"]"#]);
    let r = r.expect(1);
    assert!(
        r.stderr
            .contains("`grafanna` is not a service of the stack"),
        "{}",
        r.stderr
    );
    let (_, r) = render(&["monitoring_postgres_exporter=true"]);
    let r = r.expect(1);
    assert!(
        r.stderr.contains("needs monitoring_postgres_password"),
        "{}",
        r.stderr
    );
}

/// A Discord or webhook URL given as a secret makes alertmanager.yml a
/// sensitive file: render writes no line of it, as a plan shows none.
#[test]
fn alertmanager_yml_holding_a_secret_url_is_never_shown() {
    let home = tempfile::tempdir().unwrap();
    let lab = std::fs::read_to_string(super::root().join("inventories/lab.toml")).unwrap();
    let inventory = home.path().join("inventory.toml");
    std::fs::write(
        &inventory,
        lab.replacen(
            "[vars]\n",
            "[vars]\nalertmanager_webhook_url = { secret = true, env = \"LAB_WEBHOOK\" }\n",
            1,
        ),
    )
    .unwrap();
    let out = home.path().join("out");
    let r = common::run::run(
        common::run::slipway(home.path())
            .current_dir(super::root())
            .env("LAB_WEBHOOK", "http://receiver.example/hook-4f1c")
            .args(["render", "-i"])
            .arg(&inventory)
            .args(["playbooks/site.toml", "--out"])
            .arg(&out),
    )
    .expect(0);
    assert!(!r.stdout.contains("hook-4f1c") && !r.stderr.contains("hook-4f1c"));
    let file = out.join("lab-1/opt/monitoring/alertmanager/alertmanager.yml");
    assert_eq!(
        std::fs::read_to_string(file).unwrap(),
        "(sensitive: not written)\n"
    );
}

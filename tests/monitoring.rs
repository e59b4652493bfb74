//! The monitoring role's files, rendered offline for the lab inventory and
//! checked by the real tools: promtool, amtool, docker-compose. Golden copies
//! under tests/golden/ show what the lab gets (SLIPWAY_BLESS=1 rewrites them).

#[path = "monitoring/alloy.rs"]
mod alloy;
mod common;
#[path = "monitoring/services.rs"]
mod services;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::run::{Run, run, slipway};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Renders the site playbook for the lab inventory, with `extra` variables.
/// HOME is empty, so the lab's secret and key files are not found: render
/// stands placeholders in for them, and the output does not depend on this machine.
fn render(extra: &[&str]) -> (tempfile::TempDir, Run) {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("out");
    let mut cmd = slipway(home.path());
    cmd.current_dir(root())
        .args([
            "render",
            "-i",
            "inventories/lab.toml",
            "playbooks/site.toml",
            "--out",
        ])
        .arg(&out);
    for e in extra {
        cmd.args(["-e", e]);
    }
    let r = run(&mut cmd);
    (home, r)
}

fn monitoring_dir(home: &tempfile::TempDir) -> PathBuf {
    home.path().join("out/lab-1/opt/monitoring")
}

fn tool(program: &str, args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} is needed by this test (scripts/test.sh installs it): {e}")
        })
}

fn assert_ok(out: std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn yaml(path: &Path) -> serde_yaml_ng::Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn files_go_to_the_managers_and_the_app_log_directory_everywhere() {
    let (home, r) = render(&[]);
    r.expect(0);
    let out = home.path().join("out");
    assert!(monitoring_dir(&home).join("stack.yml").is_file());
    for worker in ["lab-2", "lab-3"] {
        assert!(!out.join(worker).join("opt/monitoring").exists());
    }
    // The Grafana password is a secret: only a placeholder is written.
    let secret = monitoring_dir(&home).join("secrets/grafana_admin_password");
    assert_eq!(
        std::fs::read_to_string(secret).unwrap(),
        "(sensitive: not written)\n"
    );
}

#[test]
fn prometheus_config_and_rules_pass_promtool() {
    let (home, r) = render(&[]);
    r.expect(0);
    let dir = monitoring_dir(&home).join("prometheus");
    assert_ok(
        tool("promtool", &["check", "config", "prometheus.yml"], &dir),
        "promtool check config",
    );
    assert_ok(
        tool("promtool", &["check", "rules", "alerts.yml"], &dir),
        "promtool check rules",
    );
    // The rules fire (and stay quiet) where the default thresholds say.
    std::fs::copy(
        root().join("tests/monitoring/alerts_test.yml"),
        dir.join("alerts_test.yml"),
    )
    .unwrap();
    assert_ok(
        tool("promtool", &["test", "rules", "alerts_test.yml"], &dir),
        "promtool test rules",
    );
    let config = yaml(&dir.join("prometheus.yml"));
    let jobs: Vec<&str> = config["scrape_configs"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|j| j["job_name"].as_str().unwrap())
        .collect();
    for job in [
        "prometheus",
        "node",
        "cadvisor",
        "api",
        "loki",
        "alertmanager",
        "grafana",
    ] {
        assert!(jobs.contains(&job), "no {job} job in {jobs:?}");
    }
    // node-exporter on every inventory host, by address, named by host.
    let node = &config["scrape_configs"][1]["static_configs"];
    let text = serde_yaml_ng::to_string(node).unwrap();
    for (name, addr) in [
        ("lab-1", "172.28.10.11"),
        ("lab-2", "172.28.10.12"),
        ("lab-3", "172.28.10.13"),
    ] {
        assert!(
            text.contains(&format!("{addr}:9100")) && text.contains(name),
            "{text}"
        );
    }
}

#[test]
fn thresholds_are_variables() {
    let (home, r) = render(&["alert_failed_logins=25", "alert_cpu_percent=95"]);
    r.expect(0);
    let rules =
        std::fs::read_to_string(monitoring_dir(&home).join("prometheus/alerts.yml")).unwrap();
    assert!(rules.contains("> 25"), "{rules}");
    assert!(rules.contains("> 95"), "{rules}");
}

/// Every alert's `for:` window is a variable, so a test can make alerts fire
/// in seconds; with a 5s scrape interval the files still pass promtool.
#[test]
fn for_windows_and_short_intervals_are_variables() {
    let (home, r) = render(&[
        "alert_node_down_for=15s",
        "alert_target_down_for=20s",
        "alert_disk_free_for=1m",
        "monitoring_scrape_interval=5s",
        "monitoring_evaluation_interval=5s",
    ]);
    r.expect(0);
    let dir = monitoring_dir(&home).join("prometheus");
    assert_ok(
        tool("promtool", &["check", "config", "prometheus.yml"], &dir),
        "promtool check config",
    );
    let rules = yaml(&dir.join("alerts.yml"));
    let mut windows = std::collections::BTreeMap::new();
    for group in rules["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let name = rule["alert"].as_str().unwrap().to_string();
            let window = rule["for"].as_str().map(str::to_string);
            assert!(window.is_some(), "{name} has no for: window");
            windows.insert(name, window.unwrap());
        }
    }
    assert_eq!(windows["NodeDown"], "15s");
    assert_eq!(windows["TargetDown"], "20s");
    assert_eq!(windows["HostLowDiskSpace"], "1m");
    assert_eq!(windows["HostHighCpu"], "10m");
    assert_eq!(windows["ApiHighErrorRate"], "0s");
    // A duration Prometheus would refuse is refused before any host.
    let (_, r) = render(&["alert_node_down_for=2 minutes"]);
    let r = r.expect(1);
    assert!(
        r.stderr.contains("alert_node_down_for") && r.stderr.contains("not a duration"),
        "{}",
        r.stderr
    );
}

/// Discord and the webhook are native receivers; their URLs are in the
/// file, which is why it is mode 0600, a Swarm secret, and hidden from plans
/// when the URLs are secrets (tests/monitoring/plan_hides_alertmanager_urls).
#[test]
fn alertmanager_passes_amtool_with_and_without_receivers() {
    let urls = [
        "alertmanager_slack_webhook_url=https://hooks.slack.example/services/T0/B0/secret-slack",
        "alertmanager_discord_webhook_url=https://discord.example/api/webhooks/1/x-discord",
        "alertmanager_webhook_url=http://receiver.example:8080/alerts",
        "alertmanager_smtp_smarthost=smtp.example.org:587",
        "alertmanager_smtp_from=alerts@example.org",
        "alertmanager_email_to=ops@example.org",
        "alertmanager_smtp_auth_password=secret-smtp",
    ];
    for extra in [&[][..], &urls[1..2], &urls[2..3], &urls[..]] {
        let (home, r) = render(extra);
        r.expect(0);
        let dir = monitoring_dir(&home).join("alertmanager");
        assert_ok(
            tool("amtool", &["check-config", "alertmanager.yml"], &dir),
            &format!("amtool check-config with {extra:?}"),
        );
        let text = std::fs::read_to_string(dir.join("alertmanager.yml")).unwrap();
        assert!(
            !text.contains("secret-"),
            "a secret in alertmanager.yml:\n{text}"
        );
        let config = yaml(&dir.join("alertmanager.yml"));
        let matchers = serde_yaml_ng::to_string(&config["route"]["routes"]).unwrap();
        assert!(
            matchers.contains("severity=\"critical\"") && matchers.contains("severity=\"warning\"")
        );
        // Critical alerts leave within seconds: NodeDown reaches a receiver in about a minute.
        assert_eq!(
            config["route"]["routes"][0]["group_wait"].as_str(),
            Some("10s")
        );
        let receivers = &config["receivers"];
        let count = |kind: &str| {
            receivers
                .as_sequence()
                .unwrap()
                .iter()
                .filter(|r| !r[kind].is_null())
                .count()
        };
        if extra == &urls[1..2] {
            assert_eq!(count("discord_configs"), 2, "{text}");
            assert_eq!(
                receivers[0]["discord_configs"][0]["webhook_url"].as_str(),
                Some("https://discord.example/api/webhooks/1/x-discord")
            );
            assert!(!text.contains("slack"), "{text}");
        }
        if extra == &urls[2..3] {
            // Both severities reach the webhook.
            assert_eq!(count("webhook_configs"), 2, "{text}");
        }
        if extra.len() == urls.len() {
            // Critical alerts reach every channel; warnings only chat and the webhook.
            assert_eq!(count("email_configs"), 1, "{text}");
            for kind in ["slack_configs", "discord_configs", "webhook_configs"] {
                assert_eq!(count(kind), 2, "{kind}: {text}");
            }
        }
    }
    let (home, _) = render(&urls);
    let secrets: BTreeSet<String> = std::fs::read_dir(monitoring_dir(&home).join("secrets"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let want = [
        "alertmanager_slack_webhook_url",
        "alertmanager_smtp_auth_password",
        "grafana_admin_password",
    ];
    assert_eq!(secrets, want.iter().map(|s| s.to_string()).collect());
}

#[test]
fn the_stack_file_passes_docker_compose_config() {
    let (home, r) = render(&[]);
    r.expect(0);
    let dir = monitoring_dir(&home);
    let stack = std::fs::read_to_string(dir.join("stack.yml")).unwrap();
    // Without the revisions slipway sets at deploy time, the file is refused.
    let bare = tool("docker-compose", &["-f", "stack.yml", "config", "-q"], &dir);
    assert!(
        !bare.status.success(),
        "stack.yml deployed without revisions"
    );
    let revs: BTreeSet<&str> = stack
        .split("${")
        .skip(1)
        .map(|s| s.split(':').next().unwrap())
        .collect();
    assert!(revs.contains("PROMETHEUS_YML_REV") && revs.contains("GRAFANA_ADMIN_PASSWORD_REV"));
    let mut cmd = Command::new("docker-compose");
    cmd.args(["-f", "stack.yml", "config"]).current_dir(&dir);
    for r in &revs {
        cmd.env(r, "0123456789ab");
    }
    let out = cmd
        .output()
        .expect("docker-compose (scripts/test.sh installs it)");
    assert_ok(out.clone(), "docker-compose config");
    let config: serde_yaml_ng::Value = serde_yaml_ng::from_slice(&out.stdout).unwrap();
    let services = &config["services"];
    for (name, port) in [("grafana", 3001), ("prometheus", 9090), ("loki", 3100)] {
        let ports = serde_yaml_ng::to_string(&services[name]["ports"]).unwrap();
        assert!(
            ports.contains(&format!("published: {port}")),
            "{name}: {ports}"
        );
    }
    for global in ["node-exporter", "cadvisor", "alloy"] {
        assert_eq!(
            services[global]["deploy"]["mode"].as_str(),
            Some("global"),
            "{global}"
        );
    }
    for stateful in ["prometheus", "grafana", "loki", "alertmanager"] {
        let d = &services[stateful]["deploy"];
        assert!(d["resources"]["limits"]["memory"].is_string(), "{stateful}");
        assert!(d["placement"]["constraints"].is_sequence(), "{stateful}");
        assert!(!services[stateful]["volumes"].is_null(), "{stateful}");
    }
    assert_eq!(
        config["configs"]["prometheus_yml"]["name"].as_str(),
        Some("monitoring_prometheus_yml_0123456789ab")
    );
    assert!(services["promtail"].is_null() && services["postgres-exporter"].is_null());
    assert_eq!(
        config["secrets"]["alertmanager_yml"]["name"].as_str(),
        Some("monitoring_alertmanager_yml_0123456789ab")
    );
}

#[test]
fn dashboards_are_json_and_use_the_provisioned_datasources() {
    let (home, r) = render(&[]);
    r.expect(0);
    let grafana = monitoring_dir(&home).join("grafana");
    let sources = yaml(&grafana.join("provisioning/datasources.yml"));
    let uids: BTreeSet<&str> = sources["datasources"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|d| d["uid"].as_str().unwrap())
        .collect();
    assert_eq!(uids, BTreeSet::from(["prometheus", "loki"]));
    let mut dashboards = 0;
    for entry in std::fs::read_dir(grafana.join("dashboards")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let d: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let panels = d["panels"].as_array().unwrap();
        assert!(
            panels.len() >= 5,
            "{}: {} panels",
            path.display(),
            panels.len()
        );
        for p in panels.iter().filter(|p| p["type"] != "row") {
            let uid = p["datasource"]["uid"].as_str().unwrap_or_default();
            assert!(
                uids.contains(uid),
                "{}: panel {} uses {uid:?}",
                path.display(),
                p["title"]
            );
            for t in p["targets"].as_array().unwrap() {
                assert_eq!(t["datasource"]["uid"].as_str(), Some(uid));
            }
        }
        dashboards += 1;
    }
    assert_eq!(dashboards, 4);
}

#[test]
fn loki_config_has_what_the_stack_needs() {
    let (home, r) = render(&[]);
    r.expect(0);
    let loki = yaml(&monitoring_dir(&home).join("loki/loki.yml"));
    assert_eq!(
        loki["limits_config"]["retention_period"].as_str(),
        Some("720h")
    );
    assert_eq!(loki["compactor"]["retention_enabled"].as_bool(), Some(true));
    assert_eq!(loki["server"]["http_listen_port"].as_u64(), Some(3100));
    assert!(!loki["common"]["storage"]["filesystem"].is_null());
}

/// Promtail stays for one release, end-of-life marked; the old name of the
/// application log directory still works.
#[test]
fn promtail_is_still_there_when_chosen() {
    let (home, r) = render(&[
        "monitoring_log_shipper=promtail",
        "promtail_app_log_dir=/srv/old-logs",
    ]);
    let r = r.expect(0);
    assert!(
        r.stderr
            .contains("Promtail is end-of-life since 2026-03-02"),
        "{}",
        r.stderr
    );
    let dir = monitoring_dir(&home);
    assert!(!dir.join("alloy").exists());
    let promtail = yaml(&dir.join("promtail/promtail.yml"));
    assert!(
        promtail["clients"][0]["url"]
            .as_str()
            .unwrap()
            .starts_with("http://loki:3100/")
    );
    let jobs: Vec<&str> = promtail["scrape_configs"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|j| j["job_name"].as_str().unwrap())
        .collect();
    assert_eq!(jobs, ["docker", "journal", "varlogs", "app"]);
    let text = std::fs::read_to_string(dir.join("promtail/promtail.yml")).unwrap();
    assert!(text.contains("END OF LIFE"), "{text}");
    assert!(
        text.contains("/srv/old-logs/"),
        "app logs not scraped:\n{text}"
    );
    let stack = std::fs::read_to_string(dir.join("stack.yml")).unwrap();
    assert!(stack.contains("/srv/old-logs:/srv/old-logs:ro"), "{stack}");
}

#[test]
fn errors_in_a_template_override_name_template_line_and_column() {
    for (text, line, what) in [
        (
            "auth_enabled: false\nserver:\n  port: {{ loki_prot }}\n",
            3,
            "undefined",
        ),
        (
            "auth_enabled: false\n{% if loki_port %}\nserver: {}\n",
            2,
            "syntax error",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let override_ = dir.path().join("monitoring/loki/loki.yml.j2");
        std::fs::create_dir_all(override_.parent().unwrap()).unwrap();
        std::fs::write(&override_, text).unwrap();
        let home = tempfile::tempdir().unwrap();
        let out = home.path().join("out");
        let r = run(slipway(home.path())
            .current_dir(root())
            .args([
                "render",
                "-i",
                "inventories/lab.toml",
                "playbooks/site.toml",
                "--templates",
            ])
            .arg(dir.path())
            .arg("--out")
            .arg(&out))
        .expect(1);
        assert!(
            r.stderr.contains(&format!("loki.yml.j2:{line}:")),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains(what), "{}", r.stderr);
        assert!(!out.exists(), "files were written despite the error");
    }
}

/// The rendered monitoring files for the lab, compared with the golden copies.
#[test]
fn golden_lab_rendering() {
    let (home, r) = render(&[]);
    r.expect(0);
    let got = monitoring_dir(&home);
    let golden = root().join("tests/golden/lab-1/opt/monitoring");
    let bless = std::env::var_os("SLIPWAY_BLESS").is_some();
    let files = |dir: &Path| -> BTreeSet<PathBuf> {
        walk(dir)
            .into_iter()
            .map(|p| p.strip_prefix(dir).unwrap().to_path_buf())
            .collect()
    };
    if bless {
        let _ = std::fs::remove_dir_all(&golden);
        for rel in files(&got) {
            let to = golden.join(&rel);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(got.join(&rel), to).unwrap();
        }
    }
    assert_eq!(
        files(&got),
        files(&golden),
        "rendered files differ from tests/golden (SLIPWAY_BLESS=1 updates)"
    );
    for rel in files(&got) {
        let a = std::fs::read_to_string(got.join(&rel)).unwrap();
        let b = std::fs::read_to_string(golden.join(&rel)).unwrap();
        assert!(
            a == b,
            "{} differs from its golden copy (SLIPWAY_BLESS=1 updates):\n{}",
            rel.display(),
            diff(&rel, &b, &a)
        );
    }
}

fn diff(rel: &Path, golden: &str, got: &str) -> String {
    match slipway::diff::file_diff(
        &rel.display().to_string(),
        Some(golden.as_bytes()),
        got.as_bytes(),
    ) {
        slipway::plan::change::Diff::Text { unified, .. } => unified,
        other => format!("{other:?}"),
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

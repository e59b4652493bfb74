//! examples/api-stack renders offline with the real binary, and its stack file
//! is one docker-compose accepts, with what its README promises: zero-downtime
//! rolling updates of the api, limits, restarts and log rotation everywhere,
//! the data services on the db node, an encrypted backend unless turned off.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use serde_yaml_ng::Value;

use crate::rendered::Rendered;

/// The one rendered file whose YAML starts with `services:` (after comments).
fn stack_file(rendered: &Rendered) -> PathBuf {
    let stacks: Vec<PathBuf> = rendered
        .files()
        .into_iter()
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            text.lines()
                .find(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .is_some_and(|l| l.starts_with("services:"))
        })
        .collect();
    assert_eq!(stacks.len(), 1, "stack files: {stacks:?}");
    stacks.into_iter().next().unwrap()
}

/// The stack as `docker-compose config` reads it, with the revisions the
/// deploy sets given a value.
fn compose_config(rendered: &Rendered) -> Value {
    let stack = stack_file(rendered);
    let text = std::fs::read_to_string(&stack).unwrap();
    let revs: BTreeSet<&str> = text
        .split("${")
        .skip(1)
        .map(|s| s.split([':', '}']).next().unwrap())
        .collect();
    let mut cmd = Command::new("docker-compose");
    cmd.arg("-f")
        .arg(&stack)
        .args(["config"])
        .current_dir(stack.parent().unwrap());
    for r in &revs {
        cmd.env(r, "0123456789ab");
    }
    let out = cmd
        .output()
        .expect("docker-compose (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "docker-compose config refused {}:\n{}",
        stack.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_yaml_ng::from_slice(&out.stdout).unwrap()
}

/// The service whose name starts with `prefix`.
fn service<'a>(config: &'a Value, prefix: &str) -> &'a Value {
    let services = config["services"].as_mapping().expect("services");
    let found: Vec<&Value> = services
        .iter()
        .filter(|(k, _)| k.as_str().is_some_and(|k| k.starts_with(prefix)))
        .map(|(_, v)| v)
        .collect();
    assert_eq!(found.len(), 1, "services named {prefix}*");
    found[0]
}

fn text(v: &Value) -> String {
    serde_yaml_ng::to_string(v).unwrap()
}

#[test]
fn the_stack_renders_offline_and_passes_docker_compose() {
    let config = compose_config(&Rendered::new(&[]));
    let services = ["nginx", "api", "postgres", "redis"];
    for name in services {
        let s = service(&config, name);
        let d = &s["deploy"];
        for (kind, key) in [
            ("limits", "cpus"),
            ("limits", "memory"),
            ("reservations", "memory"),
        ] {
            assert!(!d["resources"][kind][key].is_null(), "{name}: {kind}.{key}");
        }
        assert!(
            d["restart_policy"]["condition"].is_string(),
            "{name}: restart_policy"
        );
        assert_eq!(s["logging"]["driver"].as_str(), Some("json-file"), "{name}");
        let options = &s["logging"]["options"];
        assert!(
            options["max-size"].is_string() && options["max-file"].is_string(),
            "{name}: {}",
            text(options)
        );
        assert!(
            s["healthcheck"]["test"].is_sequence(),
            "{name}: healthcheck"
        );
    }

    let api = service(&config, "api");
    let d = &api["deploy"];
    assert_eq!(d["replicas"].as_u64(), Some(3));
    assert_eq!(d["endpoint_mode"].as_str(), Some("dnsrr"));
    let update = &d["update_config"];
    assert_eq!(update["order"].as_str(), Some("start-first"));
    assert_eq!(update["parallelism"].as_u64(), Some(1));
    assert_eq!(update["failure_action"].as_str(), Some("rollback"));
    assert_eq!(update["max_failure_ratio"].as_f64(), Some(0.0));
    assert!(update["monitor"].is_string() && update["delay"].is_string());
    let rollback = &d["rollback_config"];
    assert_eq!(rollback["order"].as_str(), Some("start-first"));
    assert_eq!(rollback["parallelism"].as_u64(), Some(1));
    assert!(text(&api["healthcheck"]["test"]).contains("http://127.0.0.1:8080/health"));

    for data in ["postgres", "redis"] {
        let s = service(&config, data);
        let constraints = text(&s["deploy"]["placement"]["constraints"]);
        assert!(constraints.contains("node.labels.db == true"), "{data}");
        assert!(text(&s["volumes"]).contains("_data"), "{data}: a volume");
        assert!(text(&s["secrets"]).contains(&format!("{data}_password")));
    }
    let postgres = service(&config, "postgres");
    assert_eq!(
        postgres["environment"]["POSTGRES_PASSWORD_FILE"].as_str(),
        Some("/run/secrets/postgres_password")
    );
    assert_eq!(postgres["stop_signal"].as_str(), Some("SIGINT"));

    let nginx = service(&config, "nginx");
    assert_eq!(nginx["deploy"]["mode"].as_str(), Some("global"));
    assert!(text(&nginx["deploy"]["placement"]).contains("node.labels.edge == true"));
    let ports = text(&nginx["ports"]);
    assert!(
        ports.contains("published: 80") && ports.contains("mode: host"),
        "{ports}"
    );
    assert!(text(&nginx["configs"]).contains("target: /etc/nginx/nginx.conf"));

    let backend = &config["networks"]["backend"];
    assert_eq!(backend["driver"].as_str(), Some("overlay"));
    assert!(
        backend["driver_opts"]
            .as_mapping()
            .is_some_and(|o| o.contains_key("encrypted")),
        "backend not encrypted: {}",
        text(backend)
    );
    for (name, nets) in [("nginx", "frontend"), ("postgres", "backend")] {
        let attached = text(&service(&config, name)["networks"]);
        assert!(
            attached.contains(nets) && attached.lines().count() == 1,
            "{name}: {attached}"
        );
    }
}

#[test]
fn backend_encryption_can_be_turned_off_where_the_kernel_lacks_esp() {
    let config = compose_config(&Rendered::new(&["backend_encrypted=false"]));
    let backend = &config["networks"]["backend"];
    // Docker encrypts whenever the option is present, whatever its value.
    assert!(
        !text(backend).contains("encrypted"),
        "backend: {}",
        text(backend)
    );
}

#[test]
fn the_nginx_config_is_self_contained_and_proxies_through_docker_dns() {
    let rendered = Rendered::new(&[]);
    let conf = std::fs::read_to_string(rendered.file_named("nginx_conf")).unwrap();
    // Images differ in what lies beside nginx.conf (conf.d, mime.types).
    assert!(
        !conf.lines().any(|l| l.trim_start().starts_with("include")),
        "nginx.conf includes files"
    );
    for line in [
        "resolver 127.0.0.11 valid=1s ipv6=off;",
        "set $api http://api:8080;",
        "proxy_pass $api;",
        "proxy_next_upstream error timeout http_502 http_503 non_idempotent;",
        "proxy_next_upstream_tries 3;",
        "proxy_connect_timeout 1s;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Real-IP $remote_addr;",
    ] {
        assert!(conf.contains(line), "nginx.conf lacks `{line}`");
    }
}

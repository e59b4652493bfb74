//! The role's resources for a few inputs, without hosts.

use super::*;
use crate::config::{Inventory, VarMap};
use crate::diag::SourceFile;
use crate::redact::Redactor;
use crate::roles::Role;
use crate::template::Templates;

const INVENTORY: &str = "[hosts.m1]\naddress = \"10.0.0.1\"\ngroups = [\"managers\"]\n\
    [hosts.m2]\naddress = \"10.0.0.2\"\ngroups = [\"managers\"]\n";

fn ids(
    host: &str,
    vars: serde_json::Value,
    templates: Option<&std::path::Path>,
) -> InputResult<Vec<String>> {
    Ok(built(host, vars, templates)?.0)
}

/// The ids of the role's resources, and the notices it leaves for the plan.
fn built(
    host: &str,
    vars: serde_json::Value,
    templates: Option<&std::path::Path>,
) -> InputResult<(Vec<String>, Vec<String>)> {
    let inv = Inventory::load(
        SourceFile::from_text(std::path::Path::new("inventory.toml"), INVENTORY.into()),
        &Redactor::default(),
    )
    .unwrap();
    let mut v = Monitoring.defaults();
    let top: VarMap = serde_json::from_value(vars).unwrap();
    crate::config::vars::layer(&mut v, &top);
    let h = inv.host(host).unwrap();
    let mut template_vars: serde_json::Map<_, _> = v.clone().into_iter().collect();
    template_vars.insert(
        "hosts".into(),
        json!([{"name": "m1", "address": "10.0.0.1", "groups": ["managers"]}]),
    );
    let ctx = RoleContext {
        host: h,
        vars: &v,
        inventory: &inv,
        templates: &Templates::new(templates.map(|p| p.to_path_buf())),
        template_vars: serde_json::Value::Object(template_vars),
        offline: false,
        origins: &Default::default(),
        inventory_origins: &Default::default(),
        notices: &Default::default(),
    };
    let ids = Monitoring.resources(&ctx)?.iter().map(|r| r.id()).collect();
    Ok((ids, ctx.notices.take()))
}

#[test]
fn promtail_is_said_to_be_end_of_life_in_the_plan() {
    let pw = json!({"grafana_admin_password": "pw"});
    let (_, notices) = built("m1", pw.clone(), None).unwrap();
    assert!(notices.is_empty(), "{notices:?}");
    let mut promtail = pw;
    promtail["monitoring_log_shipper"] = json!("promtail");
    let (ids, notices) = built("m1", promtail, None).unwrap();
    assert!(ids.contains(&"file:/opt/monitoring/promtail/promtail.yml".into()));
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(
        notices[0].contains("Promtail is end-of-life since 2026-03-02"),
        "{notices:?}"
    );
}

#[test]
fn only_the_first_manager_deploys_and_only_when_allowed() {
    let pw = json!({"grafana_admin_password": "pw"});
    assert!(
        ids("m1", pw.clone(), None)
            .unwrap()
            .contains(&"stack:monitoring".into())
    );
    let other = ids("m2", pw, None).unwrap();
    assert!(!other.contains(&"stack:monitoring".into()));
    assert!(
        other.contains(&"file:/opt/monitoring/stack.yml".into()),
        "{other:?}"
    );
    let off = ids(
        "m1",
        json!({"grafana_admin_password": "pw", "monitoring_deploy": false}),
        None,
    );
    assert!(!off.unwrap().contains(&"stack:monitoring".into()));
}

#[test]
fn without_a_grafana_password_one_is_made_on_the_host() {
    let ids = ids("m1", json!({}), None).unwrap();
    assert!(
        ids.contains(
            &"command:generate a password into /opt/monitoring/secrets/grafana_admin_password"
                .into()
        ),
        "{ids:?}"
    );
    assert!(!ids.contains(&"file:/opt/monitoring/secrets/grafana_admin_password".into()));
}

#[test]
fn an_override_that_renders_broken_json_fails_before_any_host() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir
        .path()
        .join("monitoring/grafana/dashboards/system.json.j2");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "{\"title\": {{ grafana_loki_uid }}}\n").unwrap();
    let err = ids(
        "m1",
        json!({"grafana_admin_password": "pw"}),
        Some(dir.path()),
    )
    .unwrap_err();
    let msg = err.message();
    assert!(
        msg.contains("monitoring/grafana/dashboards/system.json.j2"),
        "{msg}"
    );
    assert!(msg.contains("JSON"), "{msg}");
}

#[test]
fn a_disabled_service_takes_its_files_along() {
    let vars = json!({
        "grafana_admin_password": "pw",
        "monitoring_disabled_services": ["grafana", "loki", "alloy", "cadvisor"],
    });
    let ids = ids("m1", vars, None).unwrap();
    for gone in [
        "grafana/",
        "loki/",
        "alloy/",
        "secrets/grafana_admin_password",
    ] {
        assert!(!ids.iter().any(|i| i.contains(gone)), "{gone}: {ids:?}");
    }
    assert!(ids.contains(&"file:/opt/monitoring/prometheus/prometheus.yml".into()));
}

#[test]
fn disabling_loki_alone_leaves_the_log_shipper_nowhere_to_send() {
    let vars = json!({"grafana_admin_password": "pw", "monitoring_disabled_services": ["loki"]});
    let err = ids("m1", vars, None).unwrap_err();
    let msg = err.message();
    assert!(msg.contains("ship logs nowhere"), "{msg}");
    let vars = json!({"monitoring_disabled_services": ["grafanna"]});
    let err = ids("m1", vars, None).unwrap_err();
    let msg = err.message();
    assert!(
        msg.contains("`grafanna` is not a service of the stack"),
        "{msg}"
    );
}

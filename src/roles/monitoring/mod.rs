//! `monitoring`: Prometheus, alert rules, Alertmanager, Grafana (provisioning
//! and dashboards), Loki, a log shipper (Alloy, or Promtail for one more
//! release), node-exporter, cAdvisor and optionally postgres-exporter,
//! rendered from templates into a directory on the managers and deployed as
//! a Swarm stack from the leader.
//!
//! Every file comes from a built-in template that a file of the same name
//! under the user's templates/ replaces. Files are checked (YAML, JSON) before
//! any host sees them, so a broken override fails the plan, not the stack.

mod check;
mod vars;

use serde_json::json;

use super::stack_files::{StackFiles, directory};
use super::{RoleContext, TypedRole, config_file};
use crate::diag::{InputError, InputResult};
use crate::resource::Resource;
use crate::resource::command::Command;
use crate::resource::stack::Stack;
pub use vars::{NodeVars, TEXTFILE_DIR, Vars};

pub struct Monitoring;
pub struct MonitoringNode;

/// Services of the stack file, by the names `monitoring_disabled_services` takes.
const SERVICES: &[&str] = &[
    "prometheus",
    "alertmanager",
    "grafana",
    "loki",
    "alloy",
    "promtail",
    "node-exporter",
    "cadvisor",
    "postgres-exporter",
];

/// Files rendered from `monitoring/<path>.j2`, each shipped to the services as
/// a Swarm config named by its key, when every service it is for runs.
const CONFIGS: &[(&str, &str, &[&str])] = &[
    (
        "prometheus/prometheus.yml",
        "prometheus_yml",
        &["prometheus"],
    ),
    (
        "prometheus/alerts.yml",
        "prometheus_alerts",
        &["prometheus"],
    ),
    (
        "grafana/provisioning/datasources.yml",
        "grafana_datasources",
        &["grafana"],
    ),
    (
        "grafana/provisioning/dashboards.yml",
        "grafana_dashboards",
        &["grafana"],
    ),
    (
        "grafana/dashboards/api-performance.json",
        "dashboard_api_performance",
        &["grafana"],
    ),
    (
        "grafana/dashboards/system.json",
        "dashboard_system",
        &["grafana"],
    ),
    (
        "grafana/dashboards/business.json",
        "dashboard_business",
        &["grafana"],
    ),
    (
        "grafana/dashboards/security-logs.json",
        "dashboard_security_logs",
        &["grafana", "loki"],
    ),
    ("loki/loki.yml", "loki_yml", &["loki"]),
    ("promtail/promtail.yml", "promtail_yml", &["promtail"]),
    ("alloy/config.alloy", "alloy_config", &["alloy"]),
];

/// Alertmanager's configuration holds the Discord and webhook URLs inline
/// (Alertmanager reads them from files only since 0.27 and 0.26, and the
/// packaged ones are older): it is a Swarm secret, mode 0600 on the managers,
/// and shown in a plan only while it holds no secret.
const ALERTMANAGER_YML: &str = "alertmanager/alertmanager.yml";

impl TypedRole for Monitoring {
    type Vars = Vars;
    const NAME: &'static str = "monitoring";
    const ABOUT: &'static str = "Prometheus, alert rules, Alertmanager, Grafana, Loki and Alloy as a Swarm stack (run on the managers)";

    fn build(&self, v: Vars, ctx: &RoleContext<'_>) -> InputResult<Vec<Box<dyn Resource>>> {
        v.check(ctx)?;
        let dir = v.monitoring_dir.trim_end_matches('/');
        let services: Vec<&str> = SERVICES.iter().copied().filter(|s| v.runs(s)).collect();
        let mut postgres_targets = v.monitoring_postgres_exporter_targets.clone();
        if v.runs("postgres-exporter") {
            postgres_targets.insert(0, "postgres-exporter:9187".into());
        }
        let extra = json!({
            "services": services,
            "shipped_logs_dir": v.app_log_dir().1,
            "postgres_exporter_targets": postgres_targets,
        });
        let mut files = StackFiles::default();
        files.resources.push(Box::new(directory(dir, 0o755)));
        files
            .resources
            .push(Box::new(directory(&format!("{dir}/secrets"), 0o700)));
        let rendered = CONFIGS
            .iter()
            .filter(|(_, _, needs)| needs.iter().all(|s| v.runs(s)))
            .map(|(path, key, _)| (*path, *key, false))
            .chain(
                v.runs("alertmanager")
                    .then_some((ALERTMANAGER_YML, "alertmanager_yml", true)),
            );
        for (path, key, secret) in rendered {
            let template = format!("monitoring/{path}.j2");
            let text = ctx.render(&template, extra.clone())?;
            check_syntax(&template, path, &text)?;
            if secret {
                files.secret_file(dir, key, path, text);
            } else {
                files.config(dir, key, path, text);
            }
        }
        for (key, value) in v.secrets() {
            let file = format!("secrets/{key}");
            match value {
                Some(value) => files.secret(dir, key, &file, value),
                None => files.generated_secret(dir, key, &file),
            }
        }
        let template = "monitoring/stack.yml.j2";
        let mut stack_vars = extra;
        stack_vars["stack_configs"] = json!(files.configs);
        stack_vars["stack_secrets"] = json!(files.secrets);
        let stack = ctx.render(template, stack_vars)?;
        check_syntax(template, "stack.yml", &stack)?;
        let digest = files.digest(&stack);
        let mut out = files.resources;
        out.push(Box::new(config_file(
            &format!("{dir}/stack.yml"),
            stack.clone(),
            0o644,
        )));
        if v.monitoring_deploy
            && super::swarm::leader(&v.swarm_managers_group, ctx)?.name == ctx.host.name
        {
            out.push(Box::new(Stack {
                name: v.monitoring_stack.clone(),
                dir: dir.to_string(),
                spec: stack,
                revisions: files.revisions,
                services: services.iter().map(|s| s.to_string()).collect(),
                resolve_image: v.monitoring_resolve_image.clone(),
                digest,
                follow: None,
            }));
        }
        Ok(out)
    }
}

/// What every node needs for the stack's global services: the application
/// log directory and the runtime journal the log shipper reads, and the
/// textfile collector's directory node-exporter reads (bind mounts, whose
/// sources must exist).
impl TypedRole for MonitoringNode {
    type Vars = NodeVars;
    const NAME: &'static str = "monitoring_node";
    const ABOUT: &'static str =
        "what every node needs for the monitoring stack's global services (run on all hosts)";

    fn build(&self, v: NodeVars, ctx: &RoleContext<'_>) -> InputResult<Vec<Box<dyn Resource>>> {
        let (var, dir) = vars::app_log_dir(&v.monitoring_app_log_dir, &v.promtail_app_log_dir);
        check::check_path(ctx, var, dir)?;
        // The log shipper mounts the runtime journal too; a bind source that
        // does not exist fails the Swarm task. journald owns the directory
        // (mode, group), so it is only made when missing, never corrected.
        let journal = Command {
            name: "make /run/log/journal for the log shipper's journal mount".into(),
            run: "mkdir -p /run/log/journal".into(),
            creates: Some("/run/log/journal".into()),
            unless: None,
            notify: Vec::new(),
        };
        check::check_path(ctx, "monitoring_textfile_dir", &v.monitoring_textfile_dir)?;
        Ok(vec![
            Box::new(directory(dir, 0o755)),
            Box::new(journal),
            Box::new(directory(&v.monitoring_textfile_dir, 0o755)),
        ])
    }
}

/// A rendered YAML or JSON file must parse; the error names the template.
/// Alloy's syntax has no parser here: the monitoring tests check that file's
/// structure instead.
fn check_syntax(template: &str, path: &str, text: &str) -> InputResult<()> {
    let error = |what: &str, e: String| {
        InputError::plain(format!(
            "template `{template}` renders {what} that does not parse: {e}"
        ))
        .with_help(
            "fix the template (yours under templates/, or remove it to use the built-in one)",
        )
    };
    if path.ends_with(".alloy") {
        return Ok(());
    }
    if path.ends_with(".json") {
        serde_json::from_str::<serde_json::Value>(text)
            .map_err(|e| error("JSON", e.to_string()))?;
    } else {
        serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text)
            .map_err(|e| error("YAML", e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;

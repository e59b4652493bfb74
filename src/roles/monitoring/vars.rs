//! The monitoring role's variables, with their defaults.

use serde::{Deserialize, Serialize};

use crate::diag::InputResult;
use crate::roles::RoleContext;

#[derive(Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Vars {
    /// Where the rendered files and the stack file live on the managers.
    pub monitoring_dir: String,
    /// Name of the Swarm stack.
    pub monitoring_stack: String,
    /// Deploy (or update) the stack from the leader when a rendered file changed.
    pub monitoring_deploy: bool,
    /// `docker stack deploy --resolve-image`: always (pin image digests from the
    /// registry), changed, or never (hosts without registry access).
    pub monitoring_resolve_image: String,
    /// Placement constraint of the services that keep state (Prometheus,
    /// Alertmanager, Grafana, Loki); their volumes are local to a node.
    pub monitoring_placement: String,
    pub monitoring_images: Images,
    /// Memory limit per service.
    pub monitoring_memory_limits: Limits,
    pub monitoring_scrape_interval: String,
    pub monitoring_evaluation_interval: String,
    /// Published in host mode on every node, scraped at each inventory address.
    pub monitoring_node_exporter_port: u16,
    pub monitoring_cadvisor_port: u16,
    /// host:port of each API instance's metrics endpoint.
    pub monitoring_api_targets: Vec<String>,
    pub monitoring_api_metrics_path: String,
    pub monitoring_postgres_exporter_targets: Vec<String>,
    pub prometheus_port: u16,
    pub prometheus_retention_time: String,
    pub prometheus_retention_size: String,
    pub alertmanager_port: u16,
    pub loki_port: u16,
    /// How long Loki keeps logs (30 days).
    pub loki_retention: String,
    pub grafana_port: u16,
    pub grafana_admin_user: String,
    /// A secret; empty: a random one is made on each manager, kept in
    /// `monitoring_dir`/secrets/grafana_admin_password.
    pub grafana_admin_password: String,
    pub grafana_prometheus_uid: String,
    pub grafana_loki_uid: String,
    pub grafana_smtp_enabled: bool,
    /// host:port of the SMTP server Grafana sends alert mail through.
    pub grafana_smtp_host: String,
    pub grafana_smtp_user: String,
    /// A secret.
    pub grafana_smtp_password: String,
    pub grafana_smtp_from: String,
    pub alert_api_p95_seconds: f64,
    pub alert_api_p95_for: String,
    pub alert_error_rate_percent: f64,
    pub alert_error_rate_window: String,
    pub alert_cpu_percent: u32,
    pub alert_cpu_for: String,
    pub alert_memory_percent: u32,
    pub alert_memory_for: String,
    pub alert_disk_free_percent: u32,
    pub alert_postgres_connections_percent: u32,
    pub alert_failed_logins: u32,
    pub alert_failed_logins_window: String,
    /// host:port; empty means no e-mail receiver.
    pub alertmanager_smtp_smarthost: String,
    pub alertmanager_smtp_from: String,
    pub alertmanager_smtp_auth_username: String,
    /// A secret.
    pub alertmanager_smtp_auth_password: String,
    pub alertmanager_smtp_require_tls: bool,
    pub alertmanager_email_to: String,
    /// A secret; empty means no Slack receiver.
    pub alertmanager_slack_webhook_url: String,
    pub alertmanager_slack_channel: String,
    /// A secret; empty means no Discord receiver.
    pub alertmanager_discord_webhook_url: String,
    /// The application's log directory, read by Promtail on every node.
    pub promtail_app_log_dir: String,
    /// The stack is deployed from the first host of this group.
    pub swarm_managers_group: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Images {
    pub prometheus: String,
    pub alertmanager: String,
    pub grafana: String,
    pub loki: String,
    pub promtail: String,
    pub node_exporter: String,
    pub cadvisor: String,
}

impl Default for Images {
    fn default() -> Self {
        Self {
            prometheus: "prom/prometheus:v2.53.2".into(),
            alertmanager: "prom/alertmanager:v0.27.0".into(),
            grafana: "grafana/grafana:11.1.4".into(),
            loki: "grafana/loki:3.1.1".into(),
            promtail: "grafana/promtail:3.1.1".into(),
            node_exporter: "prom/node-exporter:v1.8.2".into(),
            cadvisor: "gcr.io/cadvisor/cadvisor:v0.49.1".into(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub prometheus: String,
    pub alertmanager: String,
    pub grafana: String,
    pub loki: String,
    pub promtail: String,
    pub node_exporter: String,
    pub cadvisor: String,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            prometheus: "2G".into(),
            alertmanager: "256M".into(),
            grafana: "512M".into(),
            loki: "1G".into(),
            promtail: "256M".into(),
            node_exporter: "128M".into(),
            cadvisor: "256M".into(),
        }
    }
}

impl Default for Vars {
    fn default() -> Self {
        Self {
            monitoring_dir: "/opt/monitoring".into(),
            monitoring_stack: "monitoring".into(),
            monitoring_deploy: true,
            monitoring_resolve_image: "always".into(),
            monitoring_placement: "node.role == manager".into(),
            monitoring_images: Images::default(),
            monitoring_memory_limits: Limits::default(),
            monitoring_scrape_interval: "15s".into(),
            monitoring_evaluation_interval: "15s".into(),
            monitoring_node_exporter_port: 9100,
            monitoring_cadvisor_port: 8080,
            monitoring_api_targets: vec!["api:8000".into()],
            monitoring_api_metrics_path: "/metrics".into(),
            monitoring_postgres_exporter_targets: vec!["postgres-exporter:9187".into()],
            prometheus_port: 9090,
            prometheus_retention_time: "15d".into(),
            prometheus_retention_size: "10GB".into(),
            alertmanager_port: 9093,
            loki_port: 3100,
            loki_retention: "720h".into(),
            grafana_port: 3001,
            grafana_admin_user: "admin".into(),
            grafana_admin_password: String::new(),
            grafana_prometheus_uid: "prometheus".into(),
            grafana_loki_uid: "loki".into(),
            grafana_smtp_enabled: false,
            grafana_smtp_host: String::new(),
            grafana_smtp_user: String::new(),
            grafana_smtp_password: String::new(),
            grafana_smtp_from: "grafana@localhost".into(),
            alert_api_p95_seconds: 2.0,
            alert_api_p95_for: "5m".into(),
            alert_error_rate_percent: 5.0,
            alert_error_rate_window: "5m".into(),
            alert_cpu_percent: 80,
            alert_cpu_for: "10m".into(),
            alert_memory_percent: 90,
            alert_memory_for: "5m".into(),
            alert_disk_free_percent: 10,
            alert_postgres_connections_percent: 80,
            alert_failed_logins: 10,
            alert_failed_logins_window: "5m".into(),
            alertmanager_smtp_smarthost: String::new(),
            alertmanager_smtp_from: String::new(),
            alertmanager_smtp_auth_username: String::new(),
            alertmanager_smtp_auth_password: String::new(),
            alertmanager_smtp_require_tls: true,
            alertmanager_email_to: String::new(),
            alertmanager_slack_webhook_url: String::new(),
            alertmanager_slack_channel: "#alerts".into(),
            alertmanager_discord_webhook_url: String::new(),
            promtail_app_log_dir: "/app/logs".into(),
            swarm_managers_group: "managers".into(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeVars {
    /// The application's log directory, read by Promtail on every node.
    pub promtail_app_log_dir: String,
}

impl Default for NodeVars {
    fn default() -> Self {
        Self {
            promtail_app_log_dir: Vars::default().promtail_app_log_dir,
        }
    }
}

pub fn check_path(ctx: &RoleContext<'_>, name: &str, path: &str) -> InputResult<()> {
    if !path.starts_with('/') || path.contains(char::is_whitespace) {
        return Err(ctx.var_error(
            name,
            format!(
                "role monitoring on {}: {name}: `{path}` must be an absolute path without spaces",
                ctx.host.name
            ),
        ));
    }
    Ok(())
}

impl Vars {
    pub fn check(&self, ctx: &RoleContext<'_>) -> InputResult<()> {
        let err = |var: &str, msg: String| {
            ctx.var_error(var, format!("role monitoring on {}: {msg}", ctx.host.name))
        };
        check_path(ctx, "monitoring_dir", &self.monitoring_dir)?;
        check_path(ctx, "promtail_app_log_dir", &self.promtail_app_log_dir)?;
        if !["always", "changed", "never"].contains(&self.monitoring_resolve_image.as_str()) {
            return Err(err(
                "monitoring_resolve_image",
                format!(
                    "monitoring_resolve_image: `{}` is not one of always, changed, never",
                    self.monitoring_resolve_image
                ),
            ));
        }
        let valid_name = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !valid_name(&self.monitoring_stack) {
            return Err(err(
                "monitoring_stack",
                format!(
                    "monitoring_stack: `{}` is not a valid stack name (letters, digits, - and _)",
                    self.monitoring_stack
                ),
            ));
        }
        if self.grafana_smtp_enabled && self.grafana_smtp_host.is_empty() {
            return Err(err(
                "grafana_smtp_enabled",
                "grafana_smtp_enabled needs grafana_smtp_host".into(),
            ));
        }
        let email = [
            ("alertmanager_smtp_from", &self.alertmanager_smtp_from),
            ("alertmanager_email_to", &self.alertmanager_email_to),
        ];
        match email.iter().find(|(_, v)| v.is_empty()) {
            Some((name, _)) if !self.alertmanager_smtp_smarthost.is_empty() => Err(err(
                "alertmanager_smtp_smarthost",
                format!("alertmanager_smtp_smarthost is set, so {name} must be too"),
            )),
            _ => Ok(()),
        }
    }

    /// The secrets the stack uses, by the name the services read them under
    /// (/run/secrets/NAME), with the content written for them. Grafana's admin
    /// password is always there: None means the host makes one.
    pub fn secrets(&self) -> Vec<(&'static str, Option<String>)> {
        // Discord takes Slack's payload at the webhook URL + /slack, which lets
        // Alertmanager's Slack integration (with api_url_file) serve both.
        let discord = match self.alertmanager_discord_webhook_url.trim_end_matches('/') {
            "" => String::new(),
            url if url.ends_with("/slack") => url.to_string(),
            url => format!("{url}/slack"),
        };
        let admin = Some(self.grafana_admin_password.clone()).filter(|p| !p.is_empty());
        let optional = [
            ("grafana_smtp_password", self.grafana_smtp_password.clone()),
            (
                "alertmanager_smtp_auth_password",
                self.alertmanager_smtp_auth_password.clone(),
            ),
            (
                "alertmanager_slack_webhook_url",
                self.alertmanager_slack_webhook_url.clone(),
            ),
            ("alertmanager_discord_webhook_url", discord),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k, Some(v)));
        std::iter::once(("grafana_admin_password", admin))
            .chain(optional)
            .collect()
    }
}

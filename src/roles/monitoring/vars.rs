//! The monitoring role's variables, with their defaults.

/// Where node-exporter's textfile collector reads metrics files on each node.
pub const TEXTFILE_DIR: &str = "/var/lib/node_exporter/textfile";

use serde::{Deserialize, Serialize};

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
    /// How services are reached: "vip" (Swarm's virtual IPs and ingress
    /// routing mesh) or "dnsrr" (DNS round robin, ports published on the
    /// node that runs the task), for kernels without IPVS.
    pub monitoring_endpoint_mode: String,
    pub monitoring_images: Images,
    /// Services of the stack file not deployed (e.g. "grafana", "loki",
    /// "alloy", "cadvisor"); their scrape jobs, datasources and configs go too.
    pub monitoring_disabled_services: Vec<String>,
    /// The log shipper on every node: "alloy", or "promtail" (end-of-life,
    /// kept for one release).
    pub monitoring_log_shipper: String,
    /// Memory limit per service.
    pub monitoring_memory_limits: Limits,
    pub monitoring_scrape_interval: String,
    pub monitoring_evaluation_interval: String,
    /// Published in host mode on every node, scraped at each inventory address.
    pub monitoring_node_exporter_port: u16,
    /// node-exporter's textfile collector reads `*.prom` files here on every
    /// node (the postgres_backup role writes its metrics there).
    pub monitoring_textfile_dir: String,
    pub monitoring_cadvisor_port: u16,
    /// host:port of each API instance's metrics endpoint.
    pub monitoring_api_targets: Vec<String>,
    pub monitoring_api_metrics_path: String,
    /// host:port of PostgreSQL exporters outside the stack.
    pub monitoring_postgres_exporter_targets: Vec<String>,
    /// Run postgres-exporter in the stack (scraped as job `postgres`).
    pub monitoring_postgres_exporter: bool,
    pub monitoring_postgres_host: String,
    pub monitoring_postgres_port: u16,
    pub monitoring_postgres_user: String,
    pub monitoring_postgres_database: String,
    pub monitoring_postgres_sslmode: String,
    /// A secret, needed by `monitoring_postgres_exporter`.
    pub monitoring_postgres_password: String,
    /// An external overlay network where the database is reachable; empty: none.
    pub monitoring_postgres_network: String,
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
    pub alert_error_rate_for: String,
    pub alert_cpu_percent: u32,
    pub alert_cpu_for: String,
    pub alert_memory_percent: u32,
    pub alert_memory_for: String,
    pub alert_disk_free_percent: u32,
    pub alert_disk_free_for: String,
    pub alert_node_down_for: String,
    pub alert_target_down_for: String,
    pub alert_postgres_connections_percent: u32,
    pub alert_postgres_connections_for: String,
    pub alert_failed_logins: u32,
    pub alert_failed_logins_window: String,
    pub alert_failed_logins_for: String,
    /// PostgresBackupTooOld fires when a node's last good backup (restore
    /// drill passed) is older than this many hours.
    pub alert_backup_max_age_hours: u32,
    /// The `for:` window of both backup alerts.
    pub alert_backup_for: String,
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
    /// A secret; empty means no webhook receiver (Alertmanager's JSON payload).
    pub alertmanager_webhook_url: String,
    /// The application's log directory, read by the log shipper on every node.
    pub monitoring_app_log_dir: String,
    /// The old name of `monitoring_app_log_dir`; when set, it wins.
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
    pub alloy: String,
    pub node_exporter: String,
    pub cadvisor: String,
    pub postgres_exporter: String,
}

impl Default for Images {
    fn default() -> Self {
        Self {
            prometheus: "prom/prometheus:v3.14.0".into(),
            alertmanager: "prom/alertmanager:v0.34.0".into(),
            grafana: "grafana/grafana:13.2.0".into(),
            loki: "grafana/loki:3.7.6".into(),
            // The last line Promtail was released on (end-of-life since 2026-03-02).
            promtail: "grafana/promtail:3.6.15".into(),
            alloy: "grafana/alloy:v1.18.1".into(),
            node_exporter: "prom/node-exporter:v1.12.1".into(),
            cadvisor: "gcr.io/cadvisor/cadvisor:v0.60.5".into(),
            postgres_exporter: "quay.io/prometheuscommunity/postgres-exporter:v0.20.1".into(),
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
    pub alloy: String,
    pub node_exporter: String,
    pub cadvisor: String,
    pub postgres_exporter: String,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            prometheus: "2G".into(),
            alertmanager: "256M".into(),
            grafana: "512M".into(),
            loki: "1G".into(),
            promtail: "256M".into(),
            alloy: "256M".into(),
            node_exporter: "128M".into(),
            cadvisor: "256M".into(),
            postgres_exporter: "128M".into(),
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
            monitoring_endpoint_mode: "vip".into(),
            monitoring_images: Images::default(),
            monitoring_disabled_services: Vec::new(),
            monitoring_log_shipper: "alloy".into(),
            monitoring_memory_limits: Limits::default(),
            monitoring_scrape_interval: "15s".into(),
            monitoring_evaluation_interval: "15s".into(),
            monitoring_node_exporter_port: 9100,
            monitoring_textfile_dir: TEXTFILE_DIR.into(),
            monitoring_cadvisor_port: 8080,
            monitoring_api_targets: vec!["api:8000".into()],
            monitoring_api_metrics_path: "/metrics".into(),
            monitoring_postgres_exporter_targets: Vec::new(),
            monitoring_postgres_exporter: false,
            monitoring_postgres_host: "postgres".into(),
            monitoring_postgres_port: 5432,
            monitoring_postgres_user: "postgres_exporter".into(),
            monitoring_postgres_database: "postgres".into(),
            monitoring_postgres_sslmode: "disable".into(),
            monitoring_postgres_password: String::new(),
            monitoring_postgres_network: String::new(),
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
            alert_error_rate_for: "0s".into(),
            alert_cpu_percent: 80,
            alert_cpu_for: "10m".into(),
            alert_memory_percent: 90,
            alert_memory_for: "5m".into(),
            alert_disk_free_percent: 10,
            alert_disk_free_for: "5m".into(),
            alert_node_down_for: "2m".into(),
            alert_target_down_for: "2m".into(),
            alert_postgres_connections_percent: 80,
            alert_postgres_connections_for: "5m".into(),
            alert_failed_logins: 10,
            alert_failed_logins_window: "5m".into(),
            alert_failed_logins_for: "0s".into(),
            alert_backup_max_age_hours: 26,
            alert_backup_for: "0s".into(),
            alertmanager_smtp_smarthost: String::new(),
            alertmanager_smtp_from: String::new(),
            alertmanager_smtp_auth_username: String::new(),
            alertmanager_smtp_auth_password: String::new(),
            alertmanager_smtp_require_tls: true,
            alertmanager_email_to: String::new(),
            alertmanager_slack_webhook_url: String::new(),
            alertmanager_slack_channel: "#alerts".into(),
            alertmanager_discord_webhook_url: String::new(),
            alertmanager_webhook_url: String::new(),
            monitoring_app_log_dir: "/app/logs".into(),
            promtail_app_log_dir: String::new(),
            swarm_managers_group: "managers".into(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeVars {
    /// The application's log directory, read by the log shipper on every node.
    pub monitoring_app_log_dir: String,
    /// The old name of `monitoring_app_log_dir`; when set, it wins.
    pub promtail_app_log_dir: String,
    /// node-exporter's textfile collector directory (a bind mount: it must exist).
    pub monitoring_textfile_dir: String,
}

impl Default for NodeVars {
    fn default() -> Self {
        let v = Vars::default();
        Self {
            monitoring_app_log_dir: v.monitoring_app_log_dir,
            promtail_app_log_dir: v.promtail_app_log_dir,
            monitoring_textfile_dir: v.monitoring_textfile_dir,
        }
    }
}

/// The application log directory and the variable it came from: inventories
/// written before the rename keep working.
pub fn app_log_dir<'a>(new: &'a str, old: &'a str) -> (&'static str, &'a str) {
    if old.is_empty() {
        ("monitoring_app_log_dir", new)
    } else {
        ("promtail_app_log_dir", old)
    }
}

impl Vars {
    pub fn app_log_dir(&self) -> (&'static str, &str) {
        app_log_dir(&self.monitoring_app_log_dir, &self.promtail_app_log_dir)
    }

    /// Whether the stack runs `service` (a name of the stack file).
    pub fn runs(&self, service: &str) -> bool {
        let optional = match service {
            "alloy" | "promtail" => self.monitoring_log_shipper == service,
            "postgres-exporter" => self.monitoring_postgres_exporter,
            _ => true,
        };
        optional
            && !self
                .monitoring_disabled_services
                .iter()
                .any(|s| s == service)
    }

    /// The secrets the stack uses, by the name the services read them under
    /// (/run/secrets/NAME), with the content written for them. Grafana's admin
    /// password is there whenever Grafana runs: None means the host makes one.
    pub fn secrets(&self) -> Vec<(&'static str, Option<String>)> {
        let admin = Some(self.grafana_admin_password.clone()).filter(|p| !p.is_empty());
        let grafana = self.runs("grafana");
        let alertmanager = self.runs("alertmanager");
        let optional = [
            (
                "grafana_smtp_password",
                &self.grafana_smtp_password,
                grafana,
            ),
            (
                "alertmanager_smtp_auth_password",
                &self.alertmanager_smtp_auth_password,
                alertmanager,
            ),
            (
                "alertmanager_slack_webhook_url",
                &self.alertmanager_slack_webhook_url,
                alertmanager,
            ),
            (
                "monitoring_postgres_password",
                &self.monitoring_postgres_password,
                self.runs("postgres-exporter"),
            ),
        ]
        .into_iter()
        .filter(|(_, v, used)| *used && !v.is_empty())
        .map(|(k, v, _)| (k, Some(v.clone())));
        grafana
            .then_some(("grafana_admin_password", admin))
            .into_iter()
            .chain(optional)
            .collect()
    }
}

//! `logrotate`: rotation of application logs, size caps for the journal, and
//! log limits for Docker's json-file driver.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{MANAGED, RoleContext, TypedRole, config_file};
use crate::diag::InputResult;
use crate::resource::Resource;
use crate::resource::json_keys::JsonKeys;
use crate::resource::package::Package;

pub struct Logrotate;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Frequency {
    Daily,
    Weekly,
    Monthly,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Vars {
    /// Glob patterns of application logs to rotate.
    pub app_log_paths: Vec<String>,
    pub app_log_frequency: Frequency,
    /// Rotated files kept.
    pub app_log_rotate: u32,
    /// Rotate earlier when a log grows past this size.
    pub app_log_max_size: String,
    /// Cap on the journal's disk use (journald SystemMaxUse).
    pub journald_system_max_use: String,
    /// Journal entries older than this are removed (journald MaxRetentionSec).
    pub journald_max_retention: String,
    /// Docker's json-file driver: size of one container log file, and files kept.
    pub docker_log_max_size: String,
    pub docker_log_max_file: u32,
}

impl Default for Vars {
    fn default() -> Self {
        Self {
            app_log_paths: vec!["/app/logs/*.log".into()],
            app_log_frequency: Frequency::Daily,
            app_log_rotate: 14,
            app_log_max_size: "100M".into(),
            journald_system_max_use: "500M".into(),
            journald_max_retention: "1month".into(),
            docker_log_max_size: "10m".into(),
            docker_log_max_file: 3,
        }
    }
}

/// dockerd validates its configuration file itself since Docker 23; older
/// daemons (Debian 12's docker.io) only get the JSON syntax checked.
pub const DAEMON_JSON_VALIDATE: &str =
    "if dockerd --help 2>&1 | grep -q -- --validate; then dockerd --validate --config-file {}; fi";

fn apps_config(v: &Vars) -> String {
    let frequency = match v.app_log_frequency {
        Frequency::Daily => "daily",
        Frequency::Weekly => "weekly",
        Frequency::Monthly => "monthly",
    };
    format!(
        "{MANAGED}\n{} {{\n    {frequency}\n    rotate {}\n    maxsize {}\n    missingok\n    notifempty\n    compress\n    delaycompress\n    copytruncate\n}}\n",
        v.app_log_paths.join(" "),
        v.app_log_rotate,
        v.app_log_max_size
    )
}

impl TypedRole for Logrotate {
    type Vars = Vars;
    const NAME: &'static str = "logrotate";
    const ABOUT: &'static str =
        "application log rotation, journald size caps, Docker json-file log limits";

    fn build(&self, v: Vars, ctx: &RoleContext<'_>) -> InputResult<Vec<Box<dyn Resource>>> {
        if let Some((i, bad)) = v
            .app_log_paths
            .iter()
            .enumerate()
            .find(|(_, p)| !p.starts_with('/') || p.contains(char::is_whitespace))
        {
            return Err(ctx.var_error(
                &format!("app_log_paths[{i}]"),
                format!(
                    "role logrotate on {}: app_log_paths: `{bad}` must be an absolute path without spaces",
                    ctx.host.name
                ),
            ));
        }
        let mut apps = config_file("/etc/logrotate.d/slipway-apps", apps_config(&v), 0o644);
        apps.validate = Some("logrotate -d {}".into());
        let mut journald = config_file(
            "/etc/systemd/journald.conf.d/50-slipway.conf",
            format!(
                "{MANAGED}\n[Journal]\nSystemMaxUse={}\nMaxRetentionSec={}\n",
                v.journald_system_max_use, v.journald_max_retention
            ),
            0o644,
        );
        journald.notify = vec!["systemd-journald".into()];
        let docker_logs = JsonKeys {
            path: "/etc/docker/daemon.json".into(),
            keys: json!({
                "log-driver": "json-file",
                "log-opts": {
                    "max-size": v.docker_log_max_size,
                    "max-file": v.docker_log_max_file.to_string(),
                },
            })
            .as_object()
            .expect("an object")
            .clone(),
            validate: Some(DAEMON_JSON_VALIDATE.into()),
            notify: vec!["docker".into()],
        };
        Ok(vec![
            Box::new(Package::present(&["logrotate"])),
            Box::new(apps),
            Box::new(journald),
            Box::new(docker_logs),
        ])
    }
}

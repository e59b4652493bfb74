//! The monitoring role's input checks: a mistake fails the plan, naming the
//! variable, before any host is contacted.

use super::SERVICES;
use super::vars::Vars;
use crate::diag::InputResult;
use crate::roles::RoleContext;

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

/// A Prometheus duration (`30s`, `1h30m`, `0s`): what `for:`, rate windows
/// and intervals take. Checked here, since promtool would only say it later.
fn is_duration(s: &str) -> bool {
    let mut rest = s;
    let mut units = ["y", "w", "d", "h", "m", "s", "ms"].iter();
    let mut any = false;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return false;
        }
        let after = &rest[digits..];
        // `ms` before `m` + `s`: the longest unit that follows, in order.
        let Some(unit) = units
            .by_ref()
            .find(|u| after.starts_with(**u) && !(**u == "m" && after.starts_with("ms")))
        else {
            return false;
        };
        rest = &after[unit.len()..];
        any = true;
    }
    any
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl Vars {
    pub fn check(&self, ctx: &RoleContext<'_>) -> InputResult<()> {
        let err = |var: &str, msg: String| {
            ctx.var_error(var, format!("role monitoring on {}: {msg}", ctx.host.name))
        };
        check_path(ctx, "monitoring_dir", &self.monitoring_dir)?;
        let (log_var, log_dir) = self.app_log_dir();
        check_path(ctx, log_var, log_dir)?;
        let choice = |var: &str, value: &str, choices: &[&str]| -> InputResult<()> {
            if choices.contains(&value) {
                return Ok(());
            }
            Err(err(
                var,
                format!("{var}: `{value}` is not one of {}", choices.join(", ")),
            ))
        };
        choice(
            "monitoring_resolve_image",
            &self.monitoring_resolve_image,
            &["always", "changed", "never"],
        )?;
        choice(
            "monitoring_endpoint_mode",
            &self.monitoring_endpoint_mode,
            &["vip", "dnsrr"],
        )?;
        choice(
            "monitoring_log_shipper",
            &self.monitoring_log_shipper,
            &["alloy", "promtail"],
        )?;
        choice(
            "monitoring_postgres_sslmode",
            &self.monitoring_postgres_sslmode,
            &[
                "disable",
                "allow",
                "prefer",
                "require",
                "verify-ca",
                "verify-full",
            ],
        )?;
        if self.monitoring_log_shipper == "promtail" {
            ctx.notice(format!(
                "role monitoring on {}: monitoring_log_shipper = \"promtail\": Promtail is end-of-life since 2026-03-02 and gets no fixes; this release is the last to ship it: switch to \"alloy\"",
                ctx.host.name
            ));
        }
        self.check_services(ctx)?;
        let network = &self.monitoring_postgres_network;
        for (var, value) in [
            ("monitoring_stack", &self.monitoring_stack),
            ("monitoring_postgres_network", network),
        ] {
            // No network is a choice; a network needs a name Docker takes.
            let unset_network = var == "monitoring_postgres_network" && value.is_empty();
            if !(valid_name(value) || unset_network) {
                return Err(err(
                    var,
                    format!("{var}: `{value}` is not a valid name (letters, digits, - and _)"),
                ));
            }
        }
        for (var, value) in self.durations() {
            if !is_duration(value) {
                return Err(err(
                    var,
                    format!("{var}: `{value}` is not a duration such as 30s, 5m or 1h30m"),
                ));
            }
        }
        if self.grafana_smtp_enabled && self.grafana_smtp_host.is_empty() {
            return Err(err(
                "grafana_smtp_enabled",
                "grafana_smtp_enabled needs grafana_smtp_host".into(),
            ));
        }
        if self.runs("postgres-exporter") && self.monitoring_postgres_password.is_empty() {
            return Err(err(
                "monitoring_postgres_exporter",
                "monitoring_postgres_exporter needs monitoring_postgres_password (a secret)".into(),
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

    /// Names in `monitoring_disabled_services` are the stack file's, and what
    /// stays can run: a log shipper needs Loki to send to.
    fn check_services(&self, ctx: &RoleContext<'_>) -> InputResult<()> {
        let var = "monitoring_disabled_services";
        let err = |msg: String| {
            ctx.var_error(var, format!("role monitoring on {}: {msg}", ctx.host.name))
        };
        for name in &self.monitoring_disabled_services {
            if name == "prometheus" {
                return Err(err(format!(
                    "{var}: prometheus is what the stack is for; monitoring_deploy = false deploys nothing"
                )));
            }
            if !SERVICES.contains(&name.as_str()) {
                return Err(err(format!(
                    "{var}: `{name}` is not a service of the stack (one of {})",
                    SERVICES[1..].join(", ")
                )));
            }
        }
        let shipper = &self.monitoring_log_shipper;
        if self.runs(shipper) && !self.runs("loki") {
            return Err(err(format!(
                "{var}: loki is disabled but {shipper} (monitoring_log_shipper) is not: it would ship logs nowhere; disable {shipper} too"
            )));
        }
        Ok(())
    }

    fn durations(&self) -> [(&'static str, &String); 15] {
        [
            (
                "monitoring_scrape_interval",
                &self.monitoring_scrape_interval,
            ),
            (
                "monitoring_evaluation_interval",
                &self.monitoring_evaluation_interval,
            ),
            ("alert_api_p95_for", &self.alert_api_p95_for),
            ("alert_error_rate_window", &self.alert_error_rate_window),
            ("alert_error_rate_for", &self.alert_error_rate_for),
            ("alert_cpu_for", &self.alert_cpu_for),
            ("alert_memory_for", &self.alert_memory_for),
            ("alert_disk_free_for", &self.alert_disk_free_for),
            ("alert_node_down_for", &self.alert_node_down_for),
            ("alert_target_down_for", &self.alert_target_down_for),
            (
                "alert_postgres_connections_for",
                &self.alert_postgres_connections_for,
            ),
            (
                "alert_failed_logins_window",
                &self.alert_failed_logins_window,
            ),
            ("alert_failed_logins_for", &self.alert_failed_logins_for),
            ("alert_backup_for", &self.alert_backup_for),
            ("loki_retention", &self.loki_retention),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::is_duration;

    #[test]
    fn durations_are_prometheus_ones() {
        for ok in ["0s", "5s", "2m", "1h30m", "720h", "100ms", "1d"] {
            assert!(is_duration(ok), "{ok}");
        }
        for bad in ["", "5", "m", "2 m", "30m1h", "5sec", "1.5h", "-1m"] {
            assert!(!is_duration(bad), "{bad}");
        }
    }
}

//! `postgres_backup`: nightly `pg_dump -Fc` of a Swarm service's PostgreSQL on
//! the node that runs it, proven by a restore drill into a throwaway
//! container, kept by a daily/weekly/monthly policy, copied off the node over
//! SSH, reported to node-exporter's textfile collector and, when it fails, to
//! the inventory's Slack and Discord webhooks and by e-mail, by the host itself.
//!
//! The work is one POSIX sh script on the host (`backup.sh`), run by a
//! systemd timer, by `slipway backup` and `slipway restore`; this role
//! installs it with its settings.

mod notify;

use serde::{Deserialize, Serialize};

use super::stack_files::directory;
use super::{MANAGED, RoleContext, TypedRole, config_file};
use crate::diag::InputResult;
use crate::resource::Resource;
use crate::resource::file::File;
use crate::resource::package::Package;
use crate::shell::q;

pub struct PostgresBackup;

/// The script `slipway backup` and `slipway restore` run on the host.
pub const SCRIPT: &str = "/usr/local/sbin/slipway-postgres-backup";
/// The systemd unit that runs a backup (`.service`) and schedules it (`.timer`).
pub const UNIT: &str = "slipway-postgres-backup";
const CONF_DIR: &str = "/etc/slipway/postgres-backup";
const STATE_DIR: &str = "/var/lib/slipway/postgres-backup";
const COPY_KEY: &str = "/etc/slipway/postgres-backup/id_copy";

#[derive(Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Vars {
    /// The Swarm service whose container on this node is backed up.
    pub postgres_backup_service: String,
    pub postgres_backup_database: String,
    /// The database user pg_dump connects as (over the container's socket).
    pub postgres_backup_user: String,
    pub postgres_backup_dir: String,
    /// systemd OnCalendar expression (Persistent: a missed run happens at boot).
    pub postgres_backup_schedule: String,
    pub postgres_backup_keep_daily: u32,
    pub postgres_backup_keep_weekly: u32,
    pub postgres_backup_keep_monthly: u32,
    /// `[user@]host:/path`: mirror the backups there over SSH; empty: no copy.
    pub postgres_backup_copy_to: String,
    pub postgres_backup_copy_port: u16,
    /// A secret: the private key the copy logs in with.
    pub postgres_backup_copy_key: String,
    /// How long the drill waits for its PostgreSQL to accept connections (seconds).
    pub postgres_backup_drill_timeout: u32,
    /// node-exporter's textfile collector directory (shared with monitoring).
    pub monitoring_textfile_dir: String,
}

impl Default for Vars {
    fn default() -> Self {
        Self {
            postgres_backup_service: "api_postgres".into(),
            postgres_backup_database: "app".into(),
            postgres_backup_user: "app".into(),
            postgres_backup_dir: "/var/backups/slipway/postgres".into(),
            postgres_backup_schedule: "*-*-* 03:15:00".into(),
            postgres_backup_keep_daily: 7,
            postgres_backup_keep_weekly: 4,
            postgres_backup_keep_monthly: 6,
            postgres_backup_copy_to: String::new(),
            postgres_backup_copy_port: 22,
            postgres_backup_copy_key: String::new(),
            postgres_backup_drill_timeout: 120,
            monitoring_textfile_dir: super::monitoring::TEXTFILE_DIR.into(),
        }
    }
}

/// Where the copy goes: `[user@]host` and an absolute path.
struct CopyTo<'a> {
    host: &'a str,
    path: &'a str,
}

/// Letters, digits, `_` and the characters of `extra`: values the script
/// uses unquoted in names, paths and remote commands.
fn plain(s: &str, extra: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(c))
}

fn abs_path(s: &str) -> bool {
    s.starts_with('/') && plain(s, "/.-")
}

impl Vars {
    fn check(&self, ctx: &RoleContext<'_>) -> InputResult<Option<CopyTo<'_>>> {
        let err = |var: &str, what: &str| {
            Err(ctx.var_error(
                var,
                format!("role postgres_backup on {}: {var}: {what}", ctx.host.name),
            ))
        };
        if !plain(&self.postgres_backup_service, ".-") {
            return err("postgres_backup_service", "not a Swarm service name");
        }
        for (var, value) in [
            ("postgres_backup_database", &self.postgres_backup_database),
            ("postgres_backup_user", &self.postgres_backup_user),
        ] {
            if !plain(value, "") {
                return err(var, "letters, digits and `_` only");
            }
        }
        for (var, value) in [
            ("postgres_backup_dir", &self.postgres_backup_dir),
            ("monitoring_textfile_dir", &self.monitoring_textfile_dir),
        ] {
            if !abs_path(value) {
                return err(var, "an absolute path of letters, digits, `_`, `.`, `-`");
            }
        }
        if self.postgres_backup_schedule.trim().is_empty()
            || self.postgres_backup_schedule.contains('\n')
        {
            return err("postgres_backup_schedule", "one OnCalendar expression");
        }
        if self.postgres_backup_keep_daily == 0 {
            return err(
                "postgres_backup_keep_daily",
                "at least 1: the newest backup is always kept",
            );
        }
        if self.postgres_backup_copy_to.is_empty() {
            return Ok(None);
        }
        let copy = self
            .postgres_backup_copy_to
            .split_once(':')
            .map(|(host, path)| CopyTo { host, path })
            .filter(|c| plain(c.host, "@.-") && abs_path(c.path));
        if copy.is_none() {
            return err("postgres_backup_copy_to", "`[user@]host:/absolute/path`");
        }
        if self.postgres_backup_copy_key.trim().is_empty() {
            return err(
                "postgres_backup_copy_key",
                "the copy needs a private key (a secret) that the destination accepts",
            );
        }
        Ok(copy)
    }

    /// The script's settings, as sh assignments.
    fn conf(&self, host: &str, copy: Option<&CopyTo<'_>>) -> String {
        let settings = [
            ("SERVICE", self.postgres_backup_service.clone()),
            ("DATABASE", self.postgres_backup_database.clone()),
            ("DB_USER", self.postgres_backup_user.clone()),
            ("DIR", self.postgres_backup_dir.trim_end_matches('/').into()),
            ("STATE", STATE_DIR.into()),
            ("KEEP_DAILY", self.postgres_backup_keep_daily.to_string()),
            ("KEEP_WEEKLY", self.postgres_backup_keep_weekly.to_string()),
            (
                "KEEP_MONTHLY",
                self.postgres_backup_keep_monthly.to_string(),
            ),
            ("COPY_HOST", copy.map(|c| c.host.into()).unwrap_or_default()),
            ("COPY_PATH", copy.map(|c| c.path.into()).unwrap_or_default()),
            ("COPY_PORT", self.postgres_backup_copy_port.to_string()),
            ("TEXTFILE", self.monitoring_textfile_dir.clone()),
            ("NOTIFY", notify::DIR.into()),
            ("HOST_NAME", host.into()),
            (
                "DRILL_TIMEOUT",
                self.postgres_backup_drill_timeout.to_string(),
            ),
        ];
        let mut out = format!("{MANAGED}\n");
        for (k, v) in settings {
            out.push_str(&format!("{k}={}\n", q(&v)));
        }
        out
    }
}

fn units(schedule: &str) -> (String, String) {
    let service = format!(
        "{MANAGED}\n[Unit]\nDescription=slipway: back up PostgreSQL and run its restore drill\n\
         After=docker.service\nRequires=docker.service\n\n\
         [Service]\nType=oneshot\nExecStart={SCRIPT} run\nTimeoutStartSec=6h\n\
         Nice=10\nIOSchedulingClass=idle\n"
    );
    let timer = format!(
        "{MANAGED}\n[Unit]\nDescription=slipway: PostgreSQL backup schedule\n\n\
         [Timer]\nOnCalendar={schedule}\nPersistent=true\nUnit={UNIT}.service\n\n\
         [Install]\nWantedBy=timers.target\n"
    );
    (service, timer)
}

impl TypedRole for PostgresBackup {
    type Vars = Vars;
    const NAME: &'static str = "postgres_backup";
    const ABOUT: &'static str = "nightly pg_dump of a Swarm service's PostgreSQL with a restore drill, retention, off-node copy, metrics (run on the db nodes)";

    fn build(&self, v: Vars, ctx: &RoleContext<'_>) -> InputResult<Vec<Box<dyn Resource>>> {
        let copy = v.check(ctx)?;
        let hooks = notify::files(ctx)?;
        let mut packages = Vec::new();
        if hooks.iter().any(|f| f.content.is_some()) {
            packages.push("curl");
        }
        if copy.is_some() {
            packages.extend(["rsync", "openssh-client"]);
        }
        let mut out: Vec<Box<dyn Resource>> = Vec::new();
        if !packages.is_empty() {
            out.push(Box::new(Package::present(&packages)));
        }
        for dir in [
            CONF_DIR,
            notify::DIR,
            STATE_DIR,
            v.postgres_backup_dir.as_str(),
        ] {
            out.push(Box::new(directory(dir, 0o700)));
        }
        out.push(Box::new(directory(&v.monitoring_textfile_dir, 0o755)));
        out.push(Box::new(config_file(
            SCRIPT,
            include_str!("backup.sh").into(),
            0o700,
        )));
        out.push(Box::new(config_file(
            &format!("{CONF_DIR}/backup.conf"),
            v.conf(&ctx.host.name, copy.as_ref()),
            0o600,
        )));
        let mut key = File::root_owned(COPY_KEY, Vec::new(), 0o600);
        key.content = copy.as_ref().map(|_| {
            let mut k = v.postgres_backup_copy_key.trim_end().to_string();
            k.push('\n');
            k.into_bytes()
        });
        key.sensitive = true;
        out.push(Box::new(key));
        out.extend(hooks.into_iter().map(|f| Box::new(f) as Box<dyn Resource>));
        let (service, timer) = units(&v.postgres_backup_schedule);
        out.extend(super::units::timer(UNIT, service, timer));
        Ok(out)
    }
}

#[cfg(test)]
mod tests;

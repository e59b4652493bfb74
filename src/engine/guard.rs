//! Lockout protection that lives on the host, like a router's "commit
//! confirmed". Before a change that can cut access (see [`Guard`]) the apply
//! script saves what it replaces and arms a transient systemd timer that puts
//! it back after the guard's window. The timer belongs to the host's init, so
//! it fires whether or not slipway, its connection or its sshd session is
//! still alive. Only a NEW connection with the new settings that reaches root
//! disarms it; a failed proof reverts at once over the old connection.
//!
//! On the host, under [`DIR`]: `N.pending` (one line: resource, user, port,
//! armed-at) and `N.restore` per armed change, and `revert`, the script the
//! timer runs. What the timer reverted is recorded in [`REVERTED`], which the
//! next run's lock reports (see `lock`).

use super::connect;
use super::runner::Runner;
use crate::config::Host;
use crate::resource::Guard;
use crate::shell::{Script, q};
use crate::transport::ssh;
use crate::transport::{Transport, TransportError};

pub const DIR: &str = "/var/lib/slipway/guard";
pub const REVERTED: &str = "/var/lib/slipway/reverted";
const UNIT: &str = "slipway-revert";
/// `disarm` found nothing left to disarm: the timer had already reverted.
const EXIT_TOO_LATE: u32 = 3;

/// The script the timer runs (and a failed proof runs with `now`): every
/// pending change's restore, newest first, under a lock shared with `disarm`
/// so a proof arriving as the timer fires is either in time or told it is not.
fn revert_script() -> String {
    format!(
        r#"#!/bin/sh
# Written by slipway. Puts back the changes whose new login was never proven.
g={DIR}
exec 7>>"$g/.lock"; flock 7
cd "$g" || exit 0
for p in $(ls -r -- *.pending 2>/dev/null); do
  n=${{p%.pending}}
  if sh "./$n.restore"; then r=restored; else r=restore-failed; fi
  if [ "$1" != now ]; then
    mkdir -p {REVERTED}
    printf '%s %s %s\n' "$(cat "$p")" "$(date +%s)" "$r" > "{REVERTED}/$n"
    logger -t slipway "reverted $(cat "$p"): its new login was not proven in time ($r)" 2>/dev/null || true
  fi
  rm -f -- "$p" "$n.restore"
done
"#
    )
}

/// Shell that saves the state `guard` protects and arms the revert; runs just
/// before the guarded change, in the same step. `user` is who must prove it.
pub fn arm(resource: &str, guard: &Guard, user: &str) -> String {
    let record = format!("{} {} {}", resource, user, guard.port);
    format!(
        "command -v systemd-run >/dev/null || {{ echo 'systemd-run is missing: the automatic revert of this change cannot be armed, so it is not applied' >&2; exit 1; }}\n\
         mkdir -p {DIR}\n\
         {save}\n\
         n=\"$(date +%s%N)\"\n\
         printf '%s\\n' {restore} > {DIR}/\"$n\".restore\n\
         printf '%s %s\\n' {record} \"$(date +%s)\" > {DIR}/\"$n\".pending\n\
         printf '%s' {script} > {DIR}/revert\n\
         systemctl stop {UNIT}.timer >/dev/null 2>&1 || true\n\
         systemctl reset-failed {UNIT}.timer {UNIT}.service >/dev/null 2>&1 || true\n\
         systemd-run --quiet --unit={UNIT} --on-active={window} --timer-property=AccuracySec=1s /bin/sh {DIR}/revert",
        save = guard.save,
        restore = q(&guard.restore),
        record = q(&record),
        script = q(&revert_script()),
        window = guard.window,
    )
}

/// Stops the timer and forgets the pending changes: they are proven.
fn disarm() -> Script {
    Script::new(format!(
        "exec 7>>{DIR}/.lock; flock 7\n\
         systemctl stop {UNIT}.timer >/dev/null 2>&1 || true\n\
         if ls {DIR}/*.pending >/dev/null 2>&1; then rm -f {DIR}/*.pending {DIR}/*.restore; else exit {EXIT_TOO_LATE}; fi"
    ))
}

/// Reverts every pending change now, over the connection that is still open.
fn revert_now() -> Script {
    Script::new(format!(
        "systemctl stop {UNIT}.timer >/dev/null 2>&1 || true\nsh {DIR}/revert now"
    ))
}

/// A change armed on the host and not yet proven, as the lock reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub resource: String,
    pub user: String,
    pub port: u16,
    /// Unix time it was armed.
    pub armed: u64,
}

impl Pending {
    /// `RESOURCE USER PORT ARMED`, as `arm` writes it.
    pub fn parse(line: &str) -> Option<Self> {
        let mut w = line.split_whitespace();
        Some(Self {
            resource: w.next()?.to_string(),
            user: w.next()?.to_string(),
            port: w.next()?.parse().ok()?,
            armed: w.next()?.parse().ok()?,
        })
    }
}

/// Proves a just-applied or pending change: a new login as `user` on `port`
/// must reach root. Then disarms; on failure, reverts at once.
pub async fn prove(
    runner: &Runner,
    host: &Host,
    resource: &str,
    user: &str,
    port: u16,
) -> Result<(), String> {
    match try_login(host, user, port).await {
        Ok(()) => match runner.run(&disarm()).await {
            Ok(out) if out.success() => Ok(()),
            Ok(out) if out.status == EXIT_TOO_LATE => Err(format!(
                "a new login as {user}@{} on port {port} proved {resource}, but too late: \
                 the host had already put the previous settings back",
                host.name
            )),
            Ok(out) => Err(format!(
                "disarming the automatic revert of {resource} failed: {}",
                out.stderr_str().trim()
            )),
            Err(e) => Err(format!(
                "the connection broke while disarming the automatic revert of {resource} ({e}): the disarm may have reached the host; if it did not, the host puts the previous settings back when its timer fires, and the next run says so"
            )),
        },
        Err(why) => {
            let restored = match runner.run(&revert_now()).await {
                Ok(out) if out.success() => "the previous settings were restored".to_string(),
                Ok(out) => format!(
                    "restoring the previous settings FAILED: {}",
                    out.stderr_str().trim()
                ),
                Err(e) => format!(
                    "restoring the previous settings over the old connection FAILED ({e}); the host's own timer still puts them back"
                ),
            };
            Err(format!(
                "a new login as {user}@{} on port {port} failed after {resource} changed ({why}); {restored}",
                host.name
            ))
        }
    }
}

/// A fresh connection to `host` as `user` on `port`, with the keys the host's
/// inventory entry uses (never a password), that must also reach root.
pub async fn try_login(host: &Host, user: &str, port: u16) -> Result<(), String> {
    let mut spec = connect::spec(host)?;
    spec.user = user.to_string();
    spec.port = port;
    spec.password = None;
    // sshd re-executes itself on reload and does not listen for a moment.
    let mut attempt = 0;
    let transport = loop {
        match ssh::connect(&spec).await {
            Ok(t) => break t,
            Err(TransportError::Connect { .. }) if attempt < 20 => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            Err(e) => return Err(e.to_string()),
        }
    };
    // Logged in is not enough: the user must also reach root.
    let probe = if user == "root" {
        "true"
    } else {
        "sudo -n true"
    };
    let out = transport.exec(probe, b"").await.map_err(|e| e.to_string());
    transport.close().await;
    match out? {
        o if o.success() => Ok(()),
        o => Err(format!(
            "logged in, but `{probe}` failed: {}",
            o.stderr_str().trim()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arming_saves_first_and_records_who_must_prove_it() {
        let g = Guard {
            user: None,
            port: 2222,
            window: 45,
            save: "cp /etc/x /var/lib/slipway/rollback/x".into(),
            restore: "cp /var/lib/slipway/rollback/x /etc/x".into(),
        };
        let sh = arm("sshd:/etc/x", &g, "deploy");
        let save = sh.find("cp /etc/x").unwrap();
        let timer = sh.find("systemd-run --quiet").unwrap();
        assert!(save < timer, "{sh}");
        assert!(sh.contains("--on-active=45 "), "{sh}");
        assert!(sh.contains("'sshd:/etc/x deploy 2222'"), "{sh}");
        let p = Pending::parse("sshd:/etc/x deploy 2222 1700000000").unwrap();
        assert_eq!(
            (p.user.as_str(), p.port, p.armed),
            ("deploy", 2222, 1700000000)
        );
        assert_eq!(Pending::parse("sshd:/etc/x deploy"), None);
    }
}

//! The per-host lock: a flock under /run/lock held by a remote command for as
//! long as its channel stays open, so a dropped connection frees it too.

use super::runner::Runner;
use crate::shell::q;
use crate::transport::{Held, HoldGuard};

const EXIT_LOCKED: u32 = 75;

fn owner() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let machine = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    format!(
        "slipway apply by {user}@{machine} (pid {}) since epoch {since}",
        std::process::id()
    )
}

fn script() -> String {
    format!(
        r#"mkdir -p /run/lock
exec 9>>/run/lock/slipway.lock
if ! flock -n 9; then
  printf 'locked by %s\n' "$(cat /run/lock/slipway.owner 2>/dev/null || echo 'another slipway run')" >&2
  exit {EXIT_LOCKED}
fi
printf '%s\n' {} > /run/lock/slipway.owner
echo locked
cat >/dev/null
rm -f /run/lock/slipway.owner
"#,
        q(&owner())
    )
}

/// Takes the host's lock, or says who holds it.
pub async fn acquire(runner: &Runner) -> Result<Box<dyn HoldGuard>, String> {
    match runner.hold(&script()).await.map_err(|e| e.to_string())? {
        Held::Running { first_line, guard } if first_line.trim() == "locked" => Ok(guard),
        Held::Running { first_line, guard } => {
            guard.release().await;
            Err(format!("could not take the host lock: {first_line}"))
        }
        Held::Exited(out) if out.status == EXIT_LOCKED => Err(format!(
            "host is {}; wait for that run to finish",
            out.stderr_str().trim().replace('\n', " ")
        )),
        Held::Exited(out) => Err(format!(
            "could not take the host lock (exit {}): {}",
            out.status,
            out.stderr_str().trim()
        )),
    }
}

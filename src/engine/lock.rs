//! The per-host lock, in two parts, so that it means "work is running":
//! - the run lock, `/run/lock/slipway.lock`, held by a remote command for as
//!   long as its channel stays open: a dropped connection frees it;
//! - the work lock, `/run/lock/slipway.work`, held (shared) by every apply
//!   script for as long as any of it runs, even after its connection is gone
//!   (it then stops at its next step, see `execute`).
//!
//! A run takes the run lock, then waits until no script of an earlier run is
//! left before it observes anything. With nothing running, what dead scripts
//! left behind (temp files, step output) is removed, and the lock's first line
//! reports the host's pending and reverted access changes (see `guard`).

use super::guard::{self, Pending};
use super::runner::Runner;
use crate::shell::{Script, q};
use crate::transport::{Held, HoldGuard};

const EXIT_LOCKED: u32 = 75;
const EXIT_BUSY: u32 = 76;
/// How long a run waits for the remaining script of an interrupted one.
const WAIT_SECS: u32 = 300;
/// How long the lock holder waits for a heartbeat from its run (sent every
/// `transport::ssh` heartbeats) before it lets go.
const HOLD_SECS: u32 = 90;

pub const RUN_LOCK: &str = "/run/lock/slipway.lock";
pub const WORK_LOCK: &str = "/run/lock/slipway.work";
pub const OWNER: &str = "/run/lock/slipway.owner";
/// Which step the running apply script is at (`execute` writes it).
pub const STEP: &str = "/run/slipway/step";
/// Temp files being written, one path a line, for when their writer dies.
pub const TEMPS: &str = "/var/lib/slipway/temps";

/// A short random id of this process's run, in the owner line and the
/// host's run log.
pub fn run_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| hex::encode(&super::new_salt()[..4]))
}

/// A held host lock and what taking it found.
pub struct Lock {
    pub guard: Box<dyn HoldGuard>,
    /// The PID of the remote process holding the run lock: apply scripts stop
    /// when it is gone (their run's connection is).
    pub holder: u32,
    /// This run waited for the script of an interrupted run to end.
    pub waited: bool,
    /// Access changes armed by an earlier run and never proven.
    pub pending: Vec<Pending>,
    /// Access changes the host reverted by itself since the last run:
    /// `RESOURCE USER PORT ARMED REVERTED RESULT`.
    pub reverted: Vec<String>,
}

/// Who holds the lock, for whoever finds it taken: the local account (by uid,
/// as `$USER` may be unset in CI or cron) and machine, and this process.
pub fn owner(run: &str) -> String {
    let who = who();
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    format!(
        "slipway apply by {who} (pid {}, run {run}) since epoch {since}",
        std::process::id()
    )
}

/// `ACCOUNT@MACHINE`: who runs this process, and where.
pub fn who() -> String {
    let machine = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    format!("{}@{machine}", local_account())
}

/// The name of this process's uid in the local passwd database.
fn local_account() -> String {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next().map(str::to_string))
        })
        .unwrap_or_default();
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == uid).then(|| f[0].to_string())
            })
        })
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| format!("uid {uid}"))
}

fn script(owner: &str) -> String {
    format!(
        r#"mkdir -p /run/lock /run/slipway
exec 9>>{RUN_LOCK}
if ! flock -n 9; then
  printf 'locked by %s\n' "$(cat {OWNER} 2>/dev/null || echo 'another slipway run')" >&2
  exit {EXIT_LOCKED}
fi
waited=
exec 8>>{WORK_LOCK}
if ! flock -n 8; then
  waited=' | waited'
  if ! flock -w {WAIT_SECS} 8; then
    printf 'the script of an interrupted run is still running (%s) after %s s of waiting; it stops before its next step, or see slipway unlock\n' "$(cat {STEP} 2>/dev/null || echo 'step unknown')" {WAIT_SECS} >&2
    exit {EXIT_BUSY}
  fi
fi
if [ -f {TEMPS} ]; then
  while IFS= read -r f; do rm -f -- "$f"; done < {TEMPS}
  rm -f {TEMPS}
fi
rm -f /run/slipway/out.* {STEP}
exec 8>&-
printf '%s\n' {owner} > {OWNER}
notes=$waited
for f in {dir}/*.pending; do [ -f "$f" ] && notes="$notes | pending $(cat "$f")"; done
for f in {reverted}/*; do
  [ -f "$f" ] || continue
  notes="$notes | reverted $(cat "$f")"
  cat "$f" >> {reverted}.log; rm -f "$f"
done
echo "locked $$$notes"
# Held while the run's connection lives and beats: a peer that vanished
# without sshd noticing (a session older than its ClientAlive settings)
# stops beating, and the lock goes after {HOLD_SECS} s.
while beat=$(timeout {HOLD_SECS} head -c 1 9>&-) && [ -n "$beat" ]; do :; done
rm -f {OWNER}
"#,
        owner = q(owner),
        dir = guard::DIR,
        reverted = guard::REVERTED,
    )
}

/// Reads `locked PID[ | NOTE]...`.
fn parse(first_line: &str, guard: Box<dyn HoldGuard>) -> Option<Lock> {
    let mut parts = first_line.trim().split(" | ");
    let holder = parts.next()?.strip_prefix("locked ")?.parse().ok()?;
    let mut lock = Lock {
        guard,
        holder,
        waited: false,
        pending: Vec::new(),
        reverted: Vec::new(),
    };
    for note in parts {
        if note == "waited" {
            lock.waited = true;
        } else if let Some(p) = note.strip_prefix("pending ") {
            lock.pending.extend(Pending::parse(p));
        } else if let Some(r) = note.strip_prefix("reverted ") {
            lock.reverted.push(r.to_string());
        }
    }
    Some(lock)
}

/// Takes the host's lock, or says who holds it.
pub async fn acquire(runner: &Runner, owner: &str) -> Result<Lock, String> {
    match runner
        .hold(&script(owner))
        .await
        .map_err(|e| e.to_string())?
    {
        Held::Running { first_line, guard } if first_line.starts_with("locked ") => {
            // A line that does not parse leaves no holder PID to watch: refuse
            // rather than run scripts that could not tell their run died.
            parse(&first_line, guard).ok_or_else(|| {
                format!("could not take the host lock: unexpected answer `{first_line}`")
            })
        }
        Held::Running { first_line, guard } => {
            guard.release().await;
            Err(format!("could not take the host lock: {first_line}"))
        }
        Held::Exited(out) if out.status == EXIT_LOCKED => Err(format!(
            "host is {}; wait for that run to finish, or see slipway unlock",
            out.stderr_str().trim().replace('\n', " ")
        )),
        Held::Exited(out) if out.status == EXIT_BUSY => {
            Err(out.stderr_str().trim().replace('\n', " "))
        }
        Held::Exited(out) => Err(format!(
            "could not take the host lock (exit {}): {}",
            out.status,
            out.stderr_str().trim()
        )),
    }
}

/// Who holds a host's lock and what still runs under it, for `slipway unlock`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockStatus {
    /// Whether the run lock is taken.
    pub held: bool,
    /// The owner line of the run that took it.
    pub owner: Option<String>,
    /// Remote processes holding the run lock.
    pub holders: Vec<u32>,
    /// Remote apply scripts still running (holding the work lock).
    pub scripts: Vec<u32>,
    /// The step they are at.
    pub step: Option<String>,
}

/// Lists the processes that have `$1` open, except this shell.
const OPEN_BY: &str = r#"open_by() { for p in /proc/[0-9]*; do
  [ "${p#/proc/}" = "$$" ] && continue
  for f in "$p"/fd/*; do [ "$(readlink "$f" 2>/dev/null)" = "$1" ] && { echo "${p#/proc/}"; break; }; done
done | tr '
' ' '; }
"#;

/// Reads the lock's state without touching it.
pub fn inspect() -> Script {
    Script::new(format!(
        r#"{OPEN_BY}mkdir -p /run/lock
if flock -n {RUN_LOCK} true; then held=no; else held=yes; fi
printf 'held=%s\nowner=%s\nholders=%s\nscripts=%s\nstep=%s\n' "$held" "$(cat {OWNER} 2>/dev/null)" "$(open_by {RUN_LOCK})" "$(open_by {WORK_LOCK})" "$(cat {STEP} 2>/dev/null)"
"#
    ))
}

impl LockStatus {
    pub fn parse(out: &str) -> Self {
        let pids = |v: &str| {
            v.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        };
        let mut s = Self::default();
        for line in out.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let text = (!v.trim().is_empty()).then(|| v.trim().to_string());
            match k {
                "held" => s.held = v == "yes",
                "owner" => s.owner = text,
                "holders" => s.holders = pids(v),
                "scripts" => s.scripts = pids(v),
                "step" => s.step = text,
                _ => {}
            }
        }
        s
    }
}

/// Ends the processes holding the run lock (and, with `stop_scripts`, the
/// apply scripts still running, with everything they started), then checks
/// the lock is free.
pub fn release(stop_scripts: bool) -> Script {
    let scripts = if stop_scripts {
        format!("for p in $(open_by {WORK_LOCK}); do tree $p; done")
    } else {
        String::new()
    };
    Script::new(format!(
        r#"{OPEN_BY}tree() {{ for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do tree "$c"; done; echo "$1"; }}
victims="$(for p in $(open_by {RUN_LOCK}); do tree $p; done; {scripts})"
[ -n "$victims" ] && kill -TERM $victims 2>/dev/null
i=0; while ! flock -n {RUN_LOCK} true && [ $i -lt 25 ]; do sleep 0.2; i=$((i+1)); done
[ -n "$victims" ] && kill -KILL $victims 2>/dev/null
rm -f {OWNER}
flock -w 5 {RUN_LOCK} true || {{ echo 'the lock is still held' >&2; exit 1; }}
"#
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;

    struct Nothing;
    #[async_trait]
    impl HoldGuard for Nothing {
        async fn release(self: Box<Self>) {}
    }

    #[test]
    fn reads_the_holder_and_the_notes() {
        let line = "locked 4242 | waited | pending sshd:/etc/ssh/x deploy 22 1700000000 | reverted ufw:firewall root 22 1700000000 1700000090 restored";
        let l = parse(line, Box::new(Nothing)).unwrap();
        assert_eq!(l.holder, 4242);
        assert!(l.waited);
        assert_eq!(l.pending.len(), 1);
        assert_eq!(l.pending[0].resource, "sshd:/etc/ssh/x");
        assert_eq!(l.reverted.len(), 1);
        assert!(parse("locked", Box::new(Nothing)).is_none());
        assert!(!parse("locked 7", Box::new(Nothing)).unwrap().waited);
    }

    #[test]
    fn the_owner_names_an_account_even_without_user() {
        let o = owner("abcd");
        assert!(!o.contains("unknown@"), "{o}");
        assert!(o.contains("run abcd"), "{o}");
    }
}

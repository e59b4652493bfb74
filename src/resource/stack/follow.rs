//! Following a stack's services after `docker stack deploy`, until Swarm has
//! finished updating them, or rolled them back.
//!
//! `docker stack deploy` only hands the new specs to Swarm (and its
//! `--detach=false` exits 0 even when Swarm rolled the update back), so the
//! deploy script polls each service it expects to change: its UpdateStatus
//! until `completed`, or, for a service that has none (new, or a change
//! Swarm applies without an update), until its running tasks match its
//! replicas. A rollback, a paused update or the timeout fails the step with
//! one line per service, in the format [`failures`] reads back.

use crate::shell::q;

/// The shell functions the deploy script calls: `slipway_follow TIMEOUT SERVICE...`.
///
/// Swarm resets UpdateStatus on every deploy and sets it again only for
/// services whose tasks must change, a moment later: a service expected to
/// change that still has none is given a grace period before its converged
/// replicas count as done.
const FUNCTIONS: &str = r#"slipway_replicas_ok() {
  r=$(docker service ls --filter "name=$1" --format '{{.Name}} {{.Replicas}}' | awk -v s="$1" '$1==s {print $2; exit}')
  [ -n "$r" ] && [ "${r%%/*}" = "$(printf '%s' "${r#*/}" | cut -d' ' -f1)" ]
}
slipway_report() {
  svc=$1 state=$2
  # The newest task that failed: what it ran and why. After a rollback, the
  # service's spec is the previous one again and Swarm keeps no PreviousSpec,
  # so the image tried is the failed task's.
  last=$(docker service ps --no-trunc --format '{{.Image}}|{{.Error}}' "$svc" 2>/dev/null | awk -F'|' '$2!="" {print; exit}')
  err=${last#*|}
  case "$state" in
    "rolled back"|"rollback paused") tried=${last%%|*} ;;
    *) tried=$(docker service inspect --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}' "$svc" 2>/dev/null) ;;
  esac
  running=$(docker service ps --no-trunc --filter desired-state=running --format '{{.Image}} {{.CurrentState}}' "$svc" 2>/dev/null | awk '$2=="Running" {print $1}' | sort -u | paste -sd, -)
  case "$err" in *unhealthy*)
    check=$(docker service inspect --format '{{with .Spec.TaskTemplate.ContainerSpec.Healthcheck}}{{join .Test " "}}{{end}}' "$svc" 2>/dev/null)
    err="$err (the health check failed${check:+: $check})" ;;
  esac
  msg=$(docker service inspect --format '{{with .UpdateStatus}}{{.Message}}{{end}}' "$svc" 2>/dev/null)
  printf 'service %s: %s; tried %s; running %s; swarm: %s; task error: %s\n' \
    "$svc" "$state" "${tried:-?}" "${running:-nothing}" "${msg:-none}" "${err:-none}" >&2
}
slipway_follow() {
  timeout=$1; shift
  start=$(date +%s); failed=0
  for svc in "$@"; do
    while :; do
      now=$(date +%s)
      st=$(docker service inspect --format '{{with .UpdateStatus}}{{.State}}{{end}}' "$svc" 2>/dev/null) || st=missing
      case "$st" in
        completed) slipway_replicas_ok "$svc" && break ;;
        rollback_completed) slipway_report "$svc" "rolled back"; failed=1; break ;;
        rollback_paused) slipway_report "$svc" "rollback paused"; failed=1; break ;;
        paused) slipway_report "$svc" "update paused"; failed=1; break ;;
        "") [ $((now - start)) -ge 10 ] && slipway_replicas_ok "$svc" && break ;;
      esac
      if [ $((now - start)) -ge "$timeout" ]; then
        slipway_report "$svc" "not converged after ${timeout}s (${st:-no update status})"; failed=1; break
      fi
      sleep 2
    done
  done
  return $failed
}
"#;

/// The script lines that define the functions and follow `services` (full
/// names, `STACK_SERVICE`) for at most `timeout` seconds.
pub fn script(timeout: u32, services: &[String]) -> String {
    let names: Vec<String> = services.iter().map(|s| q(s)).collect();
    format!("{FUNCTIONS}slipway_follow {timeout} {}", names.join(" "))
}

/// A service whose update failed, as the deploy step reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The full service name, `STACK_SERVICE`.
    pub service: String,
    /// `rolled back`, `update paused`, `rollback paused`, or `not converged after ...`.
    pub state: String,
    /// The image the update tried.
    pub tried: String,
    /// The images its running tasks run now, comma-separated.
    pub running: String,
    /// Swarm's update message.
    pub swarm: String,
    /// The newest task error (`docker service ps --no-trunc`).
    pub error: String,
}

impl Failure {
    pub fn rolled_back(&self) -> bool {
        self.state == "rolled back"
    }
}

/// The failed services a deploy step's output names.
pub fn failures(output: &str) -> Vec<Failure> {
    output.lines().filter_map(parse).collect()
}

fn parse(line: &str) -> Option<Failure> {
    let rest = line.strip_prefix("service ")?;
    let (service, rest) = rest.split_once(": ")?;
    let (state, rest) = rest.split_once("; tried ")?;
    let (tried, rest) = rest.split_once("; running ")?;
    let (running, rest) = rest.split_once("; swarm: ")?;
    let (swarm, error) = rest.split_once("; task error: ")?;
    Some(Failure {
        service: service.into(),
        state: state.into(),
        tried: tried.into(),
        running: running.into(),
        swarm: swarm.into(),
        error: error.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_what_the_script_reports() {
        let out = "Updating service api_api (id: x)\n\
            service api_api: rolled back; tried reg:5443/app:broken@sha256:ab; running reg:5443/app:1.1@sha256:cd; swarm: rollback completed; task error: dockerexec: unhealthy container (the health check failed: CMD wget -q -O- http://127.0.0.1:8080/health)\n";
        let f = failures(out);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].service, "api_api");
        assert!(f[0].rolled_back());
        assert_eq!(f[0].tried, "reg:5443/app:broken@sha256:ab");
        assert_eq!(f[0].running, "reg:5443/app:1.1@sha256:cd");
        assert!(f[0].error.contains("health check failed"));
    }

    #[test]
    fn follows_the_named_services_with_the_timeout() {
        let s = script(120, &["api_api".into(), "api_nginx".into()]);
        assert!(s.ends_with("slipway_follow 120 'api_api' 'api_nginx'"));
        assert!(s.contains("rollback_completed"));
    }
}

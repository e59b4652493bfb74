//! Docker: the daemon answers, and /etc/docker/daemon.json holds every key
//! the roles set (the docker role's storage driver and options, logrotate's
//! log settings), with the same value. Keys no role sets are left alone, as
//! apply leaves them.

use serde_json::{Map, Value};

use crate::audit::{Check, Finding};

/// `info`: `docker info` (`running VERSION`, or why not); `daemon_json`: the
/// file, or `@@absent`.
pub fn check(expected: &Map<String, Value>, info: &str, daemon_json: &str) -> Check {
    let mut findings = Vec::new();
    let mut notes = Vec::new();
    match info.trim().strip_prefix("running ") {
        Some(version) => notes.push(format!("dockerd {version} answers")),
        None => findings.push(Finding::new(
            "dockerd",
            "running",
            info.lines().next().unwrap_or("no answer").trim(),
        )),
    }
    let found: Result<Map<String, Value>, String> = if daemon_json.trim() == "@@absent" {
        Ok(Map::new())
    } else {
        serde_json::from_str(daemon_json).map_err(|e| format!("not a JSON object: {e}"))
    };
    match found {
        Err(e) => findings.push(Finding::new("/etc/docker/daemon.json", "JSON", e)),
        Ok(found) => {
            for (key, want) in expected {
                match found.get(key) {
                    Some(v) if v == want => {}
                    Some(v) => findings.push(Finding::new(
                        format!("daemon.json {key}"),
                        want.to_string(),
                        v.to_string(),
                    )),
                    None => findings.push(Finding::new(
                        format!("daemon.json {key}"),
                        want.to_string(),
                        "not set",
                    )),
                }
            }
            notes.push(format!("{} keys of daemon.json compared", expected.len()));
        }
    }
    Check::new("docker", findings, notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Status;
    use serde_json::json;

    #[test]
    fn daemon_json_key_by_key() {
        let want = json!({"storage-driver": "vfs", "log-opts": {"max-size": "10m"}});
        let want = want.as_object().unwrap();
        let file = r#"{"storage-driver": "vfs", "log-opts": {"max-size": "10m"}, "debug": true}"#;
        assert_eq!(check(want, "running 26.1.3\n", file).status, Status::Ok);

        let changed = r#"{"storage-driver": "overlay2", "debug": true}"#;
        let c = check(want, "running 26.1.3\n", changed);
        let subjects: Vec<&str> = c.findings.iter().map(|f| f.subject.as_str()).collect();
        assert_eq!(
            subjects,
            ["daemon.json log-opts", "daemon.json storage-driver"]
        );
        assert_eq!(c.findings[1].found, "\"overlay2\"");

        let c = check(
            want,
            "Cannot connect to the Docker daemon at unix:///var/run/docker.sock\n",
            "@@absent",
        );
        assert_eq!(c.findings.len(), 3, "{c:?}");
        assert_eq!(c.findings[0].subject, "dockerd");
        let c = check(&Map::new(), "running 1\n", "{ nope");
        assert_eq!(c.findings[0].subject, "/etc/docker/daemon.json");
    }
}

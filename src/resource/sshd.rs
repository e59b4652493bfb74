//! sshd settings in a drop-in that takes effect safely: validated together
//! with the rest of the server's configuration, the previous version kept for
//! rollback, and activated the way the host runs sshd (Ubuntu 24.04 starts it
//! from `ssh.socket`, whose listening port only changes when the socket is
//! regenerated; Debian 12 runs `ssh.service`). With it, optionally, the host
//! keys and moduli sshd serves (see [`host_keys`]), under the same guard.

pub mod host_keys;

use super::file::File;
use super::{Guard, Observed, Outcome, Resource};
use crate::plan::change::{Action, Attr, Change};
use crate::shell::{Script, q};

const ROLLBACK_DIR: &str = "/var/lib/slipway/rollback";

#[derive(Debug, Clone)]
pub struct SshdConfig {
    /// The drop-in; its validate command is set by [`SshdConfig::new`].
    pub file: File,
    /// The port sshd must listen on once the drop-in is in effect.
    pub port: u16,
    /// Who must still be able to log in afterwards; `None`: no proof, no revert.
    pub login_user: Option<String>,
    /// Seconds the host waits for that proof before it reverts by itself.
    pub revert_window: u32,
    /// Replace weak host keys and moduli (see [`host_keys`]).
    pub host_keys: bool,
}

impl SshdConfig {
    pub fn new(mut file: File, port: u16, login_user: Option<String>, revert_window: u32) -> Self {
        // sshd keeps the first value it reads for most keywords: the candidate is
        // read first, then the whole system configuration, as sshd itself would.
        file.validate = Some(
            "c=$(mktemp); printf 'Include %s\\nInclude /etc/ssh/sshd_config\\n' {} > \"$c\"; /usr/sbin/sshd -t -f \"$c\"; rc=$?; rm -f \"$c\"; exit $rc".into(),
        );
        Self {
            file,
            port,
            login_user,
            revert_window,
            host_keys: false,
        }
    }

    /// Also keeps the host keys and moduli hardened (see [`host_keys`]).
    pub fn with_host_keys(mut self, on: bool) -> Self {
        self.host_keys = on;
        self
    }

    fn backup(&self) -> String {
        format!(
            "{ROLLBACK_DIR}/{}",
            self.file.path.trim_start_matches('/').replace('/', "_")
        )
    }
}

/// Makes sshd pick up its configuration without dropping open sessions, then
/// waits (up to 10 s) until something listens again: sshd re-executes itself
/// on reload, and a login tried in that moment is refused.
const ACTIVATE: &str = "if systemctl is-active --quiet ssh.socket; then systemctl daemon-reload; systemctl restart ssh.socket; else systemctl reload-or-restart ssh; fi\n\
sleep 0.3; i=0; until ss -Hltnp 2>/dev/null | grep -qE '\"(sshd|systemd)\"'; do i=$((i+1)); [ $i -ge 50 ] && break; sleep 0.2; done";

impl Resource for SshdConfig {
    fn id(&self) -> String {
        format!("sshd:{}", self.file.path)
    }

    fn manages(&self) -> Vec<super::Managed> {
        self.file.manages()
    }

    fn probe(&self) -> String {
        format!(
            "{}printf 'socket=%s\\n' \"$(systemctl is-active ssh.socket 2>/dev/null)\"\n\
             printf 'listening=%s\\n' \"$(/usr/sbin/sshd -T 2>/dev/null | sed -n 's/^port //p' | sort -n | tr '\\n' ' ')\"\n{}",
            self.file.probe(),
            if self.host_keys { host_keys::PROBE } else { "" }
        )
    }

    fn plan(&self, obs: &Observed<'_>) -> Outcome {
        let mut outcome = self.file.plan(obs);
        if outcome.blocked.is_some() {
            return outcome;
        }
        let ports = obs.get("listening").unwrap_or_default().trim();
        let port = self.port.to_string();
        let keys = if self.host_keys {
            host_keys::attrs(obs)
        } else {
            Vec::new()
        };
        let mut change = match outcome.change.take() {
            Some(c) => c,
            None if !keys.is_empty() => Change::new(
                self.id(),
                Action::Update,
                "replace weak host keys and DH moduli",
            ),
            // The file is right but the server was never told (socket not regenerated).
            None if !ports.split_whitespace().any(|p| p == port) && !ports.is_empty() => {
                Change::new(
                    self.id(),
                    Action::Update,
                    format!("make sshd listen on port {port}"),
                )
            }
            None => return Outcome::unchanged(),
        };
        change.resource = self.id();
        change.attrs.extend(keys);
        if ports.split_whitespace().collect::<Vec<_>>() != [port.as_str()] {
            change.attrs.push(Attr::new(
                "port",
                (!ports.is_empty()).then_some(ports),
                Some(&port),
            ));
        }
        if obs.get("socket") == Some("active") {
            change
                .summary
                .push_str(" (socket-activated sshd: ssh.socket is regenerated)");
        }
        Outcome::change(change)
    }

    fn apply(&self, change: &Change, observed: &Observed<'_>) -> Script {
        // Keys first: the drop-in's HostKey lines must name files that exist
        // when it is validated.
        let mut s = Script::default();
        if let Some(keys) = host_keys::apply(change) {
            s.line(keys);
        }
        s.append(self.file.apply(change, observed));
        s.line(ACTIVATE);
        if host_keys::changes_keys(change) {
            s.line(host_keys::report());
        }
        s
    }

    fn content(&self) -> Option<super::FileContent<'_>> {
        self.file.content()
    }

    fn diff_source(&self, change: &Change) -> Option<String> {
        self.file.diff_source(change)
    }

    fn set_diff(&self, change: &mut Change, old: Option<&[u8]>, facts: &crate::facts::HostFacts) {
        self.file.set_diff(change, old, facts);
    }

    fn guard(&self) -> Option<Guard> {
        let user = self.login_user.clone()?;
        let p = q(&self.file.path);
        let b = q(&self.backup());
        Some(Guard {
            user: Some(user),
            port: self.port,
            window: self.revert_window,
            save: format!(
                "mkdir -p {ROLLBACK_DIR}; rm -f {b} {b}.absent; if [ -f {p} ]; then cp -p {p} {b}; else : > {b}.absent; fi"
            ),
            restore: format!(
                "if [ -f {b}.absent ]; then rm -f {p}; elif [ -f {b} ]; then cp -p {b} {p}; fi\n{ACTIVATE}"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::HostFacts;

    fn resource(port: u16) -> SshdConfig {
        let file = File::root_owned(
            "/etc/ssh/sshd_config.d/00-slipway-hardening.conf",
            format!("Port {port}\nPermitRootLogin no\n").into_bytes(),
            0o644,
        );
        SshdConfig::new(file, port, Some("deploy".into()), 90)
    }

    fn ubuntu() -> HostFacts {
        HostFacts {
            os_id: "ubuntu".into(),
            os_version: "24.04".into(),
            os_codename: "noble".into(),
            systemd: true,
            ..HostFacts::default()
        }
    }

    #[test]
    fn ubuntu_socket_activated_sshd_moving_to_a_new_port() {
        // What an Ubuntu 24.04 host reports: no drop-in yet, ssh.socket active, listening on 22.
        let facts = ubuntu();
        let obs = Observed::new("type=absent\nsocket=active\nlistening=22 \n", &facts);
        let r = resource(2222);
        let c = r.plan(&obs).change.unwrap();
        assert!(
            c.summary.contains("ssh.socket is regenerated"),
            "{}",
            c.summary
        );
        assert!(
            c.attrs
                .contains(&Attr::new("port", Some("22"), Some("2222"))),
            "{:?}",
            c.attrs
        );
        let script = r.apply(&c, &obs).sh;
        assert!(script.contains("systemctl restart ssh.socket"), "{script}");
        let guard = r.guard().unwrap();
        assert!(
            guard.save.contains("/var/lib/slipway/rollback/"),
            "{}",
            guard.save
        );
        assert!(guard.restore.contains("systemctl restart ssh.socket"));
        assert_eq!(
            (guard.user.as_deref(), guard.port, guard.window),
            (Some("deploy"), 2222, 90)
        );
    }

    #[test]
    fn a_right_file_the_socket_never_picked_up_is_still_a_change() {
        let facts = ubuntu();
        let r = resource(2222);
        let content = r.file.content.clone().unwrap();
        let section = format!(
            "type=file\nmode=644\nowner=root\ngroup=root\nsize={}\nsha256={}\nsocket=active\nlistening=22 \n",
            content.len(),
            crate::digest::sha256_hex(&content)
        );
        let c = r.plan(&Observed::new(&section, &facts)).change.unwrap();
        assert_eq!(
            c.summary,
            "make sshd listen on port 2222 (socket-activated sshd: ssh.socket is regenerated)"
        );
        let converged = section.replace("listening=22 ", "listening=2222 ");
        assert_eq!(
            r.plan(&Observed::new(&converged, &facts)),
            Outcome::unchanged()
        );
    }
}

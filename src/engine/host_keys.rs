//! Host keys an apply step reported (after `resource::sshd::host_keys::MARK`)
//! are recorded in the known_hosts file slipway checks the host against, at
//! once: over the connection that is still open, authenticated with the old
//! keys, and before the new login that proves the change needs the new ones.

use super::connect;
use super::execute::{StepReport, StepStatus};
use crate::config::Host;
use crate::resource::sshd::host_keys::MARK;
use crate::transport::known_hosts::{fingerprint, replace_host_keys};

/// Records the keys each finished step of `steps` reported, for the ports
/// slipway reaches the host on (`guard_port`: the one a guarded change moved
/// sshd to), and replaces that step's output with what users must know.
pub fn learn(host: &Host, steps: &mut [StepReport], guard_port: Option<u16>) -> Result<(), String> {
    for step in steps.iter_mut().filter(|s| s.status == StepStatus::Ok) {
        let lines: Vec<&str> = step
            .output
            .lines()
            .filter_map(|l| l.strip_prefix(MARK))
            .collect();
        if lines.is_empty() {
            continue;
        }
        let keys = lines
            .iter()
            .map(|l| {
                let b64 = l.split_whitespace().nth(1).unwrap_or_default();
                russh::keys::parse_public_key_base64(b64).map_err(|e| {
                    format!("{} reported an unreadable host key `{l}`: {e}", host.name)
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let spec = connect::spec(host)?;
        let mut ports = vec![spec.port];
        ports.extend(guard_port.filter(|p| *p != spec.port));
        for port in ports {
            replace_host_keys(&spec.known_hosts, &spec.address, port, &keys).map_err(|e| {
                format!(
                    "the host keys of {} changed, and recording them in {} failed: {e}",
                    host.name,
                    spec.known_hosts.display()
                )
            })?;
        }
        let mut note = format!(
            "host keys now (recorded in {} for {}):",
            spec.known_hosts.display(),
            spec.address
        );
        for k in &keys {
            note.push_str(&format!("\n  {} {}", k.algorithm(), fingerprint(k)));
        }
        note.push_str(&format!(
            "\nupdate other known_hosts files that know this host: ssh-keygen -R {}, then check these fingerprints when you connect",
            spec.address
        ));
        step.output = note;
    }
    Ok(())
}

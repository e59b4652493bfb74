//! Slipway's DOCKER-USER block in after.rules and after6.rules: the lines it
//! holds, the plan's view of the published ports, and the script that
//! rewrites the files.

use std::collections::{BTreeMap, BTreeSet};

use super::Ufw;
use super::model::{Family, PortKey, Proto, Source, from_list, port_key};
use super::observed::Seen;
use crate::plan::change::Attr;
use crate::shell::{Script, q};

/// The lines that delimit slipway's block in after.rules and after6.rules.
pub const BEGIN: &str = "# BEGIN slipway DOCKER-USER";
pub const END: &str = "# END slipway DOCKER-USER";

/// Docker's bridge interfaces: the default bridge, Swarm's gateway bridge, and
/// user-defined bridge networks (`br-` + network id).
const BRIDGES: &[&str] = &["docker0", GWBRIDGE, "br-+"];
const GWBRIDGE: &str = "docker_gwbridge";

pub(super) const FAMILIES: [(Family, &str, &str); 2] = [
    (Family::V4, "/etc/ufw/after.rules", "iptables"),
    (Family::V6, "/etc/ufw/after6.rules", "ip6tables"),
];

impl Ufw {
    /// Slipway's block for one family's after.rules, as lines.
    pub fn docker_block(&self, family: Family) -> Option<Vec<String>> {
        let published = self.docker_published.as_ref()?;
        let mut l = vec![
            BEGIN.to_string(),
            "# Managed by slipway: ports published by containers obey the firewall (firewall_docker_published).".to_string(),
            "*filter".to_string(),
            ":DOCKER-USER - [0:0]".to_string(),
            "-A DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN".to_string(),
        ];
        // Accepted here, or Docker's own rules drop traffic between
        // containers of the gateway bridge (its inter-container isolation).
        for port in &self.docker_local {
            l.push(format!(
                "-A DOCKER-USER -i {GWBRIDGE} -o {GWBRIDGE} -p tcp -m conntrack --ctorigdstport {port} -j ACCEPT"
            ));
        }
        for b in BRIDGES {
            l.push(format!("-A DOCKER-USER -i {b} -j RETURN"));
        }
        for p in published {
            if p.from.family().is_some_and(|f| f != family) {
                continue;
            }
            let src = match &p.from {
                Source::Any => String::new(),
                Source::Net(n) => format!("-s {n} "),
            };
            for proto in p.proto.each() {
                l.push(format!(
                    "-A DOCKER-USER {src}-p {} -m conntrack --ctorigdstport {} -j RETURN",
                    proto.as_str(),
                    p.port
                ));
            }
        }
        for b in BRIDGES {
            l.push(format!("-A DOCKER-USER -o {b} -j DROP"));
        }
        l.push("-A DOCKER-USER -j RETURN".to_string());
        l.push("COMMIT".to_string());
        l.push(END.to_string());
        Some(l)
    }

    /// The after.rules files (by index in FAMILIES) that must change, each with
    /// the block it must hold (no lines: the block is removed).
    pub(super) fn block_changes(&self, seen: &Seen) -> Vec<(usize, Vec<String>)> {
        let mut out = Vec::new();
        for (i, (family, _, _)) in FAMILIES.iter().enumerate() {
            let (exists, current) = &seen.after[i];
            // A file UFW does not ship (yet) is created by installing it; otherwise leave it.
            if !exists && seen.installed {
                continue;
            }
            let want = if self.enabled {
                self.docker_block(*family).unwrap_or_default()
            } else {
                Vec::new()
            };
            if *current != want {
                out.push((i, want));
            }
        }
        out
    }

    /// The published ports and who may reach them, before and after.
    pub(super) fn published_attrs(
        &self,
        seen: &Seen,
        changes: &[(usize, Vec<String>)],
    ) -> Vec<Attr> {
        if changes.is_empty() {
            return Vec::new();
        }
        let parse = |lines: &[String]| -> BTreeMap<PortKey, BTreeSet<Source>> {
            let mut m: BTreeMap<PortKey, BTreeSet<Source>> = BTreeMap::new();
            for l in lines.iter().filter(|l| !is_local(l)) {
                let w: Vec<&str> = l.split_whitespace().collect();
                let Some(port) = w
                    .iter()
                    .position(|x| *x == "--ctorigdstport")
                    .and_then(|i| w.get(i + 1))
                else {
                    continue;
                };
                let after_flag = |flag: &str| {
                    w.iter()
                        .position(|x| *x == flag)
                        .and_then(|i| w.get(i + 1))
                        .copied()
                };
                let proto = after_flag("-p").and_then(|p| Proto::parse(p).ok());
                let src = after_flag("-s").map_or(Source::Any, Source::from_tuple);
                if let Some(proto) = proto {
                    m.entry(port_key(port, proto)).or_default().insert(src);
                }
            }
            m
        };
        let old_lines: Vec<String> = seen.after.iter().flat_map(|(_, b)| b.clone()).collect();
        let new_lines: Vec<String> = if self.enabled {
            [Family::V4, Family::V6]
                .iter()
                .filter_map(|f| self.docker_block(*f))
                .flatten()
                .collect()
        } else {
            Vec::new()
        };
        let (before, after) = (parse(&old_lines), parse(&new_lines));
        let mut attrs = Vec::new();
        let keys: BTreeSet<&PortKey> = before.keys().chain(after.keys()).collect();
        for k in keys {
            let name = format!("published {}/{}", k.1, k.2.label());
            let (b, a) = (from_list(before.get(k)), from_list(after.get(k)));
            if b == a {
                attrs.push(Attr::new(
                    &name,
                    None::<String>,
                    a.map(|a| format!("{a} (unchanged)")),
                ));
            } else {
                attrs.push(Attr::new(&name, b, a));
            }
        }
        let local = |lines: &[String]| {
            let ports: BTreeSet<&str> = lines
                .iter()
                .filter(|l| is_local(l))
                .filter_map(|l| {
                    l.split_whitespace()
                        .skip_while(|w| *w != "--ctorigdstport")
                        .nth(1)
                })
                .collect();
            (!ports.is_empty()).then(|| ports.into_iter().collect::<Vec<_>>().join(", "))
        };
        let (b, a) = (local(&old_lines), local(&new_lines));
        if b.is_some() || a.is_some() {
            attrs.push(Attr::new("published, from this node's containers", b, a));
        }
        let had = seen.after.iter().any(|(_, b)| !b.is_empty());
        let wants = new_lines.iter().any(|l| l == BEGIN);
        if wants && after.is_empty() {
            attrs.push(Attr::new(
                "published ports",
                None::<String>,
                Some("from no other host (DOCKER-USER drops connections to containers)"),
            ));
        }
        let what = match (had, wants) {
            (false, true) => "add slipway's DOCKER-USER rules",
            (true, true) => "update slipway's DOCKER-USER rules",
            _ => "remove slipway's DOCKER-USER rules (published ports are open to all)",
        };
        let files: Vec<&str> = changes.iter().map(|(i, _)| FAMILIES[*i].1).collect();
        attrs.push(Attr::new(&files.join(", "), None::<String>, Some(what)));
        attrs
    }
}

/// A line of the block that lets this node's containers reach a port
/// published on the node (see [`Ufw::docker_local`]).
fn is_local(line: &str) -> bool {
    line.contains(&format!("-i {GWBRIDGE} -o {GWBRIDGE} ")) && line.ends_with("-j ACCEPT")
}

/// Rewrites one after.rules file with `lines` as slipway's block (none: the
/// block removed), atomically and with the block checked by iptables-restore
/// first. The rest of the file is kept as it is on the host when this runs.
pub(super) fn write_block(family: usize, lines: &[String]) -> Script {
    let (_, path, iptables) = FAMILIES[family];
    let mut s = Script::default();
    s.line("(");
    s.line(format!("f={}", q(path)));
    s.line(format!(
        "[ -f \"$f\" ] || {{ echo {} >&2; exit 1; }}",
        q(&format!("{path} is missing; is ufw installed?"))
    ));
    s.line("t=$(mktemp /etc/ufw/.slipway.XXXXXX); b=$(mktemp /etc/ufw/.slipway.XXXXXX)");
    s.line(crate::shell::REMOVE_TEMP_ON_EXIT);
    s.line(format!("sed '/^{BEGIN}$/,/^{END}$/d' \"$f\" > \"$t\""));
    if lines.is_empty() {
        // The live chain keeps the rules until flushed; leave it as Docker makes it.
        s.line(format!(
            "if {iptables} -w -n -L DOCKER-USER >/dev/null 2>&1; then {iptables} -w -F DOCKER-USER; {iptables} -w -A DOCKER-USER -j RETURN; fi"
        ));
    } else {
        let mut block = lines.join("\n");
        block.push('\n');
        let sha = crate::digest::sha256_hex(block.as_bytes());
        let write = s.payload(block.into_bytes());
        s.line(format!("{write} > \"$b\""));
        s.line(format!(
            "printf '%s  %s\\n' {sha} \"$b\" | sha256sum -c --status || {{ echo {} >&2; exit 1; }}",
            q(&format!(
                "the DOCKER-USER rules arrived incomplete; {path} was left unchanged"
            ))
        ));
        s.line(format!(
            "if ! {iptables}-restore --test -n < \"$b\" >&2; then echo {} >&2; exit 1; fi",
            q(&format!(
                "{iptables}-restore rejects the DOCKER-USER rules; {path} was left unchanged"
            ))
        ));
        s.line("if [ -n \"$(tail -c1 \"$t\")\" ]; then echo >> \"$t\"; fi");
        s.line("cat \"$b\" >> \"$t\"");
    }
    s.line("chmod --reference=\"$f\" \"$t\"; chown --reference=\"$f\" \"$t\"");
    s.line("sync \"$t\"; mv -f \"$t\" \"$f\"");
    s.line(")");
    s
}

//! `ufw`: the host firewall through UFW, and the DOCKER-USER rules that make
//! ports published by containers obey it.
//!
//! The probe reads the files UFW itself reads (no `ufw status`, which starts
//! Python): the `### tuple ###` lines of /etc/ufw/user.rules and user6.rules,
//! ENABLED= in /etc/ufw/ufw.conf, the default policies in /etc/default/ufw,
//! and slipway's block in /etc/ufw/after.rules and after6.rules. Applying uses
//! the `ufw` command line, in an order that never leaves SSH closed.
//!
//! Docker publishes container ports with DNAT and FORWARD rules that never
//! meet UFW's INPUT chains. Slipway's block in after.rules declares the
//! DOCKER-USER chain (which Docker jumps to first in FORWARD) and fills it:
//! traffic from Docker's bridges and replies pass, new connections from
//! outside to a published port pass only from the sources listed, matched on
//! the original destination port (DOCKER-USER sees packets after DNAT), and
//! everything else headed for a Docker bridge is dropped. UFW loads after.rules
//! with `iptables-restore -n`, which flushes a declared chain before filling
//! it, so reloads and Docker restarts never duplicate the rules.

mod docker_user;
mod model;
mod observed;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use super::{Guard, Observed, Outcome, Resource};
use crate::plan::change::{Action, Attr, Change};
use crate::shell::Script;
use docker_user::{FAMILIES, write_block};
use model::{PortKey, from_list, port_key};
use observed::{Seen, Tuple};

pub use docker_user::{BEGIN, END};
pub use model::{Family, Proto, Published, Rule, Source, parse_port, port_covers};
pub use observed::probe_script;

#[derive(Debug, Clone)]
pub struct Ufw {
    /// false: UFW is made inactive and slipway's DOCKER-USER rules are removed.
    pub enabled: bool,
    /// Every rule UFW must hold, the SSH rules first.
    pub rules: Vec<Rule>,
    /// Remove every rule not in `rules`.
    pub exclusive: bool,
    /// The ports published by containers reachable from outside, with the
    /// DOCKER-USER rules installed; None: no DOCKER-USER rules (removed if present).
    pub docker_published: Option<Vec<Published>>,
    /// Ports published on this node that containers on this node may reach
    /// through the node's address (Docker's gateway bridge back into itself,
    /// which Swarm otherwise isolates).
    pub docker_local: Vec<String>,
    /// The SSH port: applying refuses to enable a firewall that would not
    /// allow the port the probe's own SSH connection came in on.
    pub ssh_port: u16,
    /// Seconds the host waits for a new login to prove a change before it
    /// puts the previous firewall back by itself (see [`Guard`]).
    pub revert_window: u32,
}

/// Where the firewall as it was before a change is kept, for the revert.
const SAVED: &str = "/var/lib/slipway/rollback/ufw";
/// UFW applies its own kernel settings (IPT_SYSCTL) each time it starts or
/// reloads, after the boot's sysctl.d: on Ubuntu it sets log_martians=0, which
/// would undo the sysctl role at every boot and every firewall reload. Kernel
/// settings belong to the sysctl role alone.
const UFW_SYSCTL_OFF: &str = "left to sysctl.d (IPT_SYSCTL empty)";

/// UFW's policy words, from what /etc/default/ufw holds.
fn policy_word(v: &str) -> &str {
    match v {
        "DROP" => "deny",
        "ACCEPT" => "allow",
        "REJECT" => "reject",
        other => other,
    }
}

impl Ufw {
    /// The rules to add (with whether they are missing, rather than only
    /// their comment differing) and the rules to delete.
    fn rule_changes<'s>(&self, seen: &'s Seen) -> (Vec<(&Rule, bool)>, Vec<&'s Tuple>) {
        let mut add = Vec::new();
        for r in &self.rules {
            let matching: Vec<&Tuple> = seen
                .tuples
                .iter()
                .filter(|t| t.simple().as_ref() == Some(&r.key()))
                .collect();
            let complete = r
                .families(seen.ipv6)
                .iter()
                .all(|f| matching.iter().any(|t| t.family == *f));
            let comment_ok = matching.iter().all(|t| t.comment == r.comment);
            if !complete || !comment_ok {
                add.push((r, !complete));
            }
        }
        let mut delete: Vec<&Tuple> = Vec::new();
        if self.exclusive {
            let planned: BTreeSet<_> = self.rules.iter().map(Rule::key).collect();
            for t in &seen.tuples {
                let wanted = t.simple().is_some_and(|k| planned.contains(&k));
                // One delete removes a rule from both files.
                if !wanted && !delete.iter().any(|d| d.describe() == t.describe()) {
                    delete.push(t);
                }
            }
        }
        (add, delete)
    }

    /// Why applying must not go ahead on this host, if anything.
    fn refusal(&self, seen: &Seen) -> Option<String> {
        for (i, (_, path, _)) in FAMILIES.iter().enumerate() {
            let block = &seen.after[i].1;
            let begins = block.iter().filter(|l| *l == BEGIN).count();
            let ends = block.iter().filter(|l| *l == END).count();
            if begins != ends || begins > 1 {
                return Some(format!(
                    "{path} holds a damaged slipway block (`{BEGIN}` and `{END}` do not pair up); fix the file by hand"
                ));
            }
        }
        if !self.enabled {
            return None;
        }
        if self.exclusive && !seen.unreadable.is_empty() {
            return Some(format!(
                "cannot read the UFW rule `{}`; without knowing it, the rule set cannot be made exactly the planned one",
                seen.unreadable[0]
            ));
        }
        if !seen.ipv6
            && let Some(r) = self
                .rules
                .iter()
                .find(|r| r.from.family() == Some(Family::V6))
        {
            return Some(format!(
                "the rule {}/{} from {} is IPv6, but /etc/default/ufw says IPV6=no",
                r.port,
                r.proto.label(),
                r.from.label()
            ));
        }
        if let Some(port) = seen.conn_port {
            let tcp = |p: Proto| matches!(p, Proto::Tcp | Proto::Any);
            let planned = self
                .rules
                .iter()
                .any(|r| tcp(r.proto) && port_covers(&r.port, port));
            let kept = !self.exclusive
                && seen.tuples.iter().any(|t| {
                    t.simple()
                        .is_some_and(|(p, proto, _)| tcp(proto) && port_covers(&p, port))
                });
            if !planned && !kept {
                return Some(format!(
                    "slipway is connected to this host's SSH on port {port}, but the firewall would allow SSH on port {} only: enabling it would lock slipway out; set ssh_port = {port}",
                    self.ssh_port
                ));
            }
        }
        None
    }

    /// What the plan shows of the rules: one line per port and protocol, and who may reach it.
    fn rule_attrs(&self, seen: &Seen, add: &[(&Rule, bool)], delete: &[&Tuple]) -> Vec<Attr> {
        let missing = |k: &(String, Proto, Source)| add.iter().any(|(r, m)| *m && r.key() == *k);
        let mut before: BTreeMap<PortKey, BTreeSet<Source>> = BTreeMap::new();
        let mut after: BTreeMap<PortKey, BTreeSet<Source>> = BTreeMap::new();
        for t in &seen.tuples {
            let Some(k) = t.simple() else { continue };
            let pk = port_key(&k.0, k.1);
            // A planned rule UFW holds for one family only counts as not there yet.
            if !missing(&k) {
                before.entry(pk.clone()).or_default().insert(k.2.clone());
            }
            if !delete.iter().any(|d| d.describe() == t.describe()) {
                after.entry(pk).or_default().insert(k.2);
            }
        }
        for r in &self.rules {
            after
                .entry(port_key(&r.port, r.proto))
                .or_default()
                .insert(r.from.clone());
        }
        let keys: BTreeSet<&PortKey> = before.keys().chain(after.keys()).collect();
        let mut attrs = Vec::new();
        for k in keys {
            let name = match k.2 {
                Proto::Esp => k.2.label().to_string(),
                _ => format!("{}/{}", k.1, k.2.label()),
            };
            let (b, a) = (from_list(before.get(k)), from_list(after.get(k)));
            let comment = add.iter().any(|(r, _)| r.port == k.1 && r.proto == k.2);
            attrs.push(if b != a {
                Attr::new(&name, b, a)
            } else if comment {
                Attr::new(
                    &name,
                    None::<String>,
                    a.map(|a| format!("{a} (comment updated)")),
                )
            } else {
                Attr::new(&name, None::<String>, a.map(|a| format!("{a} (unchanged)")))
            });
        }
        for t in delete.iter().filter(|t| t.simple().is_none()) {
            attrs.push(Attr::new("remove rule", None::<String>, Some(t.describe())));
        }
        attrs
    }
}

impl Resource for Ufw {
    fn id(&self) -> String {
        "ufw:firewall".to_string()
    }

    /// The audit reads the rules and published ports it declares.
    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }

    /// The files UFW keeps its state in, which `ufw` rewrites.
    fn manages(&self) -> Vec<super::Managed> {
        [
            "/etc/ufw/user.rules",
            "/etc/ufw/user6.rules",
            "/etc/ufw/ufw.conf",
            "/etc/default/ufw",
            "/etc/ufw/after.rules",
            "/etc/ufw/after6.rules",
        ]
        .into_iter()
        .map(|p| super::Managed::sole(super::Thing::Path, p))
        .collect()
    }

    /// Rules that would shut SSH out are caught before enabling (see
    /// `apply`), but not a rule for the wrong source address: an enabled
    /// firewall's changes are proven by a new login, or reverted.
    fn guard(&self) -> Option<Guard> {
        if !self.enabled {
            return None;
        }
        Some(Guard {
            user: None,
            port: self.ssh_port,
            window: self.revert_window,
            save: format!(
                "rm -rf {SAVED}; mkdir -p {SAVED}\n\
                 if command -v ufw >/dev/null && [ -d /etc/ufw ]; then\n\
                 cp -a /etc/ufw {SAVED}/etc-ufw; cp -p /etc/default/ufw {SAVED}/default 2>/dev/null || true\n\
                 if ufw status | grep -q '^Status: active'; then echo active; else echo inactive; fi > {SAVED}/state\n\
                 fi"
            ),
            restore: format!(
                "if [ -f {SAVED}/state ]; then\n\
                 rm -rf /etc/ufw; cp -a {SAVED}/etc-ufw /etc/ufw\n\
                 if [ -f {SAVED}/default ]; then cp -p {SAVED}/default /etc/default/ufw; fi\n\
                 if [ \"$(cat {SAVED}/state)\" = active ]; then ufw --force enable; else ufw --force disable; fi\n\
                 fi"
            ),
        })
    }

    fn probe(&self) -> String {
        probe_script("")
    }

    fn plan(&self, obs: &Observed<'_>) -> Outcome {
        let seen = Seen::parse(obs);
        if let Some(why) = self.refusal(&seen) {
            return Outcome::blocked(why);
        }
        let blocks = self.block_changes(&seen);
        if !self.enabled {
            let mut attrs = Vec::new();
            if seen.enabled {
                attrs.push(Attr::new("ufw", Some("active"), Some("inactive")));
            }
            attrs.extend(self.published_attrs(&seen, &blocks));
            if attrs.is_empty() {
                return Outcome::unchanged();
            }
            return Outcome::change(
                Change::new(self.id(), Action::Update, "disable the firewall (ufw)")
                    .with_attrs(attrs),
            );
        }
        let (add, delete) = self.rule_changes(&seen);
        let mut attrs = Vec::new();
        let state = match (seen.installed, seen.enabled) {
            (false, _) => Some("not installed"),
            (true, false) => Some("inactive"),
            (true, true) => None,
        };
        if let Some(s) = state {
            attrs.push(Attr::new("ufw", Some(s), Some("active")));
        }
        for (name, seen_policy, want) in [
            ("incoming", &seen.input, "DROP"),
            ("outgoing", &seen.output, "ACCEPT"),
        ] {
            if seen_policy.as_deref() != Some(want) {
                attrs.push(Attr::new(
                    &format!("default {name}"),
                    seen_policy.as_deref().map(policy_word),
                    Some(policy_word(want)),
                ));
            }
        }
        if !seen.sysctl.as_deref().unwrap_or_default().is_empty() || !seen.installed {
            attrs.push(Attr::new(
                "kernel settings",
                seen.sysctl.as_deref().map(|f| format!("applied from {f}")),
                Some(UFW_SYSCTL_OFF),
            ));
        }
        if attrs.is_empty() && add.is_empty() && delete.is_empty() && blocks.is_empty() {
            return Outcome::unchanged();
        }
        attrs.extend(self.rule_attrs(&seen, &add, &delete));
        attrs.extend(self.published_attrs(&seen, &blocks));
        let (action, summary) = match state {
            Some("not installed") => (Action::Create, "install and enable the firewall (ufw)"),
            Some(_) => (Action::Update, "enable the firewall (ufw)"),
            None => (Action::Update, "update the firewall (ufw)"),
        };
        Outcome::change(Change::new(self.id(), action, summary).with_attrs(attrs))
    }

    fn apply(&self, _change: &Change, observed: &Observed<'_>) -> Script {
        let seen = Seen::parse(observed);
        let blocks = self.block_changes(&seen);
        let mut s = Script::default();
        if !self.enabled {
            if seen.enabled {
                s.line("ufw disable");
            }
            for (i, lines) in &blocks {
                s.append(write_block(*i, lines));
            }
            return s;
        }
        s.line("command -v ufw >/dev/null || { echo 'ufw is not installed' >&2; exit 1; }");
        let (add, delete) = self.rule_changes(&seen);
        // Rules first, the SSH rules leading: when UFW is already active, each
        // takes effect at once, and SSH is open before the policy denies anything.
        for (r, _) in &add {
            s.line(r.add_command());
        }
        if seen.input.as_deref() != Some("DROP") {
            s.line("ufw default deny incoming");
        }
        if seen.output.as_deref() != Some("ACCEPT") {
            s.line("ufw default allow outgoing");
        }
        if !seen.sysctl.as_deref().unwrap_or_default().is_empty() || !seen.installed {
            s.line("sed -i 's/^IPT_SYSCTL=.*/IPT_SYSCTL=/' /etc/default/ufw");
        }
        for t in &delete {
            s.line(t.delete_command());
        }
        for (i, lines) in &blocks {
            s.append(write_block(*i, lines));
        }
        // Only now, with SSH allowed and everything else in place, the firewall goes up.
        if !seen.enabled {
            s.line("ufw --force enable");
        } else if !blocks.is_empty() {
            s.line("ufw reload");
        }
        s
    }
}

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

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::{Observed, Outcome, Resource};
use crate::plan::change::{Action, Attr, Change};
use crate::shell::{Script, q};

/// The lines that delimit slipway's block in after.rules and after6.rules.
pub const BEGIN: &str = "# BEGIN slipway DOCKER-USER";
pub const END: &str = "# END slipway DOCKER-USER";

/// Docker's bridge interfaces: the default bridge, Swarm's gateway bridge, and
/// user-defined bridge networks (`br-` + network id).
const BRIDGES: &[&str] = &["docker0", "docker_gwbridge", "br-+"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
    /// Both: UFW writes one rule for tcp and one for udp.
    Any,
}

impl Proto {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            "any" => Ok(Proto::Any),
            other => Err(format!(
                "`{other}` is not a protocol: write tcp, udp or any"
            )),
        }
    }

    /// As UFW writes it in a tuple.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Any => "any",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Proto::Any => "tcp+udp",
            p => p.as_str(),
        }
    }

    /// The concrete protocols (iptables needs one per rule).
    fn each(self) -> &'static [Proto] {
        match self {
            Proto::Tcp => &[Proto::Tcp],
            Proto::Udp => &[Proto::Udp],
            Proto::Any => &[Proto::Tcp, Proto::Udp],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

/// Where traffic may come from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Any,
    /// An address or network, written the way UFW stores it (host addresses
    /// without /32 or /128, IPv6 compressed and lower case).
    Net(String),
}

impl Source {
    /// `any`, an IP address, or a network in CIDR notation without host bits.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s == "any" {
            return Ok(Source::Any);
        }
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => {
                let len: u8 = l
                    .parse()
                    .map_err(|_| format!("`{s}` is not an address or a network (CIDR)"))?;
                (a, Some(len))
            }
            None => (s, None),
        };
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or a network (CIDR), nor `any`"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len = len.unwrap_or(max);
        if len > max {
            return Err(format!("`{s}`: the prefix length is at most {max}"));
        }
        if len == 0 {
            return Err(format!("`{s}` means every address: write \"any\""));
        }
        let masked = mask(ip, len);
        if masked != ip {
            return Err(format!(
                "`{s}` has host bits set: did you mean {masked}/{len}?"
            ));
        }
        Ok(Source::Net(if len == max {
            ip.to_string()
        } else {
            format!("{ip}/{len}")
        }))
    }

    /// The family of a network; None for `any` (both).
    pub fn family(&self) -> Option<Family> {
        match self {
            Source::Any => None,
            Source::Net(n) if n.contains(':') => Some(Family::V6),
            Source::Net(_) => Some(Family::V4),
        }
    }

    fn ufw(&self) -> &str {
        match self {
            Source::Any => "any",
            Source::Net(n) => n,
        }
    }

    fn label(&self) -> &str {
        match self {
            Source::Any => "anywhere",
            Source::Net(n) => n,
        }
    }

    /// From a tuple's address field.
    fn from_tuple(field: &str) -> Self {
        match field {
            "0.0.0.0/0" | "::/0" | "any" => Source::Any,
            other => Source::Net(other.to_string()),
        }
    }
}

fn mask(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            IpAddr::V6((bits & m).into())
        }
    }
}

/// A port (`80`) or a range (`8000:8100`), normalised (no leading zeros).
pub fn parse_port(s: &str) -> Result<String, String> {
    let one = |p: &str| -> Result<u16, String> {
        match p.parse::<u16>() {
            Ok(n) if n > 0 && p.chars().all(|c| c.is_ascii_digit()) => Ok(n),
            _ => Err(format!(
                "`{s}` is not a port: write a number from 1 to 65535, or a range like \"8000:8100\""
            )),
        }
    };
    match s.split_once(':') {
        None => Ok(one(s)?.to_string()),
        Some((a, b)) => {
            let (a, b) = (one(a)?, one(b)?);
            if a >= b {
                return Err(format!(
                    "`{s}`: a range goes from the lower port to the higher"
                ));
            }
            Ok(format!("{a}:{b}"))
        }
    }
}

fn port_covers(spec: &str, port: u16) -> bool {
    let n = |s: &str| s.parse::<u16>().unwrap_or(0);
    match spec.split_once(':') {
        None => n(spec) == port,
        Some((a, b)) => (n(a)..=n(b)).contains(&port),
    }
}

/// Sorts ports numerically, ranges by their first port.
fn port_order(spec: &str) -> u16 {
    spec.split(':').next().unwrap_or("").parse().unwrap_or(0)
}

/// Orders a plan's lines by port number, then protocol.
type PortKey = (u16, String, Proto);

fn port_key(port: &str, proto: Proto) -> PortKey {
    (port_order(port), port.to_string(), proto)
}

/// "from anywhere", "from 10.0.0.1, 10.0.0.2"; None for nobody.
fn from_list(set: Option<&BTreeSet<Source>>) -> Option<String> {
    set.filter(|s| !s.is_empty()).map(|s| {
        let names: Vec<&str> = s.iter().map(Source::label).collect();
        format!("from {}", names.join(", "))
    })
}

/// An incoming connection UFW allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `80` or `8000:8100` (see [`parse_port`]).
    pub port: String,
    pub proto: Proto,
    pub from: Source,
    pub comment: Option<String>,
}

impl Rule {
    fn key(&self) -> (String, Proto, Source) {
        (self.port.clone(), self.proto, self.from.clone())
    }

    /// The families UFW writes this rule to.
    fn families(&self, ipv6: bool) -> Vec<Family> {
        match self.from.family() {
            Some(f) => vec![f],
            None if ipv6 => vec![Family::V4, Family::V6],
            None => vec![Family::V4],
        }
    }

    fn add_command(&self) -> String {
        let mut sh = String::from("ufw allow");
        if self.proto != Proto::Any {
            sh.push_str(&format!(" proto {}", self.proto.as_str()));
        }
        sh.push_str(&format!(
            " from {} to any port {}",
            self.from.ufw(),
            self.port
        ));
        if let Some(c) = &self.comment {
            sh.push_str(&format!(" comment {}", q(c)));
        }
        sh
    }
}

/// A port published by containers that may be reached from `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The published (host-side) port or range.
    pub port: String,
    pub proto: Proto,
    pub from: Source,
}

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
    /// The SSH port: applying refuses to enable a firewall that would not
    /// allow the port the probe's own SSH connection came in on.
    pub ssh_port: u16,
}

/// The shell that prints what UFW holds, from the files under `root` ("" on a host).
pub fn probe_script(root: &str) -> String {
    let r = q(root);
    let block = |file: &str, key: &str| {
        format!(
            "if [ -f \"$r/etc/ufw/{file}\" ]; then echo {key}.file=yes; sed -n '/^{BEGIN}$/,/^{END}$/s/^/{key}=/p' \"$r/etc/ufw/{file}\"; fi\n"
        )
    };
    let mut sh = format!("r={r}\n");
    sh.push_str(
        "if [ -x \"$r/usr/sbin/ufw\" ]; then echo installed=yes; else echo installed=no; fi\n",
    );
    sh.push_str("if [ -f \"$r/etc/ufw/ufw.conf\" ]; then sed -n 's/^ENABLED=/enabled=/p' \"$r/etc/ufw/ufw.conf\"; fi\n");
    sh.push_str("if [ -f \"$r/etc/default/ufw\" ]; then sed -n 's/^IPV6=/ipv6=/p; s/^DEFAULT_INPUT_POLICY=/input=/p; s/^DEFAULT_OUTPUT_POLICY=/output=/p' \"$r/etc/default/ufw\"; fi\n");
    sh.push_str("if [ -f \"$r/etc/ufw/user.rules\" ]; then sed -n 's/^### tuple ### /v4=/p' \"$r/etc/ufw/user.rules\"; fi\n");
    sh.push_str("if [ -f \"$r/etc/ufw/user6.rules\" ]; then sed -n 's/^### tuple ### /v6=/p' \"$r/etc/ufw/user6.rules\"; fi\n");
    sh.push_str(&block("after.rules", "after4"));
    sh.push_str(&block("after6.rules", "after6"));
    // The port this SSH connection came in on (unknown through sudo, which drops the variable).
    sh.push_str(
        "case \"$SSH_CONNECTION\" in *' '*) set -- $SSH_CONNECTION; echo \"conn_port=$4\";; esac\n",
    );
    sh
}

/// One `### tuple ###` line of user.rules or user6.rules.
#[derive(Debug, Clone, PartialEq)]
struct Tuple {
    family: Family,
    raw: String,
    /// `allow`, `deny`, `reject`, `limit`.
    action: String,
    /// `log` or `log-all`.
    log: Option<String>,
    route: bool,
    proto: String,
    dport: String,
    dst: Source,
    sport: String,
    src: Source,
    dapp: Option<String>,
    sapp: Option<String>,
    /// `in`, `out`, `in_eth0`, `in_eth0!out_docker0` (route rules).
    direction: String,
    comment: Option<String>,
}

impl Tuple {
    fn parse(family: Family, raw: &str) -> Option<Self> {
        let mut fields: Vec<&str> = raw.split_whitespace().collect();
        let mut comment = None;
        if let Some(hex) = fields.last().and_then(|f| f.strip_prefix("comment=")) {
            comment = Some(decode_hex(hex)?);
            fields.pop();
        }
        let (apps, direction) = match fields.len() {
            7 => (None, fields[6]),
            9 => (Some((fields[6], fields[7])), fields[8]),
            _ => return None,
        };
        let (route, action) = match fields[0].strip_prefix("route:") {
            Some(a) => (true, a),
            None => (false, fields[0]),
        };
        let (action, log) = match action.split_once('_') {
            Some((a, l)) => (a, Some(l.to_string())),
            None => (action, None),
        };
        let app = |a: &str| (a != "-").then(|| a.replace("%20", " "));
        Some(Tuple {
            family,
            raw: raw.to_string(),
            action: action.to_string(),
            log,
            route,
            proto: fields[1].to_string(),
            dport: fields[2].to_string(),
            dst: Source::from_tuple(fields[3]),
            sport: fields[4].to_string(),
            src: Source::from_tuple(fields[5]),
            dapp: apps.and_then(|(d, _)| app(d)),
            sapp: apps.and_then(|(_, s)| app(s)),
            direction: direction.to_string(),
            comment,
        })
    }

    /// The (port, proto, source) of a plain "allow incoming to a port" rule,
    /// the only kind slipway writes; None for every other kind.
    fn simple(&self) -> Option<(String, Proto, Source)> {
        let plain = self.action == "allow"
            && self.log.is_none()
            && !self.route
            && self.direction == "in"
            && self.dst == Source::Any
            && self.sport == "any"
            && self.dapp.is_none()
            && self.sapp.is_none()
            && self.dport != "any";
        if !plain {
            return None;
        }
        let proto = Proto::parse(&self.proto).ok()?;
        Some((self.dport.clone(), proto, self.src.clone()))
    }

    /// The rule in UFW's command syntax, as words (after `ufw [route] delete`).
    fn words(&self) -> Vec<String> {
        let mut w = vec![self.action.clone()];
        for part in self.direction.split('!') {
            let (dir, iface) = match part.split_once('_') {
                Some((d, i)) => (d, Some(i)),
                None => (part, None),
            };
            w.push(dir.to_string());
            if let Some(i) = iface {
                w.push("on".into());
                w.push(i.to_string());
            }
        }
        if let Some(l) = &self.log {
            w.push(l.clone());
        }
        let apps = self.dapp.is_some() || self.sapp.is_some();
        if !apps && self.proto != "any" {
            w.push("proto".into());
            w.push(self.proto.clone());
        }
        w.push("from".into());
        w.push(self.src.ufw().to_string());
        match &self.sapp {
            Some(a) => w.extend(["app".to_string(), a.clone()]),
            None if self.sport != "any" => w.extend(["port".to_string(), self.sport.clone()]),
            None => {}
        }
        w.push("to".into());
        w.push(self.dst.ufw().to_string());
        match &self.dapp {
            Some(a) => w.extend(["app".to_string(), a.clone()]),
            None if self.dport != "any" => w.extend(["port".to_string(), self.dport.clone()]),
            None => {}
        }
        w
    }

    fn delete_command(&self) -> String {
        let words: Vec<String> = self.words().iter().map(|w| word(w)).collect();
        let route = if self.route { "route " } else { "" };
        format!("ufw {route}delete {}", words.join(" "))
    }

    /// How the plan names the rule: UFW's syntax for it.
    fn describe(&self) -> String {
        let route = if self.route { "route " } else { "" };
        format!("{route}{}", self.words().join(" "))
    }
}

/// One shell word, quoted only when it needs to be.
fn word(w: &str) -> String {
    let plain = !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "./:_-+".contains(c));
    if plain { w.to_string() } else { q(w) }
}

fn decode_hex(hex: &str) -> Option<String> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    Some(String::from_utf8_lossy(&bytes?).into_owned())
}

/// What the probe saw.
#[derive(Debug, Default)]
struct Seen {
    installed: bool,
    enabled: bool,
    ipv6: bool,
    input: Option<String>,
    output: Option<String>,
    tuples: Vec<Tuple>,
    unreadable: Vec<String>,
    /// after.rules and after6.rules: whether the file exists, and slipway's block in it.
    after: [(bool, Vec<String>); 2],
    conn_port: Option<u16>,
}

fn unquote(v: &str) -> String {
    v.trim().trim_matches('"').to_string()
}

impl Seen {
    fn parse(obs: &Observed<'_>) -> Self {
        let mut s = Seen {
            installed: obs.get("installed") == Some("yes"),
            enabled: obs.get("enabled").map(unquote).as_deref() == Some("yes"),
            // UFW's default when the file says nothing.
            ipv6: obs.get("ipv6").map(unquote).as_deref() != Some("no"),
            input: obs.get("input").map(unquote),
            output: obs.get("output").map(unquote),
            conn_port: obs.get("conn_port").and_then(|p| p.trim().parse().ok()),
            ..Seen::default()
        };
        for (key, family) in [("v4", Family::V4), ("v6", Family::V6)] {
            for raw in obs.all(key) {
                match Tuple::parse(family, raw) {
                    Some(t) => s.tuples.push(t),
                    None => s.unreadable.push(raw.to_string()),
                }
            }
        }
        for (i, key) in ["after4", "after6"].iter().enumerate() {
            s.after[i] = (
                obs.get(&format!("{key}.file")) == Some("yes"),
                obs.all(key).into_iter().map(str::to_string).collect(),
            );
        }
        s
    }
}

/// UFW's policy words, from what /etc/default/ufw holds.
fn policy_word(v: &str) -> &str {
    match v {
        "DROP" => "deny",
        "ACCEPT" => "allow",
        "REJECT" => "reject",
        other => other,
    }
}

const FAMILIES: [(Family, &str, &str); 2] = [
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
    fn block_changes(&self, seen: &Seen) -> Vec<(usize, Vec<String>)> {
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
            let tcp = |p: Proto| p != Proto::Udp;
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
            let name = format!("{}/{}", k.1, k.2.label());
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

    /// The published ports and who may reach them, before and after.
    fn published_attrs(&self, seen: &Seen, changes: &[(usize, Vec<String>)]) -> Vec<Attr> {
        if changes.is_empty() {
            return Vec::new();
        }
        let parse = |lines: &[String]| -> BTreeMap<PortKey, BTreeSet<Source>> {
            let mut m: BTreeMap<PortKey, BTreeSet<Source>> = BTreeMap::new();
            for l in lines {
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

impl Resource for Ufw {
    fn id(&self) -> String {
        "ufw:firewall".to_string()
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

/// Rewrites one after.rules file with `lines` as slipway's block (none: the
/// block removed), atomically and with the block checked by iptables-restore
/// first. The rest of the file is kept as it is on the host when this runs.
fn write_block(family: usize, lines: &[String]) -> Script {
    let (_, path, iptables) = FAMILIES[family];
    let mut s = Script::default();
    s.line("(");
    s.line(format!("f={}", q(path)));
    s.line(format!(
        "[ -f \"$f\" ] || {{ echo {} >&2; exit 1; }}",
        q(&format!("{path} is missing; is ufw installed?"))
    ));
    s.line("t=$(mktemp /etc/ufw/.slipway.XXXXXX); b=$(mktemp /etc/ufw/.slipway.XXXXXX)");
    s.line("trap 'rm -f \"$t\" \"$b\"' EXIT; trap 'exit 1' HUP INT TERM PIPE");
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::HostFacts;

    // The files as the ufw package (0.36.2) installs them: Debian 12 and Ubuntu 24.04 ship the
    // same upstream defaults (Ubuntu has ufw installed, inactive).
    const UFW_CONF: &str = "# /etc/ufw/ufw.conf\n#\n\n# Set to yes to start on boot. If setting this remotely, be sure to add a rule\n# to allow your remote connection before starting ufw. Eg: 'ufw allow 22/tcp'\nENABLED=no\n\n# Please use the 'ufw' command to set the loglevel. Eg: 'ufw logging medium'.\n# See 'man ufw' for details.\nLOGLEVEL=low\n";
    const DEFAULT_UFW: &str = "# /etc/default/ufw\n#\n\n# Set to yes to apply rules to support IPv6 (no means only IPv6 on loopback\n# accepted). You will need to 'disable' and then 'enable' the firewall for\n# the changes to take affect.\nIPV6=yes\n\n# Set the default input policy to ACCEPT, DROP, or REJECT. Please note that if\n# you change this you will most likely want to adjust your rules.\nDEFAULT_INPUT_POLICY=\"DROP\"\n\n# Set the default output policy to ACCEPT, DROP, or REJECT. Please note that if\n# you change this you will most likely want to adjust your rules.\nDEFAULT_OUTPUT_POLICY=\"ACCEPT\"\n\n# Set the default forward policy to ACCEPT, DROP or REJECT.  Please note that\n# if you change this you will most likely want to adjust your rules\nDEFAULT_FORWARD_POLICY=\"DROP\"\n\nDEFAULT_APPLICATION_POLICY=\"SKIP\"\nMANAGE_BUILTINS=no\nIPT_SYSCTL=/etc/ufw/sysctl.conf\nIPT_MODULES=\"\"\n";
    const USER_RULES: &str = "*filter\n:ufw-user-input - [0:0]\n:ufw-user-output - [0:0]\n:ufw-user-forward - [0:0]\n:ufw-user-limit - [0:0]\n:ufw-user-limit-accept - [0:0]\n### RULES ###\n-A ufw-user-limit -m limit --limit 3/minute -j LOG --log-prefix \"[UFW LIMIT BLOCK] \"\n-A ufw-user-limit -j REJECT\n-A ufw-user-limit-accept -j ACCEPT\nCOMMIT\n";
    const USER6_RULES: &str = "*filter\n:ufw6-user-input - [0:0]\n:ufw6-user-output - [0:0]\n:ufw6-user-forward - [0:0]\n### RULES ###\nCOMMIT\n";
    const AFTER_RULES: &str = "#\n# rules.input-after\n#\n# Rules that should be run after the ufw command line added rules. Custom\n# rules should be added to one of these chains:\n#   ufw-after-input\n#   ufw-after-output\n#   ufw-after-forward\n#\n\n# Don't delete these required lines, otherwise there will be errors\n*filter\n:ufw-after-input - [0:0]\n:ufw-after-output - [0:0]\n:ufw-after-forward - [0:0]\n# End required lines\n\n# don't log noisy services by default\n-A ufw-after-input -p udp --dport 137 -j ufw-skip-to-policy-input\n-A ufw-after-input -p udp --dport 138 -j ufw-skip-to-policy-input\n-A ufw-after-input -p tcp --dport 139 -j ufw-skip-to-policy-input\n-A ufw-after-input -p tcp --dport 445 -j ufw-skip-to-policy-input\n-A ufw-after-input -p udp --dport 67 -j ufw-skip-to-policy-input\n-A ufw-after-input -p udp --dport 68 -j ufw-skip-to-policy-input\n\n# don't log noisy broadcast\n-A ufw-after-input -m addrtype --dst-type BROADCAST -j ufw-skip-to-policy-input\n\n# don't delete the 'COMMIT' line or these rules won't be processed\nCOMMIT\n";
    const AFTER6_RULES: &str = "#\n# rules.input-after\n#\n*filter\n:ufw6-after-input - [0:0]\n:ufw6-after-output - [0:0]\n:ufw6-after-forward - [0:0]\n# End required lines\n\n-A ufw6-after-input -p udp --dport 137 -j ufw6-skip-to-policy-input\n\n# don't delete the 'COMMIT' line or these rules won't be processed\nCOMMIT\n";

    /// What ufw 0.36.2 wrote on a lab host (Debian 12) for: `ufw allow 22/tcp`,
    /// `ufw allow proto tcp from 172.28.213.12 to any port 2377 comment "swarm manager"`,
    /// `ufw allow proto udp from 172.28.213.12 to any port 4789`, `ufw allow 8000:8100/tcp`,
    /// `ufw allow from 10.0.0.0/8 to any port 53`, `ufw allow 80`,
    /// `ufw allow from 2001:db8::/32 to any port 443 proto tcp`.
    const REAL_USER_RULES: &str = "*filter\n:ufw-user-input - [0:0]\n:ufw-user-output - [0:0]\n:ufw-user-forward - [0:0]\n:ufw-before-logging-input - [0:0]\n:ufw-before-logging-output - [0:0]\n:ufw-before-logging-forward - [0:0]\n:ufw-user-logging-input - [0:0]\n:ufw-user-logging-output - [0:0]\n:ufw-user-logging-forward - [0:0]\n:ufw-after-logging-input - [0:0]\n:ufw-after-logging-output - [0:0]\n:ufw-after-logging-forward - [0:0]\n:ufw-logging-deny - [0:0]\n:ufw-logging-allow - [0:0]\n:ufw-user-limit - [0:0]\n:ufw-user-limit-accept - [0:0]\n### RULES ###\n\n### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n-A ufw-user-input -p tcp --dport 22 -j ACCEPT\n\n### tuple ### allow tcp 2377 0.0.0.0/0 any 172.28.213.12 in comment=737761726d206d616e61676572\n-A ufw-user-input -p tcp --dport 2377 -s 172.28.213.12 -j ACCEPT\n\n### tuple ### allow udp 4789 0.0.0.0/0 any 172.28.213.12 in\n-A ufw-user-input -p udp --dport 4789 -s 172.28.213.12 -j ACCEPT\n\n### tuple ### allow tcp 8000:8100 0.0.0.0/0 any 0.0.0.0/0 in\n-A ufw-user-input -p tcp -m multiport --dports 8000:8100 -j ACCEPT\n\n### tuple ### allow any 53 0.0.0.0/0 any 10.0.0.0/8 in\n-A ufw-user-input -p tcp --dport 53 -s 10.0.0.0/8 -j ACCEPT\n-A ufw-user-input -p udp --dport 53 -s 10.0.0.0/8 -j ACCEPT\n\n### tuple ### allow any 80 0.0.0.0/0 any 0.0.0.0/0 in\n-A ufw-user-input -p tcp --dport 80 -j ACCEPT\n-A ufw-user-input -p udp --dport 80 -j ACCEPT\n\n### END RULES ###\n\n### LOGGING ###\n-A ufw-after-logging-input -j LOG --log-prefix \"[UFW BLOCK] \" -m limit --limit 3/min --limit-burst 10\n-A ufw-logging-allow -j LOG --log-prefix \"[UFW ALLOW] \" -m limit --limit 3/min --limit-burst 10\n### END LOGGING ###\n\n### RATE LIMITING ###\n-A ufw-user-limit -m limit --limit 3/minute -j LOG --log-prefix \"[UFW LIMIT BLOCK] \"\n-A ufw-user-limit -j REJECT\n-A ufw-user-limit-accept -j ACCEPT\n### END RATE LIMITING ###\nCOMMIT\n";
    const REAL_USER6_RULES: &str = "*filter\n:ufw6-user-input - [0:0]\n:ufw6-user-output - [0:0]\n:ufw6-user-forward - [0:0]\n### RULES ###\n\n### tuple ### allow tcp 22 ::/0 any ::/0 in\n-A ufw6-user-input -p tcp --dport 22 -j ACCEPT\n\n### tuple ### allow tcp 8000:8100 ::/0 any ::/0 in\n-A ufw6-user-input -p tcp -m multiport --dports 8000:8100 -j ACCEPT\n\n### tuple ### allow any 80 ::/0 any ::/0 in\n-A ufw6-user-input -p tcp --dport 80 -j ACCEPT\n-A ufw6-user-input -p udp --dport 80 -j ACCEPT\n\n### tuple ### allow tcp 443 ::/0 any 2001:db8::/32 in\n-A ufw6-user-input -p tcp --dport 443 -s 2001:db8::/32 -j ACCEPT\n\n### END RULES ###\nCOMMIT\n";

    /// The files on a Swarm manager of the lab (Debian 12, ufw 0.36.2) after slipway applied
    /// the firewall role with firewall_rules = [{ port = "80", comment = "web" },
    /// { port = "8000:8100", proto = "udp", from = "10.0.0.0/8" }] and 8080/tcp published
    /// to 172.28.25.13; peers 172.28.25.12 and 172.28.25.13.
    const LAB_USER_RULES: &str = "*filter\n:ufw-user-input - [0:0]\n:ufw-user-output - [0:0]\n:ufw-user-forward - [0:0]\n:ufw-before-logging-input - [0:0]\n:ufw-before-logging-output - [0:0]\n:ufw-before-logging-forward - [0:0]\n:ufw-user-logging-input - [0:0]\n:ufw-user-logging-output - [0:0]\n:ufw-user-logging-forward - [0:0]\n:ufw-after-logging-input - [0:0]\n:ufw-after-logging-output - [0:0]\n:ufw-after-logging-forward - [0:0]\n:ufw-logging-deny - [0:0]\n:ufw-logging-allow - [0:0]\n:ufw-user-limit - [0:0]\n:ufw-user-limit-accept - [0:0]\n### RULES ###\n\n### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in comment=736c69707761793a20737368\n-A ufw-user-input -p tcp --dport 22 -j ACCEPT\n\n### tuple ### allow tcp 2377 0.0.0.0/0 any 172.28.25.12 in comment=736c69707761793a20737761726d\n-A ufw-user-input -p tcp --dport 2377 -s 172.28.25.12 -j ACCEPT\n\n### tuple ### allow tcp 2377 0.0.0.0/0 any 172.28.25.13 in comment=736c69707761793a20737761726d\n-A ufw-user-input -p tcp --dport 2377 -s 172.28.25.13 -j ACCEPT\n\n### tuple ### allow tcp 7946 0.0.0.0/0 any 172.28.25.12 in comment=736c69707761793a20737761726d\n-A ufw-user-input -p tcp --dport 7946 -s 172.28.25.12 -j ACCEPT\n\n### tuple ### allow tcp 7946 0.0.0.0/0 any 172.28.25.13 in comment=736c69707761793a20737761726d\n-A ufw-user-input -p tcp --dport 7946 -s 172.28.25.13 -j ACCEPT\n\n### tuple ### allow udp 7946 0.0.0.0/0 any 172.28.25.12 in comment=736c69707761793a20737761726d\n-A ufw-user-input -p udp --dport 7946 -s 172.28.25.12 -j ACCEPT\n\n### tuple ### allow udp 7946 0.0.0.0/0 any 172.28.25.13 in comment=736c69707761793a20737761726d\n-A ufw-user-input -p udp --dport 7946 -s 172.28.25.13 -j ACCEPT\n\n### tuple ### allow udp 4789 0.0.0.0/0 any 172.28.25.12 in comment=736c69707761793a20737761726d\n-A ufw-user-input -p udp --dport 4789 -s 172.28.25.12 -j ACCEPT\n\n### tuple ### allow udp 4789 0.0.0.0/0 any 172.28.25.13 in comment=736c69707761793a20737761726d\n-A ufw-user-input -p udp --dport 4789 -s 172.28.25.13 -j ACCEPT\n\n### tuple ### allow tcp 80 0.0.0.0/0 any 0.0.0.0/0 in comment=776562\n-A ufw-user-input -p tcp --dport 80 -j ACCEPT\n\n### tuple ### allow udp 8000:8100 0.0.0.0/0 any 10.0.0.0/8 in\n-A ufw-user-input -p udp -m multiport --dports 8000:8100 -s 10.0.0.0/8 -j ACCEPT\n\n### END RULES ###\n\n### LOGGING ###\n-A ufw-after-logging-input -j LOG --log-prefix \"[UFW BLOCK] \" -m limit --limit 3/min --limit-burst 10\n-A ufw-after-logging-forward -j LOG --log-prefix \"[UFW BLOCK] \" -m limit --limit 3/min --limit-burst 10\n-I ufw-logging-deny -m conntrack --ctstate INVALID -j RETURN -m limit --limit 3/min --limit-burst 10\n-A ufw-logging-deny -j LOG --log-prefix \"[UFW BLOCK] \" -m limit --limit 3/min --limit-burst 10\n-A ufw-logging-allow -j LOG --log-prefix \"[UFW ALLOW] \" -m limit --limit 3/min --limit-burst 10\n### END LOGGING ###\n\n### RATE LIMITING ###\n-A ufw-user-limit -m limit --limit 3/minute -j LOG --log-prefix \"[UFW LIMIT BLOCK] \"\n-A ufw-user-limit -j REJECT\n-A ufw-user-limit-accept -j ACCEPT\n### END RATE LIMITING ###\nCOMMIT\n";
    const LAB_USER6_RULES: &str = "*filter\n:ufw6-user-input - [0:0]\n:ufw6-user-output - [0:0]\n:ufw6-user-forward - [0:0]\n:ufw6-before-logging-input - [0:0]\n:ufw6-before-logging-output - [0:0]\n:ufw6-before-logging-forward - [0:0]\n:ufw6-user-logging-input - [0:0]\n:ufw6-user-logging-output - [0:0]\n:ufw6-user-logging-forward - [0:0]\n:ufw6-after-logging-input - [0:0]\n:ufw6-after-logging-output - [0:0]\n:ufw6-after-logging-forward - [0:0]\n:ufw6-logging-deny - [0:0]\n:ufw6-logging-allow - [0:0]\n:ufw6-user-limit - [0:0]\n:ufw6-user-limit-accept - [0:0]\n### RULES ###\n\n### tuple ### allow tcp 22 ::/0 any ::/0 in comment=736c69707761793a20737368\n-A ufw6-user-input -p tcp --dport 22 -j ACCEPT\n\n### tuple ### allow tcp 80 ::/0 any ::/0 in comment=776562\n-A ufw6-user-input -p tcp --dport 80 -j ACCEPT\n\n### END RULES ###\n\n### LOGGING ###\n-A ufw6-after-logging-input -j LOG --log-prefix \"[UFW BLOCK] \" -m limit --limit 3/min --limit-burst 10\n-A ufw6-after-logging-forward -j LOG --log-prefix \"[UFW BLOCK] \" -m limit --limit 3/min --limit-burst 10\n-I ufw6-logging-deny -m conntrack --ctstate INVALID -j RETURN -m limit --limit 3/min --limit-burst 10\n-A ufw6-logging-deny -j LOG --log-prefix \"[UFW BLOCK] \" -m limit --limit 3/min --limit-burst 10\n-A ufw6-logging-allow -j LOG --log-prefix \"[UFW ALLOW] \" -m limit --limit 3/min --limit-burst 10\n### END LOGGING ###\n\n### RATE LIMITING ###\n-A ufw6-user-limit -m limit --limit 3/minute -j LOG --log-prefix \"[UFW LIMIT BLOCK] \"\n-A ufw6-user-limit -j REJECT\n-A ufw6-user-limit-accept -j ACCEPT\n### END RATE LIMITING ###\nCOMMIT\n";
    const LAB_AFTER_RULES: &str = "#\n# rules.input-after\n#\n# Rules that should be run after the ufw command line added rules. Custom\n# rules should be added to one of these chains:\n#   ufw-after-input\n#   ufw-after-output\n#   ufw-after-forward\n#\n\n# Don't delete these required lines, otherwise there will be errors\n*filter\n:ufw-after-input - [0:0]\n:ufw-after-output - [0:0]\n:ufw-after-forward - [0:0]\n# End required lines\n\n# don't log noisy services by default\n-A ufw-after-input -p udp --dport 137 -j ufw-skip-to-policy-input\n-A ufw-after-input -p udp --dport 138 -j ufw-skip-to-policy-input\n-A ufw-after-input -p tcp --dport 139 -j ufw-skip-to-policy-input\n-A ufw-after-input -p tcp --dport 445 -j ufw-skip-to-policy-input\n-A ufw-after-input -p udp --dport 67 -j ufw-skip-to-policy-input\n-A ufw-after-input -p udp --dport 68 -j ufw-skip-to-policy-input\n\n# don't log noisy broadcast\n-A ufw-after-input -m addrtype --dst-type BROADCAST -j ufw-skip-to-policy-input\n\n# don't delete the 'COMMIT' line or these rules won't be processed\nCOMMIT\n# BEGIN slipway DOCKER-USER\n# Managed by slipway: ports published by containers obey the firewall (firewall_docker_published).\n*filter\n:DOCKER-USER - [0:0]\n-A DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN\n-A DOCKER-USER -i docker0 -j RETURN\n-A DOCKER-USER -i docker_gwbridge -j RETURN\n-A DOCKER-USER -i br-+ -j RETURN\n-A DOCKER-USER -s 172.28.25.13 -p tcp -m conntrack --ctorigdstport 8080 -j RETURN\n-A DOCKER-USER -o docker0 -j DROP\n-A DOCKER-USER -o docker_gwbridge -j DROP\n-A DOCKER-USER -o br-+ -j DROP\n-A DOCKER-USER -j RETURN\nCOMMIT\n# END slipway DOCKER-USER\n";
    const LAB_AFTER6_RULES: &str = "#\n# rules.input-after\n#\n# Rules that should be run after the ufw command line added rules. Custom\n# rules should be added to one of these chains:\n#   ufw6-after-input\n#   ufw6-after-output\n#   ufw6-after-forward\n#\n\n# Don't delete these required lines, otherwise there will be errors\n*filter\n:ufw6-after-input - [0:0]\n:ufw6-after-output - [0:0]\n:ufw6-after-forward - [0:0]\n# End required lines\n\n# don't log noisy services by default\n-A ufw6-after-input -p udp --dport 137 -j ufw6-skip-to-policy-input\n-A ufw6-after-input -p udp --dport 138 -j ufw6-skip-to-policy-input\n-A ufw6-after-input -p tcp --dport 139 -j ufw6-skip-to-policy-input\n-A ufw6-after-input -p tcp --dport 445 -j ufw6-skip-to-policy-input\n-A ufw6-after-input -p udp --dport 546 -j ufw6-skip-to-policy-input\n-A ufw6-after-input -p udp --dport 547 -j ufw6-skip-to-policy-input\n\n# don't delete the 'COMMIT' line or these rules won't be processed\nCOMMIT\n# BEGIN slipway DOCKER-USER\n# Managed by slipway: ports published by containers obey the firewall (firewall_docker_published).\n*filter\n:DOCKER-USER - [0:0]\n-A DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN\n-A DOCKER-USER -i docker0 -j RETURN\n-A DOCKER-USER -i docker_gwbridge -j RETURN\n-A DOCKER-USER -i br-+ -j RETURN\n-A DOCKER-USER -o docker0 -j DROP\n-A DOCKER-USER -o docker_gwbridge -j DROP\n-A DOCKER-USER -o br-+ -j DROP\n-A DOCKER-USER -j RETURN\nCOMMIT\n# END slipway DOCKER-USER\n";

    const PEER2: &str = "172.28.5.12";
    const PEER3: &str = "172.28.5.13";

    /// A host's file system under a temp dir: `files` are (path, content).
    fn host(installed: bool, files: &[(&str, String)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        if installed {
            std::fs::create_dir_all(dir.path().join("usr/sbin")).unwrap();
            let ufw = dir.path().join("usr/sbin/ufw");
            std::fs::write(&ufw, "#!/bin/sh\n").unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&ufw, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        for (path, content) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        dir
    }

    /// Runs the real probe against `dir`, as over an SSH connection to port 22.
    fn probe(dir: &tempfile::TempDir) -> String {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(probe_script(dir.path().to_str().unwrap()))
            .env("SSH_CONNECTION", "172.28.5.1 40522 172.28.5.11 22")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    fn plan(u: &Ufw, section: &str) -> Outcome {
        u.plan(&Observed::new(section, &HostFacts::default()))
    }

    fn script(u: &Ufw, section: &str) -> String {
        let c = plan(u, section).change.expect("a change");
        u.apply(&c, &Observed::new(section, &HostFacts::default()))
            .sh
    }

    fn rule(port: &str, proto: Proto, from: &str, comment: Option<&str>) -> Rule {
        Rule {
            port: port.into(),
            proto,
            from: Source::parse(from).unwrap(),
            comment: comment.map(str::to_string),
        }
    }

    /// What the role plans for a Swarm manager whose peers are PEER2 and PEER3.
    fn manager() -> Ufw {
        let mut rules = vec![rule("22", Proto::Tcp, "any", Some("slipway: ssh"))];
        for (port, proto) in [
            ("2377", Proto::Tcp),
            ("7946", Proto::Tcp),
            ("7946", Proto::Udp),
            ("4789", Proto::Udp),
        ] {
            for peer in [PEER2, PEER3] {
                rules.push(rule(port, proto, peer, Some("slipway: swarm")));
            }
        }
        rules.push(rule("80", Proto::Tcp, "any", None));
        Ufw {
            enabled: true,
            rules,
            exclusive: true,
            docker_published: Some(vec![Published {
                port: "8080".into(),
                proto: Proto::Tcp,
                from: Source::Net(PEER3.into()),
            }]),
            ssh_port: 22,
        }
    }

    fn pristine() -> Vec<(&'static str, String)> {
        vec![
            ("etc/ufw/ufw.conf", UFW_CONF.to_string()),
            ("etc/default/ufw", DEFAULT_UFW.to_string()),
            ("etc/ufw/user.rules", USER_RULES.to_string()),
            ("etc/ufw/user6.rules", USER6_RULES.to_string()),
            ("etc/ufw/after.rules", AFTER_RULES.to_string()),
            ("etc/ufw/after6.rules", AFTER6_RULES.to_string()),
        ]
    }

    /// user.rules holding `tuples` (the v4 or v6 ones), as ufw writes it.
    fn user_rules(base: &str, tuples: &[String]) -> String {
        let body: String = tuples
            .iter()
            .map(|t| format!("\n### tuple ### {t}\n-A ufw-user-input -j ACCEPT\n"))
            .collect();
        base.replace(
            "### RULES ###\n",
            &format!("### RULES ###\n{body}\n### END RULES ###\n"),
        )
    }

    fn hex(s: &str) -> String {
        s.bytes().map(|b| format!("{b:02x}")).collect()
    }

    /// The files of a host where `u` was applied: rules, policies, enabled, blocks.
    fn converged(u: &Ufw, extra_v4: &[&str]) -> Vec<(&'static str, String)> {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for r in &u.rules {
            let comment = r
                .comment
                .as_ref()
                .map(|c| format!(" comment={}", hex(c)))
                .unwrap_or_default();
            let t = |any: &str| {
                let src = match &r.from {
                    Source::Any => any.to_string(),
                    Source::Net(n) => n.clone(),
                };
                format!(
                    "allow {} {} {any} any {src} in{comment}",
                    r.proto.as_str(),
                    r.port
                )
            };
            match r.from.family() {
                Some(Family::V4) => v4.push(t("0.0.0.0/0")),
                Some(Family::V6) => v6.push(t("::/0")),
                None => {
                    v4.push(t("0.0.0.0/0"));
                    v6.push(t("::/0"));
                }
            }
        }
        v4.extend(extra_v4.iter().map(|s| s.to_string()));
        let block = |f| {
            let mut b = u.docker_block(f).map(|l| l.join("\n")).unwrap_or_default();
            b.push('\n');
            b
        };
        vec![
            (
                "etc/ufw/ufw.conf",
                UFW_CONF.replace("ENABLED=no", "ENABLED=yes"),
            ),
            ("etc/default/ufw", DEFAULT_UFW.to_string()),
            ("etc/ufw/user.rules", user_rules(USER_RULES, &v4)),
            ("etc/ufw/user6.rules", user_rules(USER6_RULES, &v6)),
            (
                "etc/ufw/after.rules",
                format!("{AFTER_RULES}{}", block(Family::V4)),
            ),
            (
                "etc/ufw/after6.rules",
                format!("{AFTER6_RULES}{}", block(Family::V6)),
            ),
        ]
    }

    fn attr_lines(o: &Outcome) -> Vec<String> {
        o.change
            .as_ref()
            .unwrap()
            .attrs
            .iter()
            .map(|a| match (&a.from, &a.to) {
                (Some(f), Some(t)) => format!("{}: {f} -> {t}", a.name),
                (None, Some(t)) => format!("{}: {t}", a.name),
                (Some(f), None) => format!("{}: {f} -> (none)", a.name),
                (None, None) => a.name.clone(),
            })
            .collect()
    }

    fn has(lines: &[String], want: &str) -> bool {
        lines.iter().any(|l| l == want)
    }

    #[test]
    fn a_fresh_debian_host_gets_ufw_and_every_rule_before_it_is_enabled() {
        let section = probe(&host(false, &[]));
        assert_eq!(section, "installed=no\nconn_port=22\n");
        let u = manager();
        let o = plan(&u, &section);
        let c = o.change.as_ref().unwrap();
        assert_eq!(c.action, Action::Create);
        assert_eq!(c.summary, "install and enable the firewall (ufw)");
        let lines = attr_lines(&o);
        for want in [
            "ufw: not installed -> active",
            "default incoming: deny",
            "default outgoing: allow",
            "22/tcp: from anywhere",
            "80/tcp: from anywhere",
            "2377/tcp: from 172.28.5.12, 172.28.5.13",
            "4789/udp: from 172.28.5.12, 172.28.5.13",
            "7946/tcp: from 172.28.5.12, 172.28.5.13",
            "7946/udp: from 172.28.5.12, 172.28.5.13",
            "published 8080/tcp: from 172.28.5.13",
            "/etc/ufw/after.rules, /etc/ufw/after6.rules: add slipway's DOCKER-USER rules",
        ] {
            assert!(has(&lines, want), "no `{want}` in {lines:#?}");
        }
        // Ports in numeric order.
        let ports: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains("/tcp:") || l.contains("/udp:"))
            .collect();
        assert!(ports[0].starts_with("22/tcp"), "{ports:?}");

        let sh = script(&u, &section);
        let at = |needle: &str| {
            sh.find(needle)
                .unwrap_or_else(|| panic!("no `{needle}` in\n{sh}"))
        };
        let ssh = at("ufw allow proto tcp from any to any port 22 comment 'slipway: ssh'");
        assert!(ssh < at("ufw allow proto tcp from 172.28.5.12 to any port 2377"));
        assert!(ssh < at("ufw default deny incoming"));
        assert!(at("ufw default deny incoming") < at("/etc/ufw/after.rules"));
        assert!(at("/etc/ufw/after6.rules") < at("ufw --force enable"));
        assert!(sh.trim_end().ends_with("ufw --force enable"), "{sh}");
        assert!(sh.contains("iptables-restore --test -n"), "{sh}");
        assert!(!sh.contains("ufw delete"), "{sh}");
    }

    #[test]
    fn ubuntu_with_ufw_installed_but_inactive_is_enabled_with_the_rules() {
        let section = probe(&host(true, &pristine()));
        assert!(
            section.contains(
                "installed=yes\nenabled=no\nipv6=yes\ninput=\"DROP\"\noutput=\"ACCEPT\"\n"
            ),
            "{section}"
        );
        let u = manager();
        let o = plan(&u, &section);
        let c = o.change.as_ref().unwrap();
        assert_eq!(
            (c.action, c.summary.as_str()),
            (Action::Update, "enable the firewall (ufw)")
        );
        let lines = attr_lines(&o);
        assert!(has(&lines, "ufw: inactive -> active"), "{lines:#?}");
        assert!(has(&lines, "22/tcp: from anywhere"), "{lines:#?}");
        // The policies are already the planned ones.
        assert!(
            !lines.iter().any(|l| l.starts_with("default")),
            "{lines:#?}"
        );
        let sh = script(&u, &section);
        assert!(!sh.contains("ufw default"), "{sh}");
        assert!(sh.trim_end().ends_with("ufw --force enable"), "{sh}");
    }

    #[test]
    fn a_converged_host_needs_nothing() {
        let u = manager();
        let section = probe(&host(true, &converged(&u, &[])));
        assert_eq!(plan(&u, &section), Outcome::unchanged(), "{section}");
    }

    #[test]
    fn rules_not_planned_are_removed_when_exclusive_and_kept_otherwise() {
        let mut u = manager();
        let extra = [
            "allow tcp 9999 0.0.0.0/0 any 0.0.0.0/0 in",
            "allow tcp 2377 0.0.0.0/0 any 203.0.113.9 in",
            "deny any 53 0.0.0.0/0 any 0.0.0.0/0 out",
            "route:allow tcp 80 0.0.0.0/0 any 0.0.0.0/0 in_eth0!out_docker0",
        ];
        let section = probe(&host(true, &converged(&u, &extra)));
        let o = plan(&u, &section);
        let lines = attr_lines(&o);
        for want in [
            "9999/tcp: from anywhere -> (none)",
            "2377/tcp: from 172.28.5.12, 172.28.5.13, 203.0.113.9 -> from 172.28.5.12, 172.28.5.13",
            "22/tcp: from anywhere (unchanged)",
            "remove rule: deny out from any to any port 53",
            "remove rule: route allow in on eth0 out on docker0 proto tcp from any to any port 80",
        ] {
            assert!(has(&lines, want), "no `{want}` in {lines:#?}");
        }
        assert!(!lines.iter().any(|l| l.starts_with("ufw:")), "{lines:#?}");
        let sh = script(&u, &section);
        for want in [
            "ufw delete allow in proto tcp from any to any port 9999\n",
            "ufw delete allow in proto tcp from 203.0.113.9 to any port 2377\n",
            "ufw delete deny out from any to any port 53\n",
            "ufw route delete allow in on eth0 out on docker0 proto tcp from any to any port 80\n",
        ] {
            assert!(sh.contains(want), "no `{want}` in\n{sh}");
        }
        assert!(!sh.contains("ufw allow"), "{sh}");
        assert!(!sh.contains("enable") && !sh.contains("reload"), "{sh}");

        u.exclusive = false;
        assert_eq!(plan(&u, &section), Outcome::unchanged());
    }

    #[test]
    fn the_files_of_a_converged_lab_manager_need_nothing() {
        let files = [
            (
                "etc/ufw/ufw.conf",
                UFW_CONF.replace("ENABLED=no", "ENABLED=yes"),
            ),
            ("etc/default/ufw", DEFAULT_UFW.to_string()),
            ("etc/ufw/user.rules", LAB_USER_RULES.to_string()),
            ("etc/ufw/user6.rules", LAB_USER6_RULES.to_string()),
            ("etc/ufw/after.rules", LAB_AFTER_RULES.to_string()),
            ("etc/ufw/after6.rules", LAB_AFTER6_RULES.to_string()),
        ];
        let section = probe(&host(true, &files));
        let mut rules = vec![rule("22", Proto::Tcp, "any", Some("slipway: ssh"))];
        for (port, proto) in [
            ("2377", Proto::Tcp),
            ("7946", Proto::Tcp),
            ("7946", Proto::Udp),
            ("4789", Proto::Udp),
        ] {
            for peer in ["172.28.25.12", "172.28.25.13"] {
                rules.push(rule(port, proto, peer, Some("slipway: swarm")));
            }
        }
        rules.push(rule("80", Proto::Tcp, "any", Some("web")));
        rules.push(rule("8000:8100", Proto::Udp, "10.0.0.0/8", None));
        let mut u = Ufw {
            enabled: true,
            rules,
            exclusive: true,
            docker_published: Some(vec![Published {
                port: "8080".into(),
                proto: Proto::Tcp,
                from: Source::Net("172.28.25.13".into()),
            }]),
            ssh_port: 22,
        };
        assert_eq!(plan(&u, &section), Outcome::unchanged(), "{section}");
        // One swarm peer fewer: its rules go, the rest stays.
        u.rules
            .retain(|r| r.from != Source::Net("172.28.25.13".into()));
        let o = plan(&u, &section);
        let lines = attr_lines(&o);
        assert!(
            has(
                &lines,
                "2377/tcp: from 172.28.25.12, 172.28.25.13 -> from 172.28.25.12"
            ),
            "{lines:#?}"
        );
        let sh = script(&u, &section);
        assert_eq!(sh.matches("ufw delete allow in proto").count(), 4, "{sh}");
        assert!(
            sh.contains("ufw delete allow in proto udp from 172.28.25.13 to any port 4789\n"),
            "{sh}"
        );
    }

    #[test]
    fn parses_the_rules_ufw_really_writes() {
        let files = [
            ("etc/ufw/user.rules", REAL_USER_RULES.to_string()),
            ("etc/ufw/user6.rules", REAL_USER6_RULES.to_string()),
        ];
        let section = probe(&host(true, &files));
        let seen = Seen::parse(&Observed::new(&section, &HostFacts::default()));
        assert!(seen.unreadable.is_empty(), "{:?}", seen.unreadable);
        let simple: Vec<(Family, String, Proto, Source, Option<String>)> = seen
            .tuples
            .iter()
            .map(|t| {
                let (p, proto, src) = t.simple().expect("plain allow rules");
                (t.family, p, proto, src, t.comment.clone())
            })
            .collect();
        let net = |s: &str| Source::Net(s.into());
        assert_eq!(
            simple,
            vec![
                (Family::V4, "22".into(), Proto::Tcp, Source::Any, None),
                (
                    Family::V4,
                    "2377".into(),
                    Proto::Tcp,
                    net("172.28.213.12"),
                    Some("swarm manager".into())
                ),
                (
                    Family::V4,
                    "4789".into(),
                    Proto::Udp,
                    net("172.28.213.12"),
                    None
                ),
                (
                    Family::V4,
                    "8000:8100".into(),
                    Proto::Tcp,
                    Source::Any,
                    None
                ),
                (Family::V4, "53".into(), Proto::Any, net("10.0.0.0/8"), None),
                (Family::V4, "80".into(), Proto::Any, Source::Any, None),
                (Family::V6, "22".into(), Proto::Tcp, Source::Any, None),
                (
                    Family::V6,
                    "8000:8100".into(),
                    Proto::Tcp,
                    Source::Any,
                    None
                ),
                (Family::V6, "80".into(), Proto::Any, Source::Any, None),
                (
                    Family::V6,
                    "443".into(),
                    Proto::Tcp,
                    net("2001:db8::/32"),
                    None
                ),
            ]
        );
        // The same rules, planned, are already there: nothing to add.
        let u = Ufw {
            enabled: true,
            rules: vec![
                rule("22", Proto::Tcp, "any", None),
                rule("2377", Proto::Tcp, "172.28.213.12", Some("swarm manager")),
                rule("4789", Proto::Udp, "172.28.213.12", None),
                rule("8000:8100", Proto::Tcp, "any", None),
                rule("53", Proto::Any, "10.0.0.0/8", None),
                rule("80", Proto::Any, "any", None),
                rule("443", Proto::Tcp, "2001:db8::/32", None),
            ],
            exclusive: true,
            docker_published: None,
            ssh_port: 22,
        };
        let (add, delete) = u.rule_changes(&seen);
        assert!(add.is_empty() && delete.is_empty(), "{add:?} {delete:?}");
    }

    #[test]
    fn delete_commands_are_rebuilt_from_tuples() {
        // Each checked on a lab host: the command removes exactly the rule it came from.
        for (tuple, want) in [
            (
                "allow tcp 25 0.0.0.0/0 any 0.0.0.0/0 in_eth0",
                "ufw delete allow in on eth0 proto tcp from any to any port 25",
            ),
            (
                "deny any 53 0.0.0.0/0 any 0.0.0.0/0 out",
                "ufw delete deny out from any to any port 53",
            ),
            (
                "limit_log tcp 2222 0.0.0.0/0 any 0.0.0.0/0 in",
                "ufw delete limit in log proto tcp from any to any port 2222",
            ),
            (
                "allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 OpenSSH - in",
                "ufw delete allow in from any to any app OpenSSH",
            ),
            (
                "allow tcp 80,443 0.0.0.0/0 any 0.0.0.0/0 Nginx%20Full - in",
                "ufw delete allow in from any to any app 'Nginx Full'",
            ),
            (
                "route:allow tcp 80 0.0.0.0/0 any 0.0.0.0/0 in_eth0!out_docker0",
                "ufw route delete allow in on eth0 out on docker0 proto tcp from any to any port 80",
            ),
            (
                "reject any any 0.0.0.0/0 any 192.168.0.0/16 in",
                "ufw delete reject in from 192.168.0.0/16 to any",
            ),
            (
                "allow udp 6000 10.0.0.1 5000 10.0.0.5 in",
                "ufw delete allow in proto udp from 10.0.0.5 port 5000 to 10.0.0.1 port 6000",
            ),
        ] {
            let t = Tuple::parse(Family::V4, tuple).unwrap();
            assert_eq!(t.delete_command(), want);
            assert!(t.simple().is_none(), "{tuple}");
        }
        assert!(Tuple::parse(Family::V4, "allow tcp 22").is_none());
    }

    #[test]
    fn a_missing_ipv6_twin_or_a_different_comment_re_adds_the_rule() {
        let u = manager();
        let mut files = converged(&u, &[]);
        // 22/tcp only in user.rules (added while IPV6=no), and a swarm rule without its comment.
        files[3].1 = user_rules(USER6_RULES, &[]);
        let v4 = files[2].1.replace(
            &format!("172.28.5.13 in comment={}", hex("slipway: swarm")),
            "172.28.5.13 in",
        );
        files[2].1 = v4;
        let section = probe(&host(true, &files));
        let sh = script(&u, &section);
        assert!(
            sh.contains("ufw allow proto tcp from any to any port 22 comment 'slipway: ssh'\n"),
            "{sh}"
        );
        assert!(
            sh.contains(
                "ufw allow proto tcp from 172.28.5.13 to any port 2377 comment 'slipway: swarm'\n"
            ),
            "{sh}"
        );
        assert!(!sh.contains("delete"), "{sh}");
        let lines = attr_lines(&plan(&u, &section));
        assert!(has(&lines, "22/tcp: from anywhere"), "{lines:#?}");
        assert!(
            has(
                &lines,
                "2377/tcp: from 172.28.5.12, 172.28.5.13 (comment updated)"
            ),
            "{lines:#?}"
        );
    }

    #[test]
    fn refuses_to_lock_out_or_to_edit_a_damaged_block() {
        let u = manager();
        let section = probe(&host(true, &pristine())).replace("conn_port=22", "conn_port=2222");
        let o = plan(&u, &section);
        assert!(
            o.blocked
                .as_deref()
                .unwrap()
                .contains("set ssh_port = 2222"),
            "{o:?}"
        );

        let mut files = pristine();
        files[4].1 = format!("{AFTER_RULES}{BEGIN}\n*filter\n");
        let o = plan(&u, &probe(&host(true, &files)));
        assert!(
            o.blocked
                .as_deref()
                .unwrap()
                .contains("damaged slipway block"),
            "{o:?}"
        );
    }

    #[test]
    fn a_changed_published_port_rewrites_the_block_and_reloads() {
        let old = manager();
        let section = probe(&host(true, &converged(&old, &[])));
        let mut u = manager();
        u.docker_published = Some(vec![Published {
            port: "8080".into(),
            proto: Proto::Tcp,
            from: Source::Net(PEER2.into()),
        }]);
        let o = plan(&u, &section);
        let lines = attr_lines(&o);
        assert!(
            has(
                &lines,
                "published 8080/tcp: from 172.28.5.13 -> from 172.28.5.12"
            ),
            "{lines:#?}"
        );
        assert!(
            has(&lines, "22/tcp: from anywhere (unchanged)"),
            "{lines:#?}"
        );
        let sh = script(&u, &section);
        assert!(sh.trim_end().ends_with("ufw reload"), "{sh}");
        assert!(!sh.contains("ufw allow"), "{sh}");

        // Nothing published: the block still drops what comes from outside.
        u.docker_published = Some(Vec::new());
        let lines = attr_lines(&plan(&u, &section));
        assert!(
            has(&lines, "published 8080/tcp: from 172.28.5.13 -> (none)"),
            "{lines:#?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("published ports: from no other host")),
            "{lines:#?}"
        );
    }

    #[test]
    fn the_block_returns_for_docker_bridges_and_listed_sources_and_drops_the_rest() {
        let mut u = manager();
        u.docker_published = Some(vec![
            Published {
                port: "8080".into(),
                proto: Proto::Tcp,
                from: Source::Net(PEER3.into()),
            },
            Published {
                port: "53".into(),
                proto: Proto::Any,
                from: Source::Any,
            },
            Published {
                port: "443".into(),
                proto: Proto::Tcp,
                from: Source::Net("2001:db8::/32".into()),
            },
        ]);
        let v4 = u.docker_block(Family::V4).unwrap().join("\n");
        for want in [
            ":DOCKER-USER - [0:0]",
            "-A DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
            "-A DOCKER-USER -i docker0 -j RETURN",
            "-A DOCKER-USER -i br-+ -j RETURN",
            "-A DOCKER-USER -s 172.28.5.13 -p tcp -m conntrack --ctorigdstport 8080 -j RETURN",
            "-A DOCKER-USER -p tcp -m conntrack --ctorigdstport 53 -j RETURN",
            "-A DOCKER-USER -p udp -m conntrack --ctorigdstport 53 -j RETURN",
            "-A DOCKER-USER -o docker0 -j DROP",
            "-A DOCKER-USER -o br-+ -j DROP",
        ] {
            assert!(v4.contains(want), "no `{want}` in\n{v4}");
        }
        assert!(!v4.contains("2001:db8"), "{v4}");
        assert!(
            v4.starts_with(BEGIN) && v4.ends_with(&format!("COMMIT\n{END}")),
            "{v4}"
        );
        // No address ranges are let through wholesale: only the bridges, by interface.
        assert!(
            !v4.contains("172.16.0.0") && !v4.contains("10.0.0.0"),
            "{v4}"
        );
        let v6 = u.docker_block(Family::V6).unwrap().join("\n");
        assert!(
            v6.contains(
                "-A DOCKER-USER -s 2001:db8::/32 -p tcp -m conntrack --ctorigdstport 443 -j RETURN"
            ),
            "{v6}"
        );
        assert!(!v6.contains("172.28.5.13"), "{v6}");
    }

    #[test]
    fn disabling_turns_ufw_off_and_removes_the_block() {
        let mut u = manager();
        let section = probe(&host(true, &converged(&u, &[])));
        u.enabled = false;
        let o = plan(&u, &section);
        let lines = attr_lines(&o);
        assert!(has(&lines, "ufw: active -> inactive"), "{lines:#?}");
        assert!(
            has(&lines, "published 8080/tcp: from 172.28.5.13 -> (none)"),
            "{lines:#?}"
        );
        let sh = script(&u, &section);
        assert!(sh.starts_with("ufw disable\n"), "{sh}");
        assert!(sh.contains("iptables -w -F DOCKER-USER"), "{sh}");
        assert!(!sh.contains("slipway_payload"), "{sh}");
        // Off already, and no block: nothing to do.
        assert_eq!(
            plan(&u, &probe(&host(true, &pristine()))),
            Outcome::unchanged()
        );
        assert_eq!(plan(&u, &probe(&host(false, &[]))), Outcome::unchanged());
    }

    #[test]
    fn sources_and_ports_are_checked_and_written_as_ufw_writes_them() {
        assert_eq!(Source::parse("any"), Ok(Source::Any));
        assert_eq!(
            Source::parse("10.0.0.0/8"),
            Ok(Source::Net("10.0.0.0/8".into()))
        );
        assert_eq!(
            Source::parse("172.28.5.13/32"),
            Ok(Source::Net("172.28.5.13".into()))
        );
        assert_eq!(
            Source::parse("2001:DB8::1/128"),
            Ok(Source::Net("2001:db8::1".into()))
        );
        assert_eq!(
            Source::parse("2001:db8:0:0::/64"),
            Ok(Source::Net("2001:db8::/64".into()))
        );
        assert!(
            Source::parse("10.1.2.3/8")
                .unwrap_err()
                .contains("did you mean 10.0.0.0/8")
        );
        assert!(Source::parse("0.0.0.0/0").unwrap_err().contains("\"any\""));
        assert!(Source::parse("10.0.0.0/33").is_err());
        assert!(Source::parse("example.com").is_err());
        assert_eq!(parse_port("080"), Ok("80".into()));
        assert_eq!(parse_port("8000:8100"), Ok("8000:8100".into()));
        for bad in ["0", "65536", "8100:8000", "80,443", "http", "", "+80"] {
            assert!(parse_port(bad).is_err(), "{bad}");
        }
        assert!(port_covers("8000:8100", 8022) && !port_covers("22", 2222));
    }
}

//! What UFW holds, as its own files say: the probe that prints them and the
//! parsing of what it printed (the `### tuple ###` lines, the settings, and
//! slipway's block in after.rules and after6.rules).

use super::docker_user::{BEGIN, END};
use super::model::{Family, Proto, Source};
use crate::resource::Observed;
use crate::shell::q;

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
    sh.push_str("if [ -f \"$r/etc/default/ufw\" ]; then sed -n 's/^IPV6=/ipv6=/p; s/^DEFAULT_INPUT_POLICY=/input=/p; s/^DEFAULT_OUTPUT_POLICY=/output=/p; s/^IPT_SYSCTL=/sysctl=/p' \"$r/etc/default/ufw\"; fi\n");
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
pub(super) struct Tuple {
    pub(super) family: Family,
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
    pub(super) comment: Option<String>,
}

impl Tuple {
    pub(super) fn parse(family: Family, raw: &str) -> Option<Self> {
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
    pub(super) fn simple(&self) -> Option<(String, Proto, Source)> {
        let plain = self.action == "allow"
            && self.log.is_none()
            && !self.route
            && self.direction == "in"
            && self.dst == Source::Any
            && self.sport == "any"
            && self.dapp.is_none()
            && self.sapp.is_none()
            && (self.dport != "any") != (self.proto == "esp");
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

    pub(super) fn delete_command(&self) -> String {
        let words: Vec<String> = self.words().iter().map(|w| word(w)).collect();
        let route = if self.route { "route " } else { "" };
        format!("ufw {route}delete {}", words.join(" "))
    }

    /// How the plan names the rule: UFW's syntax for it.
    pub(super) fn describe(&self) -> String {
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
pub(super) struct Seen {
    pub(super) installed: bool,
    pub(super) enabled: bool,
    pub(super) ipv6: bool,
    pub(super) input: Option<String>,
    pub(super) output: Option<String>,
    /// IPT_SYSCTL: the kernel settings file UFW applies each time it starts.
    pub(super) sysctl: Option<String>,
    pub(super) tuples: Vec<Tuple>,
    pub(super) unreadable: Vec<String>,
    /// after.rules and after6.rules: whether the file exists, and slipway's block in it.
    pub(super) after: [(bool, Vec<String>); 2],
    pub(super) conn_port: Option<u16>,
}

fn unquote(v: &str) -> String {
    v.trim().trim_matches('"').to_string()
}

impl Seen {
    pub(super) fn parse(obs: &Observed<'_>) -> Self {
        let mut s = Seen {
            installed: obs.get("installed") == Some("yes"),
            enabled: obs.get("enabled").map(unquote).as_deref() == Some("yes"),
            // UFW's default when the file says nothing.
            ipv6: obs.get("ipv6").map(unquote).as_deref() != Some("no"),
            input: obs.get("input").map(unquote),
            output: obs.get("output").map(unquote),
            sysctl: obs.get("sysctl").map(unquote),
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

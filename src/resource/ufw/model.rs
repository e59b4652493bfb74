//! What the firewall is made of: protocols, families, sources and ports, the
//! rules UFW must hold and the ports published by containers, each checked
//! and written the way UFW writes them.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::shell::q;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
    /// Both: UFW writes one rule for tcp and one for udp.
    Any,
    /// IPsec's encapsulated payloads (IP protocol 50), which carry Swarm's
    /// encrypted overlay networks between nodes; no ports.
    Esp,
}

impl Proto {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            "any" => Ok(Proto::Any),
            "esp" => Ok(Proto::Esp),
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
            Proto::Esp => "esp",
        }
    }

    pub(super) fn label(self) -> &'static str {
        match self {
            Proto::Any => "tcp+udp",
            p => p.as_str(),
        }
    }

    /// The concrete protocols (iptables needs one per rule).
    pub(super) fn each(self) -> &'static [Proto] {
        match self {
            Proto::Tcp => &[Proto::Tcp],
            Proto::Udp => &[Proto::Udp],
            Proto::Any => &[Proto::Tcp, Proto::Udp],
            Proto::Esp => &[Proto::Esp],
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

    pub(super) fn ufw(&self) -> &str {
        match self {
            Source::Any => "any",
            Source::Net(n) => n,
        }
    }

    pub(super) fn label(&self) -> &str {
        match self {
            Source::Any => "anywhere",
            Source::Net(n) => n,
        }
    }

    /// From a tuple's address field.
    pub(super) fn from_tuple(field: &str) -> Self {
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

pub fn port_covers(spec: &str, port: u16) -> bool {
    let n = |s: &str| s.parse::<u16>().unwrap_or(0);
    match spec.split_once(':') {
        None => n(spec) == port,
        Some((a, b)) => (n(a)..=n(b)).contains(&port),
    }
}

/// Sorts ports numerically, ranges by their first port, and a protocol
/// without ports (ESP, port `any`) last.
fn port_order(spec: &str) -> u16 {
    spec.split(':')
        .next()
        .unwrap_or("")
        .parse()
        .unwrap_or(u16::MAX)
}

/// Orders a plan's lines by port number, then protocol.
pub(super) type PortKey = (u16, String, Proto);

pub(super) fn port_key(port: &str, proto: Proto) -> PortKey {
    (port_order(port), port.to_string(), proto)
}

/// "from anywhere", "from 10.0.0.1, 10.0.0.2"; None for nobody.
pub(super) fn from_list(set: Option<&BTreeSet<Source>>) -> Option<String> {
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
    pub(super) fn key(&self) -> (String, Proto, Source) {
        (self.port.clone(), self.proto, self.from.clone())
    }

    /// The families UFW writes this rule to.
    pub(super) fn families(&self, ipv6: bool) -> Vec<Family> {
        match self.from.family() {
            Some(f) => vec![f],
            None if ipv6 => vec![Family::V4, Family::V6],
            None => vec![Family::V4],
        }
    }

    pub(super) fn add_command(&self) -> String {
        let mut sh = String::from("ufw allow");
        if self.proto != Proto::Any {
            sh.push_str(&format!(" proto {}", self.proto.as_str()));
        }
        sh.push_str(&format!(" from {} to any", self.from.ufw()));
        if self.proto != Proto::Esp {
            sh.push_str(&format!(" port {}", self.port));
        }
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

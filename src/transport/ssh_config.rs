//! What `~/.ssh/config` says about a host alias, so an inventory can name
//! hosts the way the user's own `ssh` does. The inventory layer merges the
//! result under its own values (inventory wins).

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use ssh2_config::{ParseRule, SshConfig};

/// The settings slipway honours, as resolved for one alias.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshConfigEntry {
    pub host_name: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_files: Vec<PathBuf>,
    /// The first hop of `ProxyJump`, as written (`[user@]host[:port]` or an
    /// `ssh://` URI); parse it with [`parse_jump`]. Later hops are dropped.
    pub proxy_jump: Option<String>,
}

/// One `ProxyJump` hop, split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpHost {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

/// Resolves `alias` in the config file at `config_path`; a missing file is
/// an empty entry. `~` and relative `Include`s resolve against `$HOME`.
pub fn lookup(config_path: &Path, alias: &str) -> Result<SshConfigEntry, String> {
    lookup_with_home(config_path, alias, None)
}

/// [`lookup`] with `~` (and relative `Include`s, via `<home>/.ssh`) resolved
/// against `home` instead of `$HOME`.
pub fn lookup_with_home(
    config_path: &Path,
    alias: &str,
    home: Option<&Path>,
) -> Result<SshConfigEntry, String> {
    let file = match File::open(config_path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(SshConfigEntry::default()),
        Err(e) => return Err(format!("cannot read {}: {e}", config_path.display())),
    };
    let mut config = SshConfig::default();
    if let Some(home) = home {
        config = config.home_dir(home);
    }
    // Users' configs are full of options slipway has no use for (and newer
    // ones the crate does not know); refusing them would make the file useless.
    let rules = ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS;
    let config = config
        .parse(&mut BufReader::new(file), rules)
        .map_err(|e| format!("cannot parse {}: {e}", config_path.display()))?;
    let params = config.query(alias);

    let host_name = params
        .host_name
        .as_deref()
        .map(|h| expand_tokens(h, alias, alias, params.user.as_deref(), home));
    let real_host = host_name.clone().unwrap_or_else(|| alias.to_string());
    let identity_files = params
        .identity_file
        .unwrap_or_default()
        .iter()
        .map(|p| {
            let text = p.to_string_lossy();
            PathBuf::from(expand_tokens(
                &text,
                alias,
                &real_host,
                params.user.as_deref(),
                home,
            ))
        })
        .collect();
    let proxy_jump = params
        .proxy_jump
        .and_then(|hops| hops.into_iter().next())
        .map(|hop| hop.trim().to_string())
        // `ProxyJump none` switches off a jump set by a broader Host block.
        .filter(|hop| !hop.is_empty() && !hop.eq_ignore_ascii_case("none"));

    Ok(SshConfigEntry {
        host_name,
        user: params.user,
        port: params.port,
        identity_files,
        proxy_jump,
    })
}

/// Splits one `ProxyJump` hop: `[user@]host[:port]`, `[user@][v6addr]:port`
/// or `ssh://[user@]host[:port]`.
pub fn parse_jump(hop: &str) -> Result<JumpHost, String> {
    let bad = |why: &str| format!("bad ProxyJump hop {hop:?}: {why}");
    let rest = hop.trim();
    let rest = rest.strip_prefix("ssh://").unwrap_or(rest);
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (user, host_port) = match rest.rsplit_once('@') {
        Some((user, hp)) if !user.is_empty() => (Some(user.to_string()), hp),
        Some(_) => return Err(bad("empty user")),
        None => (None, rest),
    };
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(after.strip_prefix(':').ok_or_else(|| bad("junk after ]"))?),
            ),
        }
    } else if host_port.matches(':').count() == 1 {
        let (host, port) = host_port.split_once(':').unwrap_or((host_port, ""));
        (host, Some(port))
    } else {
        // No colon, or a bare IPv6 address without a port.
        (host_port, None)
    };
    if host.is_empty() {
        return Err(bad("empty host"));
    }
    let port = port
        .map(|p| p.parse::<u16>().map_err(|_| bad("port is not a number")))
        .transpose()?;
    Ok(JumpHost {
        user,
        host: host.to_string(),
        port,
    })
}

/// The `%` tokens of ssh_config(5) that make sense before connecting; others
/// are left as written so a confusing path shows up in the error verbatim.
fn expand_tokens(
    text: &str,
    alias: &str,
    host: &str,
    user: Option<&str>,
    home: Option<&Path>,
) -> String {
    let home = home
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("HOME").map(PathBuf::from));
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('h') => out.push_str(host),
            Some('n') => out.push_str(alias),
            Some('r') if user.is_some() => out.push_str(user.unwrap_or_default()),
            Some('d') if home.is_some() => {
                out.push_str(&home.as_deref().unwrap_or(Path::new("")).to_string_lossy())
            }
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

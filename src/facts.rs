//! What every probe reports about the host itself, before any resource.

use serde::{Deserialize, Serialize};

/// The shell that prints the host facts section.
pub const PROBE: &str = r#"printf 'now=%s\n' "$(date +%s)"
printf 'uid=%s\n' "$(id -u)"
printf 'hostname=%s\n' "$(hostname 2>/dev/null || cat /etc/hostname)"
printf 'arch=%s\n' "$(uname -m)"
printf 'kernel=%s\n' "$(uname -r)"
printf 'virt=%s\n' "$(systemd-detect-virt -c 2>/dev/null || echo none)"
printf 'systemd=%s\n' "$( [ -d /run/systemd/system ] && echo yes || echo no)"
if [ -r /etc/os-release ]; then sed -n 's/^\(ID\|VERSION_ID\|VERSION_CODENAME\|PRETTY_NAME\)=/os_&/p' /etc/os-release; fi
"#;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HostFacts {
    /// Seconds since the epoch, on the host's clock.
    pub now: i64,
    pub uid: u32,
    pub hostname: String,
    pub arch: String,
    pub kernel: String,
    /// `ubuntu`, `debian`, ...
    pub os_id: String,
    pub os_version: String,
    pub os_codename: String,
    pub os_name: String,
    /// The container technology (`docker`, `lxc`, ...), if the host is a container.
    pub container: Option<String>,
    pub systemd: bool,
}

impl HostFacts {
    pub fn parse(section: &str) -> Self {
        let mut f = HostFacts::default();
        for line in section.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let v = v.trim().trim_matches('"').to_string();
            match k {
                "now" => f.now = v.parse().unwrap_or(0),
                "uid" => f.uid = v.parse().unwrap_or(u32::MAX),
                "hostname" => f.hostname = v,
                "arch" => f.arch = v,
                "kernel" => f.kernel = v,
                "virt" => f.container = (v != "none" && !v.is_empty()).then_some(v),
                "systemd" => f.systemd = v == "yes",
                "os_ID" => f.os_id = v,
                "os_VERSION_ID" => f.os_version = v,
                "os_VERSION_CODENAME" => f.os_codename = v,
                "os_PRETTY_NAME" => f.os_name = v,
                _ => {}
            }
        }
        f
    }

    pub fn is_ubuntu(&self) -> bool {
        self.os_id == "ubuntu"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ubuntu_noble_in_a_vm() {
        let f = HostFacts::parse(
            "now=1700000000\nuid=0\nhostname=m1\narch=x86_64\nkernel=6.8.0-31-generic\nvirt=none\nsystemd=yes\n\
             os_ID=ubuntu\nos_VERSION_ID=\"24.04\"\nos_VERSION_CODENAME=noble\nos_PRETTY_NAME=\"Ubuntu 24.04 LTS\"\n",
        );
        assert!(f.is_ubuntu());
        assert_eq!(f.os_version, "24.04");
        assert_eq!(f.os_codename, "noble");
        assert_eq!(f.container, None);
        assert!(f.systemd);
    }

    #[test]
    fn parses_debian_container() {
        let f = HostFacts::parse("virt=docker\nos_ID=debian\nos_VERSION_ID=\"12\"\n");
        assert_eq!(f.container.as_deref(), Some("docker"));
        assert_eq!(f.os_id, "debian");
    }
}

//! Host state that many resources ask about, read once per probe: one
//! `dpkg-query` for every package and one `systemctl show` for every unit of
//! the host's resources (see [`Resource::packages`] and [`Resource::units`]),
//! rather than a fork of each per resource. Each resource's section then gets
//! the lines its own query used to print, so plans and fingerprints read them
//! as before.

use crate::resource::Resource;
use crate::shell::q;

/// Section names of the shared answers (resource sections are numbered).
pub const PACKAGES: &str = "packages";
pub const UNITS: &str = "units";

/// The systemd properties read, and the key each becomes in a section.
const UNIT_KEYS: [(&str, &str); 3] = [
    ("LoadState", "load"),
    ("ActiveState", "active"),
    ("UnitFileState", "enabled"),
];

/// Every name the resources ask about, once, in first-asked order.
pub struct Wanted {
    pub packages: Vec<String>,
    pub units: Vec<String>,
}

impl Wanted {
    pub fn of(resources: &[&dyn Resource]) -> Self {
        let mut w = Wanted {
            packages: Vec::new(),
            units: Vec::new(),
        };
        for r in resources {
            add(&mut w.packages, r.packages());
            add(&mut w.units, r.units());
        }
        w
    }

    /// The shell printing the shared sections' bodies, as `(section, shell)`.
    pub fn queries(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if !self.packages.is_empty() {
            // The architecture first, to match `name:arch` requests; the rest is the
            // `pkg=` line a section gets. dpkg prints in its own (name) order.
            out.push((
                PACKAGES,
                format!(
                    "dpkg-query -W -f='${{Architecture}} pkg=${{Package}} ${{db:Status-Abbrev}} ${{Version}}\\n' {}",
                    words(&self.packages)
                ),
            ));
        }
        if !self.units.is_empty() {
            let props: Vec<String> = UNIT_KEYS.iter().map(|(p, _)| format!("-p {p}")).collect();
            out.push((
                UNITS,
                format!("systemctl show {} {}", props.join(" "), words(&self.units)),
            ));
        }
        out
    }

    /// The lines `r`'s section starts with: its packages' `pkg=` lines in
    /// dpkg's order, then for each of its units `load=`, `active=` and
    /// `enabled=` lines in systemctl's order.
    pub fn lines_for(&self, r: &dyn Resource, packages: &str, units: &str) -> String {
        let mut out = String::new();
        let wanted = r.packages();
        for row in packages.lines() {
            let Some((arch, line)) = row.split_once(' ') else {
                continue;
            };
            let name = line
                .strip_prefix("pkg=")
                .and_then(|l| l.split(' ').next())
                .unwrap_or_default();
            let asked = |w: &String| match w.split_once(':') {
                Some((n, a)) => n == name && a == arch,
                None => w == name,
            };
            if wanted.iter().any(asked) {
                out.push_str(line);
                out.push('\n');
            }
        }
        // systemctl prints one block per unit, in the order asked, and stops at the
        // first name it rejects: units after it get no lines, as if their own query
        // had failed.
        let blocks: Vec<&str> = units
            .split("\n\n")
            .filter(|b| !b.trim().is_empty())
            .collect();
        for unit in r.units() {
            let block = self
                .units
                .iter()
                .position(|u| u == unit)
                .and_then(|i| blocks.get(i));
            for line in block.into_iter().flat_map(|b| b.lines()) {
                let renamed = UNIT_KEYS.iter().find_map(|(prop, key)| {
                    line.strip_prefix(prop)
                        .and_then(|v| v.strip_prefix('='))
                        .map(|v| format!("{key}={v}\n"))
                });
                out.push_str(&renamed.unwrap_or_else(|| format!("{line}\n")));
            }
        }
        out
    }
}

fn add(into: &mut Vec<String>, names: &[String]) {
    for n in names {
        if !into.contains(n) {
            into.push(n.clone());
        }
    }
}

fn words(names: &[String]) -> String {
    names.iter().map(|n| q(n)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::package::Package;
    use crate::resource::service::Service;

    /// What `dpkg-query -W -f='${Architecture} pkg=...'` printed on an Ubuntu 24.04
    /// host asked for `curl jq sudo libc6:amd64 nosuch`: its order, `un` for a
    /// package it knows but is not installed (empty version), nothing for `nosuch`.
    const DPKG: &str = "amd64 pkg=curl ii  8.5.0-2ubuntu10.6\n\
                        amd64 pkg=jq un  \n\
                        amd64 pkg=libc6 ii  2.39-0ubuntu8.3\n\
                        i386 pkg=libc6 ii  2.39-0ubuntu8.3\n\
                        amd64 pkg=sudo ii  1.9.15p5-3ubuntu5\n";

    /// `systemctl show -p LoadState -p ActiveState -p UnitFileState docker nosuch fail2ban`.
    const SHOW: &str = "LoadState=loaded\nActiveState=active\nUnitFileState=enabled\n\n\
                        LoadState=not-found\nActiveState=inactive\nUnitFileState=\n\n\
                        LoadState=loaded\nActiveState=failed\nUnitFileState=disabled\n";

    #[test]
    fn each_name_is_asked_once_in_one_query_per_tool() {
        let rs: Vec<Box<dyn Resource>> = vec![
            Box::new(Package::present(&["curl", "jq"])),
            Box::new(Service::running("docker")),
            Box::new(Package::present(&["jq", "sudo"])),
            Box::new(Service::running("docker")),
        ];
        let refs: Vec<&dyn Resource> = rs.iter().map(|r| r.as_ref()).collect();
        let w = Wanted::of(&refs);
        assert_eq!(w.packages, ["curl", "jq", "sudo"]);
        assert_eq!(w.units, ["docker"]);
        let q = w.queries();
        assert_eq!(q.len(), 2);
        assert!(q[0].1.starts_with("dpkg-query -W ") && q[0].1.ends_with(" 'curl' 'jq' 'sudo'"));
        assert_eq!(
            q[1].1,
            "systemctl show -p LoadState -p ActiveState -p UnitFileState 'docker'"
        );
        assert!(Wanted::of(&[]).queries().is_empty());
    }

    #[test]
    fn a_section_gets_the_lines_its_own_query_printed() {
        let jq_sudo = Package::present(&["sudo", "jq", "nosuch"]);
        let libc = Package::present(&["libc6:amd64"]);
        let (docker, nosuch, f2b) = (
            Service::running("docker"),
            Service::running("nosuch"),
            Service::running("fail2ban"),
        );
        let refs: Vec<&dyn Resource> = vec![&jq_sudo, &libc, &docker, &nosuch, &f2b];
        let w = Wanted::of(&refs);
        let lines = |r: &dyn Resource| w.lines_for(r, DPKG, SHOW);
        // dpkg's order, not the resource's.
        assert_eq!(
            lines(&jq_sudo),
            "pkg=jq un  \npkg=sudo ii  1.9.15p5-3ubuntu5\n"
        );
        assert_eq!(lines(&libc), "pkg=libc6 ii  2.39-0ubuntu8.3\n");
        assert_eq!(
            lines(&docker),
            "load=loaded\nactive=active\nenabled=enabled\n"
        );
        assert_eq!(
            lines(&nosuch),
            "load=not-found\nactive=inactive\nenabled=\n"
        );
        assert_eq!(
            lines(&f2b),
            "load=loaded\nactive=failed\nenabled=disabled\n"
        );
    }

    #[test]
    fn units_after_one_systemctl_rejected_get_no_lines() {
        let (a, b) = (Service::running("docker"), Service::running("nosuch"));
        let refs: Vec<&dyn Resource> = vec![&a, &b];
        let w = Wanted::of(&refs);
        let first = "LoadState=loaded\nActiveState=active\nUnitFileState=enabled\n";
        assert_eq!(w.lines_for(&b, "", first), "");
        assert_eq!(w.lines_for(&b, "", ""), "");
        assert!(w.lines_for(&a, "", first).starts_with("load=loaded\n"));
    }
}

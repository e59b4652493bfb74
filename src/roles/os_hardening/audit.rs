//! auditd with slipway's CIS rule set (CIS 6.2.1.1, 6.2.1.2, 6.2.3.1, 6.2.3.4,
//! 6.2.3.8, 6.2.3.19, 6.2.3.21, 6.2.4.5). The kernel refuses audit rules from a
//! container (audit netlink answers only the initial namespaces): there, the
//! package and the rules file are managed, auditd and loading are skipped.

use crate::plan::change::Change;
use crate::resource::command::Command;
use crate::resource::package::Package;
use crate::resource::service::Service;
use crate::resource::{Managed, Observed, Outcome, Resource};
use crate::shell::Script;

pub const RULES_PATH: &str = "/etc/audit/rules.d/50-slipway-cis.rules";

/// Every rule, by what it watches. Syscall rules come for both ABIs, as CIS
/// asks: a 32-bit program would otherwise change the clock unseen.
pub fn rules() -> String {
    let mut s = format!("{}\n", super::super::MANAGED);
    let mut watch = |title: &str, key: &str, perm: &str, paths: &[&str]| {
        s.push_str(&format!("\n## {title}\n"));
        for p in paths {
            s.push_str(&format!("-w {p} -p {perm} -k {key}\n"));
        }
    };
    watch(
        "CIS 6.2.3.8: user and group information",
        "identity",
        "wa",
        &[
            "/etc/group",
            "/etc/passwd",
            "/etc/gshadow",
            "/etc/shadow",
            "/etc/security/opasswd",
        ],
    );
    watch(
        "CIS 6.2.3.1: sudoers (the scope of system administration)",
        "scope",
        "wa",
        &["/etc/sudoers", "/etc/sudoers.d"],
    );
    watch(
        "sshd configuration (complements CIS 5.1.1)",
        "sshd",
        "wa",
        &["/etc/ssh/sshd_config", "/etc/ssh/sshd_config.d"],
    );
    s.push_str("\n## CIS 6.2.3.4: date and time\n");
    for arch in ["b64", "b32"] {
        s.push_str(&format!(
            "-a always,exit -F arch={arch} -S adjtimex,settimeofday -k time-change\n\
             -a always,exit -F arch={arch} -S clock_settime -F a0=0x0 -k time-change\n"
        ));
    }
    s.push_str("-w /etc/localtime -p wa -k time-change\n");
    s.push_str("\n## CIS 6.2.3.19: kernel modules (insmod, rmmod, modprobe are all kmod)\n");
    for arch in ["b64", "b32"] {
        s.push_str(&format!(
            "-a always,exit -F arch={arch} -S init_module,finit_module,delete_module -k kernel_modules\n"
        ));
    }
    s.push_str("-w /usr/bin/kmod -p x -k kernel_modules\n");
    s
}

/// Accepts only the rule forms [`rules`] writes: a malformed file never
/// reaches auditd (auditctl has no dry run; loading is checked after).
const VALIDATE: &str = "! grep -Ev '^(|#.*|-w /[^ ]+ -p [rwxa]+ -k [a-z_-]+|-a always,exit( -F [a-z0-9]+=[^ ]+| -S [a-z_,]+)+ -k [a-z_-]+)$' {}";

/// `augenrules --check` says "No change" once the rules in force (the
/// compiled /etc/audit/audit.rules) are those of rules.d (CIS 6.2.3.21).
const LOADED: &str = "augenrules --check 2>/dev/null | grep -q 'No change'";

pub fn resources() -> Vec<Box<dyn Resource>> {
    let mut file = super::super::config_file(RULES_PATH, rules(), 0o640);
    file.validate = Some(VALIDATE.into());
    let load = Command {
        name: "load the audit rules".into(),
        run: format!("augenrules --load\n{LOADED}"),
        creates: None,
        unless: Some(LOADED.into()),
        notify: Vec::new(),
    };
    // The rules come first, so auditd's first start (by the package) loads them.
    vec![
        Box::new(file),
        Box::new(Package::present(&["auditd"])),
        Box::new(Service {
            skip_in_container: true,
            ..Service::running("auditd")
        }),
        Box::new(NotInContainer {
            inner: load,
            why: "the kernel refuses audit rules",
        }),
    ]
}

/// A resource that cannot work inside a container: reported as skipped there
/// with the reason, like read-only kernel settings.
#[derive(Debug)]
pub struct NotInContainer<R> {
    pub inner: R,
    /// What stops it, read before "inside a container (...)".
    pub why: &'static str,
}

impl<R: Resource> Resource for NotInContainer<R> {
    fn id(&self) -> String {
        self.inner.id()
    }

    fn probe(&self) -> String {
        self.inner.probe()
    }

    fn plan(&self, obs: &Observed<'_>) -> Outcome {
        match &obs.facts.container {
            Some(c) => Outcome::skipped(format!(
                "{}: {} inside a container ({c})",
                self.inner.id(),
                self.why
            )),
            None => self.inner.plan(obs),
        }
    }

    fn apply(&self, change: &Change, obs: &Observed<'_>) -> Script {
        self.inner.apply(change, obs)
    }

    fn converges(&self) -> bool {
        self.inner.converges()
    }

    fn manages(&self) -> Vec<Managed> {
        self.inner.manages()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::HostFacts;

    #[test]
    fn the_rules_cover_identity_sudoers_sshd_time_and_modules() {
        let r = rules();
        for line in [
            "-w /etc/security/opasswd -p wa -k identity",
            "-w /etc/sudoers.d -p wa -k scope",
            "-w /etc/ssh/sshd_config.d -p wa -k sshd",
            "-a always,exit -F arch=b32 -S clock_settime -F a0=0x0 -k time-change",
            "-w /etc/localtime -p wa -k time-change",
            "-a always,exit -F arch=b64 -S init_module,finit_module,delete_module -k kernel_modules",
            "-w /usr/bin/kmod -p x -k kernel_modules",
        ] {
            assert!(r.lines().any(|l| l == line), "{line}\n{r}");
        }
    }

    #[test]
    fn the_load_is_skipped_in_a_container_and_planned_elsewhere() {
        let load = resources().pop().unwrap();
        let vm = HostFacts::default();
        let o = load.plan(&Observed::new("unless=failed\n", &vm));
        assert!(o.change.is_some() && o.skipped.is_empty(), "{o:?}");
        assert_eq!(
            load.plan(&Observed::new("unless=ok\n", &vm)),
            Outcome::unchanged()
        );
        let docker = HostFacts {
            container: Some("docker".into()),
            ..HostFacts::default()
        };
        let o = load.plan(&Observed::new("unless=failed\n", &docker));
        assert!(o.change.is_none(), "{o:?}");
        assert_eq!(
            o.skipped,
            [
                "command:load the audit rules: the kernel refuses audit rules inside a container (docker)"
            ]
        );
    }
}

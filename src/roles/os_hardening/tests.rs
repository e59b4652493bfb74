use serde_json::json;

use super::*;
use crate::roles::lookup;
use crate::roles::tests::{inventory, resources};

fn ids(top: serde_json::Value) -> Vec<String> {
    let role = lookup("os_hardening").unwrap();
    resources(role, &inventory(""), top)
        .unwrap()
        .iter()
        .map(|r| r.id())
        .collect()
}

fn content(top: serde_json::Value, path: &str) -> String {
    let role = lookup("os_hardening").unwrap();
    let all = resources(role, &inventory(""), top).unwrap();
    let r = all
        .iter()
        .find_map(|r| r.content().filter(|c| c.path == path))
        .unwrap_or_else(|| panic!("no {path}"));
    String::from_utf8(r.bytes.to_vec()).unwrap()
}

#[test]
fn every_control_is_on_by_default_in_order() {
    let ids = ids(json!({}));
    assert_eq!(
        ids,
        [
            "command:install pending security updates",
            &format!("file:{UPDATES_MARKER}"),
            "file:/etc/login.defs",
            "file:/etc/security/limits.d/60-slipway-coredump.conf",
            "file:/etc/systemd/coredump.conf.d/60-slipway.conf",
            "file:/etc/modprobe.d/60-slipway-filesystems.conf",
            "file:/etc/modprobe.d/60-slipway-protocols.conf",
            "file:/etc/issue",
            "file:/etc/issue.net",
            "command:mode of /etc/crontab",
            "directory:/etc/cron.hourly",
            "directory:/etc/cron.daily",
            "directory:/etc/cron.weekly",
            "directory:/etc/cron.monthly",
            "directory:/etc/cron.d",
            "file:/etc/cron.allow",
            "file:/etc/cron.deny",
            "file:/etc/at.allow",
            "file:/etc/at.deny",
            "command:modes of account files and sshd host keys",
            "package:libpam-tmpdir",
            &format!("file:{}", audit::RULES_PATH),
            "package:auditd",
            "service:auditd",
            "command:load the audit rules",
        ]
    );
}

#[test]
fn each_control_switches_off_alone() {
    let all = ids(json!({})).len();
    for (var, gone) in [
        ("os_hardening_auditd", 4),
        ("os_hardening_login_defs", 1),
        ("os_hardening_core_dumps", 2),
        ("os_hardening_modules", 2),
        ("os_hardening_banners", 2),
        ("os_hardening_cron", 10),
        ("os_hardening_file_permissions", 1),
        ("os_hardening_pam_tmpdir", 1),
        ("os_hardening_security_updates", 2),
    ] {
        assert_eq!(ids(json!({ var: false })).len(), all - gone, "{var}");
    }
    // An empty list leaves its file out.
    let ids = ids(json!({"os_hardening_protocols": []}));
    assert!(!ids.iter().any(|i| i.contains("protocols")), "{ids:?}");
}

#[test]
fn modules_fail_to_load_and_are_blacklisted() {
    let fs = content(json!({}), "/etc/modprobe.d/60-slipway-filesystems.conf");
    assert!(fs.starts_with(MANAGED), "{fs}");
    for m in ["cramfs", "usb-storage", "udf"] {
        assert!(
            fs.contains(&format!("install {m} /bin/false\nblacklist {m}\n")),
            "{fs}"
        );
    }
    assert!(!fs.contains("squashfs") && !fs.contains("overlay"), "{fs}");
    let net = content(
        json!({"os_hardening_protocols": ["sctp"]}),
        "/etc/modprobe.d/60-slipway-protocols.conf",
    );
    assert!(
        net.ends_with("install sctp /bin/false\nblacklist sctp\n"),
        "{net}"
    );
    let role = lookup("os_hardening").unwrap();
    let e = resources(
        role,
        &inventory(""),
        json!({"os_hardening_filesystems": ["a b"]}),
    )
    .unwrap_err();
    assert!(
        e.message()
            .contains("os_hardening_filesystems: `a b` is not a kernel module name"),
        "{}",
        e.message()
    );
}

#[test]
fn core_dumps_are_off_for_limits_and_systemd() {
    let limits = content(json!({}), "/etc/security/limits.d/60-slipway-coredump.conf");
    assert!(limits.ends_with("* hard core 0\n"), "{limits}");
    let sd = content(json!({}), "/etc/systemd/coredump.conf.d/60-slipway.conf");
    assert!(
        sd.ends_with("[Coredump]\nStorage=none\nProcessSizeMax=0\n"),
        "{sd}"
    );
}

#[test]
fn banners_carry_no_os_details() {
    let text = "Authorized access only.\n";
    assert_eq!(banner(text).unwrap(), text);
    let issue = content(
        json!({"os_hardening_banner": "Private system"}),
        "/etc/issue.net",
    );
    assert_eq!(issue, "Private system\n");
    assert!(banner("Ubuntu \\r").unwrap_err().contains("`\\r`"));
    assert!(banner("  \n").is_err());
    let role = lookup("os_hardening").unwrap();
    let inv = inventory("os_hardening_banner = \"Welcome to \\\\v\"");
    let e = resources(role, &inv, json!({})).unwrap_err();
    assert!(e.message().starts_with("i.toml:2:"), "{}", e.message());
}

#[test]
fn login_defs_keys_follow_the_variables() {
    let v = Vars {
        os_hardening_pass_max_days: 90,
        ..Vars::default()
    };
    let defs = login_defs(&v).unwrap();
    let keys: Vec<String> = defs.keys.iter().map(|(k, v)| format!("{k} {v}")).collect();
    assert_eq!(
        keys,
        [
            "UMASK 027",
            "PASS_MAX_DAYS 90",
            "PASS_MIN_DAYS 1",
            "PASS_WARN_AGE 7",
            "ENCRYPT_METHOD SHA512",
            "SHA_CRYPT_MIN_ROUNDS 65536",
            "SHA_CRYPT_MAX_ROUNDS 65536"
        ]
    );
    for bad in ["27", "0x7", "078", "027; id"] {
        let v = Vars {
            os_hardening_umask: bad.into(),
            ..Vars::default()
        };
        assert!(login_defs(&v).is_err(), "{bad}");
    }
}

#[test]
fn permissions_touch_only_files_that_exist() {
    let c = permissions("x", &[("/etc/shadow /etc/shadow-", 0o640, "shadow")]);
    let check = c.unless.unwrap();
    assert!(
        check.contains("for f in /etc/shadow /etc/shadow-; do [ ! -e \"$f\" ] || [ \"$(stat -c %a:%U:%G \"$f\")\" = 640:root:shadow ] || exit 1; done"),
        "{check}"
    );
    assert!(
        c.run
            .contains("chown root:shadow \"$f\"; chmod 0640 \"$f\""),
        "{}",
        c.run
    );
}

#[test]
fn security_updates_stop_asking_apt_once_the_marker_exists() {
    let r = security_updates();
    let probe = r[0].probe();
    // The marker short-circuits the apt query.
    assert!(
        probe.contains(&format!(
            "[ -e {UPDATES_MARKER} ] || {{ ls /var/lib/apt/lists/"
        )),
        "{probe}"
    );
    assert!(
        !probe.contains("apt-get update") && !probe.contains("apt-get -q update"),
        "{probe}"
    );
    assert_eq!(r[1].id(), format!("file:{UPDATES_MARKER}"));
}

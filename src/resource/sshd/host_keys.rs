//! The host keys and Diffie-Hellman moduli sshd serves: ed25519, and RSA of
//! [`RSA_BITS`], nothing else (ECDSA uses NIST curves, DSA is broken, shorter
//! RSA falls below current guidance), and group-exchange moduli of 3072 bits
//! and more. Weaker keys are replaced once; the new public keys are printed
//! after [`MARK`] so that slipway records them in its known_hosts over the
//! connection that is still open (see `engine::host_keys`).

use super::super::Observed;
use crate::plan::change::{Attr, Change};

pub const RSA_BITS: u32 = 4096;
/// `/etc/ssh/moduli` gives each modulus' size minus one (column 5).
const MIN_MODULUS_FIELD: u32 = 3071;
/// Prefixes each public key the apply step reports, as `TYPE BASE64`.
pub const MARK: &str = "@@slipway-hostkey ";
/// Names of the attrs a change gets from [`attrs`].
const KEY_ATTR: &str = "host key ";
const MODULI_ATTR: &str = "DH moduli under 3072 bits";

/// Shell printing `hostkey=TYPE BITS` per host key, and how many weak moduli there are.
pub const PROBE: &str = "for f in /etc/ssh/ssh_host_*_key; do [ -f \"$f\" ] || continue; t=${f#/etc/ssh/ssh_host_}; \
printf 'hostkey=%s %s\\n' \"${t%_key}\" \"$(ssh-keygen -lf \"$f\" 2>/dev/null | cut -d' ' -f1)\"; done\n\
printf 'weak_moduli=%s\\n' \"$(awk '!/^#/ && NF >= 7 && $5 < 3071' /etc/ssh/moduli 2>/dev/null | wc -l)\"\n";

/// What must change about the host keys and moduli, from the probe's lines.
pub fn attrs(obs: &Observed<'_>) -> Vec<Attr> {
    let keys: Vec<(&str, u32)> = obs
        .all("hostkey")
        .into_iter()
        .filter_map(|l| {
            let (t, bits) = l.split_once(' ')?;
            Some((t, bits.trim().parse().unwrap_or(0)))
        })
        .collect();
    let mut attrs = Vec::new();
    for (t, bits) in &keys {
        let name = format!("{KEY_ATTR}{t}");
        let had = Some(format!("{bits} bits"));
        match *t {
            "ed25519" => {}
            "rsa" if *bits >= RSA_BITS => {}
            "rsa" => attrs.push(Attr::new(&name, had, Some(regenerated()))),
            _ => attrs.push(Attr::new(&name, had, Some("removed"))),
        }
    }
    for want in ["ed25519", "rsa"] {
        if !keys.iter().any(|(t, _)| *t == want) {
            let bits = if want == "rsa" { RSA_BITS } else { 256 };
            attrs.push(Attr::new(
                &format!("{KEY_ATTR}{want}"),
                None::<String>,
                Some(format!("{bits} bits, generated")),
            ));
        }
    }
    let weak: u32 = obs
        .get("weak_moduli")
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    if weak > 0 {
        attrs.push(Attr::new(MODULI_ATTR, Some(weak), Some(0)));
    }
    attrs
}

fn regenerated() -> String {
    format!("{RSA_BITS} bits, regenerated")
}

/// The shell that makes the host keys and moduli right, or nothing when the
/// change does not touch them. Every key is written beside its final name
/// and renamed into place, so sshd never reads half a key.
pub fn apply(change: &Change) -> Option<String> {
    let keys = change.attrs.iter().any(|a| a.name.starts_with(KEY_ATTR));
    let moduli = change.attrs.iter().any(|a| a.name == MODULI_ATTR);
    let mut s = String::new();
    if keys {
        s.push_str(&format!(
            "(cd /etc/ssh\n\
             for f in ssh_host_*_key; do [ -f \"$f\" ] || continue; t=${{f#ssh_host_}}; t=${{t%_key}}\n\
             \x20 case $t in ed25519) ;; rsa) [ \"$(ssh-keygen -lf \"$f\" | cut -d' ' -f1)\" -ge {RSA_BITS} ] || rm -f \"$f\" \"$f.pub\" ;; *) rm -f \"$f\" \"$f.pub\" ;; esac\n\
             done\n\
             for t in ed25519 rsa; do\n\
             \x20 [ -f ssh_host_${{t}}_key ] && continue\n\
             \x20 rm -f .slipway-key .slipway-key.pub\n\
             \x20 b=; [ $t = rsa ] && b=\"-b {RSA_BITS}\"\n\
             \x20 ssh-keygen -q -t $t $b -N '' -C \"root@$(hostname)\" -f .slipway-key\n\
             \x20 mv .slipway-key.pub ssh_host_${{t}}_key.pub; mv .slipway-key ssh_host_${{t}}_key\n\
             done)\n"
        ));
    }
    if moduli {
        s.push_str(&format!(
            "m=$(mktemp /etc/ssh/.moduli.XXXXXX); awk '/^#/ || NF < 7 || $5 >= {MIN_MODULUS_FIELD}' /etc/ssh/moduli > \"$m\"\n\
             chmod 644 \"$m\"; mv \"$m\" /etc/ssh/moduli\n"
        ));
    }
    (keys || moduli).then_some(s)
}

/// Printed once sshd serves the new keys: every public host key, for slipway to record.
pub fn report() -> String {
    format!(
        "for f in /etc/ssh/ssh_host_*_key.pub; do printf '{MARK}%s\\n' \"$(cut -d' ' -f1,2 \"$f\")\"; done"
    )
}

/// Whether `change` replaces host keys (and so reports them).
pub fn changes_keys(change: &Change) -> bool {
    change.attrs.iter().any(|a| a.name.starts_with(KEY_ATTR))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::HostFacts;
    use crate::plan::change::Action;

    #[test]
    fn a_fresh_host_loses_ecdsa_and_weak_rsa_and_moduli() {
        let facts = HostFacts::default();
        let obs = Observed::new(
            "hostkey=ecdsa 256\nhostkey=ed25519 256\nhostkey=rsa 3072\nweak_moduli=71\n",
            &facts,
        );
        let a = attrs(&obs);
        assert_eq!(
            a,
            vec![
                Attr::new("host key ecdsa", Some("256 bits"), Some("removed")),
                Attr::new(
                    "host key rsa",
                    Some("3072 bits"),
                    Some("4096 bits, regenerated")
                ),
                Attr::new(MODULI_ATTR, Some(71), Some(0)),
            ]
        );
        let change = Change::new("sshd:x".into(), Action::Update, "x").with_attrs(a);
        let sh = apply(&change).unwrap();
        assert!(sh.contains("b=\"-b 4096\""), "{sh}");
        assert!(sh.contains("$5 >= 3071"), "{sh}");
        assert!(changes_keys(&change));
    }

    #[test]
    fn hardened_keys_need_nothing_and_missing_ones_are_generated() {
        let facts = HostFacts::default();
        let done = Observed::new(
            "hostkey=ed25519 256\nhostkey=rsa 4096\nweak_moduli=0\n",
            &facts,
        );
        assert_eq!(attrs(&done), vec![]);
        let change = Change::new("sshd:x".into(), Action::Update, "x");
        assert_eq!(apply(&change), None);
        let bare = Observed::new("weak_moduli=0\n", &facts);
        let names: Vec<String> = attrs(&bare).into_iter().map(|a| a.name).collect();
        assert_eq!(names, ["host key ed25519", "host key rsa"]);
    }
}

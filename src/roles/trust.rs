//! Extra CA certificates: checked when the variables are read, so a bad
//! certificate never reaches a host, then installed where the system
//! (`ca_certificates`, base role) or Docker (`docker_registries`) reads them.

use base64::Engine as _;

use super::{RoleContext, config_file};
use crate::diag::InputResult;
use crate::resource::Resource;
use crate::resource::command::Command;
use crate::shell::q;

/// Where update-ca-certificates takes local certificates from.
const LOCAL_DIR: &str = "/usr/local/share/ca-certificates";
/// The bundle update-ca-certificates builds, which TLS clients read.
const BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// One PEM certificate: its text as written to hosts (one trailing newline,
/// no carriage returns), and a line of it that identifies it in a bundle.
pub struct Certificate {
    pub text: String,
    /// The last longest line of its base64 body: the signature's end, which
    /// no other certificate shares.
    pub marker: String,
}

/// Checks that `pem` is exactly one `CERTIFICATE` block whose body is base64
/// of a DER SEQUENCE (the certificate) that opens with another SEQUENCE (the
/// signed part) and whose length is the body's.
pub fn parse(pem: &str) -> Result<Certificate, String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let lines: Vec<&str> = pem
        .trim()
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .collect();
    let [first, body @ .., last] = &lines[..] else {
        return Err(format!("expected a PEM certificate: {BEGIN} ... {END}"));
    };
    if *first != BEGIN || *last != END {
        return Err(format!(
            "expected exactly one PEM certificate, from {BEGIN} to {END}"
        ));
    }
    if body.iter().any(|l| l.starts_with("-----")) {
        return Err("expected exactly one certificate: give each its own entry".into());
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.concat())
        .map_err(|e| format!("the certificate's body is not base64: {e}"))?;
    let outer = der_sequence(&der).filter(|(_, len)| *len == der.len());
    let inner = outer.and_then(|(start, _)| der_sequence(&der[start..]));
    if inner.is_none() {
        return Err("the certificate's body is not a DER-encoded X.509 certificate".into());
    }
    let longest = body.iter().map(|l| l.len()).max().unwrap_or_default();
    let marker = body.iter().rev().find(|l| l.len() == longest);
    Ok(Certificate {
        text: format!("{}\n", lines.join("\n")),
        marker: marker.map(|m| m.to_string()).unwrap_or_default(),
    })
}

/// A DER SEQUENCE at the start of `der`: where its content starts and the
/// whole element's length.
fn der_sequence(der: &[u8]) -> Option<(usize, usize)> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    if tag != 0x30 {
        return None;
    }
    let (header, len) = if first < 0x80 {
        (2, usize::from(first))
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| acc << 8 | usize::from(*b));
        (2 + n, len)
    };
    (header + len <= der.len()).then_some((header, header + len))
}

/// The certificate a variable holds, or an error pointing at it (`path` as in
/// [`RoleContext::var_error`]).
pub fn certificate(ctx: &RoleContext<'_>, path: &str, pem: &str) -> InputResult<Certificate> {
    parse(pem).map_err(|why| {
        ctx.var_error(
            path,
            format!("role variable `{path}` on {}: {why}", ctx.host.name),
        )
    })
}

/// `ca_certificates`: each certificate in /usr/local/share/ca-certificates,
/// then update-ca-certificates whenever the bundle lacks one of them or a
/// certificate slipway installed earlier is no longer wanted. That check runs
/// in the probe, so removals cost no extra round trip either.
pub fn system_ca(
    ctx: &RoleContext<'_>,
    certs: &std::collections::BTreeMap<String, String>,
) -> InputResult<Vec<Box<dyn Resource>>> {
    let mut out: Vec<Box<dyn Resource>> = Vec::new();
    let mut keep = Vec::new();
    let mut in_bundle = Vec::new();
    for (name, pem) in certs {
        let path = format!("ca_certificates.{name}");
        let ok = !name.is_empty()
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !ok {
            return Err(ctx.var_error(
                &path,
                format!(
                    "role variable `ca_certificates` on {}: `{name}` names a file: letters, digits, `.`, `_` and `-` only",
                    ctx.host.name
                ),
            ));
        }
        let cert = certificate(ctx, &path, pem)?;
        let file = format!("{LOCAL_DIR}/slipway-{name}.crt");
        in_bundle.push(format!("grep -qxF {} {BUNDLE}", q(&cert.marker)));
        keep.push(q(&file));
        out.push(Box::new(config_file(&file, cert.text, 0o644)));
    }
    // A pattern that matches no file stays itself in sh: `[ -e ]` skips it.
    let unwanted = format!(
        "for f in {LOCAL_DIR}/slipway-*.crt; do case \"$f\" in {}) ;; *) [ ! -e \"$f\" ] || ",
        if keep.is_empty() {
            "''".to_string()
        } else {
            keep.join("|")
        }
    );
    let mut check = format!(
        "{unwanted}exit 1 ;; esac; done\n\
         for l in /etc/ssl/certs/slipway-*.pem; do [ ! -L \"$l\" ] || [ -e \"$l\" ] || exit 1; done\n"
    );
    check.push_str(&in_bundle.join(" && "));
    out.push(Box::new(Command {
        name: "update the system's CA certificates".into(),
        // update-ca-certificates leaves the links to removed files behind
        // (slipway-NAME.pem, and the hash link to that).
        run: format!(
            "{unwanted}rm -f \"$f\" ;; esac; done\n\
             update-ca-certificates\n\
             find /etc/ssl/certs -maxdepth 1 -xtype l -lname '*slipway-*' -delete"
        ),
        creates: None,
        unless: Some(check),
        notify: Vec::new(),
    }));
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A self-signed certificate (CN=slipway test CA), as `openssl req -x509` wrote it.
    pub const TEST_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBiTCCAS+gAwIBAgIUeytDMEfn6PvSggzl7B5Ii3vlg+4wCgYIKoZIzj0EAwIw
GjEYMBYGA1UEAwwPc2xpcHdheSB0ZXN0IENBMB4XDTI2MTEzMDA0MTE0NFoXDTM2
MTEyNzA0MTE0NFowGjEYMBYGA1UEAwwPc2xpcHdheSB0ZXN0IENBMFkwEwYHKoZI
zj0CAQYIKoZIzj0DAQcDQgAESYw6Xb7xIuwzDeKJVXaU5yUkvr+FNMhsw3jRf/r0
zKjqOW2HP7gM7bub4qQDqvdT3OvN04ruvXlvdwjjW0VZIKNTMFEwHQYDVR0OBBYE
FCZ9k7rYBpadH8D7348O9MEzHJwCMB8GA1UdIwQYMBaAFCZ9k7rYBpadH8D7348O
9MEzHJwCMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIgUq6RFhTk
1LCU53YdVvUkZZhRsPGZRbvpOPFNXYquelACIQDPjnzLx0wj+VQtIIwqqLNNwFd2
EjXMaPLVln34pvVqnw==
-----END CERTIFICATE-----
";

    #[test]
    fn a_certificate_parses_and_its_marker_is_its_last_full_line() {
        let c = parse(&TEST_CA.replace('\n', "\r\n")).unwrap();
        assert_eq!(c.text, TEST_CA);
        assert_eq!(
            c.marker,
            "1LCU53YdVvUkZZhRsPGZRbvpOPFNXYquelACIQDPjnzLx0wj+VQtIIwqqLNNwFd2"
        );
    }

    #[test]
    fn what_is_not_one_certificate_is_refused() {
        let two = format!("{TEST_CA}{TEST_CA}");
        // Whole base64 quanta dropped: still base64, no longer the length it says.
        let truncated = TEST_CA.replace("EjXMaPLVln34pvVqnw==\n", "");
        let key = TEST_CA.replace("CERTIFICATE", "PRIVATE KEY");
        for (bad, why) in [
            ("", "expected a PEM certificate"),
            ("hello", "expected a PEM certificate"),
            (two.as_str(), "give each its own entry"),
            (key.as_str(), "exactly one PEM certificate"),
            (truncated.as_str(), "not a DER-encoded X.509"),
            (
                "-----BEGIN CERTIFICATE-----\nnot*base64\n-----END CERTIFICATE-----",
                "not base64",
            ),
        ] {
            let e = parse(bad).err().unwrap_or_else(|| panic!("{bad:?} passed"));
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }
}

//! `docker_registries`: what Docker needs for a private registry. Its CA on
//! every host (Docker reads certs.d on each connection: no restart), and on
//! the swarm managers root logged in, which `docker stack deploy
//! --with-registry-auth` hands on to the workers.

use serde::{Deserialize, Serialize};

use super::{RoleContext, config_file, trust};
use crate::diag::InputResult;
use crate::resource::Resource;
use crate::resource::registry_login::RegistryLogin;

/// One entry of `docker_registries`.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryVar {
    /// `host[:port]`, as images name the registry.
    pub address: String,
    /// PEM of the CA that signed the registry's certificate; empty: the system's CAs.
    pub ca: String,
    pub username: String,
    /// A secret; with `username`, root logs in on the managers.
    pub password: String,
}

/// Without the password, which must not reach a log through `{:?}`.
impl std::fmt::Debug for RegistryVar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryVar")
            .field("address", &self.address)
            .field("ca", &self.ca)
            .field("username", &self.username)
            .field("password", &crate::redact::SENSITIVE)
            .finish()
    }
}

/// Why `address` is not a registry address `host[:port]`, if it is not.
fn check_address(address: &str) -> Result<(), String> {
    let not = || {
        format!(
            "`{address}` is not a registry address: write host or host:port, without a scheme or path (e.g. \"ghcr.io\", \"registry.example.org:5443\")"
        )
    };
    if address.contains('/') {
        return Err(not());
    }
    let (host, port) = match address.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (address, None),
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !host_ok {
        return Err(not());
    }
    if let Some(port) = port
        && !port.parse::<u16>().is_ok_and(|p| p > 0)
    {
        return Err(format!("`{address}`: the port must be 1 to 65535"));
    }
    // Docker keeps Docker Hub's credential under a URL of its own, not this address.
    if ["docker.io", "index.docker.io", "registry-1.docker.io"].contains(&host) {
        return Err(format!(
            "`{address}` is Docker Hub, which this variable does not handle: it is for private registries"
        ));
    }
    Ok(())
}

/// The CA files of every registry, and on a manager (`manager`) the logins.
pub fn resources(
    ctx: &RoleContext<'_>,
    registries: &[RegistryVar],
    manager: bool,
) -> InputResult<Vec<Box<dyn Resource>>> {
    let mut out: Vec<Box<dyn Resource>> = Vec::new();
    let error = |path: String, why: String| {
        ctx.var_error(
            &path,
            format!("role variable `{path}` on {}: {why}", ctx.host.name),
        )
    };
    for (i, r) in registries.iter().enumerate() {
        let at = |key: &str| format!("docker_registries[{i}].{key}");
        check_address(&r.address).map_err(|why| error(at("address"), why))?;
        if registries[..i].iter().any(|o| o.address == r.address) {
            return Err(error(
                at("address"),
                format!("`{}` is listed twice", r.address),
            ));
        }
        match (r.username.is_empty(), r.password.is_empty()) {
            (true, false) => {
                return Err(error(
                    at("password"),
                    "a password without a username: set both, or neither".into(),
                ));
            }
            (false, true) => {
                return Err(error(
                    at("username"),
                    "a username without a password: set both, or neither".into(),
                ));
            }
            _ => {}
        }
        if !r.ca.is_empty() {
            let cert = trust::certificate(ctx, &at("ca"), &r.ca)?;
            let path = format!("/etc/docker/certs.d/{}/ca.crt", r.address);
            out.push(Box::new(config_file(&path, cert.text, 0o644)));
        }
        if manager && !r.username.is_empty() {
            out.push(Box::new(RegistryLogin {
                address: r.address.clone(),
                username: r.username.clone(),
                password: r.password.clone(),
            }));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_host_and_port_only() {
        for ok in [
            "ghcr.io",
            "registry.example.org:5443",
            "10.0.0.5:5000",
            "reg",
        ] {
            assert!(check_address(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "https://ghcr.io",
            "ghcr.io/org",
            "reg:0",
            "reg:70000",
            "reg:",
            "a..b",
            "docker.io",
            "host name",
        ] {
            assert!(check_address(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod role_tests {
    use serde_json::json;

    use crate::facts::HostFacts;
    use crate::resource::Observed;
    use crate::roles::tests::{inventory, resources};
    use crate::roles::trust::tests::TEST_CA;
    use crate::roles::{Role, lookup};

    fn ids(role: &dyn Role, vars: serde_json::Value) -> Vec<String> {
        resources(role, &inventory(""), vars)
            .unwrap()
            .iter()
            .map(|r| r.id())
            .collect()
    }

    fn registry() -> serde_json::Value {
        json!({"address": "registry.example:5443", "ca": TEST_CA, "username": "ci", "password": "pw-Role-Secret-2"})
    }

    #[test]
    fn managers_log_in_and_every_host_trusts_the_ca() {
        let docker = lookup("docker").unwrap();
        let on_manager = ids(docker, json!({"docker_registries": [registry()]}));
        let ca = "file:/etc/docker/certs.d/registry.example:5443/ca.crt".to_string();
        let login = "registry_login:registry.example:5443".to_string();
        assert!(
            on_manager.contains(&ca) && on_manager.contains(&login),
            "{on_manager:?}"
        );
        // After Docker runs: login needs the daemon.
        let service = on_manager
            .iter()
            .position(|i| i == "service:docker")
            .unwrap();
        assert!(on_manager.iter().position(|i| *i == login).unwrap() > service);
        let elsewhere = ids(
            docker,
            json!({"docker_registries": [registry()], "swarm_managers_group": "other"}),
        );
        assert!(
            elsewhere.contains(&ca) && !elsewhere.contains(&login),
            "{elsewhere:?}"
        );
    }

    /// A first plan from a fresh host's facts: the login says who, never the password.
    #[test]
    fn the_plan_names_registry_and_user_and_hides_the_password() {
        let rs = resources(
            lookup("docker").unwrap(),
            &inventory(""),
            json!({"docker_registries": [registry()]}),
        )
        .unwrap();
        let login = rs
            .iter()
            .find(|r| r.id().starts_with("registry_login:"))
            .unwrap();
        let facts = HostFacts::default();
        let change = login.plan(&Observed::new("", &facts)).change.unwrap();
        let shown = format!("{change:?} {login:?}");
        assert!(
            shown.contains("docker login registry.example:5443 as ci"),
            "{shown}"
        );
        assert!(!shown.contains("pw-Role-Secret-2"), "{shown}");
    }

    #[test]
    fn bad_registries_are_refused_at_the_variable() {
        let docker = lookup("docker").unwrap();
        for (entry, why) in [
            (
                json!({"address": "https://r.example"}),
                "docker_registries[0].address",
            ),
            (
                json!({"address": "r.example", "password": "pw-Role-Secret-3"}),
                "a password without a username",
            ),
            (
                json!({"address": "r.example", "username": "ci"}),
                "a username without a password",
            ),
            (
                json!({"address": "r.example", "ca": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"}),
                "docker_registries[0].ca",
            ),
        ] {
            let e = resources(
                docker,
                &inventory(""),
                json!({"docker_registries": [entry]}),
            )
            .unwrap_err();
            assert!(e.message().contains(why), "{}", e.message());
            assert!(!e.message().contains("pw-Role-Secret-3"), "{}", e.message());
        }
        let twice =
            json!({"docker_registries": [{"address": "r.example"}, {"address": "r.example"}]});
        let e = resources(docker, &inventory(""), twice).unwrap_err();
        assert!(e.message().contains("listed twice"), "{}", e.message());
    }

    #[test]
    fn ca_certificates_install_each_and_update_the_bundle_when_needed() {
        let base = lookup("base").unwrap();
        let rs = resources(
            base,
            &inventory(""),
            json!({"ca_certificates": {"lab": TEST_CA}}),
        )
        .unwrap();
        let ids: Vec<String> = rs.iter().map(|r| r.id()).collect();
        assert!(
            ids.contains(&"file:/usr/local/share/ca-certificates/slipway-lab.crt".to_string()),
            "{ids:?}"
        );
        let update = rs.last().unwrap();
        assert_eq!(update.id(), "command:update the system's CA certificates");
        let probe = update.probe();
        assert!(probe.contains("grep -qxF '1LCU53YdVvUkZZhRsPGZRbvpOPFNXYquelACIQDPjnzLx0wj+VQtIIwqqLNNwFd2' /etc/ssl/certs/ca-certificates.crt"), "{probe}");
        assert!(
            probe.contains("'/usr/local/share/ca-certificates/slipway-lab.crt') ;;"),
            "{probe}"
        );
        let e = resources(
            base,
            &inventory(""),
            json!({"ca_certificates": {"lab": "nope"}}),
        )
        .unwrap_err();
        assert!(
            e.message().contains("ca_certificates.lab"),
            "{}",
            e.message()
        );
        let e = resources(
            base,
            &inventory(""),
            json!({"ca_certificates": {"../x": TEST_CA}}),
        )
        .unwrap_err();
        assert!(e.message().contains("names a file"), "{}", e.message());
    }
}

//! What a private registry needs, given wrong: a CA that is no certificate,
//! a registry address with a scheme, a password without a username. Each is
//! refused at the variable, before any host is touched, the secret unshown.

use super::*;

/// The good inventory with `extra` lines in its `[vars]`, and the play running `roles`.
fn with(p: &Project, roles: &str, extra: &str) -> String {
    p.file(
        PB,
        &GOOD_PB.replace(
            "hosts = \"all\"",
            &format!("hosts = \"all\"\nroles = [{roles}]"),
        ),
    );
    p.inventory_with(
        "motd = \"welcome\"",
        &format!("motd = \"welcome\"\n{extra}"),
    )
}

#[test]
fn a_ca_certificate_that_is_not_one() {
    let p = Project::new();
    let bad = "\"-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----\"";
    let inv = with(
        &p,
        "\"base\"",
        &format!("ca_certificates = {{ lab = {bad} }}"),
    );
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, bad)])
        .mentions(&["ca_certificates.lab", "not a DER-encoded X.509 certificate"])
        .plans_nothing();
}

#[test]
fn a_registry_address_with_a_scheme() {
    let p = Project::new();
    let inv = with(
        &p,
        "\"docker\"",
        "docker_registries = [{ address = \"https://ghcr.io\" }]",
    );
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "\"https://ghcr.io\"")])
        .mentions(&["docker_registries[0].address", "not a registry address"])
        .plans_nothing();
}

#[test]
fn a_registry_password_without_a_username() {
    let p = Project::new();
    let inv = with(
        &p,
        "\"docker\"",
        "docker_registries = [{ address = \"ghcr.io\", password = { secret = true, env = \"SLIPWAY_BAD_INPUT_SECRET\" } }]",
    );
    // The variable holds a secret: the error points at its name.
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "docker_registries")])
        .mentions(&[
            "docker_registries[0].password",
            "a password without a username",
        ])
        .plans_nothing();
}

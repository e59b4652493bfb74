//! Fixtures (in `../fixtures`): two stack files deployed one after the other
//! as stack `demo` on a one-node Swarm, and Docker's API answer after each
//! (`first.*`, `second.*`); `*.attrs` are the attrs a plan shows, one per line.

use std::collections::BTreeMap;

use super::desired::interpolate;
use super::*;

const FIRST_STACK: &str = include_str!("../fixtures/first.stack.yml");
const FIRST_API: &str = include_str!("../fixtures/first.services.json");
const SECOND_STACK: &str = include_str!("../fixtures/second.stack.yml");
const SECOND_API: &str = include_str!("../fixtures/second.services.json");

/// The revisions each deploy set.
fn revisions(app_conf: &str) -> Vec<(String, String)> {
    vec![
        ("APP_CONF_REV".into(), app_conf.into()),
        ("DB_PASSWORD_REV".into(), "bbbb2222".into()),
    ]
}

fn first() -> Services {
    desired(FIRST_STACK, "demo", &revisions("aaaa1111")).unwrap()
}

fn second() -> Services {
    desired(SECOND_STACK, "demo", &revisions("cccc3333")).unwrap()
}

fn lines(attrs: &[Attr]) -> String {
    let none = |v: &Option<String>| v.clone().unwrap_or("(none)".into());
    attrs
        .iter()
        .map(|a| format!("{}: {} -> {}\n", a.name, none(&a.from), none(&a.to)))
        .collect()
}

#[test]
fn a_stack_file_reads_as_what_swarm_runs_after_its_deploy() {
    let none = BTreeMap::new();
    let ran_first = observed(FIRST_API, "demo").unwrap();
    assert_eq!(lines(&diff(&first(), &ran_first, &none)), "");
    let ran_second = observed(SECOND_API, "demo").unwrap();
    assert_eq!(lines(&diff(&second(), &ran_second, &none)), "");
    assert_eq!(ran_first["worker"].replicas, "global");
    assert_eq!(ran_first["api"].secrets, ["demo_db_password_bbbb2222"]);
    assert_eq!(
        ran_second["web"].ports,
        ["5353:53/udp", "8082:80/tcp"],
        "short syntax: ingress"
    );
}

#[test]
fn every_field_that_changed_shows_per_service() {
    let ran = observed(FIRST_API, "demo").unwrap();
    let attrs = diff(&second(), &ran, &BTreeMap::new());
    assert_eq!(
        lines(&attrs),
        include_str!("../fixtures/second_over_first.attrs")
    );
    let back = diff(
        &first(),
        &observed(SECOND_API, "demo").unwrap(),
        &BTreeMap::new(),
    );
    assert_eq!(
        lines(&back),
        include_str!("../fixtures/first_over_second.attrs")
    );
}

#[test]
fn a_new_tag_shows_the_registrys_digest_when_the_probe_got_it() {
    let ran = observed(FIRST_API, "demo").unwrap();
    let new = "slipway-registry.test:5443/lab/app:1.1";
    let digests = BTreeMap::from([(new.to_string(), "sha256:2385".to_string())]);
    let attrs = diff(&second(), &ran, &digests);
    let image = attrs.iter().find(|a| a.name == "api.image").unwrap();
    assert_eq!(image.to.as_deref(), Some(&*format!("{new}@sha256:2385")));
    assert!(
        image
            .from
            .as_deref()
            .unwrap()
            .contains(":1.0@sha256:4f7c86c4")
    );
}

#[test]
fn images_compare_by_repository_and_tag() {
    assert!(same_image("app:1.0", "app:1.0@sha256:ab"));
    assert!(same_image(
        "nginx",
        "docker.io/library/nginx:latest@sha256:ab"
    ));
    assert!(!same_image("app:1.1", "app:1.0@sha256:ab"));
    assert!(!same_image("app:1.0@sha256:cd", "app:1.0@sha256:ab"));
    assert!(!same_image("reg:5000/app", "reg:5000/app:1.0"));
    let lookups = lookups(&second());
    assert_eq!(lookups.len(), 2, "{lookups:?}");
    assert_eq!(lookups[0].1, ["slipway-registry.test:5443/lab/app:1.1"]);
    let hub = desired("services: {a: {image: nginx}}", "s", &[]).unwrap();
    assert_eq!(lookups_of(&hub), ["nginx", "nginx:latest"]);
}

fn lookups_of(s: &Services) -> Vec<String> {
    lookups(s).remove(0).1
}

#[test]
fn a_secret_in_an_environment_value_hides_both_sides() {
    let secret = "env-secret-5c1e9b";
    crate::redact::global().add(secret);
    let spec = |v: &str| {
        format!(
            "services:\n  api:\n    image: app\n    environment:\n      TOKEN: {v}\n      MODE: a\n"
        )
    };
    let ran = desired(&spec("old-token"), "s", &[]).unwrap();
    let want = desired(&spec(secret), "s", &[]).unwrap();
    let attrs = diff(&want, &ran, &BTreeMap::new());
    assert_eq!(lines(&attrs), "api.env.TOKEN: (sensitive) -> (sensitive)\n");
}

#[test]
fn environment_lists_maps_and_env_files() {
    let spec = "services:\n  a:\n    image: x\n    environment: [A=1, B, C=x=y]\n  b:\n    image: x\n    env_file: b.env\n    environment: {N: 2, T: true, E: null}\n";
    let s = desired(spec, "s", &[]).unwrap();
    let env: Vec<_> = s["a"].env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    assert_eq!(env, ["A=1", "B=", "C=x=y"]);
    let env: Vec<_> = s["b"].env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    assert_eq!(env, ["E=", "N=2", "T=true"]);
    // Variables Swarm has beyond the file's may come from its env_file.
    let mut ran = s.clone();
    ran.get_mut("b")
        .unwrap()
        .env
        .insert("FROM_FILE".into(), "1".into());
    ran.get_mut("a")
        .unwrap()
        .env
        .insert("GONE".into(), "1".into());
    assert_eq!(
        lines(&diff(&s, &ran, &BTreeMap::new())),
        "a.env.GONE: 1 -> (none)\n"
    );
}

#[test]
fn ports_in_every_syntax() {
    let spec = "services:\n  a:\n    image: x\n    ports:\n      - \"80\"\n      - \"127.0.0.1:8080:80\"\n      - \"9000-9001:90-91/udp\"\n      - {target: 53, published: \"5353\", protocol: udp, mode: host}\n";
    let s = desired(spec, "s", &[]).unwrap();
    assert_eq!(
        s["a"].ports,
        [
            "5353:53/udp (host)",
            "80/tcp",
            "8080:80/tcp",
            "9000:90/udp",
            "9001:91/udp"
        ]
    );
}

#[test]
fn configs_and_secrets_by_their_swarm_names() {
    let spec = "services:\n  a:\n    image: x\n    configs: [plain, named, {source: ext, target: /e}]\n    secrets: [s]\nconfigs:\n  plain: {file: ./p}\n  named: {name: \"n_${REV}\", file: ./n}\n  ext: {external: true}\nsecrets:\n  s: {external: true, name: real}\n";
    let s = desired(spec, "st", &[("REV".into(), "12".into())]).unwrap();
    assert_eq!(s["a"].configs, ["ext", "n_12", "st_plain"]);
    assert_eq!(s["a"].secrets, ["real"]);
    assert!(matches!(
        desired("services: {a: {ports: []}}", "s", &[]),
        Err(SpecError::NoImage(n)) if n == "a"
    ));
}

#[test]
fn variables_as_compose_sets_them() {
    let vars = [
        ("R".to_string(), "12".to_string()),
        ("E".into(), String::new()),
    ];
    let cases = [
        ("n_${R:?set at deploy}", "n_12"),
        ("${R}-$R-$$R-${U}", "12-12-$R-"),
        ("${U:-d}/${E:-d}/${E-d}/${U-d}", "d/d//d"),
        ("${R:+yes}${E:+no}${E+set}", "yesset"),
        ("$ and ${ unclosed", "$ and ${ unclosed"),
    ];
    for (text, want) in cases {
        assert_eq!(interpolate(text, &vars), want, "{text}");
    }
}

#[test]
fn attrs_name_their_service_and_field() {
    let attr = |name: &str, to: &str| Attr::new(name, None::<&str>, Some(to));
    assert_eq!(
        split_attr(&attr("api.env.A.B", "1")),
        Some(("api", "env.A.B"))
    );
    assert_eq!(
        split_attr(&attr("my.api.image", "x")),
        Some(("my.api", "image"))
    );
    assert_eq!(split_attr(&attr("web", "added")), Some(("web", "")));
    assert_eq!(split_attr(&attr("revision", "abc")), None);
}

#[test]
fn secret_names_show_without_the_digest_of_their_value() {
    let spec = |rev: &str| {
        format!(
            "services:\n  a:\n    image: x\n    secrets: [pw, key]\nsecrets:\n  pw: {{name: \"s_pw_${{R}}\"}}\n  key: {{name: s_key_{rev}}}\n"
        )
    };
    let var = |v: &str| vec![("R".to_string(), v.to_string())];
    let ran = desired(&spec("0123456789ab"), "s", &var("aaaaaaaaaaaa")).unwrap();
    let want = desired(&spec("0123456789ab"), "s", &var("bbbbbbbbbbbb")).unwrap();
    assert_eq!(
        lines(&diff(&want, &ran, &BTreeMap::new())),
        "a.secrets: s_key_…, s_pw_… -> s_key_…, s_pw_… (new value)\n"
    );
    let fewer = desired(
        "services: {a: {image: x, secrets: [pw]}}\nsecrets: {pw: {name: \"s_pw_${R}\"}}",
        "s",
        &var("bbbbbbbbbbbb"),
    )
    .unwrap();
    let attrs = diff(&fewer, &ran, &BTreeMap::new());
    assert_eq!(
        lines(&attrs),
        "a.secrets: s_key_…, s_pw_… -> s_pw_… (new value)\n"
    );
    assert!(!lines(&attrs).contains("aaaaaaaaaaaa"));
}

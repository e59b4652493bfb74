//! A private registry for real: the lab registry (TLS with the lab's own CA,
//! htpasswd auth) trusted and logged in to by slipway on a two-host swarm.
//! The manager pulls a private image with no further setup, a service with
//! `--with-registry-auth` runs it on the worker (which never logged in), the
//! password shows nowhere, a second plan has nothing to do, and a wrong
//! password fails the apply naming the registry, not the password. Taken
//! out of `ca_certificates`, the CA leaves the system's trust again.

mod common;

use common::lab::{Lab, LabOs};
use common::registry::LabRegistry;
use common::run::{Project, Run, on};

const PASSWORD_FILE: &str = "registry-password";

/// The playbook; `system_ca`: the lab CA in `ca_certificates` too.
fn playbook(reg: &LabRegistry, system_ca: bool) -> String {
    let ca = reg.ca_pem.trim_end().to_string() + "\n";
    let ca_certificates = if system_ca {
        format!("ca_certificates = {{ lab = \"\"\"\n{ca}\"\"\" }}")
    } else {
        "ca_certificates = {}".to_string()
    };
    format!(
        r#"
[[play]]
name = "hosts that trust and use the lab registry"
hosts = "all"
roles = ["base", "docker"]

[play.vars]
docker_source = "distribution"
docker_storage_driver = "vfs"
deploy_user = ""
{ca_certificates}
docker_registries = [
  {{ address = "{address}", ca = """
{ca}""", username = "{user}", password = {{ secret = true, file = "{PASSWORD_FILE}" }} }},
]

[[play]]
name = "swarm managers"
hosts = "managers"
roles = ["swarm"]

[[play]]
name = "swarm workers"
hosts = "workers"
roles = ["swarm"]
"#,
        address = reg.address,
        user = reg.username,
    )
}

fn slipway_run(lab: &Lab, p: &Project, args: &[&str]) -> Run {
    on(p, &lab.inventory, &p.path("playbook.toml"), args)
}

fn assert_hidden(what: &str, text: &str, password: &str) {
    assert!(!text.contains(password), "the password in {what}:\n{text}");
}

/// Waits up to 120 s for `check`, which returns what it saw.
fn wait_for(what: &str, mut check: impl FnMut() -> (bool, String)) {
    let start = std::time::Instant::now();
    loop {
        let (ok, seen) = check();
        if ok {
            return;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(120),
            "timed out waiting for {what}; last seen:\n{seen}"
        );
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
}

#[test]
fn a_swarm_pulls_private_images_from_a_registry_with_its_own_ca_on_ubuntu() {
    a_swarm_pulls_private_images_from_a_registry_with_its_own_ca(LabOs::Ubuntu);
}

#[test]
fn a_swarm_pulls_private_images_from_a_registry_with_its_own_ca_on_debian() {
    a_swarm_pulls_private_images_from_a_registry_with_its_own_ca(LabOs::Debian);
}

fn a_swarm_pulls_private_images_from_a_registry_with_its_own_ca(os: LabOs) {
    let reg = LabRegistry::ensure();
    let lab = Lab::start_os(&format!("registry-{os}"), 2, os);
    let p = Project::new();
    p.write(PASSWORD_FILE, &format!("{}\n", reg.password));
    p.write("playbook.toml", &playbook(&reg, true));
    let password = reg.password.as_str();
    let worker = &lab.hosts[1].name;

    let plan = slipway_run(&lab, &p, &["plan", "--detailed-exitcode"]).expect(2);
    let login = format!("docker login {} as {}", reg.address, reg.username);
    assert!(plan.stdout.contains(&login), "{}", plan.stdout);
    assert!(
        plan.stdout
            .contains("+ file:/usr/local/share/ca-certificates/slipway-lab.crt"),
        "{}",
        plan.stdout
    );
    assert_eq!(plan.stdout.matches(&login).count(), 1, "managers only");
    assert_hidden("the plan", &plan.all(), password);
    let json = slipway_run(&lab, &p, &["plan", "--format", "json"]).expect(0);
    assert_hidden("the JSON plan", &json.all(), password);
    let saved = p.path("saved.plan");
    slipway_run(&lab, &p, &["plan", "--out", saved.to_str().unwrap()]).expect(0);
    let saved_text = String::from_utf8_lossy(&std::fs::read(&saved).unwrap()).into_owned();
    assert_hidden("the saved plan", &saved_text, password);

    let started = std::time::Instant::now();
    let applied = slipway_run(&lab, &p, &["apply", "--yes", "-v"]).expect(0);
    eprintln!("first apply: {:.1} s", started.elapsed().as_secs_f64());
    assert_hidden("apply's output", &applied.all(), password);

    // Converged: nothing left, the login included (its probe hashes match),
    // in one remote command per host.
    let started = std::time::Instant::now();
    let again = slipway_run(
        &lab,
        &p,
        &["plan", "--detailed-exitcode", "--format", "json"],
    )
    .expect(0);
    eprintln!("no-op plan: {:.2} s", started.elapsed().as_secs_f64());
    assert_hidden("the second plan", &again.all(), password);
    for h in again.json()["hosts"].as_array().unwrap() {
        assert_eq!(h["remote_commands"], 1, "{h}");
    }

    let ca_line = reg
        .ca_pem
        .lines()
        .rev()
        .nth(1)
        .expect("a PEM body")
        .to_string();
    let certs_d = format!("/etc/docker/certs.d/{}/ca.crt", reg.address);
    for i in 0..2 {
        let bundle = lab.exec_ok(i, "cat /etc/ssl/certs/ca-certificates.crt");
        assert!(
            bundle.contains(&ca_line),
            "host {i}: the CA is not in the bundle"
        );
        assert_eq!(
            lab.exec_ok(i, &format!("cat {certs_d}")).trim(),
            reg.ca_pem.trim(),
            "host {i}"
        );
        let log = lab.exec_ok(i, "cat /var/log/slipway/apply.log");
        assert_hidden(&format!("host {i}'s apply.log"), &log, password);
        // The CA is trusted system-wide: curl reaches the registry with no --cacert.
        lab.exec_ok(
            i,
            &format!("curl -sS -o /dev/null https://{}/v2/", reg.address),
        );
    }
    assert!(
        lab.exec(
            1,
            &format!("grep -q '{}' /root/.docker/config.json", reg.address)
        )
        .status
        .code()
            != Some(0),
        "the worker logged in"
    );

    // The manager pulls with the stored login, nothing else set up.
    let image = reg.image("app:1.0");
    lab.exec_ok(0, &format!("docker pull {image}"));

    // A service pinned to the worker runs the private image with the manager's credential.
    lab.exec_ok(
        0,
        &format!(
            "docker service create --detach --with-registry-auth --name private-app --constraint node.hostname=={worker} {image}"
        ),
    );
    wait_for("the private image to run on the worker", || {
        let ps = lab.exec_ok(
            0,
            "docker service ps private-app --format '{{.Node}} {{.CurrentState}} {{.Error}}'",
        );
        let ok = ps
            .lines()
            .any(|l| l.starts_with(&format!("{worker} Running")));
        (ok, ps)
    });
    // The worker itself runs it (Swarm pulls by digest, so no tag shows there).
    let on_worker = lab.exec_ok(
        1,
        "docker ps --filter label=com.docker.swarm.service.name=private-app --format '{{.Image}}'",
    );
    assert!(on_worker.starts_with(&image), "{on_worker}");

    // A wrong password: the login runs again and fails, naming the registry.
    p.write(PASSWORD_FILE, "wrong-Registry-Password-7\n");
    let failed = slipway_run(&lab, &p, &["apply", "--yes"]);
    assert_ne!(failed.code, 0, "{}", failed.all());
    assert!(
        failed.all().contains(&format!(
            "docker login to {} as {} failed",
            reg.address, reg.username
        )),
        "{}",
        failed.all()
    );
    assert_hidden(
        "the failed apply",
        &failed.all(),
        "wrong-Registry-Password-7",
    );
    assert_hidden("the failed apply", &failed.all(), password);
    let log = lab.exec_ok(0, "cat /var/log/slipway/apply.log");
    assert_hidden("the manager's apply.log", &log, "wrong-Registry-Password-7");

    // The CA taken out of ca_certificates leaves the system's trust, links and all.
    p.write(PASSWORD_FILE, &format!("{}\n", reg.password));
    p.write("playbook.toml", &playbook(&reg, false));
    slipway_run(&lab, &p, &["apply", "--yes"]).expect(0);
    slipway_run(&lab, &p, &["plan", "--detailed-exitcode"]).expect(0);
    for i in 0..2 {
        let bundle = lab.exec_ok(i, "cat /etc/ssl/certs/ca-certificates.crt");
        assert!(
            !bundle.contains(&ca_line),
            "host {i}: the CA is still trusted"
        );
        let left = lab.exec_ok(
            i,
            "ls /usr/local/share/ca-certificates /etc/ssl/certs | grep slipway; find -L /etc/ssl/certs -type l",
        );
        assert_eq!(left.trim(), "", "host {i}");
    }
}

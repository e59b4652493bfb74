//! The plan of a stack, service by service, against a real Swarm: a tiny
//! stack deployed by the `app` role on a one-host lab swarm from the lab
//! registry, then a new image tag, more replicas and a new token (a secret,
//! in an environment variable) planned: the human plan and the JSON name each
//! change per service, the new tag with the registry's digest, and neither
//! token. A plan with nothing to change asks the registry nothing (its access
//! log shows no manifest request from the Docker CLI).

mod common;

use std::process::Command;

use common::lab::Lab;
use common::registry::LabRegistry;
use common::run::{Project, Run, run, slipway};

const TOKEN_1: &str = "tok-first-Qm29xv7b";
const TOKEN_2: &str = "tok-second-Wr83pd1k";

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

const PLAYBOOK: &str = r#"
[[play]]
name = "docker"
hosts = "all"
roles = ["docker"]

[[play]]
name = "swarm"
hosts = "managers"
roles = ["swarm"]

[[play]]
name = "the stack"
hosts = "managers"
roles = ["app"]

[play.vars]
app_stack = "shop"
app_update_timeout = 120
"#;

/// `api` runs the image and replicas given; `edge`, one task per node, has a
/// port published on the node (the lab's kernel has no IPVS: no routing mesh).
const TEMPLATE: &str = r#"services:
  api:
    image: {{ api_image }}
    environment:
      GREETING: hello
      API_TOKEN: {{ api_token }}
    deploy:
      replicas: {{ api_replicas }}
      endpoint_mode: dnsrr
  edge:
    image: {{ edge_image }}
    ports:
      - target: 8080
        published: 8081
        mode: host
    deploy:
      mode: global
      endpoint_mode: dnsrr
"#;

struct Shop {
    lab: Lab,
    p: Project,
    reg: LabRegistry,
}

impl Shop {
    /// `slipway CMD` with api on `tag` with `replicas`, and `token` as the API token.
    fn slipway(&self, cmd: &str, tag: &str, replicas: u32, token: &str, args: &[&str]) -> Run {
        let mut c = slipway(self.p.dir.path());
        c.arg(cmd)
            .arg("-i")
            .arg(self.p.path("inventory.toml"))
            .arg(self.p.path("playbook.toml"))
            .args(["-e", &format!("api_image={}", self.reg.image(tag))])
            .args(["-e", &format!("api_replicas={replicas}")])
            .args(args)
            .env("API_TOKEN", token);
        run(&mut c)
    }
}

/// What the lab registry logged since `since` (RFC 3339): manifests the
/// Docker CLI asked for by tag (`docker manifest inspect`; Swarm's and
/// dockerd's pulls say `UpstreamClient`).
fn manifest_lookups(since: &str, image: &str) -> usize {
    let out = Command::new("docker")
        .args(["logs", "--since", since, "slipway-lab-registry"])
        .output()
        .expect("docker logs");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let path = format!("\"GET /v2/lab/{}", image.replace(':', "/manifests/"));
    log.lines()
        .filter(|l| l.contains(&format!("{path} ")) && l.contains("\"Docker-Client/"))
        .count()
}

fn now() -> String {
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .expect("date");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn assert_hidden(what: &str, text: &str) {
    for token in [TOKEN_1, TOKEN_2] {
        assert!(!text.contains(token), "a token in {what}:\n{text}");
    }
}

#[test]
fn a_stack_plan_shows_each_services_changes() {
    let reg = LabRegistry::ensure();
    let lab = Lab::start("stack-plan", 1);
    let p = Project::new();
    let base = std::fs::read_to_string(&lab.inventory).unwrap();
    p.write(
        "inventory.toml",
        &format!(
            "{base}\n[vars]\ndocker_source = \"distribution\"\ndocker_storage_driver = \"vfs\"\n\
             docker_registries = [{{ address = {addr}, ca = {ca}, username = {user}, password = {{ secret = true, value = {pw} }} }}]\n\
             edge_image = {edge}\napi_token = {{ secret = true, env = \"API_TOKEN\" }}\n",
            addr = toml_str(&reg.address),
            ca = toml_str(&reg.ca_pem),
            user = toml_str(&reg.username),
            pw = toml_str(&reg.password),
            edge = toml_str(&reg.image("app:1.0")),
        ),
    );
    p.write("playbook.toml", PLAYBOOK);
    p.write("templates/stack.yml.j2", TEMPLATE);
    let shop = Shop { lab, p, reg };

    let first = shop.slipway("plan", "app:1.0", 1, TOKEN_1, &[]).expect(0);
    assert!(
        first
            .stdout
            .contains("+ stack:shop  deploy stack shop (2 services)"),
        "{}",
        first.stdout
    );
    assert!(
        first.stdout.contains("      api: added\n"),
        "{}",
        first.stdout
    );
    let applied = shop
        .slipway("apply", "app:1.0", 1, TOKEN_1, &["--yes"])
        .expect(0);
    assert_hidden("the first apply", &applied.all());

    // Nothing to change: no change, and no question to the registry.
    let since = now();
    shop.slipway("plan", "app:1.0", 1, TOKEN_1, &["--detailed-exitcode"])
        .expect(0);
    assert_eq!(manifest_lookups(&since, "app:1.0"), 0);

    // A new tag, a second replica, a new token.
    let since = now();
    let plan = shop
        .slipway("plan", "app:1.1", 2, TOKEN_2, &["--detailed-exitcode"])
        .expect(2);
    assert!(
        manifest_lookups(&since, "app:1.1") >= 1,
        "the registry was not asked for the new tag"
    );
    let out = &plan.stdout;
    assert_hidden("the plan", &plan.all());
    let old = format!("{}@sha256:", shop.reg.image("app:1.0"));
    let new = format!("{}@sha256:", shop.reg.image("app:1.1"));
    assert!(
        out.contains("~ stack:shop  update stack shop: change api\n      api:\n        image: "),
        "{out}"
    );
    let image = out
        .lines()
        .find(|l| l.starts_with("        image: "))
        .unwrap();
    let (from, to) = image["        image: ".len()..].split_once(" -> ").unwrap();
    assert!(
        from.starts_with(&old) && from.len() == old.len() + 12,
        "{image}"
    );
    assert!(
        to.starts_with(&new) && to.len() == new.len() + 12,
        "{image}"
    );
    for line in [
        "        replicas: 1 -> 2\n",
        "        env.API_TOKEN: (sensitive) -> (sensitive)\n",
    ] {
        assert!(out.contains(line), "missing {line:?}:\n{out}");
    }
    assert!(!out.contains("edge"), "edge did not change:\n{out}");

    let json = shop
        .slipway("plan", "app:1.1", 2, TOKEN_2, &["--format", "json"])
        .expect(0);
    assert_hidden("the JSON plan", &json.all());
    let doc = json.json();
    let change = doc["hosts"][0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["resource"] == "stack:shop")
        .expect("a stack:shop change");
    let attr = |name: &str| {
        change["attrs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap_or_else(|| panic!("no {name}: {change}"))
            .clone()
    };
    let image = attr("api.image");
    let digest = shop.lab.exec_ok(
        0,
        &format!(
            "docker manifest inspect --verbose {} | grep -m1 -o 'sha256:[0-9a-f]*'",
            shop.reg.image("app:1.1")
        ),
    );
    assert_eq!(
        image["to"],
        format!("{new}{}", &digest.trim()["sha256:".len()..])
    );
    assert!(image["from"].as_str().unwrap().starts_with(&old), "{image}");
    assert_eq!(attr("api.replicas")["to"], "2");
    assert_eq!(attr("api.env.API_TOKEN")["to"], "(sensitive)");

    // Applied, Swarm runs what the plan said: nothing is left to change.
    shop.slipway("apply", "app:1.1", 2, TOKEN_2, &["--yes"])
        .expect(0);
    shop.slipway("plan", "app:1.1", 2, TOKEN_2, &["--detailed-exitcode"])
        .expect(0);
}

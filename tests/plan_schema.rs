//! docs/plan.schema.json describes what `slipway --format json plan` prints.
//! The JSON checked here is real: the engine plans hosts over a transport that
//! runs commands on this machine (as tests/engine_local.rs does), one host is
//! refused by its own state, one cannot be reached over SSH at all, and the
//! plan is rendered exactly as the binary prints it. Documents that break the
//! format must fail the schema.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::local::{Local, Silent};
use serde_json::{Value, json};
use slipway::config::{Become, LoadOptions, Project};
use slipway::desired::{self, HostState};
use slipway::engine::runner::Runner;
use slipway::engine::{Engine, Session};
use slipway::plan::Plan;
use slipway::redact::Redactor;

const SECRET: &str = "s3cr3t-schema-token-6f1d";

/// A port on the loopback interface where nothing listens.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a local port");
    listener.local_addr().expect("local addr").port()
}

/// Four hosts: `app1` with every kind of change, `app2` already converged,
/// `broken` whose state a resource refuses, `unreachable` with no SSH server.
fn project(dir: &Path) -> LoadOptions {
    let inventory = format!(
        r#"[defaults]
user = "root"
connect_timeout = 5

[vars]
api_token = {{ secret = true, value = "{SECRET}" }}

[hosts.app1]
address = "127.0.0.1"

[hosts.app2]
address = "127.0.0.1"

[hosts.broken]
address = "127.0.0.1"

[hosts.unreachable]
address = "127.0.0.1"
port = {port}
"#,
        port = closed_port()
    );
    let playbook = format!(
        r#"[[play]]
name = "files"
hosts = "all"
vars = {{ root = "{root}" }}

[[play.resources]]
type = "directory"
path = "{{{{ root }}}}/{{{{ inventory_hostname }}}}/etc"
mode = "0700"

[[play.resources]]
type = "file"
path = "{{{{ root }}}}/{{{{ inventory_hostname }}}}/etc/app.conf"
content = "port = 8080\nworkers = 4\n"
mode = "0640"

[[play.resources]]
type = "file"
path = "{{{{ root }}}}/{{{{ inventory_hostname }}}}/etc/app.env"
content = "API_TOKEN={{{{ api_token }}}}\n"
mode = "0600"

[[play.resources]]
type = "file"
path = "{{{{ root }}}}/{{{{ inventory_hostname }}}}/etc/logo.bin"
source = "files/logo.bin"

[[play.resources]]
type = "file"
path = "{{{{ root }}}}/{{{{ inventory_hostname }}}}/old.txt"
state = "absent"

[[play]]
name = "only app1"
hosts = "app1"
vars = {{ root = "{root}" }}

[[play.resources]]
type = "command"
name = "seed the cache"
run = "touch {{{{ root }}}}/{{{{ inventory_hostname }}}}/seeded"
creates = "{{{{ root }}}}/{{{{ inventory_hostname }}}}/seeded"
notify = ["app"]

[[play.resources]]
type = "sysctl"
name = "slipway-schema-test"
settings = {{ "slipway.schema.no_such_key" = 1 }}
"#,
        root = dir.join("hosts").display()
    );
    std::fs::write(dir.join("inventory.toml"), inventory).unwrap();
    std::fs::write(dir.join("playbook.toml"), playbook).unwrap();
    std::fs::create_dir_all(dir.join("files")).unwrap();
    std::fs::write(dir.join("files/logo.bin"), b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap();

    // app1: an old config, a directory with the wrong mode, a file to remove.
    let app1 = dir.join("hosts/app1");
    std::fs::create_dir_all(app1.join("etc")).unwrap();
    std::fs::write(app1.join("etc/app.conf"), "port = 80\nworkers = 4\n").unwrap();
    std::fs::write(app1.join("old.txt"), "left over\n").unwrap();
    // broken: a directory where the playbook wants a file.
    std::fs::create_dir_all(dir.join("hosts/broken/etc/app.conf")).unwrap();
    std::fs::create_dir_all(dir.join("hosts/app2")).unwrap();

    LoadOptions {
        inventory: dir.join("inventory.toml"),
        playbook: dir.join("playbook.toml"),
        ..LoadOptions::default()
    }
}

async fn plan_host(state: HostState, redactor: &Redactor, salt: &[u8]) -> Session {
    if state.host.name == "unreachable" {
        // The real SSH transport, refused at the TCP level: nothing leaves this machine.
        Session::open(state, false, redactor, salt).await
    } else {
        let runner = Runner::new(&state.host.name, Arc::new(Local), Become::None, None);
        Session::start(state, runner, false, redactor, salt).await
    }
}

/// Plans every host; `app2` is applied first so that it has nothing left to do.
async fn real_plan_json(dir: &Path) -> String {
    let opts = project(dir);
    let salt = b"0123456789abcdef".to_vec();
    let project = Project::load(&opts).expect("valid input");
    let engine = Engine {
        forks: 4,
        redactor: project.redactor.clone(),
        salt: salt.clone(),
    };

    let app2 = desired::build(&project)
        .unwrap()
        .into_iter()
        .find(|s| s.host.name == "app2")
        .unwrap();
    let session = plan_host(app2, &project.redactor, &salt).await;
    assert_eq!(session.plan.error, None);
    let reports = engine.apply_all(vec![session], &Silent).await;
    assert!(reports[0].ok(), "{:?}", reports[0]);

    let mut sessions = Vec::new();
    for state in desired::build(&project).unwrap() {
        sessions.push(plan_host(state, &project.redactor, &salt).await);
    }
    let sessions = engine.close_all(sessions).await;
    let plan = Plan {
        hosts: sessions.iter().map(|s| s.plan.clone()).collect(),
    };
    // Exactly what `slipway --format json plan` prints.
    serde_json::to_string_pretty(&slipway::render::json::plan(&plan)).unwrap()
}

fn schema() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/plan.schema.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("the schema is JSON")
}

fn errors(validator: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[tokio::test]
async fn real_plan_output_matches_the_documented_schema() {
    let schema = schema();
    jsonschema::meta::validate(&schema).expect("a valid JSON Schema");
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");

    let dir = tempfile::tempdir().unwrap();
    let text = real_plan_json(dir.path()).await;
    assert!(
        !text.contains(SECRET),
        "the secret leaked into the plan:\n{text}"
    );
    let doc: Value = serde_json::from_str(&text).unwrap();

    let problems = errors(&validator, &doc);
    assert!(problems.is_empty(), "{}\n---\n{text}", problems.join("\n"));

    // The document really holds what the schema describes.
    let hosts = doc["hosts"].as_array().unwrap();
    let host = |name: &str| {
        hosts
            .iter()
            .find(|h| h["host"] == name)
            .unwrap_or_else(|| panic!("no host {name}:\n{text}"))
    };
    let app1 = host("app1");
    let actions: Vec<&str> = app1["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    for a in ["create", "update", "delete", "run"] {
        assert!(actions.contains(&a), "no {a} change for app1:\n{text}");
    }
    let kinds: Vec<&str> = app1["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["diff"]["kind"].as_str())
        .collect();
    for k in ["text", "binary", "sensitive"] {
        assert!(kinds.contains(&k), "no {k} diff for app1:\n{text}");
    }
    assert!(
        app1["skipped"].as_array().is_some_and(|s| !s.is_empty()),
        "{text}"
    );
    assert_eq!(app1["handlers"], json!([{ "play": 1, "service": "app" }]));
    assert_eq!(host("app2")["changes"], json!([]), "{text}");
    assert!(host("broken")["error"].is_string(), "{text}");
    let unreachable = host("unreachable");
    assert!(unreachable["error"].is_string() && unreachable.get("facts").is_none());
    assert_eq!(doc["summary"]["failed"], 2);
    assert_eq!(doc["summary"]["hosts"], 4);
}

/// A document is changed by `edit`; it must then fail the schema.
fn must_fail(validator: &jsonschema::Validator, good: &Value, what: &str, edit: fn(&mut Value)) {
    let mut doc = good.clone();
    edit(&mut doc);
    assert_ne!(&doc, good, "{what}: the edit changed nothing");
    assert!(
        !validator.is_valid(&doc),
        "{what}: a broken document passed the schema"
    );
}

#[tokio::test]
async fn broken_documents_fail_the_schema() {
    let validator = jsonschema::validator_for(&schema()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let good: Value = serde_json::from_str(&real_plan_json(dir.path()).await).unwrap();
    assert!(validator.is_valid(&good));

    fn app1(doc: &mut Value) -> &mut Value {
        doc["hosts"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|h| h["host"] == "app1")
            .unwrap()
    }
    fn change<'a>(doc: &'a mut Value, kind: &str) -> &'a mut Value {
        app1(doc)["changes"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|c| c["diff"]["kind"] == kind)
            .unwrap()
    }

    must_fail(&validator, &good, "no summary", |d| {
        d.as_object_mut().unwrap().remove("summary");
    });
    must_fail(&validator, &good, "a count as a string", |d| {
        d["summary"]["changes"] = json!("4");
    });
    must_fail(&validator, &good, "an unknown action", |d| {
        change(d, "text")["action"] = json!("replace");
    });
    must_fail(&validator, &good, "a text diff without its text", |d| {
        change(d, "text")["diff"]
            .as_object_mut()
            .unwrap()
            .remove("unified");
    });
    must_fail(&validator, &good, "a sensitive diff with content", |d| {
        change(d, "sensitive")["diff"]["unified"] = json!("+API_TOKEN=x\n");
    });
    must_fail(&validator, &good, "a digest that is not a sha256", |d| {
        change(d, "binary")["digest"] = json!("(sensitive)");
    });
    must_fail(&validator, &good, "a host without its name", |d| {
        app1(d).as_object_mut().unwrap().remove("host");
    });
    must_fail(&validator, &good, "an undocumented field", |d| {
        app1(d)["rollback"] = json!(true);
    });
    must_fail(
        &validator,
        &good,
        "facts without the container field",
        |d| {
            app1(d)["facts"]
                .as_object_mut()
                .unwrap()
                .remove("container");
        },
    );
    must_fail(&validator, &good, "a resource id without its kind", |d| {
        app1(d)["fingerprints"][0]["resource"] = json!("/etc/motd");
    });
}

//! The reference api stack (examples/api-stack) deployed for real by the `app`
//! role on a two-host lab swarm, with the lab's images from the lab registry:
//! v1 serves every request through nginx; the rolling update to v1.1 drops
//! none while a client keeps asking; the broken version is rolled back by
//! Swarm and apply says so, within 2 minutes, and tells the webhook; a new
//! database password becomes a new secret, and the old one goes; a killed
//! apply leaves no lock behind, and one started while another runs is
//! refused, naming who holds the lock.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::lab::Lab;
use common::receiver::Receiver;
use common::registry::LabRegistry;
use common::run::{Project, Run, run, slipway};

const POSTGRES_PASSWORD: &str = "pg-first-Hx81kq3v";
const POSTGRES_PASSWORD_2: &str = "pg-second-Tz40mw7c";
const REDIS_PASSWORD: &str = "redis-Jd72nc5p";

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The lab's root inventory, plus the registry, the node labels (the
/// manager is the edge, the worker holds the data), the lab's images, an
/// unencrypted backend (no ESP in the lab's kernel) and the webhook.
fn inventory(lab: &Lab, reg: &LabRegistry, hook: &str) -> String {
    let base = std::fs::read_to_string(&lab.inventory).unwrap();
    format!(
        "{base}\n[vars]\ndocker_source = \"distribution\"\ndocker_storage_driver = \"vfs\"\n\
         docker_registries = [{{ address = {addr}, ca = {ca}, username = {user}, password = {{ secret = true, value = {pw} }} }}]\n\
         nginx_image = {nginx}\npostgres_image = {pg}\nredis_image = {redis}\n\
         backend_encrypted = false\napp_update_timeout = 240\n\
         \n[groups.managers]\nvars = {{ swarm_node_labels = {{ edge = \"true\" }} }}\n\
         \n[groups.workers]\nvars = {{ swarm_node_labels = {{ db = \"true\" }} }}\n\
         \n[notify]\ndiscord_webhook = {{ secret = true, value = {hook} }}\n",
        addr = toml_str(&reg.address),
        ca = toml_str(&reg.ca_pem),
        user = toml_str(&reg.username),
        pw = toml_str(&reg.password),
        nginx = toml_str(&reg.image("nginx")),
        pg = toml_str(&reg.image("postgres")),
        redis = toml_str(&reg.image("redis")),
        hook = toml_str(hook),
    )
}

/// What the stack needs on every host: Docker logged in to the registry, a
/// swarm with the node labels.
const SWARM: &str = r#"
[[play]]
name = "docker"
hosts = "all"
roles = ["docker"]

[[play]]
name = "swarm managers"
hosts = "managers"
roles = ["swarm"]

[[play]]
name = "swarm workers"
hosts = "workers"
roles = ["swarm"]

[[play]]
name = "swarm cluster"
hosts = "managers"
roles = ["swarm_cluster"]
"#;

struct Stack {
    lab: Lab,
    p: Project,
    reg: LabRegistry,
}

impl Stack {
    /// `slipway CMD -i inventory.toml PLAYBOOK [-e api_image=IMAGE]`, with the
    /// stack's secrets in the environment.
    fn command(
        &self,
        cmd: &str,
        playbook: &str,
        image: Option<&str>,
        pg: &str,
    ) -> std::process::Command {
        let mut c = slipway(self.p.dir.path());
        c.arg(cmd)
            .arg("-i")
            .arg(self.p.path("inventory.toml"))
            .arg(self.p.path(playbook))
            .env("POSTGRES_PASSWORD", pg)
            .env("REDIS_PASSWORD", REDIS_PASSWORD);
        if let Some(image) = image {
            c.arg("-e")
                .arg(format!("api_image={}", self.reg.image(image)));
        }
        c
    }

    fn plan(&self, image: Option<&str>, pg: &str) -> Run {
        let mut c = self.command("plan", "playbook.toml", image, pg);
        run(c.arg("--detailed-exitcode"))
    }

    fn apply(&self, image: &str, pg: &str) -> Run {
        let mut c = self.command("apply", "playbook.toml", Some(image), pg);
        run(c.arg("--yes"))
    }

    /// `docker service inspect` of `api_SERVICE` on the manager, formatted.
    fn inspect(&self, service: &str, format: &str) -> String {
        self.lab
            .exec_ok(
                0,
                &format!("docker service inspect --format '{format}' api_{service}"),
            )
            .trim()
            .to_string()
    }
}

/// A client asking the edge for /version as fast as it can, one request at a
/// time, each on a new connection, until stopped.
struct Client {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Served>,
}

#[derive(Debug, Default)]
struct Served {
    ok: usize,
    failed: Vec<String>,
    versions: std::collections::BTreeMap<String, usize>,
}

impl Client {
    fn start(ip: &str) -> Client {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let addr = format!("{ip}:80");
        let handle = std::thread::spawn(move || {
            let mut served = Served::default();
            while !flag.load(Ordering::Relaxed) {
                match get(&addr, "/version") {
                    Ok(body) => {
                        served.ok += 1;
                        *served.versions.entry(body.trim().to_string()).or_default() += 1;
                    }
                    Err(e) => served.failed.push(e),
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            served
        });
        Client { stop, handle }
    }

    fn stop(self) -> Served {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap()
    }
}

/// One HTTP/1.0 GET; the body of a 200, or what went wrong.
fn get(addr: &str, path: &str) -> Result<String, String> {
    let timeout = Some(Duration::from_secs(5));
    let sock = addr.parse().unwrap();
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(5))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(timeout).unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: api\r\n\r\n").as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)
        .map_err(|e| format!("read: {e}"))?;
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    if head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200") {
        Ok(body.to_string())
    } else {
        Err(head.lines().next().unwrap_or("no reply").to_string())
    }
}

fn copy_example(p: &Project) {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/api-stack");
    std::fs::copy(example.join("playbook.toml"), p.path("playbook.toml")).unwrap();
    for entry in std::fs::read_dir(example.join("templates")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), p.path("templates").join(entry.file_name())).unwrap();
    }
}

fn assert_hidden(what: &str, text: &str) {
    for secret in [POSTGRES_PASSWORD, POSTGRES_PASSWORD_2, REDIS_PASSWORD] {
        assert!(!text.contains(secret), "a password in {what}:\n{text}");
    }
}

#[test]
fn the_api_stack_updates_without_downtime_rolls_back_honestly_and_rotates_secrets() {
    let reg = LabRegistry::ensure();
    let lab = Lab::start("app", 2);
    let receiver = Receiver::start(&lab, &reg);
    let p = Project::new();
    copy_example(&p);
    p.write("swarm.toml", SWARM);
    p.write("inventory.toml", &inventory(&lab, &reg, &receiver.url));
    let s = Stack { lab, p, reg };
    let edge = s.lab.hosts[0].ip.clone();

    let started = Instant::now();
    run(s
        .command("apply", "swarm.toml", None, POSTGRES_PASSWORD)
        .arg("--yes"))
    .expect(0);
    eprintln!("swarm: {:.0} s", started.elapsed().as_secs_f64());

    // v1: every service converged when apply returns; every request answered.
    let started = Instant::now();
    let first = s.apply("app:1.0", POSTGRES_PASSWORD).expect(0);
    eprintln!("deploy v1.0: {:.0} s", started.elapsed().as_secs_f64());
    assert_hidden("the first deploy", &first.all());
    for service in ["nginx", "api", "postgres", "redis"] {
        let replicas = s.lab.exec_ok(
            0,
            &format!("docker service ls --filter name=api_{service} --format '{{{{.Replicas}}}}'"),
        );
        let (running, wanted) = replicas.trim().split_once('/').unwrap();
        assert_eq!(
            running,
            wanted.split(' ').next().unwrap(),
            "{service}: {replicas}"
        );
    }
    for _ in 0..50 {
        assert_eq!(
            get(&format!("{edge}:80"), "/version").unwrap().trim(),
            "1.0"
        );
    }

    // v1.1: the plan names the image change of the api service; no request fails.
    let plan = s.plan(Some("app:1.1"), POSTGRES_PASSWORD).expect(2);
    let image_line = plan
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("image:"))
        .unwrap_or_else(|| panic!("no image change in the plan:\n{}", plan.stdout));
    assert!(
        image_line.contains("app:1.0")
            && image_line.contains("-> ")
            && image_line.contains("app:1.1"),
        "{image_line}"
    );
    assert!(plan.stdout.contains("change api"), "{}", plan.stdout);
    let client = Client::start(&edge);
    std::thread::sleep(Duration::from_secs(2));
    let started = Instant::now();
    let update = s.apply("app:1.1", POSTGRES_PASSWORD);
    let took = started.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    let served = client.stop();
    eprintln!(
        "update to v1.1: {:.0} s; {} requests served, {} failed; versions {:?}",
        took.as_secs_f64(),
        served.ok,
        served.failed.len(),
        served.versions
    );
    let update = update.expect(0);
    assert_hidden("the update", &update.all());
    assert!(
        served.failed.is_empty(),
        "failed requests: {:?}",
        served.failed
    );
    assert!(
        served.ok >= 500,
        "only {} requests during the update",
        served.ok
    );
    assert_eq!(served.versions.keys().collect::<Vec<_>>(), ["1.0", "1.1"]);
    assert!(
        s.inspect("api", "{{.Spec.TaskTemplate.ContainerSpec.Image}}")
            .contains("app:1.1")
    );
    s.plan(Some("app:1.1"), POSTGRES_PASSWORD).expect(0);

    // broken: Swarm rolls back; apply fails within 2 minutes, naming the
    // service and the health check; the service runs v1.1; the webhook hears.
    let started = Instant::now();
    let broken = s.apply("app:broken", POSTGRES_PASSWORD);
    let rollback = started.elapsed();
    eprintln!(
        "broken: apply exit {} after {:.0} s",
        broken.code,
        rollback.as_secs_f64()
    );
    let broken = broken.expect(1);
    assert!(rollback < Duration::from_secs(120), "{rollback:?}");
    let out = broken.all();
    assert!(out.contains("service api_api: rolled back"), "{out}");
    eprintln!(
        "{}",
        out.lines()
            .find(|l| l.contains("service api_api:"))
            .unwrap()
    );
    assert!(out.contains("health check"), "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("service api_api: rolled back"))
        .unwrap();
    assert!(
        line.contains("tried ") && line.contains("app:broken"),
        "{line}"
    );
    assert!(
        line.contains("running ") && line.contains("app:1.1"),
        "{line}"
    );
    assert_hidden("the rollback", &out);
    let image = s.inspect("api", "{{.Spec.TaskTemplate.ContainerSpec.Image}}");
    assert!(image.contains("app:1.1"), "{image}");
    assert_eq!(
        get(&format!("{edge}:80"), "/version").unwrap().trim(),
        "1.1"
    );
    let received = receiver.received();
    let note = received
        .iter()
        .map(|r| r.to_string())
        .find(|r| r.contains("rollback") && r.contains("api_api"))
        .unwrap_or_else(|| panic!("no rollback notification: {received:?}"));
    assert!(
        note.contains("app:broken") && note.contains("app:1.1"),
        "{note}"
    );
    assert_hidden("the notification", &note);

    // A new database password: a new secret, the services using it updated, the old one gone.
    let old_secret = s.inspect(
        "postgres",
        "{{range .Spec.TaskTemplate.ContainerSpec.Secrets}}{{.SecretName}}{{end}}",
    );
    let rotate = s.apply("app:1.1", POSTGRES_PASSWORD_2).expect(0);
    assert_hidden("the rotation", &rotate.all());
    let new_secret = s.inspect(
        "postgres",
        "{{range .Spec.TaskTemplate.ContainerSpec.Secrets}}{{.SecretName}}{{end}}",
    );
    assert_ne!(old_secret, new_secret);
    assert!(
        new_secret.starts_with("api_postgres_password_"),
        "{new_secret}"
    );
    let api_secrets = s.inspect(
        "api",
        "{{range .Spec.TaskTemplate.ContainerSpec.Secrets}}{{.SecretName}} {{end}}",
    );
    assert!(api_secrets.contains(&new_secret), "{api_secrets}");
    let secrets = s.lab.exec_ok(0, "docker secret ls --format '{{.Name}}'");
    assert!(!secrets.contains(&old_secret), "{secrets}");
    assert!(secrets.contains(&new_secret), "{secrets}");

    // A killed apply in the middle of a deploy: a second one meanwhile is
    // refused, naming the holder; after the kill, the next converges.
    let mut killed = s
        .command(
            "apply",
            "playbook.toml",
            Some("app:1.0"),
            POSTGRES_PASSWORD_2,
        )
        .arg("--yes")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while !s
        .inspect("api", "{{.Spec.TaskTemplate.ContainerSpec.Image}}")
        .contains("app:1.0")
    {
        assert!(Instant::now() < deadline, "the deploy did not start");
        std::thread::sleep(Duration::from_millis(500));
    }
    let refused = s.apply("app:1.0", POSTGRES_PASSWORD_2).expect(1);
    assert!(
        refused.all().contains("locked by slipway apply by"),
        "{}",
        refused.all()
    );
    killed.kill().unwrap();
    killed.wait().unwrap();
    let again = s.apply("app:1.0", POSTGRES_PASSWORD_2);
    assert_eq!(again.code, 0, "{}", again.all());
    s.plan(Some("app:1.0"), POSTGRES_PASSWORD_2).expect(0);
    assert_eq!(
        get(&format!("{edge}:80"), "/version").unwrap().trim(),
        "1.0"
    );
}

//! The postgres_backup role on a real lab swarm: PostgreSQL (the lab image)
//! deployed by the `app` role on lab-1 with the lab's app, which writes rows
//! through its API, backed up by the role's timer with a
//! restore drill whose row counts match, copied to lab-2 over SSH with its
//! checksum verified there; a corrupted backup fails its drill and the
//! webhook and an SMTP server on this machine hear of it; node-exporter
//! serves the metrics and Prometheus scrapes them; `slipway backup`
//! runs one now; `slipway restore --from latest` brings a dropped table back.

mod common;

use std::time::{Duration, Instant};

use common::lab::Lab;
use common::notify::MailServer;
use common::receiver::Receiver;
use common::registry::LabRegistry;
use common::run::{Project, Run, run, slipway};

const PASSWORD: &str = "pg-backup-Qw81zr5t";
/// The SMTP login's password: the test server asks for none, the host's files hold it.
const SMTP_PASSWORD: &str = "smtp-backup-Vb27kx4m";
const TEXTFILE: &str = "/var/lib/node_exporter/textfile/slipway_postgres_backup.prom";

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

const STACK_TEMPLATE: &str = r#"services:
  postgres:
    image: {{ postgres_image }}
    environment:
      POSTGRES_DB: app
      POSTGRES_USER: app
      POSTGRES_PASSWORD_FILE: /run/secrets/postgres_password
    secrets: [postgres_password]
    volumes:
      - postgres_data:/var/lib/postgresql/data
    stop_signal: SIGINT
    deploy:
      replicas: 1
      # The lab's kernel has no IPVS for virtual IPs: the API finds it by DNS.
      endpoint_mode: dnsrr
  api:
    image: {{ api_image }}
    environment:
      POSTGRES_HOST: postgres
      POSTGRES_DB: app
      POSTGRES_USER: app
      POSTGRES_PASSWORD_FILE: /run/secrets/postgres_password
    secrets: [postgres_password]
    deploy:
      replicas: 1
      endpoint_mode: dnsrr
volumes:
  postgres_data:
"#;

/// Docker, a one-node swarm and the stack on lab-1; rsync on lab-2, the copy's destination.
const STACK: &str = r#"
[[play]]
hosts = "managers"
roles = ["docker", "swarm"]

[[play]]
hosts = "managers"
roles = ["app"]
[play.vars]
app_stack = "api"
app_secrets = { postgres_password = { secret = true, env = "POSTGRES_PASSWORD" } }
app_update_timeout = 240

[[play]]
hosts = "workers"
[[play.resources]]
type = "package"
name = "rsync"
"#;

/// The role, with a timer every 20 s (the default is nightly).
fn backup_playbook(copy_to: &str) -> String {
    format!(
        "[[play]]\nhosts = \"managers\"\nroles = [\"postgres_backup\"]\n[play.vars]\n\
         postgres_backup_schedule = \"*:*:0/20\"\npostgres_backup_copy_to = {}\n\
         postgres_backup_copy_key = {{ secret = true, file = \"copy_key\" }}\n",
        toml_str(copy_to)
    )
}

struct Db {
    lab: Lab,
    p: Project,
}

impl Db {
    fn slipway(&self, args: &[&str]) -> Run {
        let mut c = slipway(self.p.dir.path());
        c.current_dir(self.p.dir.path())
            .args(args)
            .arg("-i")
            .arg(self.p.path("inventory.toml"))
            .env("POSTGRES_PASSWORD", PASSWORD);
        run(&mut c)
    }

    fn apply(&self, playbook: &str) -> Run {
        self.slipway(&["apply", "--yes", playbook])
    }

    /// psql as the database owner in the running postgres task on lab-1.
    fn psql(&self, sql: &str) -> String {
        self.lab.exec_ok(
            0,
            &format!(
                "docker exec -u postgres $(docker ps -q --filter label=com.docker.swarm.service.name=api_postgres) psql -X -At -v ON_ERROR_STOP=1 -U app -d app -c {}",
                shell_quote(sql)
            ),
        )
    }

    /// Polls `cmd` on host `i` until it succeeds, at most `secs` seconds.
    fn wait_for(&self, i: usize, cmd: &str, secs: u64, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let out = self.lab.exec(i, cmd);
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).into_owned();
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {secs} s: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// `key value` lines of the backup script's record.
fn value<'a>(record: &'a str, key: &str) -> &'a str {
    record
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or("")
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(&format!("slipway_postgres_backup_{name}{{")))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

#[test]
fn backups_are_drilled_copied_measured_reported_and_restored() {
    let reg = LabRegistry::ensure();
    let lab = Lab::start("backup", 2);
    let receiver = Receiver::start(&lab, &reg);
    // On this machine, which lab hosts reach at their network's gateway.
    let gateway = format!("{}.1", lab.hosts[0].ip.rsplit_once('.').unwrap().0);
    let smtp = MailServer::start_on(&gateway);
    let p = Project::new();
    let key = p.path("copy_key");
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "backup-copy", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let public = std::fs::read_to_string(p.path("copy_key.pub")).unwrap();
    lab.exec_ok(
        1,
        &format!(
            "mkdir -p /srv/backups && echo {} >> /root/.ssh/authorized_keys",
            shell_quote(public.trim())
        ),
    );
    let base = std::fs::read_to_string(&lab.inventory).unwrap();
    p.write(
        "inventory.toml",
        &format!(
            "{base}\n[vars]\ndocker_source = \"distribution\"\ndocker_storage_driver = \"vfs\"\n\
             docker_registries = [{{ address = {addr}, ca = {ca}, username = {user}, password = {{ secret = true, value = {pw} }} }}]\n\
             postgres_image = {pg}\napi_image = {api}\n\
             \n[notify]\ndiscord_webhook = {{ secret = true, value = {hook} }}\n\
             [notify.email]\nsmtp = \"{gateway}:{port}\"\ntls = \"none\"\nusername = \"backup\"\n\
             password = {{ secret = true, value = \"{SMTP_PASSWORD}\" }}\n\
             from = \"slipway@example.com\"\nto = [\"ops@example.com\"]\n",
            addr = toml_str(&reg.address),
            ca = toml_str(&reg.ca_pem),
            user = toml_str(&reg.username),
            pw = toml_str(&reg.password),
            pg = toml_str(&reg.image("postgres")),
            api = toml_str(&reg.image("app:1.1")),
            hook = toml_str(&receiver.url),
            port = smtp.port,
        ),
    );
    p.write("templates/stack.yml.j2", STACK_TEMPLATE);
    p.write("stack.toml", STACK);
    let copy_to = format!("root@{}:/srv/backups/db", lab.hosts[1].ip);
    p.write("backup.toml", &backup_playbook(&copy_to));
    let db = Db { lab, p };

    let started = Instant::now();
    db.apply("stack.toml").expect(0);
    eprintln!(
        "docker, swarm, postgres: {:.0} s",
        started.elapsed().as_secs_f64()
    );
    // Over TCP: the entrypoint's socket-only first server does not count.
    db.wait_for(
        0,
        "docker exec $(docker ps -q --filter label=com.docker.swarm.service.name=api_postgres) pg_isready -q -h 127.0.0.1",
        120,
        "postgres ready",
    );
    // Rows written through the API (POST /cgi-bin/items stores one in `items`).
    db.wait_for(
        0,
        "docker exec $(docker ps -q --filter label=com.docker.swarm.service.name=api_api) sh -c \
         'for i in $(seq 50); do wget -q -O- --post-data=\"row $i\" http://127.0.0.1:8080/cgi-bin/items >/dev/null || exit 1; done'",
        120,
        "50 rows written through the API",
    );
    db.psql(
        "CREATE TABLE bulk (id int PRIMARY KEY, name text); \
         INSERT INTO bulk SELECT i, 'item ' || i FROM generate_series(1, 1000) i; \
         CREATE TABLE users (name text); INSERT INTO users VALUES ('a'), ('b'), ('c');",
    );
    assert_eq!(db.psql("SELECT count(*) FROM items").trim(), "50");

    // The timer's backup: drill passed with the same row counts, copy verified on lab-2.
    let started = Instant::now();
    let applied = db.apply("backup.toml").expect(0);
    for secret in ["PRIVATE KEY", SMTP_PASSWORD] {
        assert!(!applied.all().contains(secret), "{}", applied.all());
    }
    let login = "/etc/slipway/postgres-backup/notify/email.login";
    let mode = db.lab.exec_ok(0, &format!("stat -c '%a %U' {login}"));
    assert_eq!(mode.trim(), "600 root");
    eprintln!(
        "postgres_backup role: {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let record = db.wait_for(
        0,
        "grep -qx 'result ok' /var/lib/slipway/postgres-backup/last && cat /var/lib/slipway/postgres-backup/last",
        180,
        "a backup by the timer",
    );
    eprintln!(
        "timer's backup: {} bytes, backup {} s, restore drill {} s",
        value(&record, "size"),
        value(&record, "backup_seconds"),
        value(&record, "drill_seconds")
    );
    assert_eq!(value(&record, "mode"), "run", "{record}");
    assert_eq!(value(&record, "drill"), "passed", "{record}");
    assert!(record.contains("restored public.bulk 1000\n"), "{record}");
    assert!(record.contains("restored public.items 50\n"), "{record}");
    assert!(record.contains("restored public.users 3\n"), "{record}");
    let file = value(&record, "file").to_string();
    let counts = db.lab.exec_ok(
        0,
        &format!("cat /var/backups/slipway/postgres/{file}.counts"),
    );
    assert_eq!(
        counts,
        "public.bulk 1000\npublic.items 50\npublic.users 3\n"
    );
    // No throwaway container or network is left behind.
    let left = db.lab.exec_ok(0, "docker ps -aq --filter name=slipway-drill; docker network ls -q --filter name=slipway-drill");
    assert_eq!(left.trim(), "", "drill leftovers");
    db.lab.exec_ok(
        1,
        &format!("cd /srv/backups/db && sha256sum -c {file}.sha256 && test -s {file}.counts"),
    );

    // Converged: a second plan has nothing to do (the units are loaded as written).
    db.slipway(&["plan", "--detailed-exitcode", "backup.toml"])
        .expect(0);

    // From here on, runs are started by the test only.
    db.lab.exec_ok(
        0,
        "systemctl stop slipway-postgres-backup.timer && flock /run/lock/slipway-postgres-backup.lock true",
    );

    // A corrupted backup fails its drill, the metric says so, the webhook hears.
    db.lab.exec_ok(
        0,
        "f=$(ls /var/backups/slipway/postgres/*.dump | sort | tail -n 1); printf corrupt | dd of=\"$f\" bs=1 seek=200 conv=notrunc",
    );
    let drill = db
        .lab
        .exec(0, "/usr/local/sbin/slipway-postgres-backup drill latest");
    assert!(!drill.status.success());
    let metrics = db.lab.exec_ok(0, &format!("cat {TEXTFILE}"));
    assert_eq!(metric(&metrics, "drill_success"), 0.0, "{metrics}");
    let payloads = receiver.received();
    let content = payloads
        .iter()
        .filter_map(|p| p["content"].as_str())
        .find(|c| c.contains("checksum mismatch"))
        .unwrap_or_else(|| panic!("no notification of the failed drill: {payloads:?}"));
    assert!(
        content.starts_with("slipway postgres_backup on "),
        "{content}"
    );
    // And by mail, sent by the host with curl over SMTP.
    let mail = smtp.wait_for_mail();
    let host = db.lab.hosts[0].name.clone();
    for line in [
        format!("Subject: slipway postgres_backup on {host}: failure"),
        "To: ops@example.com".into(),
        "Date: ".into(),
        format!("drill of api_postgres/app on {host} failed:"),
        "checksum mismatch".into(),
    ] {
        assert!(mail.contains(&line), "{line}: {mail}");
    }
    assert!(!mail.contains(SMTP_PASSWORD), "{mail}");

    // slipway backup: a new backup now, its drill passed.
    let started = Instant::now();
    let now = db.slipway(&["backup"]).expect(0);
    eprintln!(
        "slipway backup: {:.1} s\n{}",
        started.elapsed().as_secs_f64(),
        now.stdout
    );
    assert!(now.stdout.contains("backup ok: app-"), "{}", now.stdout);
    assert!(
        now.stdout.contains("restore drill passed"),
        "{}",
        now.stdout
    );
    assert!(
        now.stdout.contains("public.bulk: 1000 rows"),
        "{}",
        now.stdout
    );
    assert!(
        now.stdout.contains("checksum verified there"),
        "{}",
        now.stdout
    );

    // node-exporter's textfile collector serves the metrics.
    db.lab.exec_ok(
        0,
        &format!(
            "docker run -d --name node-exporter --network host -v /var/lib/node_exporter/textfile:/textfile:ro {} \
             --collector.textfile.directory=/textfile --web.listen-address=127.0.0.1:9100",
            reg.image("node-exporter")
        ),
    );
    let served = db.wait_for(
        0,
        "curl -fsS http://127.0.0.1:9100/metrics | grep '^slipway_postgres_backup_'",
        60,
        "node-exporter serving the backup metrics",
    );
    assert_eq!(metric(&served, "drill_success"), 1.0, "{served}");
    assert_eq!(metric(&served, "last_run_success"), 1.0, "{served}");
    assert!(metric(&served, "size_bytes") > 1000.0, "{served}");
    let age = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        - metric(&served, "last_success_timestamp_seconds");
    assert!(age.abs() < 600.0, "{served}");
    // Prometheus scrapes them from node-exporter.
    db.lab.exec_ok(
        0,
        &format!(
            "printf 'global:\\n  scrape_interval: 2s\\nscrape_configs:\\n  - job_name: node\\n    static_configs:\\n      - targets: [\"127.0.0.1:9100\"]\\n' > /root/prometheus.yml && \
             docker run -d --name prometheus --network host -v /root/prometheus.yml:/etc/prometheus/prometheus.yml:ro {} \
             --config.file=/etc/prometheus/prometheus.yml --storage.tsdb.path=/prometheus --web.listen-address=127.0.0.1:9090",
            reg.image("prometheus")
        ),
    );
    let scraped = db.wait_for(
        0,
        "curl -fsS 'http://127.0.0.1:9090/api/v1/query?query=slipway_postgres_backup_drill_success' | grep '\"1\"\\]'",
        60,
        "Prometheus scraping the backup metrics",
    );
    assert!(scraped.contains("\"job\":\"node\""), "{scraped}");

    // A dropped table comes back; without a terminal, only with --yes.
    db.psql("DROP TABLE items; INSERT INTO users VALUES ('d');");
    let refused = db
        .slipway(&["restore", "--limit", &host, "--from", "latest"])
        .expect(1);
    assert!(refused.stderr.contains("pass --yes"), "{}", refused.stderr);
    assert!(refused.stderr.contains("(missing)"), "{}", refused.stderr);
    let started = Instant::now();
    let restored = db
        .slipway(&["restore", "--limit", &host, "--from", "latest", "--yes"])
        .expect(0);
    eprintln!(
        "slipway restore: {:.1} s\n{}",
        started.elapsed().as_secs_f64(),
        restored.all()
    );
    assert!(
        restored
            .stdout
            .contains("every table has the backup's row count"),
        "{}",
        restored.stdout
    );
    assert_eq!(db.psql("SELECT count(*) FROM items").trim(), "50");
    assert_eq!(db.psql("SELECT count(*) FROM bulk").trim(), "1000");
    let through_api = db.lab.exec_ok(
        0,
        "docker exec $(docker ps -q --filter label=com.docker.swarm.service.name=api_api) wget -q -O- http://127.0.0.1:8080/cgi-bin/items",
    );
    assert_eq!(through_api.trim(), "50");
    assert_eq!(db.psql("SELECT count(*) FROM users").trim(), "3");
}

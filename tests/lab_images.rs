//! The lab images really run (on this machine's dockerd): each serves what the stacks ask of
//! it, with the entrypoint and user of its upstream image. And the lab registry serves them to
//! a lab host over TLS, to logged-in clients only.

mod common;

use common::lab::{Lab, LabOs, require_docker};
use common::registry::LabRegistry;
use common::scratch::{Scratch, docker, docker_ok, eventually, stdout};
use std::io::Write;
use std::process::{Command, Stdio};

#[test]
fn lab_images_run_as_their_upstream_images_do() {
    require_docker();
    let reg = LabRegistry::ensure();
    let img = |name: &str| reg.local_image(name);
    let s = Scratch::new("lab_images_run");

    // Prometheus stack: the upstream entrypoints, run as nobody, serving their APIs.
    let version = docker_ok(&["run", "--rm", &img("prometheus"), "--version"]);
    assert!(version.starts_with("prometheus, version 2."), "{version}");
    let prom = s.start("prometheus", &[&img("prometheus")]);
    assert!(
        s.get(&prom, "http://127.0.0.1:9090/-/ready")
            .contains("Ready")
    );
    assert!(
        s.get(&prom, "http://127.0.0.1:9090/graph")
            .contains("<html")
    );
    let am = s.start("alertmanager", &[&img("alertmanager")]);
    s.get(&am, "http://127.0.0.1:9093/-/ready");
    let node = s.start("node-exporter", &[&img("node-exporter")]);
    assert!(
        s.get(&node, "http://127.0.0.1:9100/metrics")
            .contains("node_cpu_seconds_total")
    );
    for c in [&prom, &am, &node] {
        assert_eq!(docker_ok(&["exec", c, "id", "-u"]).trim(), "65534", "{c}");
    }

    // postgres: initialised from POSTGRES_PASSWORD_FILE, password logins over the network.
    let pw = s.dir.join("pg_password");
    std::fs::write(&pw, "lab-pg-password\n").unwrap();
    let mount = format!("{}:/run/secrets/pg:ro", pw.display());
    let pg_image = img("postgres");
    let pg = s.start(
        "postgres",
        &[
            "-v",
            &mount,
            "-e",
            "POSTGRES_PASSWORD_FILE=/run/secrets/pg",
            "-e",
            "POSTGRES_USER=app",
            &pg_image,
        ],
    );
    let psql = |password: &str| {
        s.once(&[
            "-e",
            &format!("PGPASSWORD={password}"),
            &pg_image,
            "psql",
            "-h",
            &pg,
            "-U",
            "app",
            "-tAc",
            "select current_user",
        ])
    };
    let login = eventually("postgres accepts a password login", || {
        let out = psql("lab-pg-password");
        out.status.success().then(|| stdout(&out))
    });
    assert_eq!(login.trim(), "app");
    let wrong = psql("not-the-password");
    assert!(
        !wrong.status.success(),
        "a wrong password logs in: {}",
        stdout(&wrong)
    );
    // The server runs as postgres (999), not as root.
    assert_eq!(
        docker_ok(&["exec", &pg, "stat", "-c", "%u", "/proc/1"]).trim(),
        "999"
    );
    // The app keeps rows there: POST /cgi-bin/items stores one, GET counts them.
    let pg_host = format!("POSTGRES_HOST={pg}");
    let writer = s.start(
        "app-writer",
        &[
            "-v",
            &mount,
            "-e",
            &pg_host,
            "-e",
            "POSTGRES_USER=app",
            "-e",
            "POSTGRES_DB=app",
            "-e",
            "POSTGRES_PASSWORD_FILE=/run/secrets/pg",
            &img("app:1.1"),
        ],
    );
    let items = "http://127.0.0.1:8080/cgi-bin/items";
    for (i, body) in ["first", "it's second"].iter().enumerate() {
        let post = format!("--post-data={body}");
        let id = eventually("the app stores a row", || {
            let out = docker(&["exec", &writer, "wget", "-q", "-O-", &post, items]);
            out.status.success().then(|| stdout(&out))
        });
        assert_eq!(id.trim(), (i + 1).to_string());
    }
    assert_eq!(s.get(&writer, items).trim(), "2");
    let rows = s.once(&[
        "-e",
        "PGPASSWORD=lab-pg-password",
        &pg_image,
        "psql",
        "-h",
        &pg,
        "-U",
        "app",
        "-tAc",
        "select body from items order by id",
    ]);
    assert_eq!(stdout(&rows), "first\nit's second\n");
    let dsn =
        format!("DATA_SOURCE_NAME=postgresql://app:lab-pg-password@{pg}:5432/app?sslmode=disable");
    let exporter = s.start(
        "postgres-exporter",
        &["-e", &dsn, &img("postgres-exporter")],
    );
    eventually("postgres-exporter reports pg_up 1", || {
        let out = docker(&[
            "exec",
            &exporter,
            "wget",
            "-q",
            "-O-",
            "http://127.0.0.1:9187/metrics",
        ]);
        stdout(&out).lines().any(|l| l == "pg_up 1").then_some(())
    });

    // redis: arguments alone run redis-server; the password is required.
    let redis = s.start(
        "redis",
        &[&img("redis"), "--requirepass", "lab-redis-password"],
    );
    let redis_image = img("redis");
    let cli = |args: &[&str]| {
        let mut all = vec![redis_image.as_str(), "redis-cli", "-h", &redis];
        all.extend_from_slice(args);
        stdout(&s.once(&all))
    };
    eventually("redis answers PING with the password", || {
        (cli(&["-a", "lab-redis-password", "--no-auth-warning", "PING"]).trim() == "PONG")
            .then_some(())
    });
    assert!(
        cli(&["PING"]).contains("NOAUTH"),
        "redis answers without the password"
    );

    // nginx, caddy: their default sites.
    let nginx = s.start("nginx", &[&img("nginx")]);
    assert!(s.get(&nginx, "http://127.0.0.1/").contains("nginx"));
    let caddy = s.start("caddy", &[&img("caddy")]);
    assert!(s.get(&caddy, "http://127.0.0.1/").contains("Caddy"));

    // pebble: the ACME directory over TLS, verified against the image's test CA.
    let pebble = s.start("pebble", &[&img("pebble")]);
    let minica = docker_ok(&["exec", &pebble, "cat", "/test/certs/pebble.minica.pem"]);
    std::fs::write(s.dir.join("minica.pem"), minica).unwrap();
    let ca_mount = format!("{}:/minica.pem:ro", s.dir.join("minica.pem").display());
    let request = "printf 'GET /dir HTTP/1.0\\r\\nHost: pebble\\r\\n\\r\\n' | \
        openssl s_client -quiet -verify_return_error -CAfile /minica.pem -verify_hostname pebble -connect \"$0:14000\"";
    let dir = eventually("pebble serves its ACME directory", || {
        let out = s.once(&[
            "-v",
            &ca_mount,
            "--entrypoint",
            "/bin/sh",
            &img("registry"),
            "-c",
            request,
            &pebble,
        ]);
        let body = stdout(&out);
        body.contains("newAccount").then_some(body)
    });
    assert!(dir.contains("newOrder"), "{dir}");

    // The app: versions on /version, /health ok except for the broken one.
    for (name, v) in [
        ("app:1.0", "1.0"),
        ("app:1.1", "1.1"),
        ("app:broken", "broken"),
    ] {
        let app = s.start(&name.replace(':', "-"), &[&img(name)]);
        assert_eq!(s.get(&app, "http://127.0.0.1:8080/version").trim(), v);
        assert!(s.get(&app, "http://127.0.0.1:8080/").contains(v));
        let health = docker(&[
            "exec",
            &app,
            "wget",
            "-q",
            "-O-",
            "http://127.0.0.1:8080/health",
        ]);
        assert_eq!(
            health.status.success(),
            v != "broken",
            "{name} /health: {}",
            stdout(&health)
        );
    }

    // The receiver records POSTed payloads, one per line, and returns them.
    let receiver = s.start("receiver", &[&img("receiver")]);
    s.get(&receiver, "http://127.0.0.1:8080/health");
    for body in ["{\"alert\":\"one\",\n\"n\":1}", "{\"alert\":\"two\"}"] {
        docker_ok(&[
            "exec",
            &receiver,
            "wget",
            "-q",
            "-O-",
            "--post-data",
            body,
            "http://127.0.0.1:8080/hook",
        ]);
    }
    assert_eq!(
        s.get(&receiver, "http://127.0.0.1:8080/received"),
        "{\"alert\":\"one\",\"n\":1}\n{\"alert\":\"two\"}\n"
    );
}

#[test]
fn lab_hosts_pull_from_the_lab_registry_with_its_ca_and_a_login() {
    require_docker();
    let reg = LabRegistry::ensure();
    let lab = Lab::start_os("lab_images_pull", 1, LabOs::Ubuntu);
    // vfs, as slipway's lab tests set docker_storage_driver: overlay mounts fail in a lab host.
    lab.exec_ok(
        0,
        "mkdir -p /etc/docker && echo '{\"storage-driver\": \"vfs\"}' >/etc/docker/daemon.json && \
         apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive \
         apt-get install -y -q --no-install-recommends docker.io >/dev/null 2>&1",
    );
    lab.exec_ok(
        0,
        &format!(
            "mkdir -p /etc/docker/certs.d/{a} && cat >/etc/docker/certs.d/{a}/ca.crt <<'EOF'\n{ca}EOF",
            a = reg.address,
            ca = reg.ca_pem
        ),
    );
    let image = reg.image("app:1.1");
    assert!(
        image.starts_with("slipway-registry.test:5443/lab/app:"),
        "{image}"
    );

    // Without a login the registry refuses (TLS itself verified: the error is about auth).
    let refused = lab.exec(0, &format!("docker pull -q {image}"));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "pulled without a login");
    assert!(err.contains("no basic auth credentials"), "{err}");

    let docker_login = |password: &str| {
        let mut child = Command::new("docker")
            .args([
                "exec",
                "-i",
                &lab.host(0).name,
                "docker",
                "login",
                &reg.address,
            ])
            .args(["-u", &reg.username, "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(password.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    assert!(
        !docker_login("not-the-password").status.success(),
        "a wrong password logs in"
    );
    let ok = docker_login(&reg.password);
    assert!(
        ok.status.success(),
        "docker login: {}",
        String::from_utf8_lossy(&ok.stderr)
    );

    lab.exec_ok(0, &format!("docker pull -q {image}"));
    lab.exec_ok(0, &format!("docker run -d --name app-1-1 {image}"));
    let version = lab.exec_ok(
        0,
        "for i in $(seq 50); do docker exec app-1-1 wget -q -O- http://127.0.0.1:8080/version && exit 0; \
         sleep 0.2; done; exit 1",
    );
    assert_eq!(version.trim(), "1.1");
}

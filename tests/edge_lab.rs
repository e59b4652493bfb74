//! The `edge` role for real on a two-host lab swarm (the worker is the edge
//! node, converged while the leader deploys the stack), against Pebble, an
//! ACME server, on the lab network: the
//! certificate Pebble issues for api.lab.test (not the bootstrap one) is
//! served and proxies to a small app stack; http:// redirects to https://; a
//! redeploy of the edge stack and a restart of the node keep the certificate
//! (same serial, no new issuance); a certificate made due is renewed by the
//! timer's service and served without a redeploy. A lab host that keeps
//! asking past the rate limit gets 429s, under its own address in the
//! access log, and fail2ban bans it from 443 while others still get in.
//! Also: the built-in
//! nginx.conf, rendered, passes `nginx -t` in the lab's nginx image.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::lab::{Lab, require_docker};
use common::registry::LabRegistry;
use common::run::{Project, on, run, slipway};

const NAME: &str = "api.lab.test";
/// The lab host that is the edge node: the worker.
const EDGE: usize = 1;

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

const PLAYBOOK: &str = r#"
[[play]]
name = "trust, docker"
hosts = "all"
roles = ["base", "docker"]

[play.vars]
base_packages = ["ca-certificates", "curl"]
unattended_upgrades = false
time_sync = false

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

[[play]]
name = "edge"
hosts = "all"
roles = ["edge"]

[[play]]
name = "the edge's jail"
hosts = "workers"
roles = ["fail2ban"]

[play.vars]
fail2ban_edge = true
fail2ban_edge_maxretry = 5
fail2ban_edge_bantime = "10m"

[[play]]
name = "the app"
hosts = "managers"
roles = ["app"]

[play.vars]
app_stack = "app"
app_update_timeout = 120
"#;

/// The app, reachable by name on the edge network.
const APP: &str = r#"services:
  app:
    image: {{ app_image }}
    networks: [edge]
    deploy:
      endpoint_mode: dnsrr
networks:
  edge:
    external: true
    name: edge
"#;

/// Runs `cmd` on this machine; its stdout, or a panic with everything.
fn local(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `f` every second for at most `limit`, until it gives a value.
fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Pebble on the lab network: its HTTP-01 validation on port 80, reaching
/// api.lab.test at the edge node; no random nonce rejections, no reused
/// authorizations, no sleeping before validating.
struct Pebble {
    container: String,
    ip: String,
}

impl Pebble {
    fn start(lab: &Lab, reg: &LabRegistry, dir: &Path) -> Pebble {
        let net = lab.hosts[0].ip.rsplit_once('.').unwrap().0;
        let ip = format!("{net}.249");
        let container = format!("{}-pebble", lab.name);
        let mut cmd = Command::new("docker");
        cmd.args(["create", "--name", &container])
            .args(["--label", "slipway-lab=1"])
            .arg(format!("--label=slipway-lab.name={}", lab.name))
            .arg(format!("--network=slipway-{}", lab.name))
            .arg(format!("--ip={ip}"))
            .arg(format!("--add-host={NAME}:{}", lab.hosts[EDGE].ip))
            .args([
                "-e",
                "PEBBLE_VA_NOSLEEP=1",
                "-e",
                "PEBBLE_WFE_NONCEREJECT=0",
            ])
            .args(["-e", "PEBBLE_AUTHZREUSE=0"]);
        if let Ok(run_id) = std::env::var("SLIPWAY_LAB_RUN") {
            cmd.arg(format!("--label=slipway-lab.run={run_id}"));
        }
        cmd.arg(reg.local_image("pebble"))
            .args(["-config", "/test/config/edge.json"]);
        local(&mut cmd);
        let config = dir.join("pebble.json");
        std::fs::write(
            &config,
            r#"{"pebble": {"listenAddress": "0.0.0.0:14000", "managementListenAddress": "0.0.0.0:15000",
  "certificate": "test/certs/localhost/cert.pem", "privateKey": "test/certs/localhost/key.pem",
  "httpPort": 80, "tlsPort": 5001, "ocspResponderURL": "", "externalAccountBindingRequired": false}}"#,
        )
        .unwrap();
        local(
            Command::new("docker")
                .arg("cp")
                .arg(&config)
                .arg(format!("{container}:/test/config/edge.json")),
        );
        local(Command::new("docker").args(["start", &container]));
        Pebble { container, ip }
    }

    /// Pebble's TLS CA (its ACME server's certificate), PEM.
    fn tls_ca(&self) -> String {
        local(Command::new("docker").args([
            "exec",
            &self.container,
            "cat",
            "/test/certs/pebble.minica.pem",
        ]))
    }

    /// How many orders Pebble took, and certificates it issued, so far.
    fn orders_and_issued(&self) -> (usize, usize) {
        let out = Command::new("docker")
            .args(["logs", &self.container])
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        let count = |what: &str| log.lines().filter(|l| l.contains(what)).count();
        (count("Added order"), count("Issued certificate serial"))
    }
}

/// The serial and issuer of the certificate the edge node serves for NAME.
fn served(ip: &str) -> Option<(String, String)> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect {ip}:443 -servername {NAME} </dev/null 2>/dev/null | openssl x509 -noout -serial -issuer"
        ))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let serial = text.lines().find_map(|l| l.strip_prefix("serial="))?;
    let issuer = text.lines().find_map(|l| l.strip_prefix("issuer="))?;
    Some((serial.to_string(), issuer.trim().to_string()))
}

/// The certificate served once it is one Pebble issued, not the bootstrap one.
fn served_from_pebble(ip: &str, limit: Duration) -> String {
    wait_for("a certificate issued by Pebble", limit, || {
        served(ip)
            .filter(|(_, issuer)| !issuer.contains("slipway bootstrap"))
            .map(|(serial, _)| serial)
    })
}

#[test]
fn edge_serves_pebbles_certificate_keeps_it_and_renews_it() {
    let reg = LabRegistry::ensure();
    let lab = Lab::start("edge", 2);
    let p = Project::new();
    let pebble = Pebble::start(&lab, &reg, p.dir.path());
    let ip = lab.hosts[EDGE].ip.clone();
    // The ACME directory's certificate names `pebble`.
    lab.exec_ok(EDGE, &format!("echo '{} pebble' >> /etc/hosts", pebble.ip));

    let base = std::fs::read_to_string(&lab.inventory).unwrap();
    p.write(
        "inventory.toml",
        &format!(
            "{base}\n[vars]\ndocker_source = \"distribution\"\ndocker_storage_driver = \"vfs\"\n\
             docker_registries = [{{ address = {addr}, ca = {ca}, username = {user}, password = {{ secret = true, value = {pw} }} }}]\n\
             ca_certificates = {{ pebble = {pebble_ca} }}\n\
             swarm_networks = [{{ name = \"edge\", attachable = true, encrypted = false }}]\n\
             edge_routes = [{{ host = \"{NAME}\", upstream = \"app_app:8080\" }}]\n\
             edge_acme_email = \"ops@lab.test\"\nedge_acme_directory = \"https://pebble:14000/dir\"\n\
             edge_rate_limit = \"60r/m\"\nedge_rate_burst = 10\n\
             edge_image = {nginx}\napp_image = {app}\n\
             \n[groups.workers]\nvars = {{ swarm_node_labels = {{ edge = \"true\" }} }}\n",
            addr = toml_str(&reg.address),
            ca = toml_str(&reg.ca_pem),
            user = toml_str(&reg.username),
            pw = toml_str(&reg.password),
            pebble_ca = toml_str(&pebble.tls_ca()),
            nginx = toml_str(&reg.image("nginx")),
            app = toml_str(&reg.image("app:1.0")),
        ),
    );
    p.write("playbook.toml", PLAYBOOK);
    p.write("templates/stack.yml.j2", APP);
    let slipway_on = |args: &[&str]| {
        on(
            &p,
            &p.path("inventory.toml"),
            &p.path("playbook.toml"),
            args,
        )
    };

    let started = Instant::now();
    slipway_on(&["apply", "--yes"]).expect(0);
    let first = served_from_pebble(&ip, Duration::from_secs(120));
    eprintln!(
        "edge: Pebble's certificate served {:?} after the apply began",
        started.elapsed()
    );
    assert_eq!(pebble.orders_and_issued(), (1, 1));
    slipway_on(&["plan", "--detailed-exitcode"]).expect(0);

    // Pebble's issuing root is not its TLS CA: fetched from its management API.
    let root = p.write(
        "pebble-root.pem",
        &local(
            Command::new("curl").args([
                "-sf",
                "--resolve",
                &format!("pebble:15000:{}", pebble.ip),
                "--cacert",
                &p.write("pebble-tls.pem", &pebble.tls_ca())
                    .to_string_lossy(),
                "https://pebble:15000/roots/0",
            ]),
        ),
    );
    let https = |path: &str| {
        local(Command::new("curl").args([
            "-sS",
            "--cacert",
            &root.to_string_lossy(),
            "--resolve",
            &format!("{NAME}:443:{ip}"),
            "-D-",
            &format!("https://{NAME}{path}"),
        ]))
    };
    let reply = https("/version");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.trim_end().ends_with("1.0"), "{reply}");
    assert!(
        reply.contains("Strict-Transport-Security: max-age=31536000"),
        "{reply}"
    );
    let redirect = local(Command::new("curl").args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
        "-H",
        &format!("Host: {NAME}"),
        &format!("http://{ip}/version"),
    ]));
    assert_eq!(redirect, format!("301 https://{NAME}/version"));
    // A challenge this node has is served; one it has not is asked of the
    // other edge nodes (here none but itself), then not found.
    lab.exec_ok(
        EDGE,
        "mkdir -p /var/lib/slipway/edge/acme/.well-known/acme-challenge && echo probe-7c1 >/var/lib/slipway/edge/acme/.well-known/acme-challenge/probe",
    );
    let challenge = |token: &str| {
        local(Command::new("curl").args([
            "-s",
            "-w",
            " %{http_code}",
            &format!("http://{ip}/.well-known/acme-challenge/{token}"),
        ]))
    };
    assert_eq!(challenge("probe"), "probe-7c1\n 200");
    assert!(challenge("missing").ends_with(" 404"));
    let log = lab.exec_ok(EDGE, "cat /var/log/slipway/edge/access.log");
    assert!(log.contains("\"GET /version HTTP/1.1\" 200"), "{log}");

    // A lab host asking too fast: 429s under its own address, then banned
    // from 443 by fail2ban, while this machine still gets in.
    let abuser = lab.hosts[0].ip.clone();
    let ask = format!(
        "curl -sk --max-time 3 -o /dev/null -w '%{{http_code}}\\n' --resolve {NAME}:443:{ip} https://{NAME}/version"
    );
    let codes = lab.exec_ok(0, &format!("for i in $(seq 40); do {ask}; done"));
    assert!(codes.contains("200") && codes.contains("429"), "{codes}");
    let log = lab.exec_ok(EDGE, "cat /var/log/slipway/edge/access.log");
    assert!(
        log.lines()
            .any(|l| l.starts_with(&format!("{abuser} - ")) && l.contains("\" 429 ")),
        "{log}"
    );
    wait_for(
        "fail2ban to ban the abuser",
        Duration::from_secs(60),
        || {
            lab.exec_ok(EDGE, "fail2ban-client status edge")
                .contains(&abuser)
                .then_some(())
        },
    );
    wait_for("the ban to block 443", Duration::from_secs(30), || {
        (!lab.exec(0, &ask).status.success()).then_some(())
    });
    assert!(https("/version").starts_with("HTTP/1.1 200"));
    lab.exec_ok(EDGE, &format!("fail2ban-client set edge unbanip {abuser}"));
    wait_for(
        "the unbanned host to get in",
        Duration::from_secs(30),
        || lab.exec(0, &ask).status.success().then_some(()),
    );

    // A redeploy (a new nginx.conf, so a new task) keeps the certificate.
    slipway_on(&["apply", "--yes", "-e", "edge_hsts_max_age=600"]).expect(0);
    let reply = https("/version");
    assert!(reply.contains("max-age=600"), "{reply}");
    assert_eq!(served_from_pebble(&ip, Duration::from_secs(60)), first);
    assert_eq!(pebble.orders_and_issued(), (1, 1));

    // Made due: the timer's service renews it, and nginx serves the new one.
    let renewal = format!("/etc/letsencrypt/renewal/{NAME}.conf");
    lab.exec_ok(
        EDGE,
        &format!("sed -i '1i renew_before_expiry = 36500 days' {renewal} && systemctl start slipway-acme.service"),
    );
    let renewed = wait_for("the renewed certificate", Duration::from_secs(30), || {
        served(&ip)
            .map(|(serial, _)| serial)
            .filter(|s| *s != first)
    });
    assert_eq!(pebble.orders_and_issued(), (2, 2));
    lab.exec_ok(EDGE, &format!("sed -i '/^renew_before_expiry/d' {renewal}"));

    // A restart of the node: the same certificate, nothing issued.
    local(Command::new("docker").args(["restart", &lab.hosts[EDGE].name]));
    wait_for("ssh after the restart", Duration::from_secs(120), || {
        lab.ssh(
            EDGE,
            "systemctl is-system-running --wait >/dev/null; docker info >/dev/null",
        )
        .status
        .success()
        .then_some(())
    });
    let after = wait_for("nginx after the restart", Duration::from_secs(180), || {
        served(&ip).map(|(serial, _)| serial)
    });
    assert_eq!(after, renewed);
    assert_eq!(pebble.orders_and_issued(), (2, 2));
}

/// The built-in nginx.conf as `slipway render` writes it, checked by the
/// lab's nginx with every file it names in place.
#[test]
fn the_rendered_nginx_conf_passes_nginx_t() {
    require_docker();
    let reg = LabRegistry::ensure();
    let p = Project::new();
    p.write(
        "inventory.toml",
        "[vars]\nswarm_networks = [{ name = \"edge\" }]\nedge_acme_email = \"ops@example.com\"\n\
         edge_routes = [{ host = \"api.example.com\", upstream = \"api_api:8080\" }, { host = \"www.example.com\", upstream = \"web_web:80\" }]\n\
         [hosts.m1]\naddress = \"10.0.0.1\"\ngroups = [\"managers\"]\n",
    );
    p.write(
        "playbook.toml",
        "[[play]]\nhosts = \"managers\"\nroles = [\"edge\"]\n",
    );
    let out = p.path("out");
    let mut c = slipway(p.dir.path());
    c.arg("render")
        .arg("-i")
        .arg(p.path("inventory.toml"))
        .arg(p.path("playbook.toml"))
        .arg("--out")
        .arg(&out);
    run(&mut c).expect(0);
    let conf = out.join("m1/opt/slipway/stacks/edge/nginx.conf");
    let certs = p.path("certs");
    for name in ["api.example.com", "www.example.com"] {
        let dir = certs.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        local(Command::new("openssl").args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &dir.join("privkey.pem").to_string_lossy(),
            "-out",
            &dir.join("fullchain.pem").to_string_lossy(),
        ]));
    }
    let logs = p.path("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mount = |from: &Path, to: &str| format!("--volume={}:{to}", from.display());
    let out = Command::new("docker")
        .args(["run", "--rm"])
        .arg(mount(&conf, "/etc/nginx/nginx.conf:ro"))
        .arg(mount(&certs, "/etc/slipway/edge/certs:ro"))
        .arg(mount(&logs, "/var/log/slipway/edge"))
        .arg(reg.local_image("nginx"))
        .args(["nginx", "-t"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "nginx -t: {text}");
    assert!(text.contains("test is successful"), "{text}");
}

//! The edge's fail2ban jail against real lab hosts: an nginx edge (the `app`
//! role's stack, ports 80 and 443 published in host mode, `limit_req` per
//! client address, its access log bind-mounted on the host) on host 1 behind
//! the firewall role; host 2 abuses it, host 3 is an innocent client. The log
//! shows each client's own address; the abuser gets 429s, is banned by the
//! `edge` jail and can no longer connect to either port, through a `ufw
//! reload` (which flushes DOCKER-USER), while the innocent client still can;
//! an unban lets the abuser back in, until it probes for paths (the
//! `edge-scan` jail).

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::lab::Lab;
use common::registry::LabRegistry;
use common::run::{Project, on};

const PLAYBOOK: &str = r#"
[[play]]
name = "the edge"
hosts = "managers"
roles = ["firewall", "fail2ban", "docker", "swarm", "app"]

[play.vars]
deploy_user = ""
firewall_docker_published = [{ port = "80" }, { port = "443" }]
firewall_monitoring_exporters = false
fail2ban_edge = true
fail2ban_edge_maxretry = 5
fail2ban_edge_bantime = "10m"
fail2ban_edge_scan = true
fail2ban_edge_scan_maxretry = 3
app_stack = "edge"
app_configs = { nginx_conf = "nginx.conf.j2" }
app_update_timeout = 120
"#;

/// An edge like the `edge` role's: one nginx per node, ports published on the
/// node itself (host mode), so nginx sees the client's own address.
const STACK: &str = r#"services:
  nginx:
    image: {{ nginx_image }}
    configs:
      - source: nginx_conf
        target: /etc/nginx/nginx.conf
    ports:
      - { target: 80, published: 80, mode: host }
      - { target: 443, published: 443, mode: host }
    volumes:
      - { type: bind, source: /var/log/slipway/edge, target: /var/log/edge }
    deploy:
      mode: global
      endpoint_mode: dnsrr
"#;

/// 100 requests a minute per client address, a burst of 5: requests in
/// quick succession past those are answered 429. A static file, since `return` would answer
/// before limit_req is consulted. 443 answers plain HTTP: the ban is about
/// the port, not TLS.
const NGINX: &str = r#"user nginx;
worker_processes 1;
error_log stderr notice;
pid /run/nginx.pid;
events { worker_connections 256; }
http {
  limit_req_zone $binary_remote_addr zone=edge:1m rate=100r/m;
  limit_req_status 429;
  access_log /var/log/edge/access.log combined;
  server {
    listen 80;
    listen 443;
    root /usr/share/nginx/html;
    location / { limit_req zone=edge burst=5 nodelay; }
  }
}
"#;

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Runs a bash script on host `i` (0-based) with `docker exec`.
fn bash(lab: &Lab, i: usize, script: &str) -> Output {
    Command::new("docker")
        .args(["exec", &lab.host(i).name, "bash", "-c", script])
        .stdin(Stdio::null())
        .output()
        .expect("docker exec")
}

/// The status codes of `n` requests for `path` from host `from` to the
/// edge's `port`, one connection each; `000` for a connection that failed.
fn statuses(lab: &Lab, from: usize, port: u16, path: &str, n: u32) -> Vec<String> {
    let ip = &lab.hosts[0].ip;
    let script = format!(
        "for i in $(seq {n}); do timeout 3 bash -c 'exec 3<>/dev/tcp/{ip}/{port} && printf \"GET {path} HTTP/1.0\\r\\n\\r\\n\" >&3 && read -r _ code _ <&3 && echo \"$code\"' || echo 000; done"
    );
    let out = bash(lab, from, &script);
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Whether host `from` can open a TCP connection to the edge's `port`.
fn connects(lab: &Lab, from: usize, port: u16) -> bool {
    let ip = &lab.hosts[0].ip;
    bash(
        lab,
        from,
        &format!("timeout 3 bash -c '</dev/tcp/{ip}/{port}'"),
    )
    .status
    .success()
}

fn wait_for(lab: &Lab, what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}\n--- fail2ban.log\n{}\n--- nft\n{}",
            lab.exec_ok(0, "tail -n 30 /var/log/fail2ban.log || true"),
            lab.exec_ok(0, "nft list table inet f2b-table 2>&1 || true"),
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn an_abusive_client_is_banned_from_published_ports_and_no_one_else() {
    let reg = LabRegistry::ensure();
    let lab = Lab::start("edge-ban", 3);
    let (abuser, innocent) = (lab.hosts[1].ip.clone(), lab.hosts[2].ip.clone());
    let p = Project::new();
    let base = std::fs::read_to_string(&lab.inventory).unwrap();
    let inventory = p.write(
        "inventory.toml",
        &format!(
            "{base}\n[vars]\ndocker_source = \"distribution\"\ndocker_storage_driver = \"vfs\"\n\
             docker_registries = [{{ address = {addr}, ca = {ca}, username = {user}, password = {{ secret = true, value = {pw} }} }}]\n\
             nginx_image = {nginx}\n",
            addr = toml_str(&reg.address),
            ca = toml_str(&reg.ca_pem),
            user = toml_str(&reg.username),
            pw = toml_str(&reg.password),
            nginx = toml_str(&reg.image("nginx")),
        ),
    );
    let playbook = p.write("playbook.toml", PLAYBOOK);
    p.write("templates/stack.yml.j2", STACK);
    p.write("templates/nginx.conf.j2", NGINX);
    on(&p, &inventory, &playbook, &["apply", "--yes"]).expect(0);

    wait_for(&lab, "the edge to answer the innocent client", || {
        statuses(&lab, 2, 80, "/", 1) == ["200"]
    });
    // Requests in quick succession: past the burst, over the rate.
    let abuse = statuses(&lab, 1, 80, "/", 20);
    assert!(
        abuse.iter().filter(|s| *s == "429").count() >= 10,
        "the abuser was not limited: {abuse:?}"
    );

    // Host mode: nginx logs the clients' own addresses, not a gateway's.
    let log = lab.exec_ok(0, "cat /var/log/slipway/edge/access.log");
    for (who, ip) in [("abuser", &abuser), ("innocent client", &innocent)] {
        let prefix = format!("{ip} - - [");
        assert!(
            log.lines().any(|l| l.starts_with(&prefix)),
            "no line of the {who} ({ip}) in the access log:\n{log}"
        );
    }

    wait_for(&lab, "fail2ban to ban the abuser", || {
        lab.exec_ok(0, "fail2ban-client status edge")
            .contains(abuser.as_str())
    });
    // fail2ban lists the ban before its action has run.
    wait_for(&lab, "the ban to block port 80", || !connects(&lab, 1, 80));
    let check_ban = |when: &str| {
        for port in [80, 443] {
            assert!(
                !connects(&lab, 1, port),
                "{when}: the abuser reaches {port}"
            );
            assert_eq!(
                statuses(&lab, 2, port, "/", 1),
                ["200"],
                "{when}: the innocent client on {port}"
            );
        }
    };
    check_ban("banned");
    // UFW's reload rewrites DOCKER-USER from after.rules; the ban is elsewhere.
    lab.exec_ok(0, "ufw reload");
    check_ban("after ufw reload");

    lab.exec_ok(0, &format!("fail2ban-client set edge unbanip {abuser}"));
    wait_for(&lab, "the unbanned client to reach 80", || {
        connects(&lab, 1, 80)
    });
    assert!(connects(&lab, 1, 443), "unbanned, yet no 443");

    // A scanner: paths that do not exist, a few, within the rate limit's burst.
    let probes = statuses(&lab, 1, 80, "/.env", 4);
    assert_eq!(probes, ["404"; 4], "the probes");
    wait_for(&lab, "fail2ban to ban the scanner", || {
        lab.exec_ok(0, "fail2ban-client status edge-scan")
            .contains(abuser.as_str())
    });
    wait_for(&lab, "the scanner's ban to block port 443", || {
        !connects(&lab, 1, 443)
    });
    assert_eq!(
        statuses(&lab, 2, 443, "/", 1),
        ["200"],
        "the innocent client"
    );
}

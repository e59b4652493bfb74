//! The edge role on an edge node: certbot obtains and renews this node's
//! certificate of each route's host name over HTTP-01, writing the challenge
//! into a directory the node's nginx serves, and its deploy hook points nginx
//! at the new certificate and reloads it. Until a name has one, a self-signed
//! bootstrap certificate stands in, so nginx starts (and serves the
//! challenges) before any certificate exists.
//!
//! nginx reads `CERTS_DIR/NAME/{fullchain,privkey}.pem`, where `NAME` is a
//! link to the bootstrap directory, then to certbot's `live/NAME`. Everything
//! lives on the node's disk: a redeploy or a restart keeps the certificate,
//! and a renewal needs no redeploy.

use super::Vars;
use crate::resource::Resource;
use crate::resource::command::Command;
use crate::resource::package::Package;
use crate::roles::stack_files::directory;
use crate::roles::{MANAGED, config_file, units};
use crate::shell::q;

/// What nginx reads, one link per name (mounted read-only at the same path).
pub const CERTS_DIR: &str = "/etc/slipway/edge/certs";
/// The self-signed certificates made before the first real one.
const BOOTSTRAP_DIR: &str = "/etc/slipway/edge/bootstrap";
/// certbot's webroot: nginx serves its `.well-known/acme-challenge/`.
pub const WEBROOT: &str = "/var/lib/slipway/edge/acme";
const LIVE_DIR: &str = "/etc/letsencrypt/live";
const ACME_SCRIPT: &str = "/usr/local/lib/slipway/edge-acme";
const DEPLOY_HOOK: &str = "/usr/local/lib/slipway/edge-deploy-hook";
const UNIT: &str = "slipway-acme";
const UNIT_DIR: &str = "/etc/systemd/system";

/// Packages, directories, bootstrap certificates, scripts and units: what
/// nginx's bind mounts and certbot need before the stack runs here.
pub fn prepare(v: &Vars) -> Vec<Box<dyn Resource>> {
    let mut out: Vec<Box<dyn Resource>> = Vec::new();
    // One writer per node: the package's own renewal timer would renew the
    // same certificates beside slipway-acme. Masked before the package is
    // installed, whose postinst would enable and start it.
    out.push(Box::new(Command {
        name: "mask certbot.timer (slipway-acme renews)".into(),
        run: format!("mkdir -p {UNIT_DIR} && ln -sfn /dev/null {UNIT_DIR}/certbot.timer"),
        creates: Some(format!("{UNIT_DIR}/certbot.timer")),
        unless: None,
        notify: Vec::new(),
    }));
    out.push(Box::new(Package::present(&["certbot", "openssl"])));
    for (dir, mode) in [
        ("/etc/letsencrypt", 0o755),
        (CERTS_DIR, 0o755),
        (BOOTSTRAP_DIR, 0o700),
        (WEBROOT, 0o755),
        (v.edge_log_dir.trim_end_matches('/'), 0o755),
    ] {
        out.push(Box::new(directory(dir, mode)));
    }
    for r in &v.edge_routes {
        out.push(Box::new(bootstrap(&r.host)));
    }
    let names: Vec<&str> = v.edge_routes.iter().map(|r| r.host.as_str()).collect();
    for (path, text) in [
        (ACME_SCRIPT, acme_script(v, &names)),
        (DEPLOY_HOOK, deploy_hook()),
    ] {
        out.push(Box::new(config_file(path, text, 0o755)));
    }
    out.extend(units::timer(UNIT, service_unit(), timer_unit()));
    out
}

/// A first run, started without waiting for it (the timer runs it twice a day).
pub fn start(v: &Vars) -> Box<dyn Resource> {
    // Done when every name is served from certbot's certificate, or while a
    // run is under way (or waiting to retry: `activating`).
    let mut served: Vec<String> = v
        .edge_routes
        .iter()
        .map(|r| {
            format!(
                "[ \"$(readlink {})\" = {} ]",
                q(&format!("{CERTS_DIR}/{}", r.host)),
                q(&format!("{LIVE_DIR}/{}", r.host))
            )
        })
        .collect();
    // Closes the list: with no route there is nothing to obtain.
    served.push("true".into());
    let state = format!("systemctl show -p ActiveState --value {UNIT}.service");
    // The start is queued, not waited for; the loop gives systemd a moment to
    // pick it up, so the check after apply finds the run under way.
    let first = Command {
        name: format!("start {UNIT}.service (certificates from the ACME server)"),
        run: format!(
            "systemctl start --no-block {UNIT}.service\n\
             i=0; while [ \"$({state})\" = inactive ] && [ $i -lt 20 ]; do sleep 0.5; i=$((i+1)); done"
        ),
        creates: None,
        unless: Some(format!(
            "{{ {}; }} || case \"$({state})\" in active|activating) true ;; *) false ;; esac",
            served.join(" && ")
        )),
        notify: Vec::new(),
    };
    Box::new(first)
}

/// A self-signed certificate for `name`, made once, and nginx's link to it
/// unless certbot's certificate is there already.
fn bootstrap(name: &str) -> Command {
    let dir = q(&format!("{BOOTSTRAP_DIR}/{name}"));
    let link = q(&format!("{CERTS_DIR}/{name}"));
    let live = q(&format!("{LIVE_DIR}/{name}"));
    Command {
        name: format!("bootstrap certificate for {name}"),
        run: format!(
            "if [ -e {live}/fullchain.pem ]; then ln -sfn {live} {link}\n\
             else mkdir -p {dir} && {{ [ -e {dir}/fullchain.pem ] || {{ openssl req -x509 -newkey ec \
             -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 -subj {subj} -addext {san} \
             -keyout {dir}/privkey.pem -out {dir}/fullchain.pem.tmp 2>/dev/null && \
             mv {dir}/fullchain.pem.tmp {dir}/fullchain.pem; }}; }} && ln -sfn {dir} {link}; fi",
            subj = q(&format!("/CN={name} (slipway bootstrap)")),
            san = q(&format!("subjectAltName=DNS:{name}")),
        ),
        creates: Some(format!("{CERTS_DIR}/{name}/fullchain.pem")),
        unless: None,
        notify: Vec::new(),
    }
}

/// What the service runs: each name's certificate obtained, or renewed when
/// due (certbot keeps one that is not), then linked for nginx. Waits up to 3
/// minutes for this node's nginx, then fails (and is retried) without asking
/// the ACME server: it would find no challenge, and failed validations count
/// against its limits.
fn acme_script(v: &Vars, names: &[&str]) -> String {
    let names: Vec<String> = names.iter().map(|n| q(n)).collect();
    format!(
        r#"#!/bin/sh
{MANAGED}
# Obtains or renews this edge node's certificates (slipway-acme.service).
set -u
# On a first apply the leader may still be deploying the stack: wait a while.
i=0
until [ -n "$(docker ps -q --filter label=com.docker.swarm.service.name={stack}_nginx --filter status=running)" ]; do
  i=$((i + 1))
  if [ $i -gt 36 ]; then
    echo "the edge stack's nginx does not run on this node: no challenge could be answered" >&2
    exit 1
  fi
  sleep 5
done
failed=0
for name in {names}; do
  certbot certonly --webroot -w {webroot} --keep-until-expiring --non-interactive --agree-tos \
    --email {email} --server {server} --cert-name "$name" -d "$name" \
    --deploy-hook {hook} || failed=1
  # A certificate certbot kept (obtained before this node's link existed).
  if [ -e "{live}/$name/fullchain.pem" ] && [ "$(readlink "{certs}/$name")" != "{live}/$name" ]; then
    RENEWED_LINEAGE="{live}/$name" {hook} || failed=1
  fi
done
exit $failed
"#,
        stack = super::STACK,
        names = names.join(" "),
        webroot = WEBROOT,
        email = q(&v.edge_acme_email),
        server = q(&v.edge_acme_directory),
        hook = DEPLOY_HOOK,
        live = LIVE_DIR,
        certs = CERTS_DIR,
    )
}

/// certbot's deploy hook, run with `RENEWED_LINEAGE` (`live/NAME`) after it
/// saved a certificate: nginx on this node serves it from now on.
fn deploy_hook() -> String {
    format!(
        r#"#!/bin/sh
{MANAGED}
set -eu
ln -sfn "$RENEWED_LINEAGE" "{CERTS_DIR}/$(basename "$RENEWED_LINEAGE")"
ids=$(docker ps -q --filter label=com.docker.swarm.service.name={}_nginx --filter status=running)
# SIGHUP: nginx reloads its configuration and certificates, without dropping connections.
[ -z "$ids" ] || docker kill -s HUP $ids >/dev/null
"#,
        super::STACK
    )
}

fn service_unit() -> String {
    format!(
        "{MANAGED}\n[Unit]\nDescription=slipway: the edge's ACME certificates (certbot)\n\
         Wants=network-online.target\nAfter=network-online.target docker.service\n\
         # Retried until it succeeds, however long that takes.\nStartLimitIntervalSec=0\n\n\
         [Service]\nType=oneshot\nExecStart={ACME_SCRIPT}\n\
         # Every few minutes while nginx is not up yet, or the name does not\n\
         # point here yet; Let's Encrypt allows 5 failed validations per name and hour.\n\
         Restart=on-failure\nRestartSec=5min\n"
    )
}

fn timer_unit() -> String {
    format!(
        "{MANAGED}\n[Unit]\nDescription=slipway: renew the edge's ACME certificates twice a day\n\n\
         [Timer]\nOnCalendar=*-*-* 00,12:00:00\nRandomizedDelaySec=1h\nPersistent=true\n\n\
         [Install]\nWantedBy=timers.target\n"
    )
}

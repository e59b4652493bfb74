//! The api stack example's nginx.conf, as slipway renders it, runs in the lab's
//! nginx image (Ubuntu's nginx package, built with other paths than the
//! official image): `nginx -t` accepts it, requests reach every api replica
//! through Docker's DNS, and a replica that goes away is skipped at once.

mod common;
#[path = "examples/rendered.rs"]
mod rendered;

use common::lab::require_docker;
use common::registry::LabRegistry;
use common::scratch::{Scratch, docker, docker_ok, eventually, stdout};
use rendered::Rendered;

#[test]
fn the_example_nginx_proxies_to_the_api_replicas_through_docker_dns() {
    require_docker();
    let registry = LabRegistry::ensure();
    let s = Scratch::new("api-stack-nginx");
    let conf = s.dir.join("nginx.conf");
    std::fs::copy(Rendered::new(&[]).file_named("nginx_conf"), &conf).unwrap();
    let mount = format!("{}:/etc/nginx/nginx.conf:ro", conf.display());
    let nginx_image = registry.local_image("nginx");

    let test = s.once(&["-v", &mount, &nginx_image, "nginx", "-t"]);
    assert!(
        test.status.success(),
        "nginx -t: {}",
        String::from_utf8_lossy(&test.stderr)
    );

    // Two replicas under the service's name, as Swarm's DNS round robin
    // (endpoint_mode dnsrr) answers for them.
    let replicas: Vec<String> = ["1.0", "1.1"]
        .iter()
        .map(|v| {
            let image = registry.local_image(&format!("app:{v}"));
            s.start(&format!("api-{v}"), &["--network-alias", "api", &image])
        })
        .collect();
    let nginx = s.start("nginx", &["-v", &mount, &nginx_image]);
    assert_eq!(s.get(&nginx, "http://127.0.0.1/nginx-health").trim(), "ok");
    // Both replicas answer, in turn.
    let mut seen = std::collections::BTreeSet::new();
    eventually("both replicas answer through nginx", || {
        seen.insert(s.get(&nginx, "http://127.0.0.1/version").trim().to_string());
        (seen.len() == 2).then_some(())
    });

    // One replica stops: every request still succeeds, from the other one.
    docker_ok(&["stop", "-t", "1", &replicas[0]]);
    for _ in 0..10 {
        let out = docker(&[
            "exec",
            &nginx,
            "wget",
            "-q",
            "-O-",
            "http://127.0.0.1/version",
        ]);
        assert!(
            out.status.success(),
            "a request failed after a replica stopped"
        );
        assert_eq!(stdout(&out).trim(), "1.1");
    }
}

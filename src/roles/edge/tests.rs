//! The role's resources for a few inputs, without hosts.

use serde_json::json;

use super::*;
use crate::config::{Inventory, VarMap};
use crate::diag::SourceFile;
use crate::redact::Redactor;
use crate::roles::Role;
use crate::template::Templates;

/// m1 leads, m2 is another manager, w1 an edge worker, w2 a plain worker.
const INVENTORY: &str = "[vars]\nswarm_networks = [{ name = \"edge\", attachable = true }]\n\
    edge_acme_email = \"ops@example.com\"\n\
    edge_routes = [{ host = \"api.example.com\", upstream = \"api_api:8080\" }, { host = \"www.example.com\", upstream = \"web_web:80\" }]\n\
    [hosts.m1]\naddress = \"10.0.0.1\"\ngroups = [\"managers\"]\n\
    [hosts.m2]\naddress = \"10.0.0.2\"\ngroups = [\"managers\"]\n\
    [hosts.w1]\naddress = \"10.0.0.3\"\ngroups = [\"workers\"]\nvars = { swarm_node_labels = { edge = \"true\" } }\n\
    [hosts.w2]\naddress = \"10.0.0.4\"\ngroups = [\"workers\"]\n";

fn inventory() -> Inventory {
    Inventory::load(
        SourceFile::from_text(std::path::Path::new("inventory.toml"), INVENTORY.into()),
        &Redactor::default(),
    )
    .unwrap()
}

/// The role's resources on `host`, with `vars` over the inventory's.
fn resources(host: &str, vars: serde_json::Value) -> InputResult<Vec<Box<dyn Resource>>> {
    let inv = inventory();
    let h = inv.host(host).unwrap();
    let mut v = Edge.defaults();
    crate::config::vars::layer(&mut v, &h.vars);
    let top: VarMap = serde_json::from_value(vars).unwrap();
    crate::config::vars::layer(&mut v, &top);
    let ctx = RoleContext {
        host: h,
        vars: &v,
        inventory: &inv,
        templates: &Templates::new(None),
        template_vars: serde_json::Value::Object(v.clone().into_iter().collect()),
        offline: false,
        origins: &Default::default(),
        inventory_origins: &Default::default(),
        notices: &Default::default(),
    };
    Edge.resources(&ctx)
}

fn ids(host: &str) -> Vec<String> {
    resources(host, json!({}))
        .unwrap()
        .iter()
        .map(|r| r.id())
        .collect()
}

/// The text of file `path` among `host`'s resources.
fn file(host: &str, vars: serde_json::Value, path: &str) -> String {
    let all = resources(host, vars).unwrap();
    let f = all
        .iter()
        .find_map(|r| r.content().filter(|c| c.path == path))
        .unwrap_or_else(|| panic!("no {path}"));
    String::from_utf8(f.bytes.to_vec()).unwrap()
}

#[test]
fn the_leader_deploys_edge_nodes_get_certbot_others_nothing() {
    let leader = ids("m1");
    assert!(leader.contains(&"stack:edge".to_string()), "{leader:?}");
    assert!(!leader.iter().any(|i| i.contains("certbot")), "{leader:?}");
    let manager = ids("m2");
    assert!(manager.contains(&"file:/opt/slipway/stacks/edge/nginx.conf".to_string()));
    assert!(!manager.contains(&"stack:edge".to_string()));
    let edge = ids("w1");
    for want in [
        "command:mask certbot.timer (slipway-acme renews)",
        "package:certbot,openssl",
        "command:bootstrap certificate for api.example.com",
        "command:bootstrap certificate for www.example.com",
        "file:/etc/systemd/system/slipway-acme.timer",
        "command:reload systemd for the slipway-acme units",
        "service:slipway-acme.timer",
        "command:start slipway-acme.service (certificates from the ACME server)",
    ] {
        assert!(edge.contains(&want.to_string()), "{want}: {edge:?}");
    }
    // The package's timer is masked before its postinst could start it.
    let pos = |id: &str| edge.iter().position(|i| i == id).unwrap();
    assert!(
        pos("command:mask certbot.timer (slipway-acme renews)") < pos("package:certbot,openssl")
    );
    assert!(!edge.iter().any(|i| i.starts_with("stack:")));
    assert!(ids("w2").is_empty());
}

#[test]
fn nginx_routes_each_name_with_tls_headers_and_a_rate_limit() {
    let conf = file("m1", json!({}), "/opt/slipway/stacks/edge/nginx.conf");
    for want in [
        "server_name api.example.com;",
        "ssl_certificate /etc/slipway/edge/certs/api.example.com/fullchain.pem;",
        "set $upstream http://api_api:8080;",
        "set $upstream http://web_web:80;",
        "limit_req_zone $binary_remote_addr zone=edge_per_ip:10m rate=100r/m;",
        "limit_req zone=edge_per_ip burst=50 nodelay;",
        "limit_req_status 429;",
        "add_header Strict-Transport-Security \"max-age=31536000\" always;",
        "access_log /var/log/slipway/edge/access.log combined;",
        "root /var/lib/slipway/edge/acme;",
        "set $peers http://tasks.edge_nginx:8080;",
        "return 301 https://$host$request_uri;",
        "ssl_protocols TLSv1.2 TLSv1.3;",
        "resolver 127.0.0.11 valid=1s",
    ] {
        assert!(conf.contains(want), "{want}:\n{conf}");
    }
    let no_hsts = file(
        "m1",
        json!({"edge_hsts_max_age": 0}),
        "/opt/slipway/stacks/edge/nginx.conf",
    );
    assert!(!no_hsts.contains("Strict-Transport-Security"));
    let stack = file("m1", json!({}), "/opt/slipway/stacks/edge/stack.yml");
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&stack).unwrap();
    let nginx = &doc["services"]["nginx"];
    assert_eq!(nginx["deploy"]["mode"].as_str(), Some("global"));
    assert_eq!(nginx["ports"][1]["mode"].as_str(), Some("host"));
    assert_eq!(nginx["ports"][1]["published"].as_u64(), Some(443));
    assert_eq!(doc["networks"]["edge"]["name"].as_str(), Some("edge"));
}

#[test]
fn the_acme_script_asks_for_each_name_and_links_it_for_nginx() {
    let script = file("w1", json!({}), "/usr/local/lib/slipway/edge-acme");
    for want in [
        "for name in 'api.example.com' 'www.example.com'; do",
        "--email 'ops@example.com' --server 'https://acme-v02.api.letsencrypt.org/directory'",
        "--keep-until-expiring",
        "--deploy-hook /usr/local/lib/slipway/edge-deploy-hook",
    ] {
        assert!(script.contains(want), "{want}:\n{script}");
    }
    let hook = file("w1", json!({}), "/usr/local/lib/slipway/edge-deploy-hook");
    assert!(hook.contains("docker kill -s HUP"), "{hook}");
    for text in [script, hook] {
        let out = std::process::Command::new("sh")
            .args(["-n", "-c", &text])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
}

#[test]
fn mistakes_are_refused_naming_the_variable() {
    for (vars, want) in [
        (
            json!({"swarm_networks": []}),
            "edge_network: the overlay network `edge` is not in swarm_networks",
        ),
        (
            json!({"edge_routes": [{"host": "*.example.com", "upstream": "a:1"}]}),
            "edge_routes[0].host: `*.example.com` is not a host name",
        ),
        (
            json!({"edge_routes": [{"host": "a.example.com", "upstream": "api"}]}),
            "edge_routes[0].upstream: `api` is not `service:port`",
        ),
        (
            json!({"edge_routes": [{"host": "a.example.com", "upstream": "a:1"}, {"host": "a.example.com", "upstream": "b:1"}]}),
            "edge_routes[1].host: `a.example.com` has two routes",
        ),
        (
            json!({"edge_acme_email": ""}),
            "edge_acme_email: the ACME account needs",
        ),
        (
            json!({"edge_rate_limit": "100/m"}),
            "edge_rate_limit: `100/m` is not a rate",
        ),
        (
            json!({"edge_log_dir": "logs"}),
            "edge_log_dir: `logs` must be an absolute path",
        ),
    ] {
        let e = resources("w1", vars).map(|_| ()).unwrap_err();
        assert!(e.message().contains(want), "{want}: {}", e.message());
    }
}

#[test]
fn the_firewall_opens_80_and_443_on_edge_nodes_only() {
    let published = |host: &str| {
        let inv = inventory();
        let firewall = crate::roles::lookup("firewall").unwrap();
        let h = inv.host(host).unwrap();
        let mut v = firewall.defaults();
        crate::config::vars::layer(&mut v, &h.vars);
        let vars: crate::roles::firewall::Vars =
            serde_json::from_value(serde_json::Value::Object(v.clone().into_iter().collect()))
                .unwrap();
        let ctx = RoleContext {
            host: h,
            vars: &v,
            inventory: &inv,
            templates: &Templates::new(None),
            template_vars: json!({}),
            offline: false,
            origins: &Default::default(),
            inventory_origins: &Default::default(),
            notices: &Default::default(),
        };
        crate::roles::firewall::published(&vars, &ctx)
            .unwrap()
            .into_iter()
            .filter(|p| p.from == crate::resource::ufw::Source::Any)
            .map(|p| p.port)
            .collect::<Vec<_>>()
    };
    assert_eq!(published("w1"), ["80", "443"]);
    assert!(published("w2").is_empty());
}

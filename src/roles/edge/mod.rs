//! `edge`: the public entry of a swarm. Nginx as a Swarm stack (`edge`) on
//! the nodes labelled `edge=true`, publishing 80 and 443 on each of them in
//! host mode (nginx sees the client's own address), proxying each route's
//! host name to a service on the `edge_network` overlay; and, on each of
//! those nodes, certbot obtaining and renewing that node's certificates over
//! HTTP-01 (see `host`).
//!
//! One role for both parts: it runs on every host, deploys the stack from
//! the leader, and does the host side on the hosts whose `swarm_node_labels`
//! say `edge = "true"`, the label the stack is placed by. Which hosts are edge
//! nodes is then said once, in the inventory.

mod host;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::stack_files::{StackFiles, directory};
use super::swarm::NetworkVar;
use super::{RoleContext, TypedRole, config_file};
use crate::diag::{InputError, InputResult};
use crate::resource::Resource;
use crate::resource::stack::Stack;

pub struct Edge;

/// The stack's name: the deploy hook finds the node's nginx by it.
const STACK: &str = "edge";
/// Where the stack file and nginx.conf live on the managers.
const STACK_DIR: &str = "/opt/slipway/stacks/edge";
/// Seconds the deploy waits for nginx to run on every edge node.
const UPDATE_TIMEOUT: u32 = 180;

/// One entry of `edge_routes`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// The public host name (one certificate each).
    pub host: String,
    /// `service:port`, resolved through Docker's DNS on `edge_network`.
    pub upstream: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Vars {
    pub edge_routes: Vec<Route>,
    /// The ACME account's contact (expiry warnings, policy changes).
    pub edge_acme_email: String,
    /// The ACME server's directory URL.
    pub edge_acme_directory: String,
    /// Strict-Transport-Security max-age, in seconds; 0 sends no header.
    pub edge_hsts_max_age: u32,
    /// Requests per client address, nginx's `limit_req_zone` rate (`100r/m`, `10r/s`).
    pub edge_rate_limit: String,
    /// Requests over the rate let through at once before 429s begin.
    pub edge_rate_burst: u32,
    pub edge_image: String,
    /// nginx's access log on each edge node (`access.log` inside).
    pub edge_log_dir: String,
    /// The overlay network nginx and the services it proxies to share.
    pub edge_network: String,
    pub swarm_managers_group: String,
    /// This host's node labels: `edge = "true"` makes it an edge node.
    pub swarm_node_labels: BTreeMap<String, String>,
    /// Must declare `edge_network` (swarm_cluster creates it).
    pub swarm_networks: Vec<NetworkVar>,
}

impl Default for Vars {
    fn default() -> Self {
        Self {
            edge_routes: Vec::new(),
            edge_acme_email: String::new(),
            edge_acme_directory: "https://acme-v02.api.letsencrypt.org/directory".into(),
            edge_hsts_max_age: 31_536_000,
            edge_rate_limit: "100r/m".into(),
            edge_rate_burst: 50,
            edge_image: "nginx:1.26".into(),
            edge_log_dir: "/var/log/slipway/edge".into(),
            edge_network: "edge".into(),
            swarm_managers_group: "managers".into(),
            swarm_node_labels: BTreeMap::new(),
            swarm_networks: Vec::new(),
        }
    }
}

/// Whether a host with these labels is an edge node (the stack's placement).
pub fn is_edge_node(labels: &BTreeMap<String, String>) -> bool {
    labels.get("edge").is_some_and(|v| v == "true")
}

impl TypedRole for Edge {
    type Vars = Vars;
    const NAME: &'static str = "edge";
    const ABOUT: &'static str = "nginx on the edge nodes (80/443, ACME certificates by certbot, rate limits, HSTS) proxying host names to services (run on all hosts)";

    fn build(&self, v: Vars, ctx: &RoleContext<'_>) -> InputResult<Vec<Box<dyn Resource>>> {
        v.check(ctx)?;
        let mut out = Vec::new();
        let edge_node = is_edge_node(&v.swarm_node_labels);
        if edge_node {
            out.extend(host::prepare(&v));
        }
        let leader = super::swarm::leader(&v.swarm_managers_group, ctx)?.name == ctx.host.name;
        if leader || ctx.host.groups.contains(&v.swarm_managers_group) {
            out.extend(stack(&v, ctx, leader)?);
        }
        if edge_node {
            // After the stack on a leader that is an edge node too: its
            // nginx then answers the first challenge.
            out.push(host::start(&v));
        }
        Ok(out)
    }
}

/// The stack's files on the managers, and its deploy on the leader.
fn stack(v: &Vars, ctx: &RoleContext<'_>, leader: bool) -> InputResult<Vec<Box<dyn Resource>>> {
    let extra = json!({
        "edge_certs_dir": host::CERTS_DIR,
        "edge_webroot": host::WEBROOT,
        "edge_log_dir": v.edge_log_dir.trim_end_matches('/'),
        "edge_service": format!("{STACK}_nginx"),
    });
    let mut files = StackFiles::default();
    files.resources.push(Box::new(directory(STACK_DIR, 0o755)));
    let conf = ctx.render("edge/nginx.conf.j2", extra.clone())?;
    files.config(STACK_DIR, "nginx_conf", "nginx.conf", conf);
    let template = "edge/stack.yml.j2";
    let stack = ctx.render(template, extra)?;
    serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&stack).map_err(|e| {
        InputError::plain(format!(
            "template `{template}` renders YAML that does not parse: {e}"
        ))
    })?;
    let digest = files.digest(&stack);
    let mut out = files.resources;
    out.push(Box::new(config_file(
        &format!("{STACK_DIR}/stack.yml"),
        stack.clone(),
        0o644,
    )));
    if leader {
        out.push(Box::new(Stack {
            name: STACK.into(),
            dir: STACK_DIR.into(),
            spec: stack,
            revisions: files.revisions,
            services: vec!["nginx".into()],
            resolve_image: "always".into(),
            digest,
            follow: Some(UPDATE_TIMEOUT),
        }));
    }
    Ok(out)
}

impl Vars {
    /// Mistakes that nginx, certbot or Swarm would only report on the host.
    fn check(&self, ctx: &RoleContext<'_>) -> InputResult<()> {
        let err = |var: &str, msg: String| {
            ctx.var_error(var, format!("role edge on {}: {var}: {msg}", ctx.host.name))
                .with_help("see docs/roles-edge.md for the edge variables")
        };
        let mut seen = Vec::new();
        for (i, r) in self.edge_routes.iter().enumerate() {
            if !is_host_name(&r.host) {
                return Err(err(
                    &format!("edge_routes[{i}].host"),
                    format!(
                        "`{}` is not a host name (lowercase letters, digits, `-` and `.`; no wildcard: HTTP-01 cannot prove one)",
                        r.host
                    ),
                ));
            }
            if seen.contains(&&r.host) {
                return Err(err(
                    &format!("edge_routes[{i}].host"),
                    format!("`{}` has two routes", r.host),
                ));
            }
            seen.push(&r.host);
            let upstream_ok = r.upstream.rsplit_once(':').is_some_and(|(name, port)| {
                is_host_name(&name.replace('_', "-")) && port.parse::<u16>().is_ok_and(|p| p > 0)
            });
            if !upstream_ok {
                return Err(err(
                    &format!("edge_routes[{i}].upstream"),
                    format!(
                        "`{}` is not `service:port` (a service name on the edge network, e.g. `api_api:8080`)",
                        r.upstream
                    ),
                ));
            }
        }
        if !self.edge_routes.is_empty() && !self.edge_acme_email.contains('@') {
            return Err(err(
                "edge_acme_email",
                "the ACME account needs a contact address (expiry warnings go there)".into(),
            ));
        }
        if !self.edge_acme_directory.starts_with("https://") {
            return Err(err(
                "edge_acme_directory",
                format!("`{}` is not an https:// URL", self.edge_acme_directory),
            ));
        }
        let rate = self.edge_rate_limit.strip_suffix("r/s");
        let rate = rate.or_else(|| self.edge_rate_limit.strip_suffix("r/m"));
        if !rate.is_some_and(|n| n.parse::<u32>().is_ok_and(|n| n > 0)) {
            return Err(err(
                "edge_rate_limit",
                format!(
                    "`{}` is not a rate like `100r/m` or `10r/s`",
                    self.edge_rate_limit
                ),
            ));
        }
        let log = &self.edge_log_dir;
        if !log.starts_with('/') || log.contains(|c: char| c.is_whitespace() || c == ';') {
            return Err(err(
                "edge_log_dir",
                format!("`{log}` must be an absolute path without spaces"),
            ));
        }
        let image = &self.edge_image;
        if image.is_empty() || image.contains(char::is_whitespace) {
            return Err(err(
                "edge_image",
                format!("`{image}` is not an image reference"),
            ));
        }
        if !self
            .swarm_networks
            .iter()
            .any(|n| n.name == self.edge_network)
        {
            return Err(err(
                "edge_network",
                format!(
                    "the overlay network `{0}` is not in swarm_networks; add {{ name = \"{0}\", attachable = true }} there (swarm_cluster creates it, and your stacks join it as external)",
                    self.edge_network
                ),
            ));
        }
        Ok(())
    }
}

/// A DNS name as certificates and nginx's `server_name` take it.
fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

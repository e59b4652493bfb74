//! The services Swarm runs for a stack, from Docker's API
//! (`GET /services?filters={"label":["com.docker.stack.namespace=STACK"]}`).

use serde_json::Value;

use super::desired::port;
use super::{Service, Services};

/// The services of stack `stack` in the API's answer `json`, by their name in
/// the stack file (Swarm names them `STACK_SERVICE`). An empty answer (no
/// Docker, no API yet) has none.
pub fn observed(json: &str, stack: &str) -> Result<Services, serde_json::Error> {
    if json.trim().is_empty() {
        return Ok(Services::new());
    }
    let list: Vec<Value> = serde_json::from_str(json)?;
    let prefix = format!("{stack}_");
    Ok(list
        .iter()
        .map(|s| {
            let spec = &s["Spec"];
            let name = str_of(&spec["Name"]);
            let name = name.strip_prefix(&prefix).unwrap_or(name).to_string();
            (name, service(spec))
        })
        .collect())
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn service(spec: &Value) -> Service {
    let container = &spec["TaskTemplate"]["ContainerSpec"];
    let mode = &spec["Mode"];
    let replicas = if let Some(n) = mode["Replicated"]["Replicas"].as_u64() {
        n.to_string()
    } else if mode.get("Global").is_some() {
        "global".into()
    } else if mode.get("ReplicatedJob").is_some() {
        "replicated-job".into()
    } else if mode.get("GlobalJob").is_some() {
        "global-job".into()
    } else {
        String::new()
    };
    let items = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let names = |list: &Value, field: &str| {
        let mut out: Vec<String> = items(list)
            .iter()
            .map(|i| str_of(&i[field]).to_string())
            .collect();
        out.sort();
        out
    };
    let mut ports: Vec<String> = items(&spec["EndpointSpec"]["Ports"])
        .iter()
        .map(|p| {
            let number = |k: &str| p[k].as_u64().map(|n| n.to_string()).unwrap_or_default();
            let protocol = p["Protocol"].as_str().unwrap_or("tcp");
            let mode = p["PublishMode"].as_str().unwrap_or("ingress");
            port(
                &number("PublishedPort"),
                &number("TargetPort"),
                protocol,
                mode,
            )
        })
        .collect();
    ports.sort();
    Service {
        image: str_of(&container["Image"]).to_string(),
        replicas,
        env: items(&container["Env"])
            .iter()
            .map(|e| match str_of(e).split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (str_of(e).to_string(), String::new()),
            })
            .collect(),
        ports,
        configs: names(&container["Configs"], "ConfigName"),
        secrets: names(&container["Secrets"], "SecretName"),
        env_file: false,
    }
}

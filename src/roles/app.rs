//! `app`: the user's own stack, rendered from their template with the host's
//! variables, its configs and secrets shipped under content-hashed names,
//! deployed from the leader and followed until Swarm finished the update.
//!
//! The stack template declares services only; the top-level `configs:` and
//! `secrets:` entries for `app_configs` and `app_secrets` are added here, so
//! their names always carry the revision the deploy sets.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_yaml_ng::{Mapping, Value};

use super::stack_files::{StackFiles, directory, env_var};
use super::{RoleContext, TypedRole, config_file};
use crate::diag::{InputError, InputResult};
use crate::resource::Resource;
use crate::resource::stack::Stack;

pub struct App;

#[derive(Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Vars {
    /// Name of the Swarm stack (services are named `STACK_SERVICE`).
    pub app_stack: String,
    /// The stack file's template (compose format), found like every template.
    pub app_stack_template: String,
    /// Where the stack file, configs and secrets live on the managers;
    /// empty: /opt/slipway/stacks/STACK.
    pub app_dir: String,
    /// Swarm configs: key (what services name as `source`) -> template.
    pub app_configs: BTreeMap<String, String>,
    /// Swarm secrets: key -> value, normally a secret (`{ secret = true, env = "..." }`).
    pub app_secrets: BTreeMap<String, String>,
    /// Seconds apply waits for every service to finish its update; a rollback,
    /// a paused update or this timeout fails the host.
    pub app_update_timeout: u32,
    /// `docker stack deploy --resolve-image`: always, changed or never.
    pub app_resolve_image: String,
    /// Deploy the stack from the leader (off: only render its files).
    pub app_deploy: bool,
    pub swarm_managers_group: String,
}

impl Default for Vars {
    fn default() -> Self {
        Self {
            app_stack: String::new(),
            app_stack_template: "stack.yml.j2".into(),
            app_dir: String::new(),
            app_configs: BTreeMap::new(),
            app_secrets: BTreeMap::new(),
            app_update_timeout: 300,
            app_resolve_image: "always".into(),
            app_deploy: true,
            swarm_managers_group: "managers".into(),
        }
    }
}

impl TypedRole for App {
    type Vars = Vars;
    const NAME: &'static str = "app";
    const ABOUT: &'static str = "your stack from your template, its configs and secrets under hashed names, deployed and followed until healthy (run on the managers)";

    fn build(&self, v: Vars, ctx: &RoleContext<'_>) -> InputResult<Vec<Box<dyn Resource>>> {
        check_name(ctx, "app_stack", &v.app_stack, true)?;
        for (var, keys) in [
            ("app_configs", &v.app_configs),
            ("app_secrets", &v.app_secrets),
        ] {
            for key in keys.keys() {
                check_name(ctx, var, key, false)?;
            }
        }
        let stack_name = v.app_stack.as_str();
        let dir = match v.app_dir.trim_end_matches('/') {
            "" => format!("/opt/slipway/stacks/{stack_name}"),
            d => d.to_string(),
        };
        let mut files = StackFiles::default();
        files.resources.push(Box::new(directory(&dir, 0o755)));
        if !v.app_configs.is_empty() {
            let configs = format!("{dir}/configs");
            files.resources.push(Box::new(directory(&configs, 0o755)));
        }
        if !v.app_secrets.is_empty() {
            let secrets = format!("{dir}/secrets");
            files.resources.push(Box::new(directory(&secrets, 0o700)));
        }
        for (key, template) in &v.app_configs {
            let text = ctx.render(template, serde_json::json!({}))?;
            files.config(&dir, key, &format!("configs/{key}"), text);
        }
        for (key, value) in &v.app_secrets {
            files.secret(&dir, key, &format!("secrets/{key}"), value.clone());
        }
        let template = &v.app_stack_template;
        let rendered = ctx.render(template, serde_json::json!({}))?;
        let (stack, services) = complete(template, stack_name, &rendered, &v)?;
        let digest = files.digest(&stack);
        let mut out = files.resources;
        out.push(Box::new(config_file(
            &format!("{dir}/stack.yml"),
            stack.clone(),
            0o644,
        )));
        if v.app_deploy && super::swarm::leader(&v.swarm_managers_group, ctx)?.name == ctx.host.name
        {
            out.push(Box::new(Stack {
                name: stack_name.to_string(),
                dir,
                spec: stack,
                revisions: files.revisions,
                services,
                resolve_image: v.app_resolve_image.clone(),
                digest,
                follow: Some(v.app_update_timeout),
            }));
        }
        Ok(out)
    }
}

/// Stack and key names become Swarm object names and environment variables.
fn check_name(ctx: &RoleContext<'_>, var: &str, name: &str, stack: bool) -> InputResult<()> {
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || (stack && c == '-')
        });
    if ok {
        return Ok(());
    }
    let what = if stack {
        "a stack name: lowercase letters, digits, `_` and `-`"
    } else {
        "a config or secret key: lowercase letters, digits and `_`"
    };
    Err(ctx.var_error(var, format!("app: `{name}` is not {what}")))
}

/// The rendered stack file with the top-level entries of every config and
/// secret added, and its service names. Every service's `configs` and
/// `secrets` must name one the stack has: Docker would refuse it on the host.
fn complete(
    template: &str,
    stack_name: &str,
    text: &str,
    v: &Vars,
) -> InputResult<(String, Vec<String>)> {
    let error = |msg: String| {
        InputError::plain(format!("template `{template}`: {msg}"))
            .with_help("the app role's stack template: see docs/roles.md#app")
    };
    let mut doc: Value = serde_yaml_ng::from_str(text)
        .map_err(|e| error(format!("renders YAML that does not parse: {e}")))?;
    let Some(top) = doc.as_mapping_mut() else {
        return Err(error("renders no YAML mapping".into()));
    };
    // Docker 20.10 (Debian 12's) refuses a stack file without a version
    // ("unsupported Compose file version: 1.0"); newer ones accept this one.
    if !top.contains_key("version") {
        top.insert("version".into(), "3.8".into());
    }
    for (section, keys) in [
        ("configs", v.app_configs.keys().collect::<Vec<_>>()),
        ("secrets", v.app_secrets.keys().collect()),
    ] {
        let entries = top
            .entry(section.into())
            .or_insert_with(|| Value::Mapping(Mapping::new()));
        let Some(entries) = entries.as_mapping_mut() else {
            return Err(error(format!("top-level `{section}` is not a mapping")));
        };
        for key in keys {
            if entries.contains_key(key.as_str()) {
                return Err(error(format!(
                    "declares {section} `{key}`, which app_{section} declares too; leave it to the role"
                )));
            }
            let mut entry = Mapping::new();
            entry.insert("file".into(), format!("./{section}/{key}").into());
            entry.insert(
                "name".into(),
                format!("{stack_name}_{key}_${{{}}}", env_var(key)).into(),
            );
            entries.insert(key.as_str().into(), Value::Mapping(entry));
        }
        if entries.is_empty() {
            top.remove(section);
        }
    }
    let services = services(&doc).map_err(error)?;
    let stack = serde_yaml_ng::to_string(&doc).map_err(|e| error(e.to_string()))?;
    Ok((format!("{}\n{stack}", super::MANAGED), services))
}

/// The service names, after checking what each refers to exists.
fn services(doc: &Value) -> Result<Vec<String>, String> {
    let Some(services) = doc.get("services").and_then(Value::as_mapping) else {
        return Err("has no `services` mapping".into());
    };
    if services.is_empty() {
        return Err("has no services".into());
    }
    let mut names = Vec::new();
    for (name, service) in services {
        let name = name.as_str().ok_or("a service name is not a string")?;
        for section in ["configs", "secrets"] {
            let declared = doc.get(section).and_then(Value::as_mapping);
            let refs = service.get(section).and_then(Value::as_sequence);
            for r in refs.into_iter().flatten() {
                let source = r
                    .as_str()
                    .or_else(|| r.get("source").and_then(Value::as_str))
                    .unwrap_or_default();
                if !declared.is_some_and(|d| d.contains_key(source)) {
                    return Err(format!(
                        "service `{name}` uses {section} `{source}`, which neither the stack nor app_{section} declares"
                    ));
                }
            }
        }
        names.push(name.to_string());
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        Vars {
            app_configs: [("nginx_conf".into(), "nginx.conf.j2".into())].into(),
            app_secrets: [("db_password".into(), "s3cret-value".into())].into(),
            ..Vars::default()
        }
    }

    const STACK: &str = "services:\n  nginx:\n    image: nginx\n    configs:\n      - source: nginx_conf\n        target: /etc/nginx/nginx.conf\n  api:\n    image: app\n    secrets: [db_password]\n";

    #[test]
    fn adds_hashed_names_for_configs_and_secrets() {
        let (stack, services) = complete("t", "shop", STACK, &vars()).unwrap();
        assert_eq!(services, ["nginx", "api"]);
        assert!(stack.starts_with("# Managed by slipway"), "{stack}");
        assert!(
            stack.contains("version: '3.8'") || stack.contains("version: \"3.8\""),
            "{stack}"
        );
        let doc: Value = serde_yaml_ng::from_str(&stack).unwrap();
        assert_eq!(
            doc["configs"]["nginx_conf"]["name"].as_str(),
            Some("shop_nginx_conf_${NGINX_CONF_REV}")
        );
        assert_eq!(
            doc["secrets"]["db_password"]["file"].as_str(),
            Some("./secrets/db_password")
        );
        assert!(!stack.contains("s3cret"));
    }

    #[test]
    fn refuses_unknown_references_and_double_declarations() {
        let e = complete("t", "shop", STACK, &Vars::default()).unwrap_err();
        assert!(
            e.message()
                .contains("service `nginx` uses configs `nginx_conf`")
        );
        let twice = format!("{STACK}configs:\n  nginx_conf:\n    file: x\n");
        let e = complete("t", "shop", &twice, &vars()).unwrap_err();
        assert!(
            e.message().contains("app_configs declares too"),
            "{}",
            e.message()
        );
        let e = complete("t", "shop", "services: [", &vars()).unwrap_err();
        assert!(e.message().contains("does not parse"));
    }
}

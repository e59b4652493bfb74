//! From a playbook's `[[play.resources]]` table to a typed resource.
//!
//! Every string value is a template: it is rendered with the host's variables
//! first, then the table is parsed as its kind, so type errors and unknown keys
//! still point at the exact spot in the playbook.

use std::path::Path;

use serde::de::DeserializeOwned;
use toml::de::DeValue;

use super::Resource;
use crate::config::doc::{Doc, Node};
use crate::diag::InputResult;
use crate::redact::Redactor;
use crate::template::Templates;

pub struct BuildContext<'a> {
    pub doc: &'a Doc<'a>,
    pub templates: &'a Templates,
    pub vars: &'a minijinja::Value,
    pub redactor: &'a Redactor,
    /// Where relative `source` paths are taken from (the playbook's directory).
    pub base_dir: &'a Path,
}

impl<'a> BuildContext<'a> {
    /// Parses a rendered resource table as `T`, ignoring its `type` key.
    pub fn typed<T: DeserializeOwned>(&self, node: &Node<'a>) -> InputResult<T> {
        let mut node = node.clone();
        if let DeValue::Table(t) = node.get_mut() {
            t.remove("type");
        }
        self.doc.typed(&node)
    }

    pub fn error(&self, node: &Node<'_>, msg: impl Into<String>) -> crate::diag::InputError {
        self.doc.src.error(node.span(), msg)
    }

    /// The span of `key` in the resource table, or the table's span.
    pub fn error_at(
        &self,
        node: &Node<'_>,
        key: &str,
        msg: impl Into<String>,
    ) -> crate::diag::InputError {
        let span = node.get_ref().get(key).map_or(node.span(), |v| v.span());
        self.doc.src.error(span, msg)
    }
}

pub fn build<'a>(node: &Node<'a>, ctx: &BuildContext<'a>) -> InputResult<Box<dyn Resource>> {
    let mut node = node.clone();
    render_strings(&mut node, ctx)?;
    refuse_secrets(&node, ctx)?;
    let Some(kind) = node.get_ref().get("type") else {
        return Err(ctx
            .error(&node, "resource has no `type`")
            .with_help(format!(
                "add type = \"...\", one of: {}",
                super::kind::inline_names()
            )));
    };
    let Some(kind_name) = kind.get_ref().as_str() else {
        return Err(ctx.error(kind, "`type` must be a string"));
    };
    if let Some(build) = super::kind::inline(kind_name).and_then(|k| k.build) {
        return build(&node, ctx);
    }
    let message = if super::KINDS.iter().any(|k| k.name == kind_name) {
        format!("resource type `{kind_name}` is made by built-in roles only")
    } else {
        format!("unknown resource type `{kind_name}`")
    };
    Err(ctx
        .error(kind, message)
        .with_help(format!("one of: {}", super::kind::inline_names())))
}

/// Keys whose values name things: files, accounts, units, templates. A
/// secret there would show in every plan and become a file name (`render`).
const NAMING_KEYS: &[&str] = &[
    "path", "name", "owner", "group", "groups", "home", "shell", "creates", "notify", "template",
    "source",
];

fn refuse_secrets(node: &Node<'_>, ctx: &BuildContext<'_>) -> InputResult<()> {
    for key in NAMING_KEYS {
        let Some(value) = node.get_ref().get(key) else {
            continue;
        };
        let items = match value.get_ref() {
            DeValue::Array(items) => items.iter().collect(),
            _ => vec![value],
        };
        for item in items {
            if let DeValue::String(s) = item.get_ref()
                && ctx.redactor.touches(s.as_bytes())
            {
                return Err(ctx
                    .doc
                    .src
                    .error(item.span(), format!("`{key}` comes from a secret"))
                    .with_help(
                        "a secret cannot name a file, an account, a unit or a template: \
                         names show in plans and become file names",
                    ));
            }
        }
    }
    Ok(())
}

fn render_strings<'a>(node: &mut Node<'a>, ctx: &BuildContext<'a>) -> InputResult<()> {
    let span = node.span();
    match node.get_mut() {
        DeValue::String(s) => {
            let start = string_body_start(&ctx.doc.src.text, span.start);
            let rendered = ctx
                .templates
                .render_str(s, ctx.vars, (ctx.doc.src, start))?;
            if rendered != **s {
                *s = rendered.into();
            }
        }
        DeValue::Array(items) => {
            for item in items.iter_mut() {
                render_strings(item, ctx)?;
            }
        }
        DeValue::Table(t) => {
            for (_, v) in t.iter_mut() {
                render_strings(v, ctx)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Where a TOML string's text begins, after its opening quotes (and the newline
/// a multi-line string may start with).
fn string_body_start(text: &str, start: usize) -> usize {
    let rest = &text[start.min(text.len())..];
    let quotes = if rest.starts_with("\"\"\"") || rest.starts_with("'''") {
        3
    } else {
        1
    };
    let after = &rest[quotes.min(rest.len())..];
    let newline = if quotes == 3 && after.starts_with('\n') {
        1
    } else if quotes == 3 && after.starts_with("\r\n") {
        2
    } else {
        0
    };
    start + quotes + newline
}

#[cfg(test)]
mod tests {
    use super::string_body_start;

    #[test]
    fn finds_string_bodies() {
        assert_eq!(string_body_start("x = \"ab\"", 4), 5);
        assert_eq!(string_body_start("x = \"\"\"\nab\"\"\"", 4), 8);
    }
}

//! The Alloy configuration's structure. No Alloy binary is packaged here, so
//! the file is read as Alloy's syntax is documented: blocks
//! `kind.name "label" { ... }` (components), nested blocks without a label,
//! and references `kind.name.label.export`. Checked: every reference names a
//! defined component, every log source forwards to a defined receiver, and
//! the labels docs/roles-monitoring.md lists are set.

use std::collections::{BTreeMap, BTreeSet};

use super::{monitoring_dir, render};

/// Top-level components by `kind.name.label`, with their bodies.
fn components(text: &str) -> BTreeMap<String, String> {
    // Comments first: a `//` inside a string (a URL) is not one.
    let code: String = text
        .lines()
        .map(|l| {
            let mut in_string = false;
            let mut prev = ' ';
            for (i, c) in l.char_indices() {
                match c {
                    '"' if prev != '\\' => in_string = !in_string,
                    '/' if !in_string && prev == '/' => return &l[..i - 1],
                    _ => {}
                }
                prev = c;
            }
            l
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = BTreeMap::new();
    let mut rest = code.as_str();
    while let Some(open) = rest.find('{') {
        let head = rest[..open].trim();
        let (kind, label) = head
            .split_once(' ')
            .unwrap_or_else(|| panic!("a top-level block without a label: {head:?}"));
        let label = label.trim().trim_matches('"');
        let mut depth = 0;
        let mut end = None;
        for (i, c) in rest[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(open + i);
                        break;
                    }
                }
                _ => {}
            }
        }
        let end = end.expect("unbalanced braces");
        let name = format!("{kind}.{label}");
        assert!(
            out.insert(name.clone(), rest[open + 1..end].to_string())
                .is_none(),
            "{name} defined twice"
        );
        rest = &rest[end + 1..];
    }
    assert!(
        rest.trim().is_empty(),
        "text after the last block: {rest:?}"
    );
    out
}

/// `kind.name.label.export` references in a body: dotted names of four or
/// more parts whose first part is a component namespace.
fn references(body: &str) -> BTreeSet<String> {
    let namespaces = ["discovery", "loki", "local", "prometheus"];
    body.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '"'))
        .filter(|w| !w.contains('"'))
        .filter(|w| {
            let parts: Vec<&str> = w.split('.').collect();
            parts.len() >= 4 && namespaces.contains(&parts[0])
        })
        .map(|w| w.rsplit_once('.').unwrap().0.to_string())
        .collect()
}

#[test]
fn every_component_is_defined_and_every_source_reaches_loki() {
    let (home, r) = render(&[]);
    r.expect(0);
    let text = std::fs::read_to_string(monitoring_dir(&home).join("alloy/config.alloy")).unwrap();
    let comps = components(&text);
    let kinds: BTreeSet<&str> = comps
        .keys()
        .map(|k| k.rsplit_once('.').unwrap().0)
        .collect();
    for kind in [
        "discovery.docker",
        "discovery.relabel",
        "loki.source.docker",
        "loki.source.journal",
        "local.file_match",
        "loki.source.file",
        "loki.write",
    ] {
        assert!(kinds.contains(kind), "no {kind} in:\n{text}");
    }
    let mut used = BTreeSet::new();
    for (name, body) in &comps {
        for r in references(body) {
            assert!(
                comps.contains_key(&r),
                "{name} refers to {r}, which is not defined"
            );
            used.insert(r);
        }
        if name.starts_with("loki.source.") {
            let forward = body
                .lines()
                .find(|l| l.trim_start().starts_with("forward_to"))
                .unwrap_or_else(|| panic!("{name} forwards nowhere"));
            assert!(
                forward.contains("loki.write.loki.receiver"),
                "{name}: {forward}"
            );
        }
    }
    // Nothing is defined for nothing: every component but the sources is used.
    for name in comps.keys().filter(|n| !n.starts_with("loki.source.")) {
        assert!(used.contains(name), "{name} is defined but nothing uses it");
    }
    assert!(
        comps["loki.write.loki"].contains("\"http://loki:3100/loki/api/v1/push\""),
        "{}",
        comps["loki.write.loki"]
    );
    // The labels the docs promise.
    let relabel = &comps["discovery.relabel.containers"];
    for (meta, label) in [
        ("__meta_docker_container_name", "container"),
        (
            "__meta_docker_container_label_com_docker_swarm_service_name",
            "service",
        ),
        (
            "__meta_docker_container_label_com_docker_stack_namespace",
            "stack",
        ),
    ] {
        let rule = relabel
            .split("rule {")
            .find(|r| r.contains(meta))
            .unwrap_or_else(|| panic!("no rule for {meta}"));
        assert!(
            rule.contains(&format!("target_label  = \"{label}\"")),
            "{rule}"
        );
    }
    assert!(comps["loki.write.loki"].contains("node = constants.hostname"));
    assert!(comps["loki.relabel.journal"].contains("target_label  = \"unit\""));
    let files = &comps["local.file_match.files"];
    for path in ["/var/log/**/*.log", "/app/logs/*.log"] {
        assert!(
            files.contains(&format!("\"__path__\" = \"{path}\"")),
            "{files}"
        );
    }
}

#[test]
fn the_parser_sees_what_is_wrong() {
    let broken = "loki.source.file \"f\" {\n  targets = local.file_match.gone.targets\n  forward_to = []\n}\n";
    let comps = components(broken);
    assert_eq!(
        references(&comps["loki.source.file.f"]),
        BTreeSet::from(["local.file_match.gone".to_string()])
    );
    let commented = "// a { brace in a comment\nloki.write \"w\" {\n  endpoint {\n    url = \"http://x//y\"\n  }\n}\n";
    assert_eq!(components(commented).len(), 1);
}

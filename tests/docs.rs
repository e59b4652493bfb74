//! The role documentation keeps up with the code: every role has a section,
//! and every variable appears with its real default.

use std::path::Path;

fn docs() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("roles")
        })
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `name = value` lines of the docs' code blocks, comments and alignment removed.
fn documented(docs: &str) -> Vec<String> {
    docs.lines()
        .map(|l| l.split(" #").next().unwrap_or(l).trim().to_string())
        .filter(|l| l.contains(" = "))
        .collect()
}

#[test]
fn every_role_variable_is_documented_with_its_default() {
    let docs = docs();
    let lines = documented(&docs);
    let mut missing = Vec::new();
    for role in slipway::roles::all() {
        assert!(
            docs.contains(&format!("## {}", role.name())),
            "no section for role {}",
            role.name()
        );
        for line in slipway::roles::defaults_toml(*role).lines() {
            if !lines.iter().any(|l| l == line) {
                missing.push(format!("{}: {line}", role.name()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "undocumented or wrong defaults:\n{}",
        missing.join("\n")
    );
}

fn doc(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs")
            .join(name),
    )
    .unwrap()
}

/// docs/playbook.md has a section per kind a playbook can write, opening with
/// the kind's doc line; names the kinds only roles make; and its table of
/// what each kind manages is the one `KINDS` declares.
#[test]
fn playbook_docs_list_every_resource_kind() {
    let text = doc("playbook.md");
    let mut problems = Vec::new();
    for kind in slipway::resource::KINDS {
        if kind.inline() {
            let heading = format!("### `{}`\n\n", kind.name);
            match text.find(&heading) {
                Some(at) if text[at + heading.len()..].starts_with(kind.doc) => {}
                Some(_) => problems.push(format!(
                    "{heading:?} must be followed by its doc line {:?}",
                    kind.doc
                )),
                None => problems.push(format!("no section {heading:?}")),
            }
        }
        let row = format!("| `{}` | {} | {} |\n", kind.name, kind.manages, kind.probe);
        if !text.contains(&row) {
            problems.push(format!("no row {row:?}"));
        }
    }
    let sentence = text
        .lines()
        .find(|l| l.starts_with("The built-in roles use further kinds of their own"))
        .expect("the sentence naming the role-only kinds");
    let mut named: Vec<&str> = sentence.split('`').skip(1).step_by(2).collect();
    let mut role_only: Vec<&str> = slipway::resource::KINDS
        .iter()
        .filter(|k| !k.inline())
        .map(|k| k.name)
        .collect();
    named.sort();
    role_only.sort();
    if named != role_only {
        problems.push(format!(
            "role-only kinds: docs {named:?}, code {role_only:?}"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The plan schema's description of resource ids names every kind, in order.
#[test]
fn plan_schema_names_every_resource_kind() {
    let schema: serde_json::Value = serde_json::from_str(&doc("plan.schema.json")).unwrap();
    let mut found = Vec::new();
    find_kinds(&schema, &mut found);
    let want: Vec<&str> = slipway::resource::KINDS.iter().map(|k| k.name).collect();
    assert!(!found.is_empty(), "the schema lists no kinds");
    for list in found {
        assert_eq!(list, want, "docs/plan.schema.json");
    }
}

/// Every `Kinds: a, b, c.` in a description.
fn find_kinds(v: &serde_json::Value, out: &mut Vec<Vec<String>>) {
    match v {
        serde_json::Value::String(s) => {
            if let Some((_, rest)) = s.split_once("Kinds: ") {
                let list = rest.split('.').next().unwrap_or_default();
                out.push(list.split(", ").map(String::from).collect());
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| find_kinds(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| find_kinds(x, out)),
        _ => {}
    }
}

/// docs/roles.md lists the words role variables begin with, which decide
/// which variables must be a role's.
#[test]
fn role_docs_list_the_variable_prefixes() {
    let text = doc("roles.md");
    let line = text
        .lines()
        .find(|l| l.starts_with("Role variables begin with "))
        .expect("the line listing the prefixes");
    let documented: Vec<String> = line
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|w| w.trim_end_matches('_').to_string())
        .collect();
    let prefixes: Vec<String> = slipway::roles::variable_prefixes().into_iter().collect();
    assert_eq!(documented, prefixes, "docs/roles.md");
}

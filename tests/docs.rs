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

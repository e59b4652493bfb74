//! `init`: a project directory with an inventory, playbooks and a template to
//! start from. The files are the ones this repository ships, so what `init`
//! writes is what the documentation and tests describe.

use std::path::Path;

use super::{CliError, EXIT_OK, Ui};

const FILES: &[(&str, &str)] = &[
    (
        "inventories/example.toml",
        include_str!("../../inventories/example.toml"),
    ),
    (
        "playbooks/site.toml",
        include_str!("../../playbooks/site.toml"),
    ),
    (
        "playbooks/example.toml",
        include_str!("../../playbooks/example.toml"),
    ),
    ("templates/motd.j2", include_str!("../../templates/motd.j2")),
];

pub fn run(dir: &Path, ui: &Ui) -> Result<i32, CliError> {
    let existing: Vec<String> = FILES
        .iter()
        .map(|(rel, _)| dir.join(rel))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !existing.is_empty() {
        return Err(CliError::Message(format!(
            "not overwriting what is there: {} (init writes only into a directory without these files)",
            existing.join(", ")
        )));
    }
    for (rel, text) in FILES {
        let path = dir.join(rel);
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(path.parent().expect("a relative path with a directory"))?;
            std::fs::write(&path, text)
        };
        write().map_err(|e| CliError::Message(format!("cannot write {}: {e}", path.display())))?;
        println!("{} {}", ui.palette.green("created"), path.display());
    }
    let inv = dir.join("inventories/example.toml");
    let site = dir.join("playbooks/site.toml");
    println!(
        "\nNext: put your hosts in {inv}, then\n  slipway check -i {inv} {site}\n  slipway plan -i {inv} {site} --user root",
        inv = inv.display(),
        site = site.display()
    );
    Ok(EXIT_OK)
}

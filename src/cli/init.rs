//! Getting started: `init` makes a project directory with an inventory,
//! playbooks and a template to start from (the files this repository ships,
//! so what `init` writes is what the documentation and tests describe), and
//! `man` and `completions` print the manual page and shell completions.

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

/// slipway(1): clap's rendering of the arguments, with the exit codes after it.
pub fn man() -> Result<i32, CliError> {
    use clap_mangen::roff::{Roff, bold, roman};
    let cmd = <super::Cli as clap::CommandFactory>::command();
    let man = clap_mangen::Man::new(cmd);
    let mut out = Vec::new();
    man.render(&mut out).expect("writing to memory");
    let mut extra = Roff::new();
    extra.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in [
        ("0", "success; with plan --detailed-exitcode: no changes"),
        (
            "1",
            "an error: bad input (nothing was touched), a host that failed, a stale saved plan",
        ),
        ("2", "plan --detailed-exitcode: there are changes"),
    ] {
        extra
            .control("TP", [])
            .text([bold(code)])
            .text([roman(meaning)]);
    }
    extra.control("SH", ["SEE ALSO"]);
    extra.text([roman(
        "slipway SUBCOMMAND --help; docs/ in the source repository: inventory.md, playbook.md, roles.md, plan-file.md, security.md, troubleshooting.md",
    )]);
    out.extend_from_slice(extra.render().as_bytes());
    print_bytes(&out)
}

pub fn completions(shell: clap_complete::Shell) -> Result<i32, CliError> {
    let mut cmd = <super::Cli as clap::CommandFactory>::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "slipway", &mut out);
    print_bytes(&out)
}

/// Writes to stdout; a reader that stopped early (`| head`, `| grep -q`) is not an error.
fn print_bytes(bytes: &[u8]) -> Result<i32, CliError> {
    match std::io::Write::write_all(&mut std::io::stdout(), bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::Message(format!("cannot write to stdout: {e}")))
        }
        _ => Ok(EXIT_OK),
    }
}

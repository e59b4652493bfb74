//! `man` and `completions`: the manual page and shell completions, both
//! generated from the argument definitions so they cannot drift from them.

use super::{CliError, EXIT_OK};

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
        (
            "2",
            "plan --detailed-exitcode: there are changes; audit: a host differs from what its roles set",
        ),
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

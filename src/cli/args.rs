//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "slipway",
    version,
    about = "Turns fresh Ubuntu 24.04 and Debian 12 machines into hardened Docker Swarm hosts over SSH",
    long_about = None,
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// When to colour output (NO_COLOR in the environment means never, unless always is given)
    #[arg(long, value_enum, default_value_t = Color::Auto, global = true)]
    pub color: Color,

    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Human, global = true)]
    pub format: Format,

    /// More detail: remote command counts, host facts and tracing of connections and
    /// remote commands (sizes and timings, never contents); -vv adds debug output
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Observe every host and show what apply would change
    Plan(PlanArgs),
    /// Converge the hosts: plan, confirm, apply, verify (or apply a saved plan exactly)
    Apply(ApplyArgs),
    /// Show what slipway observes on a host
    Facts(FactsArgs),
    /// Report, without changing anything, how each host differs from what its roles
    /// set: sshd, open ports, security updates, fail2ban, Docker, the swarm
    Audit(AuditArgs),
    /// Show who holds a host's lock and release it (after a run that died)
    Unlock(UnlockArgs),
    /// Back up PostgreSQL now and run its restore drill, on the hosts of the
    /// postgres_backup role
    Backup(BackupArgs),
    /// Restore a PostgreSQL backup into the running service (postgres_backup role)
    Restore(RestoreArgs),
    /// Take one fresh machine from root login to a hardened Swarm node
    Bootstrap(BootstrapArgs),
    /// Render every file each host would get into a directory, without connecting
    Render(RenderArgs),
    /// Check an inventory and playbook (formats, references, variables, templates)
    /// without connecting
    Check(CheckArgs),
    /// Start a project: inventories/, playbooks/ and templates/ with commented examples
    Init {
        /// Where (created if missing; existing files are never overwritten)
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Print shell completions: slipway completions bash > /etc/bash_completion.d/slipway
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page: slipway man > slipway.1
    Man,
    /// List the built-in roles, or show one role's variables with their defaults
    Roles {
        /// A role name
        name: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct Selection {
    /// Inventory file (TOML)
    #[arg(short, long, value_name = "INVENTORY")]
    pub inventory: Option<PathBuf>,

    /// Connect as this user on every host, whatever the inventory says (e.g. root
    /// for the first converge, before the deploy user exists)
    #[arg(short, long, value_name = "USER")]
    pub user: Option<String>,

    /// Only these hosts or groups (comma-separated)
    #[arg(short, long, value_name = "HOST|GROUP[,..]")]
    pub limit: Option<String>,

    /// How many hosts to work on at once (at least 1)
    #[arg(short, long, default_value_t = 20, value_name = "N", value_parser = forks)]
    pub forks: usize,

    #[command(flatten)]
    pub vars: VarArgs,
}

/// `--forks N`: a number of hosts, at least one.
fn forks(arg: &str) -> Result<usize, String> {
    match arg.parse::<usize>() {
        Ok(0) => Err("at least 1 host must be worked on at once".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("not a number of hosts: {e}")),
    }
}

/// Variables and templates from the command line, for every command that builds hosts' state.
#[derive(Debug, Args)]
pub struct VarArgs {
    /// Extra variable, highest precedence (repeatable): -e key=value
    #[arg(short = 'e', long = "extra-var", value_name = "KEY=VALUE")]
    pub extra_vars: Vec<String>,

    /// Templates directory (default: templates/ beside the playbook or its parent)
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
}

/// What offline commands read: no connection settings.
#[derive(Debug, Args)]
pub struct Inputs {
    /// Inventory file (TOML)
    #[arg(short, long, value_name = "INVENTORY")]
    pub inventory: PathBuf,

    /// Only these hosts or groups (comma-separated)
    #[arg(short, long, value_name = "HOST|GROUP[,..]")]
    pub limit: Option<String>,

    #[command(flatten)]
    pub vars: VarArgs,

    /// Playbook file (TOML)
    pub playbook: PathBuf,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub inputs: Inputs,

    /// Directory to write into, as DIR/HOST/path/on/host (created if missing)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub inputs: Inputs,
}

/// How a plan is shown, for every command that prints one.
#[derive(Debug, Args)]
pub struct PlanView {
    /// Show every line of created files; by default one longer than 40 lines
    /// shows its size, line count, sha256 and first 10 lines
    #[arg(long)]
    pub full_diff: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub sel: Selection,

    #[command(flatten)]
    pub view: PlanView,

    /// Playbook file (TOML)
    pub playbook: PathBuf,

    /// Save the plan to this file, for `slipway apply FILE`
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Exit 0 when there are no changes, 2 when there are, 1 on error
    #[arg(long)]
    pub detailed_exitcode: bool,

    /// When hosts differ from the playbook (or could not be planned), send a
    /// drift report to the inventory's [notify] channels
    #[arg(long)]
    pub notify_drift: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub sel: Selection,

    #[command(flatten)]
    pub view: PlanView,

    /// A playbook (with -i), or a plan file saved by `plan --out`
    #[arg(value_name = "PLAYBOOK|PLAN")]
    pub target: PathBuf,

    /// Apply without asking (required when stdin is not a terminal)
    #[arg(short, long)]
    pub yes: bool,

    /// Do not report the outcome to the inventory's [notify] channels
    #[arg(long)]
    pub no_notify: bool,
}

#[derive(Debug, Args)]
pub struct FactsArgs {
    /// Inventory file (TOML)
    #[arg(short, long, value_name = "INVENTORY")]
    pub inventory: PathBuf,

    /// The host to observe
    pub host: String,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub sel: Selection,

    /// The playbook whose roles say what each host should be
    #[arg(long, default_value = "playbooks/site.toml", value_name = "FILE")]
    pub playbook: PathBuf,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Inventory file (TOML)
    #[arg(short, long, value_name = "INVENTORY")]
    pub inventory: PathBuf,

    /// The host whose lock to release
    pub host: String,

    /// Connect as this user instead of the inventory's
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,

    /// Release without asking (required when stdin is not a terminal)
    #[arg(short, long)]
    pub yes: bool,

    /// Also stop the apply script of that run if it is still running (by
    /// default it stops by itself before its next step, and the next apply
    /// waits for it)
    #[arg(long)]
    pub stop_script: bool,
}

/// The hosts a command works on, without a playbook.
#[derive(Debug, Args)]
pub struct HostArgs {
    /// Inventory file (TOML)
    #[arg(short, long, value_name = "INVENTORY")]
    pub inventory: PathBuf,

    /// Only these hosts or groups (comma-separated)
    #[arg(short, long, value_name = "HOST|GROUP[,..]")]
    pub limit: Option<String>,

    /// Connect as this user instead of the inventory's
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub hosts: HostArgs,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub hosts: HostArgs,

    /// The backup: a file name in the host's backup directory, or latest
    #[arg(long, value_name = "BACKUP")]
    pub from: String,

    /// Restore without asking (required when stdin is not a terminal)
    #[arg(short, long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// The fresh machine: [root@]HOST[:PORT]
    #[arg(value_name = "[USER@]HOST[:PORT]")]
    pub target: String,

    /// Its name in the inventory (default: HOST)
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Key for the first login (default: the agent and ~/.ssh/id_*)
    #[arg(short = 'k', long = "identity", value_name = "FILE")]
    pub identity: Option<PathBuf>,

    /// Log in with a password the first time: asked for on the terminal, or
    /// read from SLIPWAY_BOOTSTRAP_PASSWORD; used for that login only
    #[arg(long)]
    pub password: bool,

    /// Public key(s) the deploy user will log in with (default: ~/.ssh/id_ed25519.pub)
    #[arg(long = "deploy-key", value_name = "FILE.pub")]
    pub deploy_keys: Vec<PathBuf>,

    /// known_hosts where the machine's host key is recorded
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,

    /// Playbook to apply
    #[arg(long, default_value = "playbooks/site.toml", value_name = "FILE")]
    pub playbook: PathBuf,

    /// Join the swarm of the hosts in this inventory instead of starting a new one
    #[arg(long, value_name = "INVENTORY")]
    pub join: Option<PathBuf>,

    /// The machine's role when joining
    #[arg(long, value_enum, default_value_t = JoinRole::Worker)]
    pub role: JoinRole,

    #[command(flatten)]
    pub vars: VarArgs,

    #[command(flatten)]
    pub view: PlanView,

    /// Apply without asking (required when stdin is not a terminal)
    #[arg(short, long)]
    pub yes: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JoinRole {
    Manager,
    Worker,
}

//! Bad input is refused before any host is touched: every mistake in an
//! inventory, a playbook, a template or on the command line makes `slipway`
//! exit 1 with an error that names the file and the line:column of the
//! offending text, and no connection is ever attempted.
//!
//! Every host of every inventory points at 127.0.0.1 and a port where a
//! non-blocking listener of the test waits; after each run the listener must
//! have nothing to accept. The inventory holds secrets from the environment,
//! a file and an inline value: none may appear in any output, in JSON, in
//! `-vv` logs, or in a file `render` writes.

mod registries;
mod values_and_secrets;

use std::fs;
use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod vars_and_conflicts;

const INV: &str = "inventory.toml";
const PB: &str = "playbook.toml";

/// An inventory that is fine on its own. `@PORT@` becomes the listener's port.
const GOOD_INV: &str = r#"[defaults]
user = "root"
port = @PORT@
connect_timeout = 2

[vars]
motd = "welcome"
api_token = { secret = true, env = "SLIPWAY_BAD_INPUT_SECRET" }
backup_password = { secret = true, file = "backup_password.txt" }
smtp_password = { secret = true, value = "inline-Secret-Value-3" }

[groups.web]
vars = { site = "example.org" }

[hosts.web1]
address = "127.0.0.1"
groups = ["web"]

[hosts.db1]
address = "127.0.0.1"
"#;

/// A playbook that is fine on its own.
const GOOD_PB: &str = r#"[[play]]
name = "base"
hosts = "all"

[[play.resources]]
type = "file"
path = "/etc/motd"
content = "{{ motd }} to {{ inventory_hostname }}\n"
"#;

/// The secrets' values: the environment variable's, the file's, the inline one.
const SECRETS: [&str; 3] = [
    "env-Secret-Value-1",
    "file-Secret-Value-2",
    "inline-Secret-Value-3",
];

/// Environment variables the cases rely on being unset.
const UNSET_SECRET: &str = "SLIPWAY_BAD_INPUT_TEST_UNSET_SECRET";
const UNSET_PASSWORD: &str = "SLIPWAY_BAD_INPUT_TEST_UNSET_PASSWORD";

/// A 1-based line and column in a file's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Loc {
    line: usize,
    col: usize,
}

impl Loc {
    /// The location `n` bytes further on the same line.
    fn plus(self, n: usize) -> Loc {
        Loc {
            line: self.line,
            col: self.col + n,
        }
    }
}

/// Where `needle` starts in `text`; it must occur exactly once.
fn loc(text: &str, needle: &str) -> Loc {
    let offset = text
        .find(needle)
        .unwrap_or_else(|| panic!("fixture has no {needle:?}:\n{text}"));
    assert_eq!(
        text.matches(needle).count(),
        1,
        "{needle:?} must occur once in the fixture:\n{text}"
    );
    let before = &text[..offset];
    Loc {
        line: before.matches('\n').count() + 1,
        col: offset - before.rfind('\n').map_or(0, |nl| nl + 1) + 1,
    }
}

/// Where `needle` starts inside the first occurrence of the unique `anchor`.
fn loc_in(text: &str, anchor: &str, needle: &str) -> Loc {
    let inner = anchor
        .find(needle)
        .unwrap_or_else(|| panic!("{anchor:?} has no {needle:?}"));
    loc(text, anchor).plus(inner)
}

/// One project in a temporary directory, which is also the child's HOME and
/// working directory, with a listener standing in for every host's SSH port.
struct Project {
    dir: tempfile::TempDir,
    listener: TcpListener,
    port: u16,
}

impl Project {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
        listener.set_nonblocking(true).expect("non-blocking");
        let port = listener.local_addr().expect("local addr").port();
        Self {
            dir,
            listener,
            port,
        }
    }

    /// Writes `text` (with `@PORT@` replaced) to `name`, and returns what was written.
    fn file(&self, name: &str, text: &str) -> String {
        let text = text.replace("@PORT@", &self.port.to_string());
        let path = self.dir.path().join(name);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(&path, &text).expect("write fixture");
        text
    }

    /// The good inventory with `from` replaced by `to`.
    fn inventory_with(&self, from: &str, to: &str) -> String {
        assert!(GOOD_INV.contains(from), "the inventory has no {from:?}");
        self.file(INV, &GOOD_INV.replacen(from, to, 1))
    }

    /// The good playbook with `extra` appended (usually one more resource).
    fn playbook_plus(&self, extra: &str) -> String {
        self.file(PB, &format!("{GOOD_PB}{extra}"))
    }

    /// Writes the good inventory and playbook where no file of that name exists yet.
    fn fill_in(&self) {
        for (name, text) in [
            (INV, GOOD_INV),
            (PB, GOOD_PB),
            ("backup_password.txt", "file-Secret-Value-2\n"),
        ] {
            if !self.dir.path().join(name).exists() {
                self.file(name, text);
            }
        }
    }

    /// `slipway plan -i inventory.toml playbook.toml ARGS...`
    fn plan(&self, args: &[&str]) -> Run {
        let mut all = vec!["plan", "-i", INV, PB];
        all.extend_from_slice(args);
        self.run(&all)
    }

    /// The same input refused by `check`, `render` and `plan` (also as JSON
    /// with `-vv`): each exits 1, connects nowhere, and shows no secret, nor
    /// writes one. Returns the plan's run, for where and what it says.
    fn refused(&self, args: &[&str]) -> Run {
        let out = self.dir.path().join(".render");
        let out_arg = out.display().to_string();
        let with = |head: &[&str], tail: &[&str]| -> Vec<String> {
            head.iter()
                .chain(args)
                .chain(tail)
                .map(|a| a.to_string())
                .collect()
        };
        let runs = [
            with(&["check", "-i", INV, PB], &[]),
            with(&["render", "-i", INV, PB], &["--out", &out_arg]),
            with(&["plan", "-i", INV, PB], &["--format", "json", "-vv"]),
        ];
        for r in &runs {
            let r: Vec<&str> = r.iter().map(String::as_str).collect();
            self.run(&r).fails().shows_no_secret();
        }
        for f in walk(&out) {
            let text = String::from_utf8_lossy(&fs::read(&f).unwrap_or_default()).into_owned();
            for s in SECRETS {
                assert!(
                    !text.contains(s),
                    "render wrote a secret into {}",
                    f.display()
                );
            }
        }
        let plan = self.plan(args);
        plan.shows_no_secret();
        plan
    }

    /// `slipway apply --yes -i inventory.toml playbook.toml ARGS...`
    fn apply(&self, args: &[&str]) -> Run {
        let mut all = vec!["apply", "--yes", "-i", INV, PB];
        all.extend_from_slice(args);
        self.run(&all)
    }

    fn command(&self, args: &[&str]) -> Command {
        self.fill_in();
        let home = self.dir.path();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_slipway"));
        cmd.args(args)
            .current_dir(home)
            .env("HOME", home)
            .env("NO_COLOR", "1")
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("SLIPWAY_LOG")
            .env("SLIPWAY_BAD_INPUT_SECRET", SECRETS[0])
            .env_remove(UNSET_SECRET)
            .env_remove(UNSET_PASSWORD)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs the binary to completion (killing it after a minute), then checks
    /// that no connection reached the listener.
    fn run(&self, args: &[&str]) -> Run {
        let out_path = self.dir.path().join(".stdout");
        let err_path = self.dir.path().join(".stderr");
        let mut child = self
            .command(args)
            .stdout(fs::File::create(&out_path).expect("stdout file"))
            .stderr(fs::File::create(&err_path).expect("stderr file"))
            .spawn()
            .expect("run slipway");
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                child.kill().ok();
                child.wait().ok();
                panic!("slipway {args:?} still running after 60s");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let run = Run {
            args: args.iter().map(|a| a.to_string()).collect(),
            code: status.code(),
            stdout: fs::read_to_string(&out_path).unwrap_or_default(),
            stderr: fs::read_to_string(&err_path).unwrap_or_default(),
        };
        match self.listener.accept() {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Ok((_, peer)) => panic!(
                "slipway connected to a host (from {peer}) despite bad input\n{}",
                run.dump()
            ),
            Err(e) => panic!("accept: {e}"),
        }
        run
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// What one run of the binary did.
struct Run {
    args: Vec<String>,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn dump(&self) -> String {
        format!(
            "slipway {}\nexit: {:?}\n--- stderr ---\n{}\n--- stdout ---\n{}",
            self.args.join(" "),
            self.code,
            self.stderr,
            self.stdout
        )
    }

    /// stderr with miette's line wrapping undone: words joined by single spaces.
    fn flat(&self) -> String {
        self.stderr
            .split_whitespace()
            .filter(|w| *w != "|")
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The error's first line, without miette's `x` marker.
    fn headline(&self) -> &str {
        let first = self
            .stderr
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default()
            .trim_start();
        ["x ", "\u{d7} ", "error: "]
            .iter()
            .find_map(|m| first.strip_prefix(m))
            .unwrap_or(first)
    }

    /// Exit code 1, and the error begins with `FILE:LINE:COL: `, LINE:COL one of `locs`.
    fn fails_at(&self, file: &str, locs: &[Loc]) -> &Self {
        self.fails();
        let headline = self.headline();
        let wanted: Vec<String> = locs
            .iter()
            .map(|l| format!("{file}:{}:{}: ", l.line, l.col))
            .collect();
        assert!(
            wanted.iter().any(|w| headline.starts_with(w.as_str())),
            "expected an error at {}\n{}",
            wanted.join(" or "),
            self.dump()
        );
        self
    }

    /// Exit code 1.
    fn fails(&self) -> &Self {
        assert_eq!(self.code, Some(1), "expected exit code 1\n{}", self.dump());
        self
    }

    /// The error mentions every one of `words` (matched with wrapping undone).
    fn mentions(&self, words: &[&str]) -> &Self {
        let flat = self.flat();
        for w in words {
            assert!(
                flat.contains(w),
                "expected the error to mention {w:?}\n{}",
                self.dump()
            );
        }
        self
    }

    /// No secret value in either stream.
    fn shows_no_secret(&self) -> &Self {
        for s in SECRETS {
            assert!(
                !self.stdout.contains(s) && !self.stderr.contains(s),
                "a secret was shown\n{}",
                self.dump()
            );
        }
        self
    }

    /// Nothing was planned: stdout shows no plan.
    fn plans_nothing(&self) -> &Self {
        assert!(
            self.stdout.trim().is_empty(),
            "expected no plan output\n{}",
            self.dump()
        );
        self
    }
}

/// Every file below `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

// ---------------------------------------------------------------- inventory

#[test]
fn malformed_inventory_toml_points_at_line_3() {
    let p = Project::new();
    let inv = p.file(
        INV,
        "[defaults]\nuser = \"root\"\nport = [oops\n\n[hosts.web1]\naddress = \"127.0.0.1\"\nport = @PORT@\n",
    );
    // `[oops` opens an unclosed array holding a bare word: either is the culprit.
    let at = loc(&inv, "[oops");
    assert_eq!(at.line, 3);
    p.refused(&[])
        .fails_at(INV, &[at, at.plus(1)])
        .plans_nothing();
}

#[test]
fn malformed_playbook_toml_with_unquoted_string() {
    let p = Project::new();
    let pb = p.file(PB, &GOOD_PB.replace("hosts = \"all\"", "hosts = all"));
    p.refused(&[])
        .fails_at(PB, &[loc_in(&pb, "hosts = all", "all")])
        .plans_nothing();
}

#[test]
fn duplicate_key_in_playbook_points_at_the_second_one() {
    let p = Project::new();
    let pb = p.file(
        PB,
        &GOOD_PB.replace(
            "path = \"/etc/motd\"",
            "path = \"/etc/motd\"\npath = \"/etc/issue\"",
        ),
    );
    p.refused(&[])
        .fails_at(PB, &[loc(&pb, "path = \"/etc/issue\"")])
        .mentions(&["path"]);
}

#[test]
fn unknown_key_in_defaults() {
    let p = Project::new();
    let inv = p.inventory_with("user = \"root\"", "user = \"root\"\nusre = \"admin\"");
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "usre")])
        .mentions(&["usre"])
        .plans_nothing();
}

#[test]
fn unknown_key_in_a_host() {
    let p = Project::new();
    let inv = p.inventory_with(
        "[hosts.db1]\naddress = \"127.0.0.1\"",
        "[hosts.db1]\naddress = \"127.0.0.1\"\nadress = \"10.0.0.9\"",
    );
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "adress =")])
        .mentions(&["adress"]);
}

#[test]
fn port_written_as_a_string_is_a_type_error() {
    let p = Project::new();
    let inv = p.inventory_with(
        "[hosts.db1]\naddress = \"127.0.0.1\"",
        "[hosts.db1]\naddress = \"127.0.0.1\"\nport = \"22\"",
    );
    p.refused(&[])
        .fails_at(INV, &[loc_in(&inv, "port = \"22\"", "\"22\"")])
        .mentions(&["22"]);
}

#[test]
fn host_key_checking_sometimes_is_not_a_policy() {
    let p = Project::new();
    let inv = p.inventory_with(
        "user = \"root\"",
        "user = \"root\"\nhost_key_checking = \"sometimes\"",
    );
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "\"sometimes\"")])
        .mentions(&["sometimes"]);
}

#[test]
fn become_doas_is_not_a_become_method() {
    let p = Project::new();
    let inv = p.inventory_with(
        "[hosts.web1]\naddress = \"127.0.0.1\"",
        "[hosts.web1]\naddress = \"127.0.0.1\"\nbecome = \"doas\"",
    );
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "\"doas\"")])
        .mentions(&["doas"]);
}

#[test]
fn address_in_defaults_belongs_to_a_host() {
    let p = Project::new();
    let inv = p.inventory_with(
        "user = \"root\"",
        "user = \"root\"\naddress = \"127.0.0.1\"",
    );
    let key = loc(&inv, "address = \"127.0.0.1\"\nport");
    p.refused(&[])
        .fails_at(INV, &[key, key.plus("address = ".len())])
        .mentions(&["address", "[defaults]"]);
}

#[test]
fn vars_under_defaults_belong_in_top_level_vars() {
    let p = Project::new();
    let inv = p.inventory_with(
        "connect_timeout = 2\n",
        "connect_timeout = 2\nvars = { ntp = \"pool.ntp.org\" }\n",
    );
    let key = loc(&inv, "ntp = ");
    p.refused(&[])
        .fails_at(INV, &[key, key.plus("ntp = ".len())])
        .mentions(&["[vars]"]);
}

#[test]
fn host_listing_a_host_name_as_its_group() {
    let p = Project::new();
    let inv = p.inventory_with("groups = [\"web\"]", "groups = [\"web\", \"db1\"]");
    p.refused(&[])
        .fails_at(INV, &[loc(&inv, "\"db1\"")])
        .mentions(&["db1"]);
}

#[test]
fn invalid_host_name() {
    let p = Project::new();
    let inv = p.inventory_with("[hosts.db1]", "[hosts.\"db 1\"]");
    // The name is the key of the table header; the error may point at the header
    // or at the name in it.
    let header = loc(&inv, "[hosts.\"db 1\"]");
    p.refused(&[])
        .fails_at(INV, &[header, header.plus(1), header.plus("[hosts.".len())])
        .mentions(&["db 1"]);
}

#[test]
fn empty_inventory_defines_no_hosts() {
    let p = Project::new();
    p.file(
        INV,
        "[defaults]\nuser = \"root\"\nport = @PORT@\n\n[vars]\nmotd = \"hi\"\n",
    );
    p.refused(&[])
        .fails_at(INV, &[Loc { line: 1, col: 1 }])
        .mentions(&["no hosts"]);
}

#[test]
fn secret_from_an_unset_environment_variable() {
    // Offline, check and render only warn: the secret is needed to connect.
    let p = Project::new();
    let inv = p.inventory_with(
        "motd = \"welcome\"",
        &format!("motd = \"welcome\"\ndb_password = {{ secret = true, env = \"{UNSET_SECRET}\" }}"),
    );
    let key = loc(&inv, "db_password");
    p.plan(&[])
        .fails_at(
            INV,
            &[key, loc_in(&inv, "db_password = { secret", "{ secret")],
        )
        .mentions(&["db_password", UNSET_SECRET]);
}

#[test]
fn secret_in_play_vars_from_an_unset_environment_variable() {
    // Offline, check and render only warn: the secret is needed to connect.
    let p = Project::new();
    let pb = p.file(
        PB,
        &GOOD_PB.replace(
            "hosts = \"all\"",
            &format!("hosts = \"all\"\nvars = {{ token = {{ secret = true, env = \"{UNSET_SECRET}\" }} }}"),
        ),
    );
    let key = loc(&pb, "token = ");
    p.plan(&[])
        .fails_at(PB, &[key, key.plus("token = ".len())])
        .mentions(&["token", UNSET_SECRET]);
}

#[test]
fn secret_with_two_sources() {
    let p = Project::new();
    let inv = p.inventory_with(
        "motd = \"welcome\"",
        "motd = \"welcome\"\napi_key = { secret = true, env = \"HOME\", value = \"x\" }",
    );
    let key = loc(&inv, "api_key = ");
    p.refused(&[])
        .fails_at(INV, &[key, key.plus("api_key = ".len())])
        .mentions(&["api_key"]);
}

#[test]
fn become_password_env_naming_an_unset_variable() {
    // Offline, check and render only warn: the secret is needed to connect.
    let p = Project::new();
    let inv = p.inventory_with(
        "[hosts.db1]\naddress = \"127.0.0.1\"",
        &format!(
            "[hosts.db1]\naddress = \"127.0.0.1\"\nbecome = \"sudo\"\nbecome_password_env = \"{UNSET_PASSWORD}\""
        ),
    );
    // The variable is named in the inventory: the error points there.
    let key = loc(&inv, "become_password_env");
    p.plan(&[])
        .fails_at(INV, &[key, key.plus("become_password_env = ".len())])
        .mentions(&[UNSET_PASSWORD])
        .plans_nothing();
}

// ------------------------------------------------------------------ plays

#[test]
fn play_pattern_naming_an_unknown_host() {
    let p = Project::new();
    let pb = p.file(PB, &GOOD_PB.replace("hosts = \"all\"", "hosts = \"web9\""));
    let value = loc(&pb, "\"web9\"");
    p.refused(&[])
        .fails_at(PB, &[value, value.plus(1)])
        .mentions(&["web9"])
        .plans_nothing();
}

#[test]
fn play_pattern_list_points_at_the_unknown_group_in_it() {
    let p = Project::new();
    let pb = p.file(
        PB,
        &GOOD_PB.replace("hosts = \"all\"", "hosts = \"web1, dbs\""),
    );
    p.refused(&[])
        .fails_at(PB, &[loc(&pb, "dbs")])
        .mentions(&["dbs"]);
}

#[test]
fn unknown_role() {
    let p = Project::new();
    let pb = p.file(
        PB,
        &GOOD_PB.replace(
            "hosts = \"all\"",
            "hosts = \"all\"\nroles = [\"docker_swarm\"]",
        ),
    );
    let value = loc(&pb, "\"docker_swarm\"");
    p.refused(&[])
        .fails_at(PB, &[value, value.plus(1)])
        .mentions(&["docker_swarm"]);
}

#[test]
fn play_without_hosts() {
    let p = Project::new();
    let pb = p.file(PB, &GOOD_PB.replace("hosts = \"all\"\n", ""));
    // The play is the offending text: its header or its first key.
    p.refused(&[])
        .fails_at(PB, &[loc(&pb, "[[play]]"), loc(&pb, "name = \"base\"")])
        .mentions(&["hosts"]);
}

#[test]
fn unknown_key_in_a_play() {
    let p = Project::new();
    let pb = p.file(
        PB,
        &GOOD_PB.replace("hosts = \"all\"", "hosts = \"all\"\nbecome_user = \"root\""),
    );
    p.refused(&[])
        .fails_at(PB, &[loc(&pb, "become_user")])
        .mentions(&["become_user"]);
}

#[test]
fn playbook_without_plays() {
    let p = Project::new();
    p.file(PB, "# nothing yet\n");
    p.refused(&[])
        .fails_at(PB, &[Loc { line: 1, col: 1 }])
        .mentions(&["no plays"]);
}

// -------------------------------------------------------------- resources

/// The location of the `n`th (0-based) `[[play.resources]]` header.
fn resource_header(text: &str, n: usize) -> Loc {
    let (offset, _) = text
        .match_indices("[[play.resources]]")
        .nth(n)
        .expect("resource header");
    let before = &text[..offset];
    Loc {
        line: before.matches('\n').count() + 1,
        col: 1,
    }
}

#[test]
fn resource_without_type() {
    let p = Project::new();
    let pb = p.playbook_plus("\n[[play.resources]]\npath = \"/etc/issue\"\ncontent = \"hi\"\n");
    p.refused(&[])
        .fails_at(
            PB,
            &[resource_header(&pb, 1), loc(&pb, "path = \"/etc/issue\"")],
        )
        .mentions(&["type"]);
}

#[test]
fn unknown_resource_type_flie() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"flie\"\npath = \"/etc/issue\"\ncontent = \"hi\"\n",
    );
    let value = loc(&pb, "\"flie\"");
    p.refused(&[])
        .fails_at(PB, &[value, value.plus(1)])
        .mentions(&["flie"])
        .plans_nothing();
}

#[test]
fn resource_type_that_is_not_a_string() {
    let p = Project::new();
    let pb = p.playbook_plus("\n[[play.resources]]\ntype = 3\npath = \"/etc/issue\"\n");
    p.refused(&[])
        .fails_at(PB, &[loc_in(&pb, "type = 3", "3")])
        .mentions(&["type"]);
}

#[test]
fn unknown_key_mdoe_in_a_file_resource() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/issue\"\ncontent = \"hi\"\nmdoe = \"0644\"\n",
    );
    p.refused(&[])
        .fails_at(PB, &[loc(&pb, "mdoe")])
        .mentions(&["mdoe"]);
}

#[test]
fn file_mode_0999_is_not_octal() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/issue\"\ncontent = \"hi\"\nmode = \"0999\"\n",
    );
    let value = loc(&pb, "\"0999\"");
    p.refused(&[])
        .fails_at(PB, &[value, value.plus(1)])
        .mentions(&["0999"]);
}

#[test]
fn directory_mode_644x_is_not_octal() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"directory\"\npath = \"/srv/app\"\nmode = \"644x\"\n",
    );
    let value = loc(&pb, "\"644x\"");
    p.refused(&[])
        .fails_at(PB, &[value, value.plus(1)])
        .mentions(&["644x"]);
}

#[test]
fn file_with_both_content_and_template() {
    let p = Project::new();
    p.file(
        "templates/issue.j2",
        "Welcome to {{ inventory_hostname }}\n",
    );
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/issue\"\ncontent = \"hi\"\ntemplate = \"issue.j2\"\n",
    );
    p.refused(&[])
        .fails_at(
            PB,
            &[
                resource_header(&pb, 1),
                loc(&pb, "content = \"hi\""),
                loc(&pb, "template = \"issue.j2\""),
            ],
        )
        .mentions(&["content", "template"]);
}

#[test]
fn file_template_that_does_not_exist() {
    let p = Project::new();
    p.file("templates/issue.j2", "Welcome\n");
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/issue\"\ntemplate = \"isuse.j2\"\n",
    );
    let value = loc(&pb, "\"isuse.j2\"");
    p.refused(&[])
        .fails_at(PB, &[value, value.plus(1)])
        .mentions(&["isuse.j2"]);
}

#[test]
fn file_source_that_does_not_exist() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/issue\"\nsource = \"files/isue\"\n",
    );
    let value = loc(&pb, "\"files/isue\"");
    p.refused(&[])
        .fails_at(PB, &[value, value.plus(1)])
        .mentions(&["files/isue"]);
}

#[test]
fn undefined_variable_in_inline_content_points_inside_the_string() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/issue\"\ncontent = \"Hello {{ site_nmae }}!\"\n",
    );
    p.refused(&[])
        .fails_at(PB, &[loc(&pb, "site_nmae")])
        .mentions(&["site_nmae", "undefined"])
        .plans_nothing();
}

#[test]
fn undefined_variable_on_a_later_line_of_a_multiline_string() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/issue\"\ncontent = \"\"\"\nline one {{ motd }}\nline two {{ motdd }}\n\"\"\"\n",
    );
    let at = loc(&pb, "motdd");
    assert_eq!(at.col, "line two {{ ".len() + 1);
    p.refused(&[]).fails_at(PB, &[at]).mentions(&["motdd"]);
}

#[test]
fn undefined_variable_in_a_template_file_names_the_template_and_line() {
    let p = Project::new();
    let tmpl = p.file(
        "templates/nginx.conf.j2",
        "server {\n    server_name {{ inventory_hostname }};\n    root {{ docroot }};\n}\n",
    );
    p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/nginx/conf.d/site.conf\"\ntemplate = \"nginx.conf.j2\"\n",
    );
    // Nobody defines `docroot`.
    p.refused(&[])
        .fails_at("templates/nginx.conf.j2", &[loc(&tmpl, "docroot")])
        .mentions(&["docroot", "undefined"])
        .plans_nothing();
}

#[test]
fn template_file_with_an_unclosed_if() {
    let p = Project::new();
    let tmpl = p.file("templates/issue.j2", "Welcome\n{% if motd %}\n{{ motd }}\n");
    p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/issue\"\ntemplate = \"issue.j2\"\n",
    );
    // The block that is never closed is the offending text; the end of the
    // template, where the parser notices, is acceptable too.
    let last = tmpl.lines().last().expect("a last line");
    let end = loc(&tmpl, last).plus(last.len());
    p.refused(&[])
        .fails_at(
            "templates/issue.j2",
            &[
                loc(&tmpl, "{% if motd %}"),
                end,
                Loc {
                    line: end.line + 1,
                    col: 1,
                },
            ],
        )
        .mentions(&["syntax error"]);
}

#[test]
fn template_syntax_error_empty_if_in_inline_content() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/issue\"\ncontent = \"{% if %}yes{% endif %}\"\n",
    );
    // `{% if %}` lacks its condition: the error points inside the tag.
    let tag = loc(&pb, "{% if %}");
    let cands: Vec<Loc> = (0.."{% if %}".len()).map(|i| tag.plus(i)).collect();
    p.refused(&[])
        .fails_at(PB, &cands)
        .mentions(&["syntax error"]);
}

#[test]
fn package_with_an_invalid_name() {
    let p = Project::new();
    let pb = p.playbook_plus("\n[[play.resources]]\ntype = \"package\"\nname = \"Nginx!\"\n");
    let value = loc(&pb, "\"Nginx!\"");
    p.refused(&[])
        .fails_at(PB, &[value, value.plus(1)])
        .mentions(&["Nginx!"]);
}

#[test]
fn package_list_points_at_the_invalid_name_in_it() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"package\"\nname = [\"curl\", \"jq\", \"Htop\"]\n",
    );
    let value = loc(&pb, "\"Htop\"");
    p.refused(&[])
        .fails_at(PB, &[value, value.plus(1)])
        .mentions(&["Htop"]);
}

#[test]
fn package_cache_valid_time_of_the_wrong_type() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"package\"\nname = \"curl\"\ncache_valid_time = \"soon\"\n",
    );
    p.refused(&[])
        .fails_at(PB, &[loc(&pb, "\"soon\"")])
        .mentions(&["soon"]);
}

#[test]
fn service_with_neither_enabled_nor_state() {
    let p = Project::new();
    let pb = p.playbook_plus("\n[[play.resources]]\ntype = \"service\"\nname = \"nginx\"\n");
    p.refused(&[])
        .fails_at(
            PB,
            &[resource_header(&pb, 1), loc(&pb, "type = \"service\"")],
        )
        .mentions(&["enabled", "state"]);
}

#[test]
fn service_state_that_is_not_running_or_stopped() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"service\"\nname = \"nginx\"\nstate = \"started\"\n",
    );
    p.refused(&[])
        .fails_at(PB, &[loc(&pb, "\"started\"")])
        .mentions(&["started"]);
}

#[test]
fn user_with_an_invalid_authorized_key() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"user\"\nname = \"deploy\"\nauthorized_keys = [\n  \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBcd ops@laptop\",\n  \"ssh-ed25519 ops@laptop\",\n]\n",
    );
    let value = loc(&pb, "\"ssh-ed25519 ops@laptop\"");
    p.refused(&[])
        .fails_at(PB, &[value, value.plus(1)])
        .mentions(&["SSH public key"]);
}

#[test]
fn user_with_an_invalid_group_name() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"user\"\nname = \"deploy\"\ngroups = [\"sudo\", \"Docker\"]\n",
    );
    let value = loc(&pb, "\"Docker\"");
    p.refused(&[])
        .fails_at(PB, &[value, value.plus(1)])
        .mentions(&["Docker"]);
}

#[test]
fn relative_file_path() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"etc/issue\"\ncontent = \"hi\"\n",
    );
    let value = loc(&pb, "\"etc/issue\"");
    p.refused(&[])
        .fails_at(PB, &[value, value.plus(1)])
        .mentions(&["etc/issue", "absolute"]);
}

#[test]
fn validate_command_without_placeholder() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/ssh/sshd_config.d/10-slipway.conf\"\ncontent = \"PasswordAuthentication no\\n\"\nvalidate = \"sshd -t\"\n",
    );
    let value = loc(&pb, "\"sshd -t\"");
    p.refused(&[])
        .fails_at(PB, &[value, value.plus(1)])
        .mentions(&["{}"]);
}

#[test]
fn command_creates_with_a_relative_path() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"command\"\nrun = \"touch /var/lib/done\"\ncreates = \"var/lib/done\"\n",
    );
    let value = loc(&pb, "\"var/lib/done\"");
    p.refused(&[])
        .fails_at(PB, &[value, value.plus(1)])
        .mentions(&["var/lib/done"]);
}

#[test]
fn sysctl_with_a_table_value() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"sysctl\"\nname = \"net\"\n\n[play.resources.settings]\n\"net.ipv4.ip_forward\" = 1\n\"net.core.somaxconn\" = { max = 4096 }\n",
    );
    // The offending entry: its key or its value.
    let key = loc(&pb, "\"net.core.somaxconn\"");
    let value = loc(&pb, "{ max = 4096 }");
    p.refused(&[])
        .fails_at(PB, &[key, value])
        .mentions(&["net.core.somaxconn"]);
}

#[test]
fn sysctl_name_that_cannot_name_a_file() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"sysctl\"\nname = \"../net\"\nsettings = { \"net.ipv4.ip_forward\" = 1 }\n",
    );
    let value = loc(&pb, "\"../net\"");
    p.refused(&[]).fails_at(PB, &[value, value.plus(1)]);
}

#[test]
fn group_with_an_invalid_name() {
    let p = Project::new();
    let pb = p.playbook_plus("\n[[play.resources]]\ntype = \"group\"\nname = \"Admins\"\n");
    let value = loc(&pb, "\"Admins\"");
    p.refused(&[])
        .fails_at(PB, &[value, value.plus(1)])
        .mentions(&["Admins"]);
}

#[test]
fn error_in_a_later_play_is_still_found_before_connecting() {
    let p = Project::new();
    let pb = p.file(
        PB,
        &format!(
            "{GOOD_PB}\n[[play]]\nname = \"web\"\nhosts = \"web\"\n\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/issue\"\ncontent = \"{{{{ site }}}} {{{{ sitee }}}}\"\n"
        ),
    );
    p.refused(&[])
        .fails_at(PB, &[loc(&pb, "sitee")])
        .mentions(&["sitee"]);
}

// ---------------------------------------------------------- command line

#[test]
fn extra_var_without_equals_sign() {
    let p = Project::new();
    p.refused(&["-e", "deploy_user"])
        .fails()
        .mentions(&["deploy_user", "key=value"])
        .plans_nothing();
}

#[test]
fn extra_var_with_an_invalid_name() {
    let p = Project::new();
    p.refused(&["-e", "deploy-user=ops"])
        .fails()
        .mentions(&["deploy-user"]);
}

#[test]
fn limit_naming_an_unknown_host() {
    let p = Project::new();
    p.refused(&["--limit", "web7"])
        .fails()
        .mentions(&["web7"])
        .plans_nothing();
}

#[test]
fn extra_var_does_not_hide_an_undefined_variable() {
    let p = Project::new();
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/issue\"\ncontent = \"{{ release }} {{ relase }}\"\n",
    );
    p.refused(&["-e", "release=24.04"])
        .fails_at(PB, &[loc(&pb, "relase")])
        .mentions(&["relase"]);
}

#[test]
fn limit_to_one_host_still_checks_its_resources() {
    let p = Project::new();
    // Only db1 lacks `site` (it is not in the web group).
    let pb = p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/issue\"\ncontent = \"{{ site }}\"\n",
    );
    p.refused(&["--limit", "db1"])
        .fails_at(PB, &[loc_in(&pb, "\"{{ site }}\"", "site")])
        .mentions(&["site"]);
}

#[test]
fn apply_yes_with_an_unknown_resource_type_connects_to_nothing() {
    let p = Project::new();
    let pb = p.playbook_plus("\n[[play.resources]]\ntype = \"pakage\"\nname = \"curl\"\n");
    let value = loc(&pb, "\"pakage\"");
    p.apply(&[])
        .fails_at(PB, &[value, value.plus(1)])
        .mentions(&["pakage"])
        .plans_nothing();
}

#[test]
fn apply_yes_with_an_unknown_inventory_key_connects_to_nothing() {
    let p = Project::new();
    let inv = p.inventory_with("connect_timeout = 2", "connect_timeout = 2\nforks = 5");
    p.apply(&["-e", "motd=hi"])
        .fails_at(INV, &[loc(&inv, "forks")])
        .mentions(&["forks"]);
}

#[test]
fn apply_yes_with_limit_and_undefined_variable_in_template() {
    let p = Project::new();
    let tmpl = p.file("templates/motd.j2", "{{ motd }}\n{{ owner_email }}\n");
    p.playbook_plus(
        "\n[[play.resources]]\ntype = \"file\"\npath = \"/etc/motd.d/owner\"\ntemplate = \"motd.j2\"\n",
    );
    p.apply(&["--limit", "web", "-e", "motd=hello"])
        .fails_at("templates/motd.j2", &[loc(&tmpl, "owner_email")])
        .mentions(&["owner_email"]);
}

// ------------------------------------------------------------ control

/// The no-connection checks above mean something: with good input, the
/// binary does connect to the listener.
#[test]
fn control_good_input_does_connect_to_the_listener() {
    let p = Project::new();
    p.fill_in();
    let mut child = p
        .command(&["plan", "-i", INV, PB, "--limit", "db1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run slipway");
    let deadline = Instant::now() + Duration::from_secs(30);
    let connected = loop {
        match p.listener.accept() {
            Ok(_) => break true,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("accept: {e}"),
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Dropping the accepted stream ends the handshake; the plan fails for db1.
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            child.kill().ok();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait().ok();
    assert!(
        connected,
        "good input never connected to {}",
        p.path().display()
    );
}

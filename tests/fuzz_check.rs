//! Fuzz-style test of `slipway check`: random and truncated versions of the
//! shipped inventories, playbooks and templates never make it panic, and never
//! make it print a secret.
//!
//! The inventories get secrets with known values (from the environment, a
//! file and an inline `value`), besides the lab's Grafana password file and
//! the example playbook's `EXAMPLE_DB_PASSWORD`. Each case mutates one file
//! (truncation, byte flips, lines deleted or duplicated, values swapped
//! between keys, TOML and template tokens inserted, invalid UTF-8, lines past
//! column 65535, lines spliced in from other files) and checks it:
//!
//! - every case in this process, through the library as `slipway check` runs
//!   it (load, expand, offline files, the error rendered by miette as the
//!   binary renders it), with panics caught;
//! - every `BINARY_EVERY`th case through the real binary too: it must exit 0
//!   or 1 (not 101, not a signal) and show no secret on stdout or stderr;
//! - a case whose in-process output shows a secret before the binary's own
//!   redaction is run through the binary as well, which decides.
//!
//! A case is reproducible from the seed and its number. `SLIPWAY_FUZZ_SEED`
//! and `SLIPWAY_FUZZ_CASES` change the run; the inputs of failing cases are
//! kept under target/tmp/fuzz_check/ with the command that shows the failure.
//!
//! One test: it sets HOME and the secrets' environment variables for the
//! whole process (the in-process runs read them).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use slipway::config::{LoadOptions, Project};
use slipway::diag::InputError;
use slipway::redact::Redactor;

const DEFAULT_SEED: u64 = 0x51_1b_ca_fe_f0_22_20_26;
const DEFAULT_CASES: usize = 10_000;
/// About 300 of 10,000 cases also run through the real binary.
const BINARY_EVERY: usize = 33;
/// A binary run that takes longer has hung.
const BINARY_TIMEOUT: Duration = Duration::from_secs(30);
/// An in-process case that takes longer is reported as slow.
const SLOW_CASE: Duration = Duration::from_secs(5);

const ENV_SECRET_VAR: &str = "SLIPWAY_FUZZ_ENV_SECRET";
const DB_SECRET_VAR: &str = "EXAMPLE_DB_PASSWORD";

/// The secrets' names and values. Only `inline` is written in an input file.
const SECRETS: [(&str, &str); 5] = [
    ("env", "fzEnvS3cr3t-a81f"),
    ("file", "fzFileS3cr3t-b72e"),
    ("inline", "fzInlineS3cr3t-c63d"),
    ("grafana file", "fzGrafanaS3cr3t-d54c"),
    ("example db env", "fzDbS3cr3t-e45b"),
];

/// Added under `[vars]` of every inventory.
const SECRET_VARS: &str = "fuzz_env_secret = { secret = true, env = \"SLIPWAY_FUZZ_ENV_SECRET\" }\n\
fuzz_file_secret = { secret = true, file = \"fuzz_secret.txt\" }\n\
fuzz_inline_secret = { secret = true, value = \"fzInlineS3cr3t-c63d\" }\n";

/// The line that declares the inline secret: while it stands as written, its
/// value is a secret and must not be shown.
const INLINE_DECLARATION: &str =
    "fuzz_inline_secret = { secret = true, value = \"fzInlineS3cr3t-c63d\" }";

/// Where the lab inventory reads the Grafana password, under HOME.
const GRAFANA_FILE: &str = ".local/state/slipway-lab/lab/grafana_admin_password";

/// Tokens inserted at random: TOML syntax, keys and tables slipway knows,
/// template syntax, and references to the secrets.
const TOKENS: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    "=",
    "\"",
    "'",
    "'''",
    "\"\"\"",
    ",",
    ".",
    "\n",
    "#",
    " ",
    "\\",
    "\\u",
    "\\uD800",
    "\\x00",
    "true",
    "false",
    "-0",
    "1e999",
    "inf",
    "nan",
    "0x",
    "99999999999999999999",
    "-1",
    "1979-05-27T07:32:00Z",
    "[vars]",
    "[defaults]",
    "[hosts.x]",
    "[groups.managers]",
    "[[play]]",
    "[[play.resources]]",
    "[play.vars]",
    "hosts = \"all\"",
    "hosts = \"nobody\"",
    "roles = [\"base\"]",
    "roles = [\"monitoring\"]",
    "type = \"file\"",
    "type = \"sysctl\"",
    "type = \"command\"",
    "path = \"/etc/x\"",
    "template = \"motd.j2\"",
    "address = \"\"",
    "port = 0",
    "port = 70000",
    "secret = true",
    "{ secret = true }",
    "{ secret = true, env = \"SLIPWAY_FUZZ_ENV_SECRET\" }",
    "{ secret = true, file = \"fuzz_secret.txt\" }",
    "\"{{ fuzz_env_secret }}\"",
    "\"{{ fuzz_inline_secret }}\"",
    "\"{{ fuzz_file_secret }}\"",
    "\"/{{ fuzz_inline_secret }}\"",
    "\"{{ fuzz_env_secret | int }}\"",
    "{{",
    "}}",
    "{%",
    "%}",
    "{#",
    "#}",
    "{{ fuzz_env_secret }}",
    "{{ fuzz_file_secret.x }}",
    "{{ fuzz_inline_secret | int }}",
    "{{ fuzz_env_secret ~ 1 / 0 }}",
    "{% include fuzz_inline_secret %}",
    "{% include fuzz_file_secret ~ \".j2\" %}",
    "{% include \"monitoring/stack.yml.j2\" %}",
    "{% for x in hosts %}",
    "{% endfor %}",
    "{% if %}",
    "{% endif %}",
    "{{ hosts }}",
    "{{ groups | tojson }}",
    "{{ undefined_var }}",
    "{{ 1 / 0 }}",
    "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
    "é",
    "𝕏",
    "\u{202e}",
    "\u{feff}",
    "\t",
    "\r",
    "\r\n",
    "\0",
];

/// Byte sequences that are not UTF-8.
const INVALID_UTF8: &[&[u8]] = &[
    b"\xff",
    b"\xfe\xff",
    b"\xc3",
    b"\xc3\x28",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xe2\x82",
    b"\x80",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Mutation {
    Truncate,
    FlipBytes,
    DeleteLines,
    DuplicateLine,
    SwapValues,
    InsertTokens,
    InvalidUtf8,
    LongLine,
    Splice,
}

const MUTATIONS: [Mutation; 9] = [
    Mutation::Truncate,
    Mutation::FlipBytes,
    Mutation::DeleteLines,
    Mutation::DuplicateLine,
    Mutation::SwapValues,
    Mutation::InsertTokens,
    Mutation::InvalidUtf8,
    Mutation::LongLine,
    Mutation::Splice,
];

impl Mutation {
    fn name(self) -> &'static str {
        match self {
            Mutation::Truncate => "truncate",
            Mutation::FlipBytes => "flip bytes",
            Mutation::DeleteLines => "delete lines",
            Mutation::DuplicateLine => "duplicate a line",
            Mutation::SwapValues => "swap values",
            Mutation::InsertTokens => "insert tokens",
            Mutation::InvalidUtf8 => "invalid UTF-8",
            Mutation::LongLine => "long line",
            Mutation::Splice => "splice lines of another file",
        }
    }
}

/// The files cases start from: the shipped ones, the inventories with the
/// secrets added.
struct Corpus {
    inventories: Vec<(String, Vec<u8>)>,
    playbooks: Vec<(String, Vec<u8>)>,
    /// Relative to templates/.
    templates: Vec<(String, Vec<u8>)>,
}

impl Corpus {
    fn load(root: &Path) -> Self {
        let toml_files = |dir: &str| -> Vec<(String, Vec<u8>)> {
            let mut out: Vec<_> = fs::read_dir(root.join(dir))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .map(|p| {
                    let name = p.file_stem().unwrap().to_string_lossy().into_owned();
                    (name, fs::read(&p).unwrap())
                })
                .collect();
            out.sort();
            out
        };
        let inventories = toml_files("inventories")
            .into_iter()
            .map(|(name, bytes)| {
                let text = String::from_utf8(bytes).unwrap();
                assert!(
                    text.contains("\n[vars]\n"),
                    "inventories/{name}.toml has no [vars] for the secrets"
                );
                let text = text.replacen("\n[vars]\n", &format!("\n[vars]\n{SECRET_VARS}"), 1);
                (name, text.into_bytes())
            })
            .collect();
        let templates_dir = root.join("templates");
        let mut templates: Vec<_> = walk(&templates_dir)
            .into_iter()
            .map(|p| {
                let rel = p.strip_prefix(&templates_dir).unwrap();
                (rel.to_string_lossy().into_owned(), fs::read(&p).unwrap())
            })
            .collect();
        templates.sort();
        let corpus = Self {
            inventories,
            playbooks: toml_files("playbooks"),
            templates,
        };
        assert!(corpus.inventories.len() >= 3 && corpus.playbooks.len() >= 2);
        assert!(corpus.templates.iter().any(|(n, _)| n == "motd.j2"));
        assert!(corpus.templates.len() > 10, "the monitoring templates");
        corpus
    }

    fn all(&self) -> impl Iterator<Item = &[u8]> {
        self.inventories
            .iter()
            .chain(&self.playbooks)
            .chain(&self.templates)
            .map(|(_, b)| b.as_slice())
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

/// The lines of `bytes`, each with its newline.
fn lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .split_inclusive(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// Where `key = value` (TOML) or `key: value` (YAML) splits: the value's start.
fn value_start(line: &[u8]) -> Option<usize> {
    let trimmed = line.trim_ascii_start();
    if trimmed.starts_with(b"#") || trimmed.starts_with(b"[") {
        return None;
    }
    [&b" = "[..], b": "].iter().find_map(|sep| {
        line.windows(sep.len())
            .position(|w| w == *sep)
            .map(|i| i + sep.len())
    })
}

/// A line longer than 65535 columns, with something wrong at its end for
/// the error to point at.
fn long_line(rng: &mut fastrand::Rng) -> Vec<u8> {
    let n = rng.usize(65_536..=80_000);
    let filler = |c: char| c.to_string().repeat(n);
    let line = match rng.usize(..8) {
        0 => format!("long_key = \"{}\"", filler('a')),
        1 => format!("{} = 1", filler('k')),
        2 => format!("{}@", filler(' ')),
        3 => format!("x = {}", filler('[')),
        4 => format!("x = \"{}\" oops", filler('b')),
        5 => format!("{{{{ {} }}}}", filler('v')),
        6 => format!("{{{{ x{} + }}}}", filler(' ')),
        _ => format!("{}{{% endif %}}", filler('z')),
    };
    let mut bytes = line.into_bytes();
    bytes.push(b'\n');
    bytes
}

/// Applies one random mutation of `kind` to `bytes`; says what it did.
fn mutate(kind: Mutation, rng: &mut fastrand::Rng, bytes: &mut Vec<u8>, corpus: &Corpus) -> String {
    let len = bytes.len();
    match kind {
        Mutation::Truncate => {
            let at = rng.usize(..=len);
            bytes.truncate(at);
            format!("truncated at byte {at}")
        }
        Mutation::FlipBytes => {
            if len == 0 {
                return "flipped nothing (empty)".into();
            }
            let mut at = Vec::new();
            for _ in 0..rng.usize(1..=4) {
                let i = rng.usize(..len);
                if rng.bool() {
                    bytes[i] ^= 1 << rng.u8(..8);
                } else {
                    bytes[i] = rng.u8(..);
                }
                at.push(i);
            }
            format!("flipped bytes at {at:?}")
        }
        Mutation::DeleteLines => {
            let mut ls = lines(bytes);
            if ls.is_empty() {
                return "deleted nothing (empty)".into();
            }
            let start = rng.usize(..ls.len());
            let n = rng.usize(1..=3).min(ls.len() - start);
            ls.drain(start..start + n);
            *bytes = ls.concat();
            format!("deleted lines {}..={}", start + 1, start + n)
        }
        Mutation::DuplicateLine => {
            let mut ls = lines(bytes);
            if ls.is_empty() {
                return "duplicated nothing (empty)".into();
            }
            let from = rng.usize(..ls.len());
            let to = rng.usize(..=ls.len());
            let line = ls[from].clone();
            ls.insert(to, line);
            *bytes = ls.concat();
            format!("line {} copied before line {}", from + 1, to + 1)
        }
        Mutation::SwapValues => {
            let mut ls = lines(bytes);
            let with_values: Vec<usize> = (0..ls.len())
                .filter(|i| value_start(&ls[*i]).is_some())
                .collect();
            if with_values.len() < 2 {
                return "swapped nothing (fewer than two values)".into();
            }
            // Often one side is a secret's declaration: secrets end up where
            // other kinds of value are expected.
            let secret = with_values
                .iter()
                .copied()
                .filter(|i| ls[*i].windows(11).any(|w| w == b"secret = tr"))
                .collect::<Vec<_>>();
            let a = match rng.bool() {
                true if !secret.is_empty() => secret[rng.usize(..secret.len())],
                _ => with_values[rng.usize(..with_values.len())],
            };
            let b = loop {
                let b = with_values[rng.usize(..with_values.len())];
                if b != a {
                    break b;
                }
            };
            let (va, vb) = (value_start(&ls[a]).unwrap(), value_start(&ls[b]).unwrap());
            let tail = |l: &[u8], at: usize| -> Vec<u8> {
                let end = l.len() - usize::from(l.ends_with(b"\n"));
                l[at..end].to_vec()
            };
            let (ta, tb) = (tail(&ls[a], va), tail(&ls[b], vb));
            let rebuild = |l: &[u8], at: usize, value: &[u8]| -> Vec<u8> {
                let mut out = l[..at].to_vec();
                out.extend_from_slice(value);
                if l.ends_with(b"\n") {
                    out.push(b'\n');
                }
                out
            };
            ls[a] = rebuild(&ls[a], va, &tb);
            ls[b] = rebuild(&ls[b], vb, &ta);
            *bytes = ls.concat();
            format!("values of lines {} and {} swapped", a + 1, b + 1)
        }
        Mutation::InsertTokens => {
            let mut what = Vec::new();
            for _ in 0..rng.usize(1..=3) {
                let token = TOKENS[rng.usize(..TOKENS.len())];
                // At a line start or anywhere.
                let at = if rng.bool() {
                    let starts: Vec<usize> = std::iter::once(0)
                        .chain(
                            bytes
                                .iter()
                                .enumerate()
                                .filter(|(_, b)| **b == b'\n')
                                .map(|(i, _)| i + 1),
                        )
                        .collect();
                    starts[rng.usize(..starts.len())]
                } else {
                    rng.usize(..=bytes.len())
                };
                bytes.splice(at..at, token.bytes());
                what.push(format!("{token:?} at byte {at}"));
            }
            format!("inserted {}", what.join(", "))
        }
        Mutation::InvalidUtf8 => {
            let seq = INVALID_UTF8[rng.usize(..INVALID_UTF8.len())];
            let at = rng.usize(..=len);
            if rng.bool() && at < len {
                bytes.splice(at..at + 1, seq.iter().copied());
                format!("byte {at} replaced by {seq:02x?}")
            } else {
                bytes.splice(at..at, seq.iter().copied());
                format!("{seq:02x?} inserted at byte {at}")
            }
        }
        Mutation::LongLine => {
            let mut ls = lines(bytes);
            let at = rng.usize(..=ls.len());
            let line = long_line(rng);
            let what = format!(
                "a {}-byte line ending in {:?} inserted before line {}",
                line.len() - 1,
                String::from_utf8_lossy(&line[line.len().saturating_sub(12)..line.len() - 1]),
                at + 1
            );
            if at > 0 && !ls[at - 1].ends_with(b"\n") {
                ls[at - 1].push(b'\n');
            }
            ls.insert(at, line);
            *bytes = ls.concat();
            what
        }
        Mutation::Splice => {
            let sources: Vec<&[u8]> = corpus.all().collect();
            let other = lines(sources[rng.usize(..sources.len())]);
            if other.is_empty() {
                return "spliced nothing".into();
            }
            let start = rng.usize(..other.len());
            let n = rng.usize(1..=6).min(other.len() - start);
            let mut ls = lines(bytes);
            let at = rng.usize(..=ls.len());
            if at > 0 && !ls[at - 1].ends_with(b"\n") {
                ls[at - 1].push(b'\n');
            }
            ls.splice(at..at, other[start..start + n].iter().cloned());
            *bytes = ls.concat();
            format!("{n} lines of another file inserted before line {}", at + 1)
        }
    }
}

/// Which file a case mutates.
#[derive(Clone, Debug)]
enum Target {
    Inventory,
    Playbook,
    Template(String),
}

/// One input: the files it checks and what was done to them.
struct Case {
    number: usize,
    inventory: String,
    playbook: String,
    target: Target,
    mutations: Vec<(Mutation, String)>,
    /// The mutated file's content.
    bytes: Vec<u8>,
    /// How the binary shows its output, if it runs: plain, JSON, or with `-vv`.
    output: u8,
}

impl Case {
    fn new(number: usize, seed: u64, corpus: &Corpus) -> Self {
        let mut rng = fastrand::Rng::with_seed(
            seed ^ (number as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        );
        let inv = rng.usize(..corpus.inventories.len());
        let mut pb = rng.usize(..corpus.playbooks.len());
        let (target, original) = match rng.usize(..10) {
            0..4 => (Target::Inventory, &corpus.inventories[inv].1),
            4..7 => (Target::Playbook, &corpus.playbooks[pb].1),
            _ => {
                let (name, bytes) = &corpus.templates[rng.usize(..corpus.templates.len())];
                // The playbook that renders it: the site playbook's monitoring
                // role, or the example playbook's motd.
                let wanted = if name.starts_with("monitoring/") {
                    "site"
                } else {
                    "example"
                };
                if let Some(i) = corpus.playbooks.iter().position(|(n, _)| n == wanted) {
                    pb = i;
                }
                (Target::Template(name.clone()), bytes)
            }
        };
        let mut bytes = original.clone();
        let mut mutations = Vec::new();
        for _ in 0..rng.usize(1..=3) {
            let kind = MUTATIONS[rng.usize(..MUTATIONS.len())];
            let what = mutate(kind, &mut rng, &mut bytes, corpus);
            mutations.push((kind, what));
        }
        Self {
            number,
            output: rng.u8(..3),
            inventory: corpus.inventories[inv].0.clone(),
            playbook: corpus.playbooks[pb].0.clone(),
            target,
            mutations,
            bytes,
        }
    }

    fn what(&self) -> String {
        let target = match &self.target {
            Target::Inventory => format!("inventories/{}.toml", self.inventory),
            Target::Playbook => format!("playbooks/{}.toml", self.playbook),
            Target::Template(t) => format!("templates/{t}"),
        };
        let done: Vec<&str> = self.mutations.iter().map(|(_, w)| w.as_str()).collect();
        format!(
            "case {} ({} with {}): {target}: {}",
            self.number,
            self.inventory,
            self.playbook,
            done.join("; ")
        )
    }

    /// Whether the input still declares the inline secret as it was written.
    fn inline_declared(&self) -> bool {
        !matches!(self.target, Target::Inventory)
            || self
                .bytes
                .split(|b| *b == b'\n')
                .any(|l| l == INLINE_DECLARATION.as_bytes())
    }

    /// The secrets `text` shows that it must not.
    fn leaks(&self, text: &str) -> Vec<&'static str> {
        SECRETS
            .iter()
            .filter(|(name, value)| {
                text.contains(value) && (*name != "inline" || self.inline_declared())
            })
            .map(|(name, _)| *name)
            .collect()
    }
}

/// A project directory of one worker thread, laid out like the repository:
/// inventories/, playbooks/, templates/; the checked inputs are
/// inventories/fuzz.toml and playbooks/fuzz.toml.
struct Workspace {
    dir: PathBuf,
    home: PathBuf,
}

impl Workspace {
    fn new(dir: PathBuf, home: &Path, corpus: &Corpus) -> Self {
        let _ = fs::remove_dir_all(&dir);
        for (name, bytes) in &corpus.inventories {
            write(&dir.join(format!("inventories/{name}.toml")), bytes);
        }
        write(
            &dir.join("inventories/fuzz_secret.txt"),
            format!("{}\n", SECRETS[1].1).as_bytes(),
        );
        for (name, bytes) in &corpus.playbooks {
            write(&dir.join(format!("playbooks/{name}.toml")), bytes);
        }
        for (name, bytes) in &corpus.templates {
            write(&dir.join("templates").join(name), bytes);
        }
        Self {
            dir,
            home: home.to_path_buf(),
        }
    }

    /// Lays out `case`'s input; returns what puts the workspace back.
    fn lay_out(&self, case: &Case, corpus: &Corpus) -> Option<(PathBuf, Vec<u8>)> {
        let find = |files: &[(String, Vec<u8>)], name: &str| -> Vec<u8> {
            files.iter().find(|(n, _)| n == name).unwrap().1.clone()
        };
        let (inv, pb, restore) = match &case.target {
            Target::Inventory => (
                case.bytes.clone(),
                find(&corpus.playbooks, &case.playbook),
                None,
            ),
            Target::Playbook => (
                find(&corpus.inventories, &case.inventory),
                case.bytes.clone(),
                None,
            ),
            Target::Template(name) => {
                let path = self.dir.join("templates").join(name);
                write(&path, &case.bytes);
                (
                    find(&corpus.inventories, &case.inventory),
                    find(&corpus.playbooks, &case.playbook),
                    Some((path, find(&corpus.templates, name))),
                )
            }
        };
        write(&self.dir.join("inventories/fuzz.toml"), &inv);
        write(&self.dir.join("playbooks/fuzz.toml"), &pb);
        // Left behind (in target/tmp/fuzz_check/run-*/) if a case takes the
        // whole process down.
        write(&self.dir.join("case.txt"), case.what().as_bytes());
        restore
    }

    /// Copies the case's input where a person can run it again.
    fn keep(&self, case: &Case, out: &Path, note: &str) {
        let _ = fs::remove_dir_all(out);
        for p in walk(&self.dir) {
            let rel = p.strip_prefix(&self.dir).unwrap();
            write(&out.join(rel), &fs::read(&p).unwrap());
        }
        write(
            &out.join(GRAFANA_FILE),
            &fs::read(self.home.join(GRAFANA_FILE)).unwrap(),
        );
        let how = format!(
            "{}\n\n{note}\n\nRun it again:\n  cd {} && HOME=$PWD NO_COLOR=1 {ENV_SECRET_VAR}={} {DB_SECRET_VAR}={} \\\n    {} check -i inventories/fuzz.toml playbooks/fuzz.toml\n",
            case.what(),
            out.display(),
            SECRETS[0].1,
            SECRETS[4].1,
            env!("CARGO_BIN_EXE_slipway"),
        );
        write(&out.join("README.txt"), how.as_bytes());
    }

    /// `slipway check` through the real binary, with one of a few output settings.
    fn binary(&self, flags: &[&str]) -> BinaryRun {
        let out_path = self.dir.join(".stdout");
        let err_path = self.dir.join(".stderr");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_slipway"));
        cmd.current_dir(&self.dir)
            .env("HOME", &self.home)
            .env("NO_COLOR", "1")
            .env(ENV_SECRET_VAR, SECRETS[0].1)
            .env(DB_SECRET_VAR, SECRETS[4].1)
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("RUST_LOG")
            .args([
                "check",
                "-i",
                "inventories/fuzz.toml",
                "playbooks/fuzz.toml",
            ])
            .args(flags)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out_path).unwrap())
            .stderr(fs::File::create(&err_path).unwrap());
        // A build that relinks the binary meanwhile leaves it missing for a moment.
        let mut tries = 0;
        let mut child = loop {
            match cmd.spawn() {
                Ok(child) => break child,
                Err(e) if tries < 50 => {
                    tries += 1;
                    eprintln!("fuzz_check: cannot run slipway yet ({e}); retrying");
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("cannot run {}: {e}", env!("CARGO_BIN_EXE_slipway")),
            }
        };
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if started.elapsed() > BINARY_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let read = |p: &Path| String::from_utf8_lossy(&fs::read(p).unwrap()).into_owned();
        BinaryRun {
            status,
            stdout: read(&out_path),
            stderr: read(&err_path),
        }
    }
}

struct BinaryRun {
    /// None: killed after BINARY_TIMEOUT.
    status: Option<std::process::ExitStatus>,
    stdout: String,
    stderr: String,
}

thread_local! {
    /// Log lines the library wrote on this thread during the current case.
    static LOG: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// The last panic on this thread: location and message.
    static PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
    /// Whether this thread runs the library under `catch_unwind`: its panics
    /// are recorded, not printed.
    static CATCHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.with(|l| l.borrow_mut().extend_from_slice(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What `slipway check` would print, computed in this process: `shown` as
/// the binary shows it; `unredacted` before the binary's last step, its
/// redaction with every secret the run met.
struct InProcess {
    shown: String,
    unredacted: String,
}

/// `slipway check` in this process, as src/cli/offline.rs and src/cli/mod.rs
/// run it. Err: the panic's location and message.
fn check_in_process(dir: &Path) -> Result<InProcess, String> {
    LOG.with(|l| l.borrow_mut().clear());
    PANIC.with(|p| p.borrow_mut().take());
    let opts = LoadOptions {
        inventory: dir.join("inventories/fuzz.toml"),
        playbook: dir.join("playbooks/fuzz.toml"),
        offline: true,
        ..LoadOptions::default()
    };
    CATCHING.with(|c| c.set(true));
    let result = catch_unwind(AssertUnwindSafe(|| {
        let run = || -> Result<String, InputError> {
            let project = Project::load(&opts)?;
            let states = slipway::desired::build(&project)?;
            let files = slipway::offline::files(&states, &project.redactor).len();
            let resources: usize = states.iter().map(|s| s.resources().count()).sum();
            Ok(format!(
                "ok: {} hosts, {resources} resources, {files} files rendered; no host was contacted\n",
                states.len()
            ))
        };
        match run() {
            Ok(out) => InProcess {
                shown: out.clone(),
                unredacted: out,
            },
            Err(e) => {
                let global = slipway::redact::global();
                let shown =
                    global.redact(&format!("{:?}", miette::Report::new(e.for_display(global))));
                // Only what the error itself masks (inline values in quoted
                // TOML), not the secrets the run met.
                let unredacted = format!(
                    "{:?}",
                    miette::Report::new(e.for_display(&Redactor::default()))
                );
                InProcess { shown, unredacted }
            }
        }
    }));
    CATCHING.with(|c| c.set(false));
    let log = LOG.with(|l| String::from_utf8_lossy(&l.borrow()).into_owned());
    match result {
        Ok(mut out) => {
            out.shown.push_str(&slipway::redact::global().redact(&log));
            out.unredacted.push_str(&log);
            Ok(out)
        }
        Err(payload) => Err(PANIC.with(|p| p.borrow_mut().take()).unwrap_or_else(|| {
            payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic without a message".into())
        })),
    }
}

/// A defect one case found.
struct Failure {
    case: usize,
    what: String,
    mutations: BTreeSet<Mutation>,
    /// Groups failures with one cause.
    signature: String,
    /// For a secret shown: the line that shows it, the secret taken out.
    shows: Option<String>,
    detail: String,
}

/// Digits out, so that one defect at different offsets is one signature.
fn normalise(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect();
    s.chars().take(160).collect()
}

/// A panic's location and first message line, from a hook message or a
/// binary's stderr.
fn panic_signature(text: &str) -> String {
    let mut ls = text.lines().skip_while(|l| !l.contains("panicked at"));
    let at = ls.next().unwrap_or(text.lines().next().unwrap_or_default());
    let at = at.split("panicked at").nth(1).unwrap_or(at).trim();
    let message = ls.next().unwrap_or_default();
    // Line numbers of the panic's location stay; those of the input do not.
    format!("panicked at {at} {}", normalise(message))
}

/// The line of `text` that shows `secret`, the secret itself and the
/// snippet's gutter taken out.
fn leak_line(text: &str, secret: &str) -> String {
    let line = text
        .lines()
        .find(|l| l.contains(secret))
        .unwrap_or_default();
    let line = normalise(&line.replace(secret, "<SECRET>"));
    let line = line.trim_start_matches(|c: char| " #|:,`-".contains(c));
    line.strip_prefix("x ").unwrap_or(line).to_string()
}

fn excerpt(text: &str) -> String {
    const MAX: usize = 3000;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &text[..end], text.len())
}

/// Counts of one worker's run.
#[derive(Default)]
struct Stats {
    in_process: usize,
    ok: usize,
    binary: usize,
    confirmations: usize,
    slowest: (Duration, usize),
}

fn run_case(
    case: &Case,
    ws: &Workspace,
    corpus: &Corpus,
    stats: &mut Stats,
    failures: &mut Vec<Failure>,
) {
    let restore = ws.lay_out(case, corpus);
    let failure = |signature: String, shows: Option<String>, detail: String| Failure {
        case: case.number,
        what: case.what(),
        mutations: case.mutations.iter().map(|(m, _)| *m).collect(),
        signature,
        shows,
        detail,
    };
    let fail = |signature: String, detail: String| failure(signature, None, detail);
    let started = Instant::now();
    let inside = check_in_process(&ws.dir);
    let took = started.elapsed();
    stats.in_process += 1;
    if took > stats.slowest.0 {
        stats.slowest = (took, case.number);
    }
    if took > SLOW_CASE {
        failures.push(fail(
            "slow: check took longer than 5 s".into(),
            format!("{took:?}"),
        ));
    }
    let mut through_binary = case.number.is_multiple_of(BINARY_EVERY);
    match &inside {
        Err(panic) => failures.push(fail(
            format!("panic in process: {}", panic_signature(panic)),
            panic.clone(),
        )),
        Ok(out) => {
            if out.shown.starts_with("ok:") {
                stats.ok += 1;
            }
            for secret in case.leaks(&out.shown) {
                let value = SECRETS.iter().find(|(n, _)| *n == secret).unwrap().1;
                failures.push(failure(
                    format!("secret `{secret}` shown (in process)"),
                    Some(leak_line(&out.shown, value)),
                    out.shown.clone(),
                ));
            }
            if !case.leaks(&out.unredacted).is_empty() && !through_binary {
                // The binary redacts what the run met: it decides.
                stats.confirmations += 1;
                through_binary = true;
            }
        }
    }
    if through_binary {
        stats.binary += 1;
        let flags: &[&str] = match case.output {
            0 => &[],
            1 => &["--format", "json"],
            _ => &["-vv"],
        };
        let run = ws.binary(flags);
        let both = format!("{}\n{}", run.stdout, run.stderr);
        let command = [&["check"][..], flags].concat().join(" ");
        match run.status.map(|s| (s.code(), s)) {
            None => failures.push(fail(
                format!("binary hung (killed after {BINARY_TIMEOUT:?})"),
                both.clone(),
            )),
            Some((Some(0 | 1), _)) => {}
            Some((Some(101), _)) => failures.push(fail(
                format!("binary exit 101: {}", panic_signature(&run.stderr)),
                both.clone(),
            )),
            Some((code, status)) => failures.push(fail(
                format!("binary ended by {status} (code {code:?})"),
                both.clone(),
            )),
        }
        for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
            for secret in case.leaks(text) {
                let value = SECRETS.iter().find(|(n, _)| *n == secret).unwrap().1;
                failures.push(failure(
                    format!("secret `{secret}` on the binary's {stream}"),
                    Some(format!("({command}) {}", leak_line(text, value))),
                    both.clone(),
                ));
            }
        }
    }
    if let Some((path, original)) = restore {
        write(&path, &original);
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => {
            let v = v.trim();
            let parsed = match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => v.parse(),
            };
            parsed.unwrap_or_else(|e| panic!("{name}={v}: {e}"))
        }
        Err(_) => default,
    }
}

#[test]
fn check_never_panics_nor_shows_a_secret_on_mutated_inputs() {
    let seed = env_number("SLIPWAY_FUZZ_SEED", DEFAULT_SEED);
    let cases = env_number("SLIPWAY_FUZZ_CASES", DEFAULT_CASES as u64) as usize;
    println!("fuzz_check: seed {seed:#x}, {cases} cases (SLIPWAY_FUZZ_SEED, SLIPWAY_FUZZ_CASES)");
    eprintln!("fuzz_check: seed {seed:#x}, {cases} cases");

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = Corpus::load(root);
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz_check");
    fs::create_dir_all(&base).unwrap();
    // This run's own: other runs of the test suite may share the target directory.
    let run = tempfile::Builder::new()
        .prefix("run-")
        .tempdir_in(&base)
        .unwrap();
    let home = run.path().join("home");
    let kept = base.join(format!("seed-{seed:#x}"));
    write(
        &home.join(GRAFANA_FILE),
        format!("{}\n", SECRETS[3].1).as_bytes(),
    );
    // SAFETY: the only test of this binary, before any thread of its own;
    // the in-process runs read HOME and the secrets' variables.
    unsafe {
        std::env::set_var("HOME", &home);
        std::env::set_var(ENV_SECRET_VAR, SECRETS[0].1);
        std::env::set_var(DB_SECRET_VAR, SECRETS[4].1);
        std::env::remove_var("RUST_LOG");
    }
    // As the binary shows errors and log lines: no colour, ASCII art.
    miette::set_hook(Box::new(|_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .color(false)
                .unicode(false)
                .build(),
        )
    }))
    .ok();
    tracing_subscriber::fmt()
        .with_writer(|| LogWriter)
        .with_ansi(false)
        .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
        .try_init()
        .ok();

    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 2);
    let spaces: Vec<Workspace> = (0..workers)
        .map(|w| Workspace::new(run.path().join(format!("w{w}")), &home, &corpus))
        .collect();

    // The unmutated inputs check, and every secret is one the run knows, so
    // the test below would see a leak.
    for (inv, _) in &corpus.inventories {
        for (pb, _) in &corpus.playbooks {
            let ws = &spaces[0];
            let case = Case {
                number: usize::MAX,
                inventory: inv.clone(),
                playbook: pb.clone(),
                target: Target::Inventory,
                mutations: Vec::new(),
                output: 0,
                bytes: corpus
                    .inventories
                    .iter()
                    .find(|(n, _)| n == inv)
                    .unwrap()
                    .1
                    .clone(),
            };
            ws.lay_out(&case, &corpus);
            let project = Project::load(&LoadOptions {
                inventory: ws.dir.join("inventories/fuzz.toml"),
                playbook: ws.dir.join("playbooks/fuzz.toml"),
                offline: true,
                ..LoadOptions::default()
            })
            .unwrap_or_else(|e| panic!("{inv} with {pb}: {e:?}"));
            // Play variables are read as hosts are expanded.
            slipway::desired::build(&project).unwrap_or_else(|e| panic!("{inv} with {pb}: {e:?}"));
            let mut known = vec![SECRETS[0].1, SECRETS[1].1, SECRETS[2].1];
            if inv == "lab" {
                known.push(SECRETS[3].1);
            }
            if pb == "example" {
                known.push(SECRETS[4].1);
            }
            for s in known {
                assert_eq!(
                    project.redactor.redact(s),
                    "(sensitive)",
                    "{inv} with {pb}: the run does not know {s} as a secret"
                );
            }
            let out = check_in_process(&ws.dir).unwrap();
            assert!(
                out.shown.starts_with("ok:"),
                "{inv} with {pb}: {}",
                out.shown
            );
            let run = ws.binary(&[]);
            assert_eq!(
                run.status.and_then(|s| s.code()),
                Some(0),
                "{inv} with {pb}: {}{}",
                run.stdout,
                run.stderr
            );
        }
    }

    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if CATCHING.with(|c| c.get()) {
            let message = info.to_string();
            PANIC.with(|p| *p.borrow_mut() = Some(message));
        } else {
            default_hook(info);
        }
    }));
    let started = Instant::now();
    let results: Vec<(Stats, Vec<Failure>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = spaces
            .iter()
            .enumerate()
            .map(|(w, ws)| {
                let corpus = &corpus;
                std::thread::Builder::new()
                    .name(format!("fuzz-{w}"))
                    // As much stack as the binary's main thread.
                    .stack_size(8 << 20)
                    .spawn_scoped(scope, move || {
                        let mut stats = Stats::default();
                        let mut failures = Vec::new();
                        for number in (w..cases).step_by(workers) {
                            let case = Case::new(number, seed, corpus);
                            run_case(&case, ws, corpus, &mut stats, &mut failures);
                        }
                        (stats, failures)
                    })
                    .unwrap()
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a fuzz worker died (its panic is above)"))
            .collect()
    });
    drop(std::panic::take_hook());
    let took = started.elapsed();

    let mut stats = Stats::default();
    let mut failures = Vec::new();
    for (s, f) in results {
        stats.in_process += s.in_process;
        stats.ok += s.ok;
        stats.binary += s.binary;
        stats.confirmations += s.confirmations;
        stats.slowest = stats.slowest.max(s.slowest);
        failures.extend(f);
    }
    failures.sort_by_key(|f| f.case);
    let summary = format!(
        "fuzz_check: seed {seed:#x}: {} inputs in {took:.1?} with {workers} threads; {} passed check, the rest were refused; {} also through the binary ({} to confirm an in-process secret); slowest case {} ({:?})",
        stats.in_process,
        stats.ok,
        stats.binary,
        stats.confirmations,
        stats.slowest.1,
        stats.slowest.0,
    );
    println!("{summary}");
    eprintln!("{summary}");
    assert_eq!(stats.in_process, cases);

    let mut groups: BTreeMap<&str, Vec<&Failure>> = BTreeMap::new();
    for f in &failures {
        groups.entry(&f.signature).or_default().push(f);
    }
    let mut report = String::new();
    for (signature, fs) in &groups {
        let kinds: BTreeSet<Mutation> = fs.iter().flat_map(|f| f.mutations.clone()).collect();
        let kinds: Vec<&str> = kinds.iter().map(|m| m.name()).collect();
        report.push_str(&format!(
            "\n=== {signature}\n{} cases; mutations among them: {}\n",
            fs.len(),
            kinds.join(", ")
        ));
        let mut shows: BTreeMap<&str, usize> = BTreeMap::new();
        for f in fs {
            if let Some(line) = &f.shows {
                *shows.entry(line).or_default() += 1;
            }
        }
        for (line, n) in shows {
            report.push_str(&format!("  {n:>4} x {line}\n"));
        }
        for f in fs.iter().take(3) {
            let dir = kept.join(format!("case-{}", f.case));
            let ws = &spaces[f.case % workers];
            let case = Case::new(f.case, seed, &corpus);
            let restore = ws.lay_out(&case, &corpus);
            ws.keep(&case, &dir, &f.signature);
            if let Some((path, original)) = restore {
                write(&path, &original);
            }
            report.push_str(&format!(
                "- {}\n  kept in {}\n  {}\n",
                f.what,
                dir.display(),
                excerpt(&f.detail).replace('\n', "\n  ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cases} inputs found {} defects (seed {seed:#x}):\n{report}",
        failures.len(),
        groups.len()
    );
}

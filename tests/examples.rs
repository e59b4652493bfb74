//! The CI examples under examples/github-actions stay runnable: each is a
//! GitHub Actions workflow in shape, and every `slipway` command in their
//! scripts uses a subcommand and flags the real binary has. The reference
//! api stack (examples/api-stack) renders and passes docker-compose.

#[path = "examples/api_stack.rs"]
mod api_stack;
mod common;
#[path = "examples/rendered.rs"]
mod rendered;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml_ng::{Mapping, Value};

fn workflows() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/github-actions");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no workflows in {}", dir.display());
    files
}

fn get<'a>(map: &'a Mapping, key: &str) -> Option<&'a Value> {
    map.get(Value::String(key.into()))
}

/// Checks the workflow's shape; returns its steps' `run:` scripts.
fn check_structure(name: &str, doc: &Value) -> Vec<String> {
    let top = doc
        .as_mapping()
        .unwrap_or_else(|| panic!("{name}: not a mapping"));
    assert!(get(top, "on").is_some(), "{name}: no `on:`");
    let jobs = get(top, "jobs")
        .and_then(Value::as_mapping)
        .filter(|j| !j.is_empty())
        .unwrap_or_else(|| panic!("{name}: no `jobs:`"));
    let mut scripts = Vec::new();
    for (job, spec) in jobs {
        let job = format!("{name}: job {}", job.as_str().unwrap_or("?"));
        let spec = spec
            .as_mapping()
            .unwrap_or_else(|| panic!("{job}: not a mapping"));
        assert!(get(spec, "runs-on").is_some(), "{job}: no `runs-on:`");
        let steps = get(spec, "steps")
            .and_then(Value::as_sequence)
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| panic!("{job}: no `steps:`"));
        for (i, step) in steps.iter().enumerate() {
            let step = step
                .as_mapping()
                .unwrap_or_else(|| panic!("{job}: step {i} is not a mapping"));
            match (get(step, "uses"), get(step, "run")) {
                (Some(uses), None) => {
                    let uses = uses.as_str().unwrap_or_default();
                    // owner/name@vN: a pinned major version.
                    let pinned = uses.split_once('@').is_some_and(|(action, v)| {
                        action.contains('/')
                            && v.strip_prefix('v').is_some_and(|n| {
                                !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
                            })
                    });
                    assert!(pinned, "{job}: step {i} uses `{uses}`, not owner/name@vN");
                }
                (None, Some(run)) => {
                    let run = run
                        .as_str()
                        .unwrap_or_else(|| panic!("{job}: step {i}: `run:` is not a string"));
                    // An expression is pasted into the script before the shell
                    // reads it: a secret would be part of the command, and any
                    // other value could inject commands. Values come through env.
                    assert!(
                        !run.contains("${{"),
                        "{job}: step {i} has an expression in its script; pass it through `env:`"
                    );
                    scripts.push(run.to_string());
                }
                _ => panic!("{job}: step {i} needs exactly one of `uses:` and `run:`"),
            }
        }
    }
    scripts
}

/// One `slipway SUBCOMMAND ...` found in a script, with the flags it passes.
#[derive(Debug)]
struct Invocation {
    subcommand: String,
    flags: Vec<String>,
    /// Every word after the subcommand, flags and their values included.
    words: Vec<String>,
}

impl Invocation {
    /// The word after `flag` (`--out plan.json`).
    fn value_of(&self, flag: &str) -> Option<&str> {
        let at = self.words.iter().position(|w| w == flag)?;
        self.words.get(at + 1).map(String::as_str)
    }
}

/// Shell words that end a command: pipes, lists, redirections.
fn ends_command(word: &str) -> bool {
    word.starts_with(['|', '&', ';', '<', '>', ')'])
        || word
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .starts_with('>')
}

/// Every `slipway` command in `script`. Lines ending in `\` are joined first;
/// the subcommand must come right after `slipway`. Mentions inside quotes
/// (messages) are one shell word, so they are not taken for commands.
fn invocations(script: &str) -> Vec<Invocation> {
    let joined = script.replace("\\\n", " ");
    let mut found = Vec::new();
    for line in joined.lines() {
        let Some(words) = shlex::split(line) else {
            assert!(
                !line.split_whitespace().any(|w| w == "slipway"),
                "cannot split this line into shell words: {line}"
            );
            continue;
        };
        let mut rest = words.iter();
        while let Some(word) = rest.next() {
            if word != "slipway" {
                continue;
            }
            let subcommand = rest.next().cloned().unwrap_or_default();
            let mut flags = Vec::new();
            let mut words = Vec::new();
            for w in rest.by_ref().take_while(|w| !ends_command(w)) {
                words.push(w.clone());
                if w == "--" {
                    break; // the rest are arguments
                }
                if let Some(long) = w.strip_prefix("--") {
                    flags.push(format!("--{}", long.split('=').next().unwrap_or_default()));
                } else if let Some(c) = w.strip_prefix('-').and_then(|s| s.chars().next()) {
                    // -vv and -ekey=value: the first letter is the flag.
                    flags.push(format!("-{c}"));
                }
            }
            found.push(Invocation {
                subcommand,
                flags,
                words,
            });
        }
    }
    found
}

/// The flags `slipway SUBCOMMAND --help` lists, or None when there is no
/// such subcommand.
fn help_flags(subcommand: &str) -> Option<BTreeSet<String>> {
    if subcommand.is_empty() || subcommand.starts_with('-') {
        return None;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args([subcommand, "--help"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    if !out.status.success() {
        return None;
    }
    let help = String::from_utf8(out.stdout).unwrap();
    // Option lines read "  -i, --inventory <INVENTORY>  text" or "      --out <FILE>  text".
    Some(
        help.lines()
            .map(str::trim_start)
            .filter(|l| l.starts_with('-'))
            .flat_map(|l| {
                l.split_whitespace()
                    .map(|w| w.trim_end_matches(',').trim_end_matches("..."))
                    .take_while(|w| w.starts_with('-'))
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .collect(),
    )
}

/// What is wrong with `calls`: unknown subcommands and flags, one per line.
fn problems(calls: &[(String, Invocation)]) -> Vec<String> {
    let mut helps = BTreeMap::new();
    let mut bad = Vec::new();
    for (place, call) in calls {
        let known = helps
            .entry(call.subcommand.clone())
            .or_insert_with(|| help_flags(&call.subcommand));
        let Some(known) = known else {
            bad.push(format!(
                "{place}: no subcommand `slipway {}`",
                call.subcommand
            ));
            continue;
        };
        for flag in call.flags.iter().filter(|f| !known.contains(*f)) {
            bad.push(format!(
                "{place}: `slipway {} --help` has no {flag}",
                call.subcommand
            ));
        }
    }
    bad
}

#[test]
fn every_workflow_is_well_formed_and_its_slipway_commands_exist() {
    let mut calls = Vec::new();
    for path in workflows() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: Value =
            serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{name}: not YAML: {e}"));
        let found: Vec<Invocation> = check_structure(&name, &doc)
            .iter()
            .flat_map(|s| invocations(s))
            .collect();
        assert!(!found.is_empty(), "{name}: runs no slipway command");
        calls.extend(found.into_iter().map(|c| (name.clone(), c)));
    }
    let bad = problems(&calls);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// Workflow `name`: its document, its steps' scripts and their slipway commands.
fn workflow(name: &str) -> (Value, Vec<String>, Vec<Invocation>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/github-actions")
        .join(name);
    let doc: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let scripts = check_structure(name, &doc);
    let calls = scripts.iter().flat_map(|s| invocations(s)).collect();
    (doc, scripts, calls)
}

/// The script that runs `slipway SUBCOMMAND`, and that command.
fn step_of<'a>(
    scripts: &'a [String],
    calls: &'a [Invocation],
    subcommand: &str,
) -> (&'a str, &'a Invocation) {
    let call = calls
        .iter()
        .find(|c| c.subcommand == subcommand)
        .unwrap_or_else(|| panic!("no `slipway {subcommand}`"));
    let script = scripts
        .iter()
        .find(|s| invocations(s).iter().any(|c| c.subcommand == subcommand))
        .unwrap();
    (script, call)
}

#[test]
fn deploy_rolls_out_the_commit_image_by_its_saved_plan_one_run_at_a_time() {
    let (doc, scripts, calls) = workflow("deploy.yml");
    assert_eq!(
        doc["on"]["push"]["branches"],
        serde_yaml_ng::from_str::<Value>("[main]").unwrap()
    );
    assert_eq!(
        doc["concurrency"]["cancel-in-progress"].as_bool(),
        Some(false)
    );
    assert!(doc["concurrency"]["group"].is_string());
    assert_eq!(
        doc["env"]["PLAYBOOK"].as_str(),
        Some("examples/api-stack/playbook.toml")
    );
    // The image is tagged with the commit, and that tag is what plan deploys.
    let build = serde_yaml_ng::to_string(&doc["jobs"]["build"]).unwrap();
    assert!(
        build.contains("docker/build-push-action@") && build.contains(":$GITHUB_SHA"),
        "{build}"
    );
    let (plan_script, plan) = step_of(&scripts, &calls, "plan");
    assert_eq!(plan.value_of("-e"), Some("api_image=$IMAGE"));
    let (apply_script, apply) = step_of(&scripts, &calls, "apply");
    // Exactly the plan shown in the summary is applied.
    assert_eq!(
        apply.words.first().map(String::as_str),
        plan.value_of("--out")
    );
    assert!(apply.flags.iter().any(|f| f == "--yes"));
    for script in [plan_script, apply_script] {
        assert!(script.contains(">> \"$GITHUB_STEP_SUMMARY\""), "{script}");
    }
    // apply's exit code fails the job, and a rollback is named as such, in
    // the words the stack's follower reports it with.
    assert!(apply_script.contains("code=${PIPESTATUS[0]}") && apply_script.contains("exit 1"));
    let follower = include_str!("../src/resource/stack/follow.rs");
    assert!(follower.contains("\"rolled back\""));
    assert!(apply_script.contains("grep -q 'rolled back' apply.log"));
}

#[test]
fn drift_plans_the_site_nightly_and_on_demand_and_reports_changes() {
    let (doc, scripts, calls) = workflow("drift.yml");
    let on = doc["on"].as_mapping().unwrap();
    assert!(doc["on"]["schedule"][0]["cron"].is_string());
    assert!(get(on, "workflow_dispatch").is_some());
    assert_eq!(doc["env"]["PLAYBOOK"].as_str(), Some("playbooks/site.toml"));
    let (script, plan) = step_of(&scripts, &calls, "plan");
    for flag in ["--detailed-exitcode", "--notify-drift"] {
        assert!(plan.flags.iter().any(|f| f == flag), "plan without {flag}");
    }
    assert!(script.contains(">> \"$GITHUB_STEP_SUMMARY\""));
    // Exit 2 (drift) fails the run, visibly.
    let lines: Vec<&str> = script.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim_start().starts_with("2)"))
        .expect("a case for exit 2");
    let end = at + lines[at..].iter().position(|l| l.contains(";;")).unwrap();
    let drift = lines[at..=end].join("\n");
    assert!(
        drift.contains("::error") && drift.contains("exit 1"),
        "{drift}"
    );
}

#[test]
fn continuations_pipes_and_quoted_mentions_are_read_as_the_shell_would() {
    let script = r#"
set +e
slipway plan -i "$INVENTORY" "$PLAYBOOK" --out plan.json \
  --detailed-exitcode --color=never | tee plan.txt  # a comment --not-a-flag
echo "::error::re-run the 'slipway plan --nope' workflow"
slipway apply plan.json -vv --yes 2>&1 >apply.log --after-redirect
"#;
    let found = invocations(script);
    let flags: Vec<Vec<&str>> = found
        .iter()
        .map(|c| c.flags.iter().map(String::as_str).collect())
        .collect();
    assert_eq!(
        found
            .iter()
            .map(|c| c.subcommand.as_str())
            .collect::<Vec<_>>(),
        ["plan", "apply"]
    );
    assert_eq!(
        flags,
        [
            vec!["-i", "--out", "--detailed-exitcode", "--color"],
            vec!["-v", "--yes"]
        ]
    );
}

#[test]
fn a_flag_or_subcommand_the_binary_lacks_is_reported() {
    let calls: Vec<(String, Invocation)> =
        invocations("slipway plan --out p.json --bogus -Z x.toml\nslipway deploy --yes")
            .into_iter()
            .map(|c| ("test".to_string(), c))
            .collect();
    assert_eq!(
        problems(&calls),
        [
            "test: `slipway plan --help` has no --bogus",
            "test: `slipway plan --help` has no -Z",
            "test: no subcommand `slipway deploy`",
        ]
    );
}

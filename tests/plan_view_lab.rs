//! How a plan shows files, against a real host: a long created file as a
//! summary and its first lines unless `--full-diff`, a short one whole, a
//! changed file as its diff with context, a file with a secret never, and
//! JSON with every line.

mod common;

use common::lab::Lab;
use common::run::{Project, Run, on, run, slipway};
use slipway::render::diff::{CREATED_LINES_MAX, HEAD_LINES};

const SECRET: &str = "plan-view-Secret-7Hq2";
const LONG: usize = 60;

fn numbered(word: &str, n: usize) -> String {
    (1..=n).map(|i| format!("{word} {i}\n")).collect()
}

/// The changed file: what the host has, and what the playbook asks for.
fn changed() -> (String, String) {
    let old = numbered("changed", LONG);
    let new = old.replace("changed 30\n", "changed thirty\n");
    (old, new)
}

fn project() -> Project {
    let p = Project::new();
    p.write("templates/long.j2", &numbered("long", LONG));
    p.write("templates/short.j2", &numbered("short", 5));
    p.write("templates/changed.j2", &changed().1);
    // Long, but it holds a secret: nothing of it may show, summary included.
    p.write(
        "templates/token.j2",
        &format!("{}TOKEN={{{{ token }}}}\n", numbered("token", LONG)),
    );
    let file = |path: &str, template: &str| {
        format!(
            "\n[[play.resources]]\ntype = \"file\"\npath = \"{path}\"\ntemplate = \"{template}\"\nmode = \"0644\"\n"
        )
    };
    p.write(
        "playbook.toml",
        &format!(
            "[[play]]\nhosts = \"all\"\n\n[play.vars]\ntoken = {{ secret = true, value = \"{SECRET}\" }}\n{}{}{}{}",
            file("/etc/slipway-long.conf", "long.j2"),
            file("/etc/slipway-short.conf", "short.j2"),
            file("/etc/slipway-changed.conf", "changed.j2"),
            file("/etc/slipway-token.conf", "token.j2"),
        ),
    );
    p
}

fn go(lab: &Lab, p: &Project, command: &str, extra: &[&str]) -> Run {
    let args: Vec<&str> = std::iter::once(command)
        .chain(extra.iter().copied())
        .collect();
    let r = on(p, &lab.inventory, &p.path("playbook.toml"), &args);
    assert!(!r.all().contains(SECRET), "the secret leaked:\n{}", r.all());
    r
}

/// The lines a plan shows for one resource: its title and what is indented under it.
fn step<'a>(out: &'a str, resource: &str) -> Vec<&'a str> {
    let mut lines = out.lines().skip_while(|l| !l.contains(resource));
    let title = lines
        .next()
        .unwrap_or_else(|| panic!("no {resource}:\n{out}"));
    std::iter::once(title)
        .chain(lines.take_while(|l| l.starts_with("      ")))
        .collect()
}

fn indented(lines: &[String]) -> Vec<String> {
    lines.iter().map(|l| format!("      {l}")).collect()
}

#[test]
fn long_created_files_are_summarised_unless_full_diff_and_json_keeps_every_line() {
    const { assert!(LONG > CREATED_LINES_MAX) };
    let lab = Lab::start("plan-view", 1);
    let p = project();
    lab.exec_ok(
        0,
        &format!("printf '%s' '{}' > /etc/slipway-changed.conf", changed().0),
    );
    let long = numbered("long", LONG);
    let sha = slipway::digest::sha256_hex(long.as_bytes());
    let title = [
        "  + file:/etc/slipway-long.conf  create /etc/slipway-long.conf".to_string(),
        "      mode: 0644".into(),
    ];

    // The default: the summary, the first lines, and how to see the rest.
    let plan = go(&lab, &p, "plan", &["--detailed-exitcode"]).expect(2);
    let out = &plan.stdout;
    let mut want = title.to_vec();
    want.extend(indented(&[format!(
        "/etc/slipway-long.conf (new file): {LONG} lines, {} bytes, sha256 {sha}",
        long.len()
    )]));
    want.extend(indented(
        &(1..=HEAD_LINES)
            .map(|i| format!("+long {i}"))
            .collect::<Vec<_>>(),
    ));
    want.extend(indented(&[format!(
        "... {} more lines hidden; --full-diff shows all",
        LONG - HEAD_LINES
    )]));
    assert_eq!(step(out, "file:/etc/slipway-long.conf"), want, "{out}");
    // A short created file is shown whole.
    let short = step(out, "file:/etc/slipway-short.conf");
    assert!(short.contains(&"      +short 5"), "{out}");
    assert!(short.contains(&"      +++ /etc/slipway-short.conf (planned)"));
    // A changed file keeps its diff with three lines of context.
    let changed = step(out, "file:/etc/slipway-changed.conf");
    let hunk: Vec<&str> = changed
        .iter()
        .copied()
        .skip_while(|l| !l.starts_with("      @@"))
        .collect();
    let mut want = vec!["      @@ -27,7 +27,7 @@"];
    want.extend([
        "       changed 27",
        "       changed 28",
        "       changed 29",
        "      -changed 30",
        "      +changed thirty",
        "       changed 31",
        "       changed 32",
        "       changed 33",
    ]);
    assert_eq!(hunk, want, "{out}");
    // Sensitive stays silent, however long.
    assert_eq!(
        step(out, "file:/etc/slipway-token.conf").last(),
        Some(&"      /etc/slipway-token.conf: (sensitive) content not shown"),
        "{out}"
    );

    // --full-diff: every line of the created file, the plain unified diff.
    let full = go(&lab, &p, "plan", &["--full-diff"]).expect(0);
    let mut want = title.to_vec();
    want.extend(indented(&[
        "--- /dev/null".to_string(),
        "+++ /etc/slipway-long.conf (planned)".into(),
        format!("@@ -0,0 +1,{LONG} @@"),
    ]));
    want.extend(indented(
        &(1..=LONG).map(|i| format!("+long {i}")).collect::<Vec<_>>(),
    ));
    assert_eq!(
        step(&full.stdout, "file:/etc/slipway-long.conf"),
        want,
        "{}",
        full.stdout
    );
    assert!(
        full.stdout
            .contains("      /etc/slipway-token.conf: (sensitive) content not shown"),
        "{}",
        full.stdout
    );
    assert!(!full.stdout.contains("hidden"), "{}", full.stdout);

    // JSON is for machines: every line, whatever the flags.
    let json = go(&lab, &p, "plan", &["--format", "json"]).expect(0).json();
    let changes = json["hosts"][0]["changes"].as_array().expect("changes");
    let diff = changes
        .iter()
        .find(|c| c["resource"] == "file:/etc/slipway-long.conf")
        .expect("the long file")["diff"]["unified"]
        .as_str()
        .expect("a text diff");
    assert_eq!(
        slipway::diff::created_text(diff).as_deref(),
        Some(long.as_str())
    );

    // apply prints the plan the same way, and the summary describes the file it writes.
    let applied = go(&lab, &p, "apply", &["--yes"]).expect(0);
    assert_eq!(
        step(&applied.stdout, "file:/etc/slipway-long.conf").len(),
        title.len() + HEAD_LINES + 2,
        "{}",
        applied.stdout
    );
    let on_host = lab.exec_ok(
        0,
        "wc -l < /etc/slipway-long.conf; wc -c < /etc/slipway-long.conf; sha256sum /etc/slipway-long.conf",
    );
    assert_eq!(
        on_host,
        format!("{LONG}\n{}\n{sha}  /etc/slipway-long.conf\n", long.len())
    );
    go(&lab, &p, "plan", &["--detailed-exitcode"]).expect(0);
}

/// Every command that prints a plan takes --full-diff, and its help and
/// docs/cli.md state the bounds the renderer uses.
#[test]
fn every_command_that_prints_a_plan_takes_full_diff() {
    let words = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let home = tempfile::tempdir().unwrap();
    for command in ["plan", "apply", "bootstrap"] {
        let help = words(
            &run(slipway(home.path()).args([command, "--help"]))
                .expect(0)
                .stdout,
        );
        for said in [
            "--full-diff".to_string(),
            format!("longer than {CREATED_LINES_MAX} lines"),
            format!("first {HEAD_LINES} lines"),
        ] {
            assert!(
                help.contains(&said),
                "{command} --help lacks {said:?}: {help}"
            );
        }
    }
    let docs = words(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/cli.md")).unwrap(),
    );
    for said in [
        format!("A new file of up to {CREATED_LINES_MAX} lines is shown whole"),
        format!("then its first {HEAD_LINES} lines"),
    ] {
        assert!(docs.contains(&said), "docs/cli.md lacks {said:?}");
    }
}

//! The one batched probe per host: every resource's facts in one remote
//! command, split back into sections by marker lines.

mod shared;

use std::collections::BTreeMap;

use crate::digest::sha256_hex;
use crate::facts;
use crate::resource::Resource;
use crate::shell::Script;

const MARK: &str = "@@slipway-section ";

/// One script that prints the host facts, the shared answers (see [`shared`]),
/// then each resource's section. The fragments run in parallel (some ask slow
/// tools), each into its own file headed by its marker line, and one `cat`
/// prints them in order once all are done, so a probe costs about as long as
/// its slowest fragment, and printing costs one process, not one per resource.
pub fn script(resources: &[&dyn Resource]) -> Script {
    let mut s = Script::default();
    s.line("d=$(mktemp -d); trap 'rm -rf \"$d\"' EXIT");
    // Files named by equal-width numbers: the glob lists them in this order
    // whatever the host's locale.
    let mut n = 0;
    let mut fragment = |s: &mut Script, header: String, body: &str| {
        s.line(format!(
            "( printf '{header}'; {body}\n) >\"$d/{n:05}\" 2>/dev/null &"
        ));
        n += 1;
    };
    fragment(&mut s, format!("{MARK}facts\\n"), facts::PROBE);
    for (name, sh) in shared::Wanted::of(resources).queries() {
        fragment(&mut s, format!("\\n{MARK}{name}\\n"), &sh);
    }
    for (i, r) in resources.iter().enumerate() {
        // A subshell per resource: one probe's variables or failure cannot leak into the next.
        fragment(&mut s, format!("\\n{MARK}{i}\\n"), &r.probe());
    }
    s.line("wait");
    s.line("cat \"$d\"/*");
    s.line(format!("printf '\\n{MARK}end\\n'"));
    s
}

/// The output of [`script`], split into the facts and one section per
/// resource, each section starting with its share of the shared answers.
pub fn read(stdout: &str, resources: &[&dyn Resource]) -> Result<Sections, String> {
    let mut sections = Sections::parse(stdout, resources.len())?;
    let wanted = shared::Wanted::of(resources);
    let answer = |name: &str| sections.shared.get(name).map_or("", String::as_str);
    let heads: Vec<String> = resources
        .iter()
        .map(|r| wanted.lines_for(*r, answer(shared::PACKAGES), answer(shared::UNITS)))
        .collect();
    for (section, head) in sections.resources.iter_mut().zip(heads) {
        section.insert_str(0, &head);
    }
    Ok(sections)
}

/// The probe output, split: the facts section, the shared answers by name,
/// and one section per resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Sections {
    pub facts: String,
    pub shared: BTreeMap<String, String>,
    pub resources: Vec<String>,
}

impl Sections {
    pub fn parse(stdout: &str, expected: usize) -> Result<Self, String> {
        let mut facts = None;
        let mut shared = BTreeMap::new();
        let mut resources: Vec<String> = Vec::new();
        let mut current: Option<String> = None;
        let mut body = String::new();
        let mut ended = false;
        for line in stdout.split_inclusive('\n') {
            if let Some(name) = line.strip_prefix(MARK) {
                let name = name.trim_end();
                match current.take().as_deref() {
                    Some("facts") => facts = Some(std::mem::take(&mut body)),
                    Some(n) if n.starts_with(|c: char| c.is_ascii_digit()) => {
                        resources.push(tidy(std::mem::take(&mut body)))
                    }
                    Some(n) => {
                        shared.insert(n.to_string(), tidy(std::mem::take(&mut body)));
                    }
                    None => body.clear(),
                }
                if name == "end" {
                    ended = true;
                    break;
                }
                current = Some(name.to_string());
            } else {
                body.push_str(line);
            }
        }
        if !ended || resources.len() != expected {
            return Err(format!(
                "the probe output was cut short ({} of {expected} sections)",
                resources.len()
            ));
        }
        Ok(Self {
            facts: facts.unwrap_or_default(),
            shared,
            resources,
        })
    }
}

/// Drops the blank line that separates a section from the next marker.
fn tidy(mut body: String) -> String {
    if body.ends_with("\n\n") || body == "\n" {
        body.pop();
    }
    body
}

/// What a saved plan remembers of a section, to tell later whether it changed.
pub fn fingerprint(section: &str) -> String {
    sha256_hex(section.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_sections() {
        let out = format!("{MARK}facts\nnow=1\n\n{MARK}0\na=1\n\n{MARK}1\n\n{MARK}end\n");
        let s = Sections::parse(&out, 2).unwrap();
        assert_eq!(s.facts, "now=1\n\n");
        assert_eq!(s.resources, vec!["a=1\n".to_string(), String::new()]);
    }

    #[test]
    fn packages_and_units_are_asked_once_and_shared_out() {
        use crate::resource::package::Package;
        use crate::resource::service::Service;
        let (curl, jq, docker) = (
            Package::present(&["curl"]),
            Package::present(&["curl", "jq"]),
            Service {
                check: Some("[ -S /run/docker.sock ]".into()),
                ..Service::running("docker")
            },
        );
        let refs: Vec<&dyn Resource> = vec![&curl, &jq, &docker];
        let sh = script(&refs).sh;
        assert_eq!(sh.matches("dpkg-query").count(), 1, "{sh}");
        assert_eq!(sh.matches("systemctl").count(), 1, "{sh}");
        let out = format!(
            "{MARK}facts\nnow=1\n\n{MARK}packages\namd64 pkg=curl ii  8.5\namd64 pkg=jq ii  1.7\n\n\
             {MARK}units\nLoadState=loaded\nActiveState=active\nUnitFileState=enabled\n\n\
             {MARK}0\n\n{MARK}1\n\n{MARK}2\ncheck=ok\n\n{MARK}end\n"
        );
        let s = read(&out, &refs).unwrap();
        assert_eq!(
            s.resources,
            [
                "pkg=curl ii  8.5\n",
                "pkg=curl ii  8.5\npkg=jq ii  1.7\n",
                "load=loaded\nactive=active\nenabled=enabled\ncheck=ok\n",
            ]
        );
    }

    #[test]
    fn truncated_output_is_an_error() {
        let out = format!("{MARK}facts\n{MARK}0\na=1\n");
        assert!(Sections::parse(&out, 1).is_err());
    }
}

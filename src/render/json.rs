//! The plan and the apply report as JSON, for CI and scripts.

use serde_json::{Value, json};

use crate::engine::HostReport;
use crate::plan::Plan;

pub fn plan(plan: &Plan) -> Value {
    let s = plan.summary();
    json!({
        "hosts": plan.hosts,
        "summary": {
            "changes": s.changes,
            "hosts_changing": s.hosts_changing,
            "hosts": s.hosts,
            "failed": s.failed,
        }
    })
}

pub fn report(reports: &[HostReport]) -> Value {
    json!({
        "hosts": reports,
        "summary": {
            "changed": reports.iter().map(HostReport::changed).sum::<usize>(),
            "hosts": reports.len(),
            "failed": reports.iter().filter(|r| !r.ok()).count(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::HostPlan;
    use crate::plan::change::{Action, Change, Diff};

    /// The human plan summarises long created files; JSON is for machines and
    /// keeps every line.
    #[test]
    fn a_long_created_file_keeps_every_line() {
        let text: String = (1..=500).map(|i| format!("line {i}\n")).collect();
        let mut change = Change::new("file:/etc/big".into(), Action::Create, "create /etc/big");
        let diff = crate::diff::file_diff("/etc/big", None, text.as_bytes());
        change.diff = Some(diff.clone());
        let plan = Plan {
            hosts: vec![HostPlan {
                host: "web1".into(),
                changes: vec![crate::plan::Step {
                    play: 0,
                    index: 0,
                    change,
                    digest: String::new(),
                }],
                ..HostPlan::default()
            }],
        };
        let value = super::plan(&plan);
        let shown: Diff = serde_json::from_value(value["hosts"][0]["changes"][0]["diff"].clone())
            .expect("a diff");
        assert_eq!(shown, diff);
        let Diff::Text { unified, .. } = shown else {
            panic!("expected text")
        };
        assert_eq!(crate::diff::created_text(&unified).as_deref(), Some(&*text));
    }
}

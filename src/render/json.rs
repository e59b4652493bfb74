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

//! A report as each channel wants it: plain text (mail), Slack's and
//! Discord's webhook JSON. Redaction happens where messages leave (`send`).

use std::time::Duration;

use serde_json::{Value, json};

use super::report::{Outcome, Report};

/// Discord refuses a message whose content is longer.
const DISCORD_CONTENT: usize = 2000;
/// Slack truncates longer text itself; stay well under it.
const SLACK_TEXT: usize = 39_000;

/// One line: what ran, how it ended, on how many hosts, how long, by whom.
pub fn headline(r: &Report) -> String {
    let hosts = r.hosts.len();
    let failed = r.hosts.iter().filter(|h| h.failed.is_some()).count();
    let changes = r.changes();
    let detail = match r.outcome {
        Outcome::Success => format!("{changes} changes on {hosts} hosts"),
        Outcome::Failure | Outcome::Rollback => {
            format!("{failed} of {hosts} hosts failed, {changes} changes applied")
        }
        Outcome::Drift => {
            let changing = r.hosts.iter().filter(|h| h.changes > 0).count();
            let mut d = format!("{changes} changes pending on {changing} of {hosts} hosts");
            if failed > 0 {
                d.push_str(&format!(", {failed} could not be planned"));
            }
            d
        }
    };
    let took = r
        .run
        .duration
        .map(|d| format!(" in {}", duration(d)))
        .unwrap_or_default();
    format!(
        "slipway {} {}: {}: {detail}{took}, by {}",
        r.run.command,
        r.run.playbook,
        r.outcome.as_str(),
        r.run.who
    )
}

/// One line per host that changed or failed, per image a stack moves, per
/// service whose update failed.
pub fn details(r: &Report) -> Vec<String> {
    let mut lines = Vec::new();
    let verb = if r.outcome == Outcome::Drift {
        "to change"
    } else {
        "changed"
    };
    for h in &r.hosts {
        match &h.failed {
            Some(f) => {
                let at = f
                    .resource
                    .as_deref()
                    .map(|r| format!(" at {r}"))
                    .unwrap_or_default();
                lines.push(format!("{}: FAILED{at}: {}", h.host, f.error));
            }
            None if h.changes > 0 => lines.push(format!("{}: {} {verb}", h.host, h.changes)),
            None => {}
        }
    }
    for i in &r.images {
        let image = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
        lines.push(format!(
            "{}: stack {} service {}: {} -> {}",
            i.host,
            i.stack,
            i.service,
            image(&i.from),
            image(&i.to)
        ));
    }
    for s in &r.services {
        let f = &s.failure;
        lines.push(format!(
            "{}: service {} {}: tried {}, running {}; task error: {}",
            s.host, f.service, f.state, f.tried, f.running, f.error
        ));
    }
    lines
}

/// The mail's subject and body.
pub fn email(r: &Report) -> (String, String) {
    mail_message(&headline(r), &details(r).join("\n"))
}

/// A mail's subject and plain-text body for `head` and `body`: the headline
/// is the subject and the body's first line, so a mail read alone says it.
pub fn mail_message(head: &str, body: &str) -> (String, String) {
    (head.to_string(), format!("{head}\n\n{body}\n"))
}

/// `{"text": ...}`: the headline, then the details as a code block (host and
/// service names hold `_`, which Slack would read as italics).
pub fn slack(r: &Report) -> Value {
    slack_message(&headline(r), &details(r).join("\n"))
}

/// Slack's payload for `head` and `body` (a code block).
pub fn slack_message(head: &str, body: &str) -> Value {
    // Slack reads &, < and > as markup in any text.
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let text = with_block(&escape(head), &escape(body), SLACK_TEXT);
    json!({ "text": text })
}

/// The colour of an outcome in Discord's embed.
pub const FAILURE_COLOR: u32 = 0xd0_3b_3b;

/// `{"content": ..., "embeds": [...]}`: the text (at most 2000 characters)
/// and an embed coloured by the outcome.
pub fn discord(r: &Report) -> Value {
    let color = match r.outcome {
        Outcome::Success => 0x2e_b8_86,
        Outcome::Failure => FAILURE_COLOR,
        Outcome::Rollback => 0xe8_91_2d,
        Outcome::Drift => 0x3b_82_d0,
    };
    let mut fields = vec![
        json!({"name": "playbook", "value": r.run.playbook, "inline": true}),
        json!({"name": "by", "value": r.run.who, "inline": true}),
    ];
    if let Some(d) = r.run.duration {
        fields.push(json!({"name": "duration", "value": duration(d), "inline": true}));
    }
    let title = format!("slipway {}: {}", r.run.command, r.outcome.as_str());
    discord_message(&headline(r), &details(r).join("\n"), &title, color, fields)
}

/// Discord's payload for `head` and `body` (a code block) with an embed.
/// No mentions: a host named `everyone` must not ping anyone.
pub fn discord_message(
    head: &str,
    body: &str,
    title: &str,
    color: u32,
    fields: Vec<Value>,
) -> Value {
    json!({
        "content": with_block(head, body, DISCORD_CONTENT),
        "allowed_mentions": { "parse": [] },
        "embeds": [{
            "title": title,
            "color": color,
            "fields": fields,
        }],
    })
}

/// `head`, then `body` in a code block, the whole at most `max` characters:
/// the body is cut (and says so) to fit, the block always closed.
fn with_block(head: &str, body: &str, max: usize) -> String {
    if body.is_empty() {
        return truncate(head, max);
    }
    let cut = "\n(cut)";
    let frame = head.chars().count() + "\n```\n".len() + "\n```".len();
    let room = max.saturating_sub(frame);
    let body = if body.chars().count() <= room {
        body.to_string()
    } else {
        let keep = room.saturating_sub(cut.len());
        format!("{}{cut}", body.chars().take(keep).collect::<String>())
    };
    truncate(&format!("{head}\n```\n{body}\n```"), max)
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, s) => format!("{h}h{m:02}m{s:02}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::report::fixtures::*;
    use super::*;

    #[test]
    fn text_names_the_outcome_the_hosts_and_the_images() {
        let mut p = plan();
        p.hosts.pop();
        let r = Report::applied(&p, &reports(Some(ROLLED_BACK)), run("apply"));
        let (subject, body) = email(&r);
        assert_eq!(
            subject,
            "slipway apply site.toml: rollback: 1 of 2 hosts failed, 2 changes applied in 1m23s, by ops@laptop"
        );
        assert!(
            body.contains("web1: FAILED at stack:api: service api_api: rolled back"),
            "{body}"
        );
        assert!(body.contains("web2: 1 changed\n"), "{body}");
        assert!(
            body.contains("web1: stack api service api: reg:5443/app:1.0 -> reg:5443/app:1.1"),
            "{body}"
        );
        assert!(
            body.contains("web1: service api_api rolled back: tried reg:5443/app:broken, running reg:5443/app:1.1; task error: unhealthy container"),
            "{body}"
        );
        let drift = headline(&Report::drift(&plan(), run("plan")));
        assert!(
            drift.starts_with("slipway plan site.toml: drift: 3 changes pending on 2 of 3 hosts, 1 could not be planned"),
            "{drift}"
        );
    }

    #[test]
    fn slack_escapes_markup_and_discord_stays_within_its_limits() {
        let r = Report::applied(&plan(), &reports(None), run("apply"));
        let text = slack(&r)["text"].as_str().unwrap().to_string();
        assert!(text.contains("app:1.0 -&gt; reg:5443"), "{text}");
        assert!(
            text.contains("\n```\n") && text.ends_with("\n```"),
            "{text}"
        );

        let mut many = plan();
        for i in 0..300 {
            let mut h = many.hosts[1].clone();
            h.host = format!("host-{i:03}");
            many.hosts.push(h);
        }
        let big = discord(&Report::drift(&many, run("plan")));
        let content = big["content"].as_str().unwrap();
        assert!(content.chars().count() <= DISCORD_CONTENT);
        assert!(content.ends_with("\n(cut)\n```"), "{content}");
        assert_eq!(big["embeds"][0]["title"], "slipway plan: drift");
        assert_eq!(big["allowed_mentions"]["parse"], json!([]));
        assert_eq!(big["embeds"][0]["fields"][2]["value"], "1m23s");
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(duration(Duration::from_secs(41)), "41s");
        assert_eq!(duration(Duration::from_secs(83)), "1m23s");
        assert_eq!(duration(Duration::from_secs(3725)), "1h02m05s");
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}

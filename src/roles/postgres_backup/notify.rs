//! What the host needs to report a failed backup or drill itself, like apply
//! reports a failed deploy: per webhook of the inventory's `[notify]`, the
//! payload rendered here by the same code as apply's (with `@@DETAIL@@` where
//! the host puts what failed) and a curl config file holding the URL, so the
//! URL is never on a command line nor in a log. Both are root-only files
//! shown in no plan. Mail is not sent from hosts.

use serde_json::json;

use super::RoleContext;
use crate::notify::format;
use crate::resource::file::File;

pub const DIR: &str = "/etc/slipway/postgres-backup/notify";
/// Replaced by the host with the error (a restricted character set).
pub const DETAIL: &str = "@@DETAIL@@";

/// The files of both webhooks: present for a channel `[notify]` sets,
/// absent otherwise (a channel removed from the inventory goes from the host).
pub fn files(ctx: &RoleContext<'_>) -> Vec<File> {
    let notify = ctx.inventory.notify.clone().unwrap_or_default();
    let head = format!("slipway postgres_backup on {}: failure", ctx.host.name);
    let payloads = [
        ("slack", notify.slack, format::slack_message(&head, DETAIL)),
        (
            "discord",
            notify.discord,
            format::discord_message(
                &head,
                DETAIL,
                "slipway backup: failure",
                format::FAILURE_COLOR,
                vec![json!({"name": "host", "value": ctx.host.name, "inline": true})],
            ),
        ),
    ];
    let mut out = Vec::new();
    for (channel, url, payload) in payloads {
        let file = |ext: &str, content: Option<String>, sensitive: bool| {
            let mut f = File::root_owned(&format!("{DIR}/{channel}.{ext}"), Vec::new(), 0o600);
            f.content = content.map(String::into_bytes);
            f.sensitive = sensitive;
            f
        };
        let config = url.as_ref().map(|u| {
            format!(
                "url = \"{}\"\n",
                u.replace('\\', "\\\\").replace('"', "\\\"")
            )
        });
        let body = url.as_ref().map(|_| format!("{payload}\n"));
        out.push(file("json", body, false));
        out.push(file("curl", config, true));
    }
    out
}

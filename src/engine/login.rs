//! Lockout protection: after a change that governs logins (sshd settings),
//! a NEW connection must get in as the user that will be used from now on;
//! if it cannot, the previous settings are put back over the old connection,
//! which sshd keeps open across reloads.

use super::connect;
use super::runner::Runner;
use crate::config::Host;
use crate::desired::HostState;
use crate::plan::HostPlan;
use crate::plan::compute::resource_of;
use crate::resource::LoginCheck;
use crate::transport::ssh;
use crate::transport::{Transport, TransportError};

/// Proves the login check of every change that was applied (`applied`: the
/// resource ids whose step succeeded); restores and fails on the first that fails.
pub async fn prove(
    runner: &Runner,
    state: &HostState,
    plan: &HostPlan,
    applied: &[&str],
) -> Result<(), String> {
    let checks: Vec<LoginCheck> = plan
        .changes
        .iter()
        .filter(|step| applied.contains(&step.change.resource.as_str()))
        .filter_map(|step| resource_of(state, step).and_then(|r| r.login_check()))
        .collect();
    for check in checks {
        if let Err(why) = try_login(&state.host, &check.user, check.port).await {
            let restored = match runner.run(&check.restore).await {
                Ok(out) if out.success() => "the previous settings were restored".to_string(),
                Ok(out) => format!(
                    "restoring the previous settings FAILED: {}",
                    out.stderr_str().trim()
                ),
                Err(e) => format!("restoring the previous settings FAILED: {e}"),
            };
            return Err(format!(
                "a new login as {}@{} on port {} failed after the change ({why}); {restored}",
                check.user, state.host.name, check.port
            ));
        }
    }
    Ok(())
}

/// A fresh connection to `host` as `user` on `port`, with the keys the host's
/// inventory entry uses (never a password), that must also reach root.
pub async fn try_login(host: &Host, user: &str, port: u16) -> Result<(), String> {
    let mut spec = connect::spec(host)?;
    spec.user = user.to_string();
    spec.port = port;
    spec.password = None;
    // sshd re-executes itself on reload and does not listen for a moment.
    let mut attempt = 0;
    let transport = loop {
        match ssh::connect(&spec).await {
            Ok(t) => break t,
            Err(TransportError::Connect { .. }) if attempt < 20 => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            Err(e) => return Err(e.to_string()),
        }
    };
    // Logged in is not enough: the deploy user must also reach root.
    let probe = if user == "root" {
        "true"
    } else {
        "sudo -n true"
    };
    let out = transport.exec(probe, b"").await.map_err(|e| e.to_string());
    transport.close().await;
    match out? {
        o if o.success() => Ok(()),
        o => Err(format!(
            "logged in, but `{probe}` failed: {}",
            o.stderr_str().trim()
        )),
    }
}

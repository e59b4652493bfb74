//! A systemd service run by a timer, as the roles that schedule work write
//! it: the unit files, systemd reloaded in the same apply when they change,
//! and the timer enabled and running.

use super::config_file;
use crate::resource::Resource;
use crate::resource::command::Command;
use crate::resource::service::Service;
use crate::shell::q;

/// `UNIT.service` and `UNIT.timer` in /etc/systemd/system with the given
/// texts; a changed file restarts the timer at the end of the play.
pub fn timer(unit: &str, service: String, timer: String) -> Vec<Box<dyn Resource>> {
    let timer_unit = format!("{unit}.timer");
    let files = [
        (format!("/etc/systemd/system/{unit}.service"), service),
        (format!("/etc/systemd/system/{timer_unit}"), timer),
    ];
    let reload = reload(unit, &files);
    let mut out: Vec<Box<dyn Resource>> = Vec::new();
    for (path, content) in files {
        let mut file = config_file(&path, content, 0o644);
        file.notify = vec![timer_unit.clone()];
        out.push(Box::new(file));
    }
    out.push(Box::new(reload));
    out.push(Box::new(Service::running(&timer_unit)));
    out
}

/// `systemctl daemon-reload` after the unit files are written. Its guard is
/// read when planning, before the files change, so it compares the files on
/// the host with the planned content: the reload is planned when one will
/// change, or changed since systemd last read it.
fn reload(unit: &str, files: &[(String, String)]) -> Command {
    let mut unless = String::new();
    for (path, content) in files {
        let name = path.rsplit('/').next().unwrap_or(path);
        unless.push_str(&format!(
            "printf '%s  %s\\n' {} {} | sha256sum -c --status && systemctl show -p NeedDaemonReload {} | grep -qx NeedDaemonReload=no && ",
            crate::digest::sha256_hex(content.as_bytes()),
            q(path),
            q(name)
        ));
    }
    unless.push_str("true");
    Command {
        name: format!("reload systemd for the {unit} units"),
        run: "systemctl daemon-reload".into(),
        creates: None,
        unless: Some(unless),
        notify: Vec::new(),
    }
}

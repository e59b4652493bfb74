//! `user`: a local account, its groups, shell, locked password and SSH keys.

use serde::Deserialize;

use super::group::check_account_name;
use super::{BuildContext, Observed, Outcome, Presence, Resource};
use crate::config::doc::Node;
use crate::diag::InputResult;
use crate::plan::change::{Action, Attr, Change};
use crate::shell::{REMOVE_TEMP_ON_EXIT, Script, q};

#[derive(Debug, Clone, Default)]
pub struct User {
    pub name: String,
    pub uid: Option<u32>,
    /// Supplementary groups the user must be in (others are left alone).
    pub groups: Vec<String>,
    pub shell: Option<String>,
    pub home: Option<String>,
    pub system: bool,
    /// Lock the password, so only key logins work.
    pub password_locked: Option<bool>,
    pub authorized_keys: Vec<String>,
    /// Remove keys that are not listed.
    pub exclusive_keys: bool,
    pub state: Presence,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    name: toml::Spanned<String>,
    uid: Option<u32>,
    #[serde(default)]
    groups: Vec<toml::Spanned<String>>,
    shell: Option<toml::Spanned<String>>,
    home: Option<toml::Spanned<String>>,
    #[serde(default)]
    system: bool,
    password_locked: Option<bool>,
    #[serde(default)]
    authorized_keys: Vec<toml::Spanned<String>>,
    #[serde(default)]
    exclusive_keys: bool,
    #[serde(default)]
    state: Presence,
}

pub fn build<'a>(node: &Node<'a>, ctx: &BuildContext<'a>) -> InputResult<Box<dyn Resource>> {
    let spec: Spec = ctx.typed(node)?;
    let src = ctx.doc.src;
    check_account_name(spec.name.get_ref()).map_err(|m| src.error(spec.name.span(), m))?;
    for g in &spec.groups {
        check_account_name(g.get_ref()).map_err(|m| src.error(g.span(), m))?;
    }
    for (what, path) in [("shell", &spec.shell), ("home", &spec.home)] {
        if let Some(p) = path {
            super::file::check_abs(p.get_ref())
                .map_err(|m| src.error(p.span(), format!("{what}: {m}")))?;
        }
    }
    for k in &spec.authorized_keys {
        if key_id(k.get_ref()).is_none() {
            return Err(src
                .error(k.span(), "not an SSH public key")
                .with_help("paste a line from a .pub file: \"ssh-ed25519 AAAA... comment\""));
        }
    }
    Ok(Box::new(User {
        name: spec.name.into_inner(),
        uid: spec.uid,
        groups: spec.groups.into_iter().map(|g| g.into_inner()).collect(),
        shell: spec.shell.map(toml::Spanned::into_inner),
        home: spec.home.map(toml::Spanned::into_inner),
        system: spec.system,
        password_locked: spec.password_locked,
        authorized_keys: spec
            .authorized_keys
            .into_iter()
            .map(|k| k.into_inner().trim().to_string())
            .collect(),
        exclusive_keys: spec.exclusive_keys,
        state: spec.state,
    }))
}

/// The part of an authorized_keys line that identifies the key: type and
/// base64 blob, without options or comment.
pub fn key_id(line: &str) -> Option<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words.iter().position(|w| {
        w.starts_with("ssh-") || w.starts_with("ecdsa-sha2-") || w.starts_with("sk-")
    })?;
    let blob = words.get(i + 1)?;
    blob.starts_with("AAAA")
        .then(|| format!("{} {}", words[i], blob))
}

impl User {
    fn missing_keys(&self, seen: &[String]) -> Vec<&String> {
        self.authorized_keys
            .iter()
            .filter(|k| key_id(k).is_some_and(|id| !seen.contains(&id)))
            .collect()
    }

    fn extra_keys(&self, seen: &[String]) -> usize {
        let wanted: Vec<String> = self
            .authorized_keys
            .iter()
            .filter_map(|k| key_id(k))
            .collect();
        seen.iter().filter(|s| !wanted.contains(s)).count()
    }
}

impl Resource for User {
    fn id(&self) -> String {
        format!("user:{}", self.name)
    }

    /// A user that only asks for group memberships (the docker role's users)
    /// manages those memberships, which only ever get added; any other
    /// setting makes the account this resource's own.
    fn manages(&self) -> Vec<super::Managed> {
        // Destructured whole, so a new field must be considered here.
        let User {
            name,
            uid,
            groups,
            shell,
            home,
            system,
            password_locked,
            authorized_keys,
            exclusive_keys,
            state,
        } = self;
        let memberships_only = uid.is_none()
            && shell.is_none()
            && home.is_none()
            && !system
            && password_locked.is_none()
            && authorized_keys.is_empty()
            && !exclusive_keys
            && *state == Presence::Present;
        if memberships_only {
            return groups
                .iter()
                .map(|g| {
                    super::Managed::shared(
                        super::Thing::Membership,
                        format!("{name}:{g}"),
                        "member",
                    )
                })
                .collect();
        }
        vec![super::Managed::sole(super::Thing::User, name)]
    }

    fn probe(&self) -> String {
        // The shadow field is only classified, never printed.
        format!(
            r#"n={}
if e=$(getent passwd "$n"); then
  printf '%s\n' "$e" | awk -F: '{{print "uid="$3; print "home="$6; print "shell="$7}}'
  printf 'groups=%s\n' "$(id -Gn "$n")"
  case "$(getent shadow "$n" | cut -d: -f2)" in '!'*|'*'*) echo locked=yes;; *) echo locked=no;; esac
  h=$(printf '%s\n' "$e" | cut -d: -f6)
  if [ -f "$h/.ssh/authorized_keys" ]; then sed -n 's/^\(.*[^ ]\) *$/key=\1/p' "$h/.ssh/authorized_keys"; fi
fi
"#,
            q(&self.name)
        )
    }

    fn plan(&self, obs: &Observed<'_>) -> Outcome {
        let exists = obs.get("uid").is_some();
        let id = self.id();
        match (self.state, exists) {
            (Presence::Absent, false) => return Outcome::unchanged(),
            (Presence::Absent, true) => {
                return Outcome::change(Change::new(
                    id,
                    Action::Delete,
                    format!("remove user {}", self.name),
                ));
            }
            _ => {}
        }
        let seen_keys: Vec<String> = obs.all("key").into_iter().filter_map(key_id).collect();
        let mut attrs = Vec::new();
        if !exists {
            attrs.extend(self.uid.map(|u| Attr::new("uid", None::<u32>, Some(u))));
            attrs.extend(
                self.shell
                    .as_ref()
                    .map(|s| Attr::new("shell", None::<String>, Some(s))),
            );
            if !self.groups.is_empty() {
                attrs.push(Attr::new(
                    "groups",
                    None::<String>,
                    Some(self.groups.join(",")),
                ));
            }
        } else {
            if let Some(uid) = self
                .uid
                .filter(|u| obs.get("uid") != Some(u.to_string().as_str()))
            {
                attrs.push(Attr::new("uid", obs.get("uid"), Some(uid)));
            }
            if let Some(shell) = self
                .shell
                .as_ref()
                .filter(|s| obs.get("shell") != Some(s.as_str()))
            {
                attrs.push(Attr::new("shell", obs.get("shell"), Some(shell)));
            }
            let have: Vec<&str> = obs.get("groups").unwrap_or("").split_whitespace().collect();
            let missing: Vec<&str> = self
                .groups
                .iter()
                .map(String::as_str)
                .filter(|g| !have.contains(g))
                .collect();
            if !missing.is_empty() {
                attrs.push(Attr::new(
                    "groups",
                    Some(have.join(",")),
                    Some(format!("+{}", missing.join(",+"))),
                ));
            }
        }
        if let Some(lock) = self.password_locked {
            let locked = obs.get("locked") == Some("yes");
            if exists && lock != locked || !exists && !lock {
                attrs.push(Attr::new(
                    "password_locked",
                    exists.then_some(locked),
                    Some(lock),
                ));
            }
        }
        let missing = self.missing_keys(&seen_keys).len();
        let extra = if self.exclusive_keys {
            self.extra_keys(&seen_keys)
        } else {
            0
        };
        if missing > 0 || extra > 0 {
            let to = match (missing, extra) {
                (m, 0) => format!("+{m} key(s)"),
                (0, e) => format!("-{e} key(s)"),
                (m, e) => format!("+{m} -{e} key(s)"),
            };
            attrs.push(Attr::new(
                "authorized_keys",
                Some(format!("{} key(s)", seen_keys.len())),
                Some(to),
            ));
        }
        match (exists, attrs.is_empty()) {
            (true, true) => Outcome::unchanged(),
            (true, false) => Outcome::change(
                Change::new(id, Action::Update, format!("update user {}", self.name))
                    .with_attrs(attrs),
            ),
            (false, _) => Outcome::change(
                Change::new(id, Action::Create, format!("create user {}", self.name))
                    .with_attrs(attrs),
            ),
        }
    }

    fn apply(&self, change: &Change, _observed: &Observed<'_>) -> Script {
        let mut s = Script::default();
        s.line(format!("n={}", q(&self.name)));
        if change.action == Action::Delete {
            s.line("userdel \"$n\"");
            return s;
        }
        let groups = self.groups.join(",");
        if change.action == Action::Create {
            let mut cmd = String::from(
                // A group named like the user (made earlier, e.g. by a `group` resource) becomes
                // its primary group; otherwise useradd makes one.
                "if getent group \"$n\" >/dev/null; then pg=\"--gid $n\"; else pg=--user-group; fi\nuseradd --create-home $pg",
            );
            if self.system {
                cmd.push_str(" --system");
            }
            if let Some(u) = self.uid {
                cmd.push_str(&format!(" --uid {u}"));
            }
            if let Some(sh) = &self.shell {
                cmd.push_str(&format!(" --shell {}", q(sh)));
            }
            if let Some(h) = &self.home {
                cmd.push_str(&format!(" --home-dir {}", q(h)));
            }
            if !groups.is_empty() {
                cmd.push_str(&format!(" --groups {}", q(&groups)));
            }
            // An earlier step of the same apply may have made the user already (a role
            // adding it to a group plans a "create" on a fresh host): then only add groups.
            let existing = if groups.is_empty() {
                ":".to_string()
            } else {
                format!("usermod --append --groups {} \"$n\"", q(&groups))
            };
            s.line(format!(
                "if getent passwd \"$n\" >/dev/null; then {existing}; else\n{cmd} \"$n\"\nfi"
            ));
        }
        for a in &change.attrs {
            match (change.action, a.name.as_str()) {
                (Action::Update, "uid") => s.line(format!(
                    "usermod --uid {} \"$n\"",
                    self.uid.unwrap_or_default()
                )),
                (Action::Update, "shell") => s.line(format!(
                    "usermod --shell {} \"$n\"",
                    q(self.shell.as_deref().unwrap_or(""))
                )),
                (Action::Update, "groups") => {
                    s.line(format!("usermod --append --groups {} \"$n\"", q(&groups)))
                }
                (_, "password_locked") if a.to.as_deref() == Some("true") => {
                    s.line("usermod --lock \"$n\"")
                }
                (_, "password_locked") => s.line("usermod --unlock \"$n\""),
                (_, "authorized_keys") => s.line(self.write_keys()),
                _ => &mut s,
            };
        }
        s
    }
}

impl User {
    /// Rewrites authorized_keys atomically, owned by the user, 0600 in a 0700 .ssh.
    fn write_keys(&self) -> String {
        let mut sh = String::from(
            r#"h=$(getent passwd "$n" | cut -d: -f6); g=$(id -gn "$n")
install -d -m 0700 -o "$n" -g "$g" "$h/.ssh"
f="$h/.ssh/authorized_keys"; t=$(mktemp "$h/.ssh/.slipway.XXXXXX")
"#,
        );
        sh.push_str(REMOVE_TEMP_ON_EXIT);
        sh.push('\n');
        if !self.exclusive_keys {
            sh.push_str("if [ -f \"$f\" ]; then cat \"$f\" > \"$t\"; fi\n");
        }
        for key in &self.authorized_keys {
            let blob = key_id(key).unwrap_or_default();
            if self.exclusive_keys {
                sh.push_str(&format!("printf '%s\\n' {} >> \"$t\"\n", q(key)));
            } else {
                sh.push_str(&format!(
                    "grep -qF -- {} \"$t\" || printf '%s\\n' {} >> \"$t\"\n",
                    q(&blob),
                    q(key)
                ));
            }
        }
        sh.push_str("chmod 0600 \"$t\"; chown \"$n:$g\" \"$t\"; sync \"$t\"; mv -f \"$t\" \"$f\"");
        sh
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::HostFacts;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBcd ops@laptop";

    fn plan(u: &User, section: &str) -> Outcome {
        u.plan(&Observed::new(section, &HostFacts::default()))
    }

    fn deploy() -> User {
        User {
            name: "deploy".into(),
            groups: vec!["sudo".into()],
            authorized_keys: vec![KEY.into()],
            password_locked: Some(true),
            ..User::default()
        }
    }

    #[test]
    fn creates_missing_user_with_keys() {
        let c = plan(&deploy(), "").change.unwrap();
        assert_eq!(c.action, Action::Create);
        assert!(c.attrs.iter().any(|a| a.name == "authorized_keys"));
    }

    #[test]
    fn converged_user_needs_nothing_even_if_key_comment_differs() {
        let section = "uid=1000\nhome=/home/deploy\nshell=/bin/sh\ngroups=deploy sudo\nlocked=yes\n\
                       key=ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBcd other-comment\n";
        assert_eq!(plan(&deploy(), section), Outcome::unchanged());
    }

    #[test]
    fn exclusive_keys_removes_others() {
        let mut u = deploy();
        u.exclusive_keys = true;
        let section = "uid=1000\ngroups=deploy sudo\nlocked=yes\nkey=ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBcd x\nkey=ssh-rsa AAAAB3Nza old\n";
        let c = plan(&u, section).change.unwrap();
        assert_eq!(c.attrs[0].to.as_deref(), Some("-1 key(s)"));
    }

    #[test]
    fn key_id_ignores_options_and_comment() {
        assert_eq!(
            key_id("from=\"10.0.0.1\" ssh-ed25519 AAAAC3Nz c").as_deref(),
            Some("ssh-ed25519 AAAAC3Nz")
        );
        assert_eq!(key_id("hello world"), None);
    }
}

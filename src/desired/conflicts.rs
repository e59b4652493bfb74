//! Two resources of one host managing the same thing (a path, a package, a
//! systemd unit, a user, a group, a sysctl key; see [`Managed`]) would undo
//! each other on every apply, or one would silently win: that is an error
//! naming both, within a play or across plays, roles and inline resources
//! alike. Some things are shared by design: a package two resources both
//! want installed (or both want absent), the keys several roles set in one
//! JSON file, the group memberships a role adds to a user.

use std::ops::Range;

use toml::de::DeValue;

use crate::config::doc::Node;
use crate::diag::{InputError, InputResult, SourceFile};
use crate::resource::{Managed, Resource, Thing};

/// Who asked for a resource.
pub(super) enum Owner<'n, 'a> {
    Role {
        role: &'static str,
        play: usize,
    },
    /// A `[[play.resources]]` table of the playbook.
    Inline {
        node: &'n Node<'a>,
    },
}

/// An owner as kept: an inline resource by the spot that names what it manages.
enum Held {
    Role { role: &'static str, play: usize },
    Inline { kind: String, span: Range<usize> },
}

struct Claim {
    managed: Managed,
    by: Held,
}

/// What the resources of one host manage so far.
pub(super) struct Claims<'p> {
    host: &'p str,
    playbook: &'p SourceFile,
    claims: Vec<Claim>,
}

impl<'p> Claims<'p> {
    pub fn new(host: &'p str, playbook: &'p SourceFile) -> Self {
        Self {
            host,
            playbook,
            claims: Vec::new(),
        }
    }

    /// Records what `resource` manages; an error if another resource manages it already.
    pub fn add(&mut self, resource: &dyn Resource, owner: &Owner<'_, '_>) -> InputResult<()> {
        for managed in resource.manages() {
            let by = match owner {
                Owner::Role { role, play } => Held::Role { role, play: *play },
                Owner::Inline { node } => Held::Inline {
                    kind: resource
                        .id()
                        .split(':')
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                    span: span_of(node, &managed),
                },
            };
            if let Some(earlier) = self.claims.iter().find(|c| !c.managed.compatible(&managed)) {
                return Err(self.conflict(earlier, &managed, &by));
            }
            self.claims.push(Claim { managed, by });
        }
        Ok(())
    }

    fn describe(&self, held: &Held) -> String {
        match held {
            Held::Role { role, play } => format!("role {role} (play {})", play + 1),
            Held::Inline { kind, span } => {
                let (line, col) = self.playbook.line_col(span.start);
                format!(
                    "the {kind} resource at {}:{line}:{col}",
                    self.playbook.name()
                )
            }
        }
    }

    /// The error about `later` meeting `earlier`, at the inline one of them
    /// (the later one when both are): that is where the user can change it.
    fn conflict(&self, earlier: &Claim, managed: &Managed, later: &Held) -> InputError {
        let thing = format!("{} `{}`", managed.thing.noun(), managed.key);
        let host = self.host;
        let wants = earlier.managed.want.zip(managed.want);
        let mine = (later, managed.want);
        let theirs = (&earlier.by, earlier.managed.want);
        // `here`: the one the error points at (or the later one), `other`: the one it names.
        let (at, (here, want_here), (other, want_other)) = match (later, &earlier.by) {
            (Held::Inline { span, .. }, _) => (Some(span), mine, theirs),
            (_, Held::Inline { span, .. }) => (Some(span), theirs, mine),
            _ => (None, mine, theirs),
        };
        let message = match (at, wants) {
            (Some(_), Some(_)) => format!(
                "{thing} is wanted {} here, but {} wants it {} on {host}",
                want_here.unwrap_or_default(),
                self.describe(other),
                want_other.unwrap_or_default()
            ),
            (Some(_), None) => format!(
                "{thing} is {} managed by {} on {host}",
                if std::ptr::eq(here, later) {
                    "already"
                } else {
                    "also"
                },
                self.describe(other)
            ),
            (None, Some(_)) => format!(
                "on {host}, {} wants {thing} {}, and {} wants it {}",
                self.describe(other),
                want_other.unwrap_or_default(),
                self.describe(here),
                want_here.unwrap_or_default()
            ),
            (None, None) => format!(
                "{thing} is managed by both {} and {} on {host}",
                self.describe(other),
                self.describe(here)
            ),
        };
        let help = match managed.thing {
            Thing::Package => {
                "several resources may install a package, or several remove it, but not both: drop one of the two"
            }
            Thing::SysctlKey => {
                "a sysctl key has one owner per host: set the sysctl role's keys through sysctl_settings, or drop one of the two"
            }
            _ => {
                "each path, package, unit, user, group and sysctl key has one owner per host: drop one of the two, or change what a role writes through its variables (docs/roles.md)"
            }
        };
        match at {
            Some(span) => self.playbook.error(span.clone(), message),
            None => InputError::plain(message),
        }
        .with_help(help)
    }
}

/// Where an inline resource names `managed`: the list item, table key or
/// value of the key that holds it (`path`, `name`, `settings`, `groups`), as
/// written; the resource's table when it is not written as such (a template).
fn span_of(node: &Node<'_>, managed: &Managed) -> Range<usize> {
    let fields: &[&str] = match managed.thing {
        Thing::Path => &["path", "name"],
        Thing::SysctlKey => &["settings"],
        Thing::Membership => &["groups"],
        Thing::Package | Thing::Unit | Thing::User | Thing::Group => &["name"],
    };
    let Some(field) = fields.iter().find_map(|f| node.get_ref().get(*f)) else {
        return node.span();
    };
    let key = match managed.thing {
        Thing::Membership => managed.key.rsplit(':').next().unwrap_or_default(),
        _ => managed.key.as_str(),
    };
    match field.get_ref() {
        DeValue::Array(items) => items
            .iter()
            .find(|i| i.get_ref().as_str() == Some(key))
            .map_or(field.span(), |i| i.span()),
        DeValue::Table(t) => t
            .iter()
            .find(|(k, _)| k.get_ref() == key)
            .map_or(field.span(), |(k, _)| k.span()),
        _ => field.span(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::doc::Doc;
    use crate::resource::file::File;
    use crate::resource::json_keys::JsonKeys;
    use crate::resource::package::{Package, PackageState};
    use crate::resource::user::User;

    fn role(role: &'static str, play: usize) -> Owner<'static, 'static> {
        Owner::Role { role, play }
    }

    fn json(path: &str) -> JsonKeys {
        JsonKeys {
            path: path.into(),
            keys: Default::default(),
            validate: None,
            notify: Vec::new(),
        }
    }

    fn member(name: &str, group: &str) -> User {
        User {
            name: name.into(),
            groups: vec![group.into()],
            ..User::default()
        }
    }

    #[test]
    fn shared_things_are_shared_and_the_rest_has_one_owner() {
        let pb = SourceFile::from_text(Path::new("p.toml"), String::new());
        let mut c = Claims::new("web1", &pb);
        c.add(&Package::present(&["curl", "sudo"]), &role("base", 0))
            .unwrap();
        c.add(&Package::present(&["sudo"]), &role("deploy_user", 0))
            .unwrap();
        let latest = Package {
            state: PackageState::Latest,
            ..Package::present(&["curl"])
        };
        c.add(&latest, &role("other", 1)).unwrap();
        c.add(&json("/etc/docker/daemon.json"), &role("docker", 0))
            .unwrap();
        c.add(&json("/etc/docker/daemon.json"), &role("logrotate", 0))
            .unwrap();
        c.add(&member("deploy", "docker"), &role("docker", 0))
            .unwrap();
        c.add(&member("deploy", "docker"), &role("other", 1))
            .unwrap();
        let full = User {
            shell: Some("/bin/bash".into()),
            ..member("deploy", "sudo")
        };
        c.add(&full, &role("deploy_user", 0)).unwrap();

        let absent = Package {
            state: PackageState::Absent,
            ..Package::present(&["curl"])
        };
        let e = c.add(&absent, &role("cleanup", 2)).unwrap_err();
        assert_eq!(
            e.message(),
            "on web1, role base (play 1) wants package `curl` installed, and role cleanup (play 3) wants it absent"
        );
        let file = File::root_owned("/etc/docker/daemon.json", b"{}".to_vec(), 0o644);
        let e = c.add(&file, &role("mine", 1)).unwrap_err();
        assert!(
            e.message().starts_with(
                "path `/etc/docker/daemon.json` is managed by both role docker (play 1) and role mine (play 2)"
            ),
            "{}",
            e.message()
        );
        let e = c.add(&full, &role("again", 1)).unwrap_err();
        assert!(e.message().starts_with("user `deploy` is managed by both"));
    }

    #[test]
    fn an_inline_resource_is_named_by_where_it_names_the_thing() {
        let text = "[[play]]\nhosts = \"all\"\n\n[[play.resources]]\ntype = \"package\"\nname = [\"jq\", \"curl\"]\nstate = \"absent\"\n";
        let pb = SourceFile::from_text(Path::new("p.toml"), text.into());
        let doc = Doc::parse(&pb).unwrap();
        let node = crate::config::playbook::resource_node(&doc, 0, 0).unwrap();
        let mut c = Claims::new("web1", &pb);
        c.add(&Package::present(&["curl"]), &role("base", 0))
            .unwrap();
        let absent = Package {
            state: PackageState::Absent,
            ..Package::present(&["jq", "curl"])
        };
        let e = c.add(&absent, &Owner::Inline { node: &node }).unwrap_err();
        assert_eq!(
            e.message(),
            "p.toml:6:15: package `curl` is wanted absent here, but role base (play 1) wants it installed on web1"
        );
        // The other way round: the error still points at the inline resource.
        let mut c = Claims::new("web1", &pb);
        c.add(&absent, &Owner::Inline { node: &node }).unwrap();
        let e = c
            .add(&Package::present(&["jq"]), &role("tools", 1))
            .unwrap_err();
        assert_eq!(
            e.message(),
            "p.toml:6:9: package `jq` is wanted absent here, but role tools (play 2) wants it installed on web1"
        );
    }
}

//! Built-in roles: named, typed bundles of resources parameterised by variables.
//!
//! A play lists roles by name; each role turns the host's variables (its own
//! defaults under everything the user set) into resources, in order.

use crate::config::VarMap;
use crate::diag::InputResult;
use crate::resource::Resource;

/// What a role sees of the host it is expanded for.
pub struct RoleContext<'a> {
    pub host: &'a crate::config::Host,
    pub vars: &'a VarMap,
    pub inventory: &'a crate::config::Inventory,
}

pub trait Role: Sync {
    fn name(&self) -> &'static str;
    /// One line for `--help` style listings.
    fn about(&self) -> &'static str;
    /// Variables the role reads, with their defaults (lowest precedence).
    fn defaults(&self) -> VarMap;
    fn resources(&self, ctx: &RoleContext<'_>) -> InputResult<Vec<Box<dyn Resource>>>;
}

/// Every built-in role, in the order they are documented.
static ROLES: &[&dyn Role] = &[];

pub fn lookup(name: &str) -> Option<&'static dyn Role> {
    ROLES.iter().copied().find(|r| r.name() == name)
}

pub fn known_help() -> String {
    if ROLES.is_empty() {
        return "this build has no built-in roles; declare resources in the play instead".into();
    }
    let names: Vec<&str> = ROLES.iter().map(|r| r.name()).collect();
    format!("built-in roles: {}", names.join(", "))
}

//! slipway: converge Ubuntu 24.04 and Debian 12 hosts into hardened Docker
//! Swarm nodes over SSH. Observe, plan, apply are separate steps; the plan is
//! a value that can be printed, saved, compared and applied.

pub mod audit;
pub mod cli;
pub mod config;
pub mod desired;
pub mod diag;
pub mod diff;
pub mod digest;
pub mod engine;
pub mod facts;
pub mod notify;
pub mod offline;
pub mod plan;
pub mod probe;
pub mod redact;
pub mod render;
pub mod resource;
pub mod roles;
pub mod shell;
pub mod template;
pub mod transport;

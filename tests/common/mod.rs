//! Helpers shared by integration tests (`mod common;` in a test file).
// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

pub mod lab;
pub mod local;
pub mod notify;
pub mod receiver;
pub mod registry;
pub mod run;
pub mod scratch;

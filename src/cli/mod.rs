//! The command-line verbs, one file each.

pub mod admin;
pub mod common;
pub mod config;
pub mod gc;
pub mod image;
pub mod migrate;
pub mod model;
pub mod remote;
pub mod render;
pub mod run;
pub mod safe_text;
pub mod sandbox;
pub mod serve;
pub mod upstream;

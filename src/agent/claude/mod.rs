//! The Claude Code adapter: how to start `claude` headless and how to read its
//! `--output-format stream-json --verbose` output.
//!
//! Checked against Claude Code 2.1.330 (see `tests/fixtures/` for real output).
//! The CLI adds fields and line types in every release, so the parser maps what it
//! knows onto [`AgentEvent`](super::AgentEvent)s and keeps everything else as
//! `Unknown` or `Raw`; no input makes it fail.

mod command;
mod describe;
pub mod managed;
mod parse;
pub mod session;
mod surrogates;
mod text;

pub use command::{Session, command};
pub use describe::describe_tool_call;
pub use parse::StreamParser;

#[cfg(test)]
mod tests;

//! Executions end to end: the real `agentd` binary, the real Docker engine, the
//! real Claude Code CLI in the agent image; only the model is scripted.

#[path = "../common/mod.rs"]
mod common;

mod artifacts;
mod cleanup;
mod gateway;
mod happy_path;
mod limits;
mod runtime;
mod security;
mod support;

//! Executions end to end: the real `agentd` binary, the real Docker engine, the
//! real Claude Code CLI in the agent image; only the model is scripted.

#[path = "../common/mod.rs"]
mod common;

mod artifacts;
mod cleanup;
mod collection;
mod conversation;
mod exhaustion;
mod forgery;
mod gateway;
mod happy_path;
mod hooks;
mod lifecycle;
mod limits;
mod logs;
mod narrow_door;
mod recording;
mod runtime;
mod security;
mod support;
mod templates;
mod terminal;
mod tool_calls;
mod tool_policy;

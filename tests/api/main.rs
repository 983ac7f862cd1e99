//! The HTTP API end to end: a real server on 127.0.0.1:0 in front of a real
//! supervisor (SQLite, the Docker engine, the agent image), driven with reqwest
//! and a real SSE client; only the model is scripted.

#[path = "../common/mod.rs"]
mod common;

mod cancel;
mod conversations;
mod delivery;
mod disabled;
mod errors;
mod events;
mod executions;
mod files;
mod isolation;
mod leaks;
mod metrics;
mod policy;
mod probes;
mod replay;
mod sources;
mod streams;
mod support;
mod webhooks;

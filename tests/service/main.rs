//! The supervisor as a process: `agentd serve` killed, signalled and restarted
//! against the real Docker engine and the real Claude Code CLI (only the model
//! is scripted), and `agentd run --server` against it.

#[path = "../common/mod.rs"]
mod common;

mod claiming;
mod fairness;
mod fencing;
mod flood;
mod recovery;
mod remote;
mod replicas;
mod s3;
mod shared_results;
mod shutdown;
mod support;
mod tenants;
mod webhooks;

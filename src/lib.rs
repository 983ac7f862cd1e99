//! agentd: runs AI coding agents against git repositories, one hardened Docker
//! container per execution.
//!
//! The crate is one library (this seam, used by the binary and the tests) and one
//! binary (`src/main.rs`). Rooms:
//! - [`execution`]: the domain (requests, status, events, summary) and the runner
//!   that takes one execution from request to summary.
//! - [`engine`]: everything that talks to the Docker engine.
//! - [`agent`]: agent adapters (Claude Code) and their event vocabulary.
//! - [`api`]: the HTTP API (axum): routes, SSE, error mapping, OpenAPI.
//! - [`gateway`]: the per-execution LLM broker on a unix socket.
//! - [`git`]: the host-side mirror cache.
//! - [`image`]: building the agent image offline.
//! - [`scripted`]: the scripted model server used by tests and the offline demo.
//! - [`metrics`]: Prometheus counters.
//! - [`open_files`]: raising agentd's own descriptor limit at start-up.
//! - [`store`]: persistence (SQLite or PostgreSQL), the source of truth.
//! - [`supervisor`]: the long-running service: queue, scheduler, reconciliation.

pub mod agent;
pub mod api;
pub mod client;
pub mod engine;
pub mod execution;
pub mod gateway;
pub mod git;
pub mod image;
pub mod metrics;
pub mod open_files;
pub mod runner;
pub mod scripted;
pub mod store;
pub mod supervisor;
pub mod wire;

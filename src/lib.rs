//! agentd: runs AI coding agents against git repositories, one hardened Docker
//! container per execution.
//!
//! The crate is one library (this seam, used by the binary and the tests) and one
//! binary (`src/main.rs`). Rooms, from the edges down (each uses only rooms below
//! it; `tests/architecture.rs` checks it):
//! - [`client`]: the HTTP client of the API (`agentd run --server`).
//! - [`api`]: the HTTP API (axum): routes, SSE, error mapping, OpenAPI.
//! - [`supervisor`]: the service: admission, queue, scheduler, reconciliation,
//!   the supervisor's identity.
//! - [`runner`]: what runs one execution, phase by phase.
//! - [`image`]: building the agent image offline; [`scripted`]: the scripted
//!   model used by tests and the offline demo (the command line only).
//! - [`engine`]: everything that talks to the Docker engine.
//! - [`gateway`]: the per-execution LLM broker on a unix socket.
//! - [`git`]: the host-side mirror cache and bundle verification.
//! - [`agent`]: agent adapters (Claude Code).
//! - [`store`]: persistence (SQLite or PostgreSQL), the source of truth.
//! - [`tenancy`]: tenants, keys, principals and the audit log's vocabulary.
//! - [`execution`]: the domain — what an execution is.
//! - [`wire`]: the Messages API's wire format; [`metrics`]: Prometheus
//!   counters; [`open_files`]: the descriptor limit.

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
pub mod results;
pub mod runner;
pub mod scripted;
pub mod store;
pub mod supervisor;
pub mod tenancy;
pub mod wire;

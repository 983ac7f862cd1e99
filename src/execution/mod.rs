//! The domain of one execution: what was asked, where it is, what it reported,
//! and the runner that takes it from request to summary.

pub mod bounds;
pub mod collect;
pub mod driver;
mod event;
pub mod hub;
pub mod instance;
pub mod layout;
mod prepare;
pub use prepare::is_execution_id;
mod pump;
pub mod recorder;
mod request;
mod runner;
mod sandbox;
pub use sandbox::sweep_workspaces;
mod status;
pub mod summary;
pub mod verdict;

pub use event::{Event, EventBody, SupervisorEvent};
pub use recorder::{EventObserver, Silent};
pub use request::{
    DEFAULT_TIMEOUT, ExecutionRequest, InvalidField, Limits, MAX_PROMPT_BYTES, parse_bytes,
};
pub use runner::{Job, Runner, RunnerConfig, SUPERVISOR_RESTARTED, branch_name};
pub use status::{Status, UnknownStatus};
pub use summary::Summary;

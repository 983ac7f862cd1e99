//! Everything that talks to the Docker engine: the hardened spec, container life
//! cycle, log streams, tar downloads, reconciliation by label and the sandbox's
//! OCI runtime checked at start-up.

pub mod archive;
mod docker;
mod error;
mod images;
pub mod labels;
pub mod layers;
mod logs;
mod reconcile;
pub mod runtime;
pub mod spec;
pub mod workspace;

pub use docker::{Engine, ExitState};
pub use error::EngineError;
pub use images::{FailedStep, ImageBuild, ImageFacts};
pub use logs::{DEFAULT_MAX_LINE_BYTES, LineSplitter, LogLine, LogStream};
pub use reconcile::{ManagedResource, ManagedResources};
pub use runtime::{RuntimeError, SandboxRuntime, is_gvisor_name};
pub use spec::{Bind, HardenedSpec};
pub use workspace::WorkspaceKind;

impl EngineError {
    /// True when the engine answered "no such container/volume/path".
    pub fn is_not_found(&self) -> bool {
        use std::error::Error as _;
        self.source()
            .and_then(|source| source.downcast_ref::<bollard::errors::Error>())
            .is_some_and(error::is_not_found)
    }
}

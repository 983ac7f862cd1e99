//! The labels agentd puts on everything it creates on the Docker engine, so it
//! can always find it again (after a crash, on another replica, by an operator).

use std::collections::HashMap;

/// Present (`true`) on every container and volume agentd creates.
pub const MANAGED: &str = "agentd.managed";
/// The execution a resource belongs to.
pub const EXECUTION: &str = "agentd.execution";
/// The supervisor process that created it; used to find orphans of a dead one.
pub const SUPERVISOR: &str = "agentd.supervisor";
/// The host the supervisor runs on.
pub const HOST: &str = "agentd.host";
/// The run directory holding the supervisor's liveness lock. Orphans are only
/// judged by a supervisor sharing that host and run directory.
pub const RUN_DIR: &str = "agentd.run-dir";
/// What the resource is for: `agent` or `collector` for containers, `workspace` for volumes.
pub const ROLE: &str = "agentd.role";

/// Who created a resource: enough to tell later whether its creator still lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The supervisor's id.
    pub supervisor: String,
    /// The host it runs on.
    pub host: String,
    /// Its run directory.
    pub run_dir: String,
}

impl Owner {
    /// The label set for one resource of one execution.
    pub fn labels(&self, execution: &str, role: &str) -> HashMap<String, String> {
        HashMap::from([
            (MANAGED.to_string(), "true".to_string()),
            (EXECUTION.to_string(), execution.to_string()),
            (SUPERVISOR.to_string(), self.supervisor.clone()),
            (HOST.to_string(), self.host.clone()),
            (RUN_DIR.to_string(), self.run_dir.clone()),
            (ROLE.to_string(), role.to_string()),
        ])
    }
}

/// A Docker `label` filter value matching everything agentd manages.
pub fn managed_filter() -> String {
    format!("{MANAGED}=true")
}

/// A Docker `label` filter value matching one execution's resources.
pub fn execution_filter(execution: &str) -> String {
    format!("{EXECUTION}={execution}")
}

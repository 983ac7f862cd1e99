//! The names an execution's things go by: its branch, its containers and
//! volume, and the uids its sandbox runs as.

/// The non-root uid (and gid) the agent runs as in its sandbox; the agent image
/// creates it.
pub const AGENT_UID: u32 = 10001;

/// A group only agentd's collection step joins: it may use the workspace's
/// reserved blocks, so work can be committed even when the agent filled the disk.
pub const COLLECT_GID: u32 = 10002;

/// True for an execution id (a UUID), as opposed to a file path.
pub fn is_execution_id(text: &str) -> bool {
    uuid::Uuid::parse_str(text).is_ok()
}

/// The branch holding an execution's work: `agent/<id>`.
pub fn branch_name(id: &str) -> String {
    format!("agent/{id}")
}

/// The agent container's name.
pub fn container_name(id: &str) -> String {
    format!("agentd-{id}")
}

/// The collector container's name (commits the work of a killed agent).
pub fn collector_name(id: &str) -> String {
    format!("agentd-{id}-collect")
}

/// The workspace volume's name.
pub fn volume_name(id: &str) -> String {
    format!("agentd-{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_id() {
        let id = "01a22c2b-6553-72b9-a178-64dd1e0160b9";
        assert!(is_execution_id(id));
        assert!(!is_execution_id("/tmp/cassette.jsonl"));
        assert_eq!(branch_name(id), format!("agent/{id}"));
        assert_eq!(container_name(id), format!("agentd-{id}"));
        assert_eq!(collector_name(id), format!("agentd-{id}-collect"));
        assert_eq!(volume_name(id), format!("agentd-{id}"));
    }
}

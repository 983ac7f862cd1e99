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

/// True for a name git takes as a branch, tag or commit and cannot read as an
/// option: not empty, at most 255 bytes, no leading `-`, no `..`, no control
/// characters (NUL included), no space or `~^:?*[\`.
pub fn is_ref_name(name: &str) -> bool {
    !(name.is_empty()
        || name.starts_with('-')
        || name.len() > 255
        || name.contains("..")
        || name
            .chars()
            .any(|c| c.is_control() || " ~^:?*[\\".contains(c)))
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

/// The container that checks the repository out into a checkout template
/// (see `engine::layers`) before the execution's own starts.
pub fn template_builder_name(id: &str) -> String {
    format!("agentd-{id}-template")
}

/// The workspace volume's name.
pub fn volume_name(id: &str) -> String {
    format!("agentd-{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_names_git_would_misread_are_not_names() {
        for good in ["main", "v1.2.3", "feature/x", "0123abcd"] {
            assert!(is_ref_name(good), "{good}");
        }
        for bad in [
            "", "-x", "a..b", "a\0b", "a b", "a:b", "a\nb", "a~1", "a\\b",
        ] {
            assert!(!is_ref_name(bad), "{bad:?}");
        }
    }

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

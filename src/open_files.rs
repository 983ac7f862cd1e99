//! agentd's own descriptor limit. Every execution's gateway connections, the
//! Docker engine's, the database's and the API's all come out of one table;
//! the soft limit many systems start processes with (1024) is far below what
//! the hard limit allows, so it is raised to the hard limit at start-up.

/// The open-files limit after [`raise_to_hard_limit`]: soft and hard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFilesLimit {
    /// The limit now in force.
    pub soft: u64,
    /// The ceiling an unprivileged process may raise it to.
    pub hard: u64,
}

/// Raises `RLIMIT_NOFILE`'s soft limit to its hard limit (never above it, so
/// no privilege is needed) and returns both.
pub fn raise_to_hard_limit() -> std::io::Result<OpenFilesLimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) writes one rlimit into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit(2) reads one rlimit from the struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        limit = raised;
    }
    Ok(OpenFilesLimit {
        soft: limit.rlim_cur,
        hard: limit.rlim_max,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_reaches_the_hard_limit() {
        let limit = raise_to_hard_limit().unwrap();
        assert_eq!(limit.soft, limit.hard);
        assert_eq!(raise_to_hard_limit().unwrap(), limit);
    }
}

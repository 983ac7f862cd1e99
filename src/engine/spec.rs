//! The hardened container specification every execution runs under.
//!
//! Hardening is the default and cannot be switched off from here: there is no
//! setter for privileges, capabilities or networking. What may be tuned (memory,
//! CPU, pids, tmpfs sizes, the OCI runtime) has a setter that names its default.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountType, ResourcesUlimits,
};

/// Where the workspace volume is mounted; the repository is cloned below it.
pub const WORKSPACE: &str = "/workspace";
use crate::execution::AGENT_UID;
/// The only capabilities a sandbox starts with, held by its init and driver
/// (uid 0, no file, kill or trace powers) to drop to [`AGENT_UID`] with none.
pub const DRIVER_CAPABILITIES: [&str; 3] = ["SETUID", "SETGID", "SETPCAP"];
/// The agent's home directory (a size-capped tmpfs).
pub const AGENT_HOME: &str = "/home/agent";

/// A bind mount from the host into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// Path on the Docker host.
    pub host: String,
    /// Path inside the container.
    pub container: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// Everything needed to create one hardened container.
///
/// Fixed, whatever the setters: all capabilities dropped but the three the
/// driver needs to switch users ([`DRIVER_CAPABILITIES`]; the agent itself runs
/// as [`AGENT_UID`] with none, not even in its bounding set), `no-new-privileges`,
/// read-only root filesystem, `network_mode: none`, an init process as PID 1
/// that the agent's uid cannot trace or signal, no privileged mode, no devices,
/// no Docker socket, a private IPC namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct HardenedSpec {
    image: String,
    cmd: Vec<String>,
    env: Vec<String>,
    working_dir: String,
    labels: HashMap<String, String>,
    workspace_volume: Option<String>,
    binds: Vec<Bind>,
    memory_bytes: i64,
    nano_cpus: i64,
    pids_limit: i64,
    nofile: i64,
    tmp_bytes: u64,
    home_bytes: u64,
    runtime: Option<String>,
    gvisor: bool,
    log_max_bytes: u64,
    streaming_input: bool,
}

/// Default memory limit, with no swap on top: the execution's default.
pub const DEFAULT_MEMORY_BYTES: i64 = crate::execution::DEFAULT_MEMORY_BYTES as i64;
/// Default CPU quota: the execution's default.
pub const DEFAULT_CPUS: f64 = crate::execution::DEFAULT_CPUS;
/// Default process/thread limit: the execution's default.
pub const DEFAULT_PIDS: i64 = crate::execution::DEFAULT_PIDS as i64;
/// Default open-files limit (soft = hard).
pub const DEFAULT_NOFILE: i64 = 4096;
/// Default size of the /tmp tmpfs: 64 MiB.
pub const DEFAULT_TMP_BYTES: u64 = 64 << 20;
/// Default size of the HOME tmpfs: 256 MiB (the CLI keeps its state and transcripts there).
pub const DEFAULT_HOME_BYTES: u64 = 256 << 20;
/// Default cap on the container's log file before Docker rotates it: 256 MiB.
/// The driver's relay bounds what the agent prints (32 MiB, 100,000 lines), and
/// the log file's JSON framing can make that several times larger; the cap is
/// set so the log never rotates under a reader (a rotation loses lines).
pub const DEFAULT_LOG_MAX_BYTES: u64 = 256 << 20;

impl HardenedSpec {
    /// A spec running `cmd` in `image` with every default.
    pub fn new(image: impl Into<String>, cmd: Vec<String>) -> Self {
        HardenedSpec {
            image: image.into(),
            cmd,
            env: Vec::new(),
            working_dir: WORKSPACE.to_string(),
            labels: HashMap::new(),
            workspace_volume: None,
            binds: Vec::new(),
            memory_bytes: DEFAULT_MEMORY_BYTES,
            nano_cpus: cpus_to_nano(DEFAULT_CPUS),
            pids_limit: DEFAULT_PIDS,
            nofile: DEFAULT_NOFILE,
            tmp_bytes: DEFAULT_TMP_BYTES,
            home_bytes: DEFAULT_HOME_BYTES,
            runtime: None,
            gvisor: false,
            log_max_bytes: DEFAULT_LOG_MAX_BYTES,
            streaming_input: false,
        }
    }

    /// Adds an environment variable (`NAME=value`). None by default.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push(format!("{name}={value}"));
        self
    }

    /// Working directory. Default: [`WORKSPACE`].
    pub fn working_dir(mut self, dir: impl Into<String>) -> Self {
        self.working_dir = dir.into();
        self
    }

    /// Labels for the container. Default: none (callers pass [`super::labels::Owner::labels`]).
    pub fn labels(mut self, labels: HashMap<String, String>) -> Self {
        self.labels = labels;
        self
    }

    /// The named volume mounted read-write at [`WORKSPACE`]. Default: none.
    pub fn workspace_volume(mut self, name: impl Into<String>) -> Self {
        self.workspace_volume = Some(name.into());
        self
    }

    /// Adds a bind mount. Default: none.
    pub fn bind(mut self, bind: Bind) -> Self {
        self.binds.push(bind);
        self
    }

    /// Memory limit in bytes; swap is set equal so none is usable. Default: 2 GiB.
    pub fn memory_bytes(mut self, bytes: u64) -> Self {
        self.memory_bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        self
    }

    /// CPU quota in cores (fractions allowed). Default: 1.
    pub fn cpus(mut self, cpus: f64) -> Self {
        self.nano_cpus = cpus_to_nano(cpus);
        self
    }

    /// Maximum number of processes and threads. Default: 256.
    pub fn pids_limit(mut self, pids: u32) -> Self {
        self.pids_limit = i64::from(pids);
        self
    }

    /// Size cap of the /tmp tmpfs. Default: 64 MiB.
    pub fn tmp_bytes(mut self, bytes: u64) -> Self {
        self.tmp_bytes = bytes;
        self
    }

    /// Size cap of the HOME tmpfs. Default: 256 MiB.
    pub fn home_bytes(mut self, bytes: u64) -> Self {
        self.home_bytes = bytes;
        self
    }

    /// Opens the container's standard input for one attachment (agentd's):
    /// it reaches the driver, which hands it to the agent, and closes when
    /// agentd lets go of it. Default: no standard input.
    pub fn streaming_input(mut self) -> Self {
        self.streaming_input = true;
        self
    }

    /// OCI runtime, e.g. `runsc` for gVisor. Default: the engine's default (runc).
    pub fn runtime(mut self, runtime: Option<String>) -> Self {
        self.runtime = runtime;
        self
    }

    /// The runtime is gVisor: the engine's pids limit is widened to cover
    /// gVisor's own host threads (see [`super::runtime::gvisor_host_pids`]).
    /// Default: false.
    pub fn gvisor(mut self, gvisor: bool) -> Self {
        self.gvisor = gvisor;
        self
    }

    /// The image this spec runs.
    pub fn image(&self) -> &str {
        &self.image
    }

    /// The Docker Engine API request body for this spec.
    pub fn to_create_body(&self) -> ContainerCreateBody {
        let mut mounts = Vec::new();
        if let Some(volume) = &self.workspace_volume {
            mounts.push(Mount {
                target: Some(WORKSPACE.to_string()),
                source: Some(volume.clone()),
                typ: Some(MountType::VOLUME),
                read_only: Some(false),
                ..Default::default()
            });
        }
        for bind in &self.binds {
            mounts.push(Mount {
                target: Some(bind.container.clone()),
                source: Some(bind.host.clone()),
                typ: Some(MountType::BIND),
                read_only: Some(bind.read_only),
                ..Default::default()
            });
        }
        let uid = AGENT_UID;
        let tmpfs = HashMap::from([
            (
                "/tmp".to_string(),
                format!("rw,nosuid,nodev,exec,size={},mode=1777", self.tmp_bytes),
            ),
            (
                AGENT_HOME.to_string(),
                format!(
                    "rw,nosuid,nodev,exec,size={},uid={uid},gid={uid},mode=0700",
                    self.home_bytes
                ),
            ),
        ]);
        let host_config = HostConfig {
            network_mode: Some("none".to_string()),
            cap_drop: Some(vec!["ALL".to_string()]),
            cap_add: Some(DRIVER_CAPABILITIES.iter().map(|c| c.to_string()).collect()),
            security_opt: Some(vec!["no-new-privileges:true".to_string()]),
            readonly_rootfs: Some(true),
            privileged: Some(false),
            init: Some(true),
            ipc_mode: Some("private".to_string()),
            memory: Some(self.memory_bytes),
            memory_swap: Some(self.memory_bytes),
            nano_cpus: Some(self.nano_cpus),
            pids_limit: Some(if self.gvisor {
                super::runtime::gvisor_host_pids(self.pids_limit)
            } else {
                self.pids_limit
            }),
            ulimits: Some(vec![ResourcesUlimits {
                name: Some("nofile".to_string()),
                soft: Some(self.nofile),
                hard: Some(self.nofile),
            }]),
            tmpfs: Some(tmpfs),
            mounts: Some(mounts),
            runtime: self.runtime.clone(),
            auto_remove: Some(false),
            log_config: Some(HostConfigLogConfig {
                typ: Some("json-file".to_string()),
                config: Some(HashMap::from([
                    ("max-size".to_string(), self.log_max_bytes.to_string()),
                    ("max-file".to_string(), "1".to_string()),
                ])),
            }),
            ..Default::default()
        };
        ContainerCreateBody {
            image: Some(self.image.clone()),
            cmd: Some(self.cmd.clone()),
            env: Some(self.env.clone()),
            user: Some("0:0".to_string()),
            working_dir: Some(self.working_dir.clone()),
            labels: Some(self.labels.clone()),
            network_disabled: Some(true),
            attach_stdin: Some(self.streaming_input),
            open_stdin: Some(self.streaming_input),
            stdin_once: Some(self.streaming_input),
            tty: Some(false),
            host_config: Some(host_config),
            ..Default::default()
        }
    }
}

fn cpus_to_nano(cpus: f64) -> i64 {
    (cpus * 1e9).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    #[test]
    fn default_request_is_fully_hardened() {
        let spec = HardenedSpec::new("agentd-agent:test", vec!["true".into()])
            .env("A", "b")
            .labels(
                crate::engine::labels::Owner {
                    supervisor: "s1".into(),
                    host: "h1".into(),
                    run_dir: "/run/agentd".into(),
                }
                .labels("e1", "agent"),
            )
            .workspace_volume("agentd-e1")
            .bind(Bind {
                host: "/var/lib/agentd/mirrors/x.git".into(),
                container: "/mirror/repo.git".into(),
                read_only: true,
            });
        let body = serde_json::to_value(spec.to_create_body()).unwrap();
        assert_eq!(
            body,
            json!({
                "User": "0:0",
                "AttachStdin": false,
                "Tty": false,
                "OpenStdin": false,
                "StdinOnce": false,
                "Env": ["A=b"],
                "Cmd": ["true"],
                "Image": "agentd-agent:test",
                "WorkingDir": "/workspace",
                "NetworkDisabled": true,
                "Labels": {
                    "agentd.managed": "true",
                    "agentd.execution": "e1",
                    "agentd.supervisor": "s1",
                    "agentd.host": "h1",
                    "agentd.run-dir": "/run/agentd",
                    "agentd.role": "agent"
                },
                "HostConfig": {
                    "Memory": 2147483648i64,
                    "MemorySwap": 2147483648i64,
                    "NanoCpus": 1000000000,
                    "Init": true,
                    "PidsLimit": 256,
                    "Ulimits": [{"Name": "nofile", "Soft": 4096, "Hard": 4096}],
                    "LogConfig": {"Type": "json-file", "Config": {"max-size": "268435456", "max-file": "1"}},
                    "NetworkMode": "none",
                    "AutoRemove": false,
                    "Mounts": [
                        {"Target": "/workspace", "Source": "agentd-e1", "Type": "volume", "ReadOnly": false},
                        {"Target": "/mirror/repo.git", "Source": "/var/lib/agentd/mirrors/x.git", "Type": "bind", "ReadOnly": true}
                    ],
                    "CapDrop": ["ALL"],
                    "CapAdd": ["SETUID", "SETGID", "SETPCAP"],
                    "IpcMode": "private",
                    "Privileged": false,
                    "ReadonlyRootfs": true,
                    "SecurityOpt": ["no-new-privileges:true"],
                    "Tmpfs": {
                        "/tmp": "rw,nosuid,nodev,exec,size=67108864,mode=1777",
                        "/home/agent": "rw,nosuid,nodev,exec,size=268435456,uid=10001,gid=10001,mode=0700"
                    }
                }
            })
        );
    }

    #[test]
    fn limits_and_runtime_are_applied() {
        let body = HardenedSpec::new("img", vec![])
            .memory_bytes(64 << 20)
            .cpus(0.5)
            .pids_limit(32)
            .runtime(Some("runsc".into()))
            .to_create_body();
        let host = body.host_config.unwrap();
        assert_eq!(host.memory, Some(64 << 20));
        assert_eq!(host.memory_swap, Some(64 << 20));
        assert_eq!(host.nano_cpus, Some(500_000_000));
        assert_eq!(host.pids_limit, Some(32));
        assert_eq!(host.runtime.as_deref(), Some("runsc"));
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_string()]));
    }

    #[test]
    fn under_gvisor_the_pids_limit_covers_gvisors_own_threads() {
        let spec = HardenedSpec::new("img", vec![])
            .pids_limit(256)
            .runtime(Some("runsc".into()));
        let plain = spec.clone().to_create_body().host_config.unwrap();
        assert_eq!(plain.pids_limit, Some(256));
        let gvisor = spec.gvisor(true).to_create_body().host_config.unwrap();
        assert_eq!(gvisor.pids_limit, Some(256 * 16 + 256));
        assert_eq!(gvisor.runtime.as_deref(), Some("runsc"));
    }
}

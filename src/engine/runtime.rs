//! The OCI runtime sandboxes run under, checked against the engine before
//! anything is created: a runtime the engine does not have, or gVisor registered
//! without the arguments agentd's sandbox needs, is refused at start-up with the
//! fix spelled out, instead of failing every execution later with the engine's
//! own message ("cannot run with network enabled in root network namespace").

use bollard::models::{Runtime, SystemInfo};

use super::docker::Engine;
use super::error::EngineError;

/// The `runtimeArgs` gVisor's runtime must be registered with for agentd's
/// sandbox: `--network=none` (the sandbox has no network; without it runsc
/// refuses to start a container whose network is disabled) and
/// `--host-uds=open` (the sandbox reaches agentd's gateway through a
/// bind-mounted unix socket; without it connecting is not permitted).
pub const GVISOR_RUNTIME_ARGS: [&str; 2] = ["--network=none", "--host-uds=open"];

/// Host tasks gVisor's ptrace platform (Debian's runsc default) spends per
/// process in the sandbox: each address space gets a stub process with a traced
/// thread per Sentry thread that ran it (about 10 measured on 2 cores), so the
/// engine's pids limit, which counts host tasks, must be scaled. With margin.
pub const GVISOR_HOST_TASKS_PER_PROCESS: i64 = 16;

/// Host tasks gVisor uses before the first sandbox process (about 65
/// measured: the Sentry's threads and the gofer). With margin.
pub const GVISOR_HOST_TASKS_BASE: i64 = 256;

/// The pids limit to give the engine for a sandbox of `pids` processes under
/// gVisor (256 → 4352). gVisor does not fail `fork` at the limit: a sandbox
/// that outgrows it is stopped by gVisor (the execution fails), the host is
/// still bounded.
pub fn gvisor_host_pids(pids: i64) -> i64 {
    pids.saturating_mul(GVISOR_HOST_TASKS_PER_PROCESS)
        .saturating_add(GVISOR_HOST_TASKS_BASE)
}

/// Where Docker reads its configuration unless dockerd is started with
/// `--config-file`.
pub const DAEMON_JSON: &str = "/etc/docker/daemon.json";

/// The runtime executions will use, as the engine registered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxRuntime {
    /// The runtime's name: the one asked for, else the engine's default
    /// (`runc` when the engine does not say).
    pub name: String,
    /// True for gVisor (the name or the binary ends in `runsc`).
    pub gvisor: bool,
}

/// Why a runtime cannot run agentd's sandbox.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The engine could not be asked.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The engine has no runtime by that name.
    #[error(
        "the Docker engine has no runtime named {name:?} (it has: {}); register it in {} \
         under \"runtimes\" and reload the engine, or choose one of those with --runtime / AGENTD_RUNTIME",
        listed(.registered),
        DAEMON_JSON
    )]
    Unregistered {
        /// The runtime asked for.
        name: String,
        /// The runtimes the engine has, sorted.
        registered: Vec<String>,
    },
    /// gVisor is registered without an argument the sandbox needs.
    #[error(
        "the Docker runtime {name:?} ({path}) is gVisor but is registered without {} ({}).\n\
         Register it so in {} (keep the file's other settings):\n{snippet}\n\
         then make the engine reload its runtimes: sudo kill -HUP $(pidof dockerd) \
         (or: sudo systemctl reload docker)",
        .missing.iter().map(|m| m.arg).collect::<Vec<_>>().join(" and "),
        .missing.iter().map(|m| format!("{}: {}", m.arg, m.why)).collect::<Vec<_>>().join("; "),
        DAEMON_JSON
    )]
    Misconfigured {
        /// The runtime's name.
        name: String,
        /// Its binary, as registered.
        path: String,
        /// What is missing, and why it matters.
        missing: Vec<MissingArg>,
        /// The `"runtimes"` entry that works, ready to paste.
        snippet: String,
    },
}

/// A runtime argument gVisor lacks for agentd's sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingArg {
    /// The argument to add, e.g. `--network=none`.
    pub arg: &'static str,
    /// What goes wrong without it ("otherwise …").
    pub why: &'static str,
}

fn listed(names: &[String]) -> String {
    if names.is_empty() {
        "none listed".to_string()
    } else {
        names.join(", ")
    }
}

const NETWORK: MissingArg = MissingArg {
    arg: "--network=none",
    why: "otherwise gVisor refuses to start a sandbox that has no network, \
          \"cannot run with network enabled in root network namespace\"",
};

const HOST_UDS: MissingArg = MissingArg {
    arg: "--host-uds=open",
    why: "otherwise the sandbox may not connect to agentd's model socket",
};

impl Engine {
    /// Asks the engine which runtimes it has and checks the one executions will
    /// use: `wanted` (from `--runtime`), else the engine's default.
    pub async fn sandbox_runtime(
        &self,
        wanted: Option<&str>,
    ) -> Result<SandboxRuntime, RuntimeError> {
        let info = self.docker().info().await.map_err(EngineError::Info)?;
        choose_runtime(&info, wanted)
    }
}

/// The decision, on what the engine's `GET /info` answered.
pub fn choose_runtime(
    info: &SystemInfo,
    wanted: Option<&str>,
) -> Result<SandboxRuntime, RuntimeError> {
    let empty = Default::default();
    let runtimes = info.runtimes.as_ref().unwrap_or(&empty);
    let name = wanted
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .or_else(|| info.default_runtime.clone())
        .unwrap_or_else(|| "runc".to_string());
    let Some(runtime) = runtimes.get(&name) else {
        if wanted.is_none_or(str::is_empty) {
            // The engine's implicit default: nothing to check against.
            return Ok(SandboxRuntime {
                gvisor: is_gvisor(&name, None),
                name,
            });
        }
        let mut registered: Vec<String> = runtimes.keys().cloned().collect();
        registered.sort();
        return Err(RuntimeError::Unregistered { name, registered });
    };
    let gvisor = is_gvisor(&name, runtime.path.as_deref());
    // A runtime without a path is a containerd shim (Docker 23+ `runtimeType`):
    // its runsc flags live in the shim's own configuration, which the engine
    // does not show, so there is nothing to check here.
    if gvisor && runtime.path.is_some() {
        let missing = missing_gvisor_args(runtime.runtime_args.as_deref().unwrap_or_default());
        if !missing.is_empty() {
            return Err(RuntimeError::Misconfigured {
                snippet: snippet(&name, runtime),
                path: runtime.path.clone().unwrap_or_default(),
                name,
                missing,
            });
        }
    }
    Ok(SandboxRuntime { name, gvisor })
}

/// Whether a runtime of this name is gVisor (its binary, `runsc`, in the name).
pub fn is_gvisor_name(name: &str) -> bool {
    is_gvisor(name, None)
}

/// gVisor is known by its binary, `runsc`, in the runtime's name or path.
fn is_gvisor(name: &str, path: Option<&str>) -> bool {
    let binary = path
        .map(|path| path.rsplit('/').next().unwrap_or(path))
        .unwrap_or_default();
    name.ends_with("runsc") || binary.ends_with("runsc")
}

fn missing_gvisor_args(args: &[String]) -> Vec<MissingArg> {
    let mut missing = Vec::new();
    if flag_value(args, "network") != Some("none") {
        missing.push(NETWORK);
    }
    // `all` allows opening host sockets too (and creating them).
    if !matches!(flag_value(args, "host-uds"), Some("open" | "all")) {
        missing.push(HOST_UDS);
    }
    missing
}

/// The value runsc takes for a flag, read as Go's flag package reads it
/// (`-flag=v`, `--flag=v`, `-flag v`, `--flag v`; the last one wins).
fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let mut value = None;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let Some(rest) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            continue;
        };
        if let Some(found) = rest
            .strip_prefix(flag)
            .and_then(|tail| tail.strip_prefix('='))
        {
            value = Some(found);
        } else if rest == flag {
            value = iter.next().map(String::as_str);
        }
    }
    value
}

/// True when `arg` (and, in the two-argument form, the next one) sets `flag`.
fn sets_flag(arg: &str, flag: &str) -> bool {
    let rest = arg
        .strip_prefix("--")
        .or_else(|| arg.strip_prefix('-'))
        .unwrap_or_default();
    rest == flag || rest.strip_prefix(flag).is_some_and(|t| t.starts_with('='))
}

/// The runtime's entry with its other arguments kept and the two the sandbox
/// needs set, as JSON to paste under `"runtimes"`.
fn snippet(name: &str, runtime: &Runtime) -> String {
    let mut args: Vec<String> = Vec::new();
    let mut skip_value = false;
    for arg in runtime.runtime_args.as_deref().unwrap_or_default() {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        if ["network", "host-uds"].iter().any(|f| sets_flag(arg, f)) {
            skip_value = !arg.contains('=');
            continue;
        }
        args.push(arg.clone());
    }
    args.extend(GVISOR_RUNTIME_ARGS.iter().map(|a| a.to_string()));
    let entry = serde_json::json!({
        "runtimes": {
            name: {
                "path": runtime.path.as_deref().unwrap_or("/usr/bin/runsc"),
                "runtimeArgs": args,
            }
        }
    });
    serde_json::to_string_pretty(&entry).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `GET /v1.41/info` of Debian's Docker 20.10 with gVisor (Debian's runsc)
    /// registered three ways: `runsc` as agentd needs it, `runsc-bare` without
    /// arguments, `runsc-no-uds` with `--network=none` only.
    const INFO: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/docker-20.10-info-runtimes.json"
    ));

    fn info() -> SystemInfo {
        serde_json::from_str(INFO).expect("bollard parses the engine's answer")
    }

    fn with_runtime(name: &str, path: &str, args: &[&str]) -> SystemInfo {
        let mut info = info();
        info.runtimes.as_mut().unwrap().insert(
            name.to_string(),
            Runtime {
                path: Some(path.to_string()),
                runtime_args: Some(args.iter().map(|a| a.to_string()).collect()),
                ..Default::default()
            },
        );
        info
    }

    #[test]
    fn gvisor_gets_room_for_its_own_host_threads() {
        assert_eq!(gvisor_host_pids(256), 4352);
        assert_eq!(gvisor_host_pids(i64::MAX), i64::MAX);
    }

    #[test]
    fn no_runtime_asked_means_the_engines_default() {
        let chosen = choose_runtime(&info(), None).unwrap();
        assert_eq!(
            chosen,
            SandboxRuntime {
                name: "runc".into(),
                gvisor: false
            }
        );
        assert_eq!(choose_runtime(&info(), Some("")).unwrap(), chosen);
    }

    #[test]
    fn runc_asked_by_name_passes() {
        let chosen = choose_runtime(&info(), Some("runc")).unwrap();
        assert!(!chosen.gvisor);
    }

    #[test]
    fn gvisor_registered_as_needed_passes() {
        let chosen = choose_runtime(&info(), Some("runsc")).unwrap();
        assert_eq!(
            chosen,
            SandboxRuntime {
                name: "runsc".into(),
                gvisor: true
            }
        );
    }

    #[test]
    fn an_unknown_runtime_is_refused_naming_the_registered_ones() {
        let error = choose_runtime(&info(), Some("kata")).unwrap_err();
        let RuntimeError::Unregistered { name, registered } = &error else {
            panic!("{error:?}");
        };
        assert_eq!(name, "kata");
        assert_eq!(registered, &["runc", "runsc", "runsc-bare", "runsc-no-uds"]);
        let message = error.to_string();
        assert!(message.contains("no runtime named \"kata\""), "{message}");
        assert!(
            message.contains("runc, runsc, runsc-bare, runsc-no-uds"),
            "{message}"
        );
    }

    #[test]
    fn gvisor_without_arguments_is_refused_with_the_fix() {
        let error = choose_runtime(&info(), Some("runsc-bare")).unwrap_err();
        let RuntimeError::Misconfigured { missing, .. } = &error else {
            panic!("{error:?}");
        };
        assert_eq!(missing, &[NETWORK, HOST_UDS]);
        let message = error.to_string();
        for needed in [
            "\"runsc-bare\" (/usr/bin/runsc) is gVisor",
            "without --network=none and --host-uds=open",
            "cannot run with network enabled in root network namespace",
            "/etc/docker/daemon.json",
            "sudo kill -HUP $(pidof dockerd)",
        ] {
            assert!(message.contains(needed), "{needed:?} not in:\n{message}");
        }
        let start = message.find('{').unwrap();
        let end = message.rfind('}').unwrap();
        let pasted: serde_json::Value = serde_json::from_str(&message[start..=end]).unwrap();
        assert_eq!(
            pasted,
            serde_json::json!({"runtimes": {"runsc-bare": {
                "path": "/usr/bin/runsc",
                "runtimeArgs": ["--network=none", "--host-uds=open"]
            }}})
        );
    }

    #[test]
    fn gvisor_without_host_sockets_is_refused() {
        let error = choose_runtime(&info(), Some("runsc-no-uds")).unwrap_err();
        let RuntimeError::Misconfigured { missing, .. } = &error else {
            panic!("{error:?}");
        };
        assert_eq!(missing, &[HOST_UDS]);
        assert!(
            error
                .to_string()
                .contains("without --host-uds=open (--host-uds=open: otherwise")
        );
    }

    #[test]
    fn gvisor_is_known_by_its_binary_whatever_the_runtime_is_called() {
        let info = with_runtime("sandbox", "/opt/gvisor/bin/runsc", &["--platform=kvm"]);
        let error = choose_runtime(&info, Some("sandbox")).unwrap_err();
        let RuntimeError::Misconfigured { snippet, .. } = &error else {
            panic!("{error:?}");
        };
        let pasted: serde_json::Value = serde_json::from_str(snippet).unwrap();
        assert_eq!(
            pasted["runtimes"]["sandbox"]["runtimeArgs"],
            serde_json::json!(["--platform=kvm", "--network=none", "--host-uds=open"])
        );
        assert_eq!(
            pasted["runtimes"]["sandbox"]["path"],
            "/opt/gvisor/bin/runsc"
        );
    }

    #[test]
    fn arguments_are_read_as_runsc_reads_them() {
        let fine = [
            vec!["--network", "none", "--host-uds", "open"],
            vec!["-network=none", "-host-uds=all"],
            vec!["--network=sandbox", "--network=none", "--host-uds=open"],
        ];
        for args in fine {
            let info = with_runtime("runsc-x", "/usr/bin/runsc", &args);
            assert!(choose_runtime(&info, Some("runsc-x")).is_ok(), "{args:?}");
        }
        let wrong = [
            vec!["--network=none", "--host-uds=open", "--network=host"],
            vec!["--network=none", "--host-uds=create"],
            vec!["--network=none", "--host-uds"],
            vec!["--networking=none", "--host-uds=open"],
        ];
        for args in wrong {
            let info = with_runtime("runsc-x", "/usr/bin/runsc", &args);
            assert!(choose_runtime(&info, Some("runsc-x")).is_err(), "{args:?}");
        }
    }

    #[test]
    fn the_snippet_replaces_wrong_values_in_either_form() {
        let info = with_runtime(
            "runsc-x",
            "/usr/bin/runsc",
            &["--network", "host", "--debug", "--host-uds=create"],
        );
        let RuntimeError::Misconfigured { snippet, .. } =
            choose_runtime(&info, Some("runsc-x")).unwrap_err()
        else {
            panic!()
        };
        let pasted: serde_json::Value = serde_json::from_str(&snippet).unwrap();
        assert_eq!(
            pasted["runtimes"]["runsc-x"]["runtimeArgs"],
            serde_json::json!(["--debug", "--network=none", "--host-uds=open"])
        );
    }

    #[test]
    fn a_gvisor_shim_without_a_path_cannot_be_checked_and_passes() {
        let mut info = info();
        info.runtimes
            .as_mut()
            .unwrap()
            .insert("runsc".into(), Runtime::default());
        let chosen = choose_runtime(&info, Some("runsc")).unwrap();
        assert!(chosen.gvisor);
    }

    #[test]
    fn a_gvisor_default_runtime_is_checked_too() {
        let mut info = info();
        info.default_runtime = Some("runsc-bare".into());
        assert!(matches!(
            choose_runtime(&info, None),
            Err(RuntimeError::Misconfigured { .. })
        ));
    }

    #[test]
    fn an_engine_that_lists_no_runtimes_refuses_a_named_one() {
        let mut info = info();
        info.runtimes = None;
        info.default_runtime = None;
        assert_eq!(choose_runtime(&info, None).unwrap().name, "runc");
        assert!(matches!(
            choose_runtime(&info, Some("runsc")),
            Err(RuntimeError::Unregistered { registered, .. }) if registered.is_empty()
        ));
    }
}

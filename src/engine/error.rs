//! Errors from the Docker engine, one variant per operation so a failure says
//! what agentd was doing (bollard's own errors rarely do).

/// A Docker operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The engine could not be reached or its API version negotiated.
    #[error("cannot reach the Docker engine: {0}")]
    Connect(#[source] bollard::errors::Error),
    /// Asking the engine about itself (`GET /info`) failed.
    #[error("asking the Docker engine for its runtimes: {0}")]
    Info(#[source] bollard::errors::Error),
    /// Creating the workspace volume failed.
    #[error("creating volume {name}: {source}")]
    CreateVolume {
        name: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// Making or releasing a size-limited workspace filesystem failed.
    #[error("workspace filesystem ({step}): {message}")]
    Workspace { step: &'static str, message: String },
    /// Asking whether an image exists failed.
    #[error("inspecting image {name}: {source}")]
    InspectImage {
        name: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// Pulling an image failed.
    #[error("pulling image {name}: {source}")]
    PullImage {
        name: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// Importing a root filesystem as an image failed.
    #[error("importing image {name}: {source}")]
    ImportImage {
        name: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// The engine refused a build request (not a failed Dockerfile step).
    #[error("building image {name}: {source}")]
    BuildImage {
        name: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// A tarball to send to the engine could not be read.
    #[error("reading {path}: {source}")]
    ReadTarball {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Removing a volume failed.
    #[error("removing volume {name}: {source}")]
    RemoveVolume {
        name: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// Creating a container failed (a missing image shows up here).
    #[error("creating container {name}: {source}")]
    CreateContainer {
        name: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// Attaching to a container's standard input failed.
    #[error("attaching to the input of container {name}: {source}")]
    AttachInput {
        name: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// Starting a container failed.
    #[error("starting container {name}: {source}")]
    StartContainer {
        name: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// Waiting for a container to stop failed.
    #[error("waiting for container {name}: {source}")]
    WaitContainer {
        name: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// Killing a container failed.
    #[error("killing container {name}: {source}")]
    KillContainer {
        name: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// Inspecting a container failed.
    #[error("inspecting container {name}: {source}")]
    InspectContainer {
        name: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// Removing a container failed.
    #[error("removing container {name}: {source}")]
    RemoveContainer {
        name: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// Reading a container's log stream failed.
    #[error("reading logs of container {name}: {source}")]
    Logs {
        name: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// Downloading files from a container failed.
    #[error("downloading {path} from container {name}: {source}")]
    Download {
        name: String,
        path: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// Listing labelled resources failed.
    #[error("listing agentd's {kind}: {source}")]
    List {
        kind: &'static str,
        #[source]
        source: bollard::errors::Error,
    },
}

/// True when a bollard error is the engine saying "no such object".
pub(crate) fn is_not_found(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// True when a bollard error is the engine saying the object is already in the
/// requested state (e.g. killing a stopped container, removal in progress).
pub(crate) fn is_conflict(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 409 | 304,
            ..
        }
    )
}

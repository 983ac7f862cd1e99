//! The in-process lifecycle: an embedding Rust program registers observers
//! on the runner ([`Runner::observe`]) and is told before and after each
//! stage of every execution, and when a stage fails — to meter, trace,
//! notify or audit in its own terms.
//!
//! Observers watch; they do not steer (an execution's course is decided by
//! its request, policy and sandbox alone). They are awaited in turn at each
//! stage, so keep them quick (hand slow work to a task of your own); one that
//! panics is logged and the execution goes on.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use async_trait::async_trait;
use futures::FutureExt;

use crate::execution::ExecutionRecord;

use super::Runner;

/// The stages of one execution, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// The mirror fetched, the sandbox made and started.
    Prepare,
    /// The agent runs (and the setup and teardown hooks around it).
    Run,
    /// The work committed, brought out, verified.
    Collect,
    /// The branch pushed to the remote (only when the request asks).
    Deliver,
    /// The final status decided and stored.
    Finish,
}

impl Stage {
    /// The stage's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Prepare => "prepare",
            Stage::Run => "run",
            Stage::Collect => "collect",
            Stage::Deliver => "deliver",
            Stage::Finish => "finish",
        }
    }
}

/// What an embedding program is told about each execution's stages. Every
/// method has an empty default: implement the ones you need.
#[async_trait]
pub trait Lifecycle: Send + Sync {
    /// A stage is about to begin; `execution` is the record as it stands.
    async fn before(&self, _stage: Stage, _execution: &ExecutionRecord) {}

    /// A stage ended without error. After [`Stage::Finish`], `execution` is
    /// the final record (status, figures, delivery).
    async fn after(&self, _stage: Stage, _execution: &ExecutionRecord) {}

    /// A stage failed; the execution goes on to its end (it will finish
    /// `failed`, `timed_out`, `cancelled`…). `error` is agentd's reason.
    async fn on_error(&self, _stage: Stage, _execution: &ExecutionRecord, _error: &str) {}
}

/// Which call an observer gets.
pub(super) enum Call<'a> {
    Before,
    After,
    Error(&'a str),
}

impl Runner {
    /// Registers `observer` to be told about every stage of every execution
    /// this runner runs, after those registered before it.
    pub fn observe(mut self, observer: Arc<dyn Lifecycle>) -> Runner {
        self.lifecycle.push(observer);
        self
    }

    /// Tells every observer about `stage`.
    pub(super) async fn tell(&self, stage: Stage, call: Call<'_>, execution: &ExecutionRecord) {
        for observer in &self.lifecycle {
            let told = match call {
                Call::Before => observer.before(stage, execution),
                Call::After => observer.after(stage, execution),
                Call::Error(error) => observer.on_error(stage, execution, error),
            };
            if AssertUnwindSafe(told).catch_unwind().await.is_err() {
                tracing::error!(stage = stage.as_str(), "a lifecycle observer panicked");
            }
        }
    }
}

//! The lease as the fence of published results: a file replaces what is
//! stored only while this replica still holds its execution, so a replica
//! paused past its lease cannot overwrite what the one that took over
//! published.

use crate::results::Fence;

use super::Runner;
use super::run::Run;

/// Asks the store, through a renewal, whether `run` is still this runner's.
pub(super) struct LeaseFence<'a> {
    pub runner: &'a Runner,
    pub run: &'a Run,
}

#[async_trait::async_trait]
impl Fence for LeaseFence<'_> {
    async fn still_held(&self) -> bool {
        self.runner.still_holds(self.run).await
    }
}

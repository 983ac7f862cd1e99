//! The tenant's spend as the store records it, for the gateway's daily limit
//! (every replica's executions of the tenant count).

use std::sync::Arc;

use async_trait::async_trait;

use crate::gateway::SpendLedger;
use crate::store::Store;
use crate::tenancy::day_start;

/// Reads a tenant's metered spend since midnight UTC from the store.
pub(crate) struct StoreLedger {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) tenant: String,
}

#[async_trait]
impl SpendLedger for StoreLedger {
    async fn spent_today(&self) -> Result<f64, String> {
        self.store
            .spent_since(&self.tenant, day_start(chrono::Utc::now()))
            .await
            .map_err(|error| error.to_string())
    }
}

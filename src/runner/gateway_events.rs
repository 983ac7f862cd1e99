//! Turning the gateway's exchanges into execution events, in order, keeping the
//! stored totals current and tripping the budget stop.

use std::sync::Arc;

use crate::execution::{EventBody, SupervisorEvent};
use crate::gateway::{Account, Exchange, ExchangeObserver};
use crate::store::Store;

use super::recorder::Recorder;
use super::run::BudgetStop;

/// Turns the gateway's exchanges into execution events (in order, from one
/// task), keeps the stored totals current, and trips the budget stop.
pub(super) struct GatewayEvents {
    sender: tokio::sync::mpsc::UnboundedSender<Exchange>,
    budget: Arc<BudgetStop>,
    /// The execution's tenant, for the metrics.
    tenant: String,
}

impl GatewayEvents {
    pub(super) fn start(
        recorder: Arc<Recorder>,
        store: Arc<dyn Store>,
        budget: Arc<BudgetStop>,
        account: Arc<Account>,
        tenant: String,
    ) -> Self {
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<Exchange>();
        tokio::spawn(tracing::Instrument::in_current_span(async move {
            let mut unpriced = std::collections::HashSet::new();
            while let Some(exchange) = receiver.recv().await {
                let conversation = exchange
                    .conversation
                    .clone()
                    .unwrap_or_else(|| account.conversation());
                if let Some(totals) = &exchange.totals {
                    match store
                        .record_gateway_usage(
                            recorder.execution(),
                            recorder.holder(),
                            totals,
                            &conversation,
                        )
                        .await
                    {
                        Ok(()) => {}
                        Err(crate::store::StoreError::LeaseLost { .. }) => recorder.lose_lease(),
                        Err(error) => tracing::warn!(%error, "cannot store the gateway's totals"),
                    }
                }
                if exchange.unpriced
                    && let Some(model) = &exchange.model
                    && unpriced.insert(model.clone())
                {
                    recorder
                        .emit(EventBody::warning(format!(
                            "model {model} is not in the price table: its tokens are \
                             counted, its cost is unknown"
                        )))
                        .await;
                }
                recorder.emit(describe(&exchange)).await;
            }
        }));
        GatewayEvents {
            sender,
            budget,
            tenant,
        }
    }
}

/// The event for one exchange: a model call, or a warning for anything else
/// that went wrong.
fn describe(exchange: &Exchange) -> EventBody {
    let is_model_call = exchange.path.split('?').next() == Some("/v1/messages");
    if is_model_call {
        return EventBody::Agentd(SupervisorEvent::ModelCall {
            status: exchange.status.unwrap_or(0),
            model: exchange.model.clone(),
            usage: exchange.usage.unwrap_or_default(),
            cost_usd: exchange.cost_usd,
            totals: exchange.totals.unwrap_or_default(),
            duration_ms: exchange.total.max(exchange.duration).as_millis() as u64,
            error: exchange.error.clone(),
        });
    }
    EventBody::warning(format!(
        "model gateway: {} {} → {}{}",
        exchange.method,
        exchange.path,
        exchange.status.unwrap_or(0),
        exchange
            .error
            .as_ref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    ))
}

impl ExchangeObserver for GatewayEvents {
    fn exchanged(&self, exchange: &Exchange) {
        if let Some(limit) = &exchange.exceeded {
            self.budget.trip(limit);
        }
        if let Some(usage) = &exchange.usage {
            crate::metrics::global().model_answered(
                &self.tenant,
                exchange.priced_as.as_deref(),
                crate::metrics::Tokens {
                    input: usage.input_tokens,
                    output: usage.output_tokens,
                    cache_read: usage.cache_read_input_tokens,
                    cache_creation: usage.cache_creation_input_tokens,
                },
                exchange.cost_usd,
            );
        }
        let interesting =
            exchange.path.split('?').next() == Some("/v1/messages") || exchange.error.is_some();
        if interesting {
            let _ = self.sender.send(exchange.clone());
        }
    }
}

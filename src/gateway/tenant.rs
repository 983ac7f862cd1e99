//! What the admins' policy asks of the gateway for a tenant's execution: the
//! models it may use, and the tenant's spend per day. The execution's own
//! limits live in its [`super::Account`]; these reach across a tenant's
//! executions (on every replica), so the spend is read from a ledger the
//! caller supplies (the store's metering) before each model request.

use std::sync::Arc;

use async_trait::async_trait;

use crate::tenancy::any_matches;

/// A tenant's spend so far today, as recorded.
#[async_trait]
pub trait SpendLedger: Send + Sync {
    /// Dollars the tenant's executions cost since midnight UTC.
    async fn spent_today(&self) -> Result<f64, String>;
}

/// The policy's rules the gateway enforces for one execution.
#[derive(Clone, Default)]
pub struct TenantRules {
    /// Model patterns (`*` wildcards) requests may name; empty: any.
    pub models: Vec<String>,
    /// The tenant's daily limit and where its spend is read.
    pub daily: Option<DailySpend>,
}

/// A daily spend limit and its ledger.
#[derive(Clone)]
pub struct DailySpend {
    /// Dollars per UTC day.
    pub limit_usd: f64,
    /// Where the spend is read.
    pub ledger: Arc<dyn SpendLedger>,
}

impl std::fmt::Debug for TenantRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantRules")
            .field("models", &self.models)
            .field("daily_limit_usd", &self.daily.as_ref().map(|d| d.limit_usd))
            .finish()
    }
}

/// Why the rules stop a request.
#[derive(Debug, Clone, PartialEq)]
pub enum TenantRefusal {
    /// The request names a model the policy does not allow.
    Model(String),
    /// The tenant's daily spend is reached: the execution must end
    /// `budget_exceeded` naming it.
    DailySpend(String),
    /// The spend could not be read: the request waits (fail closed).
    Unknown(String),
}

impl TenantRules {
    /// Checks one billable request whose JSON body is `body`.
    pub async fn admit(&self, body: &[u8]) -> Result<(), TenantRefusal> {
        if !self.models.is_empty() {
            let model = requested_model(body).unwrap_or_default();
            if !any_matches(&self.models, &model) {
                let shown: String = model.chars().take(80).collect();
                return Err(TenantRefusal::Model(format!(
                    "model `{shown}` is not allowed by this tenant's policy"
                )));
            }
        }
        if let Some(daily) = &self.daily {
            let spent = daily
                .ledger
                .spent_today()
                .await
                .map_err(TenantRefusal::Unknown)?;
            if spent >= daily.limit_usd {
                return Err(TenantRefusal::DailySpend(format!(
                    "daily_spend_usd: the tenant's daily spend limit of ${:.4} is reached (${spent:.4} spent today, UTC)",
                    daily.limit_usd
                )));
            }
        }
        Ok(())
    }
}

/// The `model` a Messages request names.
fn requested_model(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Named {
        model: String,
    }
    serde_json::from_slice::<Named>(body).ok().map(|n| n.model)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Spent(Result<f64, String>);

    #[async_trait]
    impl SpendLedger for Spent {
        async fn spent_today(&self) -> Result<f64, String> {
            self.0.clone()
        }
    }

    fn daily(limit_usd: f64, spent: Result<f64, String>) -> TenantRules {
        TenantRules {
            models: vec![],
            daily: Some(DailySpend {
                limit_usd,
                ledger: Arc::new(Spent(spent)),
            }),
        }
    }

    #[tokio::test]
    async fn the_daily_limit_stops_requests_once_reached() {
        let body = br#"{"model":"claude-sonnet-4-5","messages":[]}"#;
        assert_eq!(daily(1.0, Ok(0.5)).admit(body).await, Ok(()));
        assert!(matches!(
            daily(1.0, Ok(1.0)).admit(body).await,
            Err(TenantRefusal::DailySpend(m)) if m.contains("daily_spend_usd")
        ));
        assert!(matches!(
            daily(1.0, Err("down".into())).admit(body).await,
            Err(TenantRefusal::Unknown(_))
        ));
    }

    #[tokio::test]
    async fn only_allowed_models_go_out() {
        let rules = TenantRules {
            models: vec!["claude-sonnet-*".into()],
            daily: None,
        };
        assert_eq!(
            rules
                .admit(br#"{"model":"claude-sonnet-4-5","messages":[]}"#)
                .await,
            Ok(())
        );
        for body in [
            &br#"{"model":"claude-opus-4-1","messages":[]}"#[..],
            br#"{"messages":[]}"#,
            b"not json",
        ] {
            assert!(matches!(
                rules.admit(body).await,
                Err(TenantRefusal::Model(_))
            ));
        }
    }
}

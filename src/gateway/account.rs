//! One execution's account at the gateway: what its model use cost so far, by
//! the gateway's own metering, and whether the next request may go out.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::execution::Usage;
use crate::execution::{Conversation, GatewayUsage};

use super::meter::Metered;

use super::pricing::PriceTable;

/// Model limits of one execution. `None` means no limit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelLimits {
    /// Cost ceiling in US dollars (priced by the gateway's table).
    pub max_budget_usd: Option<f64>,
    /// Tokens of every kind, summed.
    pub max_tokens: Option<u64>,
    /// Model requests in all.
    pub max_requests: Option<u64>,
    /// Model requests per rolling minute (throttled, not fatal).
    pub requests_per_minute: Option<u32>,
}

/// Why a request was not forwarded.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// A hard limit was reached: the execution must end `budget_exceeded`.
    Exceeded(String),
    /// The per-minute rate was reached: retry after this long.
    Throttled(Duration),
}

/// What settling one answer changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    /// The answer's own cost, when its model is priced.
    pub cost_usd: Option<f64>,
    /// The price table's name for the model that answered, when it is priced.
    pub priced_as: Option<String>,
    /// The model was not in the price table (tokens counted, cost unknown).
    pub unpriced: bool,
    /// The totals after this answer.
    pub totals: GatewayUsage,
    /// A hard limit this answer reached, if it did (reported once).
    pub exceeded: Option<String>,
}

/// The account. Shared by the execution's socket and its runner.
#[derive(Debug)]
pub struct Account {
    limits: ModelLimits,
    prices: Arc<PriceTable>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    totals: GatewayUsage,
    conversation: Conversation,
    recent: VecDeque<Instant>,
    exceeded: Option<String>,
}

const MINUTE: Duration = Duration::from_secs(60);

impl Account {
    /// An account with `limits`, priced by `prices`, starting from `totals` and
    /// `conversation` (empty for a new execution; the stored ones after a restart).
    pub fn new(
        limits: ModelLimits,
        prices: Arc<PriceTable>,
        totals: GatewayUsage,
        conversation: Conversation,
    ) -> Account {
        let account = Account {
            limits,
            prices,
            state: Mutex::new(State {
                totals,
                conversation,
                ..State::default()
            }),
        };
        let exceeded = account.check(&totals);
        account.lock().exceeded = exceeded;
        account
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The totals so far.
    pub fn totals(&self) -> GatewayUsage {
        self.lock().totals
    }

    /// The conversation as observed so far.
    pub fn conversation(&self) -> Conversation {
        self.lock().conversation.clone()
    }

    /// Takes note of one complete, successful model answer and returns the
    /// conversation after it.
    pub fn observe(&self, answer: &Metered) -> Conversation {
        let mut state = self.lock();
        let conversation = &mut state.conversation;
        conversation.answers += 1;
        conversation.tool_uses += answer.tool_uses;
        conversation.stop_reason.clone_from(&answer.stop_reason);
        conversation.text = Some(answer.text.clone()).filter(|t| !t.is_empty());
        conversation.clone()
    }

    /// The hard limit reached, if any.
    pub fn exceeded(&self) -> Option<String> {
        self.lock().exceeded.clone()
    }

    /// Decides whether one more request may go upstream, and counts it if so.
    pub fn admit(&self) -> Result<(), Refusal> {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> Result<(), Refusal> {
        let mut state = self.lock();
        if let Some(limit) = &state.exceeded {
            return Err(Refusal::Exceeded(limit.clone()));
        }
        if let Some(max) = self.limits.max_requests
            && state.totals.requests >= max
        {
            let limit = format!(
                "max_requests {max} reached ({} requests made)",
                state.totals.requests
            );
            state.exceeded = Some(limit.clone());
            return Err(Refusal::Exceeded(limit));
        }
        if let Some(rate) = self.limits.requests_per_minute {
            while state
                .recent
                .front()
                .is_some_and(|at| now.duration_since(*at) >= MINUTE)
            {
                state.recent.pop_front();
            }
            if state.recent.len() >= rate as usize {
                let oldest = state.recent.front().copied().unwrap_or(now);
                let wait = MINUTE.saturating_sub(now.duration_since(oldest));
                return Err(Refusal::Throttled(wait.max(Duration::from_secs(1))));
            }
            state.recent.push_back(now);
        }
        state.totals.requests += 1;
        Ok(())
    }

    /// Adds an answer's metered usage, prices it, and reports a limit it reached.
    pub fn settle(&self, model: Option<&str>, usage: &Usage) -> Settled {
        let resolved = model.and_then(|model| self.prices.resolve(model));
        let priced_as = resolved.map(|(name, _)| name.to_string());
        let cost = resolved.map(|(_, price)| price.cost(usage));
        let mut state = self.lock();
        state.totals.usage.add(usage);
        if let Some(cost) = cost {
            state.totals.cost_usd = Some(state.totals.cost_usd.unwrap_or(0.0) + cost);
        }
        let totals = state.totals;
        let mut exceeded = None;
        if state.exceeded.is_none()
            && let Some(limit) = self.check(&totals)
        {
            state.exceeded = Some(limit.clone());
            exceeded = Some(limit);
        }
        Settled {
            cost_usd: cost,
            priced_as,
            unpriced: cost.is_none() && !is_empty(usage),
            totals,
            exceeded,
        }
    }

    /// The hard limit `totals` reach, if any (requests are checked on admission:
    /// reaching the count is fine, the next request is what exceeds it).
    fn check(&self, totals: &GatewayUsage) -> Option<String> {
        if let (Some(max), Some(spent)) = (self.limits.max_budget_usd, totals.cost_usd)
            && spent >= max
        {
            return Some(format!("max_budget_usd {max} reached (${spent:.4} spent)"));
        }
        if let Some(max) = self.limits.max_tokens {
            let used = totals.usage.total();
            if used >= max {
                return Some(format!("max_tokens {max} reached ({used} tokens used)"));
            }
        }
        None
    }
}

fn is_empty(usage: &Usage) -> bool {
    usage.total() == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(limits: ModelLimits) -> Account {
        Account::new(
            limits,
            Arc::new(PriceTable::builtin()),
            GatewayUsage::default(),
            Conversation::default(),
        )
    }

    fn usage(input: u64, output: u64) -> Usage {
        Usage {
            input_tokens: input,
            output_tokens: output,
            ..Usage::default()
        }
    }

    #[test]
    fn budget_is_reached_by_the_answer_that_crosses_it_and_refuses_the_next() {
        let account = account(ModelLimits {
            max_budget_usd: Some(0.01),
            ..ModelLimits::default()
        });
        account.admit().unwrap();
        // Sonnet 4.5: 1000 in × $3/M + 200 out × $15/M = $0.006.
        let first = account.settle(Some("claude-sonnet-4-5"), &usage(1000, 200));
        assert!((first.cost_usd.unwrap() - 0.006).abs() < 1e-12);
        assert_eq!(first.exceeded, None);
        account.admit().unwrap();
        let second = account.settle(Some("claude-sonnet-4-5"), &usage(1000, 200));
        assert!(
            second
                .exceeded
                .as_deref()
                .unwrap()
                .starts_with("max_budget_usd 0.01 reached")
        );
        assert_eq!(second.totals.requests, 2);
        assert!(matches!(account.admit(), Err(Refusal::Exceeded(_))));
        // Reported once.
        assert_eq!(
            account
                .settle(Some("claude-sonnet-4-5"), &usage(1, 1))
                .exceeded,
            None
        );
    }

    #[test]
    fn tokens_and_requests_are_hard_limits() {
        let tokens = account(ModelLimits {
            max_tokens: Some(100),
            ..ModelLimits::default()
        });
        tokens.admit().unwrap();
        assert!(
            tokens
                .settle(Some("unknown-model"), &usage(60, 40))
                .exceeded
                .is_some()
        );

        let requests = account(ModelLimits {
            max_requests: Some(2),
            ..ModelLimits::default()
        });
        requests.admit().unwrap();
        requests.admit().unwrap();
        match requests.admit() {
            Err(Refusal::Exceeded(limit)) => assert!(limit.starts_with("max_requests 2")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_rate_throttles_without_ending_anything() {
        let account = account(ModelLimits {
            requests_per_minute: Some(2),
            ..ModelLimits::default()
        });
        let start = Instant::now();
        account.admit_at(start).unwrap();
        account.admit_at(start + Duration::from_secs(10)).unwrap();
        match account.admit_at(start + Duration::from_secs(20)) {
            Err(Refusal::Throttled(wait)) => assert_eq!(wait, Duration::from_secs(40)),
            other => panic!("{other:?}"),
        }
        assert_eq!(account.exceeded(), None);
        account.admit_at(start + Duration::from_secs(61)).unwrap();
        assert_eq!(account.totals().requests, 3);
    }

    #[test]
    fn unknown_models_count_tokens_but_no_cost() {
        let account = account(ModelLimits::default());
        account.admit().unwrap();
        let settled = account.settle(Some("some-new-model"), &usage(10, 5));
        assert!(settled.unpriced);
        assert_eq!(settled.totals.cost_usd, None);
        assert_eq!(settled.totals.usage.input_tokens, 10);
    }

    #[test]
    fn a_restarted_account_starts_from_the_stored_totals() {
        let stored = GatewayUsage {
            requests: 5,
            usage: usage(100, 100),
            cost_usd: Some(2.0),
        };
        let account = Account::new(
            ModelLimits {
                max_budget_usd: Some(1.0),
                ..ModelLimits::default()
            },
            Arc::new(PriceTable::builtin()),
            stored,
            Conversation::default(),
        );
        assert!(matches!(account.admit(), Err(Refusal::Exceeded(_))));
    }
}

//! The feed against an in-memory log: replay, live, gaps, lag, polling, ends.

use std::sync::Mutex;

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::*;
use crate::execution::{EventBody, Status};
use crate::execution::{ExecutionRecord, NewExecution, Outcome};
use crate::store::{
    BriefPage, CancelOutcome, Created, Facts, ListQuery, ResourceKind, ResourceRecord, StoreError,
};

/// A log and a status, and nothing else a feed does not read.
#[derive(Default)]
struct Log {
    events: Mutex<Vec<Event>>,
    status: Mutex<Option<Status>>,
}

impl Log {
    fn with_status(status: Status) -> Arc<Log> {
        let log = Arc::new(Log::default());
        *log.status.lock().unwrap() = Some(status);
        log
    }

    /// Stores the next event (optionally final) and returns it.
    fn append(&self, final_status: bool) -> Event {
        let mut events = self.events.lock().unwrap();
        let body = if final_status {
            EventBody::status(Status::Succeeded, None)
        } else {
            EventBody::progress(format!("step {}", events.len() + 1))
        };
        let event = Event {
            seq: events.len() as u64 + 1,
            at: chrono::Utc::now(),
            body,
        };
        events.push(event.clone());
        event
    }

    fn set_status(&self, status: Status) {
        *self.status.lock().unwrap() = Some(status);
    }
}

fn record(id: &str, status: Status) -> ExecutionRecord {
    let now = chrono::Utc::now();
    let request: crate::execution::ExecutionRequest =
        serde_json::from_value(serde_json::json!({"repo": "r", "prompt": "p"})).unwrap();
    ExecutionRecord {
        execution: crate::execution::Execution {
            id: id.into(),
            tenant_id: "t".into(),
            idempotency_key: None,
            request,
            policy: Default::default(),
            status,
            reason: None,
            branch: format!("agent/{id}"),
            base_commit: None,
            head_commit: None,
            session_id: None,
            num_turns: 0,
            usage: Default::default(),
            cost_usd: None,
            tool_calls: 0,
            result: None,
            claimed: None,
            files_changed: vec![],
            left_out: Vec::new(),
            exit_code: None,
            oom_killed: false,
            image: None,
            gateway: Default::default(),
            conversation: Default::default(),
            has_diff: false,
            has_bundle: false,
            cancel_requested: false,
            created_at: now,
            started_at: None,
            finished_at: None,
            updated_at: now,
            duration_ms: None,
            delivery: None,
            retried: 0,
            parent_id: None,
            conversation_id: id.to_string(),
        },
        request_hash: String::new(),
        owner: None,
        lease_expires_at: None,
        log_cursor: 0,
    }
}

#[async_trait]
impl crate::store::Outbox for Log {
    async fn create_webhook(&self, _: &crate::tenancy::SealedWebhook) -> Result<(), StoreError> {
        unimplemented!()
    }
    async fn list_webhooks(
        &self,
        _: &str,
    ) -> Result<Vec<crate::tenancy::SealedWebhook>, StoreError> {
        unimplemented!()
    }
    async fn delete_webhook(&self, _: &str, _: &str) -> Result<bool, StoreError> {
        unimplemented!()
    }
    async fn webhook_deliveries(
        &self,
        _: &str,
        _: &str,
        _: Option<i64>,
        _: u32,
    ) -> Result<crate::store::Page<crate::tenancy::WebhookDelivery>, StoreError> {
        unimplemented!()
    }
    async fn redeliver(
        &self,
        _: &str,
        _: &str,
        _: i64,
    ) -> Result<Option<crate::tenancy::WebhookDelivery>, StoreError> {
        unimplemented!()
    }
    async fn claim_deliveries(
        &self,
        _: &str,
        _: std::time::Duration,
        _: u32,
    ) -> Result<Vec<crate::store::DueDelivery>, StoreError> {
        unimplemented!()
    }
    async fn prune_deliveries(&self, _: chrono::DateTime<chrono::Utc>) -> Result<u64, StoreError> {
        unimplemented!()
    }
    async fn renew_claim(
        &self,
        _: i64,
        _: &str,
        _: std::time::Duration,
    ) -> Result<bool, StoreError> {
        unimplemented!()
    }
    async fn record_attempt(
        &self,
        _: i64,
        _: &str,
        _: &crate::store::AttemptOutcome,
    ) -> Result<(), StoreError> {
        unimplemented!()
    }
}

#[async_trait]
impl crate::store::Tenancy for Log {
    async fn create_tenant(&self, _: &str) -> Result<crate::tenancy::Tenant, StoreError> {
        unimplemented!()
    }
    async fn get_tenant(&self, _: &str) -> Result<Option<crate::tenancy::Tenant>, StoreError> {
        unimplemented!()
    }
    async fn list_tenants(&self) -> Result<Vec<crate::tenancy::Tenant>, StoreError> {
        unimplemented!()
    }
    async fn disable_tenant(&self, _: &str) -> Result<Option<crate::tenancy::Tenant>, StoreError> {
        unimplemented!()
    }
    async fn create_key(&self, _: &crate::tenancy::ApiKey, _: &str) -> Result<(), StoreError> {
        unimplemented!()
    }
    async fn find_key(
        &self,
        _: &str,
    ) -> Result<Option<(crate::tenancy::ApiKey, bool)>, StoreError> {
        unimplemented!()
    }
    async fn list_keys(&self, _: &str) -> Result<Vec<crate::tenancy::ApiKey>, StoreError> {
        unimplemented!()
    }
    async fn revoke_key(
        &self,
        _: &str,
        _: &str,
    ) -> Result<Option<crate::tenancy::ApiKey>, StoreError> {
        unimplemented!()
    }
    async fn touch_key(&self, _: &str, _: chrono::DateTime<chrono::Utc>) -> Result<(), StoreError> {
        unimplemented!()
    }
    async fn audit(&self, _: &crate::tenancy::AuditEntry) -> Result<(), StoreError> {
        unimplemented!()
    }
    async fn audit_events(
        &self,
        _: &crate::tenancy::AuditQuery,
    ) -> Result<crate::store::Page<crate::tenancy::AuditEvent>, StoreError> {
        unimplemented!()
    }
    async fn get_policy(
        &self,
        _: crate::tenancy::Scope<'_>,
    ) -> Result<Option<crate::tenancy::Policy>, StoreError> {
        unimplemented!()
    }
    async fn put_policy(
        &self,
        _: crate::tenancy::Scope<'_>,
        _: &crate::tenancy::Policy,
    ) -> Result<(), StoreError> {
        unimplemented!()
    }
    async fn spent_since(
        &self,
        _: &str,
        _: chrono::DateTime<chrono::Utc>,
    ) -> Result<f64, StoreError> {
        unimplemented!()
    }
    async fn pause_claiming(&self, _: &str) -> Result<crate::store::ClaimingPause, StoreError> {
        unimplemented!()
    }
    async fn resume_claiming(&self) -> Result<(), StoreError> {
        unimplemented!()
    }
    async fn claiming_pause(&self) -> Result<Option<crate::store::ClaimingPause>, StoreError> {
        unimplemented!()
    }
    async fn create_credential(
        &self,
        _: &crate::tenancy::SealedCredential,
    ) -> Result<(), StoreError> {
        unimplemented!()
    }
    async fn list_credentials(
        &self,
        _: &str,
    ) -> Result<Vec<crate::tenancy::SealedCredential>, StoreError> {
        unimplemented!()
    }
    async fn delete_credential(&self, _: &str, _: &str) -> Result<bool, StoreError> {
        unimplemented!()
    }
    async fn count_credentials(&self) -> Result<u64, StoreError> {
        unimplemented!()
    }
    async fn credential_key_fingerprints(&self) -> Result<Vec<String>, StoreError> {
        unimplemented!()
    }
}

#[async_trait]
impl crate::store::Inputs for Log {
    async fn add_input(
        &self,
        _: &str,
        _: crate::execution::InputKind,
        _: &str,
        _: &str,
    ) -> Result<Option<u64>, StoreError> {
        unimplemented!()
    }
    async fn pending_inputs(
        &self,
        _: &str,
    ) -> Result<Vec<crate::execution::AgentInput>, StoreError> {
        unimplemented!()
    }
    async fn input_delivered(&self, _: &str, _: u64) -> Result<(), StoreError> {
        unimplemented!()
    }
}

#[async_trait]
impl Store for Log {
    async fn migrate(&self) -> Result<(), StoreError> {
        unimplemented!()
    }
    async fn record_gateway_usage(
        &self,
        _: &str,
        _: &str,
        _: &crate::execution::GatewayUsage,
        _: &crate::execution::Conversation,
    ) -> Result<(), StoreError> {
        unimplemented!()
    }
    async fn ping(&self) -> Result<(), StoreError> {
        unimplemented!()
    }
    async fn create_execution(&self, _: NewExecution) -> Result<Created, StoreError> {
        unimplemented!()
    }
    async fn conversation(&self, _: &str, _: &str) -> Result<Vec<ExecutionRecord>, StoreError> {
        unimplemented!()
    }
    async fn children(&self, _: &str) -> Result<Vec<String>, StoreError> {
        unimplemented!()
    }
    async fn get_execution(
        &self,
        _: Option<&str>,
        id: &str,
    ) -> Result<Option<ExecutionRecord>, StoreError> {
        Ok(self.status.lock().unwrap().map(|status| record(id, status)))
    }
    async fn list_execution_page(&self, _: &ListQuery) -> Result<BriefPage, StoreError> {
        unimplemented!()
    }
    async fn claim_next(
        &self,
        _: &str,
        _: Duration,
    ) -> Result<Option<ExecutionRecord>, StoreError> {
        unimplemented!()
    }
    async fn claim(
        &self,
        _: &str,
        _: &str,
        _: Duration,
    ) -> Result<Option<ExecutionRecord>, StoreError> {
        unimplemented!()
    }
    async fn take_over_from(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: Duration,
    ) -> Result<Option<crate::execution::ExecutionRecord>, StoreError> {
        unimplemented!()
    }
    async fn take_over(
        &self,
        _: &str,
        _: &str,
        _: Duration,
    ) -> Result<Option<ExecutionRecord>, StoreError> {
        unimplemented!()
    }
    async fn requeue(&self, _: &str, _: &str) -> Result<Option<ExecutionRecord>, StoreError> {
        unimplemented!()
    }
    async fn renew_leases(&self, _: &str, _: Duration) -> Result<(), StoreError> {
        unimplemented!()
    }
    async fn live_executions(&self) -> Result<Vec<ExecutionRecord>, StoreError> {
        unimplemented!()
    }
    async fn counts(&self) -> Result<(u64, u64), StoreError> {
        unimplemented!()
    }
    async fn counts_by_tenant(&self) -> Result<Vec<crate::store::StatusCount>, StoreError> {
        unimplemented!()
    }
    async fn transition(&self, _: &str, _: &str, _: Status) -> Result<ExecutionRecord, StoreError> {
        unimplemented!()
    }
    async fn update_facts(&self, _: &str, _: &str, _: &Facts) -> Result<(), StoreError> {
        unimplemented!()
    }
    async fn finish(&self, _: &str, _: &str, _: &Outcome) -> Result<ExecutionRecord, StoreError> {
        unimplemented!()
    }
    async fn record_delivery(
        &self,
        _: &str,
        _: &crate::execution::Delivery,
    ) -> Result<ExecutionRecord, StoreError> {
        unimplemented!()
    }
    async fn request_cancel(&self, _: Option<&str>, _: &str) -> Result<CancelOutcome, StoreError> {
        unimplemented!()
    }
    async fn append_events(
        &self,
        _: &str,
        _: &str,
        _: &[EventBody],
        _: Option<u64>,
    ) -> Result<Vec<Event>, StoreError> {
        unimplemented!()
    }
    async fn events_after(
        &self,
        _: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError> {
        Ok(self
            .events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.seq > after)
            .take(limit as usize)
            .cloned()
            .collect())
    }
    async fn artifacts(&self, _: &str) -> Result<Vec<crate::execution::Artifact>, StoreError> {
        unimplemented!()
    }
    async fn resource_created(&self, _: &str, _: ResourceKind, _: &str) -> Result<(), StoreError> {
        unimplemented!()
    }
    async fn resource_removed(&self, _: ResourceKind, _: &str) -> Result<(), StoreError> {
        unimplemented!()
    }
    async fn resources(&self, _: &str) -> Result<Vec<ResourceRecord>, StoreError> {
        unimplemented!()
    }
}

struct Setup {
    log: Arc<Log>,
    hub: Arc<EventHub>,
    stop: CancellationToken,
}

impl Setup {
    fn new(status: Status, hub_capacity: usize) -> Setup {
        Setup {
            log: Log::with_status(status),
            hub: Arc::new(EventHub::new(hub_capacity)),
            stop: CancellationToken::new(),
        }
    }

    /// What the runner's recorder does: store, then publish.
    fn record(&self, final_status: bool) {
        let event = self.log.append(final_status);
        if final_status {
            self.log.set_status(Status::Succeeded);
        }
        self.hub.publish("e", &event);
        if final_status {
            self.hub.close("e");
        }
    }

    /// Starts a feed after `after`; `subscribe` as the handler does for a live execution.
    fn start(
        &self,
        after: u64,
        subscribe: bool,
        buffer: usize,
    ) -> (mpsc::Receiver<Item>, tokio::task::JoinHandle<()>) {
        let live = subscribe.then(|| self.hub.subscribe("e"));
        let feed = Feed {
            store: self.log.clone(),
            hub: self.hub.clone(),
            execution: "e".into(),
            tenant: "t".into(),
            poll_interval: Duration::from_millis(50),
            stop: self.stop.clone(),
            budget: crate::api::ByteBudget::new(crate::api::STREAM_BYTES),
        };
        let (out, items) = mpsc::channel(buffer);
        (items, tokio::spawn(feed.run(after, live, out)))
    }
}

/// Reads items until the feed ends (bounded, so a broken feed fails the test).
async fn drain(mut items: mpsc::Receiver<Item>) -> Vec<Item> {
    let mut got = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), items.recv()).await {
            Ok(Some(item)) => got.push(item),
            Ok(None) => return got,
            Err(_) => panic!("the feed did not end; got {got:?}"),
        }
    }
}

fn seqs(items: &[Item]) -> Vec<u64> {
    items
        .iter()
        .filter_map(|item| match item {
            Item::Event(event) => Some(event.seq),
            Item::Lagged(_) => None,
        })
        .collect()
}

#[tokio::test]
async fn replays_then_follows_live_and_ends_after_the_final_status() {
    let setup = Setup::new(Status::Running, 16);
    for _ in 0..3 {
        setup.record(false);
    }
    let (items, task) = setup.start(0, true, 16);
    tokio::time::sleep(Duration::from_millis(20)).await;
    setup.record(false);
    setup.record(true);
    let got = drain(items).await;
    assert_eq!(seqs(&got), vec![1, 2, 3, 4, 5]);
    task.await.unwrap();
    assert_eq!(setup.hub.channels(), 0);
}

#[tokio::test]
async fn resumes_after_the_given_event() {
    let setup = Setup::new(Status::Running, 16);
    for _ in 0..4 {
        setup.record(false);
    }
    setup.record(true);
    let (items, _) = setup.start(2, false, 16);
    assert_eq!(seqs(&drain(items).await), vec![3, 4, 5]);
}

#[tokio::test]
async fn a_lagging_reader_is_told_and_misses_nothing() {
    let setup = Setup::new(Status::Running, 2);
    let (mut items, _) = setup.start(0, true, 1);
    setup.record(false);
    // The reader does not read: the feed blocks on its one-slot buffer while
    // the hub's two-slot buffer overflows.
    tokio::time::sleep(Duration::from_millis(50)).await;
    for _ in 0..18 {
        setup.record(false);
    }
    setup.record(true);
    let first = items.recv().await.unwrap();
    let mut got = vec![first];
    got.extend(drain(items).await);
    assert_eq!(seqs(&got), (1..=20).collect::<Vec<_>>());
    let lagged: Vec<u64> = got
        .iter()
        .filter_map(|item| match item {
            Item::Lagged(n) => Some(*n),
            _ => None,
        })
        .collect();
    assert_eq!(lagged.len(), 1, "{got:?}");
    assert!(lagged[0] > 0);
}

#[tokio::test]
async fn without_live_events_the_store_is_polled() {
    let setup = Setup::new(Status::Running, 16);
    let (items, _) = setup.start(0, true, 16);
    // Another replica runs it: events reach the store only.
    for final_status in [false, false, true] {
        tokio::time::sleep(Duration::from_millis(30)).await;
        setup.log.append(final_status);
    }
    setup.log.set_status(Status::Succeeded);
    assert_eq!(seqs(&drain(items).await), vec![1, 2, 3]);
}

#[tokio::test]
async fn a_gap_in_live_events_is_filled_from_the_store() {
    let setup = Setup::new(Status::Running, 16);
    setup.record(false);
    let (items, _) = setup.start(0, true, 16);
    tokio::time::sleep(Duration::from_millis(10)).await;
    setup.log.append(false);
    setup.log.append(false);
    setup.record(true);
    assert_eq!(seqs(&drain(items).await), vec![1, 2, 3, 4]);
}

#[tokio::test]
async fn an_execution_cancelled_while_queued_ends_at_once() {
    let setup = Setup::new(Status::Cancelled, 16);
    let started = Instant::now();
    let (items, _) = setup.start(0, false, 16);
    assert!(drain(items).await.is_empty());
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn a_final_execution_missing_its_final_event_ends_after_the_grace() {
    let setup = Setup::new(Status::Failed, 16);
    setup.log.append(false);
    let started = Instant::now();
    let (items, _) = setup.start(0, false, 16);
    assert_eq!(seqs(&drain(items).await), vec![1]);
    let waited = started.elapsed();
    assert!(waited >= FINAL_EVENT_GRACE, "{waited:?}");
}

#[tokio::test]
async fn stopping_ends_a_live_feed_and_drops_its_channel_only_when_final() {
    let setup = Setup::new(Status::Running, 16);
    setup.record(false);
    let (items, task) = setup.start(0, true, 16);
    tokio::time::sleep(Duration::from_millis(100)).await;
    setup.stop.cancel();
    assert_eq!(seqs(&drain(items).await), vec![1]);
    task.await.unwrap();
    assert_eq!(
        setup.hub.channels(),
        1,
        "a live execution keeps its channel"
    );
}

#[tokio::test]
async fn a_reader_that_leaves_ends_its_feed() {
    let setup = Setup::new(Status::Running, 16);
    let (items, task) = setup.start(0, true, 16);
    drop(items);
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("the feed ends when its reader leaves")
        .unwrap();
}

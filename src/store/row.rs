//! Reading the store's records out of result rows, for any dialect. Whatever a
//! column holds that does not decode becomes [`StoreError::Corrupt`] naming it.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{ColumnIndex, Decode, Row, Type};

use super::codec::{corrupt, decode_body, execution_cursor, from_db_count};
use super::dialect::{Dialect, Field};
use super::{
    BriefPage, ClaimingPause, DeliveryPlan, Naming, ResourceKind, ResourceRecord, StatusCount,
    StoreError,
};
use crate::execution::{
    Artifact, Event, Execution, ExecutionRecord, ExecutionRequest, GatewayUsage, Status, Usage,
};
use crate::tenancy::{
    Actor, ApiKey, AuditEvent, Credential, CredentialKind, DeliveryState, SealedCredential,
    SealedWebhook, Tenant, Webhook, WebhookDelivery,
};

/// One result row, read column by column. Columns are named `table.column`;
/// the row is searched by the part after the dot.
pub(super) struct Reader<'r, DB: Dialect> {
    row: &'r DB::Row,
}

impl<'r, DB: Dialect> Reader<'r, DB>
where
    for<'a> &'a str: ColumnIndex<DB::Row>,
    String: Field<DB>,
    i64: Field<DB>,
    f64: Field<DB>,
    bool: Field<DB>,
    Json<Value>: Field<DB>,
{
    pub(super) fn new(row: &'r DB::Row) -> Self {
        Reader { row }
    }

    pub(super) fn get<T: Decode<'r, DB> + Type<DB>>(
        &self,
        column: &'static str,
    ) -> Result<T, StoreError> {
        let name = column.rsplit('.').next().unwrap_or(column);
        self.row
            .try_get(name)
            .map_err(|err| corrupt(column, err.to_string()))
    }

    fn count(&self, column: &'static str) -> Result<u64, StoreError> {
        from_db_count(column, self.get(column)?)
    }

    fn optional_count(&self, column: &'static str) -> Result<Option<u64>, StoreError> {
        self.get::<Option<i64>>(column)?
            .map(|value| from_db_count(column, value))
            .transpose()
    }

    fn time(&self, column: &'static str) -> Result<DateTime<Utc>, StoreError> {
        DB::from_time(self.get(column)?).map_err(|message| corrupt(column, message))
    }

    fn optional_time(&self, column: &'static str) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.get::<Option<DB::Time>>(column)?
            .map(|stored| DB::from_time(stored).map_err(|message| corrupt(column, message)))
            .transpose()
    }

    /// A column holding JSON as text; `None` when NULL.
    fn json_text<T: DeserializeOwned>(
        &self,
        column: &'static str,
    ) -> Result<Option<T>, StoreError> {
        self.get::<Option<String>>(column)?
            .map(|text| serde_json::from_str(&text).map_err(|err| corrupt(column, err.to_string())))
            .transpose()
    }

    fn json<T: DeserializeOwned>(&self, column: &'static str) -> Result<T, StoreError> {
        let Json(value) = self.get::<Json<Value>>(column)?;
        serde_json::from_value(value).map_err(|err| corrupt(column, err.to_string()))
    }

    /// The `status` column.
    pub(super) fn status(&self) -> Result<Status, StoreError> {
        let column = "executions.status";
        self.get::<String>(column)?
            .parse()
            .map_err(|err: crate::execution::UnknownStatus| corrupt(column, err.to_string()))
    }

    /// The `owner` column: who holds the execution (`None`: nobody).
    pub(super) fn holder(&self) -> Result<Option<String>, StoreError> {
        self.get("executions.owner")
    }

    /// An input's number (`inputs::ADD`).
    pub(super) fn input_seq(&self) -> Result<u64, StoreError> {
        self.count("execution_inputs.seq")
    }

    /// An input to a running agent (`inputs::PENDING`).
    pub(super) fn input(&self) -> Result<crate::execution::AgentInput, StoreError> {
        let kind: String = self.get("execution_inputs.kind")?;
        Ok(crate::execution::AgentInput {
            seq: self.count("execution_inputs.seq")?,
            kind: crate::execution::InputKind::parse(&kind)
                .ok_or_else(|| corrupt("execution_inputs.kind", kind.clone()))?,
            text: self.get("execution_inputs.text")?,
            sender: self.get("execution_inputs.sender")?,
        })
    }

    /// The highest follow-up number of a parent (`queries::LAST_SIBLING`).
    pub(super) fn last_sibling(&self) -> Result<u64, StoreError> {
        self.count("executions.last")
    }

    /// A whole `executions` row (every column of `queries::columns!`).
    pub(super) fn execution(&self) -> Result<ExecutionRecord, StoreError> {
        let naming: Naming = self.json_text("executions.naming")?.unwrap_or_default();
        let plan: DeliveryPlan = self
            .json_text("executions.delivery_plan")?
            .unwrap_or_default();
        Ok(ExecutionRecord {
            execution: Execution {
                id: self.get("executions.id")?,
                tenant_id: self.get("executions.tenant_id")?,
                idempotency_key: self.get("executions.idempotency_key")?,
                request: ExecutionRequest {
                    repo: self.get("executions.repo")?,
                    git_ref: self.get("executions.git_ref")?,
                    prompt: self.get("executions.prompt")?,
                    agent: self.json("executions.agent")?,
                    limits: self.json("executions.limits")?,
                    context_file: self.get("executions.context_file")?,
                    record: self.get("executions.record_model")?,
                    replay: self.get("executions.replay_from")?,
                    sandbox: self.json("executions.sandbox")?,
                    agent_id: naming.agent_id,
                    task_id: naming.task_id,
                    branch_template: naming.branch_template,
                    push: plan.push,
                    merge_into: plan.merge_into,
                    hooks: self.json_text("executions.hooks")?.unwrap_or_default(),
                    retries: narrow(self.count("executions.retries")?),
                    streaming_input: self.get("executions.streaming_input")?,
                },
                policy: self.json("executions.policy")?,
                status: self.status()?,
                reason: self.get("executions.reason")?,
                branch: self.get("executions.branch")?,
                base_commit: self.get("executions.base_commit")?,
                head_commit: self.get("executions.head_commit")?,
                session_id: self.get("executions.session_id")?,
                num_turns: self.count("executions.num_turns")?,
                usage: self.usage(false)?,
                cost_usd: self.get("executions.cost_usd")?,
                tool_calls: self.count("executions.tool_calls")?,
                result: self.get("executions.result")?,
                claimed: self.json_text("executions.claimed")?,
                files_changed: self.json("executions.files_changed")?,
                left_out: self.json_text("executions.left_out")?.unwrap_or_default(),
                exit_code: self.get("executions.exit_code")?,
                oom_killed: self.get("executions.oom_killed")?,
                image: self.get("executions.image")?,
                gateway: GatewayUsage {
                    requests: self.count("executions.gateway_requests")?,
                    usage: self.usage(true)?,
                    cost_usd: self.get("executions.gateway_cost_usd")?,
                },
                conversation: self
                    .json_text("executions.conversation")?
                    .unwrap_or_default(),
                has_diff: self.get("executions.has_diff")?,
                has_bundle: self.get("executions.has_bundle")?,
                cancel_requested: self.get("executions.cancel_requested")?,
                created_at: self.time("executions.created_at")?,
                started_at: self.optional_time("executions.started_at")?,
                finished_at: self.optional_time("executions.finished_at")?,
                updated_at: self.time("executions.updated_at")?,
                duration_ms: self.optional_count("executions.duration_ms")?,
                delivery: self.json_text("executions.delivery")?,
                retried: narrow(self.count("executions.retried")?),
                parent_id: self.get("executions.parent_id")?,
                conversation_id: {
                    let conversation: Option<String> = self.get("executions.conversation_id")?;
                    match conversation {
                        Some(id) => id,
                        None => self.get("executions.id")?,
                    }
                },
            },
            request_hash: self.get("executions.request_hash")?,
            owner: self.get("executions.owner")?,
            lease_expires_at: self.optional_time("executions.lease_expires_at")?,
            log_cursor: self.count("executions.log_cursor")?,
        })
    }

    /// A listing's page of at most `size` briefs, as the dialect wrote it.
    pub(super) fn brief_page(&self, size: u32) -> Result<BriefPage, StoreError> {
        let items: String = self.get("executions.items")?;
        let rows = self.count("executions.rows")?;
        let last_id: Option<String> = self.get("executions.last_id")?;
        Ok(BriefPage {
            items,
            next_cursor: last_id
                .filter(|_| rows > u64::from(size))
                .map(|last| execution_cursor(&last)),
        })
    }

    /// The four token columns: the execution's, or (`gateway`) the gateway's.
    fn usage(&self, gateway: bool) -> Result<Usage, StoreError> {
        let column = |own: &'static str, metered: &'static str| if gateway { metered } else { own };
        Ok(Usage {
            input_tokens: self.count(column(
                "executions.input_tokens",
                "executions.gateway_input_tokens",
            ))?,
            output_tokens: self.count(column(
                "executions.output_tokens",
                "executions.gateway_output_tokens",
            ))?,
            cache_creation_input_tokens: self.count(column(
                "executions.cache_creation_input_tokens",
                "executions.gateway_cache_creation_input_tokens",
            ))?,
            cache_read_input_tokens: self.count(column(
                "executions.cache_read_input_tokens",
                "executions.gateway_cache_read_input_tokens",
            ))?,
        })
    }

    /// An `events` row (`seq`, `at`, `body`).
    pub(super) fn event(&self) -> Result<Event, StoreError> {
        Ok(Event {
            seq: self.count("events.seq")?,
            at: self.time("events.at")?,
            body: decode_body(&self.get::<String>("events.body")?)?,
        })
    }

    /// An `artifacts` row (`path`, `size`, `sha256`).
    pub(super) fn artifact(&self) -> Result<Artifact, StoreError> {
        Ok(Artifact {
            path: self.get("artifacts.path")?,
            size: self.count("artifacts.size")?,
            sha256: self.get("artifacts.sha256")?,
        })
    }

    /// A `tenants` row.
    pub(super) fn tenant(&self) -> Result<Tenant, StoreError> {
        Ok(Tenant {
            id: self.get("tenants.id")?,
            disabled: self.get("tenants.disabled")?,
            created_at: self.time("tenants.created_at")?,
            disabled_at: self.optional_time("tenants.disabled_at")?,
        })
    }

    /// The `claiming_pause` row.
    pub(super) fn claiming_pause(&self) -> Result<ClaimingPause, StoreError> {
        Ok(ClaimingPause {
            since: self.time("claiming_pause.paused_at")?,
            by: self.get("claiming_pause.paused_by")?,
        })
    }

    /// An `api_keys` row (without its hash).
    pub(super) fn api_key(&self) -> Result<ApiKey, StoreError> {
        Ok(ApiKey {
            id: self.get("api_keys.id")?,
            tenant_id: self.get("api_keys.tenant_id")?,
            prefix: self.get("api_keys.prefix")?,
            created_at: self.time("api_keys.created_at")?,
            expires_at: self.optional_time("api_keys.expires_at")?,
            revoked_at: self.optional_time("api_keys.revoked_at")?,
            last_used_at: self.optional_time("api_keys.last_used_at")?,
        })
    }

    /// A credential row's `key_fingerprint` alone.
    pub(super) fn key_fingerprint(&self) -> Result<String, StoreError> {
        self.get("credentials.key_fingerprint")
    }

    /// A count named `stored` (of credentials).
    pub(super) fn stored_count(&self) -> Result<u64, StoreError> {
        self.count("credentials.stored")
    }

    /// A `webhooks` row.
    pub(super) fn webhook(&self) -> Result<SealedWebhook, StoreError> {
        let events: String = self.get("webhooks.events")?;
        Ok(SealedWebhook {
            webhook: Webhook {
                id: self.get("webhooks.id")?,
                tenant_id: self.get("webhooks.tenant_id")?,
                url: self.get("webhooks.url")?,
                events: Webhook::parse_events(&events),
                operator: self.get("webhooks.operator")?,
                created_at: self.time("webhooks.created_at")?,
            },
            sealed_secret: self.get("webhooks.sealed_secret")?,
            key_fingerprint: self.get("webhooks.key_fingerprint")?,
        })
    }

    /// A `webhook_deliveries` row.
    pub(super) fn webhook_delivery(&self) -> Result<WebhookDelivery, StoreError> {
        let column = "webhook_deliveries.status";
        let state: String = self.get(column)?;
        let state = DeliveryState::parse(&state)
            .ok_or_else(|| corrupt(column, format!("unknown status `{state}`")))?;
        let last_status: Option<i64> = self.get("webhook_deliveries.last_status")?;
        Ok(WebhookDelivery {
            id: self.get("webhook_deliveries.id")?,
            webhook_id: self.get("webhook_deliveries.webhook_id")?,
            execution_id: self.get("webhook_deliveries.execution_id")?,
            seq: self.count("webhook_deliveries.seq")?,
            event_type: self.get("webhook_deliveries.event_type")?,
            state,
            attempts: self.count("webhook_deliveries.attempts")? as u32,
            next_attempt_at: self.time("webhook_deliveries.next_attempt_at")?,
            last_status: last_status.and_then(|s| u16::try_from(s).ok()),
            last_error: self.get("webhook_deliveries.last_error")?,
            created_at: self.time("webhook_deliveries.created_at")?,
            delivered_at: self.optional_time("webhook_deliveries.delivered_at")?,
        })
    }

    /// An event's time and body, as a delivery carries it.
    pub(super) fn event_at_and_body(&self) -> Result<(DateTime<Utc>, String), StoreError> {
        Ok((self.time("events.at")?, self.get("events.body")?))
    }

    /// A `credentials` row.
    pub(super) fn credential(&self) -> Result<SealedCredential, StoreError> {
        let column = "credentials.kind";
        let kind = match self.get::<String>(column)?.as_str() {
            "https" => CredentialKind::Https,
            "ssh" => CredentialKind::Ssh,
            other => return Err(corrupt(column, format!("unknown kind `{other}`"))),
        };
        Ok(SealedCredential {
            credential: Credential {
                id: self.get("credentials.id")?,
                tenant_id: self.get("credentials.tenant_id")?,
                kind,
                repo_pattern: self.get("credentials.repo_pattern")?,
                username: self.get("credentials.username")?,
                created_at: self.time("credentials.created_at")?,
            },
            sealed: self.get("credentials.sealed")?,
            key_fingerprint: self.get("credentials.key_fingerprint")?,
        })
    }

    /// An `audit_events` row.
    pub(super) fn audit_event(&self) -> Result<AuditEvent, StoreError> {
        let column = "audit_events.actor";
        let actor = match self.get::<String>(column)?.as_str() {
            "admin" => Actor::Admin,
            "tenant" => Actor::Tenant,
            "anonymous" => Actor::Anonymous,
            other => return Err(corrupt(column, format!("unknown actor `{other}`"))),
        };
        let detail: String = self.get("audit_events.detail")?;
        Ok(AuditEvent {
            seq: self.count("audit_events.seq")?,
            at: self.time("audit_events.at")?,
            actor,
            tenant_id: self.get("audit_events.tenant_id")?,
            key_id: self.get("audit_events.key_id")?,
            action: self.get("audit_events.action")?,
            target: self.get("audit_events.target")?,
            outcome: self.get("audit_events.outcome")?,
            rule: self.get("audit_events.rule")?,
            detail: serde_json::from_str(&detail)
                .map_err(|err| corrupt("audit_events.detail", err.to_string()))?,
            peer: self.get("audit_events.peer")?,
        })
    }

    /// The `disabled` column of a tenant joined to a key.
    pub(super) fn tenant_disabled(&self) -> Result<bool, StoreError> {
        self.get("tenants.disabled")
    }

    /// A `policies` row's body.
    pub(super) fn policy_body(&self) -> Result<crate::tenancy::Policy, StoreError> {
        let text: String = self.get("policies.body")?;
        serde_json::from_str(&text).map_err(|err| corrupt("policies.body", err.to_string()))
    }

    /// A spend sum (`spent`), in dollars.
    pub(super) fn spent(&self) -> Result<f64, StoreError> {
        self.get("executions.spent")
    }

    /// A `resources` row.
    pub(super) fn resource(&self) -> Result<ResourceRecord, StoreError> {
        let column = "resources.kind";
        let kind = match self.get::<String>(column)?.as_str() {
            "container" => ResourceKind::Container,
            "volume" => ResourceKind::Volume,
            "socket" => ResourceKind::Socket,
            other => return Err(corrupt(column, format!("unknown kind `{other}`"))),
        };
        Ok(ResourceRecord {
            execution_id: self.get("resources.execution_id")?,
            kind,
            name: self.get("resources.name")?,
            created_at: self.time("resources.created_at")?,
            removed_at: self.optional_time("resources.removed_at")?,
        })
    }

    /// A count of executions per status (`status`, `n`).
    pub(super) fn status_count(&self) -> Result<(Status, u64), StoreError> {
        Ok((self.status()?, self.count("executions.n")?))
    }

    /// A count of executions per tenant and status (`tenant_id`, `status`, `n`).
    pub(super) fn tenant_status_count(&self) -> Result<StatusCount, StoreError> {
        Ok(StatusCount {
            tenant_id: self.get("executions.tenant_id")?,
            status: self.status()?,
            count: self.count("executions.n")?,
            oldest: self.time("executions.oldest")?,
        })
    }

    /// The number and time of an execution's last event (`seq`, `at`).
    pub(super) fn last_event(&self) -> Result<(u64, DateTime<Utc>), StoreError> {
        Ok((self.count("events.seq")?, self.time("events.at")?))
    }
}

/// A small count as stored, saturated at `u32::MAX`.
fn narrow(count: u64) -> u32 {
    u32::try_from(count).unwrap_or(u32::MAX)
}

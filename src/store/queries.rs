//! The SQL text of the store, written once for both databases.
//!
//! Placeholders are `$1…$n` (SQLite accepts that form too), booleans are
//! `TRUE`/`FALSE`, and every statement is plain SQL both dialects run. The one
//! statement that differs, the claim, comes in two spellings built from one
//! text: [`CLAIM_SKIP_LOCKED`] and [`CLAIM_SINGLE_WRITER`]. Status names are spelled out here; a unit test
//! checks them against [`crate::execution::Status`].

/// Every column of `executions`, in the order [`super::row`] reads them.
macro_rules! columns {
    () => {
        "id, tenant_id, idempotency_key, request_hash, status, reason, repo, git_ref, \
         prompt, agent, limits, context_file, branch, base_commit, head_commit, session_id, \
         num_turns, input_tokens, output_tokens, cache_creation_input_tokens, \
         cache_read_input_tokens, cost_usd, tool_calls, result, files_changed, exit_code, \
         oom_killed, image, has_diff, has_bundle, owner, lease_expires_at, cancel_requested, \
         log_cursor, created_at, started_at, finished_at, updated_at, duration_ms, \
         gateway_requests, gateway_input_tokens, gateway_output_tokens, \
         gateway_cache_creation_input_tokens, gateway_cache_read_input_tokens, gateway_cost_usd, \
         record_model, replay_from, conversation, claimed, left_out, sandbox, policy, naming, \
         delivery_plan, delivery, hooks, retries, retried, parent_id, conversation_id, \
         streaming_input"
    };
}

/// The live statuses (claimed, not final).
macro_rules! live {
    () => {
        "'preparing', 'running', 'collecting'"
    };
}

/// The statuses that may still change.
macro_rules! unfinished {
    () => {
        "'queued', 'preparing', 'running', 'collecting'"
    };
}

/// The claim, fair across tenants: among queued executions whose tenant is
/// below its concurrency cap (the tenant's policy, else the global one, else
/// none), the one whose tenant has the fewest live executions, oldest first,
/// becomes `preparing` for `$1` with a lease until `$2`, started at `$3`
/// (none while an admin has paused claiming everywhere);
/// among tenants running equally few, the one whose last claim is oldest (or
/// that was never served) goes first, then the oldest queued execution. So a
/// tenant that queued fifty cannot hold back one that queued one: the next
/// free slot goes to the tenant running least, and tenants take turns. A
/// follow-up waits in the queue until its parent is final. `$lock` keeps concurrent
/// claimers apart where the database has row locks; the caps are kept by
/// serialising claimers (see [`super::dialect::Dialect::CLAIM_LOCK`]).
macro_rules! claim {
    ($lock:literal) => {
        concat!(
            "UPDATE executions \
             SET status = 'preparing', owner = $1, lease_expires_at = $2, started_at = $3, \
                 updated_at = $3 \
             WHERE id = (SELECT q.id FROM executions q \
                         LEFT JOIN (SELECT tenant_id, COUNT(*) AS live FROM executions \
                                    WHERE status IN (",
            live!(),
            ") GROUP BY tenant_id) l ON l.tenant_id = q.tenant_id \
                         LEFT JOIN tenant_turns t ON t.tenant_id = q.tenant_id \
                         WHERE q.status = 'queued' \
                           AND NOT EXISTS (SELECT 1 FROM claiming_pause) \
                           AND NOT EXISTS (SELECT 1 FROM executions p \
                                           WHERE p.id = q.parent_id AND p.status IN (",
            unfinished!(),
            ")) \
                           AND COALESCE(l.live, 0) < COALESCE( \
                               (SELECT max_concurrent FROM policies \
                                WHERE scope = 'tenant:' || q.tenant_id), \
                               (SELECT max_concurrent FROM policies WHERE scope = 'global'), \
                               2147483647) \
                         ORDER BY COALESCE(l.live, 0), (t.last_claim_at IS NOT NULL), \
                                  t.last_claim_at, q.id LIMIT 1 ",
            $lock,
            ") AND status = 'queued' RETURNING ",
            columns!()
        )
    };
}

/// The claim where rows can be locked: concurrent claimers skip each other's row.
pub(super) const CLAIM_SKIP_LOCKED: &str = claim!("FOR UPDATE OF q SKIP LOCKED");

/// The claim where one writer at a time holds the whole database (SQLite).
pub(super) const CLAIM_SINGLE_WRITER: &str = claim!("");

/// Records that tenant `$1` had an execution claimed at `$2` (its turn).
pub(super) const TAKE_TURN: &str = "INSERT INTO tenant_turns (tenant_id, last_claim_at) \
     VALUES ($1, $2) \
     ON CONFLICT (tenant_id) DO UPDATE SET last_claim_at = excluded.last_claim_at";

/// Claims one named execution (`$4`) if it is still queued: `preparing` for `$1`
/// with a lease until `$2`, started at `$3`. The status test in the statement
/// keeps it from racing a queue claim.
pub(super) const CLAIM_ONE: &str = concat!(
    "UPDATE executions \
     SET status = 'preparing', owner = $1, lease_expires_at = $2, started_at = $3, \
         updated_at = $3 \
     WHERE id = $4 AND status = 'queued' \
       AND NOT EXISTS (SELECT 1 FROM executions p WHERE p.id = executions.parent_id \
                       AND p.status IN (",
    unfinished!(),
    ")) RETURNING ",
    columns!()
);

/// The SQL names of [`live!`] and [`unfinished!`], for the drift test.
#[cfg(test)]
pub(super) const LIVE: &str = live!();
#[cfg(test)]
pub(super) const UNFINISHED: &str = unfinished!();

pub(super) const INSERT: &str = concat!(
    "INSERT INTO executions (id, tenant_id, idempotency_key, request_hash, status, repo, \
     git_ref, prompt, agent, limits, context_file, branch, created_at, updated_at, \
     record_model, replay_from, sandbox, policy, naming, delivery_plan, hooks, retries, \
     parent_id, conversation_id, sibling, streaming_input) \
     VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14, \
             $15, $16, $17, $18, $19, $20, $21, $22, $23, $24) \
     ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING ",
    columns!()
);

pub(super) const BY_IDEMPOTENCY_KEY: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM executions WHERE tenant_id = $1 AND idempotency_key = $2"
);

pub(super) const GET: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM executions WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2)"
);

/// After a page's `items` and `last_id`, `rows`: how many executions its
/// filters find, up to one more than the page (so one more means a next
/// page exists). The filters follow, then [`LIST_ROWS_END`], the page's size
/// plus one, and [`LIST_PAGE_ROWS`].
pub(super) const LIST_PAGE_MORE: &str =
    "(SELECT COUNT(*) FROM (SELECT 1 FROM executions WHERE 1 = 1";

/// Closes `rows`, opens the page's rows: newest first, the prompt only as far
/// as the preview shows it. The filters follow, then [`LIST_ROWS_END`], the
/// page's size and [`LIST_PAGE_END`]. (The sizes are written as numbers: a
/// bound `LIMIT` made SQLite prepare the statement again at every run, a
/// fifth of a listing's time.)
pub(super) const LIST_PAGE_ROWS: &str = ") m) AS rows FROM (SELECT id, tenant_id, status, reason, \
     repo, git_ref, SUBSTR(prompt, 1, 201) AS prompt_start, branch, head_commit, num_turns, \
     cost_usd, has_diff, cancel_requested, created_at, finished_at, duration_ms \
     FROM executions WHERE 1 = 1";

/// Orders a listing's rows; the limit follows.
pub(super) const LIST_ROWS_END: &str = " ORDER BY id DESC LIMIT ";

/// Closes a page's query.
pub(super) const LIST_PAGE_END: &str = ") q";

/// The fields of one [`crate::execution::ExecutionBrief`] as a JSON object
/// in its wire shape, from a row of [`LIST_PAGE_ROWS`]: `$object` is the
/// dialect's JSON object function, `$has_diff` and `$cancel_requested` spell
/// the booleans its way.
macro_rules! brief_object {
    ($object:literal, $has_diff:literal, $cancel_requested:literal) => {
        concat!(
            $object,
            "('id', id, 'tenant_id', tenant_id, 'status', status, 'reason', reason, ",
            "'repo', repo, 'ref', git_ref, 'prompt_preview', ",
            "CASE WHEN LENGTH(prompt_start) > 200 ",
            "THEN SUBSTR(prompt_start, 1, 200) || '\u{2026}' ELSE prompt_start END, ",
            "'branch', branch, 'head_commit', head_commit, 'num_turns', num_turns, ",
            "'cost_usd', cost_usd, 'has_diff', ",
            $has_diff,
            ", 'cancel_requested', ",
            $cancel_requested,
            ", 'created_at', created_at, 'finished_at', finished_at, ",
            "'duration_ms', duration_ms, 'links', ",
            $object,
            "('self', '/v1/executions/' || id))"
        )
    };
}

/// A page of briefs in one row (SQLite): `items`, the JSON array the API
/// sends as it is (a row per execution cost a hand-over between sqlx's
/// SQLite thread and the caller each; reading the JSON into Rust and writing
/// it again, a third of a listing's time); `last_id`, the page's oldest;
/// `rows` (see [`LIST_PAGE_MORE`], which follows). The objects are joined
/// as text, not by `json_group_array`, which would read each again; they
/// come newest first from the ordered subquery (the tests hold SQLite to
/// it).
pub(super) const LIST_PAGE_SQLITE: &str = concat!(
    "SELECT '[' || COALESCE(group_concat(",
    brief_object!(
        "json_object",
        "json(CASE WHEN has_diff THEN 'true' ELSE 'false' END)",
        "json(CASE WHEN cancel_requested THEN 'true' ELSE 'false' END)"
    ),
    ", ','), '') || ']' AS items, MIN(q.id) AS last_id, "
);

/// [`LIST_PAGE_SQLITE`] on PostgreSQL (in the order asked for).
pub(super) const LIST_PAGE_POSTGRES: &str = concat!(
    "SELECT CAST(COALESCE(json_agg(",
    brief_object!("json_build_object", "has_diff", "cancel_requested"),
    " ORDER BY id DESC), CAST('[]' AS json)) AS TEXT) AS items, \
     MIN(q.id) AS last_id, "
);

pub(super) const STATUS: &str =
    "SELECT status FROM executions WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2)";

/// The status of execution `$1` and who holds it (NULL: nobody).
pub(super) const HOLDER: &str = "SELECT status, owner FROM executions WHERE id = $1";

pub(super) const TAKE_OVER: &str = concat!(
    "UPDATE executions SET owner = $2, lease_expires_at = $3, updated_at = $4 \
     WHERE id = $1 AND status IN (",
    live!(),
    ") AND (owner IS NULL OR owner = $2 OR lease_expires_at IS NULL \
            OR lease_expires_at < $4) RETURNING ",
    columns!()
);

/// [`TAKE_OVER`] from the holder `$5`, lease or not.
pub(super) const TAKE_OVER_FROM: &str = concat!(
    "UPDATE executions SET owner = $2, lease_expires_at = $3, updated_at = $4 \
     WHERE id = $1 AND status IN (",
    live!(),
    ") AND owner = $5 RETURNING ",
    columns!()
);

/// [`super::Store::requeue`]: `$1` id, `$2` holder, `$3` now.
pub(super) const REQUEUE: &str = concat!(
    "UPDATE executions SET status = 'queued', owner = NULL, lease_expires_at = NULL, \
     retried = retried + 1, started_at = NULL, base_commit = NULL, head_commit = NULL, \
     session_id = NULL, log_cursor = 0, updated_at = $3 \
     WHERE id = $1 AND owner = $2 AND retried < retries AND status IN (",
    live!(),
    ") RETURNING ",
    columns!()
);

pub(super) const RENEW_LEASES: &str = concat!(
    "UPDATE executions SET lease_expires_at = $2, updated_at = $3 \
     WHERE owner = $1 AND status IN (",
    live!(),
    ")"
);

pub(super) const LIVE_EXECUTIONS: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM executions WHERE status IN (",
    live!(),
    ") ORDER BY id"
);

pub(super) const COUNTS: &str = concat!(
    "SELECT status, COUNT(*) AS n FROM executions WHERE status IN (",
    unfinished!(),
    ") GROUP BY status"
);

/// Every execution, counted by tenant and status (for the metrics at scrape time).
pub(super) const COUNTS_BY_TENANT: &str = "SELECT tenant_id, status, COUNT(*) AS n, \
     MIN(created_at) AS oldest FROM executions GROUP BY tenant_id, status ORDER BY tenant_id, status";

/// `$4…$7`: the allowed previous statuses (NULL where fewer); `$8` the holder.
pub(super) const TRANSITION: &str = concat!(
    "UPDATE executions SET status = $2, updated_at = $3 \
     WHERE id = $1 AND status IN ($4, $5, $6, $7) AND owner = $8 RETURNING ",
    columns!()
);

pub(super) const UPDATE_FACTS: &str = "UPDATE executions \
     SET base_commit = COALESCE($2, base_commit), git_ref = COALESCE($3, git_ref), \
         session_id = COALESCE($4, session_id), image = COALESCE($5, image), \
         started_at = COALESCE($6, started_at), updated_at = $7 \
     WHERE id = $1 AND owner = $8 RETURNING id";

/// The gateway's running totals of execution `$1`, at `$8`, and its record of
/// the conversation (`$9`, JSON), written by its holder `$10`.
pub(super) const GATEWAY_USAGE: &str = "UPDATE executions \
     SET gateway_requests = $2, gateway_input_tokens = $3, gateway_output_tokens = $4, \
         gateway_cache_creation_input_tokens = $5, gateway_cache_read_input_tokens = $6, \
         gateway_cost_usd = $7, updated_at = $8, conversation = $9 \
     WHERE id = $1 AND owner = $10 RETURNING id";

/// The final figures, written by the holder `$30`, who stays the owner (so
/// only it may append the events that tell of the end); the lease ends.
pub(super) const FINISH: &str = concat!(
    "UPDATE executions \
     SET status = $2, reason = $3, head_commit = COALESCE($4, head_commit), \
         session_id = COALESCE($5, session_id), num_turns = $6, input_tokens = $7, \
         output_tokens = $8, cache_creation_input_tokens = $9, cache_read_input_tokens = $10, \
         cost_usd = $11, tool_calls = $12, result = $13, files_changed = $14, exit_code = $15, \
         oom_killed = $16, has_diff = $17, has_bundle = $18, duration_ms = $19, \
         finished_at = $20, updated_at = $20, lease_expires_at = NULL, \
         gateway_requests = $21, gateway_input_tokens = $22, gateway_output_tokens = $23, \
         gateway_cache_creation_input_tokens = $24, gateway_cache_read_input_tokens = $25, \
         gateway_cost_usd = $26, conversation = $27, claimed = $28, left_out = $29 \
     WHERE id = $1 AND owner = $30 AND status IN (",
    unfinished!(),
    ") RETURNING ",
    columns!()
);

pub(super) const DELIVERY: &str = concat!(
    "UPDATE executions SET delivery = $2, updated_at = $3 WHERE id = $1 RETURNING ",
    columns!()
);

pub(super) const DELETE_ARTIFACTS: &str = "DELETE FROM artifacts WHERE execution_id = $1";

pub(super) const INSERT_ARTIFACT: &str =
    "INSERT INTO artifacts (execution_id, path, size, sha256) VALUES ($1, $2, $3, $4)";

pub(super) const ARTIFACTS: &str =
    "SELECT path, size, sha256 FROM artifacts WHERE execution_id = $1 ORDER BY path";

pub(super) const CANCEL_QUEUED: &str = "UPDATE executions \
     SET status = 'cancelled', reason = 'cancelled', cancel_requested = TRUE, \
         finished_at = $3, updated_at = $3, owner = NULL, lease_expires_at = NULL \
     WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2) AND status = 'queued' RETURNING id";

pub(super) const CANCEL_LIVE: &str = concat!(
    "UPDATE executions SET cancel_requested = TRUE, updated_at = $3 \
     WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2) AND status IN (",
    live!(),
    ") RETURNING id"
);

/// Locks the execution's row (the first write of the transaction) so appenders
/// to one execution take turns, and records the log cursor. Only its holder
/// `$4` writes: a replica that lost the lease appends nothing.
pub(super) const TOUCH_FOR_EVENTS: &str = "UPDATE executions \
     SET log_cursor = COALESCE($2, log_cursor), updated_at = $3 \
     WHERE id = $1 AND owner = $4 RETURNING id";

/// The execution's last event, if any: its number and time.
pub(super) const LAST_EVENT: &str = "SELECT seq, at FROM events \
     WHERE execution_id = $1 ORDER BY seq DESC LIMIT 1";

/// The start of a multi-row event insert; [`super::sql`] appends the rows.
pub(super) const INSERT_EVENTS: &str =
    "INSERT INTO events (execution_id, seq, at, source, type, body) ";

pub(super) const EVENTS_AFTER: &str = "SELECT seq, at, body FROM events \
     WHERE execution_id = $1 AND seq > $2 ORDER BY seq LIMIT $3";

/// [`EVENTS_AFTER`] cut where the bodies' running length passes `$4` (the
/// first event always kept).
pub(super) const EVENTS_PAGE: &str = "SELECT seq, at, body FROM ( \
     SELECT seq, at, body, SUM(LENGTH(body)) OVER (ORDER BY seq) AS running \
     FROM events WHERE execution_id = $1 AND seq > $2 ORDER BY seq LIMIT $3) page \
     WHERE running - LENGTH(body) < $4 ORDER BY seq";

pub(super) const RESOURCE_CREATED: &str = "INSERT INTO resources (execution_id, kind, name, created_at) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (execution_id, kind, name) \
     DO UPDATE SET created_at = excluded.created_at, removed_at = NULL";

pub(super) const RESOURCE_REMOVED: &str = "UPDATE resources SET removed_at = $3 \
     WHERE kind = $1 AND name = $2 AND removed_at IS NULL";

pub(super) const RESOURCES: &str = "SELECT execution_id, kind, name, created_at, removed_at \
     FROM resources WHERE execution_id = $1 ORDER BY created_at, kind, name";

pub(super) const PING: &str = "SELECT 1";

/// The highest follow-up number among the children of `$1` (0 when none).
pub(super) const LAST_SIBLING: &str =
    "SELECT COALESCE(MAX(sibling), 0) AS last FROM executions WHERE parent_id = $1";

/// The executions of conversation `$1` of tenant `$2`, in the order they
/// were made (its first execution from before conversations were recorded
/// has no `conversation_id`: its id is the conversation's).
pub(super) const CONVERSATION: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM executions WHERE (conversation_id = $1 OR (conversation_id IS NULL AND id = $1)) \
       AND tenant_id = $2 \
     ORDER BY id LIMIT 1000"
);

/// The follow-ups of `$1`, in the order they were made.
pub(super) const CHILDREN: &str = "SELECT id FROM executions WHERE parent_id = $1 ORDER BY id";

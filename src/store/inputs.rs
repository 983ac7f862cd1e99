//! Inputs to running agents in the store: any replica accepts a message or
//! an interrupt for an execution; the replica holding it delivers them in
//! order and marks each delivered, so nothing is said twice or lost when the
//! request reached another replica than the one running the agent.

use async_trait::async_trait;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{ColumnIndex, Encode, Executor, IntoArguments, Type};

use super::StoreError;
use super::codec::now;
use super::dialect::{Dialect, Field};
use super::row::Reader;
use super::sql::SqlStore;
use crate::execution::{AgentInput, InputKind};

/// Adds input `$3` of kind `$2` to execution `$1`, numbered after the last,
/// unless the execution's input was closed (then no row).
const ADD: &str = "INSERT INTO execution_inputs (execution_id, seq, kind, text, sender, created_at) \
     SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5 FROM execution_inputs \
     WHERE execution_id = $1 \
     HAVING COUNT(CASE WHEN kind = 'closed' THEN 1 END) = 0 RETURNING seq";

const PENDING: &str = "SELECT seq, kind, text, sender FROM execution_inputs \
     WHERE execution_id = $1 AND delivered_at IS NULL AND kind <> 'closed' ORDER BY seq";

const DELIVERED: &str = "UPDATE execution_inputs SET delivered_at = $3 \
     WHERE execution_id = $1 AND seq = $2";

/// The store's side of streaming input.
#[async_trait]
pub trait Inputs: Send + Sync {
    /// Accepts an input for execution `id`; answers its number, or `None`
    /// once its input was closed ([`InputKind::Closed`], which closes it).
    async fn add_input(
        &self,
        id: &str,
        kind: InputKind,
        text: &str,
        sender: &str,
    ) -> Result<Option<u64>, StoreError>;

    /// The inputs of `id` not yet delivered, in order.
    async fn pending_inputs(&self, id: &str) -> Result<Vec<AgentInput>, StoreError>;

    /// Marks input `seq` of `id` delivered.
    async fn input_delivered(&self, id: &str, seq: u64) -> Result<(), StoreError>;
}

#[async_trait]
impl<DB> Inputs for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'a> &'a str: ColumnIndex<DB::Row> + Encode<'a, DB> + Type<DB>,
    for<'a> Option<&'a str>: Encode<'a, DB>,
    String: Field<DB>,
    i64: Field<DB>,
    Option<i64>: for<'q> Encode<'q, DB>,
    f64: Field<DB>,
    Option<f64>: for<'q> Encode<'q, DB>,
    bool: Field<DB>,
    Json<Value>: Field<DB>,
    Option<DB::Time>: for<'q> Encode<'q, DB>,
{
    async fn add_input(
        &self,
        id: &str,
        kind: InputKind,
        text: &str,
        sender: &str,
    ) -> Result<Option<u64>, StoreError> {
        // Two inputs accepted at once may take the same number: the primary
        // key lets one win, the other takes the next.
        let mut attempts = 0;
        loop {
            let added = sqlx::query(ADD)
                .bind(id)
                .bind(kind.as_str())
                .bind(text)
                .bind(sender)
                .bind(DB::to_time(now()))
                .fetch_optional(self.pool())
                .await;
            match added {
                Ok(Some(row)) => return Reader::<DB>::new(&row).input_seq().map(Some),
                Ok(None) => return Ok(None),
                Err(sqlx::Error::Database(error))
                    if error.is_unique_violation() && attempts < 8 =>
                {
                    attempts += 1;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    async fn pending_inputs(&self, id: &str) -> Result<Vec<AgentInput>, StoreError> {
        let rows = sqlx::query(PENDING).bind(id).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|row| Reader::<DB>::new(row).input())
            .collect()
    }

    async fn input_delivered(&self, id: &str, seq: u64) -> Result<(), StoreError> {
        sqlx::query(DELIVERED)
            .bind(id)
            .bind(i64::try_from(seq).unwrap_or(i64::MAX))
            .bind(DB::to_time(now()))
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

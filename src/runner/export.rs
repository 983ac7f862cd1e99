//! The event log as a file, written whole from the store when an execution
//! ends. The store's events are the record: the recorder's running copy in
//! `events.jsonl` only holds what this process recorded, so after a takeover
//! it would be a fragment (the rest in another replica's data directory).

use std::io::Write;
use std::path::Path;

use crate::store::{Store, StoreError};

/// Events per store read: 500, and about 1 MiB.
const PAGE: u32 = 500;
const PAGE_BYTES: usize = 1 << 20;

/// What can stop an export.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExportError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The file could not be written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Writes every stored event of execution `id` to `path` (one JSON per
/// line, in order), replacing the file at once; returns how many.
pub(crate) async fn export_events(
    store: &dyn Store,
    id: &str,
    path: &Path,
) -> Result<u64, ExportError> {
    let io = |source: std::io::Error| ExportError::Io {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("jsonl.tmp");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(io)?);
    let mut after = 0;
    let mut written = 0;
    loop {
        let page = store.events_page(id, after, PAGE, PAGE_BYTES).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for event in &page {
            serde_json::to_writer(&mut file, event)
                .map_err(std::io::Error::from)
                .and_then(|()| file.write_all(b"\n"))
                .map_err(io)?;
            written += 1;
        }
    }
    file.flush().map_err(io)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution::{AppliedPolicy, Event, EventBody, ExecutionRequest, NewExecution};

    #[tokio::test]
    async fn the_file_holds_the_whole_log_whoever_recorded_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open(&format!("sqlite://{}", dir.path().join("s.db").display()))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let request: ExecutionRequest =
            serde_json::from_value(serde_json::json!({"repo": "/r", "prompt": "p"})).unwrap();
        let id = store
            .create_execution(NewExecution {
                id: uuid::Uuid::now_v7().to_string(),
                tenant_id: "t".into(),
                idempotency_key: None,
                request_hash: "h".into(),
                request,
                policy: AppliedPolicy::operator(),
                lineage: None,
            })
            .await
            .unwrap()
            .record
            .id
            .clone();
        // A first owner recorded 1..=600 (its file is gone with it), this one the rest.
        let bodies: Vec<EventBody> = (0..700)
            .map(|n| EventBody::progress(format!("step {n}")))
            .collect();
        let lease = std::time::Duration::from_millis(1);
        store.claim(&id, "first", lease).await.unwrap().unwrap();
        store
            .append_events(&id, "first", &bodies[..600], None)
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        store
            .take_over(&id, "second", lease)
            .await
            .unwrap()
            .unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, "only this replica's fragment\n").unwrap();
        store
            .append_events(&id, "second", &bodies[600..], None)
            .await
            .unwrap();

        assert_eq!(
            export_events(store.as_ref(), &id, &path).await.unwrap(),
            700
        );
        let events: Vec<Event> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(events, store.events_after(&id, 0, 1000).await.unwrap());
        assert!(!path.with_extension("jsonl.tmp").exists());
    }
}

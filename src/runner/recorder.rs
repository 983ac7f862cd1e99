//! Recording an execution's events: numbered and kept by the store, handed to
//! live subscribers through the hub, mirrored to `events.jsonl`, and shown to an
//! optional local observer (the terminal of `agentd run`).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::execution::{Event, EventBody};
use crate::gateway::Redactor;
use crate::runner::hub::EventHub;
use crate::store::{Store, StoreError};

/// Receives each event as it is recorded (a terminal renderer). Called in order,
/// from one task at a time; must not block.
pub trait EventObserver: Send + Sync {
    /// One more event.
    fn on_event(&self, event: &Event);
}

/// An observer that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl EventObserver for Silent {
    fn on_event(&self, _: &Event) {}
}

/// The recorder of one execution.
pub struct Recorder {
    execution: String,
    holder: String,
    lost: CancellationToken,
    store: Arc<dyn Store>,
    hub: Arc<EventHub>,
    observer: Arc<dyn EventObserver>,
    redactor: Arc<Redactor>,
    files: Mutex<Files>,
}

struct Files {
    events: Option<BufWriter<File>>,
    transcript: Option<BufWriter<File>>,
}

/// Attempts at a store write before an event is given up (with an error log).
const STORE_ATTEMPTS: u32 = 4;

impl Recorder {
    /// A recorder for `execution`, writing to the store as `holder` (the
    /// lease holder: the store refuses anyone else) and appending to the given
    /// files (created if missing).
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        execution: &str,
        holder: &str,
        store: Arc<dyn Store>,
        hub: Arc<EventHub>,
        observer: Arc<dyn EventObserver>,
        redactor: Arc<Redactor>,
        events_file: &Path,
        transcript_file: &Path,
    ) -> Recorder {
        let append = |path: &Path| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map(BufWriter::new)
                .map_err(|error| tracing::warn!(%error, path = %path.display(), "cannot open"))
                .ok()
        };
        Recorder {
            execution: execution.to_string(),
            holder: holder.to_string(),
            lost: CancellationToken::new(),
            store,
            hub,
            observer,
            redactor,
            files: Mutex::new(Files {
                events: append(events_file),
                transcript: append(transcript_file),
            }),
        }
    }

    /// The execution this recorder writes for.
    pub fn execution(&self) -> &str {
        &self.execution
    }

    /// Who writes: the holder of the execution's lease.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Cancelled once the store said the lease is held by another replica:
    /// whoever runs the execution here must stop (and leave the sandbox to
    /// the new holder).
    pub fn lease_lost(&self) -> &CancellationToken {
        &self.lost
    }

    /// Records the store's answer that the lease went to another replica.
    pub fn lose_lease(&self) {
        if !self.lost.is_cancelled() {
            tracing::error!(execution = %self.execution, "another replica holds the lease: stopping here");
        }
        self.lost.cancel();
    }

    /// Records one event.
    pub async fn emit(&self, body: EventBody) {
        self.record(vec![body], None).await;
    }

    /// Records the events one line of container output produced, together with
    /// the number of lines consumed so far, in one store transaction: after a
    /// crash, a re-attaching supervisor skips exactly the lines already recorded.
    pub async fn record(&self, bodies: Vec<EventBody>, log_cursor: Option<u64>) {
        if bodies.is_empty() && log_cursor.is_none() {
            return;
        }
        let bodies: Vec<EventBody> = bodies
            .into_iter()
            .map(|body| redact_body(&self.redactor, body))
            .collect();
        let mut attempt = 0;
        let stored = loop {
            attempt += 1;
            match self
                .store
                .append_events(&self.execution, &self.holder, &bodies, log_cursor)
                .await
            {
                Ok(stored) => break stored,
                Err(StoreError::LeaseLost { .. }) => {
                    self.lose_lease();
                    return;
                }
                Err(error) if attempt < STORE_ATTEMPTS => {
                    tracing::warn!(%error, execution = %self.execution, "storing events, retrying");
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
                Err(error) => {
                    tracing::error!(%error, execution = %self.execution, "events lost: the store refused them");
                    return;
                }
            }
        };
        crate::metrics::global().events_stored(stored.len() as u64);
        {
            let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(writer) = files.events.as_mut() {
                for event in &stored {
                    let _ = serde_json::to_writer(&mut *writer, event)
                        .map_err(std::io::Error::from)
                        .and_then(|_| writer.write_all(b"\n"));
                }
                let _ = writer.flush();
            }
        }
        for event in &stored {
            self.hub.publish(&self.execution, event);
            self.observer.on_event(event);
        }
    }

    /// The redactor secrets are removed with (for lines before they are parsed,
    /// and for cassettes).
    pub fn redactor(&self) -> &Arc<Redactor> {
        &self.redactor
    }

    /// Appends one raw line of agent output to the transcript file.
    pub fn transcript(&self, line: &str) {
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(writer) = files.transcript.as_mut() {
            let written = writer
                .write_all(line.as_bytes())
                .and_then(|_| writer.write_all(b"\n"))
                .and_then(|_| writer.flush());
            if let Err(error) = written {
                tracing::warn!(%error, "cannot write the transcript");
            }
        }
    }
}

/// Removes secrets from every string inside an event body.
fn redact_body(redactor: &Redactor, body: EventBody) -> EventBody {
    if redactor.is_empty() {
        return body;
    }
    let Ok(mut value) = serde_json::to_value(&body) else {
        return body;
    };
    redact_value(redactor, &mut value);
    serde_json::from_value(value).unwrap_or(body)
}

fn redact_value(redactor: &Redactor, value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(text) if redactor.contains_secret(text) => {
            *text = redactor.redact_str(text);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| redact_value(redactor, v)),
        serde_json::Value::Object(map) => map.values_mut().for_each(|v| redact_value(redactor, v)),
        _ => {}
    }
}

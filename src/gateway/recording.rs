//! Recording an execution's model exchanges into its cassette as they pass
//! through the gateway, with secrets removed from every byte first.

use std::sync::Arc;

use super::cassette::{CassetteWriter, ExchangeRecorder};
use super::forward::{Recorder, RecordingExchange};
use super::metered::{BodyEnd, BodyTap};
use super::redact::{RedactStream, Redactor};

/// Records into one cassette.
pub struct CassetteRecorder {
    writer: Arc<CassetteWriter>,
    redactor: Arc<Redactor>,
}

impl CassetteRecorder {
    /// Records into `writer`, removing `redactor`'s secrets.
    pub fn new(writer: Arc<CassetteWriter>, redactor: Arc<Redactor>) -> Self {
        CassetteRecorder { writer, redactor }
    }
}

impl Recorder for CassetteRecorder {
    fn begin(
        &self,
        method: &str,
        path: &str,
        headers: &hyper::HeaderMap,
        body: &[u8],
    ) -> Box<dyn RecordingExchange> {
        let body = self.redactor.redact_bytes(body);
        let path = self.redactor.redact_str(path);
        Box::new(Pending {
            recorder: self.writer.recorder(method, &path, headers, &body),
            writer: self.writer.clone(),
            redactor: self.redactor.clone(),
        })
    }
}

struct Pending {
    recorder: ExchangeRecorder,
    writer: Arc<CassetteWriter>,
    redactor: Arc<Redactor>,
}

impl RecordingExchange for Pending {
    fn respond(
        mut self: Box<Self>,
        status: u16,
        headers: &reqwest::header::HeaderMap,
    ) -> Box<dyn BodyTap> {
        self.recorder.on_response(status, headers);
        Box::new(Tap {
            stream: self.redactor.stream(),
            recorder: self.recorder,
            writer: self.writer,
        })
    }

    fn failed(mut self: Box<Self>, status: u16, message: &str) {
        let body = serde_json::json!({
            "type": "error",
            "error": {"type": "api_error", "message": format!("agentd gateway: {message}")},
        })
        .to_string();
        let mut headers = hyper::HeaderMap::new();
        headers.insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
        self.recorder.on_response(status, &headers);
        self.recorder
            .on_chunk(&self.redactor.redact_bytes(body.as_bytes()));
        write(&self.writer, self.recorder);
    }
}

struct Tap {
    recorder: ExchangeRecorder,
    stream: RedactStream,
    writer: Arc<CassetteWriter>,
}

impl BodyTap for Tap {
    fn chunk(&mut self, chunk: &[u8]) {
        let safe = self.stream.push(chunk);
        self.recorder.on_chunk(&safe);
    }

    fn finish(mut self: Box<Self>, end: BodyEnd) {
        let tail = self.stream.finish();
        self.recorder.on_chunk(&tail);
        if let Some(reason) = end.interruption() {
            self.recorder.on_error(reason);
        }
        write(&self.writer, self.recorder);
    }
}

fn write(writer: &CassetteWriter, recorder: ExchangeRecorder) {
    if let Err(error) = writer.append(&recorder.finish()) {
        tracing::warn!(%error, "cannot append to the cassette");
    }
}

#[cfg(test)]
#[path = "recording_tests.rs"]
mod tests;

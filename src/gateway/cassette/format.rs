//! The cassette file: JSON Lines, a header line then one exchange per line.
//!
//! Bodies are kept as bytes in memory; on disk a body is its text when it is
//! UTF-8 (the common case: JSON and server-sent events stay readable and
//! diffable) and base64 with a `*_base64: true` flag otherwise.

use std::path::Path;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::CassetteError;

/// The cassette format version this build writes and reads.
pub const CASSETTE_VERSION: u32 = 1;

/// The first line of a cassette: which format, when and by what it was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CassetteHeader {
    /// Format version; [`CASSETTE_VERSION`] for files this build writes.
    pub cassette: u32,
    /// When the recording started.
    pub created_at: DateTime<Utc>,
    /// The agentd version that recorded it.
    pub agentd: String,
}

impl CassetteHeader {
    /// A header for a recording starting now, by this build.
    pub fn now() -> CassetteHeader {
        CassetteHeader {
            cassette: CASSETTE_VERSION,
            created_at: Utc::now(),
            agentd: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// One request to the model and its answer, as the sandbox saw them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// Order in which the requests started in the execution, from 0.
    pub seq: u64,
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path with query, e.g. `/v1/messages?beta=true`.
    pub path: String,
    /// The request headers worth keeping (content-type, anthropic-version,
    /// anthropic-beta); never a credential.
    pub request_headers: Vec<(String, String)>,
    /// The request body as sent.
    pub request_body: Vec<u8>,
    /// HTTP status answered.
    pub status: u16,
    /// The response headers a replay needs (content-type, request-id, retry-after).
    pub response_headers: Vec<(String, String)>,
    /// The response body as received: the whole server-sent event stream for
    /// streamed answers.
    pub response_body: Vec<u8>,
    /// When the request started, in ms since the execution's first request.
    pub started_ms: u64,
    /// Time from the request's start to the first response body byte, if any came.
    pub first_byte_ms: Option<u64>,
    /// Time from the request's start to the end of the response body.
    pub duration_ms: u64,
    /// Assistant messages in the request (the conversation turn it asks for),
    /// for Messages API calls with a readable body.
    pub turn: Option<usize>,
    /// The response body was longer than the recording cap and is cut short;
    /// a replay refuses such a cassette.
    pub truncated: bool,
    /// Why the response body ended early (the upstream stream broke), if it did;
    /// a replay sends the recorded bytes and then breaks the connection too.
    pub interrupted: Option<String>,
}

impl Exchange {
    /// Whether `needle` occurs anywhere in the exchange: path, header values,
    /// bodies (raw bytes, whatever their encoding on disk) or the interruption.
    pub fn contains(&self, needle: &str) -> bool {
        let needle = needle.as_bytes();
        let in_headers = |headers: &[(String, String)]| {
            headers.iter().any(|(name, value)| {
                find(name.as_bytes(), needle) || find(value.as_bytes(), needle)
            })
        };
        find(self.path.as_bytes(), needle)
            || in_headers(&self.request_headers)
            || in_headers(&self.response_headers)
            || find(&self.request_body, needle)
            || find(&self.response_body, needle)
            || self
                .interrupted
                .as_deref()
                .is_some_and(|reason| find(reason.as_bytes(), needle))
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// A whole cassette, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cassette {
    /// The header line.
    pub header: CassetteHeader,
    /// The exchanges in file order (the order their answers ended).
    pub exchanges: Vec<Exchange>,
}

impl Cassette {
    /// Reads a cassette file; errors name the line at fault.
    pub fn load(path: &Path) -> Result<Cassette, CassetteError> {
        let text = std::fs::read_to_string(path).map_err(|source| CassetteError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Cassette::parse(&text)
    }

    /// Reads a cassette from its text. Blank lines are skipped; the first other
    /// line must be a header of a version this build reads.
    pub fn parse(text: &str) -> Result<Cassette, CassetteError> {
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(index, line)| (index + 1, line))
            .filter(|(_, line)| !line.trim().is_empty());
        let Some((number, first)) = lines.next() else {
            return Err(CassetteError::Empty);
        };
        let header: CassetteHeader =
            serde_json::from_str(first).map_err(|error| CassetteError::Line {
                line: number,
                problem: format!("not a cassette header: {error}"),
            })?;
        if header.cassette != CASSETTE_VERSION {
            return Err(CassetteError::Version {
                found: header.cassette,
                supported: CASSETTE_VERSION,
            });
        }
        let exchanges = lines
            .map(|(number, line)| {
                let problem = |problem: String| CassetteError::Line {
                    line: number,
                    problem,
                };
                let mut deserializer = serde_json::Deserializer::from_str(line);
                let wire: WireExchange = serde_path_to_error::deserialize(&mut deserializer)
                    .map_err(|error| problem(error.to_string()))?;
                wire.into_exchange().map_err(problem)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Cassette { header, exchanges })
    }

    /// Whether `needle` occurs in any exchange (see [`Exchange::contains`]).
    pub fn contains(&self, needle: &str) -> bool {
        self.exchanges
            .iter()
            .any(|exchange| exchange.contains(needle))
    }

    /// Checks that none of `secrets` occurs in the cassette; the error names the
    /// secret by its index in `secrets` and the exchange, never the secret itself.
    pub fn assert_free_of(&self, secrets: &[&str]) -> Result<(), CassetteError> {
        for exchange in &self.exchanges {
            if let Some(index) = secrets
                .iter()
                .position(|secret| !secret.is_empty() && exchange.contains(secret))
            {
                return Err(CassetteError::SecretFound {
                    index,
                    seq: exchange.seq,
                });
            }
        }
        Ok(())
    }
}

/// The on-disk form of one exchange.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireExchange {
    seq: u64,
    method: String,
    path: String,
    request_headers: Vec<(String, String)>,
    request_body: String,
    #[serde(default, skip_serializing_if = "is_false")]
    request_body_base64: bool,
    status: u16,
    response_headers: Vec<(String, String)>,
    response_body: String,
    #[serde(default, skip_serializing_if = "is_false")]
    response_body_base64: bool,
    started_ms: u64,
    first_byte_ms: Option<u64>,
    duration_ms: u64,
    turn: Option<usize>,
    #[serde(default, skip_serializing_if = "is_false")]
    truncated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    interrupted: Option<String>,
}

fn is_false(flag: &bool) -> bool {
    !flag
}

/// A body as text, or as base64 with the flag set when it is not UTF-8.
fn encode(body: &[u8]) -> (String, bool) {
    match std::str::from_utf8(body) {
        Ok(text) => (text.to_string(), false),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(body), true),
    }
}

fn decode(text: String, base64: bool, field: &str) -> Result<Vec<u8>, String> {
    if base64 {
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(|error| format!("{field}: invalid base64: {error}"))
    } else {
        Ok(text.into_bytes())
    }
}

impl WireExchange {
    fn from_exchange(exchange: &Exchange) -> WireExchange {
        let (request_body, request_body_base64) = encode(&exchange.request_body);
        let (response_body, response_body_base64) = encode(&exchange.response_body);
        WireExchange {
            seq: exchange.seq,
            method: exchange.method.clone(),
            path: exchange.path.clone(),
            request_headers: exchange.request_headers.clone(),
            request_body,
            request_body_base64,
            status: exchange.status,
            response_headers: exchange.response_headers.clone(),
            response_body,
            response_body_base64,
            started_ms: exchange.started_ms,
            first_byte_ms: exchange.first_byte_ms,
            duration_ms: exchange.duration_ms,
            turn: exchange.turn,
            truncated: exchange.truncated,
            interrupted: exchange.interrupted.clone(),
        }
    }

    fn into_exchange(self) -> Result<Exchange, String> {
        Ok(Exchange {
            seq: self.seq,
            method: self.method,
            path: self.path,
            request_headers: self.request_headers,
            request_body: decode(self.request_body, self.request_body_base64, "request_body")?,
            status: self.status,
            response_headers: self.response_headers,
            response_body: decode(
                self.response_body,
                self.response_body_base64,
                "response_body",
            )?,
            started_ms: self.started_ms,
            first_byte_ms: self.first_byte_ms,
            duration_ms: self.duration_ms,
            turn: self.turn,
            truncated: self.truncated,
            interrupted: self.interrupted,
        })
    }
}

/// One line of JSON (without the newline) for a header.
pub(crate) fn header_line(header: &CassetteHeader) -> Result<String, serde_json::Error> {
    serde_json::to_string(header)
}

/// One line of JSON (without the newline) for an exchange.
pub(crate) fn exchange_line(exchange: &Exchange) -> Result<String, serde_json::Error> {
    serde_json::to_string(&WireExchange::from_exchange(exchange))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seq: u64) -> Exchange {
        Exchange {
            seq,
            method: "POST".into(),
            path: "/v1/messages?beta=true".into(),
            request_headers: vec![("content-type".into(), "application/json".into())],
            request_body: br#"{"model":"m","messages":[{"role":"user","content":"h\u00e9"}]}"#
                .to_vec(),
            status: 200,
            response_headers: vec![("content-type".into(), "text/event-stream".into())],
            response_body: "event: ping\ndata: {\"type\":\"ping\"}\n\n"
                .as_bytes()
                .to_vec(),
            started_ms: 12,
            first_byte_ms: Some(3),
            duration_ms: 40,
            turn: Some(0),
            truncated: false,
            interrupted: None,
        }
    }

    fn file_of(exchanges: &[Exchange]) -> String {
        let mut text = header_line(&CassetteHeader::now()).unwrap();
        text.push('\n');
        for exchange in exchanges {
            text.push_str(&exchange_line(exchange).unwrap());
            text.push('\n');
        }
        text
    }

    #[test]
    fn round_trips_text_and_binary_bodies() {
        let text = sample(0);
        let mut binary = sample(1);
        binary.request_body = vec![0xff, 0x00, b'{', 0xc3];
        binary.response_body = vec![0x80, 0x81, b'\n', 0xfe];
        binary.truncated = true;
        binary.interrupted = Some("upstream reset".into());
        binary.first_byte_ms = None;
        binary.turn = None;
        let file = file_of(&[text.clone(), binary.clone()]);
        let lines: Vec<&str> = file.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(
            lines[1].contains(r#""response_body":"event: ping\n"#),
            "{}",
            lines[1]
        );
        assert!(!lines[1].contains("base64"), "{}", lines[1]);
        assert!(
            lines[2].contains(r#""request_body_base64":true"#),
            "{}",
            lines[2]
        );
        assert!(
            lines[2].contains(r#""response_body_base64":true"#),
            "{}",
            lines[2]
        );

        let cassette = Cassette::parse(&file).unwrap();
        assert_eq!(cassette.header.cassette, CASSETTE_VERSION);
        assert_eq!(cassette.header.agentd, env!("CARGO_PKG_VERSION"));
        assert_eq!(cassette.exchanges, vec![text, binary]);
    }

    #[test]
    fn errors_name_the_line() {
        let good = exchange_line(&sample(0)).unwrap();
        let header = header_line(&CassetteHeader::now()).unwrap();
        let cases = [
            (format!("{header}\n{good}\n{{\"seq\":1}}\n"), 3, "method"),
            (format!("{header}\n\n{good}\nnot json\n"), 4, ""),
            (format!("{good}\n"), 1, "cassette header"),
            (
                format!(
                    "{header}\n{}\n",
                    good.replace("\"seq\":0", "\"seq\":0,\"extra\":1")
                ),
                2,
                "extra",
            ),
            (
                format!(
                    "{header}\n{}\n",
                    good.replace(
                        "\"status\":200",
                        "\"request_body_base64\":true,\"status\":200"
                    )
                ),
                2,
                "request_body: invalid base64",
            ),
        ];
        for (text, line, problem) in cases {
            let error = Cassette::parse(&text).unwrap_err();
            let message = error.to_string();
            assert!(
                matches!(error, CassetteError::Line { line: l, .. } if l == line),
                "{message}"
            );
            assert!(message.contains(&format!("line {line}")), "{message}");
            assert!(message.contains(problem), "{message}");
        }
        assert!(matches!(Cassette::parse("\n\n"), Err(CassetteError::Empty)));
        let future = header.replace("\"cassette\":1", "\"cassette\":2");
        assert!(matches!(
            Cassette::parse(&future),
            Err(CassetteError::Version { found: 2, .. })
        ));
    }

    #[test]
    fn finds_secrets_everywhere_without_naming_them() {
        let mut exchange = sample(4);
        exchange.path = "/v1/messages?key=sk-ant-123".into();
        let mut in_binary_body = sample(5);
        in_binary_body.response_body = b"\x80sk-ant-123\xff".to_vec();
        let mut in_header = sample(6);
        in_header
            .response_headers
            .push(("request-id".into(), "sk-ant-123".into()));
        for exchange in [exchange, in_binary_body, in_header] {
            let seq = exchange.seq;
            let cassette = Cassette {
                header: CassetteHeader::now(),
                exchanges: vec![sample(0), exchange],
            };
            assert!(cassette.contains("sk-ant-123"));
            let error = cassette
                .assert_free_of(&["nothing", "", "sk-ant-123"])
                .unwrap_err();
            assert!(
                matches!(error, CassetteError::SecretFound { index: 2, seq: s } if s == seq),
                "{error}"
            );
            assert!(!error.to_string().contains("sk-ant-123"), "{error}");
        }
        let clean = Cassette {
            header: CassetteHeader::now(),
            exchanges: vec![sample(0)],
        };
        assert!(!clean.contains("sk-ant-123"));
        assert!(clean.assert_free_of(&["sk-ant-123", ""]).is_ok());
    }
}

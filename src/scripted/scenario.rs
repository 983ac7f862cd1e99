//! The scenario a scripted model plays: the assistant turns it answers, their
//! token figures, and the errors it answers before each.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::execution::Usage;

/// A scripted conversation, read from a JSON file.
///
/// Turn N answers a request whose `messages` already hold N assistant messages,
/// so playing a scenario needs no per-conversation state: a retried request gets
/// the same turn again, and one server can play several conversations at once.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The model name every answer reports. Default: echo the request's `model`.
    #[serde(default)]
    pub model: Option<String>,
    /// The scripted assistant turns, in conversation order; at least one.
    pub turns: Vec<Turn>,
    /// What to answer when asked for a turn past the last one. Default: [`AfterLast::End`].
    #[serde(default)]
    pub after_last: AfterLast,
    /// How streamed answers are framed on the wire. Default: [`Framing::Chunked`].
    #[serde(default)]
    pub framing: Framing,
}

/// One assistant message of the script.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    /// The message's content blocks, in order; at least one.
    pub content: Vec<Block>,
    /// Token figures reported for the message (what a gateway meters). Default: all zero.
    #[serde(default, deserialize_with = "strict_usage")]
    pub usage: Usage,
    /// Error answers given before the turn, one per attempt, so a client's retry
    /// logic can be exercised. Default: none.
    #[serde(default)]
    pub errors: Vec<ErrorAnswer>,
    /// Milliseconds to wait before the first byte of the turn's answer (errors
    /// are answered at once). Default: 0.
    #[serde(default)]
    pub delay_ms: u64,
    /// The stop reason reported. Default: `tool_use` when the turn holds a
    /// `tool_use` block, else `end_turn`.
    #[serde(default)]
    pub stop_reason: Option<StopReason>,
    /// Texts the request for this turn must carry somewhere in its
    /// `messages` (a resumed session's earlier turns, a message sent while
    /// the agent ran); when one is missing the model answers 400
    /// `invalid_request_error` "scripted expectation failed", so the client
    /// fails loudly. Default: none.
    #[serde(default)]
    pub expect: Vec<String>,
}

/// One content block of an assistant message, tagged by `type` as in the Messages API.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Block {
    /// Assistant prose.
    Text {
        /// The text; streamed in several `text_delta` pieces.
        text: String,
    },
    /// A tool call the client is expected to execute.
    ToolUse {
        /// The tool-use id. Default: `toolu_<turn>_<block index>`, unique in a conversation.
        #[serde(default)]
        id: Option<String>,
        /// The tool's name as the client declared it, e.g. `Write`, `Bash`.
        name: String,
        /// The tool's arguments; a JSON object. Default: `{}`.
        #[serde(default = "empty_object")]
        input: Value,
        /// The tool's arguments as JSON text, sent exactly as written instead of
        /// `input`: for JSON a parsed value cannot hold, such as a lone surrogate
        /// escape (`"\udc80"`) that a JavaScript client reads without complaint.
        /// Default: none (`input` is sent).
        #[serde(default)]
        input_json: Option<String>,
    },
    /// Extended-thinking text, so adapters can be tested on it.
    Thinking {
        /// The reasoning text; streamed as `thinking_delta` pieces.
        thinking: String,
        /// The opaque signature sent as `signature_delta`. Default: derived from the text.
        #[serde(default)]
        signature: Option<String>,
    },
}

/// An error answer: an HTTP status with a Messages API error body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorAnswer {
    /// HTTP status, 400–599: e.g. 429 (rate limited), 529 (overloaded), 500.
    /// 429 and 529 carry `retry-after: 0` so clients retry at once.
    pub status: u16,
    /// The error type in the body: `rate_limit_error`, `overloaded_error`, `api_error`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// The error message in the body. Default: `scripted error`.
    #[serde(default = "default_error_message")]
    pub message: String,
}

/// Why the model stopped, as the Messages API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model finished its answer.
    EndTurn,
    /// The model waits for tool results.
    ToolUse,
    /// The answer hit `max_tokens`.
    MaxTokens,
    /// The answer hit a stop sequence.
    StopSequence,
    /// A long-running turn was paused.
    PauseTurn,
    /// The model declined to answer.
    Refusal,
}

impl StopReason {
    /// The wire name, e.g. `end_turn`.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::EndTurn => "end_turn",
            StopReason::ToolUse => "tool_use",
            StopReason::MaxTokens => "max_tokens",
            StopReason::StopSequence => "stop_sequence",
            StopReason::PauseTurn => "pause_turn",
            StopReason::Refusal => "refusal",
        }
    }
}

/// What the model answers when asked for a turn past the script.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AfterLast {
    /// A text `scenario finished` with `end_turn` and zero usage, so the client
    /// stops and the scenario's token totals stay exact.
    #[default]
    End,
    /// Replay the last turn (its content, usage and delay; not its errors), for
    /// clients that keep asking, e.g. to exercise a max-turns limit.
    RepeatLast,
}

/// How the model frames a streamed answer's body, so a gateway (or any client)
/// can be tested against each framing a real upstream may use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Framing {
    /// `Transfer-Encoding: chunked`, one chunk per event, sent as they are made.
    #[default]
    Chunked,
    /// The whole event stream in one body with a `Content-Length`, on a
    /// connection kept alive for the next request.
    ContentLength,
}

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The text is not well-formed JSON.
    #[error("scenario is not valid JSON: {message}")]
    Syntax {
        /// The parser's message, with line and column.
        message: String,
    },
    /// A field is missing, unknown, of the wrong type, or has a value the model cannot play.
    #[error("scenario field `{field}`: {message}")]
    Field {
        /// Where, e.g. `turns[1].content[0].type` (`.` for the top level).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// One of the above, in a named file.
    #[error("scenario file {}: {source}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: Box<ScenarioError>,
    },
}

impl Scenario {
    /// Reads and checks a scenario from JSON text.
    pub fn from_json(text: &str) -> Result<Scenario, ScenarioError> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let scenario: Scenario =
            serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
                let field = error.path().to_string();
                let inner = error.into_inner();
                if inner.is_data() {
                    ScenarioError::Field {
                        field,
                        message: inner.to_string(),
                    }
                } else {
                    ScenarioError::Syntax {
                        message: inner.to_string(),
                    }
                }
            })?;
        deserializer.end().map_err(|error| ScenarioError::Syntax {
            message: error.to_string(),
        })?;
        scenario.check()?;
        Ok(scenario)
    }

    /// Reads and checks a scenario file; errors name the file.
    pub fn from_file(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Scenario::from_json(&text).map_err(|source| ScenarioError::InFile {
            path: path.to_path_buf(),
            source: Box::new(source),
        })
    }

    /// The token figures of all scripted turns added up: what a client (or a
    /// gateway) should count after playing the script once through, with no side
    /// requests counted (they answer zero usage) and no turn repeated.
    pub fn total_usage(&self) -> Usage {
        let mut total = Usage::default();
        for turn in &self.turns {
            total.add(&turn.usage);
        }
        total
    }

    /// The checks serde cannot express.
    fn check(&self) -> Result<(), ScenarioError> {
        let invalid = |field: String, message: &str| ScenarioError::Field {
            field,
            message: message.to_string(),
        };
        if self.model.as_deref().is_some_and(str::is_empty) {
            return Err(invalid("model".into(), "must not be empty when given"));
        }
        if self.turns.is_empty() {
            return Err(invalid(
                "turns".into(),
                "a scenario needs at least one turn",
            ));
        }
        for (t, turn) in self.turns.iter().enumerate() {
            if turn.content.is_empty() {
                return Err(invalid(
                    format!("turns[{t}].content"),
                    "a turn needs at least one block",
                ));
            }
            for (b, block) in turn.content.iter().enumerate() {
                if let Block::ToolUse {
                    id,
                    name,
                    input,
                    input_json,
                } = block
                {
                    let at = format!("turns[{t}].content[{b}]");
                    if name.is_empty() {
                        return Err(invalid(format!("{at}.name"), "must not be empty"));
                    }
                    if id.as_deref().is_some_and(str::is_empty) {
                        return Err(invalid(format!("{at}.id"), "must not be empty when given"));
                    }
                    if !input.is_object() {
                        return Err(invalid(format!("{at}.input"), "must be a JSON object"));
                    }
                    if let Some(text) = input_json {
                        if !text.trim_start().starts_with('{') {
                            return Err(invalid(
                                format!("{at}.input_json"),
                                "must be the text of a JSON object",
                            ));
                        }
                        if input.as_object().is_some_and(|input| !input.is_empty()) {
                            return Err(invalid(
                                format!("{at}.input_json"),
                                "give `input` or `input_json`, not both",
                            ));
                        }
                    }
                }
            }
            for (e, error) in turn.errors.iter().enumerate() {
                let at = format!("turns[{t}].errors[{e}]");
                if !(400..=599).contains(&error.status) {
                    return Err(invalid(format!("{at}.status"), "must be within 400–599"));
                }
                if error.kind.is_empty() {
                    return Err(invalid(format!("{at}.type"), "must not be empty"));
                }
            }
        }
        Ok(())
    }
}

impl Turn {
    /// The stop reason this turn reports: the override, else `tool_use` when it
    /// calls a tool, else `end_turn`.
    pub fn effective_stop_reason(&self) -> StopReason {
        self.stop_reason.unwrap_or_else(|| {
            if self
                .content
                .iter()
                .any(|block| matches!(block, Block::ToolUse { .. }))
            {
                StopReason::ToolUse
            } else {
                StopReason::EndTurn
            }
        })
    }
}

/// [`Usage`] as a scenario spells it: unknown figures are refused, so a typo
/// cannot silently count as zero.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageFigures {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    cache_creation_input_tokens: u64,
    #[serde(default)]
    cache_read_input_tokens: u64,
}

fn strict_usage<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Usage, D::Error> {
    let figures = UsageFigures::deserialize(deserializer)?;
    Ok(Usage {
        input_tokens: figures.input_tokens,
        output_tokens: figures.output_tokens,
        cache_creation_input_tokens: figures.cache_creation_input_tokens,
        cache_read_input_tokens: figures.cache_read_input_tokens,
    })
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

fn default_error_message() -> String {
    "scripted error".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_error(text: &str) -> (String, String) {
        match Scenario::from_json(text) {
            Err(ScenarioError::Field { field, message }) => (field, message),
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn reads_a_full_scenario_with_defaults() {
        let scenario = Scenario::from_json(
            r#"{"turns":[
                {"content":[{"type":"thinking","thinking":"hmm"},
                            {"type":"text","text":"I'll write it."},
                            {"type":"tool_use","name":"Write","input":{"file_path":"/x","content":"y"}}],
                 "usage":{"input_tokens":120,"output_tokens":30,"cache_read_input_tokens":5},
                 "errors":[{"status":429,"type":"rate_limit_error","message":"slow down"}],
                 "delay_ms":7},
                {"content":[{"type":"text","text":"Done."}],"usage":{"input_tokens":150,"output_tokens":10},
                 "stop_reason":"max_tokens"}]}"#,
        )
        .unwrap();
        assert_eq!(scenario.model, None);
        assert_eq!(scenario.after_last, AfterLast::End);
        assert_eq!(scenario.turns[0].delay_ms, 7);
        assert_eq!(scenario.turns[0].errors[0].status, 429);
        assert_eq!(
            scenario.turns[0].effective_stop_reason(),
            StopReason::ToolUse
        );
        assert_eq!(
            scenario.turns[1].effective_stop_reason(),
            StopReason::MaxTokens
        );
        assert_eq!(
            scenario.total_usage(),
            Usage {
                input_tokens: 270,
                output_tokens: 40,
                cache_creation_input_tokens: 0,
                cache_read_input_tokens: 5,
            }
        );
    }

    #[test]
    fn text_only_turn_ends_the_turn() {
        let scenario =
            Scenario::from_json(r#"{"turns":[{"content":[{"type":"text","text":"hi"}]}]}"#)
                .unwrap();
        assert_eq!(
            scenario.turns[0].effective_stop_reason(),
            StopReason::EndTurn
        );
        assert_eq!(scenario.turns[0].usage, Usage::default());
    }

    #[test]
    fn unknown_fields_are_named() {
        let (field, message) = field_error(r#"{"turns":[], "modle":"x"}"#);
        assert_eq!(field, "modle");
        assert!(message.contains("unknown field `modle`"), "{message}");

        let (field, _) = field_error(
            r#"{"turns":[{"content":[{"type":"text","text":"a"}],"usage":{"input_token":1}}]}"#,
        );
        assert_eq!(field, "turns[0].usage.input_token");

        let (field, message) =
            field_error(r#"{"turns":[{"content":[{"type":"text","text":"a","colour":"red"}]}]}"#);
        assert_eq!(field, "turns[0].content[0]");
        assert!(message.contains("unknown field `colour`"), "{message}");
    }

    #[test]
    fn missing_and_empty_turns_are_refused() {
        let (field, message) = field_error(r#"{"model":"m"}"#);
        assert!(
            message.contains("missing field `turns`"),
            "{field}: {message}"
        );
        let (field, _) = field_error(r#"{"turns":[]}"#);
        assert_eq!(field, "turns");
        let (field, _) = field_error(r#"{"turns":[{"content":[]}]}"#);
        assert_eq!(field, "turns[0].content");
    }

    #[test]
    fn bad_block_type_is_named() {
        let (field, message) = field_error(
            r#"{"turns":[{"content":[{"type":"text","text":"a"}]},
                         {"content":[{"type":"image","source":{}}]}]}"#,
        );
        assert_eq!(field, "turns[1].content[0].type");
        assert!(message.contains("unknown variant `image`"), "{message}");
    }

    #[test]
    fn raw_tool_input_must_look_like_an_object_and_stand_alone() {
        let scenario = Scenario::from_json(
            r#"{"turns":[{"content":[{"type":"tool_use","name":"Bash","input_json":"{\"command\":\"echo \\udc80\"}"}]}]}"#,
        )
        .unwrap();
        let Block::ToolUse { input_json, .. } = &scenario.turns[0].content[0] else {
            panic!("a tool call");
        };
        assert_eq!(input_json.as_deref(), Some(r#"{"command":"echo \udc80"}"#));
        let (field, message) = field_error(
            r#"{"turns":[{"content":[{"type":"tool_use","name":"Bash","input_json":"ls"}]}]}"#,
        );
        assert_eq!(field, "turns[0].content[0].input_json");
        assert!(message.contains("JSON object"), "{message}");
        let (field, message) = field_error(
            r#"{"turns":[{"content":[{"type":"tool_use","name":"Bash","input":{"a":1},"input_json":"{}"}]}]}"#,
        );
        assert_eq!(field, "turns[0].content[0].input_json");
        assert!(message.contains("not both"), "{message}");
    }

    #[test]
    fn values_the_model_cannot_play_are_refused() {
        let (field, _) = field_error(
            r#"{"turns":[{"content":[{"type":"tool_use","name":"Bash","input":"ls"}]}]}"#,
        );
        assert_eq!(field, "turns[0].content[0].input");
        let (field, _) = field_error(
            r#"{"turns":[{"content":[{"type":"text","text":"a"}],"errors":[{"status":200,"type":"x"}]}]}"#,
        );
        assert_eq!(field, "turns[0].errors[0].status");
        let (field, message) = field_error(
            r#"{"turns":[{"content":[{"type":"text","text":"a"}],"stop_reason":"done"}]}"#,
        );
        assert_eq!(field, "turns[0].stop_reason");
        assert!(message.contains("unknown variant `done`"), "{message}");
        let (field, _) = field_error(
            r#"{"turns":[{"content":[{"type":"text","text":"a"}]}],"after_last":"loop"}"#,
        );
        assert_eq!(field, "after_last");
    }

    #[test]
    fn malformed_json_is_a_syntax_error() {
        let error = Scenario::from_json(r#"{"turns":[ "#).unwrap_err();
        assert!(matches!(error, ScenarioError::Syntax { .. }), "{error:?}");
        let error =
            Scenario::from_json(r#"{"turns":[{"content":[{"type":"text","text":"a"}]}]} x"#)
                .unwrap_err();
        assert!(matches!(error, ScenarioError::Syntax { .. }), "{error:?}");
    }

    #[test]
    fn file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        std::fs::write(&path, r#"{"turns":[{"content":[{"type":"txt"}]}]}"#).unwrap();
        let error = Scenario::from_file(&path).unwrap_err();
        let shown = error.to_string();
        assert!(shown.contains("bad.json"), "{shown}");
        assert!(shown.contains("turns[0].content[0]"), "{shown}");
        let missing = Scenario::from_file(&dir.path().join("none.json")).unwrap_err();
        assert!(matches!(missing, ScenarioError::Read { .. }), "{missing:?}");
    }

    #[test]
    fn shipped_example_scenarios_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/scenarios");
        for name in ["demo.json", "ends-at-once.json"] {
            let scenario = Scenario::from_file(&dir.join(name)).unwrap();
            assert!(scenario.total_usage().output_tokens > 0, "{name}");
        }
    }
}

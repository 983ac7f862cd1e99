//! The tool calls the model asked for, read from its answers as they stream
//! through the gateway: what agentd decides tool policy on, whatever the
//! sandbox later claims a call was.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

/// The most bytes of one call's input the gateway assembles: 1 MiB. A larger
/// input is reported unreadable.
pub const MAX_TOOL_INPUT: usize = 1 << 20;

/// Longest tool-use id kept: 256 bytes (the API's are about 30).
pub const MAX_TOOL_USE_ID: usize = 256;

/// One tool call in a model answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolUse {
    /// The model's id for the call (`toolu_…`).
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// Its input; `None` when it could not be read whole (too large, not JSON).
    pub input: Option<Value>,
}

/// Told about each tool call as soon as its block is complete.
pub trait ToolUseObserver: Send + Sync + 'static {
    /// One more tool call the model asked for.
    fn tool_use(&self, call: ToolUse);
}

/// Assembles tool calls from a streamed answer's content blocks.
#[derive(Default)]
pub(super) struct ToolUseReader {
    observer: Option<Arc<dyn ToolUseObserver>>,
    open: HashMap<u64, Pending>,
}

impl std::fmt::Debug for ToolUseReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolUseReader")
            .field("observing", &self.observer.is_some())
            .field("open", &self.open.len())
            .finish()
    }
}

struct Pending {
    id: String,
    name: String,
    start: Value,
    json: String,
    overflow: bool,
}

impl ToolUseReader {
    pub(super) fn new(observer: Option<Arc<dyn ToolUseObserver>>) -> Self {
        ToolUseReader {
            observer,
            open: HashMap::new(),
        }
    }

    /// `content_block_start` of block `index`.
    pub(super) fn start(&mut self, index: Option<u64>, block: &Value) {
        if self.observer.is_none() || block.get("type").and_then(Value::as_str) != Some("tool_use")
        {
            return;
        }
        let (Some(index), Some((id, name))) = (index, id_and_name(block)) else {
            return;
        };
        let start = block.get("input").cloned().unwrap_or(Value::Null);
        self.open.insert(
            index,
            Pending {
                id,
                name,
                start,
                json: String::new(),
                overflow: false,
            },
        );
    }

    /// An `input_json_delta` of block `index`.
    pub(super) fn delta(&mut self, index: Option<u64>, partial: &str) {
        let Some(pending) = index.and_then(|i| self.open.get_mut(&i)) else {
            return;
        };
        if pending.json.len() + partial.len() > MAX_TOOL_INPUT {
            pending.overflow = true;
            pending.json = String::new();
        } else if !pending.overflow {
            pending.json.push_str(partial);
        }
    }

    /// `content_block_stop` of block `index`: the call is complete.
    pub(super) fn stop(&mut self, index: Option<u64>) {
        let Some(pending) = index.and_then(|i| self.open.remove(&i)) else {
            return;
        };
        let input = if pending.overflow {
            None
        } else if pending.json.trim().is_empty() {
            Some(pending.start).filter(Value::is_object)
        } else {
            serde_json::from_str::<Value>(&pending.json)
                .ok()
                .filter(Value::is_object)
        };
        self.report(ToolUse {
            id: pending.id,
            name: pending.name,
            input,
        });
    }

    /// A whole `tool_use` block of a non-streamed answer.
    pub(super) fn whole(&mut self, block: &Value) {
        if self.observer.is_none() || block.get("type").and_then(Value::as_str) != Some("tool_use")
        {
            return;
        }
        if let Some((id, name)) = id_and_name(block) {
            let input = block.get("input").cloned().filter(Value::is_object);
            self.report(ToolUse { id, name, input });
        }
    }

    fn report(&self, call: ToolUse) {
        if let Some(observer) = &self.observer {
            observer.tool_use(call);
        }
    }
}

fn id_and_name(block: &Value) -> Option<(String, String)> {
    let id = block.get("id").and_then(Value::as_str)?;
    let name = block.get("name").and_then(Value::as_str)?;
    (!id.is_empty() && id.len() <= MAX_TOOL_USE_ID && name.len() <= MAX_TOOL_USE_ID)
        .then(|| (id.to_string(), name.to_string()))
}

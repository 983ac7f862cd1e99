//! A [`Reply`] as the streaming Messages API sends it: `message_start`, `ping`,
//! each block as start / deltas / stop, `message_delta`, `message_stop`.
//!
//! Text and tool input are cut into several deltas on purpose, so a client's
//! reassembly is exercised the way the real API exercises it.

use bytes::Bytes;
use serde_json::{Value, json};

use super::reply::{Part, Reply, usage_json};

/// How many `text_delta` / `thinking_delta` pieces a text is cut into, at most.
const TEXT_PIECES: usize = 2;
/// How many `input_json_delta` pieces a tool input is cut into, at most.
const JSON_PIECES: usize = 3;

/// The whole answer as server-sent events, one chunk per event.
pub(crate) fn events(reply: &Reply) -> Vec<Bytes> {
    let mut message = reply.to_message();
    message["content"] = json!([]);
    message["stop_reason"] = Value::Null;
    message["usage"] = usage_json(&reply.usage, reply.usage.output_tokens.min(1));

    let mut out = vec![
        event(
            "message_start",
            &json!({"type": "message_start", "message": message}),
        ),
        event("ping", &json!({"type": "ping"})),
    ];
    for (index, part) in reply.content.iter().enumerate() {
        let (start, deltas) = match part {
            Part::Text { text } => (
                json!({"type": "text", "text": ""}),
                pieces(text, TEXT_PIECES)
                    .into_iter()
                    .map(|piece| json!({"type": "text_delta", "text": piece}))
                    .collect::<Vec<_>>(),
            ),
            Part::ToolUse { id, name, .. } => (
                json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                pieces(&part.input_text().unwrap_or_default(), JSON_PIECES)
                    .into_iter()
                    .map(|piece| json!({"type": "input_json_delta", "partial_json": piece}))
                    .collect(),
            ),
            Part::Thinking {
                thinking,
                signature,
            } => {
                let mut deltas: Vec<Value> = pieces(thinking, TEXT_PIECES)
                    .into_iter()
                    .map(|piece| json!({"type": "thinking_delta", "thinking": piece}))
                    .collect();
                deltas.push(json!({"type": "signature_delta", "signature": signature}));
                (
                    json!({"type": "thinking", "thinking": "", "signature": ""}),
                    deltas,
                )
            }
        };
        out.push(event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": start}),
        ));
        for delta in deltas {
            out.push(event(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index, "delta": delta}),
            ));
        }
        out.push(event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        ));
    }
    out.push(event(
        "message_delta",
        &json!({
            "type": "message_delta",
            "delta": {"stop_reason": reply.stop_reason.as_str(), "stop_sequence": null},
            "usage": {"output_tokens": reply.usage.output_tokens},
        }),
    ));
    out.push(event("message_stop", &json!({"type": "message_stop"})));
    out
}

fn event(name: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// `text` cut into at most `count` non-empty pieces of about equal length, on
/// character boundaries; an empty text is one empty piece.
fn pieces(text: &str, count: usize) -> Vec<&str> {
    let chars = text.chars().count();
    let count = count.clamp(1, chars.max(1));
    let per_piece = chars.div_ceil(count).max(1);
    let mut out = Vec::with_capacity(count);
    let mut rest = text;
    while !rest.is_empty() {
        let cut = rest
            .char_indices()
            .nth(per_piece)
            .map_or(rest.len(), |(at, _)| at);
        let (piece, tail) = rest.split_at(cut);
        out.push(piece);
        rest = tail;
    }
    if out.is_empty() {
        out.push("");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_text_on_char_boundaries() {
        assert_eq!(pieces("", 3), vec![""]);
        assert_eq!(pieces("a", 3), vec!["a"]);
        assert_eq!(pieces("{}", 3), vec!["{", "}"]);
        assert_eq!(pieces("abcdef", 3), vec!["ab", "cd", "ef"]);
        assert_eq!(pieces("héllo wörld", 2).concat(), "héllo wörld");
        assert_eq!(pieces("héllo wörld", 2).len(), 2);
        assert_eq!(pieces("ééé", 2), vec!["éé", "é"]);
    }
}

//! The Messages API request as the gateway's cassettes and the scripted model
//! read it: the few parts that decide an answer.

use serde_json::Value;

/// The parts of a Messages API request body that decide the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagesRequest {
    /// The `model` asked for.
    pub model: String,
    /// Whether a streamed answer was asked for.
    pub stream: bool,
    /// Whether any tools were declared (requests without are side requests).
    pub tools: bool,
    /// Number of entries in `messages`.
    pub messages: usize,
    /// Assistant messages already in the conversation: the turn asked for.
    pub assistant_messages: usize,
}

impl MessagesRequest {
    /// Reads a request body; the error names the problem as the API would.
    pub fn parse(body: &[u8]) -> Result<MessagesRequest, String> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|error| format!("request body is not valid JSON: {error}"))?;
        let Value::Object(fields) = value else {
            return Err("request body must be a JSON object".to_string());
        };
        let model = match fields.get("model") {
            Some(Value::String(model)) if !model.is_empty() => model.clone(),
            Some(Value::String(_)) => return Err("model: must not be empty".to_string()),
            Some(_) => return Err("model: must be a string".to_string()),
            None => return Err("model: field required".to_string()),
        };
        let stream = match fields.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(stream)) => *stream,
            Some(_) => return Err("stream: must be a boolean".to_string()),
        };
        let tools = match fields.get("tools") {
            None | Some(Value::Null) => false,
            Some(Value::Array(tools)) => !tools.is_empty(),
            Some(_) => return Err("tools: must be an array".to_string()),
        };
        let messages = match fields.get("messages") {
            Some(Value::Array(messages)) => messages,
            Some(_) => return Err("messages: must be an array".to_string()),
            None => return Err("messages: field required".to_string()),
        };
        let mut assistant_messages = 0;
        for (index, message) in messages.iter().enumerate() {
            // Only assistant messages count as turns. Other roles pass: Claude Code
            // 2.1.330 sends `system` messages mid-conversation to newer models.
            match message.get("role").and_then(Value::as_str) {
                Some("assistant") => assistant_messages += 1,
                Some(_) => {}
                None => return Err(format!("messages.{index}.role: field required")),
            }
        }
        Ok(MessagesRequest {
            model,
            stream,
            tools,
            messages: messages.len(),
            assistant_messages,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_assistant_messages() {
        let request = MessagesRequest::parse(
            br#"{"model":"m","stream":true,"tools":[{"name":"Write"}],
                 "messages":[{"role":"user","content":"go"},{"role":"system","content":"note"},
                             {"role":"assistant","content":[]},{"role":"user","content":[]}]}"#,
        )
        .unwrap();
        assert_eq!(
            request,
            MessagesRequest {
                model: "m".into(),
                stream: true,
                tools: true,
                messages: 4,
                assistant_messages: 1,
            }
        );
    }

    #[test]
    fn names_the_problem() {
        let cases: [(&[u8], &str); 7] = [
            (b"not json", "not valid JSON"),
            (b"[]", "JSON object"),
            (br#"{"messages":[]}"#, "model"),
            (br#"{"model":"m"}"#, "messages"),
            (br#"{"model":"m","messages":{}}"#, "messages"),
            (br#"{"model":"m","messages":[],"stream":"yes"}"#, "stream"),
            (
                br#"{"model":"m","messages":[{"content":"x"}]}"#,
                "messages.0.role",
            ),
        ];
        for (body, expected) in cases {
            let problem = MessagesRequest::parse(body).unwrap_err();
            assert!(problem.contains(expected), "{problem}");
        }
    }

    #[test]
    fn empty_tools_mean_a_side_request() {
        let request = MessagesRequest::parse(br#"{"model":"m","tools":[],"messages":[]}"#).unwrap();
        assert!(!request.tools);
        assert!(!request.stream);
    }
}

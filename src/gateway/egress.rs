//! Requests that would make the model API reach the network or the
//! organisation's data on the sandbox's behalf.
//!
//! The sandbox has no network, but a Messages request can ask upstream to act
//! for it: server-side tools fetch URLs and search the web (a query or a URL is
//! enough to carry the repository out), `mcp_servers` makes upstream connect to
//! any server, code execution runs in upstream's containers next to the
//! organisation's uploaded files, and a `file` source reads those files by id.
//! The gateway refuses all of these before anything goes upstream.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

/// Prefixes of server-side tool types refused: they reach the network or run
/// code beside the organisation's files.
pub const REFUSED_TOOL_TYPES: &[&str] = &["web_search", "web_fetch", "code_execution"];

/// Top-level request fields refused: `mcp_servers` (upstream connects to any
/// server) and `container` (reuses a code-execution container).
pub const REFUSED_FIELDS: &[&str] = &["mcp_servers", "container"];

/// What reaches past the sandbox, by name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} would reach the network or the organisation's files from the sandbox")]
pub struct Egress(pub String);

#[derive(Deserialize)]
struct Reach {
    #[serde(default)]
    tools: Option<Vec<Tool>>,
    #[serde(default)]
    mcp_servers: Option<IgnoredAny>,
    #[serde(default)]
    container: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct Tool {
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

/// Checks a Messages request (already known to be a JSON object) for anything
/// that reaches past the sandbox.
pub fn check(body: &[u8]) -> Result<(), Egress> {
    let reach: Reach = match serde_json::from_slice(body) {
        Ok(reach) => reach,
        // The shape check names what is wrong with a malformed body.
        Err(_) => return Ok(()),
    };
    if reach.mcp_servers.is_some() {
        return Err(Egress(format!("`{}`", REFUSED_FIELDS[0])));
    }
    if reach.container.is_some() {
        return Err(Egress(format!("`{}`", REFUSED_FIELDS[1])));
    }
    for tool in reach.tools.unwrap_or_default() {
        if let Some(kind) = tool.kind
            && REFUSED_TOOL_TYPES.iter().any(|p| kind.starts_with(p))
        {
            return Err(Egress(format!("the server tool `{kind}`")));
        }
    }
    // A file source names an uploaded file by id; only look closer when the
    // text could hold one.
    if memchr_subslice(body, b"file_id") {
        let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        if let Some(messages) = value.get("messages")
            && names_a_file(messages)
        {
            return Err(Egress("a `file` content source".into()));
        }
    }
    Ok(())
}

/// True when any object in `value` is a source of type `file`.
fn names_a_file(value: &Value) -> bool {
    match value {
        Value::Object(map) => {
            let is_file_source = map
                .get("source")
                .and_then(|s| s.get("type"))
                .and_then(Value::as_str)
                == Some("file");
            is_file_source || map.values().any(names_a_file)
        }
        Value::Array(items) => items.iter().any(names_a_file),
        _ => false,
    }
}

fn memchr_subslice(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(extra: &str) -> Vec<u8> {
        format!(r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}]{extra}}}"#)
            .into_bytes()
    }

    #[test]
    fn what_the_cli_sends_passes() {
        assert!(check(&body("")).is_ok());
        let tools = r#","tools":[{"name":"Bash","input_schema":{}},{"type":"custom","name":"x","input_schema":{}},{"type":"bash_20250124","name":"bash"}]"#;
        assert!(check(&body(tools)).is_ok());
        // Text that merely mentions the words is not a request for them.
        let text = r#","system":"web_search mcp_servers file_id container""#;
        assert!(check(&body(text)).is_ok());
    }

    #[test]
    fn server_tools_mcp_and_containers_are_refused() {
        for extra in [
            r#","tools":[{"type":"web_search_20250305","name":"web_search"}]"#,
            r#","tools":[{"type":"web_fetch_20250910","name":"web_fetch"}]"#,
            r#","tools":[{"type":"code_execution_20250522","name":"code_execution"}]"#,
            r#","mcp_servers":[{"type":"url","url":"https://evil.example/sse","name":"x"}]"#,
            r#","container":"container_011"}"#,
        ] {
            let refused = check(&body(extra.trim_end_matches('}')));
            assert!(refused.is_err(), "{extra}");
        }
    }

    #[test]
    fn file_sources_are_refused_wherever_they_nest() {
        let nested = r#"{"model":"m","messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"document","source":{"type":"file","file_id":"file_011"}}]}]}]}"#;
        assert!(check(nested.as_bytes()).is_err());
        let inline = r#"{"model":"m","messages":[{"role":"user","content":[{"type":"document","source":{"type":"text","data":"file_id is just text"}}]}]}"#;
        assert!(check(inline.as_bytes()).is_ok());
    }
}

//! Request bodies held to the shapes the OpenAPI document gives them where
//! serde is looser: serde reads a struct from an array of its fields in
//! order, so `[null, null]` was a valid policy and `"caps": [2]` a cap on
//! CPUs, while the document says object. A body is walked beside its schema;
//! an array where the schema admits none is refused, naming the field.

use std::sync::OnceLock;

use serde_json::Value;

/// A request body type and the name of its schema in the OpenAPI document.
pub trait Documented {
    /// The schema's name under `components.schemas`.
    const SCHEMA: &'static str;
}

impl Documented for crate::execution::ExecutionRequest {
    const SCHEMA: &'static str = "ExecutionRequest";
}

impl Documented for crate::execution::FollowUpRequest {
    const SCHEMA: &'static str = "FollowUpRequest";
}

impl Documented for super::messages::NewMessage {
    const SCHEMA: &'static str = "NewMessage";
}

impl Documented for crate::tenancy::Policy {
    const SCHEMA: &'static str = "Policy";
}

impl Documented for super::admin::NewTenant {
    const SCHEMA: &'static str = "NewTenant";
}

impl Documented for super::admin::NewKey {
    const SCHEMA: &'static str = "NewKey";
}

impl Documented for super::credentials::NewCredential {
    const SCHEMA: &'static str = "NewCredential";
}

impl Documented for super::webhooks::NewWebhook {
    const SCHEMA: &'static str = "NewWebhook";
}

impl Documented for super::claiming::ClaimingChange {
    const SCHEMA: &'static str = "ClaimingChange";
}

fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(super::openapi::document)
}

/// The first field of `body` (a dotted path, `.` for the body itself) that
/// is an array where schema `T::SCHEMA` admits none.
pub fn array_where_none_is_documented<T: Documented>(body: &Value) -> Option<String> {
    let schema = document()
        .pointer(&format!("/components/schemas/{}", T::SCHEMA))
        .unwrap_or(&Value::Null);
    walk(schema, body, "").map(|path| if path.is_empty() { ".".into() } else { path })
}

fn walk(schema: &Value, value: &Value, path: &str) -> Option<String> {
    match value {
        Value::Array(items) => {
            if !admits_array(schema, 0) {
                return Some(path.to_string());
            }
            let item = items_schema(schema, 0).unwrap_or(&Value::Null);
            items
                .iter()
                .enumerate()
                .find_map(|(i, v)| walk(item, v, &format!("{path}[{i}]")))
        }
        Value::Object(fields) => fields.iter().find_map(|(key, v)| {
            let sub = property_schema(schema, key, 0)?;
            let path = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            walk(sub, v, &path)
        }),
        _ => None,
    }
}

/// Deep enough for any schema of this API; a cycle ends here.
const DEPTH: usize = 32;

/// `schema` with its `$ref` followed.
fn resolve(schema: &Value) -> &Value {
    let mut schema = schema;
    for _ in 0..DEPTH {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                schema = reference
                    .strip_prefix('#')
                    .and_then(|pointer| document().pointer(pointer))
                    .unwrap_or(&Value::Null);
            }
            None => return schema,
        }
    }
    &Value::Null
}

fn branches(schema: &Value) -> impl Iterator<Item = &Value> {
    ["oneOf", "anyOf", "allOf"]
        .into_iter()
        .filter_map(|key| schema.get(key).and_then(Value::as_array))
        .flatten()
}

fn has_type(schema: &Value, name: &str) -> bool {
    match schema.get("type") {
        Some(Value::String(t)) => t == name,
        Some(Value::Array(types)) => types.iter().any(|t| t == name),
        _ => false,
    }
}

/// Whether `schema` lets the value be an array: its type says so, a branch
/// does, or it says nothing about the type at all.
fn admits_array(schema: &Value, depth: usize) -> bool {
    let schema = resolve(schema);
    if depth > DEPTH || schema.is_null() {
        return true; // nothing known: nothing refused
    }
    if has_type(schema, "array") {
        return true;
    }
    let mut any_branch = false;
    for branch in branches(schema) {
        any_branch = true;
        if admits_array(branch, depth + 1) {
            return true;
        }
    }
    !any_branch && schema.get("type").is_none()
}

fn items_schema(schema: &Value, depth: usize) -> Option<&Value> {
    let schema = resolve(schema);
    if depth > DEPTH {
        return None;
    }
    if has_type(schema, "array") {
        return schema.get("items");
    }
    branches(schema)
        .filter(|b| admits_array(b, depth + 1))
        .find_map(|b| items_schema(b, depth + 1))
}

fn property_schema<'a>(schema: &'a Value, key: &str, depth: usize) -> Option<&'a Value> {
    let schema = resolve(schema);
    if depth > DEPTH {
        return None;
    }
    if let Some(property) = schema.get("properties").and_then(|p| p.get(key)) {
        return Some(property);
    }
    if let Some(extra) = schema.get("additionalProperties").filter(|e| e.is_object()) {
        return Some(extra);
    }
    branches(schema).find_map(|b| property_schema(b, key, depth + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution::ExecutionRequest;
    use crate::tenancy::Policy;
    use serde_json::json;

    #[test]
    fn arrays_where_the_document_has_objects_are_found() {
        for (body, field) in [
            (json!([null, null]), "."),
            (json!({"caps": [2]}), "caps"),
            (json!({"caps": {"cpus": 2}, "sources": [null]}), "sources"),
            (
                json!({"tools": {"allow": ["Read"]}, "over_cap": []}),
                "over_cap",
            ),
        ] {
            assert_eq!(
                array_where_none_is_documented::<Policy>(&body).as_deref(),
                Some(field),
                "{body}"
            );
        }
        for (body, field) in [
            (json!(["r", null, "p"]), "."),
            (
                json!({"repo": "r", "prompt": "p", "limits": ["5m"]}),
                "limits",
            ),
            (
                json!({"repo": "r", "prompt": "p", "agent": [null]}),
                "agent",
            ),
            (json!({"repo": ["r"], "prompt": "p"}), "repo"),
        ] {
            assert_eq!(
                array_where_none_is_documented::<ExecutionRequest>(&body).as_deref(),
                Some(field),
                "{body}"
            );
        }
        for body in [json!([true]), json!({"paused": [true]})] {
            assert!(
                array_where_none_is_documented::<super::super::claiming::ClaimingChange>(&body)
                    .is_some(),
                "{body}"
            );
        }
    }

    #[test]
    fn arrays_where_the_document_has_arrays_pass() {
        let policy = json!({
            "models": ["claude-sonnet-4-5"],
            "runtimes": ["runc"],
            "sources": {"schemes": ["https"], "local_paths": ["/srv"]},
            "tools": {"allow": ["Read"], "deny": []},
        });
        assert_eq!(array_where_none_is_documented::<Policy>(&policy), None);
        let request = json!({"repo": "r", "prompt": "p",
            "agent": {"allowed_tools": ["Read"], "disallowed_tools": []}});
        assert_eq!(
            array_where_none_is_documented::<ExecutionRequest>(&request),
            None
        );
    }

    #[test]
    fn every_body_schema_is_in_the_document() {
        for name in [
            <ExecutionRequest as Documented>::SCHEMA,
            <Policy as Documented>::SCHEMA,
            <super::super::admin::NewTenant as Documented>::SCHEMA,
            <super::super::admin::NewKey as Documented>::SCHEMA,
            <super::super::claiming::ClaimingChange as Documented>::SCHEMA,
        ] {
            let schema = document().pointer(&format!("/components/schemas/{name}"));
            assert!(
                schema.is_some_and(|s| has_type(s, "object")),
                "{name}: {schema:?}"
            );
        }
    }
}

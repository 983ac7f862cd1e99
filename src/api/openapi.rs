//! `GET /v1/openapi.json`: the OpenAPI document, generated from the handlers'
//! `#[utoipa::path]` attributes and the response types' derives, so it cannot
//! disagree with the code.

use axum::Json;
use axum::Router;
use axum::routing::get;
use utoipa::OpenApi;

use super::state::AppState;
use super::{
    admin, claiming, conversations, credentials, error, events, executions, files, health,
    messages, policy, policy_schema, schemas, view, webhooks,
};

/// The OpenAPI description of agentd's HTTP API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "agentd",
        description = "Runs AI coding agents against git repositories, one hardened Docker container per execution. \
            Every error answers `{\"error\":{\"code\",\"message\",\"field\"?}}`."
    ),
    paths(
        executions::create,
        executions::list,
        executions::show,
        executions::cancel,
        executions::deliver,
        conversations::follow_up,
        conversations::conversation,
        messages::message,
        messages::interrupt,
        webhooks::create_webhook,
        webhooks::list_webhooks,
        webhooks::delete_webhook,
        webhooks::list_deliveries,
        webhooks::redeliver,
        events::events,
        files::diff,
        files::bundle,
        files::artifacts,
        files::artifact,
        health::healthz,
        health::readyz,
        health::metrics,
        admin::create_tenant,
        admin::list_tenants,
        admin::show_tenant,
        admin::disable_tenant,
        admin::create_key,
        admin::list_keys,
        admin::revoke_key,
        credentials::create_credential,
        credentials::list_credentials,
        credentials::delete_credential,
        admin::audit_log,
        policy::own_policy,
        policy::show_global_policy,
        policy::set_global_policy,
        policy::show_tenant_policy,
        policy::set_tenant_policy,
        claiming::show,
        claiming::change,
        openapi_json,
    ),
    modifiers(&Authentication),
    components(schemas(
        error::ErrorBody,
        error::ErrorDetail,
        view::ExecutionSchema,
        conversations::ConversationView,
        conversations::ConversationStep,
        conversations::ConversationTotals,
        schemas::FollowUpRequestSchema,
        messages::NewMessage,
        messages::InputAccepted,
        admin::NewTenant,
        admin::TenantView,
        admin::TenantList,
        credentials::CredentialKindView,
        webhooks::NewWebhook,
        webhooks::WebhookView,
        webhooks::WebhookList,
        webhooks::WebhookEventView,
        webhooks::DeliveryStateView,
        webhooks::DeliveryView,
        webhooks::DeliveryPage,
        credentials::NewCredentialSchema,
        credentials::NewHttpsCredential,
        credentials::NewSshCredential,
        credentials::HttpsKind,
        credentials::SshKind,
        credentials::CredentialView,
        credentials::CredentialList,
        admin::NewKey,
        admin::IssuedKeyView,
        admin::KeyView,
        admin::KeyList,
        admin::AuditEventView,
        admin::AuditPage,
        policy::PolicyView,
        policy::OwnPolicyView,
        policy_schema::PolicySchema,
        policy_schema::OverCapSchema,
        policy_schema::CapsSchema,
        policy_schema::SourcesSchema,
        policy_schema::ToolPolicySchema,
        policy_schema::GitPolicySchema,
        policy_schema::HooksPolicySchema,
        policy_schema::SchemeSchema,
        view::ExecutionLinks,
        view::ExecutionList,
        view::ExecutionItem,
        view::ItemLinks,
        view::ArtifactEntry,
        claiming::ClaimingView,
        claiming::ReplicaClaiming,
        claiming::ClusterClaiming,
        claiming::ClaimingScope,
        claiming::ClaimingChange,
        view::ArtifactList,
        health::Health,
        schemas::ExecutionRequestSchema,
        schemas::AgentOptionsSchema,
        schemas::LimitsSchema,
        schemas::SandboxOptionsSchema,
        schemas::AppliedPolicySchema,
        schemas::ClampSchema,
        schemas::ToolRulesSchema,
        schemas::ToolRuleSchema,
        schemas::GatewayUsageSchema,
        schemas::TimeoutSchema,
        schemas::UsageSchema,
        schemas::ChangedFileSchema,
        schemas::LeftOutSchema,
        schemas::DeliverySchema,
        schemas::HooksSchema,
        schemas::SetupHookSchema,
        schemas::TeardownHookSchema,
        schemas::OnFailureSchema,
        schemas::DeliveryStatusSchema,
        schemas::DiffStatsSchema,
        schemas::ConversationSchema,
        schemas::AgentClaimSchema,
        schemas::StatusSchema,
        schemas::EventSchema,
        schemas::EventSourceSchema,
    )),
    tags(
        (name = "executions", description = "Submit, follow and cancel executions"),
        (name = "webhooks", description = "Signed status webhooks from a durable outbox"),
        (name = "results", description = "Diff, bundle and artifacts of an execution"),
        (name = "probes", description = "Liveness and readiness"),
        (name = "meta", description = "This document"),
        (name = "admin", description = "Tenants, keys and the audit log (the admin credential)"),
    )
)]
pub struct ApiDoc;

/// Documents authentication: a bearer scheme, required by every execution and
/// admin route (and `/metrics`), each of which may answer 401 and 403.
struct Authentication;

impl utoipa::Modify for Authentication {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        };
        use utoipa::openapi::{Ref, ResponseBuilder};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A tenant's key (`agentd_…`) on execution and webhook routes; the admin \
                         credential on `/v1/admin/…` and `/metrics`.",
                    ))
                    .build(),
            ),
        );
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    utoipa::openapi::ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !(path.starts_with("/v1/executions")
                || path.starts_with("/v1/conversations")
                || path.starts_with("/v1/webhooks")
                || path.starts_with("/v1/admin")
                || path == "/metrics")
            {
                continue;
            }
            for operation in [
                item.get.as_mut(),
                item.post.as_mut(),
                item.put.as_mut(),
                item.delete.as_mut(),
            ]
            .into_iter()
            .flatten()
            {
                operation.security = Some(vec![SecurityRequirement::new(
                    "bearer",
                    Vec::<String>::new(),
                )]);
                let responses = &mut operation.responses.responses;
                responses
                    .entry("401".into())
                    .or_insert_with(|| error("No credential, or a malformed, unknown, expired or revoked one (with `WWW-Authenticate: Bearer`)").into());
                responses
                    .entry("403".into())
                    .or_insert_with(|| error("The credential may not do this (a tenant key on an admin route, the admin credential on a tenant route, a disabled tenant)").into());
            }
        }
    }
}

/// The document route.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/openapi.json", get(openapi_json))
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
pub async fn openapi_json() -> Json<serde_json::Value> {
    Json(document())
}

/// The document as served. utoipa 5 writes a link's fields in snake case
/// (`operation_id`); OpenAPI spells them in camel case, and tools ignore a
/// link without `operationId`, so they are renamed here.
pub fn document() -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let operations = doc
        .get_mut("paths")
        .and_then(serde_json::Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(serde_json::Value::as_object_mut)
        .flat_map(|methods| methods.values_mut());
    for operation in operations {
        let links = operation
            .get_mut("responses")
            .and_then(serde_json::Value::as_object_mut)
            .into_iter()
            .flat_map(|responses| responses.values_mut())
            .filter_map(|response| response.get_mut("links"))
            .filter_map(serde_json::Value::as_object_mut)
            .flat_map(|links| links.values_mut())
            .filter_map(serde_json::Value::as_object_mut);
        for link in links {
            for (snake, camel) in [
                ("operation_id", "operationId"),
                ("operation_ref", "operationRef"),
                ("request_body", "requestBody"),
            ] {
                if let Some(value) = link.remove(snake) {
                    link.insert(camel.to_string(), value);
                }
            }
        }
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_with_its_responses() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let expected = [
            (
                "/v1/executions",
                "post",
                &["202", "400", "413", "415", "422", "503"][..],
            ),
            ("/v1/executions", "get", &["200", "400"]),
            ("/v1/executions/{id}", "get", &["200", "404"]),
            ("/v1/executions/{id}/cancel", "post", &["202", "404"]),
            (
                "/v1/executions/{id}/deliver",
                "post",
                &["200", "404", "409"],
            ),
            ("/v1/executions/{id}/events", "get", &["200", "400", "404"]),
            ("/v1/executions/{id}/diff", "get", &["200", "404"]),
            ("/v1/executions/{id}/bundle", "get", &["200", "404"]),
            ("/v1/executions/{id}/artifacts", "get", &["200", "404"]),
            (
                "/v1/executions/{id}/artifacts/{path}",
                "get",
                &["200", "404"],
            ),
            ("/healthz", "get", &["200"]),
            ("/readyz", "get", &["200", "503"]),
            ("/metrics", "get", &["200"]),
            ("/v1/openapi.json", "get", &["200"]),
        ];
        for (path, method, statuses) in expected {
            let operation = &doc["paths"][path][method];
            assert!(operation.is_object(), "{method} {path} missing");
            for status in statuses {
                assert!(
                    operation["responses"][status].is_object(),
                    "{method} {path} lacks {status}"
                );
            }
        }
        let execution = &doc["components"]["schemas"]["Execution"]["properties"];
        for field in ["id", "status", "usage", "links", "ref"] {
            assert!(execution[field].is_object(), "Execution.{field}");
        }
        for internal in ["request_hash", "owner", "lease_expires_at", "log_cursor"] {
            assert!(execution.get(internal).is_none(), "{internal} is internal");
        }
        assert!(doc["components"]["schemas"]["ExecutionRequest"].is_object());
        assert!(
            execution["status"].to_string().contains("Status"),
            "{}",
            execution["status"]
        );
    }

    #[test]
    fn cursors_are_documented_as_the_store_reads_them() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        for (path, pattern) in [
            ("/v1/executions", crate::store::EXECUTION_CURSOR_PATTERN),
            ("/v1/admin/audit", crate::store::AUDIT_CURSOR_PATTERN),
        ] {
            let parameters = doc["paths"][path]["get"]["parameters"].as_array().unwrap();
            let cursor = parameters.iter().find(|p| p["name"] == "cursor").unwrap();
            assert_eq!(cursor["schema"]["pattern"], pattern, "{path}");
        }
    }

    #[test]
    fn links_name_their_operations_as_openapi_spells_it() {
        let doc = document();
        let links = &doc["paths"]["/v1/executions"]["post"]["responses"]["202"]["links"];
        let get = &links["GetExecution"];
        assert_eq!(get["operationId"], "show", "{links}");
        assert_eq!(get["parameters"]["id"], "$response.body#/id");
        assert!(get.get("operation_id").is_none());
        // Every linked operation exists.
        let ids: Vec<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|methods| methods.as_object().unwrap().values())
            .filter_map(|op| op["operationId"].as_str())
            .collect();
        for (name, link) in links.as_object().unwrap() {
            let target = link["operationId"].as_str().unwrap();
            assert!(ids.contains(&target), "{name} -> {target}: {ids:?}");
        }
    }
}

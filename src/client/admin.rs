//! The admin API from the client side: what `agentd admin …` uses.

use serde_json::json;

use super::{Client, ClientError, check, json};
use crate::api::admin::{AuditPage, IssuedKeyView, KeyList, NewKey, TenantList, TenantView};
use crate::api::claiming::{ClaimingChange, ClaimingView};
use crate::api::policy::PolicyView;
use crate::tenancy::Policy;

impl Client {
    /// Creates a tenant.
    pub async fn create_tenant(&self, name: &str) -> Result<TenantView, ClientError> {
        let body = json!({"name": name}).to_string();
        json(
            post_json(self, self.url("v1/admin/tenants"), body)
                .send()
                .await?,
        )
        .await
    }

    /// Every tenant.
    pub async fn tenants(&self) -> Result<TenantList, ClientError> {
        json(self.http.get(self.url("v1/admin/tenants")).send().await?).await
    }

    /// One tenant.
    pub async fn tenant(&self, name: &str) -> Result<TenantView, ClientError> {
        json(
            self.http
                .get(self.url(&format!("v1/admin/tenants/{name}")))
                .send()
                .await?,
        )
        .await
    }

    /// Disables a tenant.
    pub async fn disable_tenant(&self, name: &str) -> Result<TenantView, ClientError> {
        let url = self.url(&format!("v1/admin/tenants/{name}/disable"));
        json(self.http.post(url).send().await?).await
    }

    /// Issues a key for a tenant; the answer holds the key, shown once.
    pub async fn create_key(
        &self,
        tenant: &str,
        new: &NewKey,
    ) -> Result<IssuedKeyView, ClientError> {
        let url = self.url(&format!("v1/admin/tenants/{tenant}/keys"));
        let body = serde_json::to_string(new).map_err(|e| ClientError::Decode(e.to_string()))?;
        json(post_json(self, url, body).send().await?).await
    }

    /// A tenant's keys.
    pub async fn keys(&self, tenant: &str) -> Result<KeyList, ClientError> {
        let url = self.url(&format!("v1/admin/tenants/{tenant}/keys"));
        json(self.http.get(url).send().await?).await
    }

    /// Revokes a tenant's key.
    pub async fn revoke_key(&self, tenant: &str, key: &str) -> Result<(), ClientError> {
        let url = self.url(&format!("v1/admin/tenants/{tenant}/keys/{key}"));
        check(self.http.delete(url).send().await?).await.map(|_| ())
    }

    /// The global policy (`tenant: None`) or a tenant's overrides with its
    /// effective policy.
    pub async fn policy(&self, tenant: Option<&str>) -> Result<PolicyView, ClientError> {
        json(self.http.get(policy_url(self, tenant)).send().await?).await
    }

    /// Replaces the global policy or a tenant's overrides.
    pub async fn set_policy(
        &self,
        tenant: Option<&str>,
        policy: &Policy,
    ) -> Result<PolicyView, ClientError> {
        let body = serde_json::to_string(policy).map_err(|e| ClientError::Decode(e.to_string()))?;
        let request = self
            .http
            .put(policy_url(self, tenant))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        json(request.send().await?).await
    }

    /// Whether queued work is claimed on the replica that answers and on
    /// every replica.
    pub async fn claiming(&self) -> Result<ClaimingView, ClientError> {
        json(self.http.get(self.url("v1/admin/claiming")).send().await?).await
    }

    /// Pauses or resumes claiming on the replica that answers, or on every
    /// replica.
    pub async fn set_claiming(&self, change: &ClaimingChange) -> Result<ClaimingView, ClientError> {
        let body = serde_json::to_string(change).map_err(|e| ClientError::Decode(e.to_string()))?;
        let request = self
            .http
            .put(self.url("v1/admin/claiming"))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        json(request.send().await?).await
    }

    /// A page of the audit log; `query` holds the filters as query parameters.
    pub async fn audit(&self, query: &[(&str, String)]) -> Result<AuditPage, ClientError> {
        let mut url = self.url("v1/admin/audit");
        url.query_pairs_mut()
            .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        json(self.http.get(url).send().await?).await
    }
}

fn policy_url(client: &Client, tenant: Option<&str>) -> url::Url {
    match tenant {
        Some(tenant) => client.url(&format!("v1/admin/tenants/{tenant}/policy")),
        None => client.url("v1/admin/policy"),
    }
}

fn post_json(client: &Client, url: url::Url, body: String) -> reqwest::RequestBuilder {
    client
        .http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
}

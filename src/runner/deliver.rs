//! Delivery: after a successful execution whose request asked for `push`,
//! its branch goes from the verified bundle to the repository's remote with
//! the tenant's credential, on the host (see [`crate::git::push`]). Also
//! run again by hand (`POST /v1/executions/{id}/deliver`). A failed delivery
//! loses nothing: the diff and bundle stay, and delivery can be retried.

use std::path::{Path, PathBuf};

use chrono::Utc;

use crate::execution::{Delivery, DeliveryStatus, ExecutionRecord, Status};
use crate::git::RepoSource;
use crate::git::push::{self, DeliveryJob, Identity, Integration, PushError, Remote, RemoteAuth};
use crate::results::ResultFile;
use crate::tenancy::{CredentialSecret, SecretKey, choose_credential};

use super::Runner;

/// Why a delivery could not even be tried (a retried one, by hand).
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    /// The execution has not ended yet.
    #[error("the execution has not finished; delivery follows its end")]
    NotFinished,
    /// Nothing to deliver: no branch was brought back.
    #[error("the execution brought back no branch to deliver")]
    NoBranch,
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The stored bundle could not be read.
    #[error("results: {0}")]
    Results(#[from] crate::results::ResultsError),
}

impl Runner {
    /// Delivers the branch of a finished `record` again (its bundle from the
    /// results), records and answers the delivery. `repo` is the location with
    /// any credentials the client gave (only the operator's own runs keep them).
    pub async fn redeliver(
        &self,
        record: &ExecutionRecord,
        repo: Option<&str>,
    ) -> Result<ExecutionRecord, DeliverError> {
        if !record.status.is_final() {
            return Err(DeliverError::NotFinished);
        }
        if !record.has_bundle {
            return Err(DeliverError::NoBranch);
        }
        if !self
            .config
            .results
            .fetch(&record.id, &ResultFile::Bundle)
            .await?
        {
            return Err(DeliverError::NoBranch);
        }
        let bundle = self
            .config
            .results
            .local_path(&record.id, &ResultFile::Bundle);
        let scratch = self.deliver_scratch(&record.id);
        let delivery = self
            .delivery(
                record,
                Some(&bundle),
                repo.unwrap_or(&record.request.repo),
                &scratch,
            )
            .await;
        Ok(self.store.record_delivery(&record.id, &delivery).await?)
    }

    /// The delivery of `record`'s branch from `bundle`: skipped when the
    /// execution did not succeed or changed nothing.
    pub(super) async fn delivery(
        &self,
        record: &ExecutionRecord,
        bundle: Option<&Path>,
        repo: &str,
        scratch: &Path,
    ) -> Delivery {
        let mut delivery = outline(record);
        let skip = |mut delivery: Delivery, why: &str| {
            delivery.error = Some(why.to_string());
            delivery.finished_at = Utc::now();
            delivery
        };
        if record.status != Status::Succeeded {
            return skip(delivery, "the execution did not succeed");
        }
        let (Some(bundle), Some(base)) = (bundle, record.base_commit.as_deref()) else {
            return skip(delivery, "the execution changed nothing");
        };
        let pushed = self.push(record, bundle, base, repo, scratch).await;
        delivery.finished_at = Utc::now();
        match pushed {
            Ok(done) => {
                delivery.commit = Some(done.commit);
                delivery.stats = Some(done.stats);
                delivery.attempts = done.attempts;
                delivery.status = DeliveryStatus::Pushed;
                match done.integration {
                    Some(Integration::Merged { commit, .. }) => {
                        delivery.status = DeliveryStatus::Merged;
                        delivery.merge_commit = Some(commit);
                    }
                    Some(Integration::Conflict { paths, .. }) => {
                        delivery.status = DeliveryStatus::Conflict;
                        delivery.error = Some(format!(
                            "the branch conflicts with `{}` in {} path(s); it was pushed, the \
                             integration branch was left as it was",
                            record.request.merge_into.as_deref().unwrap_or_default(),
                            paths.len()
                        ));
                        delivery.conflicts = paths;
                    }
                    None => {}
                }
            }
            Err(error) => {
                delivery.status = match &error {
                    PushError::Rejected { .. } => DeliveryStatus::Rejected,
                    PushError::Auth { .. } => DeliveryStatus::AuthFailed,
                    PushError::Unreachable { attempts, .. } => {
                        delivery.attempts = *attempts;
                        DeliveryStatus::Unreachable
                    }
                    _ => DeliveryStatus::Failed,
                };
                delivery.attempts = delivery.attempts.max(1);
                delivery.error = Some(error.to_string());
            }
        }
        tracing::info!(
            execution = %record.id,
            status = delivery.status.as_str(),
            attempts = delivery.attempts,
            "delivery ended"
        );
        delivery
    }

    async fn push(
        &self,
        record: &ExecutionRecord,
        bundle: &Path,
        base: &str,
        repo: &str,
        scratch: &Path,
    ) -> Result<push::Delivered, PushError> {
        let failed = |message: String| PushError::Failed { message };
        let source = RepoSource::parse(repo).map_err(|error| failed(error.to_string()))?;
        let mirrors = self.mirrors.for_tenant(&record.tenant_id);
        let mirror = match mirrors.existing(&source) {
            Some(mirror) => mirror,
            None => {
                // Delivered again on a replica that never fetched it.
                let pinned = self
                    .vet_record_source(record, &source)
                    .await
                    .map_err(|_| failed("the repository may not be reached".into()))?;
                let source = source.clone();
                tokio::task::spawn_blocking(move || mirrors.sync(&source, pinned.as_ref()))
                    .await
                    .map_err(|error| failed(error.to_string()))?
                    .map_err(|error| failed(error.to_string()))?
            }
        };
        let pinned = self
            .vet_record_source(record, &source)
            .await
            .map_err(|_| failed("the remote may not be reached".into()))?;
        let auth = self.remote_auth(record, &source).await?;
        let remote = Remote {
            location: record.request.repo.clone(),
            auth,
            pinned,
        };
        let identity = Identity {
            name: self.git_name(record).to_string(),
            email: self.git_email(record).to_string(),
        };
        let message = format!(
            "Merge {} into {}\n\nDelivered by agentd from execution {}.\n",
            record.branch,
            record.request.merge_into.as_deref().unwrap_or_default(),
            record.id
        );
        push::deliver(&DeliveryJob {
            mirror: mirror.path(),
            bundle,
            branch: &record.branch,
            base,
            remote: &remote,
            merge_into: record.request.merge_into.as_deref(),
            identity: &identity,
            merge_message: &message,
            scratch,
            retry: &self.config.delivery_retry,
        })
        .await
    }

    /// The credential a push to `source` uses: the tenant's stored one that
    /// fits it best, else the one the client gave in the URL (the local
    /// operator's runs), else none.
    async fn remote_auth(
        &self,
        record: &ExecutionRecord,
        source: &RepoSource,
    ) -> Result<RemoteAuth, PushError> {
        let failed = |message: String| PushError::Failed { message };
        let stored = self
            .store
            .list_credentials(&record.tenant_id)
            .await
            .map_err(|error| failed(format!("reading the tenant's credentials: {error}")))?;
        if let Some(sealed) = choose_credential(&stored, source.location()) {
            let key: &SecretKey = self.config.secret_key.as_ref().ok_or_else(|| {
                failed("a stored credential fits the remote but agentd has no secret key".into())
            })?;
            let binding = sealed.credential.seal_binding();
            let plain = key
                .open(&sealed.sealed, &binding)
                .map_err(|error| failed(error.to_string()))?;
            let secret: CredentialSecret = serde_json::from_slice(&plain)
                .map_err(|_| failed("a stored credential is malformed".into()))?;
            return Ok(match secret {
                CredentialSecret::Https { token } => RemoteAuth::Basic {
                    username: sealed
                        .credential
                        .username
                        .clone()
                        .unwrap_or_else(|| "x-access-token".into()),
                    password: token,
                },
                CredentialSecret::Ssh {
                    private_key,
                    known_hosts,
                } => RemoteAuth::Ssh {
                    private_key,
                    known_hosts,
                },
            });
        }
        Ok(match source.credentials() {
            Some((username, password)) => RemoteAuth::Basic {
                username: username.to_string(),
                password: password.to_string(),
            },
            None => RemoteAuth::None,
        })
    }

    /// Where a delivery's scratch repository goes.
    /// Each delivery has its own (two deliveries of one execution at once
    /// must not remove each other's repository or key).
    pub(super) fn deliver_scratch(&self, id: &str) -> PathBuf {
        self.config
            .data_dir
            .executions()
            .join(id)
            .join(format!(".deliver-{}", uuid::Uuid::new_v4().simple()))
    }
}

/// What a delivery of `record` is about before it is tried: `skipped`, with
/// the branch, commits and merge target the record names.
pub(super) fn outline(record: &ExecutionRecord) -> Delivery {
    Delivery {
        status: DeliveryStatus::Skipped,
        remote: record.request.repo.clone(),
        branch: record.branch.clone(),
        commit: record.head_commit.clone(),
        base_commit: record.base_commit.clone(),
        stats: None,
        merge_into: record.request.merge_into.clone(),
        merge_commit: None,
        conflicts: Vec::new(),
        error: None,
        attempts: 0,
        finished_at: Utc::now(),
    }
}

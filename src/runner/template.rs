//! Checkout templates, the runner's side: when one is worth it, building it
//! in a sandbox of its own, finding it again, and keeping their number down.
//! What a template is and how a workspace is layered over it: `engine::layers`.
//!
//! A template is made for a base commit of a repository whose mirror holds at
//! least `checkout_templates` bytes of packs (small repositories check out in
//! milliseconds: a template would only cost them a container). The first
//! execution on that commit builds it (one more container, the same checkout
//! it would have made); every later one on the same host starts from it.
//! Anything that goes wrong leaves the execution on the plain path: the
//! repository checked out in its own sandbox, with a warning. Sandboxes under
//! gVisor always take the plain path (its gofer cannot serve an overlay).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use crate::engine::layers;
use crate::engine::{Bind, WorkspaceKind};
use crate::execution::{EventBody, template_builder_name};
use crate::git::{Mirror, ResolvedRef};

use super::Runner;
use super::driver;
use super::run::{Run, RunError};
use super::sandbox::Sandbox;

/// Templates kept on a host; the least recently used ones not in use go first.
pub const MAX_TEMPLATES: usize = 8;
/// How long building a template may take.
const BUILD_TIMEOUT: Duration = Duration::from_secs(600);
/// After a failed build, how long executions on that commit take the plain
/// path instead of each trying again.
const FAILED_BUILD_BACKOFF: Duration = Duration::from_secs(600);

/// A template ready for a workspace to be layered over.
pub(super) struct Template {
    /// Its filesystem image.
    pub(super) image: PathBuf,
    /// Made for this execution (else an existing one).
    pub(super) built: bool,
    /// Its lock, held until the workspace is layered (eviction waits).
    pub(super) _lock: std::fs::File,
}

/// One template's files under the templates folder.
struct TemplateFiles {
    image: PathBuf,
    ready: PathBuf,
    lock: PathBuf,
    build: PathBuf,
    failed: PathBuf,
}

impl TemplateFiles {
    fn new(dir: &Path, key: &str) -> Self {
        TemplateFiles {
            image: dir.join(format!("{key}.img")),
            ready: dir.join(format!("{key}.ready")),
            lock: dir.join(format!("{key}.lock")),
            build: dir.join(format!("{key}.build")),
            failed: dir.join(format!("{key}.failed")),
        }
    }
}

impl TemplateFiles {
    /// The template's lock, when no one else holds it (a builder, a
    /// workspace being layered over it).
    fn try_hold(&self) -> Option<std::fs::File> {
        let lock = std::fs::File::create(&self.lock).ok()?;
        lock.try_lock().ok()?;
        Some(lock)
    }
}

/// The keys of the files named `<key><suffix>` in `dir`, with their entries.
fn entries_with(dir: &Path, suffix: &str) -> Vec<(String, std::fs::DirEntry)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            Some((name.strip_suffix(suffix)?.to_string(), entry))
        })
        .collect()
}

/// The template's name for commit `commit` of the mirror at `mirror`, checked
/// out by `image` (a tenant's own mirror: templates are never shared between
/// tenants; the image's git and its configuration made the checkout, so an
/// image only ever sees its own).
fn template_key(mirror: &Path, commit: &str, image: &str) -> String {
    let mut hash = Sha256::new();
    for part in [mirror.display().to_string().as_str(), commit, image] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hex::encode(&hash.finalize()[..16])
}

/// Bytes of packed history in a mirror.
fn packed_bytes(mirror: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(mirror.join("objects/pack")) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".pack"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

impl Runner {
    /// The checkout template of the execution's base commit, built now when
    /// the repository is large enough and there is none; `None` leaves the
    /// execution on the plain path (checked out in its sandbox).
    pub(super) async fn template_for(
        &self,
        run: &Run,
        mirror: &Mirror,
        resolved: &ResolvedRef,
        volume: &str,
        sandbox: &mut Sandbox,
    ) -> Result<Option<Template>, RunError> {
        let Some(threshold) = self.config.checkout_templates else {
            return Ok(None);
        };
        // gVisor's gofer cannot serve a host overlay (lookups through it fail
        // with EINVAL, Debian's runsc 20221219): its sandboxes check out.
        if self.config.workspace != WorkspaceKind::Limited
            || self.runtime_of(run).1
            || packed_bytes(mirror.path()) < threshold
        {
            return Ok(None);
        }
        let dir = self.config.data_dir.templates();
        if let Err(error) = std::fs::create_dir_all(&dir) {
            self.template_warning(run, format!("cannot make {}: {error}", dir.display()))
                .await;
            return Ok(None);
        }
        let files = TemplateFiles::new(
            &dir,
            &template_key(mirror.path(), &resolved.commit, self.image_of(run)),
        );
        // One builder per template, across processes sharing the data folder.
        let lock_path = files.lock.clone();
        let locked = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::create(&lock_path)?;
            file.lock()?;
            Ok::<_, std::io::Error>(file)
        });
        let lock = match self.interruptible(run, locked).await? {
            Ok(file) => file,
            Err(error) => {
                self.template_warning(run, format!("cannot lock the template: {error}"))
                    .await;
                return Ok(None);
            }
        };
        if files.ready.exists() {
            let _ = std::fs::File::options()
                .append(true)
                .open(&files.ready)
                .and_then(|f| f.set_modified(SystemTime::now()));
            return Ok(Some(Template {
                image: files.image,
                built: false,
                _lock: lock,
            }));
        }
        let failed_lately = std::fs::metadata(&files.failed)
            .and_then(|m| m.modified())
            .is_ok_and(|at| at.elapsed().is_ok_and(|ago| ago < FAILED_BUILD_BACKOFF));
        if failed_lately {
            self.template_warning(run, "its build failed a moment ago".into())
                .await;
            return Ok(None);
        }
        run.recorder
            .emit(EventBody::progress(
                "checking the repository out into a template for later executions on this commit",
            ))
            .await;
        let built = self
            .build_template(run, mirror, resolved, volume, sandbox, &files)
            .await;
        if let Err(error) = built {
            let _ = layers::seal_template(&files.build).await;
            let _ = std::fs::remove_file(&files.image);
            if matches!(error, RunError::Stopped(_)) {
                return Err(error);
            }
            let _ = std::fs::write(&files.failed, error.to_string());
            self.template_warning(run, error.to_string()).await;
            return Ok(None);
        }
        let _ = std::fs::remove_file(&files.failed);
        evict(&dir, MAX_TEMPLATES).await;
        Ok(Some(Template {
            image: files.image,
            built: true,
            _lock: lock,
        }))
    }

    async fn build_template(
        &self,
        run: &Run,
        mirror: &Mirror,
        resolved: &ResolvedRef,
        volume: &str,
        sandbox: &mut Sandbox,
        files: &TemplateFiles,
    ) -> Result<(), RunError> {
        // What a builder that died mid-way left.
        layers::seal_template(&files.build).await?;
        let _ = std::fs::remove_file(&files.image);
        layers::make_template(
            &files.image,
            run.record.request.limits.workspace_bytes,
            &files.build,
        )
        .await?;
        let name = template_builder_name(&run.id);
        self.engine.remove_container(&name).await?;
        let spec = self
            .spec(
                run,
                mirror,
                resolved,
                volume,
                driver::template_command(),
                "template",
            )
            .bind(Bind {
                host: files.build.display().to_string(),
                container: driver::TEMPLATE_MOUNT.to_string(),
                read_only: false,
            });
        sandbox.add_container(&name).await;
        self.engine.create_container(&name, &spec).await?;
        self.engine.start(&name).await?;
        let engine = self.engine.clone();
        let waited = {
            let name = name.clone();
            tokio::spawn(
                async move { tokio::time::timeout(BUILD_TIMEOUT, engine.wait(&name)).await },
            )
        };
        let exited = self.interruptible(run, waited).await;
        self.engine.remove_container(&name).await?;
        let code = match exited? {
            Ok(code) => code?,
            Err(_) => return Err(RunError::Template("the checkout ran out of time".into())),
        };
        if code != 0 {
            return Err(RunError::Template(format!(
                "the checkout exited with code {code}"
            )));
        }
        layers::seal_template(&files.build).await?;
        std::fs::write(&files.ready, b"").map_err(|source| RunError::Io {
            path: files.ready.display().to_string(),
            source,
        })?;
        Ok(())
    }

    pub(super) async fn template_warning(&self, run: &Run, why: String) {
        crate::metrics::global().checkout_template("plain");
        run.recorder
            .emit(EventBody::warning(format!(
                "no checkout template ({why}); the repository is checked out in the sandbox"
            )))
            .await;
    }
}

/// Removes the least recently used templates beyond `keep` that no workspace
/// is layered over and no builder holds.
async fn evict(dir: &Path, keep: usize) {
    let mut ready: Vec<(SystemTime, String)> = entries_with(dir, ".ready")
        .into_iter()
        .filter_map(|(key, entry)| Some((entry.metadata().ok()?.modified().ok()?, key)))
        .collect();
    ready.sort();
    let mut excess = ready.len().saturating_sub(keep);
    for (_, key) in ready {
        if excess == 0 {
            break;
        }
        let files = TemplateFiles::new(dir, &key);
        let Some(_lock) = files.try_hold() else {
            continue;
        };
        if layers::template_in_use(&files.image).await {
            continue;
        }
        // The lock file stays: a process waiting on it must not end up
        // holding a lock no newcomer sees.
        let _ = std::fs::remove_file(&files.ready);
        let _ = std::fs::remove_file(&files.image);
        excess -= 1;
    }
}

/// Unmounts the build mounts of templates whose builder died (no one holds
/// their lock) and removes the images they left unfinished (also those of
/// builds that died before their mount point was made or after it was
/// removed, but before the template was ready).
pub async fn sweep_builds(dir: &Path) {
    let mut keys: Vec<String> = entries_with(dir, ".build")
        .into_iter()
        .chain(entries_with(dir, ".img"))
        .map(|(key, _)| key)
        .collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let files = TemplateFiles::new(dir, &key);
        let building = files.build.exists();
        if files.ready.exists() && !building {
            continue;
        }
        let Some(_lock) = files.try_hold() else {
            continue;
        };
        if let Err(error) = layers::seal_template(&files.build).await {
            tracing::warn!(%error, "cannot unmount a template's build");
            continue;
        }
        if !files.ready.exists() && (building || !layers::template_in_use(&files.image).await) {
            let _ = std::fs::remove_file(&files.image);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_names_one_mirror_one_commit_and_one_image() {
        let a = template_key(Path::new("/m/t1/repo.git"), "aa", "img:1");
        assert_eq!(a.len(), 32);
        assert_eq!(a, template_key(Path::new("/m/t1/repo.git"), "aa", "img:1"));
        assert_ne!(a, template_key(Path::new("/m/t2/repo.git"), "aa", "img:1"));
        assert_ne!(a, template_key(Path::new("/m/t1/repo.git"), "ab", "img:1"));
        assert_ne!(a, template_key(Path::new("/m/t1/repo.git"), "aa", "img:2"));
    }

    #[tokio::test]
    async fn eviction_keeps_the_most_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        for (n, key) in ["old", "mid", "new"].iter().enumerate() {
            let files = TemplateFiles::new(dir.path(), key);
            std::fs::write(&files.image, b"x").unwrap();
            let ready = std::fs::File::create(&files.ready).unwrap();
            ready
                .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1000 + n as u64))
                .unwrap();
        }
        evict(dir.path(), 2).await;
        assert!(!dir.path().join("old.ready").exists());
        assert!(!dir.path().join("old.img").exists());
        assert!(dir.path().join("mid.img").exists());
        assert!(dir.path().join("new.img").exists());
    }
}

//! Result files in an S3-compatible bucket through `object_store`: uploaded
//! from the file in parts (a small file in one request), downloaded by range.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::path::Path as Key;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use tokio::io::AsyncWriteExt;

use super::location::LocationError;
use super::{ByteStream, Fence, ResultsError};

/// One bucket, under a key prefix.
#[derive(Clone)]
pub(super) struct Bucket {
    store: Arc<dyn ObjectStore>,
    prefix: String,
}

impl Bucket {
    /// The bucket, with endpoint, region and credentials from the `AWS_*`
    /// environment (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ALLOW_HTTP`, …).
    pub(super) fn from_env(bucket: &str, prefix: &str) -> Result<Bucket, ResultsError> {
        let store = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map_err(|error| LocationError::S3(error.to_string()))?;
        Ok(Bucket {
            store: Arc::new(store),
            prefix: prefix.to_string(),
        })
    }

    fn key(&self, execution: &str, name: &str) -> Key {
        let parts = self
            .prefix
            .split('/')
            .filter(|part| !part.is_empty())
            .chain(["executions", execution])
            .chain(name.split('/'));
        Key::from_iter(parts)
    }

    /// Uploads `file` as `name` of `execution`; answers its size.
    pub(super) async fn put(
        &self,
        execution: &str,
        name: &str,
        mut file: tokio::fs::File,
        fence: &dyn Fence,
    ) -> Result<u64, ResultsError> {
        let mut writer = BufWriter::new(self.store.clone(), self.key(execution, name));
        let copied = tokio::io::copy(&mut file, &mut writer).await;
        let copied = match copied {
            Ok(copied) => copied,
            Err(error) => {
                let _ = writer.abort().await;
                return Err(ResultsError::io(Path::new(name), error));
            }
        };
        if !fence.still_held().await {
            let _ = writer.abort().await;
            return Err(ResultsError::Fenced {
                file: name.to_string(),
            });
        }
        writer
            .shutdown()
            .await
            .map_err(|e| ResultsError::io(Path::new(name), e))?;
        Ok(copied)
    }

    /// The stored size of `name`, if stored.
    pub(super) async fn size(
        &self,
        execution: &str,
        name: &str,
    ) -> Result<Option<u64>, ResultsError> {
        match self.store.head(&self.key(execution, name)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// The bytes `range` of `name`, streamed.
    pub(super) async fn read(
        &self,
        execution: &str,
        name: &str,
        range: Range<u64>,
    ) -> Result<ByteStream, ResultsError> {
        if range.is_empty() {
            return Ok(futures::stream::empty().boxed());
        }
        let options = GetOptions {
            range: Some(GetRange::Bounded(range)),
            ..Default::default()
        };
        let got = self
            .store
            .get_opts(&self.key(execution, name), options)
            .await?;
        Ok(got.into_stream().map_err(ResultsError::from).boxed())
    }
}

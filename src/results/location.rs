//! Where results go, as configured: `local`, `database` or
//! `s3://bucket[/prefix]`.

/// A refused results location.
#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    /// Not one of the known forms.
    #[error("unknown results location `{0}` (use local, database or s3://BUCKET[/PREFIX])")]
    Unknown(String),
    /// `database` needs PostgreSQL.
    #[error("results in the database need PostgreSQL (the store is {0}); use local or s3://…")]
    NotPostgres(String),
    /// The object store could not be configured.
    #[error("the S3 results location: {0}")]
    S3(String),
}

/// Where an execution's result files are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultsLocation {
    /// In the collecting process's data directory.
    Local,
    /// In the PostgreSQL store, chunked.
    Database,
    /// In an S3 bucket, under a key prefix.
    S3 { bucket: String, prefix: String },
}

impl ResultsLocation {
    /// Parses `local`, `database` or `s3://bucket[/prefix]`.
    pub fn parse(text: &str) -> Result<ResultsLocation, LocationError> {
        let text = text.trim();
        match text {
            "local" => return Ok(ResultsLocation::Local),
            "database" => return Ok(ResultsLocation::Database),
            _ => {}
        }
        let Some(rest) = text.strip_prefix("s3://") else {
            return Err(LocationError::Unknown(text.to_string()));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid_bucket {
            return Err(LocationError::Unknown(text.to_string()));
        }
        Ok(ResultsLocation::S3 {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }

    /// The default for a store URL: the database with PostgreSQL (several
    /// replicas share it), local files with SQLite.
    pub fn default_for(database_url: &str) -> ResultsLocation {
        if is_postgres(database_url) {
            ResultsLocation::Database
        } else {
            ResultsLocation::Local
        }
    }

    /// Refuses `database` on a store that is not PostgreSQL.
    pub fn check(&self, database_url: &str) -> Result<(), LocationError> {
        if *self == ResultsLocation::Database && !is_postgres(database_url) {
            let scheme = database_url.split(':').next().unwrap_or_default();
            return Err(LocationError::NotPostgres(scheme.to_string()));
        }
        Ok(())
    }
}

fn is_postgres(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

impl std::str::FromStr for ResultsLocation {
    type Err = LocationError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ResultsLocation::parse(text)
    }
}

impl std::fmt::Display for ResultsLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResultsLocation::Local => f.write_str("local"),
            ResultsLocation::Database => f.write_str("database"),
            ResultsLocation::S3 { bucket, prefix } if prefix.is_empty() => {
                write!(f, "s3://{bucket}")
            }
            ResultsLocation::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

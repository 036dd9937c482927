//! Errors of the SQLite datastore.

use std::path::PathBuf;
use std::time::Duration;

use danm_core::store::StoreError;
use rusqlite::ErrorCode;

use super::BUSY_TIMEOUT;

/// Why the SQLite datastore could not be opened or could not run a statement.
///
/// Trait operations report these as [`StoreError::Backend`], with this error as the source; compare-and-swap
/// failures are never among them (they are `StoreError::Conflict` and `NotFound`, decided from the stored
/// versions).
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    /// The directory that should hold the database file does not exist; it is not created.
    #[error("cannot open the datastore {}: directory {} does not exist", .path.display(), .dir.display())]
    MissingDirectory {
        /// The database file.
        path: PathBuf,
        /// Its missing directory.
        dir: PathBuf,
    },
    /// The database file holds a schema of a version this build does not know.
    #[error("the datastore {} has schema version {found}; this build reads version {supported}", .path.display())]
    SchemaVersion {
        /// The database file.
        path: PathBuf,
        /// The version found in the file.
        found: i64,
        /// The version this build reads and writes.
        supported: i64,
    },
    /// The database could not be opened, configured or given its schema.
    #[error("cannot open the datastore {}", .path.display())]
    Open {
        /// The database file (`:memory:` for an in-memory database).
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// Other connections held the database locked for longer than the busy timeout. Transient: the
    /// operation may be retried.
    #[error("{operation}: the datastore stayed locked by other writers for more than {timeout:?}")]
    Busy {
        /// What was being done.
        operation: String,
        /// How long it waited.
        timeout: Duration,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// A statement failed.
    #[error("{operation} failed in the SQLite datastore")]
    Statement {
        /// What was being done.
        operation: String,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// A thread panicked while it held this handle's connection.
    #[error("the SQLite datastore's connection lock was poisoned by a panicking thread")]
    Poisoned,
}

impl SqliteError {
    /// Whether retrying the operation later may succeed (the database was busy).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Busy { .. })
    }

    /// Classifies a failed statement by SQLite's result code (never by its message).
    pub(super) fn statement(operation: impl Into<String>, source: rusqlite::Error) -> Self {
        let operation = operation.into();
        match source.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                Self::Busy { operation, timeout: BUSY_TIMEOUT, source }
            }
            _ => Self::Statement { operation, source },
        }
    }
}

impl From<SqliteError> for StoreError {
    fn from(e: SqliteError) -> Self {
        StoreError::Backend(Box::new(e))
    }
}

/// Maps a failed statement to a [`StoreError::Backend`], for `map_err`; `operation` names what was being
/// done, and is only called on failure.
pub(super) fn backend(operation: impl FnOnce() -> String) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| SqliteError::statement(operation(), e).into()
}

//! Errors of the Datastore seam.

/// The result type of Datastore operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Why a Datastore operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist.
    #[error("{key} not found")]
    NotFound {
        /// The object's key, as text.
        key: String,
    },
    /// The object changed since it was read, or already exists on create. Re-read and decide again.
    #[error("{key} was changed concurrently (version conflict)")]
    Conflict {
        /// The object's key, as text.
        key: String,
    },
    /// The stored object or the one given is malformed or of the wrong kind for its key.
    #[error("invalid object {key}: {reason}")]
    Invalid {
        /// The object's key, as text.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The operation is not supported by this backend (for example creating pods in Kubernetes).
    #[error("{operation} is not supported by the {backend} datastore")]
    Unsupported {
        /// What was asked.
        operation: String,
        /// Which backend refused.
        backend: &'static str,
    },
    /// The backend failed (I/O, connection, timeout).
    #[error("datastore backend failed")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Whether this is a version conflict, to be retried after a fresh read.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. })
    }

    /// Whether the object was not found.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}

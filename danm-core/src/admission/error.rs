//! Why an admission request was refused, or could not be decided.

use crate::store::StoreError;
use crate::validate::{ValidationErrors, Violation};

/// The result type of admission decisions.
pub type Result<T, E = AdmissionError> = std::result::Result<T, E>;

/// Why an object was not admitted.
///
/// The first two variants are decisions (the object breaks a rule); the last two are failures to decide,
/// which a caller may retry. [`AdmissionError::status_code`] maps each to the HTTP status an admission
/// webhook reports.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// The object is malformed or breaks a validation rule (HTTP 400).
    #[error("{0}")]
    Invalid(ValidationErrors),
    /// The object is well formed, but the operation is not allowed now: the network is in use, the
    /// TenantConfig does not allow the interface, every VNI is taken (HTTP 403).
    #[error("{0}")]
    Forbidden(ValidationErrors),
    /// A compare-and-swap write lost the race more often than the retry policy allows (HTTP 409).
    #[error("{key} kept changing concurrently; try again")]
    Contention {
        /// The contended object, as text.
        key: String,
    },
    /// The datastore failed (HTTP 500).
    #[error("the datastore failed")]
    Store(#[source] StoreError),
}

impl AdmissionError {
    /// The HTTP status code that describes this error: 400, 403, 409 or 500.
    pub fn status_code(&self) -> u16 {
        match self {
            Self::Invalid(_) => 400,
            Self::Forbidden(_) => 403,
            Self::Contention { .. } => 409,
            Self::Store(_) => 500,
        }
    }

    /// The broken rules, for a denial; `None` for a failure to decide.
    pub fn errors(&self) -> Option<&ValidationErrors> {
        match self {
            Self::Invalid(e) | Self::Forbidden(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the object was judged and refused (rather than the decision failing).
    pub fn is_denial(&self) -> bool {
        self.errors().is_some()
    }

    /// Sorts validation errors into `Invalid` and `Forbidden`: errors that depend on the state of other
    /// objects (usage, the TenantConfig, reservations, access) are `Forbidden`, errors of the object's own
    /// content `Invalid`.
    pub(crate) fn denied(errors: ValidationErrors) -> Self {
        let state = |v: Violation| {
            matches!(
                v,
                Violation::DeleteWhileInUse
                    | Violation::ChangedWhileInUse
                    | Violation::MtuLoweredWhileInUse
                    | Violation::NoTenantConfig
                    | Violation::ProfileNotAllowed
                    | Violation::NoSuitableProfile
                    | Violation::VniExhausted
                    | Violation::NetworkAccessDenied
            )
        };
        if errors.iter().all(|e| state(e.violation)) { Self::Forbidden(errors) } else { Self::Invalid(errors) }
    }
}

impl From<StoreError> for AdmissionError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { key } => Self::Contention { key },
            other => Self::Store(other),
        }
    }
}

impl From<ValidationErrors> for AdmissionError {
    fn from(e: ValidationErrors) -> Self {
        Self::denied(e)
    }
}

//! Why a value could not be converted between the danm-core model and a custom resource.

use danm_core::model::NetworkKind;

/// A conversion between a danm-core value and a custom resource failed. Each variant names what was
/// wrong; none of them is a bug in the caller's data flow that could be retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversionError {
    /// A network of one kind was converted into the resource of another.
    #[error("a {found} cannot be represented as a {expected}")]
    WrongKind {
        /// The kind of the resource type asked for.
        expected: NetworkKind,
        /// The kind of the network given.
        found: NetworkKind,
    },
    /// A field holds a value the target type cannot carry.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field's path, such as `metadata.creationTimestamp` or `spec.namespace`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ConversionError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Self::Invalid { field: field.into(), reason: reason.to_string() }
    }
}

//! Failures as the API server reports them: a `metav1.Status` body with a code, a reason and a message.

use serde_json::{Value, json};

use super::resource::ResourceType;

/// A failed request, answered as a `Status` object (HTTP body or watch `ERROR` event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ApiError {
    /// The HTTP status code, also the `code` field.
    pub(crate) code: u16,
    /// The machine-readable `reason`, as `k8s.io/apimachinery` names it.
    pub(crate) reason: &'static str,
    /// The human-readable `message`.
    pub(crate) message: String,
    /// `details.name`, `details.group` and `details.kind` (the plural), when one object is concerned.
    details: Option<(String, String, String)>,
}

impl ApiError {
    /// An error with the reason that the API server gives to `code`.
    pub(crate) fn with_code(code: u16, message: impl Into<String>) -> Self {
        Self { code, reason: reason_of(code), message: message.into(), details: None }
    }

    fn about(mut self, rt: &ResourceType, name: &str) -> Self {
        self.details = Some((name.to_owned(), rt.group().to_owned(), rt.plural().to_owned()));
        self
    }

    /// 404 for an object that does not exist.
    pub(crate) fn not_found(rt: &ResourceType, name: &str) -> Self {
        Self::with_code(404, format!("{} \"{name}\" not found", rt.resource_name())).about(rt, name)
    }

    /// 404 for a path that names no registered resource.
    pub(crate) fn no_such_path() -> Self {
        Self::with_code(404, "the server could not find the requested resource")
    }

    /// 409 `AlreadyExists` for a create of an existing name.
    pub(crate) fn already_exists(rt: &ResourceType, name: &str) -> Self {
        Self::with_code(409, format!("{} \"{name}\" already exists", rt.resource_name()))
            .reason("AlreadyExists")
            .about(rt, name)
    }

    /// 409 `Conflict` for a write against a stale resourceVersion.
    pub(crate) fn conflict(rt: &ResourceType, name: &str) -> Self {
        let message = format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
             please apply your changes to the latest version and try again",
            rt.resource_name()
        );
        Self::with_code(409, message).about(rt, name)
    }

    /// 409 `Conflict` for a failed delete precondition.
    pub(crate) fn precondition_failed(rt: &ResourceType, name: &str, message: String) -> Self {
        Self::with_code(409, format!("Precondition failed: {message}")).about(rt, name)
    }

    /// 400 `BadRequest`.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::with_code(400, message)
    }

    /// 422 `Invalid` for an object or patch that cannot be accepted.
    pub(crate) fn invalid(rt: &ResourceType, name: &str, message: impl Into<String>) -> Self {
        Self::with_code(422, message).about(rt, name)
    }

    /// 410 `Expired` for a watch from a resourceVersion older than the kept history.
    pub(crate) fn expired(requested: u64, oldest: u64) -> Self {
        Self::with_code(410, format!("too old resource version: {requested} ({oldest})"))
    }

    fn reason(mut self, reason: &'static str) -> Self {
        self.reason = reason;
        self
    }

    /// The `Status` object, as the API server serializes it.
    pub(crate) fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some((name, group, kind)) = &self.details {
            let mut details = json!({ "name": name, "kind": kind });
            if !group.is_empty() {
                details["group"] = json!(group);
            }
            status["details"] = details;
        }
        status
    }
}

/// The `StatusReason` that `k8s.io/apimachinery` pairs with an HTTP code (empty when it names none).
fn reason_of(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        410 => "Expired",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_the_object_and_its_group() {
        let rt = ResourceType::namespaced("danm.k8s.io", "v1", "danmnets", "DanmNet");
        let status = ApiError::already_exists(&rt, "n1").to_status();
        assert_eq!(status["code"], 409);
        assert_eq!(status["reason"], "AlreadyExists");
        assert_eq!(status["message"], "danmnets.danm.k8s.io \"n1\" already exists");
        assert_eq!(status["details"], json!({"name": "n1", "group": "danm.k8s.io", "kind": "danmnets"}));
    }

    #[test]
    fn codes_map_to_reasons() {
        assert_eq!(ApiError::with_code(503, "x").reason, "ServiceUnavailable");
        assert_eq!(ApiError::expired(1, 5).reason, "Expired");
        assert_eq!(ApiError::with_code(418, "x").reason, "");
    }
}

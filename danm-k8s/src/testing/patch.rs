//! The patch formats a PATCH request may carry, decoded and applied to a JSON object.

use serde_json::Value;

use super::error::ApiError;

/// A decoded patch body.
#[derive(Clone, Debug)]
pub(crate) enum PatchBody {
    /// `application/merge-patch+json` (RFC 7386); also used for `strategic-merge-patch+json`.
    Merge(Value),
    /// `application/json-patch+json` (RFC 6902), `test` operations included.
    Json(json_patch::Patch),
    /// `application/apply-patch+yaml`: server-side apply, treated as a merge of the fields given.
    Apply(Value),
}

impl PatchBody {
    /// Decodes `body` by its `Content-Type`; 415 for other types, 400 for a body that does not decode.
    pub(crate) fn decode(content_type: &str, body: &[u8]) -> Result<Self, ApiError> {
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        let undecodable = |e: &dyn std::fmt::Display| ApiError::bad_request(format!("cannot decode patch: {e}"));
        match media_type {
            "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                serde_json::from_slice(body).map(Self::Merge).map_err(|e| undecodable(&e))
            }
            "application/json-patch+json" => serde_json::from_slice(body).map(Self::Json).map_err(|e| undecodable(&e)),
            "application/apply-patch+yaml" => serde_json::from_slice(body)
                .or_else(|_| serde_yaml::from_slice(body))
                .map(Self::Apply)
                .map_err(|e| undecodable(&e)),
            other => {
                Err(ApiError::with_code(415, format!("the body of the request was in an unknown format: {other}")))
            }
        }
    }

    /// The object an apply would create when none exists yet.
    pub(crate) fn applied_object(&self) -> Option<&Value> {
        match self {
            Self::Apply(object) => Some(object),
            Self::Merge(_) | Self::Json(_) => None,
        }
    }

    /// `document` with the patch applied, or why it does not apply.
    pub(crate) fn apply_to(&self, mut document: Value) -> Result<Value, String> {
        match self {
            Self::Merge(patch) | Self::Apply(patch) => {
                if !patch.is_object() {
                    return Err("a merge patch must be a JSON object".to_owned());
                }
                json_patch::merge(&mut document, patch);
            }
            Self::Json(patch) => json_patch::patch(&mut document, &patch.0).map_err(|e| e.to_string())?,
        }
        Ok(document)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn decodes_by_content_type() {
        let merge = PatchBody::decode("application/merge-patch+json; charset=utf-8", br#"{"a":null,"b":2}"#).unwrap();
        assert_eq!(merge.apply_to(json!({"a": 1, "c": 3})).unwrap(), json!({"b": 2, "c": 3}));
        let apply = PatchBody::decode("application/apply-patch+yaml", b"spec:\n  x: 1\n").unwrap();
        assert_eq!(apply.apply_to(json!({"spec": {"y": 2}})).unwrap(), json!({"spec": {"x": 1, "y": 2}}));
        assert_eq!(PatchBody::decode("text/plain", b"{}").unwrap_err().code, 415);
        assert_eq!(PatchBody::decode("application/json-patch+json", b"{}").unwrap_err().code, 400);
    }

    #[test]
    fn json_patch_test_failure_is_reported() {
        let body = br#"[{"op":"test","path":"/a","value":1},{"op":"replace","path":"/a","value":2}]"#;
        let patch = PatchBody::decode("application/json-patch+json", body).unwrap();
        assert_eq!(patch.apply_to(json!({"a": 1})).unwrap(), json!({"a": 2}));
        assert!(patch.apply_to(json!({"a": 5})).is_err());
    }
}

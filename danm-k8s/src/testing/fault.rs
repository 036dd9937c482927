//! Injected failures and the log of received requests.

use super::error::ApiError;

/// A failure the fake answers instead of serving matching requests, to exercise retry paths.
///
/// ```
/// use danm_k8s::testing::Fault;
/// // The next two PUTs to any path containing "/danmnets/" get 409 Conflict.
/// let fault = Fault::status(409).method("PUT").path_contains("/danmnets/").times(2);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    code: u16,
    method: Option<String>,
    path: Option<String>,
    remaining: usize,
}

impl Fault {
    /// Answer the next matching request with HTTP `code` and a `Status` body with the reason that the
    /// API server gives that code (409 `Conflict`, 500 `InternalError`, 503 `ServiceUnavailable`, ...).
    pub fn status(code: u16) -> Self {
        Self { code, method: None, path: None, remaining: 1 }
    }

    /// Only requests with this HTTP method (`GET`, `POST`, `PUT`, `PATCH`, `DELETE`); case is ignored.
    #[must_use]
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// Only requests whose path (without the query) contains `fragment`.
    #[must_use]
    pub fn path_contains(mut self, fragment: &str) -> Self {
        self.path = Some(fragment.to_owned());
        self
    }

    /// Fail `n` matching requests instead of one.
    #[must_use]
    pub fn times(mut self, n: usize) -> Self {
        self.remaining = n;
        self
    }

    pub(crate) fn matches(&self, method: &str, path: &str) -> bool {
        self.remaining > 0
            && self.method.as_deref().is_none_or(|m| m == method)
            && self.path.as_deref().is_none_or(|p| path.contains(p))
    }

    pub(crate) fn use_once(&mut self) -> ApiError {
        self.remaining = self.remaining.saturating_sub(1);
        ApiError::with_code(self.code, format!("injected fault: HTTP {}", self.code))
    }

    pub(crate) fn is_spent(&self) -> bool {
        self.remaining == 0
    }
}

/// One request the fake received (including those answered by a [`Fault`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// The HTTP method, e.g. `PUT`.
    pub method: String,
    /// The path, e.g. `/api/v1/namespaces/default/pods/p`.
    pub path: String,
    /// The raw query string, possibly empty.
    pub query: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_matches_method_and_path_until_spent() {
        let mut fault = Fault::status(503).method("put").path_contains("/leases/").times(2);
        assert!(!fault.matches("GET", "/apis/coordination.k8s.io/v1/namespaces/a/leases/l"));
        assert!(!fault.matches("PUT", "/api/v1/namespaces/a/pods/p"));
        assert!(fault.matches("PUT", "/apis/coordination.k8s.io/v1/namespaces/a/leases/l"));
        assert_eq!(fault.use_once().reason, "ServiceUnavailable");
        assert!(!fault.is_spent());
        fault.use_once();
        assert!(fault.is_spent());
        assert!(!fault.matches("PUT", "/apis/coordination.k8s.io/v1/namespaces/a/leases/l"));
    }
}

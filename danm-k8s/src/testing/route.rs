//! What a request names: the kind, namespace, object and subresource from its path, and its query options.

use std::time::Duration;

use super::error::ApiError;
use super::resource::ResourceType;
use super::selector::{FieldSelector, LabelSelector};

/// The target of a request, resolved against the registered kinds.
#[derive(Clone, Debug)]
pub(crate) struct Route {
    /// The kind the path names.
    pub(crate) rt: ResourceType,
    /// The namespace in the path; `None` for a cluster-scoped kind or a list across namespaces.
    pub(crate) namespace: Option<String>,
    /// The object name; `None` for the collection.
    pub(crate) name: Option<String>,
    /// Whether the path ends in `/status`.
    pub(crate) status: bool,
}

impl Route {
    /// Resolves `/api/v1/...` or `/apis/{group}/{version}/...`; unknown kinds and malformed paths are 404.
    pub(crate) fn resolve(path: &str, kinds: &[ResourceType]) -> Result<Self, ApiError> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (group, version, rest) = match segments.as_slice() {
            ["api", version, rest @ ..] => ("", *version, rest),
            ["apis", group, version, rest @ ..] => (*group, *version, rest),
            _ => return Err(ApiError::no_such_path()),
        };
        let core_namespace_status =
            group.is_empty() && rest.len() == 3 && rest[0] == "namespaces" && rest[2] == "status";
        let (namespace, rest) = match rest {
            ["namespaces", ns, rest @ ..] if !rest.is_empty() && !core_namespace_status => (Some(*ns), rest),
            _ => (None, rest),
        };
        let (plural, name, status) = match rest {
            [plural] => (*plural, None, false),
            [plural, name] => (*plural, Some(*name), false),
            [plural, name, "status"] => (*plural, Some(*name), true),
            _ => return Err(ApiError::no_such_path()),
        };
        let rt = kinds.iter().find(|rt| rt.is_at(group, version, plural)).ok_or_else(ApiError::no_such_path)?;
        let scoped_right = match (rt.is_namespaced(), namespace, name) {
            (true, Some(_), _) | (true, None, None) | (false, None, _) => true,
            (true, None, Some(_)) | (false, Some(_), _) => false,
        };
        if !scoped_right || name.is_some_and(str::is_empty) || namespace.is_some_and(str::is_empty) {
            return Err(ApiError::no_such_path());
        }
        if status && !rt.has_status_subresource() {
            return Err(ApiError::no_such_path());
        }
        Ok(Self { rt: rt.clone(), namespace: namespace.map(str::to_owned), name: name.map(str::to_owned), status })
    }

    /// The namespace objects get on this route: the path's, or empty for a cluster-scoped kind.
    pub(crate) fn object_namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }
}

/// The query options the fake understands; all others (`limit`, `continue`, `fieldManager`, `force`,
/// `resourceVersionMatch`, ...) are accepted and ignored.
#[derive(Clone, Debug, Default)]
pub(crate) struct Query {
    /// `labelSelector`.
    pub(crate) labels: LabelSelector,
    /// `fieldSelector`.
    pub(crate) fields: FieldSelector,
    /// `watch=true` or `watch=1`.
    pub(crate) watch: bool,
    /// `resourceVersion`, when given and not empty.
    pub(crate) resource_version: Option<String>,
    /// `allowWatchBookmarks=true`.
    pub(crate) bookmarks: bool,
    /// `sendInitialEvents=true`.
    pub(crate) send_initial_events: bool,
    /// `timeoutSeconds`.
    pub(crate) timeout: Option<Duration>,
    /// `dryRun` was given.
    pub(crate) dry_run: bool,
}

impl Query {
    /// Parses a form-encoded query (`+` and `%20` both decode to a space).
    pub(crate) fn parse(query: &str) -> Result<Self, ApiError> {
        let mut parsed = Self::default();
        let truthy = |v: &str| v == "true" || v == "1";
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match &*key {
                "labelSelector" => parsed.labels = LabelSelector::parse(&value).map_err(ApiError::bad_request)?,
                "fieldSelector" => parsed.fields = FieldSelector::parse(&value).map_err(ApiError::bad_request)?,
                "watch" => parsed.watch = truthy(&value),
                "resourceVersion" if !value.is_empty() => parsed.resource_version = Some(value.into_owned()),
                "allowWatchBookmarks" => parsed.bookmarks = truthy(&value),
                "sendInitialEvents" => parsed.send_initial_events = truthy(&value),
                "timeoutSeconds" => {
                    let seconds = value.parse().map_err(|_| ApiError::bad_request("timeoutSeconds: not a number"))?;
                    parsed.timeout = Some(Duration::from_secs(seconds));
                }
                "dryRun" => parsed.dry_run = true,
                _ => {}
            }
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::super::resource::builtin;
    use super::*;

    fn kinds() -> Vec<ResourceType> {
        let mut kinds = builtin();
        kinds.push(ResourceType::cluster("danm.k8s.io", "v1", "clusternetworks", "ClusterNetwork"));
        kinds
    }

    fn route(path: &str) -> Result<(String, Option<String>, Option<String>, bool), u16> {
        Route::resolve(path, &kinds())
            .map(|r| (r.rt.plural().to_owned(), r.namespace, r.name, r.status))
            .map_err(|e| e.code)
    }

    #[test]
    fn resolves_core_group_and_scopes() {
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(route("/api/v1/namespaces/a/pods"), Ok(("pods".into(), s("a"), None, false)));
        assert_eq!(route("/api/v1/namespaces/a/pods/p"), Ok(("pods".into(), s("a"), s("p"), false)));
        assert_eq!(route("/api/v1/namespaces/a/pods/p/status"), Ok(("pods".into(), s("a"), s("p"), true)));
        assert_eq!(route("/api/v1/pods"), Ok(("pods".into(), None, None, false)));
        assert_eq!(route("/api/v1/namespaces/a"), Ok(("namespaces".into(), None, s("a"), false)));
        assert_eq!(route("/api/v1/namespaces/a/status"), Ok(("namespaces".into(), None, s("a"), true)));
        assert_eq!(
            route("/apis/coordination.k8s.io/v1/namespaces/a/leases/l"),
            Ok(("leases".into(), s("a"), s("l"), false))
        );
        assert_eq!(
            route("/apis/danm.k8s.io/v1/clusternetworks/c"),
            Ok(("clusternetworks".into(), None, s("c"), false))
        );
    }

    #[test]
    fn unknown_or_misscoped_paths_are_404() {
        for path in [
            "/api/v1/widgets",
            "/apis/danm.k8s.io/v2/clusternetworks",
            "/api/v1/pods/p",
            "/apis/danm.k8s.io/v1/namespaces/a/clusternetworks",
            "/apis/coordination.k8s.io/v1/namespaces/a/leases/l/status",
            "/api/v1/namespaces/a/pods/p/log",
            "/version",
        ] {
            assert_eq!(route(path), Err(404), "{path}");
        }
    }

    #[test]
    fn query_decodes_plus_as_space() {
        let q = Query::parse("labelSelector=tier+in+%28a%2Cb%29&watch=1&timeoutSeconds=5&limit=500").unwrap();
        assert!(q.watch);
        assert_eq!(q.timeout, Some(Duration::from_secs(5)));
        assert_eq!(q.labels, LabelSelector::parse("tier in (a,b)").unwrap());
        assert_eq!(Query::parse("labelSelector=a+in+b").unwrap_err().code, 400);
    }
}

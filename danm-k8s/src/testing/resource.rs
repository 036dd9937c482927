//! The kinds of object the fake serves, as a real server knows them from its built-in types and CRDs.

use std::any::TypeId;

use kube::core::{NamespaceResourceScope, Resource};

/// One kind of object the fake API server serves: its group, version, plural, kind and scope.
///
/// A path naming a plural that was never registered is answered `404 NotFound`, as a real server does
/// for a CRD that is not installed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceType {
    group: String,
    version: String,
    plural: String,
    kind: String,
    namespaced: bool,
    status_subresource: bool,
}

impl ResourceType {
    /// A namespaced kind, e.g. `ResourceType::namespaced("danm.k8s.io", "v1", "danmnets", "DanmNet")`.
    /// Use the empty group for the core API (`/api/v1`).
    pub fn namespaced(group: &str, version: &str, plural: &str, kind: &str) -> Self {
        Self::new(group, version, plural, kind, true)
    }

    /// A cluster-scoped kind, e.g. `ResourceType::cluster("danm.k8s.io", "v1", "clusternetworks", "ClusterNetwork")`.
    pub fn cluster(group: &str, version: &str, plural: &str, kind: &str) -> Self {
        Self::new(group, version, plural, kind, false)
    }

    /// The kind of the Rust type `K` (a k8s-openapi type or a `#[derive(CustomResource)]` type), namespaced
    /// when `K::Scope` is [`NamespaceResourceScope`]. It has no status subresource until
    /// [`with_status_subresource`](Self::with_status_subresource) is called.
    pub fn of<K>() -> Self
    where
        K: Resource<DynamicType = ()>,
        K::Scope: 'static,
    {
        let namespaced = TypeId::of::<K::Scope>() == TypeId::of::<NamespaceResourceScope>();
        Self::new(&K::group(&()), &K::version(&()), &K::plural(&()), &K::kind(&()), namespaced)
    }

    fn new(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        Self {
            group: group.to_owned(),
            version: version.to_owned(),
            plural: plural.to_owned(),
            kind: kind.to_owned(),
            namespaced,
            status_subresource: false,
        }
    }

    /// Enables the `status` subresource: `.../{name}/status` changes only `.status`, while creates and
    /// main-resource writes leave `.status` as it was.
    #[must_use]
    pub fn with_status_subresource(mut self) -> Self {
        self.status_subresource = true;
        self
    }

    /// The API group; empty for the core API.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The API version, e.g. `v1`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The plural resource name used in paths, e.g. `pods`.
    pub fn plural(&self) -> &str {
        &self.plural
    }

    /// The kind, e.g. `Pod`.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// Whether objects of this kind live in a namespace.
    pub fn is_namespaced(&self) -> bool {
        self.namespaced
    }

    /// Whether this kind has a `status` subresource.
    pub fn has_status_subresource(&self) -> bool {
        self.status_subresource
    }

    /// The `apiVersion` of objects of this kind: `v1` or `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    /// The name used in error messages: `pods`, or `danmnets.danm.k8s.io`.
    pub(crate) fn resource_name(&self) -> String {
        if self.group.is_empty() { self.plural.clone() } else { format!("{}.{}", self.plural, self.group) }
    }

    /// Whether this kind is served at `group`/`version`/`plural`.
    pub(crate) fn is_at(&self, group: &str, version: &str, plural: &str) -> bool {
        self.group == group && self.version == version && self.plural == plural
    }

    /// Whether objects of this kind carry `apiVersion` and `kind`.
    pub(crate) fn is_for(&self, api_version: &str, kind: &str) -> bool {
        self.kind == kind && self.api_version() == api_version
    }
}

/// The built-in kinds every fake serves: core pods, services, endpoints, namespaces and nodes,
/// `discovery.k8s.io/v1` endpointslices and `coordination.k8s.io/v1` leases.
pub(crate) fn builtin() -> Vec<ResourceType> {
    vec![
        ResourceType::namespaced("", "v1", "pods", "Pod").with_status_subresource(),
        ResourceType::namespaced("", "v1", "services", "Service").with_status_subresource(),
        ResourceType::namespaced("", "v1", "endpoints", "Endpoints"),
        ResourceType::cluster("", "v1", "namespaces", "Namespace").with_status_subresource(),
        ResourceType::cluster("", "v1", "nodes", "Node").with_status_subresource(),
        ResourceType::namespaced("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
        ResourceType::namespaced("coordination.k8s.io", "v1", "leases", "Lease"),
    ]
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::core::v1::{Node, Pod};

    use super::*;

    #[test]
    fn of_reads_coordinates_and_scope() {
        let lease = ResourceType::of::<Lease>();
        assert_eq!(lease, ResourceType::namespaced("coordination.k8s.io", "v1", "leases", "Lease"));
        assert_eq!(lease.api_version(), "coordination.k8s.io/v1");
        assert!(!ResourceType::of::<Node>().is_namespaced());
        assert_eq!(ResourceType::of::<Pod>().api_version(), "v1");
        assert_eq!(ResourceType::of::<Pod>().resource_name(), "pods");
        assert_eq!(lease.resource_name(), "leases.coordination.k8s.io");
    }
}

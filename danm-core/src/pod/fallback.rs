//! The `default` network: what a pod without an interfaces annotation (or with an empty one) connects to.
//!
//! The look-up order is upstream's: a DanmNet named `default` in the pod's namespace, then a TenantNetwork
//! of that name in the namespace, then a ClusterNetwork. The functions here are pure: the caller supplies
//! whether an object exists. They do not check `AllowedTenants` or any other rule of the network found.

use super::annotation::{InterfaceRequest, NetworkRef};
use crate::ipam::IpRequest;
use crate::model::{NetworkKey, NetworkKind};

/// The name of the network a pod falls back to.
pub const DEFAULT_NETWORK: &str = "default";

/// The objects a pod in `namespace` may fall back to, in the order they are tried.
pub fn default_network_candidates(namespace: &str) -> [NetworkKey; 3] {
    NetworkKind::ALL.map(|kind| NetworkKey::new(kind, namespace, DEFAULT_NETWORK))
}

/// The connection a pod gets on the default network of `kind`: `eth0`, a dynamic IPv4 address, no IPv6
/// address and no policy routes.
pub fn default_connection(kind: NetworkKind) -> InterfaceRequest {
    InterfaceRequest { ip: Some(IpRequest::Dynamic), ..InterfaceRequest::new(NetworkRef::new(kind, DEFAULT_NETWORK)) }
}

/// No `default` network exists for a pod's namespace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the pod asks for no network and there is no default network for namespace `{namespace}`: none of {} exists",
    candidate_list(.namespace)
)]
pub struct NoDefaultNetwork {
    /// The pod's namespace.
    pub namespace: String,
}

impl NoDefaultNetwork {
    /// The objects that were looked for, in order.
    pub fn candidates(&self) -> [NetworkKey; 3] {
        default_network_candidates(&self.namespace)
    }
}

fn candidate_list(namespace: &str) -> String {
    let [a, b, c] = default_network_candidates(namespace);
    format!("{a}, {b} or {c}")
}

/// The first of [`default_network_candidates`] for which `exists` answers true.
pub fn resolve_default_network<F>(namespace: &str, mut exists: F) -> Result<NetworkKey, NoDefaultNetwork>
where
    F: FnMut(&NetworkKey) -> bool,
{
    let candidates = default_network_candidates(namespace);
    match candidates.iter().find(|key| exists(key)) {
        Some(found) => Ok(found.clone()),
        None => Err(NoDefaultNetwork { namespace: namespace.to_owned() }),
    }
}

/// The connections of a pod: the requested ones, or the default connection when there are none
/// (`requested` is `None` or empty).
pub fn connections_or_default<F>(
    requested: Option<Vec<InterfaceRequest>>,
    namespace: &str,
    exists: F,
) -> Result<Vec<InterfaceRequest>, NoDefaultNetwork>
where
    F: FnMut(&NetworkKey) -> bool,
{
    match requested {
        Some(list) if !list.is_empty() => Ok(list),
        _ => resolve_default_network(namespace, exists).map(|key| vec![default_connection(key.kind)]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_follow_upstream_order() {
        let [dn, tn, cn] = default_network_candidates("blue");
        assert_eq!(
            dn,
            NetworkKey { kind: NetworkKind::DanmNet, namespace: Some("blue".into()), name: "default".into() }
        );
        assert_eq!(tn.kind, NetworkKind::TenantNetwork);
        assert_eq!(tn.namespace.as_deref(), Some("blue"));
        assert_eq!(cn, NetworkKey { kind: NetworkKind::ClusterNetwork, namespace: None, name: "default".into() });
    }

    #[test]
    fn first_existing_candidate_wins() {
        let only_cluster = |k: &NetworkKey| k.kind == NetworkKind::ClusterNetwork;
        assert_eq!(resolve_default_network("blue", only_cluster).unwrap().kind, NetworkKind::ClusterNetwork);
        let all = |_: &NetworkKey| true;
        assert_eq!(resolve_default_network("blue", all).unwrap().kind, NetworkKind::DanmNet);
        let tenant_or_cluster = |k: &NetworkKey| k.kind != NetworkKind::DanmNet;
        assert_eq!(resolve_default_network("blue", tenant_or_cluster).unwrap().kind, NetworkKind::TenantNetwork);
    }

    #[test]
    fn missing_default_names_every_candidate() {
        let err = resolve_default_network("blue", |_| false).unwrap_err();
        assert_eq!(err.candidates(), default_network_candidates("blue"));
        let msg = err.to_string();
        for part in ["DanmNet/blue/default", "TenantNetwork/blue/default", "ClusterNetwork/default"] {
            assert!(msg.contains(part), "{msg}");
        }
    }

    #[test]
    fn empty_or_absent_request_falls_back() {
        let exists = |k: &NetworkKey| k.kind == NetworkKind::TenantNetwork;
        let expected = vec![default_connection(NetworkKind::TenantNetwork)];
        assert_eq!(connections_or_default(None, "blue", exists).unwrap(), expected);
        assert_eq!(connections_or_default(Some(vec![]), "blue", exists).unwrap(), expected);
        let conn = &expected[0];
        assert_eq!((conn.network.name.as_str(), conn.ip, conn.ip6), ("default", Some(IpRequest::Dynamic), None));
        assert!(conn.proutes.is_empty() && conn.proutes6.is_empty());
        let own = vec![InterfaceRequest::new(NetworkRef::new(NetworkKind::DanmNet, "mine"))];
        assert_eq!(connections_or_default(Some(own.clone()), "blue", |_| false).unwrap(), own);
    }
}

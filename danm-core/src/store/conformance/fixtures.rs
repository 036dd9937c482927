//! Objects the conformance checks store: one of each kind, filled in so that a lossy round trip shows.

use std::collections::BTreeMap;

use crate::ipam::{AllocatorId, Block, BlockKey, Cursor, Family, OwnerId, PoolKey};
use crate::model::{
    AllowedClusterNetwork, DanmEp, DanmEpIface, DanmEpSpec, IfaceProfile, Network, NetworkKey, NetworkKind,
    NetworkOptions, NetworkSpec, ObjectMeta, PodRecord, TenantConfig,
};
use crate::store::{Object, ObjectKey, Versioned};

/// Metadata with a label, an annotation and a field DANM does not know, as a Kubernetes read would have.
fn meta(name: &str, namespace: Option<&str>) -> ObjectMeta {
    let mut m = ObjectMeta::new(name, namespace);
    m.uid = Some(format!("uid-{}-{name}", namespace.unwrap_or("cluster")));
    m.labels.insert("app".into(), "conformance".into());
    m.annotations.insert("danm.k8s.io/note".into(), "ünïcødé ✓".into());
    m.other.insert("creationTimestamp".into(), serde_json::json!("2024-01-02T03:04:05Z"));
    m
}

/// A network of `kind`; `namespace` is dropped for a ClusterNetwork.
pub(super) fn network(kind: NetworkKind, namespace: Option<&str>, name: &str) -> Network {
    let namespace = namespace.filter(|_| kind.is_namespaced());
    let mut options = NetworkOptions {
        host_device: "ens1f0".into(),
        vlan: Some(500),
        cidr: "10.10.0.0/16".into(),
        net6: "2001:db8::/64".into(),
        mtu: Some(9000),
        ..NetworkOptions::default()
    };
    options.routes.insert("10.20.0.0/16".into(), "10.10.0.1".into());
    let spec = NetworkSpec {
        network_id: format!("id-{name}"),
        network_type: "ipvlan".into(),
        allowed_tenants: if kind.is_namespaced() { Vec::new() } else { vec!["a".into(), "b".into()] },
        options,
    };
    let mut n = Network::new(kind, meta(name, namespace), spec);
    n.status = Some(serde_json::json!({ "status": "Ready", "observed": [1, 2, 3] }));
    n
}

/// A TenantConfig named `name`.
pub(super) fn tenant_config(name: &str) -> TenantConfig {
    TenantConfig {
        api_version: "danm.k8s.io/v1".into(),
        kind: "TenantConfig".into(),
        metadata: meta(name, None),
        host_devices: vec![IfaceProfile {
            name: "ens1f1".into(),
            vni_type: "vlan".into(),
            vni_range: "2000-2500,2601".into(),
            alloc: String::new(),
        }],
        network_ids: BTreeMap::from([("ipvlan".into(), "internal".into())]),
        allowed_cluster_networks: vec![AllowedClusterNetwork {
            name: "c1".into(),
            privileges: vec!["reservedIp".into()],
        }],
    }
}

/// A DanmEp in `namespace` named `name`, of pod `pod_uid` and container `cid`, on the network named
/// `network` of `api_type` (`""` means DanmNet, an unknown name matches no network).
pub(super) fn endpoint(namespace: &str, name: &str, pod_uid: &str, cid: &str, api_type: &str, network: &str) -> DanmEp {
    let mut proutes = BTreeMap::new();
    proutes.insert("10.30.0.0/16".into(), "10.10.0.254".into());
    DanmEp {
        api_version: "danm.k8s.io/v1".into(),
        kind: "DanmEp".into(),
        metadata: meta(name, Some(namespace)),
        spec: DanmEpSpec {
            network_name: network.into(),
            network_type: "ipvlan".into(),
            endpoint_id: name.into(),
            interface: DanmEpIface {
                name: "eth1".into(),
                address: "10.10.0.5/16".into(),
                address_ipv6: "none".into(),
                mac_address: "02:00:00:00:00:05".into(),
                proutes,
                mtu: Some(1500),
                ..DanmEpIface::default()
            },
            // Pod u3 runs on another node, so that queries by host have something to tell apart.
            host: if pod_uid == "u3" { "node-2".into() } else { "node-1".into() },
            pod: format!("pod-{pod_uid}"),
            pod_uid: pod_uid.into(),
            cid: cid.into(),
            netns: format!("/var/run/netns/{cid}"),
            api_type: api_type.into(),
        },
    }
}

/// A pod record in `namespace` named `name`.
pub(super) fn pod(namespace: &str, name: &str) -> PodRecord {
    PodRecord {
        metadata: meta(name, Some(namespace)),
        node_name: Some("node-1".into()),
        hostname: Some(name.into()),
        ready: true,
        container_ports: vec![crate::model::ContainerPort::new("http", 8080, "TCP")],
    }
}

/// A DANM Service in `namespace` named `name`: headless, with a selector and network annotation.
pub(super) fn service(namespace: &str, name: &str) -> crate::service::ServiceRecord {
    let mut metadata = meta(name, Some(namespace));
    metadata.annotations.insert("danm.k8s.io/selector".into(), r#"{"app":"lb"}"#.into());
    metadata.annotations.insert("danm.k8s.io/network".into(), "n1".into());
    crate::service::ServiceRecord { metadata, cluster_ip: Some("None".into()), ..Default::default() }
}

/// The pool of `family` of the network `kind`/`namespace`/`name`.
pub(super) fn pool(kind: NetworkKind, namespace: &str, name: &str, family: Family) -> PoolKey {
    PoolKey::new(NetworkKey::new(kind, namespace, name), family)
}

/// Block `index` of `pool`, with three slots taken.
pub(super) fn block(pool: &PoolKey, index: u128) -> Object {
    let mut block = Block::default();
    for (slot, owner) in [(0u8, 1u64), (17, u64::MAX), (63, 0xdead_beef)] {
        block.allocate(slot, OwnerId(owner), slot == 17).expect("a fresh block has every slot free");
    }
    Object::Block { key: BlockKey { pool: pool.clone(), index }, block }
}

/// The next-fit cursor of `allocator` in `pool`, at `block`.
pub(super) fn cursor(pool: &PoolKey, allocator: &str, block: u128) -> Object {
    Object::Cursor { pool: pool.clone(), cursor: Cursor { allocator: AllocatorId::new(allocator), block } }
}

/// One object of every kind: all three network kinds, a TenantConfig, a DanmEp, a pod, a Service, a block
/// and a cursor.
pub(super) fn one_of_each() -> Vec<Object> {
    let p = pool(NetworkKind::DanmNet, "a", "n1", Family::V6);
    vec![
        Object::Network(network(NetworkKind::DanmNet, Some("a"), "n1")),
        Object::Network(network(NetworkKind::TenantNetwork, Some("a"), "t1")),
        Object::Network(network(NetworkKind::ClusterNetwork, None, "c1")),
        Object::TenantConfig(tenant_config("tc1")),
        Object::Endpoint(endpoint("a", "ep1", "u1", "c1", "DanmNet", "n1")),
        Object::Pod(pod("a", "p1")),
        Object::Service(service("a", "s1")),
        block(&p, u128::MAX >> 6),
        cursor(&p, "node-1", u128::MAX >> 6),
    ]
}

/// The keys of listed objects, in the order listed.
pub(super) fn keys(listed: &[Versioned<Object>]) -> Vec<ObjectKey> {
    listed.iter().map(|v| v.value.key()).collect()
}

//! Checks of [`Datastore::list`]: which objects each query selects, in key order, with their versions.

use std::collections::BTreeMap;

use super::fixtures::{self, keys};
use super::{create, read};
use crate::ipam::{Family, PoolKey};
use crate::model::{NetworkKey, NetworkKind};
use crate::store::{Datastore, EndpointQuery, Object, ObjectKey, Query, Versioned};

use NetworkKind::{ClusterNetwork, DanmNet, TenantNetwork};

/// What was stored, by key, with the version create returned.
type Seeded = BTreeMap<ObjectKey, Versioned<Object>>;

/// Creates `objects` in the order given (deliberately not key order) and returns them by key.
async fn seed<S: Datastore + ?Sized>(store: &S, objects: Vec<Object>) -> Seeded {
    let mut seeded = BTreeMap::new();
    for object in objects {
        let version = create(store, &object).await;
        seeded.insert(object.key(), Versioned { version, value: object });
    }
    seeded
}

/// Objects of other kinds, so that a list that leaks across kinds shows.
fn bystanders() -> Vec<Object> {
    let p = fixtures::pool(DanmNet, "a", "n1", Family::V4);
    vec![
        Object::Pod(fixtures::pod("a", "n1")),
        Object::Endpoint(fixtures::endpoint("a", "n1", "u9", "c9", "DanmNet", "n1")),
        Object::TenantConfig(fixtures::tenant_config("n1")),
        fixtures::block(&p, 0),
        fixtures::cursor(&p, "node-1", 0),
        Object::Network(fixtures::network(DanmNet, Some("a"), "zz-bystander")),
        Object::Service(fixtures::service("a", "n1")),
    ]
}

/// Lists `query` and checks that it returns exactly `expected`, in that order, each with the value and
/// version it was stored with.
async fn check<S: Datastore + ?Sized>(store: &S, seeded: &Seeded, query: &Query, expected: &[ObjectKey]) {
    let listed = store.list(query).await.unwrap_or_else(|e| panic!("listing {query:?} failed: {e:?}"));
    assert_eq!(keys(&listed), expected, "listing {query:?} selected the wrong objects or in the wrong order");
    for got in &listed {
        let key = got.value.key();
        let expected = seeded.get(&key).map(|v| (v.version.clone(), super::comparable(&v.value)));
        assert_eq!(
            Some((got.version.clone(), super::comparable(&got.value))),
            expected,
            "listing {query:?} returned {key} changed"
        );
    }
}

fn net(kind: NetworkKind, namespace: &str, name: &str) -> ObjectKey {
    ObjectKey::Network(NetworkKey::new(kind, namespace, name))
}

/// Networks by kind and namespace. A namespace selects that namespace's DanmNets and TenantNetworks and
/// every ClusterNetwork (they have no namespace); namespaces that share a prefix are told apart.
pub async fn list_networks<S: Datastore + ?Sized>(store: &S) {
    let networks = [
        (ClusterNetwork, "", "c2"),
        (DanmNet, "b", "n1"),
        (TenantNetwork, "b", "t1"),
        (DanmNet, "ab", "n1"),
        (DanmNet, "a", "n2"),
        (ClusterNetwork, "", "c1"),
        (TenantNetwork, "a", "t1"),
        (DanmNet, "a", "n10"),
        (DanmNet, "a", "n1"),
    ];
    let mut objects: Vec<Object> =
        networks.iter().map(|(k, ns, n)| Object::Network(fixtures::network(*k, Some(ns), n))).collect();
    let bystanders = bystanders();
    let bystander_net = bystanders[5].key();
    objects.extend(bystanders);
    let seeded = seed(store, objects).await;
    let q = |kind: Option<NetworkKind>, ns: Option<&str>| Query::Networks { kind, namespace: ns.map(str::to_owned) };
    let (a_n1, a_n10, a_n2) = (net(DanmNet, "a", "n1"), net(DanmNet, "a", "n10"), net(DanmNet, "a", "n2"));
    let (ab_n1, b_n1) = (net(DanmNet, "ab", "n1"), net(DanmNet, "b", "n1"));
    let (a_t1, b_t1) = (net(TenantNetwork, "a", "t1"), net(TenantNetwork, "b", "t1"));
    let (c1, c2) = (net(ClusterNetwork, "", "c1"), net(ClusterNetwork, "", "c2"));
    let z = bystander_net;
    let all = [&a_n1, &a_n10, &a_n2, &z, &ab_n1, &b_n1, &a_t1, &b_t1, &c1, &c2].map(Clone::clone);
    check(store, &seeded, &q(None, None), &all).await;
    let dn = [&a_n1, &a_n10, &a_n2, &z, &ab_n1, &b_n1].map(Clone::clone);
    check(store, &seeded, &q(Some(DanmNet), None), &dn).await;
    check(store, &seeded, &q(Some(TenantNetwork), None), &[a_t1.clone(), b_t1.clone()]).await;
    check(store, &seeded, &q(Some(ClusterNetwork), None), &[c1.clone(), c2.clone()]).await;
    let a_dn = [&a_n1, &a_n10, &a_n2, &z].map(Clone::clone);
    check(store, &seeded, &q(Some(DanmNet), Some("a")), &a_dn).await;
    check(store, &seeded, &q(Some(DanmNet), Some("ab")), std::slice::from_ref(&ab_n1)).await;
    check(store, &seeded, &q(Some(TenantNetwork), Some("b")), std::slice::from_ref(&b_t1)).await;
    check(store, &seeded, &q(Some(ClusterNetwork), Some("a")), &[c1.clone(), c2.clone()]).await;
    let in_a = [&a_n1, &a_n10, &a_n2, &z, &a_t1, &c1, &c2].map(Clone::clone);
    check(store, &seeded, &q(None, Some("a")), &in_a).await;
    check(store, &seeded, &q(None, Some("b")), &[b_n1, b_t1, c1.clone(), c2.clone()]).await;
    check(store, &seeded, &q(None, Some("nowhere")), &[c1, c2]).await;
    check(store, &seeded, &q(Some(TenantNetwork), Some("nowhere")), &[]).await;
}

/// Every TenantConfig, in name order, and nothing else.
pub async fn list_tenant_configs<S: Datastore + ?Sized>(store: &S) {
    check(store, &BTreeMap::new(), &Query::TenantConfigs, &[]).await;
    let mut objects: Vec<Object> =
        ["t2", "t10", "t1"].iter().map(|n| Object::TenantConfig(fixtures::tenant_config(n))).collect();
    objects.extend(bystanders());
    let seeded = seed(store, objects).await;
    let expected = ["n1", "t1", "t10", "t2"].map(|n| ObjectKey::TenantConfig(n.into()));
    check(store, &seeded, &Query::TenantConfigs, &expected).await;
}

/// Pod records of one namespace (not of a namespace it is a prefix of), or of all, in key order. Every
/// namespace is a real name: Kubernetes has no empty one.
pub async fn list_pods<S: Datastore + ?Sized>(store: &S) {
    let pods = [("b", "p1"), ("a", "p2"), ("ab", "p1"), ("a", "p1"), ("0", "p0")];
    let mut objects: Vec<Object> = pods.iter().map(|(ns, n)| Object::Pod(fixtures::pod(ns, n))).collect();
    objects.extend(bystanders());
    let seeded = seed(store, objects).await;
    let key = |ns: &str, n: &str| ObjectKey::Pod { namespace: ns.into(), name: n.into() };
    let q = |ns: Option<&str>| Query::Pods { namespace: ns.map(str::to_owned) };
    let all = [key("0", "p0"), key("a", "n1"), key("a", "p1"), key("a", "p2"), key("ab", "p1"), key("b", "p1")];
    check(store, &seeded, &q(None), &all).await;
    check(store, &seeded, &q(Some("a")), &[key("a", "n1"), key("a", "p1"), key("a", "p2")]).await;
    check(store, &seeded, &q(Some("ab")), &[key("ab", "p1")]).await;
    check(store, &seeded, &q(Some("0")), &[key("0", "p0")]).await;
    check(store, &seeded, &q(Some("c")), &[]).await;
}

/// Services of one namespace (not of a namespace it is a prefix of), or of all, in key order; pods of the
/// same names are not Services.
pub async fn list_services<S: Datastore + ?Sized>(store: &S) {
    let services = [("b", "s1"), ("a", "s2"), ("ab", "s1"), ("a", "s1")];
    let mut objects: Vec<Object> = services.iter().map(|(ns, n)| Object::Service(fixtures::service(ns, n))).collect();
    objects.push(Object::Pod(fixtures::pod("a", "s1")));
    objects.extend(bystanders());
    let seeded = seed(store, objects).await;
    let key = |ns: &str, n: &str| ObjectKey::Service { namespace: ns.into(), name: n.into() };
    let q = |ns: Option<&str>| Query::Services { namespace: ns.map(str::to_owned) };
    let all = [key("a", "n1"), key("a", "s1"), key("a", "s2"), key("ab", "s1"), key("b", "s1")];
    check(store, &seeded, &q(None), &all).await;
    check(store, &seeded, &q(Some("a")), &[key("a", "n1"), key("a", "s1"), key("a", "s2")]).await;
    check(store, &seeded, &q(Some("ab")), &[key("ab", "s1")]).await;
    check(store, &seeded, &q(Some("c")), &[]).await;
}

/// The blocks of one pool, in numeric index order: not those of the other family, of another network of
/// the same name in another namespace or of another kind, nor cursors.
pub async fn list_blocks<S: Datastore + ?Sized>(store: &S) {
    let mine = fixtures::pool(DanmNet, "a", "n1", Family::V4);
    let others = [
        fixtures::pool(DanmNet, "a", "n1", Family::V6),
        fixtures::pool(DanmNet, "a", "n10", Family::V4),
        fixtures::pool(DanmNet, "ab", "n1", Family::V4),
        fixtures::pool(TenantNetwork, "a", "n1", Family::V4),
        fixtures::pool(ClusterNetwork, "", "n1", Family::V4),
    ];
    let indexes: [u128; 9] = [100, 2, u128::MAX, 10, 1 << 64, 1, 3, 64, (1 << 64) - 1];
    let mut objects: Vec<Object> = Vec::new();
    for (i, index) in indexes.iter().enumerate() {
        objects.push(fixtures::block(&mine, *index));
        objects.push(fixtures::block(&others[i % others.len()], *index));
    }
    objects.push(fixtures::cursor(&mine, "node-1", 5));
    let seeded = seed(store, objects).await;
    let mut sorted = indexes.to_vec();
    sorted.sort_unstable();
    let block_keys = |pool: &PoolKey, idx: &[u128]| -> Vec<ObjectKey> {
        idx.iter().map(|i| ObjectKey::Block(crate::ipam::BlockKey { pool: pool.clone(), index: *i })).collect()
    };
    check(store, &seeded, &Query::Blocks(mine.clone()), &block_keys(&mine, &sorted)).await;
    for (o, other) in others.iter().enumerate() {
        let mut idx: Vec<u128> =
            indexes.iter().enumerate().filter(|(i, _)| i % others.len() == o).map(|(_, x)| *x).collect();
        idx.sort_unstable();
        check(store, &seeded, &Query::Blocks(other.clone()), &block_keys(other, &idx)).await;
    }
    let empty = fixtures::pool(DanmNet, "b", "n1", Family::V4);
    check(store, &seeded, &Query::Blocks(empty), &[]).await;
}

/// DanmEps by container, pod, network, host and namespace, alone and combined, as [`EndpointQuery::matches`]
/// defines: a network matches on kind (an empty `apiType` is a DanmNet) and name, and on namespace only
/// when the network key has one.
pub async fn list_endpoints<S: Datastore + ?Sized>(store: &S) {
    let eps = [
        ("b", "e4", "u3", "c3", "DanmNet", "n1"),
        ("a", "e2", "u1", "c1", "ClusterNetwork", "n1"),
        ("ab", "e8", "u6", "c6", "DanmNet", "n2"),
        ("a", "e1", "u1", "c1", "DanmNet", "n1"),
        ("a", "e7", "u5", "c5", "Bogus", "n1"),
        ("b", "e5", "u3", "c3", "TenantNetwork", "n1"),
        ("a", "e3", "u2", "c2", "", "n1"),
        ("b", "e6", "u4", "c4", "ClusterNetwork", "n1"),
        ("a", "e10", "u1", "c1", "DanmNet", "n10"),
    ];
    let all: Vec<Object> =
        eps.iter().map(|(ns, n, u, c, t, net)| Object::Endpoint(fixtures::endpoint(ns, n, u, c, t, net))).collect();
    let mut objects = all.clone();
    let bystanders = bystanders();
    objects.extend(bystanders.iter().filter(|o| !matches!(o, Object::Endpoint(_))).cloned());
    let seeded = seed(store, objects).await;
    let key = |ns: &str, n: &str| ObjectKey::Endpoint { namespace: ns.into(), name: n.into() };

    // Hand-written expectations, which also check the oracle below.
    let dn = |ns: &str, n: &str| NetworkKey::new(DanmNet, ns, n);
    let cn = NetworkKey::new(ClusterNetwork, "", "n1");
    let eq = |f: fn(&mut EndpointQuery)| {
        let mut q = EndpointQuery::default();
        f(&mut q);
        Query::Endpoints(q)
    };
    let cases: Vec<(Query, Vec<ObjectKey>)> = vec![
        (Query::Endpoints(EndpointQuery::container("c1")), vec![key("a", "e1"), key("a", "e10"), key("a", "e2")]),
        (Query::Endpoints(EndpointQuery::pod("u3")), vec![key("b", "e4"), key("b", "e5")]),
        (Query::Endpoints(EndpointQuery::network(dn("a", "n1"))), vec![key("a", "e1"), key("a", "e3")]),
        (Query::Endpoints(EndpointQuery::network(dn("b", "n1"))), vec![key("b", "e4")]),
        (Query::Endpoints(EndpointQuery::network(cn.clone())), vec![key("a", "e2"), key("b", "e6")]),
        (Query::Endpoints(EndpointQuery::network(NetworkKey::new(TenantNetwork, "b", "n1"))), vec![key("b", "e5")]),
        (eq(|q| q.namespace = Some("ab".into())), vec![key("ab", "e8")]),
        (eq(|q| q.namespace = Some("zz".into())), vec![]),
        (Query::Endpoints(EndpointQuery::host("node-2")), vec![key("b", "e4"), key("b", "e5")]),
        (
            eq(|q| {
                q.host = Some("node-1".into());
                q.container_id = Some("c1".into());
            }),
            vec![key("a", "e1"), key("a", "e10"), key("a", "e2")],
        ),
        (
            eq(|q| {
                q.namespace = Some("b".into());
                q.network = Some(NetworkKey::new(ClusterNetwork, "", "n1"));
            }),
            vec![key("b", "e6")],
        ),
        (
            eq(|q| {
                q.pod_uid = Some("u1".into());
                q.network = Some(NetworkKey::new(ClusterNetwork, "", "n1"));
            }),
            vec![key("a", "e2")],
        ),
        (
            eq(|q| {
                q.container_id = Some("c1".into());
                q.namespace = Some("b".into());
            }),
            vec![],
        ),
    ];
    for (query, expected) in &cases {
        check(store, &seeded, query, expected).await;
    }

    // Every combination of criteria, against `EndpointQuery::matches` over what was stored.
    let namespaces = [None, Some("a"), Some("b"), Some("ab"), Some("zz")];
    let pods = [None, Some("u1"), Some("u3"), Some("u6")];
    let containers = [None, Some("c1"), Some("c3"), Some("c2")];
    let networks = [
        None,
        Some(dn("a", "n1")),
        Some(dn("b", "n1")),
        Some(cn),
        Some(NetworkKey::new(TenantNetwork, "b", "n1")),
        Some(NetworkKey { kind: DanmNet, namespace: None, name: "n1".into() }),
        Some(dn("ab", "n2")),
    ];
    let hosts = [None, Some("node-2")];
    for (namespace, host) in namespaces.iter().flat_map(|n| hosts.iter().map(move |h| (n, h))) {
        for pod_uid in pods {
            for container_id in containers {
                for network in &networks {
                    let q = EndpointQuery {
                        namespace: namespace.map(str::to_owned),
                        pod_uid: pod_uid.map(str::to_owned),
                        container_id: container_id.map(str::to_owned),
                        network: network.clone(),
                        host: host.map(str::to_owned),
                    };
                    let expected: Vec<ObjectKey> = seeded
                        .iter()
                        .filter(|(_, v)| matches!(&v.value, Object::Endpoint(ep) if q.matches(ep)))
                        .map(|(k, _)| k.clone())
                        .collect();
                    check(store, &seeded, &Query::Endpoints(q), &expected).await;
                }
            }
        }
    }
    assert!(read(store, &key("a", "e1")).await.is_some(), "listing changed what is stored");
}

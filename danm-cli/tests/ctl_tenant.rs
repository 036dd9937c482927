//! danmctl apply and delete decide as the admission webhook does: defaults, TenantNetworks filled in from
//! the TenantConfig with a reserved VNI, released on delete.

use danm_cli::ctl::{self, Resource};
use danm_core::admission::VniAlloc;
use danm_core::model::{Network, NetworkKey, NetworkKind, TenantConfig};
use danm_core::store::{DatastoreExt, MemoryStore, ObjectKey};
use futures::executor::block_on;

const NETWORKS: &str = include_str!("../../danm-core/tests/fixtures/networks.yaml");
const TENANT: &str = include_str!("../../danm-core/tests/fixtures/tenant_objects.yaml");

fn apply(store: &MemoryStore, text: &str, dry_run: bool) -> Vec<String> {
    block_on(ctl::apply(store, text, "default", dry_run)).unwrap().iter().map(ToString::to_string).collect()
}

fn network(store: &MemoryStore, kind: NetworkKind, namespace: &str, name: &str) -> Network {
    let key = ObjectKey::Network(NetworkKey::new(kind, namespace, name));
    block_on(store.get_as::<Network>(&key)).unwrap().unwrap().value
}

fn reserved(store: &MemoryStore, vni: i64) -> bool {
    let tc = block_on(store.get_as::<TenantConfig>(&ObjectKey::TenantConfig("tenant-profiles".into())))
        .unwrap()
        .unwrap()
        .value;
    VniAlloc::decode(&tc.host_devices[0].alloc).unwrap().is_reserved(vni)
}

fn tenant_network(name: &str) -> String {
    format!(
        "apiVersion: danm.k8s.io/v1\nkind: TenantNetwork\nmetadata: {{name: {name}, namespace: green}}\n\
         spec: {{NetworkID: {name}, NetworkType: ipvlan, Options: {{cidr: 10.5.0.0/24}}}}\n"
    )
}

#[test]
fn tenant_networks_get_a_profile_and_a_vni_from_the_same_text() {
    let store = MemoryStore::new();
    // A dry run decides and writes nothing.
    assert!(apply(&store, TENANT, true).iter().all(|l| l.ends_with("created")));
    assert!(store.is_empty());
    // The TenantNetwork comes before its TenantConfig in the text; the TenantConfig is used all the same.
    apply(&store, TENANT, false);
    let oam = network(&store, NetworkKind::TenantNetwork, "green", "oam");
    assert_eq!(oam.spec.options.host_device, "ens10");
    assert_eq!(oam.spec.options.vxlan, Some(5000));
    assert!(reserved(&store, 5000));
    // Applying the same text again changes nothing: the filled-in fields and the bitmask are kept.
    assert!(apply(&store, TENANT, false).iter().all(|l| l.ends_with("unchanged")), "{:?}", apply(&store, TENANT, true));
    assert!(reserved(&store, 5000));
    // Two more in one text get different VNIs.
    apply(&store, &format!("{}---\n{}", tenant_network("a"), tenant_network("b")), false);
    let a = network(&store, NetworkKind::TenantNetwork, "green", "a").spec.options.vxlan;
    let b = network(&store, NetworkKind::TenantNetwork, "green", "b").spec.options.vxlan;
    assert_eq!((a, b), (Some(5001), Some(5002)));
    // Deleting one releases its VNI, which the next one gets.
    let out = block_on(ctl::delete(&store, Resource::Kind(NetworkKind::TenantNetwork), "oam", "green")).unwrap();
    assert!(!out.contains("warning"), "{out}");
    assert!(!reserved(&store, 5000));
    apply(&store, &tenant_network("c"), false);
    assert_eq!(network(&store, NetworkKind::TenantNetwork, "green", "c").spec.options.vxlan, Some(5000));
}

#[test]
fn networks_are_stored_with_their_defaults() {
    let store = MemoryStore::new();
    apply(&store, NETWORKS, false);
    let net = network(&store, NetworkKind::DanmNet, "blue", "signalling");
    assert!(!net.spec.network_type.is_empty());
    assert!(net.spec.options.cidr.is_empty() || !net.spec.options.allocation_pool.start.is_empty());
    assert!(apply(&store, NETWORKS, false).iter().all(|l| l.ends_with("unchanged")));
}

#[test]
fn a_tenant_network_without_a_tenant_config_is_refused() {
    let store = MemoryStore::new();
    let err = block_on(ctl::apply(&store, &tenant_network("a"), "default", false)).unwrap_err().to_string();
    assert!(err.contains("spec.Options.host_device") && err.contains("TenantConfig"), "{err}");
    assert!(store.is_empty());
}

use std::collections::{BTreeMap, BTreeSet};

use futures::executor::block_on;

use super::*;
use crate::model::{DanmEp, DanmEpSpec, IfaceProfile, NetworkKey, NetworkSpec, ObjectMeta};
use crate::store::MemoryStore;
use crate::validate::Violation;

fn tenant_net(name: &str, ty: &str) -> Network {
    let spec = NetworkSpec { network_id: "user".into(), network_type: ty.into(), ..NetworkSpec::default() };
    Network::new(NetworkKind::TenantNetwork, ObjectMeta::new(name, Some("t1")), spec)
}

fn profile(name: &str, vni_type: &str, range: &str) -> IfaceProfile {
    IfaceProfile { name: name.into(), vni_type: vni_type.into(), vni_range: range.into(), alloc: String::new() }
}

fn tenant_config(name: &str, profiles: Vec<IfaceProfile>) -> TenantConfig {
    let tc = TenantConfig {
        api_version: "danm.k8s.io/v1".into(),
        kind: "TenantConfig".into(),
        metadata: ObjectMeta::new(name, None),
        host_devices: profiles,
        network_ids: BTreeMap::from([("Flannel".to_owned(), "flannel-net".to_owned())]),
        allowed_cluster_networks: Vec::new(),
    };
    admit_tenant_config(tc, None).unwrap()
}

fn store_with(tc: TenantConfig) -> MemoryStore {
    let store = MemoryStore::new();
    block_on(store.create(&Object::TenantConfig(tc))).unwrap();
    store
}

fn stored_tc(store: &MemoryStore, name: &str) -> TenantConfig {
    block_on(store.get_as::<TenantConfig>(&ObjectKey::TenantConfig(name.into()))).unwrap().unwrap().value
}

fn create(store: &MemoryStore, net: Network) -> Result<Network> {
    block_on(Admission::new(store).create_network(net)).map(|a| a.object)
}

fn endpoint(net: &NetworkKey) -> DanmEp {
    DanmEp {
        api_version: "danm.k8s.io/v1".into(),
        kind: "DanmEp".into(),
        metadata: ObjectMeta::new("ep", net.namespace.as_deref().or(Some("t1"))),
        spec: DanmEpSpec {
            network_name: net.name.clone(),
            api_type: net.kind.to_string(),
            pod: "p".into(),
            ..DanmEpSpec::default()
        },
    }
}

#[test]
fn networks_get_defaults_and_are_validated() {
    let store = MemoryStore::new();
    let mut spec = NetworkSpec { network_id: "ext".into(), ..NetworkSpec::default() };
    spec.options.cidr = "10.1.0.0/24".into();
    let net = Network::new(NetworkKind::DanmNet, ObjectMeta::new("ext", Some("a")), spec);
    let admitted = create(&store, net.clone()).unwrap();
    assert_eq!(admitted.spec.network_type, "ipvlan");
    assert_eq!(admitted.spec.options.allocation_pool.start, "10.1.0.1");
    let mut bad = net;
    bad.spec.options.cidr = "10.1.0.0/33".into();
    let err = create(&store, bad).unwrap_err();
    assert_eq!(err.status_code(), 400);
    assert!(err.errors().unwrap().contains("spec.Options.cidr", Violation::InvalidIpv4Cidr), "{err}");
}

#[test]
fn profiles_are_chosen_by_device_pool_host_device_or_capacity() {
    let tc = tenant_config(
        "tc",
        vec![
            profile("vendor.io/pool", "vlan", "10-19"),
            profile("ens3", "vlan", "100-101"),
            profile("ens4", "vxlan", "500-599"),
        ],
    );
    // Neither given: the host interface with the most free IDs; never a device pool.
    let plan = plan_tenant_network(&tenant_net("a", "ipvlan"), Some(&tc)).unwrap();
    assert_eq!(plan.network.spec.options.host_device, "ens4");
    assert_eq!(plan.network.spec.options.vxlan, Some(500));
    assert_eq!(plan.reservation.as_ref().map(|r| (r.profile, r.vni)), Some((2, 500)));
    // host_device names the profile, and the lowest free VLAN of its range is taken.
    let mut net = tenant_net("b", "macvlan");
    net.spec.options.host_device = "ens3".into();
    let plan = plan_tenant_network(&net, Some(&tc)).unwrap();
    assert_eq!((plan.network.spec.options.host_device.as_str(), plan.network.spec.options.vlan), ("ens3", Some(100)));
    // device_pool names a pool profile; host_device stays empty.
    let mut net = tenant_net("c", "sriov");
    net.spec.options.device_pool = "vendor.io/pool".into();
    let plan = plan_tenant_network(&net, Some(&tc)).unwrap();
    assert!(plan.network.spec.options.host_device.is_empty());
    assert_eq!(plan.network.spec.options.vlan, Some(10));
    // A host_device that is not a profile, or names a pool, is not allowed.
    for dev in ["eth9", "vendor.io/pool"] {
        let mut net = tenant_net("d", "ipvlan");
        net.spec.options.host_device = dev.into();
        let errs = plan_tenant_network(&net, Some(&tc)).unwrap_err();
        assert!(errs.contains("spec.Options.host_device", Violation::ProfileNotAllowed), "{errs}");
    }
    // Only pools: nothing to pick from.
    let pools = tenant_config("p", vec![profile("vendor.io/pool", "", "")]);
    let errs = plan_tenant_network(&tenant_net("e", "ipvlan"), Some(&pools)).unwrap_err();
    assert!(errs.has(Violation::NoSuitableProfile));
    // Dynamic types need a TenantConfig; static delegates do not.
    assert!(plan_tenant_network(&tenant_net("f", ""), None).unwrap_err().has(Violation::NoTenantConfig));
    assert!(plan_tenant_network(&tenant_net("g", "flannel"), None).is_ok());
}

#[test]
fn a_profile_without_vni_type_is_unlimited_and_gets_no_vni() {
    let tc = tenant_config("tc", vec![profile("ens3", "vlan", "100-200"), profile("ens5", "", "")]);
    let plan = plan_tenant_network(&tenant_net("a", "ipvlan"), Some(&tc)).unwrap();
    assert_eq!(plan.network.spec.options.host_device, "ens5");
    assert_eq!((plan.network.spec.options.vlan, plan.reservation), (None, None));
}

#[test]
fn network_ids_override_by_type_without_regard_to_case() {
    let tc = tenant_config("tc", vec![profile("ens3", "", "")]);
    let plan = plan_tenant_network(&tenant_net("a", "flannel"), Some(&tc)).unwrap();
    assert_eq!(plan.network.spec.network_id, "flannel-net");
    assert!(plan.network.spec.options.host_device.is_empty(), "static delegates get no profile");
    let plan = plan_tenant_network(&tenant_net("b", "ipvlan"), Some(&tc)).unwrap();
    assert_eq!(plan.network.spec.network_id, "user");
}

#[test]
fn vnis_are_reserved_lowest_first_exhausted_and_released() {
    let store = store_with(tenant_config("tc", vec![profile("ens3", "vlan", "7,100-101")]));
    let mut got = Vec::new();
    for name in ["a", "b", "c"] {
        let net = create(&store, tenant_net(name, "ipvlan")).unwrap();
        got.push(net.spec.options.vlan.unwrap());
        block_on(store.create(&Object::Network(net))).unwrap();
    }
    assert_eq!(got, [7, 100, 101]);
    let err = create(&store, tenant_net("d", "ipvlan")).unwrap_err();
    assert_eq!(err.status_code(), 403);
    let errs = err.errors().unwrap();
    assert!(errs.contains("spec.Options.vlan", Violation::VniExhausted), "{errs}");
    assert!(errs.to_string().contains("7,100-101"), "{errs}");
    // Deleting b frees 100, which the next network gets.
    let b = block_on(store.get_as::<Network>(&ObjectKey::Network(tenant_net("b", "").key()))).unwrap().unwrap();
    let admitted = block_on(Admission::new(&store).delete_network(&b.value)).unwrap();
    assert!(admitted.warnings.is_empty(), "{:?}", admitted.warnings);
    let alloc = VniAlloc::decode(&stored_tc(&store, "tc").host_devices[0].alloc).unwrap();
    assert!(alloc.is_reserved(7) && !alloc.is_reserved(100) && alloc.is_reserved(101));
    block_on(store.delete(&ObjectKey::Network(b.value.key()), None)).unwrap();
    assert_eq!(create(&store, tenant_net("d", "ipvlan")).unwrap().spec.options.vlan, Some(100));
}

#[test]
fn an_id_a_network_still_holds_is_never_handed_out_whatever_the_bitmask_says() {
    let store = store_with(tenant_config("tc", vec![profile("ens3", "vlan", "100-103")]));
    let a = create(&store, tenant_net("a", "ipvlan")).unwrap();
    assert_eq!(a.spec.options.vlan, Some(100));
    block_on(store.create(&Object::Network(a.clone()))).unwrap();

    // A delete admitted twice (a network kept by a finalizer is deleted again) frees 100 twice, and the
    // network still exists: the next network must not get 100.
    for _ in 0..2 {
        block_on(Admission::new(&store).delete_network(&a)).unwrap();
    }
    let b = create(&store, tenant_net("b", "ipvlan")).unwrap();
    assert_eq!(b.spec.options.vlan, Some(101), "100 is a's until a is gone");
    block_on(store.create(&Object::Network(b))).unwrap();
    let alloc = VniAlloc::decode(&stored_tc(&store, "tc").host_devices[0].alloc).unwrap();
    assert!(alloc.is_reserved(100), "the reservation wrote the repaired bitmask back");

    // A DanmNet on the same interface with VLAN 102 takes 102 too (one VLAN ID per parent).
    let mut danmnet = Network::new(
        NetworkKind::DanmNet,
        ObjectMeta::new("static", Some("other")),
        NetworkSpec { network_id: "static".into(), network_type: "ipvlan".into(), ..NetworkSpec::default() },
    );
    danmnet.spec.options.host_device = "ens3".into();
    danmnet.spec.options.vlan = Some(102);
    block_on(store.create(&Object::Network(danmnet))).unwrap();
    assert_eq!(create(&store, tenant_net("c", "ipvlan")).unwrap().spec.options.vlan, Some(103));

    // The TenantConfig re-created with an empty bitmask: the IDs in use are still not handed out.
    block_on(store.delete(&ObjectKey::TenantConfig("tc".into()), None)).unwrap();
    block_on(store.create(&Object::TenantConfig(tenant_config("tc", vec![profile("ens3", "vlan", "100-103")]))))
        .unwrap();
    assert_eq!(create(&store, tenant_net("d", "ipvlan")).unwrap().spec.options.vlan, Some(103));
}

#[test]
fn a_generated_name_is_planned_without_looking_it_up() {
    let store = store_with(tenant_config("tc", vec![profile("ens3", "vlan", "100-101")]));
    let mut net = tenant_net("", "ipvlan");
    net.metadata.other.insert("generateName".into(), serde_json::json!("net-"));
    assert_eq!(create(&store, net).unwrap().spec.options.vlan, Some(100));
    let alloc = VniAlloc::decode(&stored_tc(&store, "tc").host_devices[0].alloc).unwrap();
    assert!(alloc.is_reserved(100), "reserved for the network the API server will name");
}

#[test]
fn dry_runs_and_existing_networks_reserve_nothing() {
    let store = store_with(tenant_config("tc", vec![profile("ens3", "vxlan", "1000-1001")]));
    let before = stored_tc(&store, "tc");
    let dry = block_on(Admission::new(&store).dry_run(true).create_network(tenant_net("a", ""))).unwrap();
    assert_eq!(dry.object.spec.options.vxlan, Some(1000));
    assert_eq!(stored_tc(&store, "tc"), before);
    let net = create(&store, tenant_net("a", "")).unwrap();
    block_on(store.create(&Object::Network(net))).unwrap();
    let after = stored_tc(&store, "tc");
    // Creating "a" again will fail in the store: it reserves nothing.
    assert_eq!(create(&store, tenant_net("a", "")).unwrap().spec.options.vxlan, Some(1001));
    assert_eq!(stored_tc(&store, "tc"), after);
    // A dry-run delete releases nothing.
    let a = block_on(store.get_as::<Network>(&ObjectKey::Network(tenant_net("a", "").key()))).unwrap().unwrap();
    block_on(Admission::new(&store).dry_run(true).delete_network(&a.value)).unwrap();
    assert_eq!(stored_tc(&store, "tc"), after);
}

#[test]
fn concurrent_reservations_never_share_a_vni() {
    let store = store_with(tenant_config("tc", vec![profile("ens3", "vlan", "1-4094")]));
    let got: Vec<i64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let store = &store;
                s.spawn(move || {
                    (0..6)
                        .map(|i| {
                            let net = create(store, tenant_net(&format!("n{t}-{i}"), "ipvlan")).unwrap();
                            net.spec.options.vlan.unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let distinct: BTreeSet<i64> = got.iter().copied().collect();
    assert_eq!(distinct.len(), got.len(), "{got:?}");
    assert_eq!(distinct, (1..=48).collect());
    let alloc = VniAlloc::decode(&stored_tc(&store, "tc").host_devices[0].alloc).unwrap();
    assert_eq!(alloc.free_count(&[1..=4094]), 4094 - 48);
}

#[test]
fn the_tenant_config_named_after_the_namespace_wins() {
    let configs = [tenant_config("b", vec![]), tenant_config("a", vec![]), tenant_config("t1", vec![])];
    assert_eq!(select_tenant_config("t1", &configs), Some(2));
    assert_eq!(select_tenant_config("zz", &configs), Some(1));
    assert_eq!(select_tenant_config("zz", &[] as &[TenantConfig]), None);
}

#[test]
fn tenant_network_updates_keep_their_physical_attributes() {
    let store = store_with(tenant_config("tc", vec![profile("ens3", "vlan", "100-200")]));
    let old = create(&store, tenant_net("a", "")).unwrap();
    assert_eq!(old.spec.options.vlan, Some(100));
    // What the user applied again, without the fields the TenantConfig filled in.
    let mut again = tenant_net("a", "");
    again.spec.options.mtu = Some(9000);
    let new = block_on(Admission::new(&store).update_network(&old, again)).unwrap().object;
    assert_eq!((new.spec.options.host_device.as_str(), new.spec.options.vlan), ("ens3", Some(100)));
    // Another VLAN is refused (T3–T6).
    let mut moved = tenant_net("a", "");
    moved.spec.options.vlan = Some(150);
    let err = block_on(Admission::new(&store).update_network(&old, moved)).unwrap_err();
    assert!(err.errors().unwrap().contains("spec.Options.vlan", Violation::TenantPhysicalChange), "{err}");
}

#[test]
fn networks_in_use_are_not_deleted_and_keep_their_mtu() {
    let store = MemoryStore::new();
    let mut spec = NetworkSpec { network_id: "n".into(), ..NetworkSpec::default() };
    spec.options.host_device = "ens3".into();
    spec.options.mtu = Some(9000);
    let net = Network::new(NetworkKind::DanmNet, ObjectMeta::new("n", Some("a")), spec);
    block_on(Admission::new(&store).delete_network(&net)).unwrap();
    block_on(store.create(&Object::Endpoint(endpoint(&net.key())))).unwrap();
    let err = block_on(Admission::new(&store).delete_network(&net)).unwrap_err();
    assert_eq!(err.status_code(), 403);
    assert!(err.errors().unwrap().has(Violation::DeleteWhileInUse));
    let mut lower = net.clone();
    lower.spec.options.mtu = Some(1400);
    let err = block_on(Admission::new(&store).update_network(&net, lower)).unwrap_err();
    assert!(err.errors().unwrap().contains("spec.Options.mtu", Violation::MtuLoweredWhileInUse));
}

#[test]
fn tenant_configs_get_their_bitmasks_and_keep_them() {
    let tc = tenant_config("tc", vec![profile("ens3", "vlan", "5-9"), profile("ens4", "", "")]);
    assert!(!tc.host_devices[0].alloc.is_empty());
    assert!(tc.host_devices[1].alloc.is_empty());
    let mut reserved = tc.clone();
    let mut alloc = VniAlloc::decode(&reserved.host_devices[0].alloc).unwrap();
    alloc.reserve(5).unwrap();
    reserved.host_devices[0].alloc = alloc.encode();
    // Replaced with what was applied: the stored bitmask stays.
    let mut replaced = reserved.clone();
    replaced.host_devices[0].alloc.clear();
    let admitted = admit_tenant_config(replaced, Some(&reserved)).unwrap();
    assert_eq!(admitted.host_devices[0].alloc, reserved.host_devices[0].alloc);
    // alloc on create and a broken bitmask on update are refused.
    let errs = admit_tenant_config(reserved.clone(), None).unwrap_err();
    assert!(errs.contains("hostDevices[0].alloc", Violation::ProfileAllocOnCreate), "{errs}");
    let mut broken = reserved.clone();
    broken.host_devices[0].alloc = "%%%".into();
    let errs = admit_tenant_config(broken, Some(&reserved)).unwrap_err();
    assert!(errs.contains("hostDevices[0].alloc", Violation::InvalidVniAlloc), "{errs}");
}

#[test]
fn pods_are_checked_against_their_annotation_and_networks() {
    let store = MemoryStore::new();
    let mut spec = NetworkSpec { network_id: "c".into(), ..NetworkSpec::default() };
    spec.options.cidr = "10.0.0.0/24".into();
    spec.allowed_tenants = vec!["blue".into()];
    let cn = Network::new(NetworkKind::ClusterNetwork, ObjectMeta::new("c", None), spec);
    block_on(store.create(&Object::Network(cn))).unwrap();
    let pod = |value: &str| BTreeMap::from([(INTERFACES_ANNOTATION.to_owned(), value.to_owned())]);
    let admission = Admission::new(&store);
    assert!(block_on(admission.create_pod("blue", &BTreeMap::new())).is_ok());
    let ok = block_on(admission.create_pod("blue", &pod(r#"[{"clusterNetwork":"c","ip":"10.0.0.5"}]"#))).unwrap();
    assert!(ok.warnings.is_empty());
    let missing = block_on(admission.create_pod("blue", &pod(r#"[{"network":"x"}]"#))).unwrap();
    assert_eq!(missing.warnings.len(), 1);
    let err = block_on(admission.create_pod("red", &pod(r#"[{"clusterNetwork":"c","ip":"10.0.1.5"}]"#))).unwrap_err();
    let errs = err.errors().unwrap();
    assert!(errs.contains("danm.k8s.io/interfaces[0].clusterNetwork", Violation::NetworkAccessDenied), "{errs}");
    assert!(errs.contains("danm.k8s.io/interfaces[0].ip", Violation::StaticAddressOutsideSubnet), "{errs}");
    let err = block_on(admission.create_pod("blue", &pod(r#"[{"network":"a","bogus":1}]"#))).unwrap_err();
    assert_eq!(err.status_code(), 400);
    assert!(err.errors().unwrap().contains("danm.k8s.io/interfaces[0]", Violation::InvalidPodAnnotation), "{err}");
}

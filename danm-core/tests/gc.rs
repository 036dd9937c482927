//! The cleaner: records of pods that are gone or replaced are swept, their addresses freed; young records
//! and live pods are left alone.

use std::time::Duration;

use danm_core::admission::{
    ReclaimedId, UNHELD_IDS_ANNOTATION, VniAlloc, VniReservation, apply_reservation, reclaim_unheld_ids, release_vni,
};
use danm_core::gc::{reclaim_ids, sweep};
use danm_core::ipam::{AllocatorId, Family, IpRequest, Ipam, OwnerId, PoolKey};
use danm_core::meta::{CREATED_ANNOTATION, PHASE_ANNOTATION};
use danm_core::model::{
    DanmEp, DanmEpSpec, IfaceProfile, Network, NetworkKind, NetworkOptions, NetworkSpec, ObjectMeta, PodRecord,
    TenantConfig,
};
use danm_core::store::{Datastore, DatastoreExt, EndpointQuery, MemoryStore, Object, ObjectKey, Query};
use danm_core::validate::VniType;
use futures::executor::block_on;

fn network() -> Network {
    let options = NetworkOptions { cidr: "10.5.0.0/24".into(), ..NetworkOptions::default() };
    let spec = NetworkSpec { network_id: "n".into(), options, ..NetworkSpec::default() };
    Network::new(NetworkKind::DanmNet, ObjectMeta::new("n", Some("ns")), spec)
}

fn pod(name: &str, uid: &str) -> Object {
    let mut metadata = ObjectMeta::new(name, Some("ns"));
    metadata.uid = Some(uid.into());
    Object::Pod(PodRecord { metadata, ..PodRecord::default() })
}

/// A DanmEp of `pod` (with `uid`) holding an address from the pool, `age` seconds old.
fn endpoint(store: &MemoryStore, pod: &str, uid: &str, age: u64, pending: bool) -> String {
    let cid = format!("cid-{pod}");
    let net = network();
    let ipam = Ipam::new(store, AllocatorId::new("n"));
    let a = block_on(ipam.assign(&net, Family::V4, IpRequest::Dynamic, OwnerId::for_attachment(&cid, "eth0"))).unwrap();
    let mut metadata = ObjectMeta::new(format!("ep-{pod}"), Some("ns"));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    metadata.annotations.insert(CREATED_ANNOTATION.into(), (now - age).to_string());
    if pending {
        metadata.annotations.insert(PHASE_ANNOTATION.into(), "pending".into());
    }
    let mut spec = DanmEpSpec {
        network_name: "n".into(),
        api_type: "DanmNet".into(),
        pod: pod.into(),
        pod_uid: uid.into(),
        cid,
        ..DanmEpSpec::default()
    };
    spec.interface.name = "eth0".into();
    if !pending {
        spec.interface.address = a.to_record();
    }
    let ep = DanmEp { api_version: "danm.k8s.io/v1".into(), kind: "DanmEp".into(), metadata, spec };
    block_on(store.create(&Object::Endpoint(ep))).unwrap();
    a.to_record()
}

fn held(store: &MemoryStore) -> usize {
    let blocks = block_on(store.list(&Query::Blocks(PoolKey::new(network().key(), Family::V4)))).unwrap();
    blocks.iter().map(|b| if let Object::Block { block, .. } = &b.value { block.len() } else { 0 }).sum()
}

#[test]
fn gone_and_replaced_pods_are_swept_young_and_live_ones_kept() {
    let store = MemoryStore::new();
    block_on(store.create(&Object::Network(network()))).unwrap();
    block_on(store.create(&pod("alive", "u-alive"))).unwrap();
    block_on(store.create(&pod("replaced", "u-new"))).unwrap();
    endpoint(&store, "alive", "u-alive", 3600, false);
    endpoint(&store, "gone", "u-gone", 3600, false);
    endpoint(&store, "replaced", "u-old", 3600, false);
    endpoint(&store, "interrupted", "u-int", 3600, true);
    endpoint(&store, "young", "u-young", 5, false);
    assert_eq!(held(&store), 5);

    let report = block_on(sweep(&store, Duration::from_secs(60), true)).unwrap();
    assert_eq!(report.len(), 3, "{report:?}");
    assert_eq!(held(&store), 5, "a dry run changes nothing");

    let report = block_on(sweep(&store, Duration::from_secs(60), false)).unwrap();
    let mut swept: Vec<&str> = report.iter().map(|s| s.attachment.split(' ').next().unwrap()).collect();
    swept.sort();
    assert_eq!(swept, ["ns/gone", "ns/interrupted", "ns/replaced"]);
    assert!(report.iter().any(|s| s.reason.contains("UID u-new")), "{report:?}");
    assert_eq!(held(&store), 2, "the addresses of the swept records are free");
    let left: Vec<String> = block_on(store.list_as::<DanmEp>(&Query::Endpoints(EndpointQuery::default())))
        .unwrap()
        .into_iter()
        .map(|v| v.value.spec.pod)
        .collect();
    assert_eq!(left, ["alive", "young"]);
    assert!(
        block_on(sweep(&store, Duration::from_secs(60), false)).unwrap().is_empty(),
        "a second pass has nothing left"
    );
}

/// TenantConfig `tc` with a VLAN profile on `ens1f0`, IDs 100–110, where `reserved` are marked.
fn tenant_config(reserved: &[i64]) -> TenantConfig {
    let mut alloc = VniAlloc::for_ranges(&[100..=110]).unwrap();
    for id in reserved {
        alloc.reserve(*id).unwrap();
    }
    TenantConfig {
        api_version: "danm.k8s.io/v1".into(),
        kind: "TenantConfig".into(),
        metadata: ObjectMeta::new("tc", None),
        host_devices: vec![IfaceProfile {
            name: "ens1f0".into(),
            vni_type: "vlan".into(),
            vni_range: "100-110".into(),
            alloc: alloc.encode(),
        }],
        network_ids: Default::default(),
        allowed_cluster_networks: Vec::new(),
    }
}

/// A TenantNetwork holding VLAN `vlan` on `ens1f0`.
fn tenant_network(name: &str, vlan: i64) -> Network {
    let options = NetworkOptions { host_device: "ens1f0".into(), vlan: Some(vlan), ..NetworkOptions::default() };
    let spec =
        NetworkSpec { network_id: name.into(), network_type: "ipvlan".into(), options, ..NetworkSpec::default() };
    Network::new(NetworkKind::TenantNetwork, ObjectMeta::new(name, Some("ns")), spec)
}

fn reserved(tc: &TenantConfig) -> Vec<i64> {
    VniAlloc::decode(&tc.host_devices[0].alloc).unwrap().reserved().collect()
}

#[test]
fn reservations_no_network_holds_are_released_a_grace_period_after_they_are_first_seen() {
    let held = tenant_network("held", 100);
    let mut tc = tenant_config(&[100, 101, 104]);
    // First sight: recorded, nothing released.
    assert_eq!(reclaim_unheld_ids(&mut tc, [&held], 1_000, 120), []);
    assert_eq!(tc.metadata.annotations[UNHELD_IDS_ANNOTATION], r#"{"ens1f0/vlan":{"101":1000,"104":1000}}"#);
    assert_eq!(reserved(&tc), [0, 100, 101, 104]);
    // Within the grace period: the first sighting is kept.
    assert_eq!(reclaim_unheld_ids(&mut tc, [&held], 1_119, 120), []);
    assert_eq!(tc.metadata.annotations[UNHELD_IDS_ANNOTATION], r#"{"ens1f0/vlan":{"101":1000,"104":1000}}"#);
    // 104's network shows up late (it was being created); 101 has been unheld for the whole grace period.
    let late = tenant_network("late", 104);
    let released = reclaim_unheld_ids(&mut tc, [&held, &late], 1_120, 120);
    assert_eq!(
        released,
        [ReclaimedId { profile: "ens1f0".into(), vni_type: VniType::Vlan, id: 101, unheld_since: 1_000 }]
    );
    assert_eq!(reserved(&tc), [0, 100, 104]);
    assert!(!tc.metadata.annotations.contains_key(UNHELD_IDS_ANNOTATION), "nothing left unheld");
    // A network holding an ID the bitmask lost is marked, never released.
    let unmarked = tenant_network("unmarked", 107);
    assert_eq!(reclaim_unheld_ids(&mut tc, [&held, &late, &unmarked], 2_000, 0), []);
    assert_eq!(reserved(&tc), [0, 100, 104, 107]);
}

#[test]
fn an_id_is_never_released_on_the_pass_that_first_sees_it_and_ids_outside_the_range_are_left_alone() {
    let mut tc = tenant_config(&[105, 200]);
    assert_eq!(reclaim_unheld_ids(&mut tc, [], 5_000, 0), [], "a reservation may be seconds old");
    assert_eq!(tc.metadata.annotations[UNHELD_IDS_ANNOTATION], r#"{"ens1f0/vlan":{"105":5000}}"#);
    let released = reclaim_unheld_ids(&mut tc, [], 5_000, 0);
    assert_eq!(released.iter().map(|r| r.id).collect::<Vec<_>>(), [105]);
    assert_eq!(reserved(&tc), [0, 200], "200 is outside vniRange: never handed out, never touched");
    // An unreadable record is started afresh, not trusted.
    let mut tc = tenant_config(&[106]);
    tc.metadata.annotations.insert(UNHELD_IDS_ANNOTATION.into(), "{not json".into());
    assert_eq!(reclaim_unheld_ids(&mut tc, [], 9_000, 0), []);
    assert_eq!(tc.metadata.annotations[UNHELD_IDS_ANNOTATION], r#"{"ens1f0/vlan":{"106":9000}}"#);
}

#[test]
fn an_id_reserved_afresh_is_not_judged_by_the_sighting_of_its_previous_reservation() {
    let mut tc = tenant_config(&[101]);
    // 101 is seen unheld: its network is being created.
    assert_eq!(reclaim_unheld_ids(&mut tc, [], 1_000, 120), []);
    // The network is created, then deleted before the next pass: its ID is released.
    release_vni(&mut tc, &tenant_network("first", 101)).unwrap();
    assert!(!tc.metadata.annotations.contains_key(UNHELD_IDS_ANNOTATION), "a released ID is no longer recorded");
    // A new network is admitted and gets 101 again; the pass comes before it is created.
    let reservation = VniReservation {
        tenant_config: "tc".into(),
        profile: 0,
        profile_name: "ens1f0".into(),
        vni_type: VniType::Vlan,
        vni: 101,
    };
    apply_reservation(&mut tc, &reservation).unwrap();
    assert_eq!(reclaim_unheld_ids(&mut tc, [], 1_200, 120), [], "seen for the first time at 1200");
    assert_eq!(reserved(&tc), [0, 101]);
    assert_eq!(tc.metadata.annotations[UNHELD_IDS_ANNOTATION], r#"{"ens1f0/vlan":{"101":1200}}"#);
}

#[test]
fn a_pass_over_the_store_records_then_releases_and_a_dry_run_writes_nothing() {
    let store = MemoryStore::new();
    block_on(store.create(&Object::TenantConfig(tenant_config(&[100, 101])))).unwrap();
    block_on(store.create(&Object::Network(tenant_network("held", 100)))).unwrap();
    let stored = || block_on(store.get_as::<TenantConfig>(&ObjectKey::TenantConfig("tc".into()))).unwrap().unwrap();

    assert_eq!(block_on(reclaim_ids(&store, Duration::ZERO, true)).unwrap(), [], "nothing recorded yet");
    assert!(!stored().value.metadata.annotations.contains_key(UNHELD_IDS_ANNOTATION), "a dry run writes nothing");
    assert_eq!(block_on(reclaim_ids(&store, Duration::ZERO, false)).unwrap(), []);
    let recorded = stored();
    assert!(recorded.value.metadata.annotations.contains_key(UNHELD_IDS_ANNOTATION));

    let would = block_on(reclaim_ids(&store, Duration::ZERO, true)).unwrap();
    assert_eq!(would.iter().map(|r| (r.tenant_config.as_str(), r.id.id)).collect::<Vec<_>>(), [("tc", 101)]);
    assert_eq!(stored().version, recorded.version, "a dry run writes nothing");
    let done = block_on(reclaim_ids(&store, Duration::ZERO, false)).unwrap();
    assert_eq!(done.iter().map(|r| r.id.id).collect::<Vec<_>>(), [101]);
    assert_eq!(reserved(&stored().value), [0, 100]);
    // Nothing more to do, and nothing written for it.
    let version = stored().version;
    assert_eq!(block_on(reclaim_ids(&store, Duration::ZERO, false)).unwrap(), []);
    assert_eq!(stored().version, version);
}

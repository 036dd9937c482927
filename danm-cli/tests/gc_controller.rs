//! `danmctl gc --every`: the cleaner as a long-running controller sweeps again and again, leaving
//! records younger than the grace period alone.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use danm_cli::store::SqliteStore;
use danm_core::admission::VniAlloc;
use danm_core::ipam::{AllocatorId, Family, IpRequest, Ipam, OwnerId};
use danm_core::meta::CREATED_ANNOTATION;
use danm_core::model::{
    DanmEp, DanmEpSpec, IfaceProfile, Network, NetworkKind, NetworkOptions, NetworkSpec, ObjectMeta, TenantConfig,
};
use danm_core::store::{Datastore, DatastoreExt, EndpointQuery, Object, ObjectKey, Query};
use futures::executor::block_on;

fn network() -> Network {
    let options = NetworkOptions { cidr: "10.7.0.0/24".into(), ..NetworkOptions::default() };
    let spec = NetworkSpec { network_id: "n".into(), options, ..NetworkSpec::default() };
    Network::new(NetworkKind::DanmNet, ObjectMeta::new("n", Some("ns")), spec)
}

/// A DanmEp of a pod that does not exist, holding an address, created `age` seconds ago.
fn orphan(store: &SqliteStore, pod: &str, age: u64) {
    let cid = format!("cid-{pod}");
    let ipam = Ipam::new(store, AllocatorId::new("node-1"));
    let owner = OwnerId::for_attachment(&cid, "eth0");
    let a = block_on(ipam.assign(&network(), Family::V4, IpRequest::Dynamic, owner)).unwrap();
    let mut metadata = ObjectMeta::new(format!("ep-{pod}"), Some("ns"));
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    metadata.annotations.insert(CREATED_ANNOTATION.into(), (now - age).to_string());
    let mut spec = DanmEpSpec {
        network_name: "n".into(),
        api_type: "DanmNet".into(),
        pod: pod.into(),
        pod_uid: format!("uid-{pod}"),
        cid,
        ..DanmEpSpec::default()
    };
    spec.interface.name = "eth0".into();
    spec.interface.address = a.to_record();
    let ep = DanmEp { api_version: "danm.k8s.io/v1".into(), kind: "DanmEp".into(), metadata, spec };
    block_on(store.create(&Object::Endpoint(ep))).unwrap();
}

fn pods_with_records(store: &SqliteStore) -> Vec<String> {
    let query = Query::Endpoints(EndpointQuery { namespace: Some("ns".into()), ..EndpointQuery::default() });
    block_on(store.list_as::<DanmEp>(&query)).unwrap().into_iter().map(|e| e.value.spec.pod).collect()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(30), "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_cleaner_sweeps_on_every_pass_and_spares_young_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("danm.db");
    let store = SqliteStore::open(&path).unwrap();
    block_on(store.create(&Object::Network(network()))).unwrap();
    orphan(&store, "gone", 3600);
    orphan(&store, "starting", 0);

    let cleaner = Killed(
        Command::new(env!("CARGO_BIN_EXE_danmctl"))
            .args(["--datastore", &format!("local:{}", path.display()), "gc", "--grace", "600", "--every", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("the old orphan is swept", || pods_with_records(&store) == ["starting"]);

    // A later pass finds what became stale after the first one.
    orphan(&store, "gone-later", 3600);
    wait_until("the second orphan is swept", || pods_with_records(&store) == ["starting"]);
    drop(cleaner);

    let ipam_blocks = block_on(store.list(&Query::Blocks(danm_core::ipam::PoolKey::new(network().key(), Family::V4))));
    let held: usize = ipam_blocks
        .unwrap()
        .iter()
        .map(|b| if let Object::Block { block, .. } = &b.value { block.len() } else { 0 })
        .sum();
    assert_eq!(held, 1, "only the young record's address is still held");
}

#[test]
fn a_zero_interval_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_danmctl"))
        .args(["--datastore", "local:/nonexistent/danm.db", "gc", "--every", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--every"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_vlan_reserved_for_a_network_never_created_is_released_by_a_later_pass() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("danm.db");
    let store = SqliteStore::open(&path).unwrap();
    // VLANs 100 (its network exists) and 101 (reserved for a create that failed) are marked.
    let mut alloc = VniAlloc::for_ranges(&[100..=110]).unwrap();
    alloc.reserve(100).unwrap();
    alloc.reserve(101).unwrap();
    // As a TenantConfig carried over from upstream DANM, with its bitmask, is stored.
    let tc = TenantConfig {
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
    };
    block_on(store.create(&Object::TenantConfig(tc))).unwrap();
    let objects = "apiVersion: danm.k8s.io/v1\nkind: DanmNet\nmetadata: {name: held, namespace: ns}\n\
         spec: {NetworkID: held, NetworkType: ipvlan, Options: {host_device: ens1f0, vlan: 100}}\n";
    block_on(danm_cli::ctl::apply(&store, objects, "ns", false)).unwrap();
    let gc = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_danmctl"))
            .args(["--datastore", &format!("local:{}", path.display()), "gc", "--grace", "0"])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let reserved = || {
        let tc = block_on(store.get_as::<TenantConfig>(&ObjectKey::TenantConfig("tc".into()))).unwrap().unwrap();
        VniAlloc::decode(&tc.value.host_devices[0].alloc).unwrap().reserved().collect::<Vec<_>>()
    };

    // The first pass only notes that nothing holds 101: a reservation may be seconds old.
    let first = gc(&[]);
    assert!(!first.contains("release"), "{first}");
    assert_eq!(reserved(), [0, 100, 101]);
    let dry = gc(&["--dry-run"]);
    assert!(dry.contains("would release vlan 101 of profile ens1f0 in TenantConfig tc"), "{dry}");
    assert_eq!(reserved(), [0, 100, 101]);
    let second = gc(&[]);
    assert!(second.contains("released vlan 101 of profile ens1f0 in TenantConfig tc"), "{second}");
    assert!(second.contains("1 reserved ID(s) released"), "{second}");
    assert_eq!(reserved(), [0, 100]);
}

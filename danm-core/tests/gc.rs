//! The cleaner: records of pods that are gone or replaced are swept, their addresses freed; young records
//! and live pods are left alone.

use std::time::Duration;

use danm_core::gc::sweep;
use danm_core::ipam::{AllocatorId, Family, IpRequest, Ipam, OwnerId, PoolKey};
use danm_core::meta::{CREATED_ANNOTATION, PHASE_ANNOTATION};
use danm_core::model::{DanmEp, DanmEpSpec, Network, NetworkKind, NetworkOptions, NetworkSpec, ObjectMeta, PodRecord};
use danm_core::store::{Datastore, DatastoreExt, EndpointQuery, MemoryStore, Object, Query};
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

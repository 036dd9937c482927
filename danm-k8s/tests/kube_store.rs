//! The Kubernetes Datastore against the in-process fake API server: the Datastore conformance suite every
//! backend passes, and 16 allocators racing on one network through it.

use std::collections::BTreeSet;
use std::sync::Arc;

use danm_core::ipam::{AllocatorId, Family, IpRequest, Ipam, OwnerId};
use danm_core::model::{Network, NetworkKind, NetworkOptions, NetworkSpec, ObjectMeta};
use danm_core::retry::{BoxFuture, Sleeper};
use danm_core::store::{Metered, conformance};
use danm_k8s::KubeStore;
use danm_k8s::testing::FakeApiServer;

#[derive(Debug)]
struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, d: std::time::Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(d))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubernetes_store_conforms() {
    conformance::run_all(|| KubeStore::new(FakeApiServer::with_danm_kinds().client()).allowing_pod_writes()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_allocators_share_one_network_without_duplicates() {
    const ALLOCATORS: usize = 16;
    const EACH: usize = 40;
    let server = FakeApiServer::with_danm_kinds();
    let store = Arc::new(Metered::new(KubeStore::new(server.client())));
    let options = NetworkOptions { cidr: "10.30.0.0/16".into(), ..NetworkOptions::default() };
    let spec = NetworkSpec { network_id: "shared".into(), options, ..NetworkSpec::default() };
    let net = Arc::new(Network::new(NetworkKind::ClusterNetwork, ObjectMeta::new("shared", None), spec));
    let tasks: Vec<_> = (0..ALLOCATORS)
        .map(|node| {
            let (store, net) = (store.clone(), net.clone());
            tokio::spawn(async move {
                let ipam =
                    Ipam::new(store, AllocatorId::new(format!("node-{node}"))).with_sleeper(Arc::new(TokioSleeper));
                let mut got = Vec::new();
                for i in 0..EACH {
                    let owner = OwnerId((node * 1000 + i) as u64);
                    let a = ipam.assign(&net, Family::V4, IpRequest::Dynamic, owner).await.expect("allocation failed");
                    got.push(a.address().unwrap().addr());
                }
                (got, ipam.stats())
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut conflicts = 0;
    for t in tasks {
        let (got, stats) = t.await.unwrap();
        conflicts += stats.conflicts;
        all.extend(got);
    }
    let distinct: BTreeSet<_> = all.iter().collect();
    assert_eq!(distinct.len(), ALLOCATORS * EACH, "an address was handed out twice");
    let s = store.stats();
    let n = (ALLOCATORS * EACH) as f64;
    println!(
        "{} allocations by {ALLOCATORS} allocators through the Kubernetes store: {conflicts} lost races retried; \
         per allocation {:.2} round trips, {:.2} writes, {:.0} bytes written",
        ALLOCATORS * EACH,
        s.round_trips() as f64 / n,
        s.writes as f64 / n,
        s.bytes_written as f64 / n
    );
    assert!(s.writes as f64 / n < 2.0, "writes per allocation stay bounded: {s:?}");
    // The state is in DanmIpamBlock objects: the network object was never written.
    assert!(server.objects_json("danm.k8s.io/v1", "ClusterNetwork").is_empty());
    let blocks = server.objects_json("danm.k8s.io/v1", "DanmIpamBlock");
    assert!(!blocks.is_empty());
}

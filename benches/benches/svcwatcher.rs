//! svcwatcher's cost per event as the cluster grows: danm-core's `ServiceIndex` (apply the change, then
//! recompute only the Services it touches) side by side with the upstream approach, which finds the
//! Services of the event's namespace and recomputes each from the full list of DanmEps. Figures are
//! quoted in docs/performance.md.
//!
//! The cluster: namespaces of 100 pods, each pod with one DanmEp on its namespace's `internal` network,
//! half labelled `app=lb` and half `app=proc`, and two Services per namespace (one per label). 1k, 10k
//! and 100k DanmEps are 10, 100 and 1,000 namespaces. One event: a DanmEp of namespace 0 changes its
//! address (what a pod restart does), alternating between two addresses.

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use danm_core::discovery::{Publication, ServiceIndex, ServiceKey, service_endpoints};
use danm_core::model::{DanmEp, DanmEpSpec, ObjectMeta, PodRecord};
use danm_core::service::ServiceRecord;

const PODS_PER_NAMESPACE: usize = 100;

fn ns(i: usize) -> String {
    format!("ns-{i}")
}

fn app(pod: usize) -> &'static str {
    if pod.is_multiple_of(2) { "lb" } else { "proc" }
}

fn endpoint(namespace: usize, pod: usize, last_octet: usize) -> DanmEp {
    let mut metadata = ObjectMeta::new(format!("p{pod}-eth1"), Some(&ns(namespace)));
    metadata.labels.insert("app".into(), app(pod).into());
    let mut spec = DanmEpSpec {
        network_name: "internal".into(),
        api_type: "DanmNet".into(),
        pod: format!("p{pod}"),
        pod_uid: format!("uid-{namespace}-{pod}"),
        host: "node-1".into(),
        ..DanmEpSpec::default()
    };
    spec.interface.name = "eth1".into();
    spec.interface.address = format!("10.{}.{}.{}/16", namespace % 250, pod / 250, last_octet % 250);
    spec.interface.address_ipv6 = "none".into();
    DanmEp { api_version: "danm.k8s.io/v1".into(), kind: "DanmEp".into(), metadata, spec }
}

fn pod(namespace: usize, pod: usize) -> PodRecord {
    let mut metadata = ObjectMeta::new(format!("p{pod}"), Some(&ns(namespace)));
    metadata.uid = Some(format!("uid-{namespace}-{pod}"));
    metadata.labels.insert("app".into(), app(pod).into());
    PodRecord { metadata, node_name: Some("node-1".into()), hostname: None, ready: true, container_ports: Vec::new() }
}

fn service(namespace: usize, app: &str) -> ServiceRecord {
    let mut metadata = ObjectMeta::new(format!("svc-{app}"), Some(&ns(namespace)));
    metadata.annotations.insert("danm.k8s.io/selector".into(), format!(r#"{{"app":"{app}"}}"#));
    metadata.annotations.insert("danm.k8s.io/network".into(), "internal".into());
    ServiceRecord { metadata, cluster_ip: Some("None".into()), ..ServiceRecord::default() }
}

/// The whole cluster as plain collections, as the upstream approach keeps it (informer caches).
struct Cluster {
    services: Vec<ServiceRecord>,
    endpoints: Vec<DanmEp>,
    pods: HashMap<(String, String), PodRecord>,
}

fn cluster(endpoints: usize) -> Cluster {
    let namespaces = endpoints / PODS_PER_NAMESPACE;
    let mut c = Cluster { services: Vec::new(), endpoints: Vec::with_capacity(endpoints), pods: HashMap::new() };
    for n in 0..namespaces {
        c.services.push(service(n, "lb"));
        c.services.push(service(n, "proc"));
        for p in 0..PODS_PER_NAMESPACE {
            c.endpoints.push(endpoint(n, p, p));
            c.pods.insert((ns(n), format!("p{p}")), pod(n, p));
        }
    }
    c
}

fn index(c: &Cluster) -> ServiceIndex {
    let mut index = ServiceIndex::new();
    for s in &c.services {
        index.apply_service(s.clone());
    }
    for p in c.pods.values() {
        index.apply_pod(p.clone());
    }
    for ep in &c.endpoints {
        index.apply_endpoint(ep.clone());
    }
    index
}

/// One event through the index: apply, then recompute the touched Services.
fn indexed_event(index: &mut ServiceIndex, ep: DanmEp) -> usize {
    let mut published = 0;
    for key in index.apply_endpoint(ep) {
        if let Publication::Endpoints(e) = index.publication(&key) {
            published += e.ready.len() + e.not_ready.len();
        }
    }
    published
}

/// One event the upstream way: the DanmEp list is updated in place; every Service of the event's
/// namespace that selects the DanmEp is recomputed from the full list.
fn full_event(c: &mut Cluster, position: usize, ep: DanmEp) -> usize {
    let namespace = ep.metadata.namespace.clone().unwrap_or_default();
    c.endpoints[position] = ep;
    let Cluster { services, endpoints, pods } = c;
    let lookup = |ns: &str, name: &str| pods.get(&(ns.to_owned(), name.to_owned()));
    let mut published = 0;
    for s in services.iter().filter(|s| s.metadata.namespace.as_deref() == Some(namespace.as_str())) {
        if let Ok(Some(e)) = service_endpoints(s, endpoints, lookup) {
            published += e.ready.len() + e.not_ready.len();
        }
    }
    published
}

fn per_event(c: &mut Criterion) {
    let mut group = c.benchmark_group("svcwatcher/event");
    group.sample_size(20);
    for size in [1_000, 10_000, 100_000] {
        let mut world = cluster(size);
        let mut ix = index(&world);
        // Namespace 0, pod 0 (app=lb): the same event for both, alternating its address.
        let mut flip = 0usize;
        group.bench_with_input(BenchmarkId::new("index", size), &size, |b, _| {
            b.iter(|| {
                flip += 1;
                black_box(indexed_event(&mut ix, endpoint(0, 0, 200 + flip % 2)))
            })
        });
        let key = ServiceKey::new(ns(0), "svc-lb");
        assert!(matches!(ix.publication(&key), Publication::Endpoints(e) if e.ready.len() == PODS_PER_NAMESPACE / 2));
        group.bench_with_input(BenchmarkId::new("full-recompute", size), &size, |b, _| {
            b.iter(|| {
                flip += 1;
                black_box(full_event(&mut world, 0, endpoint(0, 0, 200 + flip % 2)))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, per_event);
criterion_main!(benches);

//! The Service index against the full recomputation: after every change of a random sequence, each
//! Service's publication equals what `service_endpoints` computes from every object, and every Service
//! whose publication changed was among those the change touched. Services' ports include named
//! `targetPort`s, which pods' container ports resolve.

use std::collections::BTreeMap;

use danm_core::discovery::{Publication, ServiceIndex, ServiceKey, service_endpoints};
use danm_core::model::{ContainerPort, DanmEp, DanmEpSpec, ObjectMeta, PodRecord};
use danm_core::service::{ServicePort, ServiceRecord, TargetPort};
use proptest::prelude::*;

const NAMESPACES: [&str; 2] = ["vnf", "other"];
const NETWORKS: [(&str, &str); 3] = [("DanmNet", "internal"), ("DanmNet", "external"), ("ClusterNetwork", "mgmt")];
const APPS: [&str; 3] = ["lb", "proc", "client"];

#[derive(Debug, Clone)]
enum Change {
    Service { ns: usize, name: usize, app: usize, nets: Vec<usize>, tolerate: bool, has_selector: bool, ports: u8 },
    DeleteService { ns: usize, name: usize },
    Endpoint { ns: usize, pod: usize, net: usize, v4: u8, v6: Option<u8>, app: usize },
    DeleteEndpoint { ns: usize, pod: usize, net: usize },
    Pod { ns: usize, pod: usize, app: usize, ready: bool, uid: u8, node: u8, http: Option<u8>, dns_udp: bool },
    DeletePod { ns: usize, pod: usize },
}

fn change() -> impl Strategy<Value = Change> {
    let ns = 0..NAMESPACES.len();
    prop_oneof![
        (
            ns.clone(),
            0..3usize,
            0..APPS.len(),
            prop::collection::vec(0..NETWORKS.len(), 0..3),
            any::<bool>(),
            prop::bool::weighted(0.1),
            0..4u8
        )
            .prop_map(|(ns, name, app, nets, tolerate, has_selector, ports)| Change::Service {
                ns,
                name,
                app,
                nets,
                tolerate,
                has_selector,
                ports
            }),
        (ns.clone(), 0..3usize).prop_map(|(ns, name)| Change::DeleteService { ns, name }),
        (ns.clone(), 0..6usize, 0..NETWORKS.len(), any::<u8>(), any::<Option<u8>>(), 0..APPS.len())
            .prop_map(|(ns, pod, net, v4, v6, app)| Change::Endpoint { ns, pod, net, v4, v6, app }),
        (ns.clone(), 0..6usize, 0..NETWORKS.len()).prop_map(|(ns, pod, net)| Change::DeleteEndpoint { ns, pod, net }),
        (ns.clone(), 0..6usize, 0..APPS.len(), any::<bool>(), 0..2u8, 0..2u8, prop::option::of(0..2u8), any::<bool>())
            .prop_map(|(ns, pod, app, ready, uid, node, http, dns_udp)| Change::Pod {
                ns,
                pod,
                app,
                ready,
                uid,
                node,
                http,
                dns_udp
            }),
        (ns, 0..6usize).prop_map(|(ns, pod)| Change::DeletePod { ns, pod }),
    ]
}

/// Every object, kept plainly, for the full recomputation.
#[derive(Default)]
struct World {
    services: BTreeMap<(String, String), ServiceRecord>,
    endpoints: BTreeMap<(String, String), DanmEp>,
    pods: BTreeMap<(String, String), PodRecord>,
}

impl World {
    fn full(&self, key: &ServiceKey) -> Publication {
        let Some(service) = self.services.get(&(key.namespace.clone(), key.name.clone())) else {
            return Publication::Gone;
        };
        let eps: Vec<DanmEp> = self.endpoints.values().cloned().collect();
        let pod = |ns: &str, name: &str| self.pods.get(&(ns.to_owned(), name.to_owned()));
        match service_endpoints(service, &eps, pod) {
            Ok(Some(published)) => Publication::Endpoints(published),
            Ok(None) => Publication::NotDanm,
            Err(e) => Publication::Invalid(e),
        }
    }

    fn keys(&self) -> Vec<ServiceKey> {
        self.services.keys().map(|(ns, n)| ServiceKey::new(ns.clone(), n.clone())).collect()
    }
}

/// A Service's ports: none; one without `targetPort`; one with a numeric `targetPort`; or a named
/// `http` over TCP with a named `dns` over UDP.
fn service_ports(kind: u8) -> Vec<ServicePort> {
    let port = |name: &str, port: i32, protocol: &str, target: Option<TargetPort>| ServicePort {
        name: name.into(),
        port,
        protocol: protocol.into(),
        target_port: target,
    };
    match kind {
        0 => Vec::new(),
        1 => vec![port("web", 80, "TCP", None)],
        2 => vec![port("web", 80, "TCP", Some(TargetPort::Number(8000)))],
        _ => vec![
            port("web", 80, "TCP", Some(TargetPort::Name("http".into()))),
            port("dns", 53, "UDP", Some(TargetPort::Name("dns".into()))),
        ],
    }
}

fn apply(index: &mut ServiceIndex, world: &mut World, change: &Change) -> std::collections::BTreeSet<ServiceKey> {
    match change.clone() {
        Change::Service { ns, name, app, nets, tolerate, has_selector, ports } => {
            let mut metadata = ObjectMeta::new(format!("svc-{name}"), Some(NAMESPACES[ns]));
            metadata.annotations.insert("danm.k8s.io/selector".into(), format!(r#"{{"app":"{}"}}"#, APPS[app]));
            for n in nets {
                let (kind, net) = NETWORKS[n];
                let key = if kind == "DanmNet" { "danm.k8s.io/network" } else { "danm.k8s.io/clusterNetwork" };
                metadata.annotations.insert(key.into(), net.into());
            }
            if tolerate {
                metadata
                    .annotations
                    .insert("service.alpha.kubernetes.io/tolerate-unready-endpoints".into(), "true".into());
            }
            let selector = has_selector.then(|| BTreeMap::from([("app".to_owned(), "x".to_owned())]));
            let record = ServiceRecord {
                metadata,
                cluster_ip: Some("None".into()),
                selector,
                ports: service_ports(ports),
                ..ServiceRecord::default()
            };
            world.services.insert((NAMESPACES[ns].into(), record.metadata.name.clone()), record.clone());
            index.apply_service(record)
        }
        Change::DeleteService { ns, name } => {
            world.services.remove(&(NAMESPACES[ns].into(), format!("svc-{name}")));
            index.delete_service(NAMESPACES[ns], &format!("svc-{name}"))
        }
        Change::Endpoint { ns, pod, net, v4, v6, app } => {
            let (kind, network) = NETWORKS[net];
            let mut metadata = ObjectMeta::new(format!("p{pod}-{network}"), Some(NAMESPACES[ns]));
            metadata.labels.insert("app".into(), APPS[app].into());
            let mut spec = DanmEpSpec {
                network_name: network.into(),
                api_type: kind.into(),
                pod: format!("p{pod}"),
                pod_uid: format!("uid-p{pod}-0"),
                host: "node-a".into(),
                ..DanmEpSpec::default()
            };
            spec.interface.name = format!("eth{net}");
            spec.interface.address = format!("10.{net}.0.{v4}/24");
            spec.interface.address_ipv6 = v6.map_or_else(|| "none".into(), |v| format!("fd00::{v:x}/64"));
            let ep = DanmEp { api_version: "danm.k8s.io/v1".into(), kind: "DanmEp".into(), metadata, spec };
            world.endpoints.insert((NAMESPACES[ns].into(), ep.metadata.name.clone()), ep.clone());
            index.apply_endpoint(ep)
        }
        Change::DeleteEndpoint { ns, pod, net } => {
            let name = format!("p{pod}-{}", NETWORKS[net].1);
            world.endpoints.remove(&(NAMESPACES[ns].into(), name.clone()));
            index.delete_endpoint(NAMESPACES[ns], &name)
        }
        Change::Pod { ns, pod, app, ready, uid, node, http, dns_udp } => {
            let mut metadata = ObjectMeta::new(format!("p{pod}"), Some(NAMESPACES[ns]));
            metadata.uid = Some(format!("uid-p{pod}-{uid}"));
            metadata.labels.insert("app".into(), APPS[app].into());
            let mut container_ports: Vec<ContainerPort> =
                http.map(|n| ContainerPort::new("http", 8080 + i32::from(n), "TCP")).into_iter().collect();
            container_ports.push(ContainerPort::new("dns", 53, if dns_udp { "UDP" } else { "TCP" }));
            let record =
                PodRecord { metadata, node_name: Some(format!("node-{node}")), hostname: None, ready, container_ports };
            world.pods.insert((NAMESPACES[ns].into(), record.metadata.name.clone()), record.clone());
            index.apply_pod(record)
        }
        Change::DeletePod { ns, pod } => {
            world.pods.remove(&(NAMESPACES[ns].into(), format!("p{pod}")));
            index.delete_pod(NAMESPACES[ns], &format!("p{pod}"))
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn index_matches_full_recomputation_and_reports_every_touched_service(
        changes in prop::collection::vec(change(), 1..80)
    ) {
        let mut index = ServiceIndex::new();
        let mut world = World::default();
        let mut published: BTreeMap<ServiceKey, Publication> = BTreeMap::new();
        for change in &changes {
            let touched = apply(&mut index, &mut world, change);
            let mut keys = world.keys();
            keys.extend(published.keys().cloned());
            keys.sort();
            keys.dedup();
            for key in keys {
                let full = world.full(&key);
                prop_assert_eq!(&index.publication(&key), &full, "{} after {:?}", key, change);
                let before = published.get(&key).cloned().unwrap_or(Publication::Gone);
                if before != full {
                    prop_assert!(touched.contains(&key), "{} changed but was not touched by {:?}", key, change);
                }
                if full == Publication::Gone {
                    published.remove(&key);
                } else {
                    published.insert(key, full);
                }
            }
        }
    }
}

#[test]
fn a_pod_label_change_moves_its_interfaces_between_services() {
    let mut index = ServiceIndex::new();
    let mut world = World::default();
    for change in [
        Change::Service { ns: 0, name: 0, app: 0, nets: vec![0], tolerate: false, has_selector: false, ports: 0 },
        Change::Service { ns: 0, name: 1, app: 1, nets: vec![0], tolerate: false, has_selector: false, ports: 0 },
        Change::Pod { ns: 0, pod: 0, app: 0, ready: true, uid: 0, node: 0, http: None, dns_udp: false },
        Change::Endpoint { ns: 0, pod: 0, net: 0, v4: 5, v6: None, app: 0 },
    ] {
        apply(&mut index, &mut world, &change);
    }
    let ready = |index: &ServiceIndex, name: &str| match index.publication(&ServiceKey::new("vnf", name)) {
        Publication::Endpoints(e) => e.ready.iter().map(|a| a.ip.to_string()).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(ready(&index, "svc-0"), ["10.0.0.5"]);
    assert!(ready(&index, "svc-1").is_empty());
    let relabelled = Change::Pod { ns: 0, pod: 0, app: 1, ready: true, uid: 0, node: 0, http: None, dns_udp: false };
    let touched = apply(&mut index, &mut world, &relabelled);
    assert_eq!(touched, [ServiceKey::new("vnf", "svc-0"), ServiceKey::new("vnf", "svc-1")].into());
    assert!(ready(&index, "svc-0").is_empty());
    assert_eq!(ready(&index, "svc-1"), ["10.0.0.5"]);
    // The same pod again (a status heartbeat): nothing touched.
    let again = apply(&mut index, &mut world, &relabelled);
    assert!(again.is_empty());
}

#[test]
fn a_pod_whose_container_ports_change_touches_its_services() {
    let mut index = ServiceIndex::new();
    let mut world = World::default();
    let pod = |http| Change::Pod { ns: 0, pod: 0, app: 0, ready: true, uid: 0, node: 0, http, dns_udp: true };
    for change in [
        Change::Service { ns: 0, name: 0, app: 0, nets: vec![0], tolerate: false, has_selector: false, ports: 3 },
        pod(Some(0)),
        Change::Endpoint { ns: 0, pod: 0, net: 0, v4: 5, v6: None, app: 0 },
    ] {
        apply(&mut index, &mut world, &change);
    }
    let key = ServiceKey::new("vnf", "svc-0");
    let ports = |index: &ServiceIndex| match index.publication(&key) {
        Publication::Endpoints(e) => e.ready[0].ports.iter().map(|p| (p.name.clone(), p.port)).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(ports(&index), [("web".to_owned(), 8080), ("dns".to_owned(), 53)]);
    // The pod now listens elsewhere: only its ports changed, and its Service is touched.
    assert_eq!(apply(&mut index, &mut world, &pod(Some(1))), [key.clone()].into());
    assert_eq!(ports(&index), [("web".to_owned(), 8081), ("dns".to_owned(), 53)]);
    // It no longer names `http`: left out of that port, still published on the other.
    assert_eq!(apply(&mut index, &mut world, &pod(None)), [key.clone()].into());
    assert_eq!(ports(&index), [("dns".to_owned(), 53)]);
    assert_eq!(index.publication(&key), world.full(&key));
}

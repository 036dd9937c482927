//! danmctl's verbs on the in-memory store.

use danm_cli::ctl::{self, CtlError, Format, Resource};
use danm_core::ipam::{AllocatorId, Family, IpRequest, Ipam, OwnerId};
use danm_core::model::{DanmEp, DanmEpSpec, Network, NetworkKey, NetworkKind, ObjectMeta};
use danm_core::store::{Datastore, DatastoreExt, MemoryStore, Object, ObjectKey};
use futures::executor::block_on;

const NETWORKS: &str = include_str!("../../danm-core/tests/fixtures/networks.yaml");
const TENANT: &str = include_str!("../../danm-core/tests/fixtures/tenant_objects.yaml");
const PODS: &str = include_str!("../../danm-core/tests/fixtures/pods.yaml");

fn apply(store: &MemoryStore, text: &str) -> Result<Vec<String>, CtlError> {
    block_on(ctl::apply(store, text, "default", false)).map(|v| v.iter().map(ToString::to_string).collect())
}

#[test]
fn apply_is_idempotent_and_reports_what_changed() {
    let store = MemoryStore::new();
    let first = apply(&store, NETWORKS).unwrap();
    assert!(first.iter().all(|l| l.ends_with("created")), "{first:?}");
    assert!(first.contains(&"DanmNet blue/signalling created".to_owned()), "{first:?}");
    let again = apply(&store, NETWORKS).unwrap();
    assert!(again.iter().all(|l| l.ends_with("unchanged")), "{again:?}");
    let changed = NETWORKS.replacen("host_device: ens6", "host_device: ens9", 1);
    let third = apply(&store, &changed).unwrap();
    assert_eq!(third.iter().filter(|l| l.ends_with("configured")).count(), 1, "{third:?}");
    apply(&store, TENANT).unwrap();
    apply(&store, PODS).unwrap();
}

#[test]
fn a_rejected_document_changes_nothing() {
    let store = MemoryStore::new();
    let text = "apiVersion: danm.k8s.io/v1\nkind: DanmNet\nmetadata: {name: ok, namespace: a}\nspec: {NetworkID: ok}\n---\n\
                apiVersion: danm.k8s.io/v1\nkind: DanmNet\nmetadata: {name: bad, namespace: a}\n\
                spec: {NetworkID: bad, Options: {cidr: 10.0.0.0/33}}\n";
    let err = apply(&store, text).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("document 1") && msg.contains("spec.Options.cidr"), "{msg}");
    assert!(store.is_empty(), "the valid first document must not have been written");
    let path = "apiVersion: danm.k8s.io/v1\nkind: DanmNet\nmetadata: {name: p, namespace: a}\n\
                spec: {NetworkID: p, NetworkType: ../../bin/sh}\n";
    assert!(apply(&store, path).unwrap_err().to_string().contains("spec.NetworkType"));
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n  namespace: a\n  annotations:\n    danm.k8s.io/interfaces: '[{\"network\":\"a\",\"net\":\"b\"}]'\n";
    assert!(apply(&store, pod).unwrap_err().to_string().contains("net"));
    assert!(store.is_empty());
}

#[test]
fn get_lists_as_a_table_or_a_kubernetes_list() {
    let store = MemoryStore::new();
    apply(&store, NETWORKS).unwrap();
    apply(&store, TENANT).unwrap();
    let t = block_on(ctl::get(&store, Resource::Networks, Some("blue"), Format::Table)).unwrap();
    assert!(t.starts_with("KIND"), "{t}");
    assert!(t.contains("signalling") && t.contains("ClusterNetwork"), "{t}");
    let j = block_on(ctl::get(&store, Resource::Kind(NetworkKind::DanmNet), Some("blue"), Format::Json)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    assert_eq!(v["kind"], "List");
    assert_eq!(v["items"].as_array().unwrap().len(), 5);
    assert!(v["items"][0]["spec"]["NetworkID"].as_str().is_some());
    let y = block_on(ctl::get(&store, Resource::TenantConfigs, None, Format::Yaml)).unwrap();
    assert!(y.contains("hostDevices"), "{y}");
    assert!("bogus".parse::<Resource>().is_err());
}

#[test]
fn pods_and_services_listed_as_json_or_yaml_apply_back_unchanged() {
    let store = MemoryStore::new();
    apply(&store, PODS).unwrap();
    let service = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: vnf\n  annotations:\n    \
                   danm.k8s.io/selector: '{\"app\":\"web\"}'\n    danm.k8s.io/network: ext\n\
                   spec:\n  clusterIP: None\n  ports: [{name: http, port: 80, targetPort: http}]\n";
    apply(&store, service).unwrap();
    for format in [Format::Yaml, Format::Json] {
        for resource in [Resource::Pods, Resource::Services] {
            let listed = block_on(ctl::get(&store, resource, None, format)).unwrap();
            let copy = MemoryStore::new();
            let applied = apply(&copy, &listed).unwrap();
            assert!(!applied.is_empty() && applied.iter().all(|l| l.ends_with("created")), "{applied:?}");
            assert!(apply(&store, &listed).unwrap().iter().all(|l| l.ends_with("unchanged")), "{listed}");
            assert_eq!(block_on(ctl::get(&copy, resource, None, format)).unwrap(), listed);
        }
    }
}

#[test]
fn describe_shows_pool_use_and_delete_refuses_a_network_in_use() {
    let store = MemoryStore::new();
    apply(&store, NETWORKS).unwrap();
    let key = NetworkKey::new(NetworkKind::DanmNet, "blue", "signalling");
    let net = block_on(store.get_as::<Network>(&ObjectKey::Network(key.clone()))).unwrap().unwrap().value;
    let ipam = Ipam::new(&store, AllocatorId::new("n"));
    let a =
        block_on(ipam.assign(&net, Family::V4, IpRequest::Dynamic, OwnerId::for_attachment("cid-p", "eth0"))).unwrap();
    // An address no record accounts for, as a crashed ADD leaves it.
    let leaked = block_on(ipam.assign(&net, Family::V4, IpRequest::Dynamic, OwnerId(7))).unwrap();
    let mut ep = DanmEp {
        api_version: "danm.k8s.io/v1".into(),
        kind: "DanmEp".into(),
        metadata: ObjectMeta::new("ep1", Some("blue")),
        spec: DanmEpSpec {
            network_name: "signalling".into(),
            api_type: "DanmNet".into(),
            pod: "p".into(),
            cid: "cid-p".into(),
            ..DanmEpSpec::default()
        },
    };
    ep.spec.interface.name = "eth0".into();
    ep.spec.interface.address = a.to_record();
    block_on(store.create(&Object::Endpoint(ep.clone()))).unwrap();

    let d = block_on(ctl::describe_network(&store, "signalling", "blue", false)).unwrap();
    assert!(d.contains("Pools:") && d.contains("IPv4"), "{d}");
    assert!(d.contains("Endpoints (1)") && d.contains(&a.to_record()), "{d}");
    assert!(!d.contains("Addresses"), "{d}");
    // Every address with its holder, as upstream's showalloc lists them.
    let d = block_on(ctl::describe_network(&store, "signalling", "blue", true)).unwrap();
    let section = d.split("Addresses (2):\n").nth(1).unwrap_or_else(|| panic!("{d}"));
    let lines: Vec<Vec<&str>> = section.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0], ["ADDRESS", "RANGE", "POD", "INTERFACE", "CONTAINER"]);
    assert_eq!(lines[1], [a.to_record().as_str(), "dynamic", "blue/p", "eth0", "cid-p"], "{section}");
    assert_eq!(
        lines[2],
        [leaked.to_record().as_str(), "dynamic", "-", "-", "no", "DanmEp", "(holder", "0000000000000007)"],
        "{section}"
    );

    let err = block_on(ctl::delete(&store, Resource::Networks, "signalling", "blue")).unwrap_err();
    assert!(matches!(err, CtlError::InUse(_)), "{err}");
    block_on(store.delete(&Object::Endpoint(ep).key(), None)).unwrap();
    let done = block_on(ctl::delete(&store, Resource::Networks, "signalling", "blue")).unwrap();
    assert!(done.contains("1 leftover allocation block"), "{done}");
    let gone = block_on(ctl::delete(&store, Resource::Networks, "signalling", "blue")).unwrap_err();
    assert!(matches!(gone, CtlError::NotFound(_)));
    assert!(block_on(ctl::delete(&store, Resource::Endpoints, "x", "blue")).is_err());
}

/// `get endpoints` on the local store resolves a Service's named `targetPort` per pod record, from the
/// container ports of the applied Pod.
#[test]
fn get_endpoints_resolves_a_named_target_port_per_pod() {
    let store = MemoryStore::new();
    let text = r#"
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: vnf
  annotations: {danm.k8s.io/selector: '{"app":"web"}', danm.k8s.io/network: internal}
spec:
  clusterIP: None
  ports: [{name: web, port: 80, targetPort: http}, {name: admin, port: 9000, targetPort: 9100}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: vnf, labels: {app: web}}
spec:
  containers: [{name: c, image: i, ports: [{name: http, containerPort: 8080}]}]
status: {conditions: [{type: Ready, status: 'True'}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: vnf, labels: {app: web}}
spec:
  containers: [{name: c, image: i, ports: [{name: http, containerPort: 8081}]}]
status: {conditions: [{type: Ready, status: 'True'}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, namespace: vnf, labels: {app: web}}
spec:
  containers: [{name: c, image: i}]
status: {conditions: [{type: Ready, status: 'True'}]}
"#;
    apply(&store, text).unwrap();
    for (pod, address) in [("web-0", "10.0.0.10/24"), ("web-1", "10.0.0.11/24"), ("web-2", "10.0.0.12/24")] {
        let mut metadata = ObjectMeta::new(format!("{pod}-eth1"), Some("vnf"));
        metadata.labels.insert("app".into(), "web".into());
        let mut ep = DanmEp {
            api_version: "danm.k8s.io/v1".into(),
            kind: "DanmEp".into(),
            metadata,
            spec: DanmEpSpec {
                network_name: "internal".into(),
                api_type: "DanmNet".into(),
                pod: pod.into(),
                ..DanmEpSpec::default()
            },
        };
        ep.spec.interface.name = "eth1".into();
        ep.spec.interface.address = address.into();
        block_on(store.create(&Object::Endpoint(ep))).unwrap();
    }
    let json = block_on(ctl::service_endpoints(&store, Some("vnf"), Some("web"), Format::Json)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let ready = v["items"][0]["ready"].as_array().unwrap_or_else(|| panic!("{json}"));
    let ports: Vec<(String, Vec<String>)> = ready
        .iter()
        .map(|a| {
            let ports = a["ports"].as_array().unwrap().iter().map(|p| format!("{}/{}", p["name"], p["port"]));
            (a["pod"].as_str().unwrap().to_owned(), ports.map(|p| p.replace('"', "")).collect())
        })
        .collect();
    let pair = |pod: &str, ports: &[&str]| (pod.to_owned(), ports.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>());
    assert_eq!(
        ports,
        [
            pair("web-0", &["web/8080", "admin/9100"]),
            pair("web-1", &["web/8081", "admin/9100"]),
            pair("web-2", &["admin/9100"]),
        ],
        "{json}"
    );
}

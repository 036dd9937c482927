//! The manifest fixtures: each decodes, round-trips through JSON, and keeps upstream's field names; the
//! pods' annotations and the Services' selections read as intended.

use std::collections::BTreeMap;
use std::net::IpAddr;

use danm_core::ipam::IpRequest;
use danm_core::manifest::{Manifest, decode_manifests};
use danm_core::model::{Network, NetworkKey, NetworkKind, PodRecord};
use danm_core::pod::{
    NamingScheme, check_unique_names, connections_or_default, interface_name, interfaces_from_annotations,
    interfaces_to_annotation, parse_interfaces,
};
use danm_core::service::{ServiceRecord, TargetPort};
use serde_json::Value;

/// Every fixture file and the number of objects it holds.
const FIXTURES: [(&str, usize); 6] = [
    ("networks.yaml", 5),
    ("tenant_objects.yaml", 3),
    ("danmep.yaml", 1),
    ("pods.yaml", 3),
    ("services.yaml", 3),
    ("list.json", 2),
];

fn load(name: &str) -> Vec<Manifest> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    decode_manifests(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn to_json(m: &Manifest) -> Value {
    serde_json::to_value(m).unwrap()
}

fn networks() -> Vec<Network> {
    let mut all = load("networks.yaml");
    all.extend(load("tenant_objects.yaml"));
    all.into_iter()
        .filter_map(|m| match m {
            Manifest::Network(n) => Some(n),
            _ => None,
        })
        .collect()
}

fn pods() -> Vec<PodRecord> {
    load("pods.yaml")
        .into_iter()
        .map(|m| match m {
            Manifest::Pod(p) => p,
            other => panic!("not a pod: {other:?}"),
        })
        .collect()
}

fn services() -> Vec<ServiceRecord> {
    load("services.yaml")
        .into_iter()
        .map(|m| match m {
            Manifest::Service(s) => s,
            other => panic!("not a service: {other:?}"),
        })
        .collect()
}

#[test]
fn every_fixture_round_trips_through_json() {
    for (name, count) in FIXTURES {
        let manifests = load(name);
        assert_eq!(manifests.len(), count, "{name}");
        let whole = serde_json::to_string(&manifests).unwrap();
        assert_eq!(decode_manifests(&whole).unwrap(), manifests, "{name} as one list");
        for (i, m) in manifests.iter().enumerate() {
            let one = serde_json::to_string(m).unwrap();
            assert_eq!(decode_manifests(&one).unwrap(), vec![m.clone()], "{name} object {i}");
            let yaml = serde_yaml::to_string(m).unwrap();
            assert_eq!(decode_manifests(&yaml).unwrap(), vec![m.clone()], "{name} object {i} as YAML");
        }
    }
}

#[test]
fn networks_keep_upstream_field_names() {
    let all = load("networks.yaml");
    let kinds: Vec<&str> = all.iter().map(Manifest::kind).collect();
    assert_eq!(kinds, ["DanmNet"; 5]);
    let vlan = to_json(&all[0]);
    assert_eq!(vlan.pointer("/spec/NetworkID"), Some(&Value::from("sig")));
    assert_eq!(vlan.pointer("/spec/NetworkType"), Some(&Value::from("ipvlan")));
    assert_eq!(vlan.pointer("/spec/Options/vlan"), Some(&Value::from(310)));
    assert_eq!(vlan.pointer("/spec/Options/allocation_pool/start"), Some(&Value::from("172.31.10.20")));
    assert_eq!(vlan.pointer("/spec/Options/routes/192.0.2.0~124"), Some(&Value::from("172.31.10.2")));
    assert_eq!(to_json(&all[1]).pointer("/spec/Options/vxlan"), Some(&Value::from(4242)));
    let dual = to_json(&all[2]);
    assert_eq!(dual.pointer("/spec/Options/allocation_pool_v6/cidr"), Some(&Value::from("fd5e:88:4::/112")));
    assert_eq!(dual.pointer("/spec/Options/net6"), Some(&Value::from("fd5e:88:4::/64")));
    assert_eq!(dual.pointer("/spec/Options/routes6/fd5e:99::~148"), Some(&Value::from("fd5e:88:4::1")));
    assert_eq!(dual.pointer("/metadata/labels/plane"), Some(&Value::from("user")));
    let sriov = to_json(&all[3]);
    assert_eq!(sriov.pointer("/spec/Options/device_pool"), Some(&Value::from("example.com/sriov_ens2f0")));
    assert_eq!(sriov.pointer("/spec/Options/rt_tables"), Some(&Value::from(50)));
    let flannel = to_json(&all[4]);
    assert_eq!(flannel.pointer("/spec/Options/cidr"), None);
    assert_eq!(flannel.pointer("/apiVersion"), Some(&Value::from("danm.k8s.io/v1")));
}

#[test]
fn tenant_objects_keep_upstream_field_names() {
    let all = load("tenant_objects.yaml");
    let tnet = to_json(&all[0]);
    assert_eq!(tnet.pointer("/apiVersion"), Some(&Value::from("danm.io/v1")));
    assert_eq!(tnet.pointer("/kind"), Some(&Value::from("TenantNetwork")));
    let cnet = to_json(&all[1]);
    assert_eq!(cnet.pointer("/spec/AllowedTenants/1"), Some(&Value::from("green")));
    assert_eq!(cnet.pointer("/metadata/namespace"), None);
    let tconf = to_json(&all[2]);
    assert_eq!(tconf.pointer("/hostDevices/0/vniRange"), Some(&Value::from("5000-5999,6100")));
    assert_eq!(tconf.pointer("/hostDevices/0/vniType"), Some(&Value::from("vxlan")));
    assert_eq!(tconf.pointer("/hostDevices/1/name"), Some(&Value::from("example.com/sriov_ens3f1")));
    assert_eq!(tconf.pointer("/hostDevices/1/vniType"), None);
    assert_eq!(tconf.pointer("/networkIds/calico"), Some(&Value::from("calico-main")));
    let Manifest::TenantConfig(tc) = &all[2] else { panic!("not a TenantConfig") };
    assert!(tc.host_devices[1].is_device_pool() && !tc.host_devices[0].is_device_pool());
}

#[test]
fn danmep_keeps_upstream_field_names() {
    let all = load("danmep.yaml");
    let ep = to_json(&all[0]);
    for (pointer, value) in [
        ("/spec/Interface/AddressIPv6", "fd5e:88:4::12/64"),
        ("/spec/Interface/Address", "10.88.4.12/24"),
        ("/spec/Interface/MacAddress", "02:42:0a:58:04:0c"),
        ("/spec/Interface/proutes/10.99.0.0~116", "10.88.4.1"),
        ("/spec/EndpointID", "3f0c6a55-6f34-4d6e-9d0e-2c1b7a9e4410"),
        ("/spec/apiType", "DanmNet"),
        ("/spec/PodUID", "0d5ba2c4-91a7-4f0e-a9ab-1f1b1d3c7a21"),
        ("/spec/CID", "6c1f0e7bb0a94c5f8b3f3a4d0c2e9b11"),
        ("/spec/netns", "/var/run/netns/cni-1f2e3d4c"),
    ] {
        assert_eq!(ep.pointer(pointer), Some(&Value::from(value)), "{pointer}");
    }
}

#[test]
fn pods_read_identity_placement_and_readiness() {
    let pods = pods();
    let gw = &pods[0];
    assert_eq!(gw.metadata.namespace.as_deref(), Some("blue"));
    assert_eq!(gw.metadata.uid.as_deref(), Some("0d5ba2c4-91a7-4f0e-a9ab-1f1b1d3c7a21"));
    assert_eq!(
        (gw.node_name.as_deref(), gw.hostname.as_deref(), gw.ready),
        (Some("worker-3"), Some("gateway-0"), true)
    );
    assert_eq!(gw.metadata.labels.get("tier").map(String::as_str), Some("edge"));
    assert!(!pods[1].ready && pods[1].hostname.is_none());
    assert!(!pods[2].ready);
    let json = to_json(&Manifest::Pod(gw.clone()));
    assert_eq!(json.pointer("/spec/nodeName"), Some(&Value::from("worker-3")));
    assert_eq!(json.pointer("/status/conditions/0/status"), Some(&Value::from("True")));
    assert_eq!(json.pointer("/spec/containers"), None);
}

#[test]
fn pod_annotations_parse_and_round_trip() {
    let pods = pods();
    let gw = interfaces_from_annotations(&pods[0].metadata.annotations).unwrap().unwrap();
    assert_eq!(gw.len(), 4);
    assert_eq!((gw[0].network.kind, gw[0].network.name.as_str(), gw[0].ip), (NetworkKind::DanmNet, "default", None));
    assert_eq!((gw[1].ip, gw[1].ip6), (Some(IpRequest::Dynamic), Some(IpRequest::Dynamic)));
    let gateway: IpAddr = "10.88.4.1".parse().unwrap();
    assert_eq!(gw[1].proutes.get(&"10.99.0.0/16".parse().unwrap()), Some(&gateway));
    assert_eq!(gw[1].proutes6.len(), 1);
    assert_eq!(gw[2].ip, Some(IpRequest::Static("172.31.10.5".parse().unwrap())));
    assert_eq!(gw[3].ip, Some(IpRequest::None));

    let collector = interfaces_from_annotations(&pods[1].metadata.annotations).unwrap().unwrap();
    let refs: Vec<String> = collector.iter().map(|i| i.network.to_string()).collect();
    assert_eq!(refs, ["TenantNetwork/oam", "ClusterNetwork/provider"]);
    assert_eq!(interfaces_from_annotations(&pods[2].metadata.annotations), Ok(None));

    for list in [gw, collector] {
        let text = interfaces_to_annotation(&list);
        assert_eq!(parse_interfaces("danm.k8s.io/interfaces", &text).unwrap(), list, "{text}");
    }
}

#[test]
fn pods_resolve_networks_and_interface_names() {
    let networks = networks();
    let by_key: BTreeMap<NetworkKey, &Network> = networks.iter().map(|n| (n.key(), n)).collect();
    for pod in pods() {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let requested = interfaces_from_annotations(&pod.metadata.annotations).unwrap();
        let conns = connections_or_default(requested, &ns, |k| by_key.contains_key(k)).unwrap();
        let names: Vec<String> = conns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let net =
                    by_key.get(&c.network.key(&ns)).unwrap_or_else(|| panic!("{}: {}", pod.metadata.name, c.network));
                interface_name(i, &net.spec.options.container_prefix, NamingScheme::Default)
            })
            .collect();
        check_unique_names(&names).unwrap();
        let expected: &[&str] = match pod.metadata.name.as_str() {
            "gateway-7d9f-abcde" => &["eth0", "med1", "sig2", "fh3"],
            "collector-0" => &["eth0", "prv1"],
            _ => &["eth0"],
        };
        assert_eq!(names, expected, "{}", pod.metadata.name);
    }
}

#[test]
fn services_select_danm_interfaces() {
    let svcs = services();
    let sels: Vec<_> = svcs.iter().map(|s| s.danm_selection().unwrap().unwrap()).collect();
    assert_eq!(sels[0].networks[0].to_string(), "DanmNet/signalling");
    assert!(!sels[0].tolerate_unready && sels[1].tolerate_unready);
    assert!(sels[2].selects_network(NetworkKind::ClusterNetwork, "provider"));
    let gw_labels = &pods()[0].metadata.labels;
    let matched: Vec<bool> = sels.iter().map(|s| s.matches(gw_labels)).collect();
    assert_eq!(matched, [false, true, true]);
    for svc in &svcs {
        assert!(svc.is_headless() && !svc.has_selector(), "{}", svc.metadata.name);
    }
    assert_eq!(svcs[0].ports[0].protocol, "UDP");
    assert_eq!(svcs[1].ports[0].target_port, Some(TargetPort::Number(10000)));
    assert_eq!(svcs[2].ports[0].target_port, Some(TargetPort::Name("diameter".into())));
    let json = to_json(&Manifest::Service(svcs[2].clone()));
    assert_eq!(json.pointer("/spec/ports/0/targetPort"), Some(&Value::from("diameter")));
    assert_eq!(json.pointer("/metadata/annotations/danm.k8s.io~1selector"), Some(&Value::from(r#"{"tier":"edge"}"#)));
}

#[test]
fn json_list_keeps_other_metadata_and_service_selector() {
    let all = load("list.json");
    let Manifest::Network(cnet) = &all[0] else { panic!("not a network") };
    assert_eq!(cnet.metadata.resource_version.as_deref(), Some("4711"));
    assert!(cnet.metadata.other.contains_key("creationTimestamp"));
    let Manifest::Service(svc) = &all[1] else { panic!("not a service") };
    assert!(svc.has_selector() && !svc.is_headless());
    assert_eq!(svc.danm_selection(), Ok(None));
    assert_eq!(svc.ports[0].protocol, "TCP");
    assert_eq!(svc.ports[0].name, "");
}

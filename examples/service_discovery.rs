//! Service discovery over DANM networks from Rust: danm-core's `ServiceIndex` follows Services, DanmEps
//! and pods one change at a time and says which Services each change touches, as svcwatcher does on a
//! cluster; here the changes are made by hand.
//!
//! `cargo run -p danm-examples --example service_discovery`

use danm_core::discovery::{Publication, ServiceIndex, ServiceKey};
use danm_core::model::{DanmEp, DanmEpSpec, ObjectMeta, PodRecord};
use danm_core::service::ServiceRecord;

fn pod(name: &str, app: &str, ready: bool) -> PodRecord {
    let mut metadata = ObjectMeta::new(name, Some("vnf"));
    metadata.uid = Some(format!("uid-{name}"));
    metadata.labels.insert("app".into(), app.into());
    PodRecord { metadata, node_name: Some("node-1".into()), hostname: Some(name.into()), ready, ..PodRecord::default() }
}

fn interface(pod: &str, network: &str, address: &str) -> DanmEp {
    let mut spec = DanmEpSpec {
        network_name: network.into(),
        api_type: "DanmNet".into(),
        pod: pod.into(),
        pod_uid: format!("uid-{pod}"),
        ..DanmEpSpec::default()
    };
    spec.interface.name = "eth1".into();
    spec.interface.address = address.into();
    let metadata = ObjectMeta::new(format!("{pod}-eth1"), Some("vnf"));
    DanmEp { api_version: "danm.k8s.io/v1".into(), kind: "DanmEp".into(), metadata, spec }
}

fn show(index: &ServiceIndex, key: &ServiceKey) {
    match index.publication(key) {
        Publication::Endpoints(e) => {
            let ips = |v: &[danm_core::discovery::EndpointAddress]| {
                v.iter().map(|a| format!("{} ({})", a.ip, a.pod)).collect::<Vec<_>>().join(", ")
            };
            println!("{key}: ready [{}], not ready [{}]", ips(&e.ready), ips(&e.not_ready));
        }
        other => println!("{key}: {other:?}"),
    }
}

fn main() {
    let mut index = ServiceIndex::new();
    let mut service = ServiceRecord { metadata: ObjectMeta::new("backends", Some("vnf")), ..ServiceRecord::default() };
    service.metadata.annotations.insert("danm.k8s.io/selector".into(), r#"{"app":"backend"}"#.into());
    service.metadata.annotations.insert("danm.k8s.io/network".into(), "internal".into());
    let key = ServiceKey::new("vnf", "backends");
    index.apply_service(service);

    for (name, address) in [("b-0", "10.20.0.5/24"), ("b-1", "10.20.0.6/24")] {
        index.apply_pod(pod(name, "backend", true));
        let touched = index.apply_endpoint(interface(name, "internal", address));
        println!("{name}'s interface touches {touched:?}");
    }
    show(&index, &key);

    // b-1 stops being ready, then is relabelled out of the Service: each change touches the Service.
    println!("b-1 not ready touches {:?}", index.apply_pod(pod("b-1", "backend", false)));
    show(&index, &key);
    println!("b-1 relabelled touches {:?}", index.apply_pod(pod("b-1", "frontend", false)));
    show(&index, &key);
    // An interface on another network touches nothing.
    println!(
        "an interface on the external network touches {:?}",
        index.apply_endpoint(interface("b-9", "external", "10.9.0.9/24"))
    );
}

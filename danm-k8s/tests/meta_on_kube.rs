//! The meta-plugin on the Kubernetes datastore, against the fake API server: a pod's interfaces come
//! from its annotation on the Pod object, its DanmEps are Kubernetes objects carrying its labels, and ADD,
//! CHECK, DEL and GC behave as on the other stores; ADD reports the pod's `network-status` annotation.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use danm_core::delegate::ScriptedExecutor;
use danm_core::meta::{MetaConfig, MetaPlugin, PodContext};
use danm_core::model::{Network, NetworkKind, NetworkOptions, NetworkSpec, ObjectMeta};
use danm_core::pod::{NETWORK_STATUS_ANNOTATION, parse_network_status};
use danm_core::provision::RecordingProvisioner;
use danm_core::retry::{BoxFuture, Sleeper};
use danm_core::store::{Datastore, Object};
use danm_k8s::KubeStore;
use danm_k8s::testing::FakeApiServer;
use serde_json::json;

#[derive(Debug)]
struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(d))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_check_del_and_gc_on_the_kubernetes_store() {
    let server = FakeApiServer::with_danm_kinds();
    let store = Arc::new(KubeStore::new(server.client()));
    let options =
        NetworkOptions { host_device: "eth1".into(), cidr: "10.60.0.0/24".into(), ..NetworkOptions::default() };
    let spec =
        NetworkSpec { network_id: "int".into(), network_type: "macvlan".into(), options, ..NetworkSpec::default() };
    store
        .create(&Object::Network(Network::new(NetworkKind::DanmNet, ObjectMeta::new("int", Some("vnf")), spec)))
        .await
        .unwrap();
    let mut uids = std::collections::BTreeMap::new();
    for name in ["lb-0", "lb-1"] {
        let seeded = server.seed(&json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "vnf", "labels": {"app": "lb"},
                "annotations": {"danm.k8s.io/interfaces": r#"[{"network":"int","ip":"dynamic"}]"#}},
            "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "x"}]}
        }));
        // The server assigns the UID, as the kubelet then passes it in K8S_POD_UID.
        uids.insert(name, seeded["metadata"]["uid"].as_str().unwrap().to_owned());
    }
    let provisioner = Arc::new(RecordingProvisioner::new());
    let config = MetaConfig { host: "node-1".into(), timeout: Duration::from_secs(5), ..MetaConfig::default() };
    let plugin =
        MetaPlugin::new(store.clone(), provisioner.clone(), ScriptedExecutor::new(), Arc::new(TokioSleeper), config);
    let ctx = |pod: &str| PodContext {
        container_id: format!("c-{pod}"),
        netns: Some(PathBuf::from(format!("/var/run/netns/{pod}"))),
        namespace: "vnf".into(),
        name: pod.into(),
        uid: Some(uids[pod].clone()),
        args: String::new(),
    };

    let a = plugin.add(&ctx("lb-0")).await.unwrap();
    let b = plugin.add(&ctx("lb-1")).await.unwrap();
    assert_ne!(a.ips[0].address, b.ips[0].address);
    plugin.check(&ctx("lb-0")).await.unwrap();

    // The pod's network-status annotation is patched in, and nothing else of the Pod changes.
    let pods = server.objects_json("v1", "Pod");
    let pod = pods.iter().find(|p| p["metadata"]["name"] == "lb-0").unwrap();
    let status = pod["metadata"]["annotations"][NETWORK_STATUS_ANNOTATION].as_str().expect("network-status");
    let status = parse_network_status(status).unwrap();
    assert_eq!(status.len(), 1);
    assert_eq!((status[0].name.as_str(), status[0].interface.as_str()), ("vnf/int", "eth0"));
    assert_eq!(status[0].ips, vec![a.ips[0].address.addr()]);
    assert!(status[0].default);
    assert_eq!(pod["spec"]["containers"][0]["image"], "x");
    assert_eq!(pod["metadata"]["labels"]["app"], "lb");
    assert!(pod["metadata"]["annotations"]["danm.k8s.io/interfaces"].is_string());

    // The DanmEps are Kubernetes objects, with the pod's labels and the index labels.
    let eps = server.objects_json("danm.k8s.io/v1", "DanmEp");
    assert_eq!(eps.len(), 2);
    for ep in &eps {
        assert_eq!(ep["metadata"]["labels"]["app"], "lb");
        assert_eq!(ep["metadata"]["labels"]["danm.k8s.io/host"], "node-1");
        assert!(ep["spec"]["Interface"]["Address"].as_str().unwrap().starts_with("10.60.0."));
    }
    assert_eq!(server.objects_json("danm.k8s.io/v1", "DanmIpamBlock").len(), 1);

    plugin.del(&ctx("lb-0")).await.unwrap();
    plugin.del(&ctx("lb-0")).await.unwrap();
    assert_eq!(server.objects_json("danm.k8s.io/v1", "DanmEp").len(), 1);
    let removed = plugin.gc(&[]).await.unwrap();
    assert_eq!(removed.len(), 1);
    assert!(server.objects_json("danm.k8s.io/v1", "DanmEp").is_empty());
    assert!(server.objects_json("danm.k8s.io/v1", "DanmIpamBlock").is_empty(), "every address is free again");
    assert!(provisioner.pod_interfaces().is_empty());
}

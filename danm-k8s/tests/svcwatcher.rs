//! svcwatcher against the stateful fake API server: upstream DANM's multi-domain service discovery demo
//! (networks external, internal and management; the load balancer, internal processor and external
//! client pods; three Services) yields exactly the right Endpoints and EndpointSlices, which then follow
//! a DanmEp deletion (the pod's CNI DEL), a pod label change, a readiness change, a Service change and
//! a Service deletion. Also: a replica that does not lead writes nothing, Endpoints svcwatcher did not
//! write are left alone, and a named `targetPort` is resolved per pod into a subset and slices per port
//! set.

use std::time::Duration;

use danm_k8s::runtime::{Leadership, Telemetry};
use danm_k8s::svcwatcher::{Config, Context, SvcWatcher, watch_changes};
use danm_k8s::testing::FakeApiServer;
use k8s_openapi::api::core::v1::{Endpoints, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::sync::oneshot;

fn pod(ns: &str, name: &str, app: &str, ready: bool) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": app}},
        "spec": {"nodeName": "node-1", "hostname": name, "containers": [{"name": "c", "image": "i"}]},
        "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
    })
}

/// A DanmEp as `danm` ADD records it; every field is one the test varies.
#[allow(clippy::too_many_arguments)]
fn danm_ep(
    ns: &str,
    pod: &str,
    uid: &str,
    app: &str,
    api_type: &str,
    net: &str,
    iface: &str,
    v4: &str,
    v6: &str,
) -> Value {
    json!({
        "apiVersion": "danm.k8s.io/v1", "kind": "DanmEp",
        "metadata": {"name": format!("{pod}-{iface}"), "namespace": ns, "labels": {"app": app}},
        "spec": {
            "NetworkName": net, "NetworkType": "macvlan", "EndpointID": format!("{pod}-{iface}"),
            "Interface": {"Name": iface, "Address": v4, "AddressIPv6": v6, "MacAddress": "02:00:00:00:00:01"},
            "Host": "node-1", "Pod": pod, "PodUID": uid, "apiType": api_type
        }
    })
}

fn service(name: &str, selector: &str, network_key: &str, network: &str, port: (&str, i32, &str)) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "vnf", "annotations": {
            "danm.k8s.io/selector": selector, network_key: network}},
        "spec": {"clusterIP": "None", "ports": [{"name": port.0, "port": port.1, "protocol": port.2}]}
    })
}

/// The demo: what `danm` ADD leaves behind for the three pods, and the three Services.
/// Returns the pods' UIDs (the API server assigns them), in the order load balancer, internal
/// processor, external client.
async fn seed_demo(server: &FakeApiServer) -> [String; 3] {
    let mut uids = Vec::new();
    for p in [
        pod("vnf", "loadbalancer", "loadbalancer", true),
        pod("vnf", "internal-processor", "internal-processor", true),
        pod("client", "external-client", "external-client", true),
    ] {
        let stored = server.seed(&p);
        uids.push(stored["metadata"]["uid"].as_str().unwrap().to_owned());
        // Status is a subresource: the kubelet writes it apart.
        let (ns, name) = (p["metadata"]["namespace"].as_str().unwrap(), p["metadata"]["name"].as_str().unwrap());
        Api::<Pod>::namespaced(server.client(), ns)
            .patch_status(name, &PatchParams::default(), &Patch::Merge(json!({"status": p["status"]})))
            .await
            .unwrap();
    }
    let [uid_lb, uid_proc, uid_client] = [&uids[0], &uids[1], &uids[2]];
    for ep in [
        danm_ep(
            "vnf",
            "loadbalancer",
            uid_lb,
            "loadbalancer",
            "ClusterNetwork",
            "external",
            "eth0",
            "10.100.0.2/24",
            "fd00:100::2/64",
        ),
        danm_ep("vnf", "loadbalancer", uid_lb, "loadbalancer", "DanmNet", "internal", "eth1", "10.200.0.2/24", ""),
        danm_ep(
            "vnf",
            "loadbalancer",
            uid_lb,
            "loadbalancer",
            "ClusterNetwork",
            "management",
            "eth2",
            "10.250.0.2/24",
            "",
        ),
        danm_ep(
            "vnf",
            "internal-processor",
            uid_proc,
            "internal-processor",
            "DanmNet",
            "internal",
            "eth0",
            "10.200.0.3/24",
            "",
        ),
        danm_ep(
            "vnf",
            "internal-processor",
            uid_proc,
            "internal-processor",
            "ClusterNetwork",
            "management",
            "eth1",
            "10.250.0.3/24",
            "",
        ),
        danm_ep(
            "client",
            "external-client",
            uid_client,
            "external-client",
            "ClusterNetwork",
            "external",
            "eth0",
            "10.100.0.3/24",
            "",
        ),
    ] {
        server.seed(&ep);
    }
    let network = "danm.k8s.io/network";
    for (name, app, key, net, port) in [
        ("vnf-internal-processor", "internal-processor", network, "internal", ("work", 9000, "TCP")),
        ("vnf-internal-lb", "loadbalancer", network, "internal", ("results", 9001, "TCP")),
        ("vnf-external-svc", "loadbalancer", "danm.k8s.io/clusterNetwork", "external", ("diameter", 3868, "SCTP")),
    ] {
        server.seed(&service(name, &format!(r#"{{"app": "{app}"}}"#), key, net, port));
    }
    [uids[0].clone(), uids[1].clone(), uids[2].clone()]
}

struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.task).await.expect("svcwatcher stops").unwrap();
    }
}

fn start(server: &FakeApiServer, leadership: Leadership) -> (Running, std::sync::Arc<Telemetry>) {
    let telemetry = Telemetry::new("svcwatcher");
    let ctx = Context::new(server.client(), Config::default(), leadership, &telemetry);
    let (stop, stopped) = oneshot::channel::<()>();
    let watcher = SvcWatcher::new(ctx);
    let changes = watch_changes(server.client());
    let task = tokio::spawn(watcher.run(changes, async {
        let _ = stopped.await;
    }));
    (Running { stop: Some(stop), task }, telemetry)
}

/// The ready and not-ready addresses of the Endpoints `vnf/name`, as `ip@pod`.
fn published(server: &FakeApiServer, name: &str) -> Option<(Vec<String>, Vec<String>)> {
    let ep: Endpoints = server.object("vnf", name)?;
    let list = |a: Option<&Vec<k8s_openapi::api::core::v1::EndpointAddress>>| {
        let mut v: Vec<String> = a
            .into_iter()
            .flatten()
            .map(|a| format!("{}@{}", a.ip, a.target_ref.as_ref().and_then(|t| t.name.clone()).unwrap_or_default()))
            .collect();
        v.sort();
        v
    };
    let subset = ep.subsets.as_ref().and_then(|s| s.first());
    Some((list(subset.and_then(|s| s.addresses.as_ref())), list(subset.and_then(|s| s.not_ready_addresses.as_ref()))))
}

/// Waits for `probe` to give `want`. The deadline is generous: a relist after an expired watch waits out
/// the watcher's backoff (seconds), and the test may share two cores with others.
async fn eventually<T: PartialEq + std::fmt::Debug>(what: &str, want: T, mut probe: impl FnMut() -> T) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(45);
    loop {
        let got = probe();
        if got == want {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("{what}: got {got:?}, want {want:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn slice_ips(server: &FakeApiServer, name: &str) -> Option<Vec<(String, bool)>> {
    let slice: EndpointSlice = server.object("vnf", name)?;
    Some(
        slice
            .endpoints
            .iter()
            .map(|e| (e.addresses.join(","), e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(false)))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upstream_demo_publishes_exactly_the_right_endpoints_and_follows_changes() {
    let server = FakeApiServer::with_danm_kinds();
    let [uid_lb, _, _] = seed_demo(&server).await;
    let (running, telemetry) = start(&server, Leadership::always());

    // Each Service publishes its pods' addresses on its own network, never management's.
    eventually("internal-processor", Some((strings(&["10.200.0.3@internal-processor"]), vec![])), || {
        published(&server, "vnf-internal-processor")
    })
    .await;
    eventually("internal-lb", Some((strings(&["10.200.0.2@loadbalancer"]), vec![])), || {
        published(&server, "vnf-internal-lb")
    })
    .await;
    eventually(
        "external-svc: both families of the load balancer, not the client in another namespace",
        Some((strings(&["10.100.0.2@loadbalancer", "fd00:100::2@loadbalancer"]), vec![])),
        || published(&server, "vnf-external-svc"),
    )
    .await;

    // The Endpoints carry what DNS and kube-proxy need, and the Service's annotations and ports.
    let ep: Endpoints = server.object("vnf", "vnf-external-svc").unwrap();
    let subset = &ep.subsets.as_ref().unwrap()[0];
    let first = &subset.addresses.as_ref().unwrap()[0];
    assert_eq!(first.node_name.as_deref(), Some("node-1"));
    assert_eq!(first.hostname.as_deref(), Some("loadbalancer"));
    let target = first.target_ref.as_ref().unwrap();
    assert_eq!((target.kind.as_deref(), target.uid.as_deref()), (Some("Pod"), Some(uid_lb.as_str())));
    let port = &subset.ports.as_ref().unwrap()[0];
    assert_eq!((port.name.as_deref(), port.port, port.protocol.as_deref()), (Some("diameter"), 3868, Some("SCTP")));
    let labels = ep.metadata.labels.unwrap();
    assert_eq!(labels.get("endpointslice.kubernetes.io/skip-mirror").map(String::as_str), Some("true"));
    assert_eq!(
        ep.metadata.annotations.unwrap().get("danm.k8s.io/clusterNetwork").map(String::as_str),
        Some("external")
    );
    let owner = &ep.metadata.owner_references.unwrap()[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("Service", "vnf-external-svc"));

    // One EndpointSlice per family (written after the Endpoints).
    eventually("ipv4 slice", Some(vec![("10.100.0.2".into(), true)]), || {
        slice_ips(&server, "vnf-external-svc-danm-ipv4")
    })
    .await;
    eventually("ipv6 slice", Some(vec![("fd00:100::2".into(), true)]), || {
        slice_ips(&server, "vnf-external-svc-danm-ipv6")
    })
    .await;
    assert_eq!(slice_ips(&server, "vnf-internal-lb-danm-ipv6"), None, "no IPv6 address, no IPv6 slice");
    let slice: EndpointSlice = server.object("vnf", "vnf-external-svc-danm-ipv6").unwrap();
    assert_eq!(slice.address_type, "IPv6");
    let slice_labels = slice.metadata.labels.unwrap();
    assert_eq!(slice_labels.get("kubernetes.io/service-name").map(String::as_str), Some("vnf-external-svc"));
    assert_eq!(
        slice_labels.get("endpointslice.kubernetes.io/managed-by").map(String::as_str),
        Some("svcwatcher.danm.k8s.io")
    );
    assert_eq!(slice.endpoints[0].target_ref.as_ref().and_then(|t| t.uid.as_deref()), Some(uid_lb.as_str()));

    let pods: Api<Pod> = Api::namespaced(server.client(), "vnf");
    let patch = |v: Value| Patch::Merge(v);

    // Readiness: the load balancer becomes not ready, its addresses move to notReadyAddresses.
    pods.patch_status(
        "loadbalancer",
        &PatchParams::default(),
        &patch(json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}})),
    )
    .await
    .unwrap();
    eventually("lb not ready", Some((vec![], strings(&["10.200.0.2@loadbalancer"]))), || {
        published(&server, "vnf-internal-lb")
    })
    .await;
    eventually("slice not ready", Some(vec![("10.100.0.2".into(), false)]), || {
        slice_ips(&server, "vnf-external-svc-danm-ipv4")
    })
    .await;
    pods.patch_status(
        "loadbalancer",
        &PatchParams::default(),
        &patch(json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}})),
    )
    .await
    .unwrap();

    // A label change: the internal processor is relabelled as a load balancer and joins vnf-internal-lb.
    pods.patch(
        "internal-processor",
        &PatchParams::default(),
        &patch(json!({"metadata": {"labels": {"app": "loadbalancer"}}})),
    )
    .await
    .unwrap();
    eventually(
        "relabelled into internal-lb",
        Some((strings(&["10.200.0.2@loadbalancer", "10.200.0.3@internal-processor"]), vec![])),
        || published(&server, "vnf-internal-lb"),
    )
    .await;
    eventually("relabelled out of internal-processor", Some((vec![], vec![])), || {
        published(&server, "vnf-internal-processor")
    })
    .await;
    eventually("an empty family has no slice", None, || slice_ips(&server, "vnf-internal-processor-danm-ipv4")).await;

    // The pod goes: the CNI DEL deletes its DanmEps, and its address leaves the Endpoints.
    let eps: Api<danm_k8s::DanmEp> = Api::namespaced(server.client(), "vnf");
    eps.delete("internal-processor-eth0", &DeleteParams::default()).await.unwrap();
    eventually("DanmEp deleted", Some((strings(&["10.200.0.2@loadbalancer"]), vec![])), || {
        published(&server, "vnf-internal-lb")
    })
    .await;

    // A Service change: vnf-internal-lb now publishes the management network instead.
    let services: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(server.client(), "vnf");
    services
        .patch(
            "vnf-internal-lb",
            &PatchParams::default(),
            &patch(json!({"metadata": {"annotations": {
                "danm.k8s.io/network": null, "danm.k8s.io/clusterNetwork": "management"}}})),
        )
        .await
        .unwrap();
    eventually(
        "service moved to management",
        Some((strings(&["10.250.0.2@loadbalancer", "10.250.0.3@internal-processor"]), vec![])),
        || published(&server, "vnf-internal-lb"),
    )
    .await;

    // The Service goes: its Endpoints and slices go with it.
    services.delete("vnf-external-svc", &DeleteParams::default()).await.unwrap();
    eventually("service deleted", None, || published(&server, "vnf-external-svc")).await;
    eventually("slices deleted", (None, None), || {
        (slice_ips(&server, "vnf-external-svc-danm-ipv4"), slice_ips(&server, "vnf-external-svc-danm-ipv6"))
    })
    .await;

    let metrics = telemetry.encode();
    assert!(metrics.contains("danm_svcwatcher_writes_total"), "{metrics}");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_writes_nothing_and_foreign_endpoints_are_left_alone() {
    let server = FakeApiServer::with_danm_kinds();
    seed_demo(&server).await;
    // Endpoints of vnf-internal-lb written by someone else.
    let foreign = json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "vnf-internal-lb", "namespace": "vnf"},
        "subsets": [{"addresses": [{"ip": "192.0.2.1"}]}]
    });
    server.seed(&foreign);

    let (tx, rx) = tokio::sync::watch::channel(false);
    let leadership = follower(rx);
    let (running, telemetry) = start(&server, leadership);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(published(&server, "vnf-internal-processor"), None, "a follower writes nothing");
    assert!(telemetry.is_ready(), "a follower that has listed everything is ready");
    assert!(telemetry.encode().contains(r#"danm_svcwatcher_leading{component="svcwatcher"} 0"#));

    tx.send(true).unwrap();
    eventually("the new leader publishes", Some((strings(&["10.200.0.3@internal-processor"]), vec![])), || {
        published(&server, "vnf-internal-processor")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        published(&server, "vnf-internal-lb"),
        Some((strings(&["192.0.2.1@"]), vec![])),
        "Endpoints svcwatcher did not write are not replaced"
    );
    running.stop().await;
    drop(tx);
}

/// A leadership driven by the test.
fn follower(rx: tokio::sync::watch::Receiver<bool>) -> Leadership {
    Leadership::from_receiver(rx)
}

/// On a real cluster (`KUBECONFIG`, with deploy/crds applied): in a temporary namespace, a pod bound to no
/// node, its DanmEp and a DANM Service; svcwatcher run in this process publishes the pod's address, and
/// withdraws it when the DanmEp goes. Run with
/// `KUBECONFIG=... cargo test -p danm-k8s --all-features --test svcwatcher -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster: KUBECONFIG"]
async fn svcwatcher_on_a_real_cluster() {
    use k8s_openapi::api::core::v1::{Namespace, Service};
    use kube::api::PostParams;

    let client = kube::Client::try_default().await.expect("KUBECONFIG names a reachable cluster");
    let namespace = format!("danm-svcwatcher-test-{}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap();
    namespaces.create(&PostParams::default(), &ns).await.unwrap();

    let run = async {
        let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "lb", "labels": {"app": "lb"}},
            "spec": {"nodeSelector": {"danm.k8s.io/no-such-node": "true"},
                     "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}
        }))
        .unwrap();
        let pod = pods.create(&PostParams::default(), &pod).await.unwrap();
        let eps: Api<danm_k8s::DanmEp> = Api::namespaced(client.clone(), &namespace);
        let ep: danm_k8s::DanmEp = serde_json::from_value(json!({
            "apiVersion": "danm.k8s.io/v1", "kind": "DanmEp",
            "metadata": {"name": "lb-eth1", "labels": {"app": "lb"}},
            "spec": {"NetworkName": "internal", "NetworkType": "ipvlan", "EndpointID": "e",
                     "Interface": {"Name": "eth1", "Address": "10.1.0.5/24", "AddressIPv6": "", "MacAddress": ""},
                     "Host": "", "Pod": "lb", "PodUID": pod.metadata.uid, "apiType": "DanmNet"}
        }))
        .unwrap();
        eps.create(&PostParams::default(), &ep).await.unwrap();
        let services: Api<Service> = Api::namespaced(client.clone(), &namespace);
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "lb", "annotations": {
                "danm.k8s.io/selector": "{\"app\":\"lb\"}", "danm.k8s.io/network": "internal"}},
            "spec": {"clusterIP": "None", "ports": [{"port": 80}]}
        }))
        .unwrap();
        services.create(&PostParams::default(), &svc).await.unwrap();

        let telemetry = Telemetry::new("svcwatcher");
        let ctx = Context::new(client.clone(), Config::default(), Leadership::always(), &telemetry);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(SvcWatcher::new(ctx).run(watch_changes(client.clone()), async {
            let _ = stopped.await;
        }));
        let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), &namespace);
        let address = || async {
            let e = endpoints.get_opt("lb").await.unwrap()?;
            let subset = e.subsets?.into_iter().next()?;
            subset.not_ready_addresses.or(subset.addresses)?.first().map(|a| a.ip.clone())
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while address().await.as_deref() != Some("10.1.0.5") {
            assert!(tokio::time::Instant::now() < deadline, "no Endpoints published");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        eps.delete("lb-eth1", &DeleteParams::default()).await.unwrap();
        while address().await.is_some() {
            assert!(tokio::time::Instant::now() < deadline, "the address was not withdrawn");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let _ = stop.send(());
        task.await.unwrap();
    };
    // The namespace goes whatever happened.
    let outcome = tokio::time::timeout(
        Duration::from_secs(60),
        futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(run)),
    )
    .await;
    namespaces.delete(&namespace, &DeleteParams::default()).await.unwrap();
    if let Err(panic) = outcome.expect("the test finished in time") {
        std::panic::resume_unwind(panic);
    }
}

/// A Service with more addresses than one EndpointSlice holds gets several, and loses the surplus ones
/// when it shrinks; its Endpoints hold them all up to Kubernetes' limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_services_span_several_slices_which_shrink_with_them() {
    let server = FakeApiServer::with_danm_kinds();
    for i in 0..150 {
        let name = format!("p{i}");
        let address = format!("10.200.{}.{}/16", i / 200, i % 200 + 1);
        server.seed(&danm_ep("vnf", &name, "", "big", "DanmNet", "internal", "eth1", &address, ""));
    }
    server.seed(&service("big", r#"{"app": "big"}"#, "danm.k8s.io/network", "internal", ("p", 80, "TCP")));
    let (running, _) = start(&server, Leadership::always());

    let sizes = |server: &FakeApiServer| {
        let mut sizes: Vec<(String, usize)> = server
            .objects::<EndpointSlice>()
            .into_iter()
            .map(|s| (s.metadata.name.unwrap_or_default(), s.endpoints.len()))
            .collect();
        sizes.sort();
        sizes
    };
    eventually("two slices", vec![("big-danm-ipv4".to_owned(), 100), ("big-danm-ipv4-2".to_owned(), 50)], || {
        sizes(&server)
    })
    .await;
    eventually("all 150 in the Endpoints", Some(150), || published(&server, "big").map(|(r, n)| r.len() + n.len()))
        .await;

    let eps: Api<danm_k8s::DanmEp> = Api::namespaced(server.client(), "vnf");
    for i in 90..150 {
        eps.delete(&format!("p{i}-eth1"), &DeleteParams::default()).await.unwrap();
    }
    eventually("one slice left", vec![("big-danm-ipv4".to_owned(), 90)], || sizes(&server)).await;
    running.stop().await;
}

/// A watch that expires (410 Gone) is listed again, and what was deleted while no watch was open leaves
/// the index and the Endpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relist_after_an_expired_watch_drops_what_was_deleted_meanwhile() {
    let server = FakeApiServer::with_danm_kinds();
    seed_demo(&server).await;
    let (running, _) = start(&server, Leadership::always());
    eventually("internal-processor", Some((strings(&["10.200.0.3@internal-processor"]), vec![])), || {
        published(&server, "vnf-internal-processor")
    })
    .await;

    // DanmEp watches and lists fail twice; every watch ends and the history is forgotten; meanwhile the
    // DanmEp goes. The watcher can only learn it from a new list.
    server.inject(danm_k8s::testing::Fault::status(500).path_contains("danmeps").times(2));
    server.compact();
    server.remove("danm.k8s.io/v1", "DanmEp", "vnf", "internal-processor-eth0").unwrap();
    eventually("relisted", Some((vec![], vec![])), || published(&server, "vnf-internal-processor")).await;
    assert_eq!(
        published(&server, "vnf-internal-lb"),
        Some((strings(&["10.200.0.2@loadbalancer"]), vec![])),
        "the other Services are as they were"
    );
    running.stop().await;
}

/// The subsets of the Endpoints `vnf/name`, each as its ports (`name/port`) and its addresses (`ip@pod`,
/// not-ready ones marked `!`).
fn subsets(server: &FakeApiServer, name: &str) -> Option<Vec<(Vec<String>, Vec<String>)>> {
    let ep: Endpoints = server.object("vnf", name)?;
    let subsets = ep.subsets.unwrap_or_default().into_iter().map(|s| {
        let ports = s.ports.iter().flatten().map(|p| format!("{}/{}", p.name.clone().unwrap_or_default(), p.port));
        let pod = |a: &k8s_openapi::api::core::v1::EndpointAddress| {
            a.target_ref.as_ref().and_then(|t| t.name.clone()).unwrap_or_default()
        };
        let ready = s.addresses.iter().flatten().map(|a| format!("{}@{}", a.ip, pod(a)));
        let not_ready = s.not_ready_addresses.iter().flatten().map(|a| format!("{}@{}!", a.ip, pod(a)));
        (ports.collect(), ready.chain(not_ready).collect())
    });
    Some(subsets.collect())
}

/// The EndpointSlices of the Service `name`, by name, each as its ports (`name/port`) and addresses.
fn slices(server: &FakeApiServer, service: &str) -> Vec<(String, Vec<String>, Vec<String>)> {
    let mut slices: Vec<_> = server
        .objects::<EndpointSlice>()
        .into_iter()
        .filter(|s| {
            s.metadata.labels.as_ref().and_then(|l| l.get("kubernetes.io/service-name")).is_some_and(|n| n == service)
        })
        .map(|s| {
            let ports = s
                .ports
                .iter()
                .flatten()
                .map(|p| format!("{}/{}", p.name.clone().unwrap_or_default(), p.port.unwrap_or_default()));
            let addresses = s.endpoints.iter().map(|e| e.addresses.join(","));
            (s.metadata.name.unwrap_or_default(), ports.collect(), addresses.collect())
        })
        .collect();
    slices.sort();
    slices
}

/// A Service whose `web` port targets the container port named `http`, and whose `admin` port targets
/// 9100: two pods listening on different `http` ports and one without any make three port sets, each
/// its own Endpoints subset and EndpointSlice; when one goes, its slice goes and the names close up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_target_port_is_resolved_per_pod() {
    let server = FakeApiServer::with_danm_kinds();
    let pods: Api<Pod> = Api::namespaced(server.client(), "vnf");
    for (name, address, ports) in [
        (
            "web-0",
            "10.200.0.10/24",
            json!([{"name": "http", "containerPort": 8080}, {"name": "dns", "containerPort": 53, "protocol": "UDP"}]),
        ),
        ("web-1", "10.200.0.11/24", json!([{"name": "http", "containerPort": 8081}])),
        // `http` over UDP does not serve a TCP Service port.
        ("web-2", "10.200.0.12/24", json!([{"name": "http", "containerPort": 8082, "protocol": "UDP"}])),
    ] {
        let mut p = pod("vnf", name, "web", true);
        p["spec"]["containers"][0]["ports"] = ports;
        let uid = server.seed(&p)["metadata"]["uid"].as_str().unwrap().to_owned();
        pods.patch_status(name, &PatchParams::default(), &Patch::Merge(json!({"status": p["status"]}))).await.unwrap();
        server.seed(&danm_ep("vnf", name, &uid, "web", "DanmNet", "internal", "eth1", address, ""));
    }
    server.seed(&json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "vnf", "annotations": {
            "danm.k8s.io/selector": r#"{"app": "web"}"#, "danm.k8s.io/network": "internal"}},
        "spec": {"clusterIP": "None", "ports": [
            {"name": "web", "port": 80, "protocol": "TCP", "targetPort": "http"},
            {"name": "admin", "port": 9000, "protocol": "TCP", "targetPort": 9100}]}
    }));
    let (running, _) = start(&server, Leadership::always());

    let set = |ports: &[&str], addresses: &[&str]| (strings(ports), strings(addresses));
    eventually(
        "a subset per port set",
        Some(vec![
            set(&["admin/9100"], &["10.200.0.12@web-2"]),
            set(&["web/8080", "admin/9100"], &["10.200.0.10@web-0"]),
            set(&["web/8081", "admin/9100"], &["10.200.0.11@web-1"]),
        ]),
        || subsets(&server, "web"),
    )
    .await;
    let slice = |name: &str, ports: &[&str], address: &str| (name.to_owned(), strings(ports), strings(&[address]));
    eventually(
        "a slice per port set",
        vec![
            slice("web-danm-ipv4", &["admin/9100"], "10.200.0.12"),
            slice("web-danm-ipv4-2", &["web/8080", "admin/9100"], "10.200.0.10"),
            slice("web-danm-ipv4-3", &["web/8081", "admin/9100"], "10.200.0.11"),
        ],
        || slices(&server, "web"),
    )
    .await;

    // web-2 goes (its CNI DEL): its port set goes, the surplus slice is deleted and the names close up.
    let eps: Api<danm_k8s::DanmEp> = Api::namespaced(server.client(), "vnf");
    eps.delete("web-2-eth1", &DeleteParams::default()).await.unwrap();
    eventually(
        "two port sets left",
        vec![
            slice("web-danm-ipv4", &["web/8080", "admin/9100"], "10.200.0.10"),
            slice("web-danm-ipv4-2", &["web/8081", "admin/9100"], "10.200.0.11"),
        ],
        || slices(&server, "web"),
    )
    .await;
    assert_eq!(
        subsets(&server, "web"),
        Some(vec![
            set(&["web/8080", "admin/9100"], &["10.200.0.10@web-0"]),
            set(&["web/8081", "admin/9100"], &["10.200.0.11@web-1"]),
        ])
    );
    running.stop().await;
}

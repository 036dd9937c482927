//! netwatcher end to end against the in-process fake API server: networks added, changed and deleted
//! drive the host interfaces of a recording provisioner; drift is repaired on resync; per-node state
//! shows up as Events on the networks; metrics; shutdown. NetworkAttachmentDefinitions: their host
//! interfaces, the rewrite of their master on two nodes at once, and an API server without them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use danm_core::model::{NetworkOptions, NetworkSpec};
use danm_core::netwatch::attachment::{HOST_DEVICE_ANNOTATION, HOST_INTERFACE_ANNOTATION};
use danm_core::provision::{
    CreatedInterface, HostInterface, HostInventory, HostLinkKind, HostScan, InterfaceProvisioner, InterfaceSetup,
    LinkState, PodInterface, ProvisionCall, ProvisionError, RecordingProvisioner, Removal,
};
use danm_k8s::netwatcher::{self, Config};
use danm_k8s::runtime::Telemetry;
use danm_k8s::testing::{FakeApiServer, Fault, ResourceType};
use danm_k8s::{ClusterNetwork, DanmNet, NetworkAttachmentDefinition};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// The recording provisioner, made to fail `ensure_host` for the interfaces named in `failing`.
#[derive(Debug, Clone, Default)]
struct Node1 {
    fake: Arc<RecordingProvisioner>,
    failing: Arc<Mutex<BTreeSet<String>>>,
}

#[async_trait]
impl InterfaceProvisioner for Node1 {
    async fn create(&self, iface: &PodInterface) -> Result<CreatedInterface, ProvisionError> {
        self.fake.create(iface).await
    }
    async fn delete(&self, netns: &std::path::Path, name: &str) -> Result<(), ProvisionError> {
        self.fake.delete(netns, name).await
    }
    async fn inspect(&self, netns: &std::path::Path, name: &str) -> Result<Option<LinkState>, ProvisionError> {
        self.fake.inspect(netns, name).await
    }
    async fn ensure_host(&self, host: &HostInterface, holder: &str) -> Result<(), ProvisionError> {
        if self.failing.lock().unwrap().contains(&host.name) {
            return Err(ProvisionError::Invalid { name: host.name.clone(), reason: "the switch port is down".into() });
        }
        self.fake.ensure_host(host, holder).await
    }
    async fn release_host(&self, name: &str, holder: &str) -> Result<bool, ProvisionError> {
        self.fake.release_host(name, holder).await
    }
    async fn configure(&self, setup: &InterfaceSetup) -> Result<bool, ProvisionError> {
        self.fake.configure(setup).await
    }
    async fn deconfigure(&self, setup: &InterfaceSetup) -> Result<(), ProvisionError> {
        self.fake.deconfigure(setup).await
    }
}

#[async_trait]
impl HostInventory for Node1 {
    async fn scan_hosts(&self) -> Result<HostScan, ProvisionError> {
        self.fake.scan_hosts().await
    }
    async fn remove_host(&self, name: &str, when: Removal) -> Result<bool, ProvisionError> {
        self.fake.remove_host(name, when).await
    }
}

fn spec(id: &str, vlan: Option<i64>, vxlan: Option<i64>) -> NetworkSpec {
    let options = NetworkOptions { host_device: "eth1".into(), vlan, vxlan, ..NetworkOptions::default() };
    NetworkSpec { network_id: id.into(), options, ..NetworkSpec::default() }
}

/// Waits until `check` holds (up to 10 s), else fails with what `check` saw last.
async fn eventually<T: std::fmt::Debug>(what: &str, mut probe: impl FnMut() -> T, check: impl Fn(&T) -> bool) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let seen = probe();
        if check(&seen) {
            return seen;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: still {seen:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn holders(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

/// The events on network `name`, as (reason, reportingInstance, note).
fn events_on(server: &FakeApiServer, name: &str) -> Vec<(String, String, String)> {
    server
        .objects_json("events.k8s.io/v1", "Event")
        .into_iter()
        .filter(|e| e["regarding"]["name"] == name)
        .map(|e: Value| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            (text(&e["reason"]), text(&e["reportingInstance"]), text(&e["note"]))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn networks_drive_the_nodes_host_interfaces() {
    let server = FakeApiServer::with_danm_kinds();
    server.register(ResourceType::namespaced("events.k8s.io", "v1", "events", "Event"));
    let client = server.client();
    let mut node = Node::default();
    node.metadata.name = Some("node-1".into());
    Api::<Node>::all(client.clone()).create(&PostParams::default(), &node).await.unwrap();

    let node1 = Node1::default();
    node1.fake.set_host_devices(["eth0", "eth1"]);
    let danmnets: Api<DanmNet> = Api::namespaced(client.clone(), "default");
    let clusternets: Api<ClusterNetwork> = Api::all(client.clone());
    let pp = PostParams::default();
    danmnets.create(&pp, &DanmNet::new("a", spec("foo", None, Some(10)))).await.unwrap();
    danmnets.create(&pp, &DanmNet::new("b", spec("foo", None, Some(10)))).await.unwrap();
    clusternets.create(&pp, &ClusterNetwork::new("ext", spec("ext", Some(100), None))).await.unwrap();

    let config =
        Config { resync: Duration::from_millis(300), retry: Duration::from_millis(50), ..Config::new("node-1") };
    let start = |telemetry: Arc<Telemetry>| {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let run = netwatcher::run(client.clone(), node1.clone(), config.clone(), Some(telemetry), async {
            let _ = stopped.await;
        });
        (stop, tokio::spawn(run))
    };
    let telemetry = Telemetry::new("netwatcher");
    let (stop, controller) = start(telemetry.clone());

    // Two networks share vx_foo; the ClusterNetwork has its VLAN.
    let fake = node1.fake.clone();
    let expected: BTreeMap<String, BTreeSet<String>> = [
        ("ext.100".to_owned(), holders(&["ClusterNetwork/ext"])),
        ("vx_foo".to_owned(), holders(&["DanmNet/default/a", "DanmNet/default/b"])),
    ]
    .into();
    eventually("both interfaces", || fake.host_interfaces(), |h| *h == expected).await;
    eventually("ready events", || events_on(&server, "a"), |e| !e.is_empty()).await;
    let events = events_on(&server, "a");
    assert_eq!(events.len(), 1, "one event per change, not per pass: {events:?}");
    assert_eq!(events[0].0, netwatcher::REASON_READY);
    assert_eq!(events[0].1, "node-1");
    assert!(events[0].2.contains("vx_foo") && events[0].2.contains("node-1"), "{events:?}");
    eventually("cluster network event", || events_on(&server, "ext"), |e| !e.is_empty()).await;
    eventually("ready", || telemetry.is_ready(), |r| *r).await;

    // A restarted netwatcher finds everything in place: it changes nothing and announces nothing.
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), controller).await.expect("shutdown in time").unwrap();
    let calls = fake.calls().len();
    let telemetry = Telemetry::new("netwatcher");
    let (stop, controller) = start(telemetry.clone());
    let passes = "danm_reconcile_total{component=\"netwatcher\",controller=\"netwatcher\"} 3";
    eventually("three passes", || telemetry.encode(), |m| m.contains(passes)).await;
    assert_eq!(fake.host_interfaces(), expected);
    let changes = fake.calls()[calls..].iter().filter(|c| !matches!(c, ProvisionCall::ScanHosts)).count();
    assert_eq!(changes, 0, "{:?}", &fake.calls()[calls..]);
    assert_eq!(events_on(&server, "a").len(), 1);

    // One of the two sharing networks deleted: the interface stays for the other.
    danmnets.delete("a", &DeleteParams::default()).await.unwrap();
    eventually("a released", || fake.host_interfaces()["vx_foo"].clone(), |h| *h == holders(&["DanmNet/default/b"]))
        .await;

    // Deleted behind netwatcher's back: back on the next resync.
    fake.remove_host_behind_the_back("ext.100");
    eventually("ext.100 back", || fake.host_interfaces().contains_key("ext.100"), |b| *b).await;

    // The VNI changed: recreated with the new one.
    let patch = json!({"spec": {"Options": {"vxlan": 11}}});
    danmnets.patch("b", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    eventually(
        "vx_foo recreated",
        || fake.host("vx_foo").and_then(|h| h.kind),
        |k| *k == Some(HostLinkKind::Vxlan(11)),
    )
    .await;

    // A network wanting vx_foo with another VNI conflicts; one with an impossible VLAN is invalid.
    danmnets.create(&pp, &DanmNet::new("c", spec("foo", None, Some(99)))).await.unwrap();
    danmnets.create(&pp, &DanmNet::new("d", spec("bad", Some(5000), None))).await.unwrap();
    let conflict = eventually("conflict event", || events_on(&server, "c"), |e| !e.is_empty()).await;
    assert_eq!(conflict[0].0, netwatcher::REASON_CONFLICT);
    assert!(conflict[0].2.contains("DanmNet/default/b"), "{conflict:?}");
    let invalid = eventually("invalid event", || events_on(&server, "d"), |e| !e.is_empty()).await;
    assert_eq!(invalid[0].0, netwatcher::REASON_INVALID);
    assert!(invalid[0].2.contains("spec.Options.vlan"), "{invalid:?}");

    // A host interface that cannot be made: a warning, retried, and ready once it can.
    node1.failing.lock().unwrap().insert("up.7".into());
    danmnets.create(&pp, &DanmNet::new("e", spec("up", Some(7), None))).await.unwrap();
    let failed = eventually("failed event", || events_on(&server, "e"), |e| !e.is_empty()).await;
    assert_eq!(failed[0].0, netwatcher::REASON_FAILED);
    assert!(failed[0].2.contains("the switch port is down"), "{failed:?}");
    node1.failing.lock().unwrap().clear();
    eventually("up.7 made on retry", || fake.host_interfaces().contains_key("up.7"), |b| *b).await;
    eventually("ready after failed", || events_on(&server, "e"), |e| e.iter().any(|e| e.0 == netwatcher::REASON_READY))
        .await;

    // The last networks deleted: their interfaces go.
    for name in ["b", "c", "d", "e"] {
        danmnets.delete(name, &DeleteParams::default()).await.unwrap();
    }
    clusternets.delete("ext", &DeleteParams::default()).await.unwrap();
    eventually("all gone", || fake.host_interfaces(), |h| h.is_empty()).await;

    let metrics = telemetry.encode();
    for needle in [
        "danm_reconcile_total{component=\"netwatcher\",controller=\"netwatcher\"}",
        "danm_netwatcher_steps_total{component=\"netwatcher\",step=\"recreate\",result=\"ok\"} 1",
        "danm_netwatcher_steps_total{component=\"netwatcher\",step=\"create\",result=\"error\"}",
        "danm_netwatcher_networks{component=\"netwatcher\",state=\"ready\"} 0",
        "danm_netwatcher_host_interfaces{component=\"netwatcher\"} 0",
    ] {
        assert!(metrics.contains(needle), "{needle} not in\n{metrics}");
    }

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), controller).await.expect("shutdown in time").unwrap();
}

fn nad(name: &str, config: &str) -> NetworkAttachmentDefinition {
    let mut nad = NetworkAttachmentDefinition::new(name, config);
    nad.metadata.namespace = Some("default".into());
    nad
}

/// The `spec.config` and the two annotations of NetworkAttachmentDefinition `name`.
fn nad_state(server: &FakeApiServer, name: &str) -> (String, Option<String>, Option<String>) {
    let nad: NetworkAttachmentDefinition = server.object("default", name).expect("the object");
    let annotation = |key: &str| nad.metadata.annotations.as_ref().and_then(|a| a.get(key).cloned());
    (nad.spec.config.clone(), annotation(HOST_DEVICE_ANNOTATION), annotation(HOST_INTERFACE_ANNOTATION))
}

fn node(name: &str) -> Node {
    let mut node = Node::default();
    node.metadata.name = Some(name.into());
    node
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_get_host_interfaces_and_their_master_points_at_them() {
    let server = FakeApiServer::with_danm_kinds();
    server.register(ResourceType::namespaced("events.k8s.io", "v1", "events", "Event"));
    server.register(ResourceType::of::<NetworkAttachmentDefinition>());
    let client = server.client();
    let pp = PostParams::default();
    for name in ["node-1", "node-2"] {
        Api::<Node>::all(client.clone()).create(&pp, &node(name)).await.unwrap();
    }
    let danmnets: Api<DanmNet> = Api::namespaced(client.clone(), "default");
    let nads: Api<NetworkAttachmentDefinition> = Api::namespaced(client.clone(), "default");
    danmnets.create(&pp, &DanmNet::new("a", spec("ext", Some(100), None))).await.unwrap();
    let macvlan = r#"{"cniVersion":"0.3.1","name":"ext","type":"macvlan","master":"eth1","vlan":100,"ipam":{"type":"host-local","subnet":"10.1.0.0/24"}}"#;
    let conflist = r#"{"cniVersion":"0.3.1","name":"l","plugins":[{"type":"macvlan","master":"eth1","vlan":5}]}"#;
    let elsewhere = r#"{"name":"far","type":"macvlan","master":"eth9","vlan":5}"#;
    nads.create(&pp, &nad("m", macvlan)).await.unwrap();
    nads.create(&pp, &nad("vx", r#"{"name":"ov","type":"ipvlan","master":"eth1","vxlan":42}"#)).await.unwrap();
    nads.create(&pp, &nad("list", conflist)).await.unwrap();
    nads.create(&pp, &nad("far", elsewhere)).await.unwrap();
    nads.create(&pp, &nad("bad", r#"{"name":"bad","type":"macvlan","master":"eth1","vlan":5000}"#)).await.unwrap();
    // The first two writes of the rewrite conflict: it reads again and tries again.
    server.inject(Fault::status(409).method("PUT").path_contains("/network-attachment-definitions/m").times(2));

    // Two nodes with eth1: both make the interfaces, both may rewrite, and they agree.
    let mut running = Vec::new();
    let mut provisioners = Vec::new();
    for name in ["node-1", "node-2"] {
        let provisioner = Node1::default();
        provisioner.fake.set_host_devices(["eth0", "eth1"]);
        let config =
            Config { resync: Duration::from_millis(300), retry: Duration::from_millis(50), ..Config::new(name) };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let run = netwatcher::run(client.clone(), provisioner.clone(), config, None, async {
            let _ = stopped.await;
        });
        running.push((stop, tokio::spawn(run)));
        provisioners.push(provisioner);
    }
    let fake = provisioners[0].fake.clone();
    let expected: BTreeMap<String, BTreeSet<String>> = [
        ("ext.100".to_owned(), holders(&["DanmNet/default/a", "NetworkAttachmentDefinition/default/m"])),
        ("vx_ov".to_owned(), holders(&["NetworkAttachmentDefinition/default/vx"])),
    ]
    .into();
    eventually("the interfaces", || fake.host_interfaces(), |h| *h == expected).await;
    eventually("on node-2 too", || provisioners[1].fake.host_interfaces(), |h| *h == expected).await;

    // master names the interface; every other byte of the config is as it was; the parent is recorded.
    let rewritten = macvlan.replace(r#""master":"eth1""#, r#""master":"ext.100""#);
    let want = (rewritten, Some("eth1".to_owned()), Some("ext.100".to_owned()));
    eventually("m rewritten", || nad_state(&server, "m"), |s| *s == want).await;
    let puts = server.take_requests().into_iter().filter(|r| r.method == "PUT" && r.path.ends_with("/m")).count();
    assert!(puts >= 3, "two conflicts, then the write: {puts} PUTs");
    let vx = eventually("vx rewritten", || nad_state(&server, "vx"), |s| s.2.is_some()).await;
    assert!(vx.0.contains(r#""master":"vx_ov""#), "{vx:?}");
    // Not netwatcher's business, or not on these nodes: left as they are.
    assert_eq!(nad_state(&server, "list"), (conflist.to_owned(), None, None));
    assert_eq!(nad_state(&server, "far"), (elsewhere.to_owned(), None, None));
    let invalid = eventually("invalid event", || events_on(&server, "bad"), |e| !e.is_empty()).await;
    assert_eq!(invalid[0].0, netwatcher::REASON_INVALID);
    assert!(invalid[0].2.contains("spec.config vlan"), "{invalid:?}");

    // Further passes change nothing: no step, no write.
    let version = server.object::<NetworkAttachmentDefinition>("default", "m").unwrap().metadata.resource_version;
    let calls = fake.calls().len();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let changes = fake.calls()[calls..].iter().filter(|c| !matches!(c, ProvisionCall::ScanHosts)).count();
    assert_eq!(changes, 0, "{:?}", &fake.calls()[calls..]);
    let now = server.object::<NetworkAttachmentDefinition>("default", "m").unwrap().metadata.resource_version;
    assert_eq!(now, version);

    // The network goes: the VLAN stays for the attachment. The attachment goes: so does the VLAN.
    danmnets.delete("a", &DeleteParams::default()).await.unwrap();
    let nad_only = holders(&["NetworkAttachmentDefinition/default/m"]);
    eventually("a released", || fake.host_interfaces().get("ext.100").cloned(), |h| *h == Some(nad_only.clone())).await;
    nads.delete("m", &DeleteParams::default()).await.unwrap();
    nads.delete("vx", &DeleteParams::default()).await.unwrap();
    eventually("all gone", || fake.host_interfaces(), |h| h.is_empty()).await;
    eventually("all gone on node-2", || provisioners[1].fake.host_interfaces(), |h| h.is_empty()).await;

    for (stop, controller) in running {
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), controller).await.expect("shutdown in time").unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_attachment_api_or_with_nad_mode_off_networks_are_served_alone() {
    // No NetworkAttachmentDefinition CRD on this server: its list is a 404.
    let server = FakeApiServer::with_danm_kinds();
    let client = server.client();
    let pp = PostParams::default();
    Api::<Node>::all(client.clone()).create(&pp, &node("node-1")).await.unwrap();
    let danmnets: Api<DanmNet> = Api::namespaced(client.clone(), "default");
    danmnets.create(&pp, &DanmNet::new("a", spec("ext", Some(100), None))).await.unwrap();
    let provisioner = Node1::default();
    provisioner.fake.set_host_devices(["eth1"]);
    let config =
        Config { resync: Duration::from_millis(300), retry: Duration::from_millis(50), ..Config::new("node-1") };
    let telemetry = Telemetry::new("netwatcher");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = netwatcher::run(client.clone(), provisioner.clone(), config.clone(), Some(telemetry.clone()), async {
        let _ = stopped.await;
    });
    let controller = tokio::spawn(run);
    let fake = provisioner.fake.clone();
    eventually("ext.100", || fake.host_interfaces().contains_key("ext.100"), |b| *b).await;
    eventually("ready", || telemetry.is_ready(), |r| *r).await;
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), controller).await.expect("shutdown in time").unwrap();

    // NAD mode off: the kind is served, but neither listed nor watched.
    server.register(ResourceType::of::<NetworkAttachmentDefinition>());
    let nads: Api<NetworkAttachmentDefinition> = Api::namespaced(client.clone(), "default");
    nads.create(&pp, &nad("vx", r#"{"name":"ov","type":"ipvlan","master":"eth1","vxlan":42}"#)).await.unwrap();
    server.take_requests();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = Config { attachments: false, ..config };
    let controller = tokio::spawn(netwatcher::run(client.clone(), provisioner.clone(), config, None, async {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!fake.host_interfaces().contains_key("vx_ov"));
    assert!(server.take_requests().iter().all(|r| !r.path.contains("network-attachment-definitions")));
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), controller).await.expect("shutdown in time").unwrap();
}

//! netwatcher end to end against the in-process fake API server: networks added, changed and deleted
//! drive the host interfaces of a recording provisioner; drift is repaired on resync; per-node state
//! shows up as Events on the networks; metrics; shutdown.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use danm_core::model::{NetworkOptions, NetworkSpec};
use danm_core::provision::{
    CreatedInterface, HostInterface, HostInventory, HostLinkKind, HostScan, InterfaceProvisioner, InterfaceSetup,
    LinkState, PodInterface, ProvisionCall, ProvisionError, RecordingProvisioner, Removal,
};
use danm_k8s::netwatcher::{self, Config};
use danm_k8s::runtime::Telemetry;
use danm_k8s::testing::{FakeApiServer, ResourceType};
use danm_k8s::{ClusterNetwork, DanmNet};
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

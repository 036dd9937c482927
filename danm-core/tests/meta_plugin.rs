//! The meta-plugin end to end over the in-memory store, the recording provisioner and scripted
//! delegates: happy paths, every rejection, and a fault matrix after which nothing may be left behind.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use danm_core::cni::ErrorCode;
use danm_core::delegate::{CniCommand, Scripted, ScriptedExecutor};
use danm_core::device::{DeviceError, FixedDeviceSource, PodDevices};
use danm_core::ipam::{Family, PoolKey};
use danm_core::meta::{MetaConfig, MetaError, MetaPlugin, PHASE_ANNOTATION, PodContext, codes};
use danm_core::model::{DanmEp, Network, NetworkKind, NetworkOptions, NetworkSpec, ObjectMeta, PodRecord};
use danm_core::pod::{NETWORK_STATUS_ANNOTATION, parse_network_status};
use danm_core::provision::{InterfaceSetup, Ipv6Mode, PolicyRouting, ProvisionCall, RecordingProvisioner, Route};
use danm_core::retry::{BoxFuture, Sleeper};
use danm_core::store::{Datastore, DatastoreExt, EndpointQuery, MemoryStore, Object, Query};

#[derive(Debug)]
struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(d))
    }
}

type Plugin = MetaPlugin<MemoryStore, Arc<RecordingProvisioner>, Arc<ScriptedExecutor>>;

struct World {
    plugin: Plugin,
    provisioner: Arc<RecordingProvisioner>,
    delegates: Arc<ScriptedExecutor>,
}

fn network(kind: NetworkKind, ns: Option<&str>, name: &str, ty: &str, o: NetworkOptions) -> Network {
    let spec = NetworkSpec { network_id: name.into(), network_type: ty.into(), options: o, ..NetworkSpec::default() };
    Network::new(kind, ObjectMeta::new(name, ns), spec)
}

fn opts(cidr: &str, net6: &str) -> NetworkOptions {
    NetworkOptions { host_device: "br0".into(), cidr: cidr.into(), net6: net6.into(), ..NetworkOptions::default() }
}

fn world(timeout_ms: u64) -> World {
    let store = Arc::new(MemoryStore::new());
    let provisioner = Arc::new(RecordingProvisioner::new());
    let delegates = Arc::new(ScriptedExecutor::new());
    delegates.set_config(
        "flan",
        "/etc/cni/net.d/flan.conf",
        r#"{"cniVersion":"0.4.0","name":"flan","type":"flannel"}"#,
    );
    delegates.set_config(
        "brnet",
        "/etc/cni/net.d/brnet.conflist",
        r#"{"cniVersion":"1.0.0","name":"brnet","plugins":[{"type":"bridge","bridge":"br9","ipam":{"type":"host-local"}},{"type":"tuning"}]}"#,
    );
    let config =
        MetaConfig { host: "node-1".into(), timeout: Duration::from_millis(timeout_ms), ..MetaConfig::default() };
    let plugin = MetaPlugin::new(store, provisioner.clone(), delegates.clone(), Arc::new(TokioSleeper), config);
    let w = World { plugin, provisioner, delegates };
    let nets = [
        network(NetworkKind::DanmNet, Some("ns"), "mac", "macvlan", opts("10.1.0.0/24", "")),
        network(NetworkKind::DanmNet, Some("ns"), "ipv", "", opts("10.2.0.0/24", "fd00:2::/64")),
        network(NetworkKind::DanmNet, Some("ns"), "flan", "flannel", NetworkOptions::default()),
        network(NetworkKind::DanmNet, Some("ns"), "brnet", "bridge", opts("10.3.0.0/24", "")),
        network(NetworkKind::DanmNet, Some("ns"), "l2", "macvlan", opts("", "")),
        network(NetworkKind::DanmNet, Some("ns"), "tiny", "macvlan", opts("10.4.0.0/30", "")),
        network(NetworkKind::DanmNet, Some("other"), "theirs", "macvlan", opts("10.5.0.0/24", "")),
        network(NetworkKind::ClusterNetwork, None, "restricted", "macvlan", opts("10.6.0.0/24", "")),
    ];
    for mut n in nets {
        if n.metadata.name == "restricted" {
            n.spec.allowed_tenants = vec!["someone-else".into()];
        }
        put(&w, Object::Network(n));
    }
    w
}

fn put(w: &World, o: Object) {
    futures::executor::block_on(w.plugin.store().create(&o)).unwrap();
}

fn pod(w: &World, name: &str, annotation: Option<&str>) -> PodContext {
    let mut meta = ObjectMeta::new(name, Some("ns"));
    meta.uid = Some(format!("uid-{name}"));
    meta.labels.insert("app".into(), name.into());
    if let Some(a) = annotation {
        meta.annotations.insert("danm.k8s.io/interfaces".into(), a.into());
    }
    put(w, Object::Pod(PodRecord { metadata: meta, ..PodRecord::default() }));
    ctx(name)
}

fn ctx(name: &str) -> PodContext {
    PodContext {
        container_id: format!("cid-{name}"),
        netns: Some(PathBuf::from(format!("/var/run/netns/{name}"))),
        namespace: "ns".into(),
        name: name.into(),
        uid: Some(format!("uid-{name}")),
        args: String::new(),
    }
}

async fn endpoints(w: &World) -> Vec<DanmEp> {
    w.plugin
        .store()
        .list_as::<DanmEp>(&Query::Endpoints(EndpointQuery::default()))
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.value)
        .collect()
}

/// Addresses held in every pool of every network.
async fn allocations(w: &World) -> usize {
    let nets = w.plugin.store().list_as::<Network>(&Query::Networks { kind: None, namespace: None }).await.unwrap();
    let mut n = 0;
    for net in nets {
        for f in [Family::V4, Family::V6] {
            for b in w.plugin.store().list(&Query::Blocks(PoolKey::new(net.value.key(), f))).await.unwrap() {
                if let Object::Block { block, .. } = b.value {
                    n += block.len();
                }
            }
        }
    }
    n
}

/// Nothing left: no address, no DanmEp, no interface, no live delegate attachment.
async fn assert_clean(w: &World) {
    assert_eq!(allocations(w).await, 0, "addresses left allocated");
    assert!(endpoints(w).await.is_empty(), "DanmEps left behind");
    assert!(w.provisioner.pod_interfaces().is_empty(), "interfaces left behind: {:?}", w.provisioner.pod_interfaces());
    assert!(w.delegates.live().is_empty(), "delegate attachments left behind: {:?}", w.delegates.live());
}

fn code(e: &MetaError) -> ErrorCode {
    e.code()
}

#[tokio::test]
async fn add_check_del_with_builtin_and_delegated_interfaces() {
    let w = world(2_000);
    // The bridge plugin lists its host-side interfaces first; the pod's is the one with a sandbox.
    let bridge = r#"{"cniVersion":"1.0.0","interfaces":[{"name":"br9","mac":"02:00:00:00:0b:09"},{"name":"eth2","mac":"02:00:00:00:00:e2","sandbox":"/var/run/netns/p1"}],"ips":[{"address":"10.3.0.1/24","interface":1}]}"#;
    w.delegates.script("bridge", Scripted::Succeed(bridge.into()));
    w.delegates.script("tuning", Scripted::Succeed(bridge.into()));
    let flannel = r#"{"cniVersion":"0.4.0","interfaces":[{"name":"eth3","sandbox":"/var/run/netns/p1"}],"ips":[{"version":"4","address":"10.244.1.5/24","interface":0}]}"#;
    w.delegates.script("flannel", Scripted::Succeed(flannel.into()));
    let c = pod(
        &w,
        "p1",
        Some(
            r#"[{"network":"mac","ip":"dynamic"},{"network":"ipv","ip":"10.2.0.9","ip6":"dynamic"},{"network":"brnet","ip":"dynamic"},{"network":"flan"}]"#,
        ),
    );
    let result = w.plugin.add(&c).await.unwrap();
    let names: Vec<_> = result.interfaces.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["eth0", "eth1", "br9", "eth2", "eth3"], "eth0 first, then the annotation's order");
    let ips: Vec<_> = result.ips.iter().map(|i| (i.address.to_string(), i.interface)).collect();
    assert_eq!(
        ips[..3],
        [("10.1.0.1/24".into(), Some(0)), ("10.2.0.9/24".into(), Some(1)), ("fd00:2::1/64".into(), Some(1))]
    );

    // The bridge delegate got DANM's address through fakeipam; flannel (no subnet) kept its own IPAM.
    let calls = w.delegates.calls();
    let bridge_add = calls.iter().find(|c| c.plugin == "bridge" && c.command == CniCommand::Add).unwrap();
    let stdin: serde_json::Value = serde_json::from_slice(&bridge_add.stdin).unwrap();
    assert_eq!(stdin["ipam"], serde_json::json!({"type":"fakeipam","ips":[{"ipcidr":"10.3.0.1/24","version":4}]}));
    assert_eq!(bridge_add.ifname, "eth2");
    let tuning_add = calls.iter().find(|c| c.plugin == "tuning").unwrap();
    assert!(serde_json::from_slice::<serde_json::Value>(&tuning_add.stdin).unwrap().get("prevResult").is_some());
    let flannel_add = calls.iter().find(|c| c.plugin == "flannel").unwrap();
    assert!(serde_json::from_slice::<serde_json::Value>(&flannel_add.stdin).unwrap().get("ipam").is_none());

    let eps = endpoints(&w).await;
    assert_eq!(eps.len(), 4);
    for ep in &eps {
        assert!(!ep.metadata.annotations.contains_key(PHASE_ANNOTATION));
        assert_eq!(ep.metadata.labels.get("app").map(String::as_str), Some("p1"), "pod labels copied");
        assert_eq!(ep.spec.host, "node-1");
    }
    let eth1 = eps.iter().find(|e| e.spec.interface.name == "eth1").unwrap();
    let eth2 = eps.iter().find(|e| e.spec.interface.name == "eth2").unwrap();
    assert_eq!(eth2.spec.interface.mac_address, "02:00:00:00:00:e2", "the pod-side MAC, not the bridge's");
    let eth3 = eps.iter().find(|e| e.spec.interface.name == "eth3").unwrap();
    assert_eq!(eth3.spec.interface.address, "10.244.1.5/24", "a delegate's own address is recorded");
    assert_eq!(
        (eth1.spec.interface.address.as_str(), eth1.spec.interface.address_ipv6.as_str()),
        ("10.2.0.9/24", "fd00:2::1/64")
    );
    assert_eq!(allocations(&w).await, 4);

    // The pod's network-status annotation: one entry per interface, the pod's side of each.
    let key = danm_core::store::ObjectKey::Pod { namespace: "ns".into(), name: "p1".into() };
    let record = w.plugin.store().get_as::<PodRecord>(&key).await.unwrap().unwrap().value;
    let status = parse_network_status(&record.metadata.annotations[NETWORK_STATUS_ANNOTATION]).unwrap();
    let seen: Vec<_> = status.iter().map(|s| (s.name.as_str(), s.interface.as_str(), s.default, s.ips.len())).collect();
    assert_eq!(
        seen,
        [
            ("ns/mac", "eth0", true, 1),
            ("ns/ipv", "eth1", false, 2),
            ("ns/brnet", "eth2", false, 1),
            ("ns/flan", "eth3", false, 1)
        ]
    );
    assert_eq!(status[2].mac, "02:00:00:00:00:e2", "the pod-side MAC, not the bridge's");
    assert_eq!(status[3].ips, ["10.244.1.5".parse::<std::net::IpAddr>().unwrap()]);
    assert_eq!(record.metadata.labels.get("app").map(String::as_str), Some("p1"), "the rest of the pod is kept");

    w.plugin.del(&c).await.unwrap();
    assert_clean(&w).await;
    w.plugin.del(&c).await.unwrap();
    let mut no_netns = c.clone();
    no_netns.netns = None;
    w.plugin.del(&no_netns).await.unwrap();
    assert!(w.plugin.status().await.is_ok());
}

#[tokio::test]
async fn check_reads_the_interfaces_back() {
    let w = world(2_000);
    let c = pod(&w, "p", Some(r#"[{"network":"mac","ip":"dynamic"},{"network":"ipv","ip6":"dynamic"}]"#));
    assert_eq!(code(&w.plugin.check(&c).await.unwrap_err()), codes::CHECK_FAILED, "CHECK before ADD");
    w.plugin.add(&c).await.unwrap();
    w.plugin.check(&c).await.unwrap();
    w.provisioner.remove_behind_the_back(c.netns.as_deref().unwrap(), "eth1");
    let err = w.plugin.check(&c).await.unwrap_err();
    assert_eq!(code(&err), codes::CHECK_FAILED, "{err}");
    assert!(err.to_string().contains("eth1"), "{err}");
    w.plugin.del(&c).await.unwrap();
    assert_clean(&w).await;
}

#[tokio::test]
async fn pods_without_an_annotation_get_the_default_network() {
    let w = world(2_000);
    let c = pod(&w, "p", None);
    let err = w.plugin.add(&c).await.unwrap_err();
    assert_eq!(code(&err), codes::NETWORK_NOT_FOUND);
    assert!(err.to_string().contains("default"), "{err}");
    put(&w, Object::Network(network(NetworkKind::ClusterNetwork, None, "default", "ipvlan", opts("10.9.0.0/24", ""))));
    let r = w.plugin.add(&c).await.unwrap();
    assert_eq!(r.ips[0].address.to_string(), "10.9.0.1/24");
    w.plugin.del(&c).await.unwrap();
    assert_clean(&w).await;
}

#[tokio::test]
async fn every_rejection_names_its_field_and_changes_nothing() {
    let cases: &[(&str, &str, ErrorCode, &str)] = &[
        ("unknown", r#"[{"network":"nope"}]"#, codes::NETWORK_NOT_FOUND, "nope"),
        ("other-ns", r#"[{"network":"theirs"}]"#, codes::NETWORK_NOT_FOUND, "namespace other"),
        ("allowed", r#"[{"clusterNetwork":"restricted","ip":"dynamic"}]"#, codes::ACCESS_DENIED, "AllowedTenants"),
        ("two-selectors", r#"[{"network":"mac","tenantNetwork":"x"}]"#, codes::BAD_ANNOTATION, "interfaces[0]"),
        ("unknown-key", r#"[{"network":"mac","color":"red"}]"#, codes::BAD_ANNOTATION, "color"),
        ("malformed", r#"[{"network":"#, codes::BAD_ANNOTATION, "danm.k8s.io/interfaces"),
        ("outside", r#"[{"network":"mac","ip":"10.99.0.1"}]"#, codes::ADDRESS_REJECTED, "ip"),
        ("reserved", r#"[{"network":"mac","ip":"10.1.0.0"}]"#, codes::ADDRESS_REJECTED, "reserved"),
        ("l2-dynamic", r#"[{"network":"l2","ip":"dynamic"}]"#, codes::ADDRESS_REJECTED, "spec.Options.cidr"),
        ("v6-on-v4", r#"[{"network":"mac","ip6":"dynamic"}]"#, codes::ADDRESS_REJECTED, "spec.Options.net6"),
        (
            "second-fails",
            r#"[{"network":"mac","ip":"dynamic"},{"network":"mac","ip":"10.99.0.1"}]"#,
            codes::ADDRESS_REJECTED,
            "eth1",
        ),
    ];
    for (name, annotation, want, needle) in cases {
        let w = world(2_000);
        let c = pod(&w, name, Some(annotation));
        let err = w.plugin.add(&c).await.unwrap_err();
        assert_eq!(code(&err), *want, "{name}: {err}");
        assert!(err.to_string().contains(needle), "{name}: `{err}` does not mention {needle}");
        assert_clean(&w).await;
    }
}

#[tokio::test]
async fn address_conflicts_and_exhaustion_are_reported() {
    let w = world(2_000);
    let a = pod(&w, "a", Some(r#"[{"network":"tiny","ip":"10.4.0.1"}]"#));
    w.plugin.add(&a).await.unwrap();
    let b = pod(&w, "b", Some(r#"[{"network":"tiny","ip":"10.4.0.1"}]"#));
    assert_eq!(code(&w.plugin.add(&b).await.unwrap_err()), codes::ADDRESS_REJECTED);
    let c = pod(&w, "c", Some(r#"[{"network":"tiny","ip":"dynamic"}]"#));
    w.plugin.add(&c).await.unwrap();
    let d = pod(&w, "d", Some(r#"[{"network":"tiny","ip":"dynamic"}]"#));
    let err = w.plugin.add(&d).await.unwrap_err();
    assert_eq!(code(&err), codes::POOL_EXHAUSTED, "{err}");
    for p in [&a, &b, &c, &d] {
        w.plugin.del(p).await.unwrap();
    }
    assert_clean(&w).await;
}

#[tokio::test]
async fn pods_are_checked_against_the_store() {
    let w = world(2_000);
    let missing = ctx("ghost");
    assert_eq!(code(&w.plugin.add(&missing).await.unwrap_err()), codes::POD_NOT_FOUND);
    let mut replaced = pod(&w, "p", Some(r#"[{"network":"mac"}]"#));
    replaced.uid = Some("another-uid".into());
    let err = w.plugin.add(&replaced).await.unwrap_err();
    assert_eq!(code(&err), codes::POD_NOT_FOUND);
    assert!(err.to_string().contains("replaced"), "{err}");
    let mut path = network(NetworkKind::DanmNet, Some("ns"), "evil", "../../bin/sh", NetworkOptions::default());
    path.spec.network_id = "evil".into();
    put(&w, Object::Network(path));
    let e = pod(&w, "e", Some(r#"[{"network":"evil"}]"#));
    let err = w.plugin.add(&e).await.unwrap_err();
    assert_eq!(code(&err), codes::INVALID_NETWORK);
    assert!(err.to_string().contains("spec.NetworkType"), "{err}");
    assert_clean(&w).await;
}

const THREE: &str = r#"[{"network":"mac","ip":"dynamic"},{"network":"brnet","ip":"dynamic"},{"network":"flan"}]"#;

#[tokio::test]
async fn fault_matrix_leaves_nothing_behind() {
    // A delegate that fails, crashes or hangs past the budget, at each position.
    for (plugin, fault, want) in [
        ("bridge", Scripted::Fail("no bridge".into()), codes::DELEGATE_FAILED),
        ("tuning", Scripted::Crash, codes::DELEGATE_FAILED),
        ("flannel", Scripted::Hang, codes::TIMEOUT),
        ("bridge", Scripted::Hang, codes::TIMEOUT),
    ] {
        let w = world(300);
        w.delegates.script(plugin, fault.clone());
        let c = pod(&w, "p", Some(THREE));
        let err = w.plugin.add(&c).await.unwrap_err();
        assert_eq!(code(&err), want, "{plugin} {fault:?}: {err}");
        assert_clean(&w).await;
    }
    // The provisioner failing on its first call.
    let w = world(2_000);
    w.provisioner.fail_on_call(0);
    let c = pod(&w, "p", Some(THREE));
    let err = w.plugin.add(&c).await.unwrap_err();
    assert_eq!(code(&err), codes::PROVISION_FAILED, "{err}");
    assert_clean(&w).await;
}

#[tokio::test]
async fn a_killed_add_is_undone_by_del_or_by_gc() {
    for use_gc in [false, true] {
        let w = world(60_000);
        w.delegates.script("flannel", Scripted::Hang);
        let c = pod(&w, "p", Some(THREE));
        // The process dies while flannel hangs: the ADD future is simply dropped half-way.
        let killed = tokio::time::timeout(Duration::from_millis(200), w.plugin.add(&c)).await;
        assert!(killed.is_err());
        let eps = endpoints(&w).await;
        assert_eq!(eps.len(), 3);
        assert!(eps.iter().all(|e| e.metadata.annotations.contains_key(PHASE_ANNOTATION)));
        assert!(allocations(&w).await >= 2, "the crash left addresses allocated");
        if use_gc {
            let removed = w.plugin.gc(&[]).await.unwrap();
            assert_eq!(removed.len(), 3);
        } else {
            w.plugin.del(&c).await.unwrap();
        }
        // The built-in interface left by the dead process is still in the recording provisioner's
        // kernel: DEL removed it by name.
        assert_clean(&w).await;
    }
}

#[tokio::test]
async fn gc_keeps_valid_attachments() {
    let w = world(2_000);
    let a = pod(&w, "a", Some(r#"[{"network":"mac","ip":"dynamic"}]"#));
    let b = pod(&w, "b", Some(r#"[{"network":"mac","ip":"dynamic"}]"#));
    w.plugin.add(&a).await.unwrap();
    w.plugin.add(&b).await.unwrap();
    let valid = [danm_core::cni::Attachment { container_id: a.container_id.clone(), ifname: "eth0".into() }];
    let removed = w.plugin.gc(&valid).await.unwrap();
    assert_eq!(removed.len(), 1);
    let eps = endpoints(&w).await;
    assert_eq!(eps.iter().map(|e| e.spec.cid.as_str()).collect::<Vec<_>>(), ["cid-a"]);
    w.plugin.del(&a).await.unwrap();
    assert_clean(&w).await;
}

/// A store whose block writes lose the compare-and-swap race while `losses` is positive: every such
/// write is answered with a `Conflict`, as when other nodes keep winning.
#[derive(Debug, Default)]
struct Contended {
    inner: MemoryStore,
    losses: std::sync::atomic::AtomicI64,
}

#[async_trait::async_trait]
impl Datastore for Contended {
    async fn get(
        &self,
        key: &danm_core::store::ObjectKey,
    ) -> danm_core::store::Result<Option<danm_core::store::Versioned<Object>>> {
        self.inner.get(key).await
    }
    async fn list(&self, query: &Query) -> danm_core::store::Result<Vec<danm_core::store::Versioned<Object>>> {
        self.inner.list(query).await
    }
    async fn create(&self, object: &Object) -> danm_core::store::Result<danm_core::store::Version> {
        self.lose(object)?;
        self.inner.create(object).await
    }
    async fn update(
        &self,
        object: &Object,
        expected: &danm_core::store::Version,
    ) -> danm_core::store::Result<danm_core::store::Version> {
        self.lose(object)?;
        self.inner.update(object, expected).await
    }
    async fn delete(
        &self,
        key: &danm_core::store::ObjectKey,
        expected: Option<&danm_core::store::Version>,
    ) -> danm_core::store::Result<()> {
        self.inner.delete(key, expected).await
    }
}

impl Contended {
    fn lose(&self, object: &Object) -> danm_core::store::Result<()> {
        use std::sync::atomic::Ordering;
        if matches!(object, Object::Block { .. }) && self.losses.fetch_sub(1, Ordering::SeqCst) > 0 {
            return Err(danm_core::store::StoreError::Conflict { key: object.key().to_string() });
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_store_answering_conflicts_is_retried_then_reported() {
    for (losses, succeeds) in [(5, true), (1_000_000, false)] {
        let store = Arc::new(Contended::default());
        let net = network(NetworkKind::DanmNet, Some("ns"), "mac", "macvlan", opts("10.1.0.0/24", ""));
        store.create(&Object::Network(net.clone())).await.unwrap();
        let mut meta = ObjectMeta::new("p", Some("ns"));
        meta.annotations.insert("danm.k8s.io/interfaces".into(), r#"[{"network":"mac","ip":"dynamic"}]"#.into());
        store.create(&Object::Pod(PodRecord { metadata: meta, ..PodRecord::default() })).await.unwrap();
        store.losses.store(losses, std::sync::atomic::Ordering::SeqCst);
        let provisioner = Arc::new(RecordingProvisioner::new());
        let config = MetaConfig { timeout: Duration::from_secs(30), ..MetaConfig::default() };
        let plugin = MetaPlugin::new(
            store.clone(),
            provisioner.clone(),
            ScriptedExecutor::new(),
            Arc::new(TokioSleeper),
            config,
        );
        let c = PodContext { uid: None, ..ctx("p") };
        let r = plugin.add(&c).await;
        if succeeds {
            // After lost races the allocator jumps ahead, so the address is any of the subnet's.
            let got = r.unwrap().ips[0].address;
            assert!("10.1.0.0/24".parse::<ipnet::IpNet>().unwrap().contains(&got), "{got}");
            assert!(plugin.ipam().stats().conflicts >= 5);
            let held = store.list(&Query::Blocks(PoolKey::new(net.key(), Family::V4))).await.unwrap();
            assert_eq!(held.len(), 1);
            plugin.del(&c).await.unwrap();
        } else {
            let err = r.unwrap_err();
            assert_eq!(code(&err), ErrorCode::TRY_AGAIN_LATER, "{err}");
        }
        store.losses.store(0, std::sync::atomic::Ordering::SeqCst);
        let eps = store.list(&Query::Endpoints(EndpointQuery::default())).await.unwrap();
        assert!(eps.is_empty(), "DanmEps left behind");
        let blocks = store.list(&Query::Blocks(PoolKey::new(net.key(), Family::V4))).await.unwrap();
        assert!(blocks.is_empty(), "addresses left allocated");
        assert!(provisioner.pod_interfaces().is_empty());
    }
}

#[tokio::test]
async fn sriov_gets_a_generated_config_with_the_pods_device() {
    let w = world(2_000);
    let mut o = NetworkOptions { cidr: "10.7.0.0/24".into(), vlan: Some(300), ..NetworkOptions::default() };
    o.device_pool = "nokia.k8s.io/sriov_ens1f0".into();
    let mut sriov = network(NetworkKind::DanmNet, Some("ns"), "fast", "sriov", o);
    sriov.spec.network_id = "fast".into();
    put(&w, Object::Network(sriov));
    let annotation = r#"[{"network":"fast","ip":"dynamic"},{"network":"fast","ip":"dynamic"}]"#;
    let mut meta = ObjectMeta::new("s", Some("ns"));
    meta.uid = Some("uid-s".into());
    meta.annotations.insert("danm.k8s.io/interfaces".into(), annotation.into());
    meta.annotations.insert(
        danm_core::meta::DEVICES_ANNOTATION.into(),
        r#"{"nokia.k8s.io/sriov_ens1f0": ["0000:01:00.2", "0000:01:00.3"]}"#.into(),
    );
    put(&w, Object::Pod(PodRecord { metadata: meta, ..PodRecord::default() }));
    let c = ctx("s");
    w.plugin.add(&c).await.unwrap();
    let adds: Vec<serde_json::Value> = w
        .delegates
        .calls()
        .iter()
        .filter(|i| i.plugin == "sriov" && i.command == CniCommand::Add)
        .map(|i| serde_json::from_slice(&i.stdin).unwrap())
        .collect();
    assert_eq!(adds.len(), 2);
    let mut devices: Vec<&str> = adds.iter().map(|a| a["deviceID"].as_str().unwrap()).collect();
    devices.sort();
    assert_eq!(devices, ["0000:01:00.2", "0000:01:00.3"], "each attachment takes its own device");
    assert!(adds.iter().all(|a| a["vlan"] == 300 && a["name"] == "fast" && a["ipam"]["type"] == "fakeipam"));
    let mut recorded: Vec<String> = endpoints(&w).await.iter().map(|e| e.spec.interface.device_id.clone()).collect();
    recorded.sort();
    assert_eq!(recorded, ["0000:01:00.2", "0000:01:00.3"], "DanmEps record their device");
    w.plugin.del(&c).await.unwrap();
    assert_clean(&w).await;

    // A third sriov attachment without a third device is refused, naming the pool.
    let mut meta = ObjectMeta::new("t", Some("ns"));
    meta.annotations.insert("danm.k8s.io/interfaces".into(), r#"[{"network":"fast","ip":"dynamic"}]"#.into());
    put(&w, Object::Pod(PodRecord { metadata: meta, ..PodRecord::default() }));
    let err = w.plugin.add(&PodContext { uid: None, ..ctx("t") }).await.unwrap_err();
    assert_eq!(code(&err), codes::DELEGATE_FAILED, "{err}");
    assert!(err.to_string().contains("nokia.k8s.io/sriov_ens1f0"), "{err}");
    assert_clean(&w).await;
}

#[tokio::test]
async fn a_replaced_sandbox_gives_its_addresses_back() {
    let w = world(2_000);
    let first = pod(&w, "p", Some(r#"[{"network":"mac","ip":"10.1.0.50"}]"#));
    w.plugin.add(&first).await.unwrap();
    // The sandbox died without a DEL; the kubelet starts another for the same pod.
    let second = PodContext { container_id: "cid-p-2".into(), ..first.clone() };
    w.plugin.add(&second).await.unwrap();
    let eps = endpoints(&w).await;
    assert_eq!(eps.len(), 1);
    assert_eq!(eps[0].spec.cid, "cid-p-2");
    assert_eq!(eps[0].spec.interface.address, "10.1.0.50/24", "the static address moved to the new sandbox");
    w.plugin.del(&second).await.unwrap();
    assert_clean(&w).await;
}

#[tokio::test]
async fn a_rollback_that_cannot_remove_an_interface_keeps_its_record_for_del() {
    let w = world(2_000);
    let taken = pod(&w, "a", Some(r#"[{"network":"tiny","ip":"10.4.0.2"}]"#));
    w.plugin.add(&taken).await.unwrap();
    let calls = w.provisioner.calls().len();
    let c = pod(&w, "p", Some(r#"[{"network":"mac","ip":"dynamic"},{"network":"tiny","ip":"10.4.0.2"}]"#));
    // Call `calls` creates eth0; the next one is the rollback's delete of eth0, which fails.
    w.provisioner.fail_on_call(calls + 1);
    let err = w.plugin.add(&c).await.unwrap_err();
    assert_eq!(code(&err), codes::ADDRESS_REJECTED, "{err}");
    let left: Vec<DanmEp> = endpoints(&w).await.into_iter().filter(|e| e.spec.cid == c.container_id).collect();
    assert_eq!(left.len(), 1, "eth0's record is kept while eth0 may exist");
    assert_eq!(w.provisioner.pod_interfaces().len(), 2, "eth0 of p and eth0 of a");
    w.plugin.del(&c).await.unwrap();
    w.plugin.del(&taken).await.unwrap();
    assert_clean(&w).await;
}

/// A static delegate (bridge) on a network with routes, routes6 and `rt_tables` 200.
fn routed_world() -> World {
    let w = world(2_000);
    w.delegates.set_config(
        "routed",
        "/etc/cni/net.d/routed.conf",
        r#"{"cniVersion":"1.0.0","name":"routed","type":"bridge","bridge":"br8","ipam":{"type":"host-local"}}"#,
    );
    let mut o = opts("10.8.0.0/24", "fd00:8::/64");
    o.routes.insert("10.80.0.0/16".into(), "10.8.0.1".into());
    o.routes6.insert("fd00:80::/64".into(), "fd00:8::1".into());
    o.rt_tables = Some(200);
    put(&w, Object::Network(network(NetworkKind::DanmNet, Some("ns"), "routed", "bridge", o)));
    w
}

fn route(dst: &str, gateway: &str) -> Route {
    Route { dst: dst.parse().unwrap(), gateway: gateway.parse().unwrap() }
}

#[tokio::test]
async fn delegated_interfaces_get_the_networks_routes_policy_routes_and_sysctls() {
    let w = routed_world();
    let flannel = r#"{"cniVersion":"1.0.0","interfaces":[{"name":"eth2","sandbox":"/var/run/netns/p"}],"ips":[{"address":"10.244.1.5/24","interface":0},{"address":"fd00:244::5/64","interface":0}]}"#;
    w.delegates.script("flannel", Scripted::Succeed(flannel.into()));
    let annotation = r#"[{"network":"mac","ip":"dynamic"},{"network":"routed","ip":"dynamic","proutes":{"10.90.0.0/16":"10.8.0.254"}},{"network":"flan"}]"#;
    let c = pod(&w, "p", Some(annotation));
    w.plugin.add(&c).await.unwrap();

    let netns = PathBuf::from("/var/run/netns/p");
    let configured = w.provisioner.configured();
    assert_eq!(configured.len(), 2, "both delegated interfaces, not the built-in one: {configured:?}");
    // DANM's IPv4 address only: the IPv4 routes, the policy route in table 200, IPv6 off.
    let routed = &configured[&(netns.clone(), "eth1".to_owned())];
    assert_eq!(
        *routed,
        InterfaceSetup {
            netns: netns.clone(),
            name: "eth1".into(),
            routes: vec![route("10.80.0.0/16", "10.8.0.1")],
            policy: Some(PolicyRouting { table: 200, routes: vec![route("10.90.0.0/16", "10.8.0.254")] }),
            ipv6: Ipv6Mode::Disabled,
        }
    );
    // flannel kept its own IPAM and gave the pod an IPv6 address: IPv6 stays on.
    let flan = &configured[&(netns.clone(), "eth2".to_owned())];
    assert_eq!((flan.routes.len(), flan.policy.is_some(), flan.ipv6), (0, false, Ipv6Mode::Enabled));

    // DEL takes the policy rules away before the delegate removes the interface.
    w.plugin.del(&c).await.unwrap();
    let calls = w.provisioner.calls();
    assert!(calls.contains(&ProvisionCall::Deconfigure(netns.clone(), "eth1".into())), "{calls:?}");
    assert!(!calls.contains(&ProvisionCall::Deconfigure(netns.clone(), "eth2".into())), "nothing to take from eth2");
    assert!(!w.provisioner.configured().contains_key(&(netns, "eth1".to_owned())));
    assert_clean(&w).await;
}

#[tokio::test]
async fn a_delegated_interface_that_cannot_be_configured_is_undone() {
    let w = routed_world();
    let c = pod(
        &w,
        "p",
        Some(r#"[{"network":"routed","ip":"dynamic","ip6":"dynamic","proutes":{"10.90.0.0/16":"10.8.0.254"}}]"#),
    );
    // Call 0 is the configuration of eth0, after the bridge delegate made it.
    w.provisioner.fail_on_call(0);
    let err = w.plugin.add(&c).await.unwrap_err();
    assert_eq!(code(&err), codes::PROVISION_FAILED, "{err}");
    let netns = PathBuf::from("/var/run/netns/p");
    assert_eq!(
        w.provisioner.calls(),
        [ProvisionCall::Configure(netns.clone(), "eth0".into()), ProvisionCall::Deconfigure(netns, "eth0".into())]
    );
    let dels = w.delegates.calls().iter().filter(|i| i.plugin == "bridge" && i.command == CniCommand::Del).count();
    assert_eq!(dels, 1, "the bridge delegate's interface is removed");
    assert_clean(&w).await;
}

/// A world whose plugin asks `source` for devices, with the `sriov` network `fast` on pool
/// `nokia.k8s.io/sriov_ens1f0`, and pod `name` asking for `count` interfaces on it.
fn sriov_world(timeout_ms: u64, name: &str, count: usize) -> (World, Arc<FixedDeviceSource>, PodContext) {
    let (w, source) = sriov_network(timeout_ms);
    let requests = vec![r#"{"network":"fast","ip":"dynamic"}"#; count].join(",");
    let c = pod(&w, name, Some(&format!("[{requests}]")));
    (w, source, c)
}

/// A world whose plugin asks `source` for devices, with the `sriov` network `fast` on pool
/// `nokia.k8s.io/sriov_ens1f0`.
fn sriov_network(timeout_ms: u64) -> (World, Arc<FixedDeviceSource>) {
    let World { plugin, provisioner, delegates } = world(timeout_ms);
    let source = Arc::new(FixedDeviceSource::new());
    let w = World { plugin: plugin.with_device_source(source.clone()), provisioner, delegates };
    let o = NetworkOptions {
        cidr: "10.7.0.0/24".into(),
        device_pool: "nokia.k8s.io/sriov_ens1f0".into(),
        ..NetworkOptions::default()
    };
    put(&w, Object::Network(network(NetworkKind::DanmNet, Some("ns"), "fast", "sriov", o)));
    (w, source)
}

/// The `deviceID` of every `sriov` ADD, in the order of the interfaces they were for.
fn sriov_devices(w: &World) -> Vec<String> {
    let mut adds: Vec<(String, String)> = w
        .delegates
        .calls()
        .iter()
        .filter(|i| i.plugin == "sriov" && i.command == CniCommand::Add)
        .map(|i| {
            let conf: serde_json::Value = serde_json::from_slice(&i.stdin).unwrap();
            (i.ifname.clone(), conf["deviceID"].as_str().unwrap().to_owned())
        })
        .collect();
    adds.sort();
    adds.into_iter().map(|(_, d)| d).collect()
}

#[tokio::test]
async fn sriov_devices_come_from_the_device_source_when_the_pod_has_no_annotation() {
    let (w, source, c) = sriov_world(2_000, "k", 3);
    // Two containers' devices of the pool, the kubelet's order kept within each.
    let mut devices = PodDevices::new();
    devices.extend("nokia.k8s.io/sriov_ens1f0", ["0000:01:00.5", "0000:01:00.2"]);
    devices.extend("other.example.com/gpu", ["gpu-0"]);
    devices.extend("nokia.k8s.io/sriov_ens1f0", ["0000:01:00.4"]);
    source.set("ns", "k", devices);
    w.plugin.add(&c).await.unwrap();
    assert_eq!(sriov_devices(&w), ["0000:01:00.5", "0000:01:00.2", "0000:01:00.4"], "distinct, in order");
    assert_eq!(source.calls(), [("ns".to_owned(), "k".to_owned())], "asked once for the whole pod");
    let mut recorded: Vec<String> = endpoints(&w).await.iter().map(|e| e.spec.interface.device_id.clone()).collect();
    recorded.sort();
    assert_eq!(recorded, ["0000:01:00.2", "0000:01:00.4", "0000:01:00.5"], "DanmEps record their device");
    w.plugin.del(&c).await.unwrap();
    assert_clean(&w).await;
    assert_eq!(source.calls().len(), 1, "DEL asks nothing");
}

#[tokio::test]
async fn the_devices_annotation_wins_over_the_device_source() {
    let (w, source) = sriov_network(2_000);
    source.set("ns", "a", [("nokia.k8s.io/sriov_ens1f0", ["0000:09:00.1"])].into_iter().collect());
    let mut meta = ObjectMeta::new("a", Some("ns"));
    meta.uid = Some("uid-a".into());
    meta.annotations.insert("danm.k8s.io/interfaces".into(), r#"[{"network":"fast","ip":"dynamic"}]"#.into());
    meta.annotations.insert(
        danm_core::meta::DEVICES_ANNOTATION.into(),
        r#"{"nokia.k8s.io/sriov_ens1f0": ["0000:01:00.7"]}"#.into(),
    );
    put(&w, Object::Pod(PodRecord { metadata: meta, ..PodRecord::default() }));
    w.plugin.add(&ctx("a")).await.unwrap();
    assert_eq!(sriov_devices(&w), ["0000:01:00.7"]);
    assert!(source.calls().is_empty(), "the source is not asked: {:?}", source.calls());

    // A pod without sriov attachments never asks either.
    let plain = pod(&w, "plain", Some(r#"[{"network":"mac","ip":"dynamic"}]"#));
    w.plugin.add(&plain).await.unwrap();
    assert!(source.calls().is_empty(), "{:?}", source.calls());
}

#[tokio::test]
async fn too_few_devices_from_the_source_name_the_pool_and_the_source() {
    let (w, source, c) = sriov_world(2_000, "few", 2);
    source.set("ns", "few", [("nokia.k8s.io/sriov_ens1f0", ["0000:01:00.1"])].into_iter().collect());
    let err = w.plugin.add(&c).await.unwrap_err();
    assert_eq!(code(&err), codes::DELEGATE_FAILED, "{err}");
    let text = err.to_string();
    assert!(text.contains("pool nokia.k8s.io/sriov_ens1f0") && text.contains("fixed device source"), "{text}");
    assert!(text.contains("has 1 device(s)") && text.contains("sriov attachment 2"), "{text}");
    assert_clean(&w).await;
}

#[tokio::test]
async fn a_failing_device_source_is_reported_and_nothing_is_left_behind() {
    let (w, source, c) = sriov_world(2_000, "f", 2);
    source.fail(DeviceError::Unreachable {
        endpoint: "the kubelet's PodResources API at /nowhere.sock".into(),
        reason: "No such file or directory".into(),
    });
    let err = w.plugin.add(&c).await.unwrap_err();
    assert_eq!(code(&err), codes::DELEGATE_FAILED, "{err}");
    let text = err.to_string();
    assert!(text.contains("the devices of pool nokia.k8s.io/sriov_ens1f0"), "{text}");
    assert!(text.contains("/nowhere.sock cannot be reached: No such file or directory"), "{text}");
    assert_eq!(source.calls().len(), 1, "asked once, though two attachments need a device");
    assert!(sriov_devices(&w).is_empty(), "no delegate ran");
    assert_clean(&w).await;

    // A source that never answers is cut off by the time budget.
    let (w, source, c) = sriov_world(200, "h", 1);
    source.hang();
    let err = w.plugin.add(&c).await.unwrap_err();
    assert_eq!(code(&err), codes::TIMEOUT, "{err}");
    assert_clean(&w).await;
}

#[tokio::test]
async fn a_static_delegate_sits_on_the_networks_vlan_interface_with_its_mtu() {
    let w = world(2_000);
    w.delegates.set_config(
        "vlanned",
        "/etc/cni/net.d/vlanned.conflist",
        r#"{"cniVersion":"1.0.0","name":"vlanned","plugins":[{"type":"macvlan","master":"eth9","ipam":{"type":"host-local"}},{"type":"tuning"}]}"#,
    );
    let mut o = opts("10.9.0.0/24", "");
    o.host_device = "ens3".into();
    o.vlan = Some(200);
    o.mtu = Some(1400);
    put(&w, Object::Network(network(NetworkKind::DanmNet, Some("ns"), "vlanned", "chained", o)));
    let c = pod(&w, "v", Some(r#"[{"network":"vlanned","ip":"dynamic"}]"#));
    w.plugin.add(&c).await.unwrap();

    let calls = w.delegates.calls();
    let add = calls.iter().find(|i| i.plugin == "macvlan" && i.command == CniCommand::Add).unwrap();
    let stdin: serde_json::Value = serde_json::from_slice(&add.stdin).unwrap();
    assert_eq!((&stdin["master"], &stdin["mtu"]), (&serde_json::json!("vlanned.200"), &serde_json::json!(1400)));
    let tuning = calls.iter().find(|i| i.plugin == "tuning" && i.command == CniCommand::Add).unwrap();
    assert!(serde_json::from_slice::<serde_json::Value>(&tuning.stdin).unwrap().get("master").is_none());
    assert_eq!(
        w.provisioner.host_interfaces()["vlanned.200"],
        ["DanmNet/ns/vlanned".to_owned()].into(),
        "the VLAN interface the plugin sits on is made for the network"
    );
    w.plugin.del(&c).await.unwrap();
    assert_clean(&w).await;
}

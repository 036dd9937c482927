//! The admission webhook end to end: the real HTTPS server with a certificate made for the test, backed by
//! the Kubernetes datastore over the fake API server, sent AdmissionReview v1 JSON by a rustls client that
//! trusts only the test's CA. Every webhook rule is accepted once and rejected once.

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use danm_core::admission::{VniAlloc, admit_tenant_config};
use danm_core::model::{self, DanmEp, DanmEpSpec, Network, NetworkKey, ObjectMeta};
use danm_core::store::{Datastore, DatastoreExt, Object, ObjectKey};
use danm_k8s::KubeStore;
use danm_k8s::runtime::Telemetry;
use danm_k8s::testing::FakeApiServer;
use danm_k8s::webhook::{
    RELOAD_CHECK_INTERVAL, ServerOptions, TlsError, Webhook, serve_webhook, tls_config_from_files, tls_config_from_pem,
};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto::ring};

/// The server under test and a client for it.
struct Harness {
    addr: std::net::SocketAddr,
    connector: TlsConnector,
    store: Arc<KubeStore>,
    telemetry: Arc<Telemetry>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _api: FakeApiServer,
}

/// A CA and a server certificate for `localhost` and 127.0.0.1 signed by it: (CA DER, server PEM, key PEM).
fn certificates() -> (Vec<u8>, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    (ca.der().to_vec(), cert.pem(), key.serialize_pem())
}

/// A TLS client that trusts only the CA with DER `ca`.
fn connector_trusting(ca: Vec<u8>) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(ca.into()).unwrap();
    let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

impl Harness {
    async fn start() -> Self {
        let api = FakeApiServer::with_danm_kinds();
        let store = Arc::new(KubeStore::new(api.client()));
        let (ca, cert, key) = certificates();
        let tls = tls_config_from_pem(cert.as_bytes(), key.as_bytes(), ("cert", "key")).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let telemetry = Telemetry::new("webhook");
        let webhook = Arc::new(Webhook::new(store.clone()).with_telemetry(&telemetry));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_webhook(listener, tls, webhook, ServerOptions::default(), async {
            let _ = stopped.await;
        }));
        let connector = connector_trusting(ca);
        Self { addr, connector, store, telemetry, stop: Some(stop), server: Some(server), _api: api }
    }

    /// Sends `body` with `method` to `path` over a fresh TLS connection: the HTTP status and the body.
    async fn send(&self, method: &str, path: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        let tls = self.connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
        tokio::spawn(connection);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        (status, response.into_body().collect().await.unwrap().to_bytes().to_vec())
    }

    /// Sends one AdmissionReview and returns its response, checking the uid round trip.
    async fn review(&self, path: &str, review: &Value) -> Value {
        let (status, body) = self.send("POST", path, serde_json::to_vec(review).unwrap()).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let answer: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(answer["kind"], "AdmissionReview");
        assert_eq!(answer["response"]["uid"], review["request"]["uid"]);
        answer["response"].clone()
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.server.take().unwrap().await.unwrap().unwrap();
    }
}

/// What a case expects.
enum Expect {
    /// Allowed; the patched object, when a patch came, passes this check.
    Allow(fn(&Value)),
    /// Denied with this status code, naming this field.
    Deny(u16, &'static str),
}

fn no_check(_: &Value) {}

/// An AdmissionReview request. `kind` picks group, version and resource.
fn review(kind: &str, operation: &str, object: Option<Value>, old: Option<Value>, dry_run: bool) -> Value {
    let (group, resource) = match kind {
        "Pod" => ("", "pods"),
        "DanmNet" => ("danm.k8s.io", "danmnets"),
        "TenantNetwork" => ("danm.k8s.io", "tenantnetworks"),
        "ClusterNetwork" => ("danm.k8s.io", "clusternetworks"),
        _ => ("danm.k8s.io", "tenantconfigs"),
    };
    let version = "v1";
    let any = object.as_ref().or(old.as_ref()).cloned().unwrap_or(Value::Null);
    let uid = format!("uid-{}", NEXT_UID.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let mut request = json!({
        "uid": uid,
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": resource},
        "name": any["metadata"]["name"],
        "operation": operation,
        "userInfo": {"username": "tester"},
        "object": object,
        "oldObject": old,
        "dryRun": dry_run,
    });
    if let Some(ns) = any["metadata"]["namespace"].as_str() {
        request["namespace"] = json!(ns);
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
}

static NEXT_UID: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);

/// `base` with the JSON pointers in `set` set (objects created on the way) or, for `Value::Null`, removed.
fn with(base: &Value, set: &[(&str, Value)]) -> Value {
    let mut out = base.clone();
    for (pointer, value) in set {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let mut at = &mut out;
        for part in parent.split('/').skip(1) {
            at = match part.parse::<usize>() {
                Ok(i) if at.is_array() => &mut at[i],
                _ => {
                    if at.get(part).is_none() {
                        at[part] = json!({});
                    }
                    &mut at[part]
                }
            };
        }
        if value.is_null() {
            at.as_object_mut().unwrap().remove(key);
        } else {
            at[key] = value.clone();
        }
    }
    out
}

fn danmnet(name: &str) -> Value {
    json!({
        "apiVersion": "danm.k8s.io/v1", "kind": "DanmNet",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"NetworkID": name, "Options": {"host_device": "ens3", "cidr": "10.0.0.0/24"}}
    })
}

fn cluster_network(name: &str) -> Value {
    let mut v = danmnet(name);
    v["kind"] = json!("ClusterNetwork");
    v["metadata"].as_object_mut().unwrap().remove("namespace");
    v
}

fn tenant_network(name: &str) -> Value {
    json!({
        "apiVersion": "danm.k8s.io/v1", "kind": "TenantNetwork",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"NetworkID": "tn", "NetworkType": "ipvlan", "Options": {"cidr": "10.2.0.0/24"}}
    })
}

fn tenant_config(name: &str) -> Value {
    json!({
        "apiVersion": "danm.k8s.io/v1", "kind": "TenantConfig",
        "metadata": {"name": name},
        "hostDevices": [{"name": "ens4", "vniType": "vlan", "vniRange": "700-710"}],
        "networkIds": {"flannel": "flannel"}
    })
}

fn pod(annotations: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ns", "annotations": annotations},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    })
}

fn interfaces(value: &str) -> Value {
    json!({ "danm.k8s.io/interfaces": value })
}

/// Checks a response against what a case expects, applying the patch to `object` when there is one.
fn check(name: &str, response: &Value, object: Option<&Value>, expect: &Expect) {
    match expect {
        Expect::Allow(verify) => {
            assert_eq!(response["allowed"], true, "{name}: {response}");
            if let Some(patch) = response["patch"].as_str() {
                assert_eq!(response["patchType"], "JSONPatch", "{name}");
                let bytes = base64::engine::general_purpose::STANDARD.decode(patch).unwrap();
                let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
                let mut patched = object.cloned().unwrap_or(Value::Null);
                json_patch::patch(&mut patched, &patch).unwrap_or_else(|e| panic!("{name}: {e}"));
                verify(&patched);
            } else if let Some(object) = object {
                verify(object);
            }
        }
        Expect::Deny(code, field) => {
            assert_eq!(response["allowed"], false, "{name}: {response}");
            let status = &response["status"];
            assert_eq!(status["code"], *code, "{name}: {status}");
            assert_eq!(status["status"], "Failure", "{name}");
            let message = status["message"].as_str().unwrap();
            assert!(message.contains(field), "{name}: {field:?} not in {message:?}");
            let causes = status["details"]["causes"].as_array().unwrap();
            assert!(causes.iter().any(|c| c["field"] == *field), "{name}: {field:?} not among {causes:?}");
        }
    }
}

fn typed(v: &Value) -> Network {
    serde_json::from_value(v.clone()).unwrap()
}

fn endpoint_of(key: &NetworkKey) -> DanmEp {
    DanmEp {
        api_version: model::API_VERSION.into(),
        kind: "DanmEp".into(),
        metadata: ObjectMeta::new("ep-used", Some("ns")),
        spec: DanmEpSpec {
            network_name: key.name.clone(),
            api_type: key.kind.to_string(),
            endpoint_id: "ep-used".into(),
            pod: "p".into(),
            pod_uid: "u".into(),
            cid: "c".into(),
            ..DanmEpSpec::default()
        },
    }
}

async fn stored_tenant_config(store: &KubeStore, name: &str) -> model::TenantConfig {
    store.get_as::<model::TenantConfig>(&ObjectKey::TenantConfig(name.into())).await.unwrap().unwrap().value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_accepted_and_rejected_over_https() {
    let h = Harness::start().await;

    // State some rules need: a TenantConfig for TenantNetworks, a ClusterNetwork for pods, networks in
    // use (a DanmEp references them) for rules 21, M1 and D1.
    let tc: model::TenantConfig = serde_json::from_value(tenant_config("tenants")).unwrap();
    h.store.create(&Object::TenantConfig(admit_tenant_config(tc, None).unwrap())).await.unwrap();
    let used = with(&danmnet("used"), &[("/spec/Options/vlan", json!(100)), ("/spec/Options/mtu", json!(1500))]);
    h.store.create(&Object::Network(typed(&used))).await.unwrap();
    h.store.create(&Object::Endpoint(endpoint_of(&typed(&used).key()))).await.unwrap();
    let restricted = with(&cluster_network("restricted"), &[("/spec/AllowedTenants", json!(["ns"]))]);
    h.store.create(&Object::Network(typed(&restricted))).await.unwrap();
    let blocked = with(&cluster_network("blocked"), &[("/spec/AllowedTenants", json!(["other"]))]);
    h.store.create(&Object::Network(typed(&blocked))).await.unwrap();

    let n = danmnet("n");
    let tn = tenant_network("tn");
    let tn_stored = with(&tn, &[("/spec/Options/host_device", json!("ens4")), ("/spec/Options/vlan", json!(705))]);
    let tcv = tenant_config("new");
    let v6 = with(&n, &[("/spec/Options/net6", json!("fd00::/48"))]);

    type Case = (&'static str, &'static str, &'static str, Option<Value>, Option<Value>, Expect);
    let cases: Vec<Case> = vec![
        // Defaults: type and pools.
        (
            "defaults",
            "/netvalidation",
            "CREATE",
            Some(n.clone()),
            None,
            Expect::Allow(|v| {
                let net = typed(v);
                assert_eq!(net.spec.network_type, "ipvlan");
                assert_eq!(net.spec.options.allocation_pool.start, "10.0.0.1");
                assert_eq!(net.spec.options.allocation_pool.end, "10.0.0.254");
                assert!(net.spec.options.alloc.is_empty(), "no upstream bitmask is written");
            }),
        ),
        // 1
        (
            "1 cidr",
            "/netvalidation",
            "CREATE",
            Some(with(&n, &[("/spec/Options/cidr", json!("10.0.0.0/33"))])),
            None,
            Expect::Deny(400, "spec.Options.cidr"),
        ),
        (
            "1 too wide",
            "/netvalidation",
            "CREATE",
            Some(with(&n, &[("/spec/Options/cidr", json!("10.0.0.0/7"))])),
            None,
            Expect::Deny(400, "spec.Options.cidr"),
        ),
        // 2
        (
            "2 ok",
            "/netvalidation",
            "CREATE",
            Some(with(&n, &[("/spec/Options/routes", json!({"10.1.0.0/16": "10.0.0.1"}))])),
            None,
            Expect::Allow(no_check),
        ),
        (
            "2",
            "/netvalidation",
            "CREATE",
            Some(with(&n, &[("/spec/Options/routes", json!({"10.1.0.0/16": "10.9.0.1"}))])),
            None,
            Expect::Deny(400, "spec.Options.routes[\"10.1.0.0/16\"]"),
        ),
        // 3
        (
            "3 ok",
            "/netvalidation",
            "CREATE",
            Some(v6.clone()),
            None,
            Expect::Allow(|v| {
                let o = typed(v).spec.options;
                assert_eq!(
                    (o.allocation_pool_v6.cidr.as_str(), o.allocation_pool_v6.start.as_str()),
                    ("fd00::/64", "fd00::1")
                );
            }),
        ),
        (
            "3",
            "/netvalidation",
            "CREATE",
            Some(with(&n, &[("/spec/Options/net6", json!("fd00::/129"))])),
            None,
            Expect::Deny(400, "spec.Options.net6"),
        ),
        // 4
        (
            "4 ok",
            "/netvalidation",
            "CREATE",
            Some(with(&v6, &[("/spec/Options/routes6", json!({"fd01::/64": "fd00::1"}))])),
            None,
            Expect::Allow(no_check),
        ),
        (
            "4",
            "/netvalidation",
            "CREATE",
            Some(with(&v6, &[("/spec/Options/routes6", json!({"fd01::/64": "fd09::1"}))])),
            None,
            Expect::Deny(400, "spec.Options.routes6[\"fd01::/64\"]"),
        ),
        // 5–6
        (
            "5",
            "/netvalidation",
            "CREATE",
            Some(with(&n, &[("/spec/Options/alloc", json!("gA=="))])),
            None,
            Expect::Deny(400, "spec.Options.alloc"),
        ),
        (
            "6",
            "/netvalidation",
            "CREATE",
            Some(with(&v6, &[("/spec/Options/alloc6", json!("gA=="))])),
            None,
            Expect::Deny(400, "spec.Options.alloc6"),
        ),
        (
            "5-6 update keeps state",
            "/netvalidation",
            "UPDATE",
            Some(with(&n, &[("/spec/Options/alloc", json!("gA=="))])),
            Some(with(&n, &[("/spec/Options/alloc", json!("gA=="))])),
            Expect::Allow(no_check),
        ),
        // 7
        (
            "7 ok",
            "/netvalidation",
            "CREATE",
            Some(with(&n, &[("/spec/Options/allocation_pool", json!({"start": "10.0.0.10", "end": "10.0.0.20"}))])),
            None,
            Expect::Allow(|v| assert_eq!(typed(v).spec.options.allocation_pool.end, "10.0.0.20")),
        ),
        (
            "7",
            "/netvalidation",
            "CREATE",
            Some(with(
                &n,
                &[
                    ("/spec/Options/cidr", Value::Null),
                    ("/spec/Options/allocation_pool", json!({"start": "10.0.0.10"})),
                ],
            )),
            None,
            Expect::Deny(400, "spec.Options.allocation_pool"),
        ),
        // 8–10
        (
            "8-9",
            "/netvalidation",
            "CREATE",
            Some(with(&n, &[("/spec/Options/allocation_pool", json!({"start": "10.0.1.10"}))])),
            None,
            Expect::Deny(400, "spec.Options.allocation_pool.start"),
        ),
        (
            "10",
            "/netvalidation",
            "CREATE",
            Some(with(&n, &[("/spec/Options/allocation_pool", json!({"start": "10.0.0.20", "end": "10.0.0.10"}))])),
            None,
            Expect::Deny(400, "spec.Options.allocation_pool.end"),
        ),
        // 11
        (
            "11",
            "/netvalidation",
            "CREATE",
            Some(with(&n, &[("/spec/Options/allocation_pool_v6", json!({"cidr": "fd00::/64"}))])),
            None,
            Expect::Deny(400, "spec.Options.allocation_pool_v6"),
        ),
        // 12–14
        (
            "12-14 ok",
            "/netvalidation",
            "CREATE",
            Some(with(
                &v6,
                &[(
                    "/spec/Options/allocation_pool_v6",
                    json!({"cidr": "fd00::/64", "start": "fd00::10", "end": "fd00::20"}),
                )],
            )),
            None,
            Expect::Allow(no_check),
        ),
        (
            "12-14",
            "/netvalidation",
            "CREATE",
            Some(with(
                &v6,
                &[("/spec/Options/allocation_pool_v6", json!({"cidr": "fd00::/64", "start": "fd00:0:0:1::10"}))],
            )),
            None,
            Expect::Deny(400, "spec.Options.allocation_pool_v6.start"),
        ),
        // 15
        (
            "15",
            "/netvalidation",
            "CREATE",
            Some(with(&v6, &[("/spec/Options/allocation_pool_v6", json!({"cidr": "fd01::/64"}))])),
            None,
            Expect::Deny(400, "spec.Options.allocation_pool_v6.cidr"),
        ),
        // 16
        (
            "16",
            "/netvalidation",
            "CREATE",
            Some(with(&v6, &[("/spec/Options/allocation_pool_v6", json!({"cidr": "fd00::/128"}))])),
            None,
            Expect::Deny(400, "spec.Options.allocation_pool_v6.cidr"),
        ),
        // 17
        (
            "17 ok",
            "/netvalidation",
            "CREATE",
            Some(with(&n, &[("/spec/Options/vlan", json!(10))])),
            None,
            Expect::Allow(|v| assert_eq!(typed(v).spec.options.vlan, Some(10))),
        ),
        (
            "17",
            "/netvalidation",
            "CREATE",
            Some(with(&n, &[("/spec/Options/vlan", json!(10)), ("/spec/Options/vxlan", json!(10))])),
            None,
            Expect::Deny(400, "spec.Options.vxlan"),
        ),
        // 18
        (
            "18 missing",
            "/netvalidation",
            "CREATE",
            Some(with(&n, &[("/spec/NetworkID", Value::Null)])),
            None,
            Expect::Deny(400, "spec.NetworkID"),
        ),
        (
            "18 long",
            "/netvalidation",
            "CREATE",
            Some(with(&n, &[("/spec/NetworkID", json!("elevenchars")), ("/spec/Options/vlan", json!(10))])),
            None,
            Expect::Deny(400, "spec.NetworkID"),
        ),
        // 19
        (
            "19 ok",
            "/netvalidation",
            "CREATE",
            Some(with(&cluster_network("c"), &[("/spec/AllowedTenants", json!(["ns"]))])),
            None,
            Expect::Allow(no_check),
        ),
        (
            "19",
            "/netvalidation",
            "CREATE",
            Some(with(&n, &[("/spec/AllowedTenants", json!(["ns"]))])),
            None,
            Expect::Deny(400, "spec.AllowedTenants"),
        ),
        // 20
        (
            "20 ok",
            "/netvalidation",
            "CREATE",
            Some(with(
                &n,
                &[
                    ("/spec/NetworkType", json!("sriov")),
                    ("/spec/Options/host_device", Value::Null),
                    ("/spec/Options/device_pool", json!("nokia.k8s.io/sriov_ens1f0")),
                ],
            )),
            None,
            Expect::Allow(no_check),
        ),
        (
            "20",
            "/netvalidation",
            "CREATE",
            Some(with(&n, &[("/spec/NetworkType", json!("sriov")), ("/spec/Options/host_device", Value::Null)])),
            None,
            Expect::Deny(400, "spec.Options.device_pool"),
        ),
        // 21 (in use)
        (
            "21 ok",
            "/netvalidation",
            "UPDATE",
            Some(with(&used, &[("/spec/Options/container_prefix", json!("dn"))])),
            Some(used.clone()),
            Expect::Allow(no_check),
        ),
        (
            "21",
            "/netvalidation",
            "UPDATE",
            Some(with(&used, &[("/spec/Options/vlan", json!(101))])),
            Some(used.clone()),
            Expect::Deny(403, "spec.Options.vlan"),
        ),
        // M1 (in use)
        (
            "M1 ok",
            "/netvalidation",
            "UPDATE",
            Some(with(&used, &[("/spec/Options/mtu", json!(9000))])),
            Some(used.clone()),
            Expect::Allow(no_check),
        ),
        (
            "M1",
            "/netvalidation",
            "UPDATE",
            Some(with(&used, &[("/spec/Options/mtu", json!(1400))])),
            Some(used.clone()),
            Expect::Deny(403, "spec.Options.mtu"),
        ),
        // T1–T2
        (
            "T1-T2",
            "/netvalidation",
            "CREATE",
            Some(with(&tn, &[("/spec/Options/vlan", json!(5))])),
            None,
            Expect::Deny(400, "spec.Options.vlan"),
        ),
        (
            "T2",
            "/netvalidation",
            "CREATE",
            Some(with(&tn, &[("/spec/Options/vxlan", json!(5))])),
            None,
            Expect::Deny(400, "spec.Options.vxlan"),
        ),
        // T3–T6
        (
            "T3-T6 ok",
            "/netvalidation",
            "UPDATE",
            Some(with(&tn, &[("/spec/Options/container_prefix", json!("t"))])),
            Some(tn_stored.clone()),
            Expect::Allow(|v| {
                let o = typed(v).spec.options;
                assert_eq!((o.host_device.as_str(), o.vlan), ("ens4", Some(705)), "kept from the stored network");
            }),
        ),
        (
            "T3",
            "/netvalidation",
            "UPDATE",
            Some(with(&tn_stored, &[("/spec/Options/host_device", json!("ens9"))])),
            Some(tn_stored.clone()),
            Expect::Deny(400, "spec.Options.host_device"),
        ),
        (
            "T4",
            "/netvalidation",
            "UPDATE",
            Some(with(&tn_stored, &[("/spec/Options/device_pool", json!("a.io/b"))])),
            Some(tn_stored.clone()),
            Expect::Deny(400, "spec.Options.device_pool"),
        ),
        (
            "T5",
            "/netvalidation",
            "UPDATE",
            Some(with(&tn_stored, &[("/spec/Options/vlan", json!(706))])),
            Some(tn_stored.clone()),
            Expect::Deny(400, "spec.Options.vlan"),
        ),
        (
            "T6",
            "/netvalidation",
            "UPDATE",
            Some(with(&tn_stored, &[("/spec/Options/vxlan", json!(706))])),
            Some(tn_stored.clone()),
            Expect::Deny(400, "spec.Options.vxlan"),
        ),
        // TenantNetwork mutation: profile, VNI, NetworkID.
        (
            "TM",
            "/netvalidation",
            "CREATE",
            Some(tn.clone()),
            None,
            Expect::Allow(|v| {
                let net = typed(v);
                assert_eq!((net.spec.options.host_device.as_str(), net.spec.options.vlan), ("ens4", Some(700)));
            }),
        ),
        (
            "TM networkIds",
            "/netvalidation",
            "CREATE",
            Some(with(&tn, &[("/spec/NetworkType", json!("Flannel"))])),
            None,
            Expect::Allow(|v| assert_eq!(typed(v).spec.network_id, "flannel")),
        ),
        (
            "TM not allowed",
            "/netvalidation",
            "CREATE",
            Some(with(&tn, &[("/spec/Options/host_device", json!("eth7"))])),
            None,
            Expect::Deny(403, "spec.Options.host_device"),
        ),
        // D1
        ("D1 ok", "/netdeletion", "DELETE", None, Some(n.clone()), Expect::Allow(no_check)),
        ("D1", "/netdeletion", "DELETE", None, Some(used.clone()), Expect::Deny(403, "metadata.name")),
        // Strict decoding.
        (
            "unknown field",
            "/netvalidation",
            "CREATE",
            Some(with(&n, &[("/spec/Options/bogus", json!(1))])),
            None,
            Expect::Deny(400, "spec.Options.bogus"),
        ),
        // TenantConfig rules 1–6.
        (
            "TC ok",
            "/confvalidation",
            "CREATE",
            Some(tcv.clone()),
            None,
            Expect::Allow(|v| {
                let alloc = v["hostDevices"][0]["alloc"].as_str().unwrap();
                assert!(VniAlloc::decode(alloc).unwrap().is_reserved(0));
            }),
        ),
        (
            "TC1",
            "/confvalidation",
            "CREATE",
            Some(with(&tcv, &[("/hostDevices", Value::Null), ("/networkIds", Value::Null)])),
            None,
            Expect::Deny(400, "hostDevices"),
        ),
        (
            "TC2 name",
            "/confvalidation",
            "CREATE",
            Some(with(&tcv, &[("/hostDevices", json!([{"vniType": "vlan", "vniRange": "1-2"}]))])),
            None,
            Expect::Deny(400, "hostDevices[0].name"),
        ),
        (
            "TC2 pair",
            "/confvalidation",
            "CREATE",
            Some(with(&tcv, &[("/hostDevices", json!([{"name": "ens4", "vniType": "vlan"}]))])),
            None,
            Expect::Deny(400, "hostDevices[0].vniRange"),
        ),
        (
            "TC2 type",
            "/confvalidation",
            "CREATE",
            Some(with(&tcv, &[("/hostDevices", json!([{"name": "ens4", "vniType": "gre", "vniRange": "1"}]))])),
            None,
            Expect::Deny(400, "hostDevices[0].vniType"),
        ),
        (
            "TC3",
            "/confvalidation",
            "CREATE",
            Some(with(&tcv, &[("/hostDevices/0/alloc", json!("gA=="))])),
            None,
            Expect::Deny(400, "hostDevices[0].alloc"),
        ),
        (
            "TC4 syntax",
            "/confvalidation",
            "CREATE",
            Some(with(&tcv, &[("/hostDevices/0/vniRange", json!("7-"))])),
            None,
            Expect::Deny(400, "hostDevices[0].vniRange"),
        ),
        (
            "TC4 range",
            "/confvalidation",
            "CREATE",
            Some(with(&tcv, &[("/hostDevices/0/vniRange", json!("4000-5000"))])),
            None,
            Expect::Deny(400, "hostDevices[0].vniRange"),
        ),
        (
            "TC5",
            "/confvalidation",
            "CREATE",
            Some(with(&tcv, &[("/networkIds", json!({"flannel": ""}))])),
            None,
            Expect::Deny(400, "networkIds[\"flannel\"]"),
        ),
        (
            "TC6",
            "/confvalidation",
            "CREATE",
            Some(with(&tcv, &[("/networkIds", json!({"ipvlan": "elevenchars"}))])),
            None,
            Expect::Deny(400, "networkIds[\"ipvlan\"]"),
        ),
        (
            "TC update keeps alloc",
            "/confvalidation",
            "UPDATE",
            Some(tcv.clone()),
            Some(with(&tcv, &[("/hostDevices/0/alloc", json!(VniAlloc::for_ranges(&[700..=710]).unwrap().encode()))])),
            Expect::Allow(|v| assert!(v["hostDevices"][0]["alloc"].is_string())),
        ),
        // Pods.
        (
            "pod ok",
            "/podvalidation",
            "CREATE",
            Some(pod(interfaces(r#"[{"clusterNetwork":"restricted","ip":"10.0.0.7"}]"#))),
            None,
            Expect::Allow(no_check),
        ),
        ("pod no annotation", "/podvalidation", "CREATE", Some(pod(json!({}))), None, Expect::Allow(no_check)),
        (
            "pod update changing the annotation to a malformed one",
            "/podvalidation",
            "UPDATE",
            Some(pod(interfaces("{}"))),
            Some(pod(interfaces(r#"[{"clusterNetwork":"restricted","ip":"10.0.0.7"}]"#))),
            Expect::Deny(400, "danm.k8s.io/interfaces"),
        ),
        (
            "pod update changing the annotation to a good one",
            "/podvalidation",
            "UPDATE",
            Some(pod(interfaces(r#"[{"clusterNetwork":"restricted","ip":"10.0.0.8"}]"#))),
            Some(pod(interfaces(r#"[{"clusterNetwork":"restricted","ip":"10.0.0.7"}]"#))),
            Expect::Allow(no_check),
        ),
        (
            // The ClusterNetwork stopped allowing the namespace after the pod was created ("pod tenant
            // denied" below is the same annotation on CREATE).
            "pod update leaving a now refused annotation as it is",
            "/podvalidation",
            "UPDATE",
            Some(pod(interfaces(r#"[{"clusterNetwork":"blocked"}]"#))),
            Some(pod(interfaces(r#"[{"clusterNetwork":"blocked"}]"#))),
            Expect::Allow(no_check),
        ),
        (
            "pod update adding the annotation under upstream's other key",
            "/podvalidation",
            "UPDATE",
            Some(pod(json!({"danm.io/interfaces": r#"[{"ip":"dynamic"}]"#}))),
            Some(pod(json!({}))),
            Expect::Deny(400, "danm.io/interfaces[0]"),
        ),
        (
            "pod malformed",
            "/podvalidation",
            "CREATE",
            Some(pod(interfaces("{}"))),
            None,
            Expect::Deny(400, "danm.k8s.io/interfaces"),
        ),
        (
            "pod unknown key",
            "/podvalidation",
            "CREATE",
            Some(pod(interfaces(r#"[{"network":"a","bogus":"1"}]"#))),
            None,
            Expect::Deny(400, "danm.k8s.io/interfaces[0]"),
        ),
        (
            "pod no network",
            "/podvalidation",
            "CREATE",
            Some(pod(interfaces(r#"[{"ip":"dynamic"}]"#))),
            None,
            Expect::Deny(400, "danm.k8s.io/interfaces[0]"),
        ),
        (
            "pod two networks",
            "/podvalidation",
            "CREATE",
            Some(pod(interfaces(r#"[{"network":"a","tenantNetwork":"b"}]"#))),
            None,
            Expect::Deny(400, "danm.k8s.io/interfaces[0]"),
        ),
        (
            "pod empty name",
            "/podvalidation",
            "CREATE",
            Some(pod(interfaces(r#"[{"network":""}]"#))),
            None,
            Expect::Deny(400, "danm.k8s.io/interfaces[0].network"),
        ),
        (
            "pod bad ip",
            "/podvalidation",
            "CREATE",
            Some(pod(interfaces(r#"[{"network":"a","ip":"static"}]"#))),
            None,
            Expect::Deny(400, "danm.k8s.io/interfaces[0].ip"),
        ),
        (
            "pod wrong family",
            "/podvalidation",
            "CREATE",
            Some(pod(interfaces(r#"[{"network":"a","ip6":"10.0.0.1"}]"#))),
            None,
            Expect::Deny(400, "danm.k8s.io/interfaces[0].ip6"),
        ),
        (
            "pod bad route",
            "/podvalidation",
            "CREATE",
            Some(pod(interfaces(r#"[{"network":"a","proutes":{"10.0.0.0/8":"gw"}}]"#))),
            None,
            Expect::Deny(400, "danm.k8s.io/interfaces[0].proutes[\"10.0.0.0/8\"]"),
        ),
        (
            "pod too many",
            "/podvalidation",
            "CREATE",
            Some(pod(interfaces(&format!("[{}]", vec![r#"{"network":"a"}"#; 65].join(","))))),
            None,
            Expect::Deny(400, "danm.k8s.io/interfaces"),
        ),
        (
            "pod two keys",
            "/podvalidation",
            "CREATE",
            Some(pod(json!({"danm.k8s.io/interfaces": "[]", "danm.io/interfaces": "[{\"network\":\"a\"}]"}))),
            None,
            Expect::Deny(400, "metadata.annotations[\"danm.io/interfaces\"]"),
        ),
        (
            "pod tenant denied",
            "/podvalidation",
            "CREATE",
            Some(pod(interfaces(r#"[{"clusterNetwork":"blocked"}]"#))),
            None,
            Expect::Deny(403, "danm.k8s.io/interfaces[0].clusterNetwork"),
        ),
        (
            "pod outside subnet",
            "/podvalidation",
            "CREATE",
            Some(pod(interfaces(r#"[{"clusterNetwork":"restricted","ip":"10.9.0.7"}]"#))),
            None,
            Expect::Deny(400, "danm.k8s.io/interfaces[0].ip"),
        ),
    ];
    let count = cases.len();
    for (name, path, op, object, old, expect) in cases {
        let kind = object.as_ref().or(old.as_ref()).and_then(|o| o["kind"].as_str()).unwrap().to_owned();
        let request = review(&kind, op, object.clone(), old, false);
        let response = h.review(path, &request).await;
        check(name, &response, object.as_ref(), &expect);
    }
    assert!(count > 60, "{count} cases");

    // The TenantNetwork admitted above ("TM") reserved VLAN 700, and nothing else reserved one.
    let alloc = VniAlloc::decode(&stored_tenant_config(&h.store, "tenants").await.host_devices[0].alloc).unwrap();
    assert!(alloc.is_reserved(700) && !alloc.is_reserved(702), "{alloc:?}");

    let metrics = h.telemetry.encode();
    assert!(metrics.contains("danm_webhook_requests_total"), "{metrics}");
    assert!(metrics.contains("result=\"denied\""), "{metrics}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_network_vnis_follow_create_dry_run_and_delete() {
    let h = Harness::start().await;
    let tc: model::TenantConfig = serde_json::from_value(tenant_config("tenants")).unwrap();
    h.store.create(&Object::TenantConfig(admit_tenant_config(tc, None).unwrap())).await.unwrap();
    let reserved =
        |tc: &model::TenantConfig, vni: i64| VniAlloc::decode(&tc.host_devices[0].alloc).unwrap().is_reserved(vni);

    // A dry run shows the VNI it would get and reserves nothing.
    let dry =
        h.review("/netvalidation", &review("TenantNetwork", "CREATE", Some(tenant_network("a")), None, true)).await;
    assert_eq!(dry["allowed"], true);
    assert!(!reserved(&stored_tenant_config(&h.store, "tenants").await, 700));

    // A real create reserves it; the patched network is what the API server then stores.
    let object = tenant_network("a");
    let response =
        h.review("/netvalidation", &review("TenantNetwork", "CREATE", Some(object.clone()), None, false)).await;
    let patch = base64::engine::general_purpose::STANDARD.decode(response["patch"].as_str().unwrap()).unwrap();
    let mut stored = object.clone();
    json_patch::patch(&mut stored, &serde_json::from_slice::<json_patch::Patch>(&patch).unwrap()).unwrap();
    let net = typed(&stored);
    assert_eq!(net.spec.options.vlan, Some(700));
    assert!(reserved(&stored_tenant_config(&h.store, "tenants").await, 700));
    h.store.create(&Object::Network(net.clone())).await.unwrap();

    // A second CREATE of the same name reserves nothing: the API server will refuse it.
    let again = h.review("/netvalidation", &review("TenantNetwork", "CREATE", Some(object), None, false)).await;
    assert_eq!(again["allowed"], true);
    assert!(!reserved(&stored_tenant_config(&h.store, "tenants").await, 701));

    // A dry-run DELETE releases nothing; DELETE releases the VNI (D2).
    let delete = |dry| review("TenantNetwork", "DELETE", None, Some(stored.clone()), dry);
    assert_eq!(h.review("/netdeletion", &delete(true)).await["allowed"], true);
    assert!(reserved(&stored_tenant_config(&h.store, "tenants").await, 700));
    assert_eq!(h.review("/netdeletion", &delete(false)).await["allowed"], true);
    assert!(!reserved(&stored_tenant_config(&h.store, "tenants").await, 700));
    // The API server carries the admitted DELETE out; until then the network would keep its VNI taken.
    h.store.delete(&ObjectKey::Network(net.key()), None).await.unwrap();

    // D2 while in use: refused (D1 first), and the VNI stays reserved.
    h.review("/netvalidation", &review("TenantNetwork", "CREATE", Some(tenant_network("b")), None, false)).await;
    let b =
        with(&tenant_network("b"), &[("/spec/Options/host_device", json!("ens4")), ("/spec/Options/vlan", json!(700))]);
    h.store.create(&Object::Endpoint(endpoint_of(&typed(&b).key()))).await.unwrap();
    let refused = h.review("/netdeletion", &review("TenantNetwork", "DELETE", None, Some(b), false)).await;
    assert_eq!(refused["allowed"], false);
    assert!(reserved(&stored_tenant_config(&h.store, "tenants").await, 700));

    // Exhaustion names the field the VNI would go into.
    for i in 0..10 {
        let r = h
            .review(
                "/netvalidation",
                &review("TenantNetwork", "CREATE", Some(tenant_network(&format!("x{i}"))), None, false),
            )
            .await;
        assert_eq!(r["allowed"], true, "{r}");
    }
    let full =
        h.review("/netvalidation", &review("TenantNetwork", "CREATE", Some(tenant_network("y")), None, false)).await;
    check("exhausted", &full, None, &Expect::Deny(403, "spec.Options.vlan"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_refuses_what_is_not_an_admission_review() {
    let h = Harness::start().await;
    let (status, body) = h.send("POST", "/netvalidation", b"{not json".to_vec()).await;
    assert_eq!(status, 400);
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["response"]["allowed"], false);
    let (status, _) = h.send("POST", "/elsewhere", b"{}".to_vec()).await;
    assert_eq!(status, 404);
    let (status, _) = h.send("GET", "/netvalidation", Vec::new()).await;
    assert_eq!(status, 405);
    let no_request = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"});
    let (status, _) = h.send("POST", "/podvalidation", serde_json::to_vec(&no_request).unwrap()).await;
    assert_eq!(status, 400);
    h.stop().await;
}

/// A CA and two server certificates for `localhost` signed by it: (CA DER, [(certificate PEM, key PEM); 2]).
fn two_certificates() -> (Vec<u8>, [(String, String); 2]) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf = || {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&key, &ca).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    (ca.der().to_vec(), [leaf(), leaf()])
}

/// Writes `contents` to `path` as a Secret volume update does: a new file renamed over the old one.
fn replace(path: &std::path::Path, contents: &str) {
    let staged = path.with_extension("new");
    std::fs::write(&staged, contents).unwrap();
    std::fs::rename(&staged, path).unwrap();
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let (ca, [(first, first_key), (second, second_key)]) = two_certificates();
    std::fs::write(&cert_path, &first).unwrap();
    std::fs::write(&key_path, &first_key).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls_config_from_files(&cert_path, &key_path).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(tcp).await;
            });
        }
    });
    let connector = connector_trusting(ca);
    let served = || async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let tls = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
        tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
    };
    let der = |pem: &str| {
        use tokio_rustls::rustls::pki_types::{CertificateDer, pem::PemObject};
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap().to_vec()
    };

    assert_eq!(served().await, der(&first));
    // The Secret is renewed: the next handshakes, once the files have been looked at again, get the new pair.
    replace(&cert_path, &second);
    replace(&key_path, &second_key);
    tokio::time::sleep(RELOAD_CHECK_INTERVAL + std::time::Duration::from_millis(100)).await;
    assert_eq!(served().await, der(&second));
    // A broken update (a key that does not match) keeps the last good pair in use.
    replace(&key_path, &first_key);
    tokio::time::sleep(RELOAD_CHECK_INTERVAL + std::time::Duration::from_millis(100)).await;
    assert_eq!(served().await, der(&second));
    // The next change that makes the pair whole again is served.
    replace(&cert_path, &first);
    tokio::time::sleep(RELOAD_CHECK_INTERVAL + std::time::Duration::from_millis(100)).await;
    assert_eq!(served().await, der(&first));
    // A missing file at start is refused with its path.
    let err = tls_config_from_files(&dir.path().join("absent.crt"), &key_path).unwrap_err();
    assert!(matches!(err, TlsError::Read { ref path, .. } if path.ends_with("absent.crt")), "{err:?}");
    // So is a pair that does not belong together, with both paths.
    replace(&key_path, &second_key);
    let err = tls_config_from_files(&cert_path, &key_path).unwrap_err();
    let message = err.to_string();
    assert!(message.contains(&*cert_path.to_string_lossy()), "{message}");
    assert!(message.contains(&*key_path.to_string_lossy()), "{message}");
}

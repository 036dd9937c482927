//! The `danm-webhook` binary against the fake API server served over HTTP: it serves AdmissionReviews
//! over HTTPS with the certificate it is given, reserves a TenantNetwork's VNI in the TenantConfig,
//! reports ready and counts requests on its metrics port, and on SIGTERM exits 0.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use danm_k8s::testing::FakeApiServer;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use serde_json::{Value, json};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned, crypto::ring};

use common::{free_port, http_get, terminate};

/// POSTs `body` to `path` over TLS (trusting only `roots`) and returns the response body as JSON.
fn https_post(port: u16, roots: &RootCertStore, path: &str, body: &Value) -> Value {
    let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots.clone())
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();
    let connection = ClientConnection::new(Arc::new(config), name).unwrap();
    let mut tls = StreamOwned::new(connection, TcpStream::connect(("127.0.0.1", port)).unwrap());
    let body = serde_json::to_vec(body).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).unwrap();
    tls.write_all(&body).unwrap();
    let mut response = Vec::new();
    // The server closes without a TLS close_notify when it is done; what was read until then is whole.
    let _ = tls.read_to_end(&mut response);
    let text = String::from_utf8(response).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let (_, json) = text.split_once("\r\n\r\n").unwrap();
    serde_json::from_str(json).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn danm_webhook_admits_over_https_and_stops_on_sigterm() {
    let server = FakeApiServer::with_danm_kinds();
    server.seed(&json!({
        "apiVersion": "danm.k8s.io/v1", "kind": "TenantConfig", "metadata": {"name": "tenants"},
        "hostDevices": [{"name": "ens4", "vniType": "vlan", "vniRange": "700-710"}]
    }));
    let address = server.serve_http().await.unwrap();
    let dir = tempfile::TempDir::new().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, FakeApiServer::kubeconfig(address)).unwrap();

    // A CA, and a certificate for localhost signed by it.
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&key, &ca).unwrap();
    std::fs::write(dir.path().join("tls.crt"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("tls.key"), key.serialize_pem()).unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();

    let (port, metrics) = (free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_danm-webhook"))
        .env_clear()
        .env("KUBECONFIG", &kubeconfig)
        .env("RUST_LOG", "info")
        .args(["--listen", &format!("127.0.0.1:{port}"), "--metrics-listen", &format!("127.0.0.1:{metrics}")])
        .arg("--tls-cert")
        .arg(dir.path().join("tls.crt"))
        .arg("--tls-key")
        .arg(dir.path().join("tls.key"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !http_get(metrics, "/readyz").is_some_and(|r| r.starts_with("HTTP/1.0 200")) {
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let mut log = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut log);
            panic!("danm-webhook did not get ready: {log}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "u1", "kind": {"group": "danm.k8s.io", "version": "v1", "kind": "TenantNetwork"},
            "resource": {"group": "danm.k8s.io", "version": "v1", "resource": "tenantnetworks"},
            "name": "t", "namespace": "ns", "operation": "CREATE", "userInfo": {"username": "u"},
            "object": {"apiVersion": "danm.k8s.io/v1", "kind": "TenantNetwork",
                       "metadata": {"name": "t", "namespace": "ns"}, "spec": {"NetworkID": "t"}},
            "oldObject": null, "dryRun": false
        }
    });
    let answer =
        tokio::task::spawn_blocking(move || https_post(port, &roots, "/netvalidation", &review)).await.unwrap();
    assert_eq!(answer["response"]["uid"], "u1");
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    assert_eq!(answer["response"]["patchType"], "JSONPatch");
    let tc: danm_core::model::TenantConfig = server.object::<danm_k8s::TenantConfig>("", "tenants").unwrap().into();
    let alloc = danm_core::admission::VniAlloc::decode(&tc.host_devices[0].alloc).unwrap();
    assert!(alloc.is_reserved(700) && !alloc.is_reserved(701), "VLAN 700 is reserved in the TenantConfig");
    let counted = http_get(metrics, "/metrics").unwrap();
    assert!(counted.contains("danm_webhook_requests_total"), "{counted}");

    let (status, log) = terminate(&mut child, Duration::from_secs(15)).await;
    assert!(status.success(), "{status}: {log}");
}

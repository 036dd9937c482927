//! The `svcwatcher` binary against the fake API server served over HTTP: it elects itself leader on its
//! Lease, publishes the Endpoints of a DANM Service, serves its metrics, and on SIGTERM releases the
//! Lease and exits 0.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use danm_k8s::testing::FakeApiServer;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Endpoints;
use serde_json::json;

use common::{free_port, http_get, terminate};

/// The child process, killed when the test ends however it ends; its log is printed on failure.
struct Child(std::process::Child);

impl Child {
    fn log(&mut self) -> String {
        let mut log = String::new();
        if let Some(mut err) = self.0.stderr.take() {
            std::io::Read::read_to_string(&mut err, &mut log).unwrap();
        }
        log
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
            eprintln!("svcwatcher's log:\n{}", self.log());
        }
    }
}

async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn svcwatcher_publishes_serves_metrics_and_stops_on_sigterm() {
    let server = FakeApiServer::with_danm_kinds();
    let pod = server.seed(&json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "lb", "namespace": "vnf", "labels": {"app": "lb"}},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "i"}]}
    }));
    server.seed(&json!({
        "apiVersion": "danm.k8s.io/v1", "kind": "DanmEp",
        "metadata": {"name": "lb-eth1", "namespace": "vnf", "labels": {"app": "lb"}},
        "spec": {"NetworkName": "internal", "NetworkType": "ipvlan", "EndpointID": "e",
                 "Interface": {"Name": "eth1", "Address": "10.1.0.5/24", "AddressIPv6": "", "MacAddress": ""},
                 "Host": "node-1", "Pod": "lb", "PodUID": pod["metadata"]["uid"], "apiType": "DanmNet"}
    }));
    server.seed(&json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "lb", "namespace": "vnf", "annotations": {
            "danm.k8s.io/selector": "{\"app\":\"lb\"}", "danm.k8s.io/network": "internal"}},
        "spec": {"clusterIP": "None", "ports": [{"port": 80}]}
    }));
    let address = server.serve_http().await.unwrap();
    let dir = tempfile::TempDir::new().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, FakeApiServer::kubeconfig(address)).unwrap();
    let port = free_port();

    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_svcwatcher"))
            .env_clear()
            .env("KUBECONFIG", &kubeconfig)
            .env("RUST_LOG", "info")
            .args(["--metrics-listen", &format!("127.0.0.1:{port}"), "--lease-namespace", "kube-system"])
            .args(["--identity", "replica-1"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );

    wait_for("the Endpoints", || {
        server.object::<Endpoints>("vnf", "lb").is_some_and(|e| {
            // The pod has no Ready condition: its address is published as not ready.
            e.subsets
                .as_ref()
                .and_then(|s| s.first())
                .and_then(|s| s.not_ready_addresses.as_ref())
                .map(|a| a[0].ip.clone())
                == Some("10.1.0.5".to_owned())
        })
    })
    .await;
    let holder = server.object::<Lease>("kube-system", "danm-svcwatcher").and_then(|l| l.spec?.holder_identity);
    assert_eq!(holder.as_deref(), Some("replica-1"));
    let metrics = http_get(port, "/metrics").unwrap();
    assert!(metrics.contains(r#"danm_svcwatcher_leading{component="svcwatcher"} 1"#), "{metrics}");
    let ready = http_get(port, "/readyz").unwrap();
    assert!(ready.lines().next().is_some_and(|l| l.contains(" 200 ")), "{ready}");

    let (status, log) = terminate(&mut child.0, Duration::from_secs(10)).await;
    assert!(status.success(), "{status}: {log}");
    let holder = server.object::<Lease>("kube-system", "danm-svcwatcher").and_then(|l| l.spec?.holder_identity);
    assert_eq!(holder, None, "the Lease is released on shutdown: {log}");
}

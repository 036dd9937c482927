//! The `netwatcher` binary against the fake API server served over HTTP, managing the interfaces of a
//! network namespace the test creates (as root): a DanmNet's VXLAN interface appears, comes back when
//! deleted behind its back, goes with the network; metrics and health are served; SIGTERM stops it
//! with exit status 0. Without root it prints `SKIPPED: ...` (and fails under `CI=true`).

mod common;

use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use danm_k8s::DanmNet;
use danm_k8s::testing::{FakeApiServer, ResourceType};
use kube::api::{Api, DeleteParams};
use serde_json::json;

use common::{free_port, http_get, is_ok, terminate};

async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A network namespace of the test's own, held by a `sleep` it started (killed on drop).
struct TestNetns {
    holder: Child,
}

impl TestNetns {
    fn new() -> Self {
        let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
        let holder = Command::new("unshare").args(["--net", "sleep", "600"]).spawn().expect("running unshare");
        let netns = Self { holder };
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::read_link(netns.path()).map(|l| l == ours).unwrap_or(true) {
            assert!(Instant::now() < deadline, "the namespace holder did not unshare");
            std::thread::sleep(Duration::from_millis(10));
        }
        netns
    }

    fn path(&self) -> String {
        format!("/proc/{}/ns/net", self.holder.id())
    }

    /// `ip <args>` inside; its stdout, or `None` when it failed.
    fn ip(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("nsenter").arg(format!("--net={}", self.path())).arg("ip").args(args).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The alias of `name`, `None` when there is no such interface.
    fn alias(&self, name: &str) -> Option<String> {
        let shown: serde_json::Value = serde_json::from_str(&self.ip(&["-j", "link", "show", name])?).ok()?;
        Some(shown[0]["ifalias"].as_str().unwrap_or_default().to_owned())
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netwatcher_keeps_a_vxlan_interface_serves_metrics_and_stops_on_sigterm() {
    if !rustix::process::geteuid().is_root() {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "netwatcher_bin needs root under CI");
        let _ = writeln!(std::io::stderr(), "SKIPPED: netwatcher_bin: needs root to create a network namespace");
        return;
    }
    let netns = TestNetns::new();
    for args in [
        &["link", "add", "p0", "type", "veth", "peer", "name", "p1"][..],
        &["addr", "add", "10.37.0.1/24", "dev", "p0"],
        &["link", "set", "p0", "up"],
        &["link", "set", "p1", "up"],
    ] {
        netns.ip(args).unwrap_or_else(|| panic!("ip {args:?} failed"));
    }

    let server = FakeApiServer::with_danm_kinds();
    server.register(ResourceType::namespaced("events.k8s.io", "v1", "events", "Event"));
    server.seed(&json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"}}));
    server.seed(&json!({
        "apiVersion": "danm.k8s.io/v1", "kind": "DanmNet",
        "metadata": {"name": "overlay", "namespace": "default"},
        "spec": {"NetworkID": "ovl", "NetworkType": "ipvlan", "Options": {"host_device": "p0", "vxlan": 37}}
    }));
    let address = server.serve_http().await.unwrap();
    let dir = tempfile::TempDir::new().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, FakeApiServer::kubeconfig(address)).unwrap();
    let port = free_port();

    // The flags and environment of deploy/netwatcher/daemonset.yaml, plus the test's namespace and lock.
    let mut child = Command::new(env!("CARGO_BIN_EXE_netwatcher"))
        .env_clear()
        .env("KUBECONFIG", &kubeconfig)
        .env("NODE_NAME", "node-1")
        .env("RUST_LOG", "info")
        .args(["--metrics-listen", &format!("127.0.0.1:{port}"), "--resync=1"])
        .args(["--host-netns", &netns.path()])
        .arg("--node-lock")
        .arg(dir.path().join("host-interfaces.lock"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    wait_for("vx_ovl", || netns.alias("vx_ovl").as_deref() == Some("danm-holders:DanmNet/default/overlay")).await;
    netns.ip(&["link", "del", "vx_ovl"]).unwrap();
    wait_for("vx_ovl back", || netns.alias("vx_ovl").is_some()).await;
    wait_for("ready", || http_get(port, "/readyz").is_some_and(|r| is_ok(&r))).await;
    assert!(is_ok(&http_get(port, "/healthz").unwrap()));
    let metrics = http_get(port, "/metrics").unwrap();
    assert!(
        metrics.contains(r#"danm_netwatcher_steps_total{component="netwatcher",step="create",result="ok"} 2"#),
        "{metrics}"
    );
    let events = server.objects_json("events.k8s.io/v1", "Event");
    assert!(
        events.iter().any(|e| e["reason"] == "HostInterfaceReady" && e["reportingInstance"] == "node-1"),
        "{events:?}"
    );

    let danmnets: Api<DanmNet> = Api::namespaced(server.client(), "default");
    danmnets.delete("overlay", &DeleteParams::default()).await.unwrap();
    wait_for("vx_ovl gone", || netns.alias("vx_ovl").is_none()).await;
    assert!(netns.alias("p0").is_some(), "what is not DANM's stays");

    let (status, log) = terminate(&mut child, Duration::from_secs(10)).await;
    assert!(status.success(), "{status}: {log}");
    assert!(log.contains("netwatcher stopped"), "{log}");
}

//! `danm` and danmctl with the Kubernetes datastore: ADD and DEL through the fake API server served
//! over HTTP (no root needed: the network's delegate is a script), an unreachable cluster is a transient
//! error, and,
//! with `KUBECONFIG` set, the CNI and danmctl on a real cluster (ignored by default: `cargo test -p danm-cli --test kubeconfig --
//! --ignored`, see docs/operations.md).

use std::io::Write;
use std::process::{Command, Stdio};

/// A kubeconfig whose cluster listens nowhere.
fn unreachable_kubeconfig(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"https://127.0.0.1:1\"}}]\n\
         users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
    )
    .unwrap();
    path
}

#[test]
fn an_unreachable_cluster_is_a_transient_cni_error() {
    let dir = tempfile::TempDir::new().unwrap();
    let conf = serde_json::json!({"cniVersion": "1.0.0", "name": "danm", "type": "danm",
        "kubeconfig": unreachable_kubeconfig(dir.path())});
    let mut child = Command::new(env!("CARGO_BIN_EXE_danm"))
        .env_clear()
        .env("CNI_COMMAND", "ADD")
        .env("CNI_CONTAINERID", "c1")
        .env("CNI_NETNS", "/var/run/netns/none")
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", "/usr/lib/cni")
        .env("CNI_ARGS", "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(conf.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let err: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["code"], 11, "{err}");
    assert!(err["msg"].as_str().unwrap().contains("datastore"), "{err}");
}

#[test]
#[ignore = "needs a real cluster: KUBECONFIG"]
fn danmctl_lists_networks_of_a_real_cluster() {
    let Ok(kubeconfig) = std::env::var("KUBECONFIG") else {
        panic!("set KUBECONFIG to a cluster with the CRDs of deploy/crds applied");
    };
    let out = Command::new(env!("CARGO_BIN_EXE_danmctl"))
        .args(["--datastore", &format!("kube:{kubeconfig}"), "get", "networks"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("KIND"));
}

/// A CNI plugin that succeeds: on ADD it reports one pod interface with a fixed address.
const OK_PLUGIN: &str = r#"cat >/dev/null
if [ "$CNI_COMMAND" = ADD ]; then
  printf '{"cniVersion":"1.0.0","interfaces":[{"name":"%s","mac":"02:00:00:00:00:07","sandbox":"%s"}],"ips":[{"address":"10.77.0.7/24","gateway":"10.77.0.1","interface":0}]}' "$CNI_IFNAME" "$CNI_NETNS"
fi
exit 0"#;

/// A temporary directory with a CNI config directory holding `ext.conf` (a network of type `okplug`) and a
/// plugin directory holding the `okplug` script.
struct Delegate {
    dir: tempfile::TempDir,
}

impl Delegate {
    fn new() -> Self {
        let dir = tempfile::TempDir::new().unwrap();
        let net_d = dir.path().join("net.d");
        std::fs::create_dir(&net_d).unwrap();
        std::fs::write(net_d.join("ext.conf"), r#"{"cniVersion":"1.0.0","name":"ext","type":"okplug"}"#).unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        let plugin = dir.path().join("bin").join("okplug");
        std::fs::write(&plugin, format!("#!/bin/sh\n{OK_PLUGIN}\n")).unwrap();
        std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        Self { dir }
    }

    fn conf(&self, kubeconfig: &std::path::Path) -> serde_json::Value {
        serde_json::json!({"cniVersion": "1.0.0", "name": "danm", "type": "danm", "kubeconfig": kubeconfig,
            "cniDir": self.dir.path().join("net.d"), "timeoutSeconds": 10, "hostname": "node-1",
            "logFile": self.dir.path().join("danm.log")})
    }

    /// Runs `danm` for the pod `namespace/p` with `uid`: whether it succeeded, and its output (with the log
    /// when it failed).
    fn run(&self, command: &str, kubeconfig: &std::path::Path, namespace: &str, uid: &str) -> (bool, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_danm"))
            .env_clear()
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", "c1")
            .env("CNI_NETNS", "/var/run/netns/p")
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", self.dir.path().join("bin"))
            .env("CNI_ARGS", format!("K8S_POD_NAMESPACE={namespace};K8S_POD_NAME=p;K8S_POD_UID={uid}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(self.conf(kubeconfig).to_string().as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            text.push_str(&std::fs::read_to_string(self.dir.path().join("danm.log")).unwrap_or_default());
        }
        (out.status.success(), text)
    }
}

#[test]
fn danm_adds_and_deletes_through_an_api_server() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let server = danm_k8s::testing::FakeApiServer::with_danm_kinds();
    let address = runtime.block_on(server.serve_http()).unwrap();
    let delegate = Delegate::new();
    let kubeconfig = delegate.dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, danm_k8s::testing::FakeApiServer::kubeconfig(address)).unwrap();

    server.seed(&serde_json::json!({"apiVersion": "danm.k8s.io/v1", "kind": "DanmNet",
        "metadata": {"name": "ext", "namespace": "vnf"}, "spec": {"NetworkID": "ext", "NetworkType": "okplug"}}));
    let pod = server.seed(&serde_json::json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "vnf", "labels": {"app": "edge"},
            "annotations": {"danm.k8s.io/interfaces": r#"[{"network":"ext"}]"#}},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "x"}]}}));
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_owned();

    let (ok, out) = delegate.run("ADD", &kubeconfig, "vnf", &uid);
    assert!(ok, "ADD failed: {out}");
    let result: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(result["ips"][0]["address"], "10.77.0.7/24", "{result}");

    let eps = server.objects_json("danm.k8s.io/v1", "DanmEp");
    assert_eq!(eps.len(), 1);
    assert_eq!(eps[0]["metadata"]["labels"]["app"], "edge", "the DanmEp carries the pod's labels");
    assert_eq!(eps[0]["spec"]["Interface"]["Address"], "10.77.0.7/24");
    let pods = server.objects_json("v1", "Pod");
    let status = pods[0]["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"].as_str().unwrap();
    let status: serde_json::Value = serde_json::from_str(status).unwrap();
    assert_eq!(status[0]["name"], "vnf/ext");
    assert_eq!(status[0]["ips"], serde_json::json!(["10.77.0.7"]));
    assert_eq!(status[0]["gateway"], serde_json::json!(["10.77.0.1"]));
    assert_eq!(pods[0]["spec"]["containers"][0]["image"], "x", "the Pod is otherwise untouched");

    for _ in 0..2 {
        let (ok, out) = delegate.run("DEL", &kubeconfig, "vnf", &uid);
        assert!(ok, "DEL failed: {out}");
        assert!(server.objects_json("danm.k8s.io/v1", "DanmEp").is_empty());
    }
}

#[test]
#[ignore = "needs a real cluster: KUBECONFIG"]
fn danm_adds_and_deletes_on_a_real_cluster() {
    use k8s_openapi::api::core::v1::{Namespace, Pod};
    use kube::api::{Api, DeleteParams, PostParams};

    let Ok(kubeconfig) = std::env::var("KUBECONFIG") else {
        panic!("set KUBECONFIG to a cluster with the CRDs of deploy/crds applied");
    };
    let kubeconfig = std::path::PathBuf::from(kubeconfig);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let client = runtime.block_on(danm_k8s::client_from_kubeconfig(&kubeconfig)).unwrap();
    let namespace = format!("danm-rs-test-{}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": namespace}})).unwrap();
    runtime.block_on(namespaces.create(&PostParams::default(), &ns)).unwrap();

    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let networks: Api<danm_k8s::DanmNet> = Api::namespaced(client.clone(), &namespace);
        let net = serde_json::from_value(serde_json::json!({"apiVersion": "danm.k8s.io/v1", "kind": "DanmNet",
            "metadata": {"name": "ext"}, "spec": {"NetworkID": "ext", "NetworkType": "okplug"}}))
        .unwrap();
        runtime.block_on(networks.create(&PostParams::default(), &net)).unwrap();
        // A pod bound to a node that does not exist: never started, but a real Pod for the CNI to read.
        let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
        let pod: Pod = serde_json::from_value(serde_json::json!({"metadata": {"name": "p", "labels": {"app": "edge"},
            "annotations": {"danm.k8s.io/interfaces": r#"[{"network":"ext"}]"#}},
            "spec": {"nodeName": "danm-rs-no-such-node", "containers": [{"name": "c", "image": "x"}]}}))
        .unwrap();
        let pod = runtime.block_on(pods.create(&PostParams::default(), &pod)).unwrap();
        let uid = pod.metadata.uid.unwrap();

        let delegate = Delegate::new();
        let (ok, out) = delegate.run("ADD", &kubeconfig, &namespace, &uid);
        assert!(ok, "ADD failed: {out}");
        let pod = runtime.block_on(pods.get("p")).unwrap();
        let annotations = pod.metadata.annotations.unwrap_or_default();
        assert!(annotations["k8s.v1.cni.cncf.io/network-status"].contains("10.77.0.7"));
        let (ok, out) = delegate.run("DEL", &kubeconfig, &namespace, &uid);
        assert!(ok, "DEL failed: {out}");
    }));
    let _ = runtime.block_on(namespaces.delete(&namespace, &DeleteParams::default()));
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

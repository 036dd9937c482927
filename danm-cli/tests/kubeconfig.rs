//! `danm` and danmctl with the Kubernetes datastore: an unreachable cluster is a transient error, and,
//! with `KUBECONFIG` set, a real cluster (ignored by default: `cargo test -p danm-cli --test kubeconfig --
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

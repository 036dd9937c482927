//! `danm` on the Kubernetes datastore takes the devices of `sriov` attachments from the kubelet's
//! PodResources API: the fake API server holds the network and the pod, a fake kubelet on a unix socket
//! holds the pod's VFs, and a script stands in for the `sriov` plugin, keeping the configuration it was
//! given. No root needed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use danm_k8s::podresources::proto::{ContainerDevices, ContainerResources, PodResources};
use danm_k8s::testing::{FakeApiServer, FakeKubelet};
use serde_json::{Value, json};

const POOL: &str = "nokia.k8s.io/sriov_ens1f0";

/// A plugin directory with `sriov` (writes its configuration to `<dir>/<command>-<ifname>.json`, answers
/// ADD with the pod's interface) and `okplug` (answers ADD with an address), and the kubeconfig.
struct Node {
    dir: tempfile::TempDir,
}

impl Node {
    fn new(kubeconfig: &str) -> Self {
        let dir = tempfile::TempDir::new().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::fs::create_dir(dir.path().join("net.d")).unwrap();
        std::fs::write(dir.path().join("net.d/ext.conf"), r#"{"cniVersion":"1.0.0","name":"ext","type":"okplug"}"#)
            .unwrap();
        let sriov = format!(
            "#!/bin/sh\ncat > '{}/'\"$CNI_COMMAND-$CNI_IFNAME.json\"\n\
             [ \"$CNI_COMMAND\" = ADD ] && printf '{{\"cniVersion\":\"0.3.1\",\"interfaces\":[{{\"name\":\"%s\",\"sandbox\":\"%s\"}}]}}' \"$CNI_IFNAME\" \"$CNI_NETNS\"\n\
             exit 0\n",
            dir.path().display()
        );
        let okplug = "#!/bin/sh\ncat >/dev/null\n[ \"$CNI_COMMAND\" = ADD ] && printf '{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.77.0.7/24\"}]}'\nexit 0\n";
        for (name, text) in [("sriov", sriov.as_str()), ("okplug", okplug)] {
            std::fs::write(bin.join(name), text).unwrap();
            std::fs::set_permissions(bin.join(name), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        }
        std::fs::write(dir.path().join("kubeconfig"), kubeconfig).unwrap();
        Self { dir }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("kubelet.sock")
    }

    /// Runs `danm` for pod `vnf/<pod>` with the kubelet socket at `socket`: whether it succeeded, and its
    /// output (with the log when it failed).
    fn run(&self, command: &str, pod: &str, uid: &str, socket: &Path) -> (bool, String) {
        let conf = json!({"cniVersion": "1.0.0", "name": "danm", "type": "danm",
            "kubeconfig": self.dir.path().join("kubeconfig"), "cniDir": self.dir.path().join("net.d"),
            "kubeletSocket": socket, "timeoutSeconds": 10, "hostname": "node-1",
            "logFile": self.dir.path().join("danm.log")});
        let mut child = Command::new(env!("CARGO_BIN_EXE_danm"))
            .env_clear()
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", format!("c-{pod}"))
            .env("CNI_NETNS", format!("/var/run/netns/{pod}"))
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", self.dir.path().join("bin"))
            .env("CNI_ARGS", format!("K8S_POD_NAMESPACE=vnf;K8S_POD_NAME={pod};K8S_POD_UID={uid}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(conf.to_string().as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            text.push_str(&std::fs::read_to_string(self.dir.path().join("danm.log")).unwrap_or_default());
        }
        (out.status.success(), text)
    }

    /// The configuration the `sriov` script got for `command` on `ifname`.
    fn sriov_conf(&self, command: &str, ifname: &str) -> Value {
        let path = self.dir.path().join(format!("{command}-{ifname}.json"));
        serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
    }
}

/// Seeds pod `vnf/<name>` asking for `interfaces`; returns its UID.
fn seed_pod(server: &FakeApiServer, name: &str, interfaces: &str) -> String {
    let pod = server.seed(&json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "vnf", "annotations": {"danm.k8s.io/interfaces": interfaces}},
        "spec": {"nodeName": "node-1", "containers": [{"name": "main", "image": "x"}, {"name": "side", "image": "x"}]}}));
    pod["metadata"]["uid"].as_str().unwrap().to_owned()
}

#[test]
fn sriov_attachments_take_the_devices_the_kubelet_allocated() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let server = FakeApiServer::with_danm_kinds();
    let address = runtime.block_on(server.serve_http()).unwrap();
    let node = Node::new(&FakeApiServer::kubeconfig(address));
    let kubelet = FakeKubelet::new();
    let devices = |ids: &[&str]| ContainerDevices {
        resource_name: POOL.into(),
        device_ids: ids.iter().map(|s| (*s).to_owned()).collect(),
    };
    kubelet.add_pod(PodResources {
        name: "p".into(),
        namespace: "vnf".into(),
        containers: vec![
            ContainerResources { name: "main".into(), devices: vec![devices(&["0000:3b:02.5"])] },
            ContainerResources { name: "side".into(), devices: vec![devices(&["0000:3b:02.1"])] },
        ],
    });
    runtime.block_on(async { kubelet.serve(&node.socket()) }).unwrap();

    server.seed(&json!({"apiVersion": "danm.k8s.io/v1", "kind": "DanmNet",
        "metadata": {"name": "fast", "namespace": "vnf"},
        "spec": {"NetworkID": "fast", "NetworkType": "sriov",
            "Options": {"device_pool": POOL, "cidr": "10.88.0.0/24", "vlan": 500}}}));
    server.seed(&json!({"apiVersion": "danm.k8s.io/v1", "kind": "DanmNet",
        "metadata": {"name": "ext", "namespace": "vnf"}, "spec": {"NetworkID": "ext", "NetworkType": "okplug"}}));
    let uid = seed_pod(&server, "p", r#"[{"network":"fast","ip":"dynamic"},{"network":"fast","ip":"dynamic"}]"#);

    let (ok, out) = node.run("ADD", "p", &uid, &node.socket());
    assert!(ok, "ADD failed: {out}");
    assert_eq!(kubelet.calls(), ["Get"], "one question for both attachments");
    for (ifname, device) in [("eth0", "0000:3b:02.5"), ("eth1", "0000:3b:02.1")] {
        let conf = node.sriov_conf("ADD", ifname);
        assert_eq!(conf["deviceID"], device, "{ifname}: {conf}");
        assert_eq!(
            (conf["type"].as_str(), conf["name"].as_str(), conf["vlan"].as_i64()),
            (Some("sriov"), Some("fast"), Some(500))
        );
        assert_eq!(conf["ipam"]["type"], "fakeipam", "{conf}");
    }
    let mut recorded: Vec<String> = server
        .objects_json("danm.k8s.io/v1", "DanmEp")
        .iter()
        .map(|ep| ep["spec"]["Interface"]["DeviceID"].as_str().unwrap_or_default().to_owned())
        .collect();
    recorded.sort();
    assert_eq!(recorded, ["0000:3b:02.1", "0000:3b:02.5"], "the DanmEps record the devices");

    let (ok, out) = node.run("DEL", "p", &uid, &node.socket());
    assert!(ok, "DEL failed: {out}");
    assert_eq!(node.sriov_conf("DEL", "eth1")["deviceID"], "0000:3b:02.1", "DEL gets the recorded device");
    assert!(server.objects_json("danm.k8s.io/v1", "DanmEp").is_empty());
    assert_eq!(kubelet.calls(), ["Get"], "DEL asks the kubelet nothing");
}

#[test]
fn a_missing_kubelet_socket_fails_only_attachments_that_need_a_device() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let server = FakeApiServer::with_danm_kinds();
    let address = runtime.block_on(server.serve_http()).unwrap();
    let node = Node::new(&FakeApiServer::kubeconfig(address));
    let missing = node.dir.path().join("no-kubelet.sock");
    server.seed(&json!({"apiVersion": "danm.k8s.io/v1", "kind": "DanmNet",
        "metadata": {"name": "fast", "namespace": "vnf"},
        "spec": {"NetworkID": "fast", "NetworkType": "sriov", "Options": {"device_pool": POOL, "cidr": "10.88.0.0/24"}}}));
    server.seed(&json!({"apiVersion": "danm.k8s.io/v1", "kind": "DanmNet",
        "metadata": {"name": "ext", "namespace": "vnf"}, "spec": {"NetworkID": "ext", "NetworkType": "okplug"}}));

    let plain = seed_pod(&server, "plain", r#"[{"network":"ext"}]"#);
    let (ok, out) = node.run("ADD", "plain", &plain, &missing);
    assert!(ok, "a pod without sriov needs no kubelet: {out}");

    let uid = seed_pod(&server, "p", r#"[{"network":"ext"},{"network":"fast","ip":"dynamic"}]"#);
    let (ok, out) = node.run("ADD", "p", &uid, &missing);
    assert!(!ok);
    let err: Value = serde_json::Deserializer::from_str(&out).into_iter().next().unwrap().unwrap();
    assert_eq!(err["code"], 106, "{err}");
    let msg = err["msg"].as_str().unwrap();
    assert!(msg.contains(&format!("the devices of pool {POOL}")), "{msg}");
    assert!(
        msg.contains(&format!("the kubelet's PodResources API at {} cannot be reached", missing.display())),
        "{msg}"
    );
    let eps = server.objects_json("danm.k8s.io/v1", "DanmEp");
    assert_eq!(eps.len(), 1, "only the plain pod's DanmEp is left: {eps:?}");
    assert_eq!(eps[0]["spec"]["Pod"], "plain");
}

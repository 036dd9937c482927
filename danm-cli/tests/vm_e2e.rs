//! The `danm` binary inside the user-mode-linux VM, whose kernel has ipvlan and 802.1Q: a pod with two
//! built-in ipvlan attachments, one on a VLAN network and one on the host device, ADD, CHECK and DEL on
//! the local store. Run by `tools/test-all.sh` through `tools/uml-run.sh` (which copies the `danm`
//! binary into the VM and sets `DANM_VM=1`); ignored on the host.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{Netns, ci, ip};
use danm_cli::store::SqliteStore;
use danm_core::model::DanmEp;
use danm_core::store::{DatastoreExt, EndpointQuery, Query};
use futures::executor::block_on;
use serde_json::{Value, json};

const NETWORKS: &str = r#"
apiVersion: danm.k8s.io/v1
kind: DanmNet
metadata: {name: vl, namespace: ns}
spec:
  NetworkID: vl
  NetworkType: ipvlan
  Options: {host_device: dp0, vlan: 100, cidr: 10.40.0.0/24, net6: "fd00:40::/64"}
---
apiVersion: danm.k8s.io/v1
kind: DanmNet
metadata: {name: flat, namespace: ns}
spec:
  NetworkID: flat
  Options: {host_device: dp0, cidr: 10.41.0.0/24, rt_tables: 100}
"#;

fn in_vm() -> bool {
    if std::env::var("DANM_VM").as_deref() == Ok("1") {
        return true;
    }
    assert!(!ci(), "CI=true but this test runs only inside the VM (tools/uml-run.sh)");
    eprintln!("SKIPPED: not inside the test VM; tools/test-all.sh runs this binary through tools/uml-run.sh");
    false
}

fn danm(command: &str, netns: &std::path::Path, conf: &Value) -> (bool, Value) {
    let mut child = Command::new("/mnt/danm")
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", "vm-container-1")
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", "/mnt")
        .env("CNI_ARGS", "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=pod;K8S_POD_UID=u-1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the danm binary is in the VM's share");
    child.stdin.take().unwrap().write_all(conf.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let v = if out.stdout.is_empty() { Value::Null } else { serde_json::from_slice(&out.stdout).unwrap() };
    (out.status.success(), v)
}

#[test]
#[ignore = "runs inside the VM: tools/test-all.sh"]
fn two_ipvlan_attachments_one_on_a_vlan_add_check_del() {
    if !in_vm() {
        return;
    }
    for args in [&["link", "add", "name", "dp0", "type", "dummy"][..], &["link", "set", "dp0", "up"]] {
        let out = ip(args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("danm.db");
    let store = SqliteStore::open(&db).unwrap();
    block_on(danm_cli::ctl::apply(&store, NETWORKS, "ns", false)).unwrap();
    let pod_doc = json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"pod","namespace":"ns","uid":"u-1",
        "annotations":{"danm.k8s.io/interfaces":
            r#"[{"network":"vl","ip":"dynamic","ip6":"dynamic"},{"network":"flat","ip":"10.41.0.9","proutes":{"10.50.0.0/16":"10.41.0.1"}}]"#}}});
    block_on(danm_cli::ctl::apply(&store, &pod_doc.to_string(), "ns", false)).unwrap();
    let conf = json!({"cniVersion":"1.0.0","name":"danm","type":"danm","datastore":{"type":"local","path":db},
        "cniDir": dir.path()});
    let pod = Netns::create("vm-pod");

    let (ok, result) = danm("ADD", &pod.path(), &conf);
    assert!(ok, "ADD failed: {result}");
    assert_eq!(pod.global_addrs("eth0"), ["10.40.0.1/24", "fd00:40::1/64"]);
    assert_eq!(pod.global_addrs("eth1"), ["10.41.0.9/24"]);
    for (dev, kind) in [("eth0", "ipvlan"), ("eth1", "ipvlan")] {
        let link = pod.ip_json(&["-d", "link", "show", "dev", dev]).unwrap();
        assert_eq!(link[0]["linkinfo"]["info_kind"], kind, "{link}");
    }
    // The VLAN host interface `<NetworkID>.<vlan>` exists on the host device.
    let vlan = serde_json::from_slice::<Value>(&ip(&["-j", "-d", "link", "show", "dev", "vl.100"]).stdout).unwrap();
    assert_eq!(vlan[0]["linkinfo"]["info_data"]["id"], 100, "{vlan}");
    // The policy route of eth1 is in table 100, with a rule from its subnet.
    let routes = pod.ip_json(&["route", "show", "table", "100"]).unwrap();
    assert_eq!(routes[0]["dst"], "10.50.0.0/16", "{routes}");
    let rules = pod.ip_json(&["rule", "show"]).unwrap();
    assert!(rules.as_array().unwrap().iter().any(|r| r["table"] == "100"), "{rules}");

    let (ok, out) = danm("CHECK", &pod.path(), &conf);
    assert!(ok, "CHECK failed: {out}");
    let (ok, out) = danm("DEL", &pod.path(), &conf);
    assert!(ok, "DEL failed: {out}");
    let left = pod.ip_json(&["link", "show"]).unwrap();
    assert_eq!(left.as_array().unwrap().len(), 1, "only lo may be left: {left}");
    let eps = block_on(store.list_as::<DanmEp>(&Query::Endpoints(EndpointQuery::default()))).unwrap();
    assert!(eps.is_empty());
    let (ok, out) = danm("DEL", &pod.path(), &conf);
    assert!(ok, "repeated DEL failed: {out}");
}

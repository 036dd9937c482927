//! The `danm` binary end to end on the local store, as root, with real delegates (Debian's CNI plugins)
//! and the netlink backend, in network namespaces the tests create: ADD, CHECK, DEL, GC, concurrency,
//! a process killed mid-ADD, and rejections.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Netns, plugin_dir, require, script};
use danm_cli::store::SqliteStore;
use danm_core::model::{DanmEp, Network};
use danm_core::store::{Datastore, DatastoreExt, EndpointQuery, Object, Query};
use futures::executor::block_on;
use serde_json::{Value, json};
use tempfile::TempDir;

/// A host netns with a bridge `br-e2e` (the built-in macvlan parent), a store, a CNI config dir and a
/// plugin dir.
struct Env {
    host: Netns,
    dir: TempDir,
    plugins: TempDir,
}

const NETWORKS: &str = r#"
apiVersion: danm.k8s.io/v1
kind: DanmNet
metadata: {name: mac, namespace: ns}
spec:
  NetworkID: mac
  NetworkType: macvlan
  Options: {host_device: br-e2e, cidr: 10.10.0.0/24, routes: {"10.200.0.0/16": 10.10.0.254}}
---
apiVersion: danm.k8s.io/v1
kind: DanmNet
metadata: {name: brnet, namespace: ns}
spec:
  NetworkID: brnet
  NetworkType: bridge
  Options: {cidr: 10.20.0.0/24}
---
apiVersion: danm.k8s.io/v1
kind: DanmNet
metadata: {name: chain, namespace: ns}
spec:
  NetworkID: chain
  NetworkType: chained
  Options: {cidr: 10.30.0.0/24}
---
apiVersion: danm.k8s.io/v1
kind: DanmNet
metadata: {name: slow, namespace: ns}
spec:
  NetworkID: slow
  NetworkType: hang
"#;

impl Env {
    fn new() -> Self {
        let host = Netns::create("e2e-host");
        for args in [
            &["link", "add", "br-e2e", "type", "bridge"][..],
            &["link", "set", "br-e2e", "up"],
            &["link", "set", "lo", "up"],
        ] {
            let out = host.ip(args);
            assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        let dir = TempDir::new().unwrap();
        let conf = dir.path().join("net.d");
        std::fs::create_dir(&conf).unwrap();
        let bridge = json!({"cniVersion":"1.0.0","name":"brnet","type":"bridge","bridge":"br-d",
            "ipam":{"type":"host-local","subnet":"10.99.0.0/24","dataDir": dir.path().join("hl")}});
        std::fs::write(conf.join("brnet.conf"), bridge.to_string()).unwrap();
        let chain = json!({"cniVersion":"1.0.0","name":"chain","plugins":[
            {"type":"macvlan","master":"br-e2e","mode":"bridge","ipam":{"type":"host-local","subnet":"10.98.0.0/24",
             "dataDir": dir.path().join("hl")}},
            {"type":"tuning","mtu":1400,"dataDir": dir.path().join("tuning")}]});
        std::fs::write(conf.join("chain.conflist"), chain.to_string()).unwrap();
        std::fs::write(conf.join("slow.conf"), r#"{"cniVersion":"1.0.0","name":"slow","type":"hang"}"#).unwrap();
        let plugins = plugin_dir(None);
        // Hangs on ADD only; anything else succeeds doing nothing, as a plugin with nothing to undo would.
        script(plugins.path(), "hang", "[ \"$CNI_COMMAND\" = ADD ] && exec sleep 61\nexit 0");
        let env = Self { host, dir, plugins };
        let store = env.store();
        block_on(danm_cli::ctl::apply(&store, NETWORKS, "ns", false)).unwrap();
        env
    }

    /// Applies DanmNet `name` of namespace `ns` (NetworkID as its name) with `spec`, and writes its static
    /// delegate configuration `<name>.<ext>`.
    fn static_network(&self, name: &str, spec: &str, ext: &str, conf: Value) {
        let network = format!(
            "apiVersion: danm.k8s.io/v1\nkind: DanmNet\nmetadata: {{name: {name}, namespace: ns}}\nspec: {spec}\n"
        );
        block_on(danm_cli::ctl::apply(&self.store(), &network, "ns", false)).unwrap();
        std::fs::write(self.dir.path().join(format!("net.d/{name}.{ext}")), conf.to_string()).unwrap();
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("danm.db")
    }

    fn store(&self) -> SqliteStore {
        SqliteStore::open(self.db()).unwrap()
    }

    fn pod(&self, name: &str, annotation: &str) {
        let doc = json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":name,"namespace":"ns","uid":format!("uid-{name}"),
            "annotations":{"danm.k8s.io/interfaces": annotation}}});
        block_on(danm_cli::ctl::apply(&self.store(), &doc.to_string(), "ns", false)).unwrap();
    }

    fn conf(&self, version: &str, extra: Value) -> Vec<u8> {
        let mut c = json!({"cniVersion": version, "name": "danm", "type": "danm",
            "datastore": {"type": "local", "path": self.db()}, "cniDir": self.dir.path().join("net.d"),
            "timeoutSeconds": 5, "logFile": self.dir.path().join("danm.log")});
        if let (Some(m), Value::Object(e)) = (c.as_object_mut(), extra) {
            m.extend(e);
        }
        serde_json::to_vec(&c).unwrap()
    }

    /// Starts `danm` inside the host netns with the CNI environment.
    fn spawn(&self, command: &str, pod: &str, netns: Option<&Path>, stdin: &[u8]) -> std::process::Child {
        let mut cmd = Command::new(common::ip_binary().unwrap());
        cmd.args(["netns", "exec", &self.host.name, env!("CARGO_BIN_EXE_danm")])
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", format!("cid-{pod}"))
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", self.plugins.path())
            .env("CNI_ARGS", format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME={pod};K8S_POD_UID=uid-{pod}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(ns) = netns {
            cmd.env("CNI_NETNS", ns);
        }
        let mut child = cmd.spawn().unwrap();
        // danm stops reading an oversized input, so the write may meet a closed pipe.
        let _ = child.stdin.take().unwrap().write_all(stdin);
        child
    }

    /// Runs `danm`; returns its exit success and stdout parsed as JSON (null when empty).
    fn run(&self, command: &str, pod: &str, netns: Option<&Path>, stdin: &[u8]) -> (bool, Value) {
        let out = self.spawn(command, pod, netns, stdin).wait_with_output().unwrap();
        let v = if out.stdout.is_empty() { Value::Null } else { serde_json::from_slice(&out.stdout).unwrap() };
        (out.status.success(), v)
    }

    fn endpoints(&self) -> Vec<DanmEp> {
        let q = Query::Endpoints(EndpointQuery::default());
        block_on(self.store().list_as::<DanmEp>(&q)).unwrap().into_iter().map(|v| v.value).collect()
    }

    fn allocations(&self) -> usize {
        let store = self.store();
        let nets = block_on(store.list_as::<Network>(&Query::Networks { kind: None, namespace: None })).unwrap();
        let mut n = 0;
        for net in nets {
            for f in [danm_core::ipam::Family::V4, danm_core::ipam::Family::V6] {
                let q = Query::Blocks(danm_core::ipam::PoolKey::new(net.value.key(), f));
                for b in block_on(store.list(&q)).unwrap() {
                    if let Object::Block { block, .. } = b.value {
                        n += block.len();
                    }
                }
            }
        }
        n
    }

    /// The links in `pod` other than `lo`.
    fn links(pod: &Netns) -> Vec<String> {
        let links = pod.ip_json(&["link", "show"]).unwrap();
        links
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|l| l["ifname"].as_str())
            .filter(|n| *n != "lo")
            .map(str::to_owned)
            .collect()
    }

    fn assert_clean(&self, pods: &[&Netns]) {
        assert!(self.endpoints().is_empty(), "DanmEps left: {:?}", self.endpoints());
        assert_eq!(self.allocations(), 0, "addresses left allocated");
        for p in pods {
            assert!(Self::links(p).is_empty(), "interfaces left in {}: {:?}", p.name, Self::links(p));
        }
    }
}

const THREE: &str =
    r#"[{"network":"mac","ip":"dynamic"},{"network":"brnet","ip":"dynamic"},{"network":"chain","ip":"10.30.0.7"}]"#;

#[test]
fn three_attachments_with_real_delegates_add_check_del() {
    if !require(true) {
        return;
    }
    let env = Env::new();
    let pod = Netns::create("e2e-pod");
    env.pod("p", THREE);
    let (ok, result) = env.run("ADD", "p", Some(&pod.path()), &env.conf("1.0.0", json!({})));
    assert!(ok, "ADD failed: {result}");
    let ips: Vec<&str> = result["ips"].as_array().unwrap().iter().map(|i| i["address"].as_str().unwrap()).collect();
    assert_eq!(ips, ["10.10.0.1/24", "10.20.0.1/24", "10.30.0.7/24"], "{result}");
    assert_eq!(result["interfaces"][0]["name"], "eth0", "eth0 first: {result}");

    // Read back from the kernel.
    assert_eq!(pod.global_addrs("eth0"), ["10.10.0.1/24"]);
    assert_eq!(pod.global_addrs("eth1"), ["10.20.0.1/24"]);
    assert_eq!(pod.global_addrs("eth2"), ["10.30.0.7/24"]);
    let eth2 = pod.ip_json(&["link", "show", "dev", "eth2"]).unwrap();
    assert_eq!(eth2[0]["mtu"], 1400, "the chain's tuning plugin ran");
    let routes = pod.ip_json(&["route", "show", "10.200.0.0/16"]).unwrap();
    assert_eq!(routes[0]["dev"], "eth0", "the network's route is bound to its interface");
    let eps = env.endpoints();
    assert_eq!(eps.len(), 3);
    assert!(eps.iter().all(|e| !e.spec.interface.address.is_empty()));

    let (ok, out) = env.run("CHECK", "p", Some(&pod.path()), &env.conf("1.0.0", json!({})));
    assert!(ok, "CHECK failed: {out}");
    // GC without the runtime's list of valid attachments has nothing to judge by: it removes nothing.
    let (ok, out) = env.run("GC", "p", None, &env.conf("1.1.0", json!({})));
    assert!(ok, "GC failed: {out}");
    assert_eq!(env.endpoints().len(), 3, "GC without cni.dev/valid-attachments removed attachments");
    assert!(pod.ip(&["link", "del", "eth0"]).status.success());
    let (ok, out) = env.run("CHECK", "p", Some(&pod.path()), &env.conf("1.0.0", json!({})));
    assert!(!ok && out["code"] == 109, "CHECK must see eth0 gone: {out}");

    let (ok, out) = env.run("DEL", "p", Some(&pod.path()), &env.conf("1.0.0", json!({})));
    assert!(ok, "DEL failed: {out}");
    env.assert_clean(&[&pod]);
    let (ok, out) = env.run("DEL", "p", Some(&pod.path()), &env.conf("1.0.0", json!({})));
    assert!(ok, "repeated DEL failed: {out}");
    let (ok, out) = env.run("DEL", "p", None, &env.conf("1.0.0", json!({})));
    assert!(ok, "DEL without a netns failed: {out}");
    let (ok, out) = env.run("STATUS", "p", None, &env.conf("1.1.0", json!({})));
    assert!(ok, "STATUS failed: {out}");
}

#[test]
fn eight_processes_at_once_never_share_an_address() {
    if !require(true) {
        return;
    }
    let env = Env::new();
    let pods: Vec<Netns> = (0..8).map(|_| Netns::create("e2e-par")).collect();
    for i in 0..8 {
        env.pod(&format!("p{i}"), r#"[{"network":"mac","ip":"dynamic"},{"network":"chain","ip":"dynamic"}]"#);
    }
    let conf = env.conf("1.0.0", json!({}));
    let children: Vec<_> =
        pods.iter().enumerate().map(|(i, p)| env.spawn("ADD", &format!("p{i}"), Some(&p.path()), &conf)).collect();
    let mut seen = std::collections::BTreeSet::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "ADD failed: {}", String::from_utf8_lossy(&out.stdout));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        for ip in v["ips"].as_array().unwrap() {
            assert!(seen.insert(ip["address"].as_str().unwrap().to_owned()), "duplicate {ip}");
        }
    }
    assert_eq!(seen.len(), 16);
    let recorded: std::collections::BTreeSet<String> =
        env.endpoints().iter().map(|e| e.spec.interface.address.clone()).collect();
    assert_eq!(recorded, seen);
    for (i, p) in pods.iter().enumerate() {
        assert!(env.run("DEL", &format!("p{i}"), Some(&p.path()), &conf).0);
    }
    env.assert_clean(&pods.iter().collect::<Vec<_>>());
}

#[test]
fn a_danm_killed_mid_add_is_cleaned_up_by_del_or_gc() {
    if !require(true) {
        return;
    }
    for use_gc in [false, true] {
        let env = Env::new();
        let pod = Netns::create("e2e-kill");
        env.pod("k", r#"[{"network":"mac","ip":"dynamic"},{"network":"brnet","ip":"dynamic"},{"network":"slow"}]"#);
        let mut child = env.spawn("ADD", "k", Some(&pod.path()), &env.conf("1.0.0", json!({})));
        // Wait until the first two attachments exist, then kill -9.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while Env::links(&pod).len() < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let _ = Command::new("pkill").args(["-f", "sleep 61"]).status();
        assert_eq!(Env::links(&pod).len(), 2, "the killed ADD left eth0 and eth1");
        assert_eq!(env.endpoints().len(), 3);
        let (ok, out) = if use_gc {
            env.run("GC", "k", None, &env.conf("1.1.0", json!({"cni.dev/valid-attachments": []})))
        } else {
            env.run("DEL", "k", Some(&pod.path()), &env.conf("1.0.0", json!({})))
        };
        assert!(ok, "{} failed: {out}", if use_gc { "GC" } else { "DEL" });
        env.assert_clean(&[&pod]);
    }
}

#[test]
fn rejections_carry_the_right_code_and_change_nothing() {
    if !require(true) {
        return;
    }
    let env = Env::new();
    let pod = Netns::create("e2e-rej");
    env.pod("r", r#"[{"network":"nope"}]"#);
    env.pod("s", r#"[{"network":"mac","ip":"10.99.0.1"}]"#);
    let conf = env.conf("1.0.0", json!({}));
    let cases: Vec<(&str, &str, Vec<u8>, u64, &str)> = vec![
        ("ADD", "r", conf.clone(), 102, "nope"),
        ("ADD", "s", conf.clone(), 104, "outside"),
        ("ADD", "r", b"{not json".to_vec(), 6, ""),
        ("ADD", "r", env.conf("0.2.0", json!({})), 1, "0.2.0"),
        ("ADD", "r", env.conf("1.0.0", json!({"namingScheme": "fancy"})), 7, "namingScheme"),
        ("ADD", "r", vec![b' '; 2 << 20], 7, ""),
        ("FROB", "r", conf.clone(), 4, "CNI_COMMAND"),
    ];
    for (command, p, stdin, code, needle) in cases {
        let (ok, out) = env.run(command, p, Some(&pod.path()), &stdin);
        assert!(!ok, "{command} {p} succeeded: {out}");
        assert_eq!(out["code"], code, "{command} {p}: {out}");
        assert!(out["msg"].as_str().unwrap_or_default().contains(needle), "{command} {p}: {out}");
        env.assert_clean(&[&pod]);
    }
    // A missing variable is named.
    let mut child = Command::new(env!("CARGO_BIN_EXE_danm"))
        .env_clear()
        .env("CNI_COMMAND", "ADD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&conf).unwrap();
    let out: Value = serde_json::from_slice(&child.wait_with_output().unwrap().stdout).unwrap();
    assert_eq!(out["code"], 4);
    assert!(out["msg"].as_str().unwrap().contains("CNI_CONTAINERID"), "{out}");
}

#[test]
fn two_interfaces_on_one_network_with_routes() {
    if !require(true) {
        return;
    }
    let env = Env::new();
    let pod = Netns::create("e2e-twice");
    env.pod("t", r#"[{"network":"mac","ip":"dynamic"},{"network":"mac","ip":"dynamic"}]"#);
    let (ok, out) = env.run("ADD", "t", Some(&pod.path()), &env.conf("1.0.0", json!({})));
    assert!(ok, "ADD failed: {out}");
    assert_eq!(pod.global_addrs("eth0"), ["10.10.0.1/24"]);
    assert_eq!(pod.global_addrs("eth1"), ["10.10.0.2/24"]);
    let routes = pod.ip_json(&["route", "show", "10.200.0.0/16"]).unwrap();
    assert_eq!(routes[0]["dev"], "eth0", "the network's route goes on its first interface: {routes}");
    let (ok, out) = env.run("DEL", "t", Some(&pod.path()), &env.conf("1.0.0", json!({})));
    assert!(ok, "DEL failed: {out}");
    env.assert_clean(&[&pod]);
}

#[test]
fn a_real_delegates_interface_gets_the_networks_routes_policy_routes_and_sysctls() {
    if !require(true) {
        return;
    }
    let env = Env::new();
    env.static_network(
        "routed",
        r#"{NetworkID: routed, NetworkType: bridge, Options: {cidr: 10.40.0.0/24, routes: {"10.201.0.0/16": 10.40.0.254}, rt_tables: 120}}"#,
        "conf",
        json!({"cniVersion":"1.0.0","name":"routed","type":"bridge","bridge":"br-r","ipam":{"type":"host-local"}}),
    );
    let pod = Netns::create("e2e-routed");
    env.pod("r", r#"[{"network":"mac","ip":"dynamic"},{"network":"routed","ip":"dynamic","proutes":{"10.202.0.0/16":"10.40.0.253"}}]"#);
    let (ok, out) = env.run("ADD", "r", Some(&pod.path()), &env.conf("1.0.0", json!({})));
    assert!(ok, "ADD failed: {out}");

    // The bridge plugin made eth1 with DANM's address; DANM then routed it.
    assert_eq!(pod.global_addrs("eth1"), ["10.40.0.1/24"]);
    let main = pod.ip_json(&["route", "show", "10.201.0.0/16"]).unwrap();
    assert_eq!((main[0]["dev"].as_str(), main[0]["gateway"].as_str()), (Some("eth1"), Some("10.40.0.254")), "{main}");
    let table = pod.ip_json(&["route", "show", "table", "120"]).unwrap();
    let policy = table.as_array().unwrap().iter().find(|r| r["dst"] == "10.202.0.0/16").expect("the policy route");
    assert_eq!((policy["dev"].as_str(), policy["gateway"].as_str()), (Some("eth1"), Some("10.40.0.253")), "{table}");
    let rules = pod.ip_json(&["rule", "show"]).unwrap();
    let from_subnet = |rules: &Value| {
        rules.as_array().unwrap().iter().any(|r| r["src"] == "10.40.0.0" && r["srclen"] == 24 && r["table"] == "120")
    };
    assert!(from_subnet(&rules), "no rule from 10.40.0.0/24 to table 120: {rules}");
    let disabled = common::ip(&["netns", "exec", &pod.name, "cat", "/proc/sys/net/ipv6/conf/eth1/disable_ipv6"]);
    assert_eq!(String::from_utf8_lossy(&disabled.stdout).trim(), "1", "no IPv6 address: IPv6 off on eth1");

    let (ok, out) = env.run("DEL", "r", Some(&pod.path()), &env.conf("1.0.0", json!({})));
    assert!(ok, "DEL failed: {out}");
    assert!(!from_subnet(&pod.ip_json(&["rule", "show"]).unwrap()), "the policy rule outlived its interface");
    env.assert_clean(&[&pod]);
}

#[test]
fn a_real_static_delegate_takes_the_networks_host_device_and_mtu() {
    if !require(true) {
        return;
    }
    let env = Env::new();
    // The file names an interface this node does not have: the network's host_device is what counts.
    env.static_network(
        "patched",
        "{NetworkID: patched, NetworkType: chained, Options: {cidr: 10.50.0.0/24, host_device: br-e2e, mtu: 1300}}",
        "conflist",
        json!({"cniVersion":"1.0.0","name":"patched","plugins":[
            {"type":"macvlan","master":"no-such-dev","mode":"bridge","ipam":{"type":"host-local"}}]}),
    );
    let pod = Netns::create("e2e-patched");
    env.pod("m", r#"[{"network":"patched","ip":"dynamic"}]"#);
    let (ok, out) = env.run("ADD", "m", Some(&pod.path()), &env.conf("1.0.0", json!({})));
    assert!(ok, "ADD failed: {out}");
    assert_eq!(pod.global_addrs("eth0"), ["10.50.0.1/24"]);
    let link = pod.ip_json(&["-d", "link", "show", "dev", "eth0"]).unwrap();
    assert_eq!(link[0]["mtu"], 1300, "{link}");
    assert_eq!(link[0]["linkinfo"]["info_kind"], "macvlan", "{link}");
    let (ok, out) = env.run("DEL", "m", Some(&pod.path()), &env.conf("1.0.0", json!({})));
    assert!(ok, "DEL failed: {out}");
    env.assert_clean(&[&pod]);
}

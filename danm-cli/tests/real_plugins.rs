//! ProcessExecutor against the real containernetworking plugins (bridge, tuning, macvlan) with
//! fakeipam as their IPAM, in network namespaces the tests create and remove. Tests that need root or
//! the plugins print `SKIPPED: ...` when they are missing, and fail instead under `CI=true`.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Netns, plugin_dir, require, script};
use danm_cli::ProcessExecutor;
use danm_core::cni::{CniResult, CniVersion, NetConfList, VersionInfo};
use danm_core::delegate::{CniCommand, DelegateError, DelegateExecutor, Invocation};
use serde_json::json;

fn invocation(plugin: &str, command: CniCommand, pod: &Netns, container: &str, stdin: Vec<u8>) -> Invocation {
    Invocation {
        plugin: plugin.into(),
        command,
        container_id: container.into(),
        netns: Some(pod.path()),
        ifname: "eth0".into(),
        args: "IgnoreUnknown=1;K8S_POD_NAME=web-0;K8S_POD_NAMESPACE=default".into(),
        stdin,
    }
}

fn executor(dir: &Path) -> ProcessExecutor {
    ProcessExecutor::new([dir], dir)
}

#[tokio::test]
async fn bridge_with_fakeipam_add_del() {
    if !require(true) {
        return;
    }
    let (host, pod) = (Netns::create("host"), Netns::create("pod"));
    let dir = plugin_dir(Some(&host));
    let exec = executor(dir.path());
    let conf = json!({
        "cniVersion": "1.0.0", "name": "danm-test", "type": "bridge", "bridge": "danmbr0",
        "ipam": {"type": "fakeipam", "ips": [
            {"ipcidr": "10.77.3.5/24", "version": 4},
            {"ipcidr": "fd00:77::5/64", "version": 6}
        ]}
    });
    let call = |command| invocation("bridge", command, &pod, "ctr-bridge", conf.to_string().into_bytes());

    let out = exec.invoke(&call(CniCommand::Add)).await.expect("bridge ADD");
    let result = CniResult::from_slice(&out).expect("bridge prints a result");
    let mut ips: Vec<String> = result.ips.iter().map(|ip| ip.address.to_string()).collect();
    ips.sort();
    assert_eq!(ips, ["10.77.3.5/24", "fd00:77::5/64"]);
    assert!(result.interfaces.iter().any(|i| i.name == "eth0" && i.sandbox.is_some()), "{result:?}");
    assert_eq!(pod.global_addrs("eth0"), ["10.77.3.5/24", "fd00:77::5/64"]);
    assert!(host.ip_json(&["link", "show", "dev", "danmbr0"]).is_some(), "the bridge is in the host namespace");

    exec.invoke(&call(CniCommand::Del)).await.expect("bridge DEL");
    assert!(pod.ip_json(&["link", "show", "dev", "eth0"]).is_none(), "eth0 is gone after DEL");
    exec.invoke(&call(CniCommand::Del)).await.expect("repeated DEL succeeds");
}

#[tokio::test]
async fn conflist_chain_bridge_then_tuning() {
    if !require(true) {
        return;
    }
    let (host, pod) = (Netns::create("host"), Netns::create("pod"));
    let dir = plugin_dir(Some(&host));
    let exec = executor(dir.path());
    let state = tempfile::TempDir::new().expect("tempdir");
    let list = json!({
        "cniVersion": "1.0.0", "name": "danm-chain",
        "plugins": [
            {"type": "bridge", "bridge": "danmbr1",
             "ipam": {"type": "fakeipam", "ips": [{"ipcidr": "10.77.4.5/24", "version": 4}]}},
            {"type": "tuning", "mtu": 1400, "promisc": true, "dataDir": state.path()}
        ]
    });
    let list = NetConfList::from_slice(list.to_string().as_bytes()).expect("valid conflist");
    let version = list.negotiated_version().expect("version");
    assert_eq!(version, CniVersion::V1_0_0);

    let run = |index: usize, command: CniCommand, prev: Option<CniResult>| {
        let conf = list.plugin_conf(index, version, prev.as_ref(), None).expect("plugin conf");
        let stdin = serde_json::to_vec(&conf).expect("conf JSON");
        let inv = invocation(&conf.plugin_type, command, &pod, "ctr-chain", stdin);
        let exec = &exec;
        async move { exec.invoke(&inv).await }
    };

    let mut prev = None;
    for i in 0..list.plugins.len() {
        let out = run(i, CniCommand::Add, prev.take()).await.expect("chain ADD");
        prev = Some(CniResult::from_slice(&out).expect("result"));
    }
    let last = prev.expect("final result");
    assert_eq!(last.ips.len(), 1, "tuning passes the bridge's result through: {last:?}");
    assert_eq!(pod.global_addrs("eth0"), ["10.77.4.5/24"]);
    let link = pod.ip_json(&["link", "show", "dev", "eth0"]).expect("eth0");
    assert_eq!(link[0]["mtu"], 1400);
    assert!(link[0]["flags"].as_array().is_some_and(|f| f.contains(&json!("PROMISC"))), "{link}");

    for i in 0..list.plugins.len() {
        run(i, CniCommand::Check, Some(last.clone())).await.expect("chain CHECK");
    }
    for i in (0..list.plugins.len()).rev() {
        run(i, CniCommand::Del, Some(last.clone())).await.expect("chain DEL");
    }
    assert!(pod.ip_json(&["link", "show", "dev", "eth0"]).is_none(), "eth0 is gone after DEL");
}

#[tokio::test]
async fn failing_plugin_reports_its_cni_error() {
    if !require(true) {
        return;
    }
    let (host, pod) = (Netns::create("host"), Netns::create("pod"));
    let dir = plugin_dir(Some(&host));
    let conf = json!({
        "cniVersion": "1.0.0", "name": "danm-bad", "type": "macvlan", "master": "danm-nosuch0",
        "ipam": {"type": "fakeipam", "ips": [{"ipcidr": "10.77.5.5/24", "version": 4}]}
    });
    let inv = invocation("macvlan", CniCommand::Add, &pod, "ctr-bad", conf.to_string().into_bytes());
    match executor(dir.path()).invoke(&inv).await {
        Err(DelegateError::Failed { plugin, command, error }) => {
            assert_eq!((plugin.as_str(), command), ("macvlan", CniCommand::Add));
            assert_eq!(error.code.get(), 999, "the plugins' generic code: {error}");
            assert!(error.msg.contains("Link not found") || error.msg.contains("danm-nosuch0"), "{error}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    assert!(pod.ip_json(&["link", "show", "dev", "eth0"]).is_none());
}

#[tokio::test]
async fn names_version_and_lookup_with_the_real_plugins() {
    if !require(false) {
        return;
    }
    let dir = plugin_dir(None);
    let exec = executor(dir.path());
    let inv = |plugin: &str, command| Invocation {
        plugin: plugin.into(),
        command,
        container_id: "ctr".into(),
        netns: None,
        ifname: "eth0".into(),
        args: String::new(),
        stdin: br#"{"cniVersion":"1.0.0"}"#.to_vec(),
    };
    let out = exec.invoke(&inv("bridge", CniCommand::Version)).await.expect("VERSION");
    let info: VersionInfo = serde_json::from_slice(&out).expect("version info");
    assert!(info.supports(CniVersion::V1_0_0), "{info:?}");
    let out = exec.invoke(&inv("fakeipam", CniCommand::Version)).await.expect("fakeipam VERSION");
    let ours: VersionInfo = serde_json::from_slice(&out).expect("version info");
    assert_eq!(ours, VersionInfo::ours("1.0.0"));

    assert!(matches!(
        exec.invoke(&inv("danm-nosuch", CniCommand::Add)).await,
        Err(DelegateError::NotFound { plugin, .. }) if plugin == "danm-nosuch"
    ));
    for path in ["/usr/lib/cni/bridge", "../cni/bridge", "./bridge"] {
        assert!(matches!(exec.invoke(&inv(path, CniCommand::Add)).await, Err(DelegateError::BadName { .. })), "{path}");
    }
}

/// The state letter of process `pid` from `/proc`, `None` once it is gone.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next())
}

#[tokio::test]
async fn hanging_plugin_is_killed_with_its_children_when_dropped() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let pids = dir.path().display().to_string();
    script(dir.path(), "hang", &format!("echo $$ > {pids}/shell.pid\nsleep 3600 &\necho $! > {pids}/sleep.pid\nwait"));
    let exec = executor(dir.path());
    let inv = Invocation {
        plugin: "hang".into(),
        command: CniCommand::Add,
        container_id: "ctr".into(),
        netns: None,
        ifname: "eth0".into(),
        args: String::new(),
        stdin: b"{}".to_vec(),
    };
    let outcome = tokio::time::timeout(Duration::from_millis(1500), exec.invoke(&inv)).await;
    assert!(outcome.is_err(), "the plugin hangs until the timeout drops it: {outcome:?}");
    let read_pid = |name: &str| -> u32 {
        let text = std::fs::read_to_string(dir.path().join(name)).expect("the script wrote its pid");
        text.trim().parse().expect("pid")
    };
    let (shell, sleep) = (read_pid("shell.pid"), read_pid("sleep.pid"));
    // Killed processes may linger as zombies until reaped; anything else means still running.
    let mut alive = Vec::new();
    for _ in 0..100 {
        alive = [shell, sleep].into_iter().filter(|&p| proc_state(p).is_some_and(|s| s != 'Z')).collect();
        if alive.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(alive.is_empty(), "still running after the drop: {alive:?}");
    let pgrep = std::process::Command::new("pgrep").arg("-g").arg(shell.to_string()).output();
    if let Ok(out) = pgrep {
        let listed = String::from_utf8_lossy(&out.stdout).into_owned();
        let running: Vec<&str> = listed
            .split_whitespace()
            .filter(|p| p.parse().ok().and_then(proc_state).is_some_and(|s| s != 'Z'))
            .collect();
        assert!(running.is_empty(), "process group {shell} still has {running:?}");
    }
}

//! CNI benchmarks (as root, in namespaces the benchmark creates): ADD+DEL of one macvlan attachment by
//! `danm` on the local store, side by side with Debian's Go `macvlan` + `host-local` chain on the same
//! kind of namespace; and one ADD+DEL of a pod with 1 versus 16 attachments. Figures are quoted in
//! docs/performance.md.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};

const GO_PLUGINS: &str = "/usr/lib/cni";

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Runs a CNI plugin binary with `env` and `stdin`; panics unless it succeeds.
fn cni(binary: &Path, env: &[(&str, String)], stdin: &[u8]) {
    let mut child = Command::new(binary)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("plugin starts");
    child.stdin.take().expect("stdin").write_all(stdin).expect("write config");
    let out = child.wait_with_output().expect("plugin runs");
    assert!(out.status.success(), "{}: {}", binary.display(), String::from_utf8_lossy(&out.stdout));
}

struct Setup {
    dir: tempfile::TempDir,
    host: String,
    pod: String,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.pod]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.host]).status();
    }
}

fn setup() -> Option<Setup> {
    let root = rustix::process::geteuid().is_root();
    let plugins = Path::new(GO_PLUGINS).join("macvlan").is_file();
    if !root || !plugins {
        eprintln!("SKIPPED: the CNI benchmarks need root and {GO_PLUGINS}/macvlan");
        return None;
    }
    let id = std::process::id();
    let (host, pod) = (format!("bench-host-{id}"), format!("bench-pod-{id}"));
    ip(&["netns", "add", &host]);
    ip(&["netns", "add", &pod]);
    ip(&["-n", &host, "link", "add", "br-bench", "type", "bridge"]);
    ip(&["-n", &host, "link", "set", "br-bench", "up"]);
    // The benchmark process moves into the host namespace, so the plugins it starts run there.
    let ns = std::fs::File::open(Path::new("/run/netns").join(&host)).expect("host netns");
    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
    let dir = tempfile::TempDir::new().expect("tempdir");
    let plugin_dir = dir.path().join("bin");
    std::fs::create_dir(&plugin_dir).expect("plugin dir");
    let networks = r#"{"apiVersion":"danm.k8s.io/v1","kind":"DanmNet","metadata":{"name":"mac","namespace":"b"},
        "spec":{"NetworkID":"mac","NetworkType":"macvlan","Options":{"host_device":"br-bench","cidr":"10.61.0.0/16"}}}"#;
    let store = danm_cli::store::SqliteStore::open(dir.path().join("danm.db")).expect("store");
    futures::executor::block_on(danm_cli::ctl::apply(&store, networks, "b", false)).expect("apply networks");
    for (name, count) in [("one", 1), ("sixteen", 16)] {
        let ifaces: Vec<Value> = (0..count).map(|_| json!({"network": "mac", "ip": "dynamic"})).collect();
        let doc = json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":name,"namespace":"b","uid":name,
            "annotations":{"danm.k8s.io/interfaces": Value::Array(ifaces).to_string()}}});
        futures::executor::block_on(danm_cli::ctl::apply(&store, &doc.to_string(), "b", false)).expect("apply pod");
    }
    Some(Setup { dir, host, pod })
}

fn env(s: &Setup, command: &str, pod: &str, path: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("PATH", "/usr/sbin:/usr/bin:/sbin:/bin".into()),
        ("CNI_COMMAND", command.into()),
        ("CNI_CONTAINERID", format!("bench-{pod}")),
        ("CNI_NETNS", format!("/run/netns/{}", s.pod)),
        ("CNI_IFNAME", "eth0".into()),
        ("CNI_PATH", path.display().to_string()),
        ("CNI_ARGS", format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=b;K8S_POD_NAME={pod};K8S_POD_UID={pod}")),
    ]
}

fn danm_conf(s: &Setup) -> Vec<u8> {
    json!({"cniVersion":"1.0.0","name":"danm","type":"danm",
        "datastore":{"type":"local","path": s.dir.path().join("danm.db")},
        "cniDir": s.dir.path(), "logFile": s.dir.path().join("danm.log")})
    .to_string()
    .into_bytes()
}

fn go_conf(s: &Setup) -> Vec<u8> {
    json!({"cniVersion":"1.0.0","name":"bench","type":"macvlan","master":"br-bench","mode":"bridge",
        "ipam":{"type":"host-local","subnet":"10.62.0.0/16","dataDir": s.dir.path().join("host-local")}})
    .to_string()
    .into_bytes()
}

fn add_del(c: &mut Criterion) {
    let Some(s) = setup() else { return };
    let danm = PathBuf::from(env!("CARGO_BIN_EXE_danm"));
    let plugin_dir = s.dir.path().join("bin");
    let (dconf, gconf) = (danm_conf(&s), go_conf(&s));
    let go = Path::new(GO_PLUGINS).join("macvlan");

    // ADD alone, DEL alone, and both: the DEL side of both chains is dominated by the kernel's link
    // deletion (an RCU grace period), the same for any plugin.
    type Run<'a> = Box<dyn Fn(&str) + 'a>;
    let chains: [(&str, Run<'_>); 2] = [
        ("danm (built-in macvlan, local store)", Box::new(|cmd| cni(&danm, &env(&s, cmd, "one", &plugin_dir), &dconf))),
        ("Go macvlan + host-local", Box::new(|cmd| cni(&go, &env(&s, cmd, "go", Path::new(GO_PLUGINS)), &gconf))),
    ];
    for (verb, timed) in
        [("add", ["ADD"].as_slice()), ("del", ["DEL"].as_slice()), ("add+del", ["ADD", "DEL"].as_slice())]
    {
        let mut group = c.benchmark_group(format!("cni/{verb} one macvlan attachment"));
        group.sample_size(30).measurement_time(Duration::from_secs(6));
        for (name, run) in &chains {
            group.bench_function(*name, |b| {
                b.iter_custom(|iters| {
                    let mut spent = Duration::ZERO;
                    for _ in 0..iters {
                        for cmd in ["ADD", "DEL"] {
                            let start = std::time::Instant::now();
                            run(cmd);
                            if timed.contains(&cmd) {
                                spent += start.elapsed();
                            }
                        }
                    }
                    spent
                })
            });
        }
        group.finish();
    }

    let mut group = c.benchmark_group("cni/add+del danm attachments per pod");
    group.sample_size(20).measurement_time(Duration::from_secs(8));
    for pod in ["one", "sixteen"] {
        group.bench_function(pod, |b| {
            b.iter(|| {
                cni(&danm, &env(&s, "ADD", pod, &plugin_dir), &dconf);
                cni(&danm, &env(&s, "DEL", pod, &plugin_dir), &dconf);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, add_del);
criterion_main!(benches);

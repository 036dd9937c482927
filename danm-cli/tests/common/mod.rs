//! Shared helpers of the danm-cli integration tests: skipping (or failing under CI) when root or the
//! CNI plugins are missing, network namespaces removed on drop, and plugin directories.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;
use tempfile::TempDir;

/// Where Debian's `containernetworking-plugins` installs the plugins.
pub const CNI_BIN: &str = "/usr/lib/cni";

/// Whether `CI=true`: then a missing prerequisite fails the test instead of skipping it.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Checks the prerequisites; `false` (after printing `SKIPPED: ...`) when one is missing outside CI.
pub fn require(root: bool) -> bool {
    let mut missing = Vec::new();
    if root && !rustix::process::geteuid().is_root() {
        missing.push("not running as root".to_owned());
    }
    if !Path::new(CNI_BIN).join("bridge").is_file() {
        missing.push(format!("containernetworking-plugins not installed ({CNI_BIN}/bridge missing)"));
    }
    if root && ip_binary().is_none() {
        missing.push("iproute2 `ip` not found".to_owned());
    }
    if missing.is_empty() {
        return true;
    }
    let reason = missing.join("; ");
    assert!(!ci(), "CI=true but the test cannot run: {reason}");
    eprintln!("SKIPPED: {reason}");
    false
}

/// The `ip` executable.
pub fn ip_binary() -> Option<PathBuf> {
    ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].into_iter().map(PathBuf::from).find(|p| p.is_file())
}

/// Runs `ip` with `args`.
pub fn ip(args: &[&str]) -> Output {
    Command::new(ip_binary().expect("ip")).args(args).output().expect("running ip")
}

/// A network namespace made by `ip netns add` under a unique name, deleted on drop.
pub struct Netns {
    /// Its name under `/run/netns`.
    pub name: String,
}

impl Netns {
    /// Creates `danm-<tag>-<pid>-<n>`.
    pub fn create(tag: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!("danm-{tag}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let out = ip(&["netns", "add", &name]);
        assert!(out.status.success(), "ip netns add {name}: {}", String::from_utf8_lossy(&out.stderr));
        Self { name }
    }

    /// The path plugins get as `CNI_NETNS`.
    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }

    /// Runs `ip -n <name> args`.
    pub fn ip(&self, args: &[&str]) -> Output {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// `ip -j` output of `args`, parsed; `None` when the command fails (e.g. no such device).
    pub fn ip_json(&self, args: &[&str]) -> Option<Value> {
        let mut all = vec!["-j"];
        all.extend_from_slice(args);
        let out = self.ip(&all);
        out.status.success().then(|| serde_json::from_slice(&out.stdout).expect("ip -j prints JSON"))
    }

    /// The global-scope addresses of `dev`, as `addr/prefix`, sorted.
    pub fn global_addrs(&self, dev: &str) -> Vec<String> {
        let links = self.ip_json(&["addr", "show", "dev", dev]).expect("device exists");
        let mut addrs: Vec<String> = links[0]["addr_info"]
            .as_array()
            .expect("addr_info")
            .iter()
            .filter(|a| a["scope"] == "global")
            .map(|a| format!("{}/{}", a["local"].as_str().expect("local"), a["prefixlen"]))
            .collect();
        addrs.sort();
        addrs
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let out = ip(&["netns", "del", &self.name]);
        if !out.status.success() {
            eprintln!("ip netns del {}: {}", self.name, String::from_utf8_lossy(&out.stderr));
        }
    }
}

/// Writes an executable shell script `dir/name`.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod script");
    path
}

/// A plugin directory holding `fakeipam` (a link to the built binary) and every plugin of
/// [`CNI_BIN`]: as links, or, with `host` given, as wrappers that run the plugin inside that network
/// namespace (so that host-side devices, such as bridges, land there and not on the machine).
pub fn plugin_dir(host: Option<&Netns>) -> TempDir {
    let dir = TempDir::new().expect("tempdir");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_fakeipam"), dir.path().join("fakeipam")).expect("link fakeipam");
    let ip = ip_binary();
    for entry in std::fs::read_dir(CNI_BIN).expect("plugins installed") {
        let entry = entry.expect("dir entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        let real = entry.path();
        match (host, &ip) {
            (Some(ns), Some(ip)) => {
                let body = format!("exec {} netns exec {} {} \"$@\"", ip.display(), ns.name, real.display());
                script(dir.path(), &name, &body);
            }
            _ => std::os::unix::fs::symlink(&real, dir.path().join(&name)).expect("link plugin"),
        }
    }
    dir
}

/// A TCP port on 127.0.0.1 that was free a moment ago, for a binary's `--metrics-listen`.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The whole response (status line, headers, body) of `GET path` on 127.0.0.1:`port` over HTTP/1.0, or
/// `None` when nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes()).ok()?;
    let mut out = String::new();
    stream.read_to_string(&mut out).ok()?;
    Some(out)
}

/// Whether an HTTP response's status is 200.
pub fn is_ok(response: &str) -> bool {
    response.split(' ').nth(1) == Some("200")
}

/// Sends SIGTERM to `child` and waits up to `within` for it to exit; returns its exit status and what
/// it wrote to its (piped) standard error. Fails the test when it does not stop in time.
pub async fn terminate(
    child: &mut std::process::Child,
    within: std::time::Duration,
) -> (std::process::ExitStatus, String) {
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let deadline = std::time::Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "{:?} did not stop on SIGTERM", child.id());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let mut log = String::new();
    if let Some(mut err) = child.stderr.take() {
        std::io::Read::read_to_string(&mut err, &mut log).unwrap();
    }
    (status, log)
}

//! The demo's network namespaces: a host namespace with one veth parent per network, and one namespace
//! per pod. Made with `ip`, removed when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The parents of the demo networks (`host_device`), each one end of a veth pair in the host namespace.
pub(super) const PARENTS: [&str; 3] = ["dmo-ext", "dmo-int", "dmo-mgmt"];

/// Namespaces made for the demo.
#[derive(Debug)]
pub(super) struct Lab {
    ip: PathBuf,
    host: String,
    pods: Vec<String>,
}

/// The `ip` executable, if there is one.
pub(super) fn ip_binary() -> Option<PathBuf> {
    ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].into_iter().map(PathBuf::from).find(|p| p.is_file())
}

impl Lab {
    /// Creates the host namespace with its parents, and one namespace per pod.
    pub(super) fn create(ip: PathBuf, pods: &[&str]) -> Result<Self, String> {
        let id = std::process::id();
        let mut lab = Self { ip, host: format!("danm-demo-{id}"), pods: Vec::new() };
        lab.run(&["netns", "add", &lab.host.clone()])?;
        for parent in PARENTS {
            let host = lab.host.clone();
            let peer = format!("{parent}-p");
            lab.run(&["-n", &host, "link", "add", parent, "type", "veth", "peer", "name", &peer])?;
            lab.run(&["-n", &host, "link", "set", parent, "up"])?;
            lab.run(&["-n", &host, "link", "set", &peer, "up"])?;
        }
        for pod in pods {
            let name = format!("danm-demo-{id}-{pod}");
            lab.run(&["netns", "add", &name])?;
            lab.pods.push(name);
        }
        Ok(lab)
    }

    fn run(&self, args: &[&str]) -> Result<(), String> {
        let out = Command::new(&self.ip).args(args).output().map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
        }
    }

    /// The host namespace's path.
    pub(super) fn host_path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.host)
    }

    /// The host namespace's name.
    pub(super) fn host(&self) -> &str {
        &self.host
    }

    /// The namespace path of pod `index`.
    pub(super) fn pod_path(&self, index: usize) -> PathBuf {
        Path::new("/run/netns").join(&self.pods[index])
    }

    /// The interfaces of pod `index` other than `lo`, as the kernel lists them.
    pub(super) fn pod_links(&self, index: usize) -> Vec<String> {
        let out = Command::new(&self.ip).args(["-n", &self.pods[index], "-o", "link", "show"]).output();
        let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
        text.lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_owned())
            .filter(|n| n != "lo")
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.pods.iter().chain(std::iter::once(&self.host)) {
            let _ = Command::new(&self.ip).args(["netns", "del", ns]).output();
        }
    }
}

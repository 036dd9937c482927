//! `danmctl demo`: upstream DANM's multi-domain service discovery demo, end to end on the embedded store.
//!
//! It applies three networks, three pods and three Services (`manifests.yaml`), runs the real CNI ADD of
//! each pod through the same dispatch as the `danm` binary, shows the interfaces and which addresses each
//! Service publishes on which network, checks that every Service publishes exactly what it should and
//! nothing from the management network, then deletes the pods and shows every address free again.
//!
//! As root (with `ip` available) the interfaces are real: built-in macvlan on veth parents in network
//! namespaces the demo creates and removes. Otherwise, or with `--dry-run`, a provisioner that changes
//! nothing stands in, and the demo says so.

mod lab;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use danm_core::cni::skel::Environment;
use danm_core::discovery::service_endpoints;
use danm_core::ipam::{AllocatorId, Ipam};
use danm_core::model::{DanmEp, Network, PodRecord};
use danm_core::provision::InterfaceProvisioner;
use danm_core::service::ServiceRecord;
use danm_core::store::{Datastore, DatastoreExt, EndpointQuery, Object, ObjectKey, Query};
use lab::Lab;

use crate::ctl;
use crate::danm::Danm;
use crate::store::SqliteStore;

/// The demo's manifests: networks, pods and Services.
pub const MANIFESTS: &str = include_str!("manifests.yaml");

/// The pods of the demo: namespace and name, in the order they are set up.
const PODS: [(&str, &str); 3] = [("vnf", "loadbalancer"), ("vnf", "internal-processor"), ("client", "external-client")];

/// What the demo may do.
#[derive(Debug, Clone, Copy, Default)]
pub struct DemoOptions {
    /// Never touch the kernel, even as root.
    pub dry_run: bool,
    /// Keep the store and the manifests (in the demo's directory) afterwards.
    pub keep: bool,
}

/// Why the demo could not run to its end (a failed check is not an error: it is reported).
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A step failed.
    #[error("{step}: {reason}")]
    Step {
        /// The step.
        step: &'static str,
        /// What went wrong.
        reason: String,
    },
}

fn fail(step: &'static str) -> impl Fn(String) -> DemoError {
    move |reason| DemoError::Step { step, reason }
}

/// The checks the demo made, in order: what was checked and whether it held.
pub type Checks = Vec<(String, bool)>;

/// Runs the demo, printing to `out`; returns its checks.
pub fn run(options: DemoOptions, out: &mut dyn Write) -> Result<Checks, DemoError> {
    let dir = std::env::temp_dir().join(format!("danm-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| fail("creating the demo directory")(e.to_string()))?;
    let result = Demo::new(options, dir.clone(), out).and_then(|mut d| d.play());
    if options.keep {
        let _ = writeln!(out, "kept: {} (danm.db, manifests.yaml)", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

struct Demo<'a> {
    out: &'a mut dyn Write,
    dir: PathBuf,
    store: SqliteStore,
    lab: Option<Lab>,
    mode: String,
    checks: Checks,
}

impl<'a> Demo<'a> {
    fn new(options: DemoOptions, dir: PathBuf, out: &'a mut dyn Write) -> Result<Self, DemoError> {
        let store = SqliteStore::open(dir.join("danm.db")).map_err(|e| fail("opening the store")(e.to_string()))?;
        std::fs::write(dir.join("manifests.yaml"), MANIFESTS)
            .map_err(|e| fail("writing the manifests")(e.to_string()))?;
        let root = rustix::process::geteuid().is_root();
        let (lab, mode) = match (options.dry_run, root, lab::ip_binary()) {
            (true, _, _) => {
                (None, "dry run (--dry-run): addresses and records are real, interfaces are only planned".into())
            }
            (false, false, _) => (None, "dry run: not running as root, so no interface is created".into()),
            (false, true, None) => (None, "dry run: `ip` (iproute2) is missing, so no namespace can be made".into()),
            (false, true, Some(ip)) => {
                let pods: Vec<&str> = PODS.iter().map(|(_, p)| *p).collect();
                let lab = Lab::create(ip, &pods).map_err(fail("creating the network namespaces"))?;
                let ns = std::fs::File::open(lab.host_path())
                    .map_err(|e| fail("entering the host namespace")(e.to_string()))?;
                nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| fail("entering the host namespace")(e.to_string()))?;
                let mode = format!(
                    "real interfaces: built-in macvlan on veth parents {} in network namespace {}",
                    lab::PARENTS.join(", "),
                    lab.host()
                );
                (Some(lab), mode)
            }
        };
        Ok(Self { out, dir, store, lab, mode, checks: Vec::new() })
    }

    fn say(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
    }

    fn indent(&mut self, text: &str) {
        for line in text.lines() {
            let _ = writeln!(self.out, "    {line}");
        }
    }

    fn check(&mut self, what: impl Into<String>, ok: bool) {
        let what = what.into();
        let _ = writeln!(self.out, "    {} {what}", if ok { "ok  " } else { "FAIL" });
        self.checks.push((what, ok));
    }

    fn play(&mut self) -> Result<Checks, DemoError> {
        self.say("danm-rs demo: multi-domain service discovery (upstream DANM's svcwatcher demo)");
        let store_path = self.dir.join("danm.db");
        self.say(&format!("  store: {}", store_path.display()));
        let mode = self.mode.clone();
        self.say(&format!("  mode:  {mode}"));

        self.say("[1/6] danmctl apply: networks, pods and Services");
        let applied =
            block(ctl::apply(&self.store, MANIFESTS, "default", false)).map_err(|e| fail("apply")(e.to_string()))?;
        let lines: Vec<String> = applied.iter().map(ToString::to_string).collect();
        self.indent(&lines.join("\n"));

        self.say("[2/6] CNI ADD of each pod");
        let mut results = Vec::new();
        for (i, (ns, pod)) in PODS.iter().enumerate() {
            let out = self.cni("ADD", i, ns, pod);
            let ok = out.exit_code == 0;
            let body = String::from_utf8_lossy(&out.stdout).into_owned();
            self.check(format!("ADD {ns}/{pod}"), ok);
            if !ok {
                self.indent(&body);
            }
            results.push(ok);
        }
        self.show_interfaces()?;

        self.say("[3/6] the pods become Ready; what each Service publishes");
        self.mark_ready()?;
        let table = block(ctl::service_endpoints(&self.store, None, None, ctl::Format::Table))
            .map_err(|e| fail("computing endpoints")(e.to_string()))?;
        self.indent(&table);
        self.check_services()?;

        if self.lab.is_some() {
            self.say("[4/6] CNI CHECK of each pod: interfaces and addresses read back from the kernel");
            for (i, (ns, pod)) in PODS.iter().enumerate() {
                let ok = self.cni("CHECK", i, ns, pod).exit_code == 0;
                self.check(format!("CHECK {ns}/{pod}"), ok);
            }
        } else {
            self.say("[4/6] CNI CHECK skipped: in a dry run there are no interfaces to read back");
        }

        self.say("[5/6] CNI DEL of each pod");
        for (i, (ns, pod)) in PODS.iter().enumerate() {
            let ok = self.cni("DEL", i, ns, pod).exit_code == 0;
            self.check(format!("DEL {ns}/{pod}"), ok);
        }

        self.say("[6/6] every address is free again, and nothing is left");
        self.check_clean()?;

        let failed = self.checks.iter().filter(|(_, ok)| !ok).count();
        let total = self.checks.len();
        if failed == 0 {
            self.say(&format!("demo: all {total} checks held"));
        } else {
            self.say(&format!("demo: {failed} of {total} checks FAILED"));
        }
        Ok(std::mem::take(&mut self.checks))
    }

    /// Runs one CNI verb for pod `index` through the `danm` plugin's dispatch, exactly as the binary does.
    fn cni(&self, command: &str, index: usize, namespace: &str, pod: &str) -> danm_core::cni::skel::Output {
        let netns = match &self.lab {
            Some(lab) => lab.pod_path(index),
            None => PathBuf::from(format!("/var/run/netns/danm-demo-{pod}")),
        };
        let uid = pod_uid(pod);
        let conf = serde_json::json!({
            "cniVersion": "1.0.0", "name": "danm-demo", "type": "danm", "hostname": "demo-node",
            "datastore": {"type": "local", "path": self.dir.join("danm.db")}, "cniDir": self.dir,
            "logFile": self.dir.join("danm.log"),
        });
        let plugin_dir =
            std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf)).unwrap_or_default();
        let env = Environment::new()
            .with_var("CNI_COMMAND", command)
            .with_var("CNI_CONTAINERID", &format!("demo-{pod}"))
            .with_var("CNI_NETNS", &netns.display().to_string())
            .with_var("CNI_IFNAME", "eth0")
            .with_var("CNI_PATH", &plugin_dir.display().to_string())
            .with_var("CNI_ARGS", &format!("K8S_POD_NAMESPACE={namespace};K8S_POD_NAME={pod};K8S_POD_UID={uid}"))
            .with_stdin(conf.to_string());
        let plugin = if self.lab.is_some() { Danm::new() } else { Danm::dry_run() };
        crate::cni_main::execute(&plugin, &env)
    }

    fn endpoints(&self) -> Result<Vec<DanmEp>, DemoError> {
        let eps = block(self.store.list_as::<DanmEp>(&Query::Endpoints(EndpointQuery::default())))
            .map_err(|e| fail("listing DanmEps")(e.to_string()))?;
        Ok(eps.into_iter().map(|v| v.value).collect())
    }

    fn show_interfaces(&mut self) -> Result<(), DemoError> {
        let eps = self.endpoints()?;
        let mut rows = vec!["POD                       INTERFACE  NETWORK                    ADDRESSES".to_owned()];
        let provisioner = self.lab.as_ref().and_then(|_| danm_netlink::NetlinkProvisioner::new().ok());
        for (i, (ns, pod)) in PODS.iter().enumerate() {
            let mut mine: Vec<&DanmEp> = eps.iter().filter(|e| e.spec.pod == *pod).collect();
            mine.sort_by(|a, b| a.spec.interface.name.cmp(&b.spec.interface.name));
            for ep in mine {
                let recorded: Vec<&str> = [ep.spec.interface.address.as_str(), ep.spec.interface.address_ipv6.as_str()]
                    .into_iter()
                    .filter(|a| !a.is_empty())
                    .collect();
                rows.push(format!(
                    "{:<25} {:<10} {:<26} {}",
                    format!("{ns}/{pod}"),
                    ep.spec.interface.name,
                    format!("{}/{}", ep.spec.api_type, ep.spec.network_name),
                    recorded.join(", ")
                ));
                if let (Some(p), Some(lab)) = (&provisioner, &self.lab) {
                    let state = block(p.inspect(&lab.pod_path(i), &ep.spec.interface.name)).ok().flatten();
                    let in_kernel: BTreeSet<String> =
                        state.map(|s| s.addresses.iter().map(ToString::to_string).collect()).unwrap_or_default();
                    let expected: BTreeSet<String> = recorded.iter().map(|s| (*s).to_owned()).collect();
                    self.checks.push((
                        format!("the kernel has {} of {ns}/{pod} with {}", ep.spec.interface.name, recorded.join(", ")),
                        expected.is_subset(&in_kernel),
                    ));
                }
            }
        }
        self.indent(&rows.join("\n"));
        if self.lab.is_some() {
            let held = self.checks.iter().rev().take_while(|(w, _)| w.starts_with("the kernel")).all(|(_, ok)| *ok);
            self.check("every interface and address above was read back from the kernel", held);
        }
        Ok(())
    }

    fn mark_ready(&mut self) -> Result<(), DemoError> {
        for (ns, pod) in PODS {
            let key = ObjectKey::Pod { namespace: ns.into(), name: pod.into() };
            let mut current = block(self.store.get_as::<PodRecord>(&key))
                .map_err(|e| fail("reading a pod")(e.to_string()))?
                .ok_or_else(|| fail("reading a pod")(format!("{ns}/{pod} is gone")))?;
            current.value.ready = true;
            current.value.node_name = Some("demo-node".into());
            block(self.store.update(&Object::Pod(current.value), &current.version))
                .map_err(|e| fail("marking pods Ready")(e.to_string()))?;
        }
        Ok(())
    }

    /// Each Service publishes exactly the addresses of its pods on its network; management never appears.
    fn check_services(&mut self) -> Result<(), DemoError> {
        let eps = self.endpoints()?;
        let services = block(self.store.list_as::<ServiceRecord>(&Query::Services { namespace: None }))
            .map_err(|e| fail("listing Services")(e.to_string()))?;
        let pods: Vec<PodRecord> = block(self.store.list_as::<PodRecord>(&Query::Pods { namespace: None }))
            .map_err(|e| fail("listing pods")(e.to_string()))?
            .into_iter()
            .map(|v| v.value)
            .collect();
        let addresses_of = |pod: &str, network: &str| -> BTreeSet<IpAddr> {
            eps.iter()
                .filter(|e| e.spec.pod == pod && e.spec.network_name == network)
                .flat_map(|e| [e.spec.interface.address.clone(), e.spec.interface.address_ipv6.clone()])
                .filter_map(|a| a.parse::<ipnet::IpNet>().ok().map(|n| n.addr()))
                .collect()
        };
        let expected = [
            ("vnf-internal-processor", addresses_of("internal-processor", "internal")),
            ("vnf-internal-lb", addresses_of("loadbalancer", "internal")),
            ("vnf-external-svc", addresses_of("loadbalancer", "external")),
        ];
        let management: BTreeSet<IpAddr> = eps
            .iter()
            .filter(|e| e.spec.network_name == "management")
            .filter_map(|e| e.spec.interface.address.parse::<ipnet::IpNet>().ok().map(|n| n.addr()))
            .collect();
        let client = addresses_of("external-client", "external");
        let mut all_published = BTreeSet::new();
        for (name, want) in expected {
            let svc = services.iter().map(|v| &v.value).find(|s| s.metadata.name == name);
            let published = svc
                .and_then(|s| {
                    let find = |ns: &str, n: &str| {
                        pods.iter().find(|p| p.metadata.name == n && p.metadata.namespace.as_deref() == Some(ns))
                    };
                    service_endpoints(s, &eps, find).ok().flatten()
                })
                .map(|e| e.ready.iter().map(|a| a.ip).collect::<BTreeSet<_>>())
                .unwrap_or_default();
            all_published.extend(published.iter().copied());
            let list = want.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
            self.check(format!("{name} publishes exactly {list}"), !want.is_empty() && published == want);
        }
        self.check(
            "no Service publishes a management address",
            !management.is_empty() && management.is_disjoint(&all_published),
        );
        self.check(
            "the external client, in another namespace, is in no vnf Service",
            !client.is_empty() && client.is_disjoint(&all_published),
        );
        Ok(())
    }

    fn check_clean(&mut self) -> Result<(), DemoError> {
        let nets = block(self.store.list_as::<Network>(&Query::Networks { kind: None, namespace: None }))
            .map_err(|e| fail("listing networks")(e.to_string()))?;
        let ipam = Ipam::new(&self.store, AllocatorId::new("danmctl"));
        let mut rows = vec![format!(
            "{:<26} {:<7} {:<17} {:>20}  {:>4}  {:>20}",
            "NETWORK", "FAMILY", "SUBNET", "CAPACITY", "USED", "FREE"
        )];
        let mut used = 0u128;
        for net in nets.iter().map(|v| &v.value) {
            for u in block(ipam.usage(net)).map_err(|e| fail("reading pool usage")(e.to_string()))? {
                used += u.allocated;
                rows.push(format!(
                    "{:<26} {:<7} {:<17} {:>20}  {:>4}  {:>20}",
                    format!("{}/{}", net.kind, net.metadata.name),
                    u.family.to_string(),
                    u.subnet.to_string(),
                    u.capacity,
                    u.allocated,
                    u.free()
                ));
            }
        }
        self.indent(&rows.join("\n"));
        self.check("every address of every pool is free", used == 0);
        let eps = self.endpoints()?;
        self.check("no DanmEp is left", eps.is_empty());
        if let Some(lab) = &self.lab {
            let left: Vec<String> = (0..PODS.len()).flat_map(|i| lab.pod_links(i)).collect();
            self.check(
                format!(
                    "no interface is left in the pods' namespaces{}",
                    if left.is_empty() { String::new() } else { format!(" ({})", left.join(", ")) }
                ),
                left.is_empty(),
            );
        }
        Ok(())
    }
}

fn pod_uid(pod: &str) -> &'static str {
    match pod {
        "loadbalancer" => "6f1c2d0e-0000-4000-8000-00000000a001",
        "internal-processor" => "6f1c2d0e-0000-4000-8000-00000000a002",
        _ => "6f1c2d0e-0000-4000-8000-00000000a003",
    }
}

fn block<F: std::future::Future>(future: F) -> F::Output {
    futures::executor::block_on(future)
}

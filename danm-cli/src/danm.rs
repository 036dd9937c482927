//! The `danm` CNI plugin: the meta-plugin of danm-core on the chosen datastore (the local SQLite file, or
//! Kubernetes with `kubeconfig`), with the netlink provisioner for the built-in types, the process
//! executor for delegates, and the kubelet's PodResources API for the devices of `sriov` attachments.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use danm_core::cni::skel::{Plugin, Request};
use danm_core::cni::{Backend, CniError, CniResult, DanmConf, ErrorCode, LogLevel};
use danm_core::meta::{MetaConfig, MetaError, MetaPlugin, PodContext};
use danm_core::provision::{
    CreatedInterface, HostInterface, InterfaceProvisioner, InterfaceSetup, LinkState, NoopProvisioner, PodInterface,
    ProvisionError,
};
use danm_core::retry::{BoxFuture, Sleeper};
use danm_netlink::NetlinkProvisioner;

use crate::delegate::ProcessExecutor;
use crate::store::{AnyStore, SqliteStore};
use danm_k8s::podresources::PodResourcesClient;
use danm_k8s::{KubeStore, client_from_kubeconfig};

/// Waits on tokio's timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// The `danm` plugin. Each request reads its own configuration, opens its store and builds its backends.
#[derive(Debug, Default)]
pub struct Danm {
    dry_run: bool,
}

impl Danm {
    /// The plugin with the netlink provisioner: built-in interfaces are really created.
    pub fn new() -> Self {
        Self { dry_run: false }
    }

    /// The plugin with a provisioner that changes nothing: addresses are allocated and DanmEps written,
    /// delegates run, but built-in interfaces are only planned.
    pub fn dry_run() -> Self {
        Self { dry_run: true }
    }
}

type Meta = MetaPlugin<AnyStore, AnyProvisioner, ProcessExecutor>;

/// The provisioner a `danm` run uses, chosen at run time.
#[derive(Debug)]
pub enum AnyProvisioner {
    /// Real interfaces, through netlink.
    Netlink(NetlinkProvisioner),
    /// Nothing is changed in the kernel.
    DryRun(NoopProvisioner),
}

macro_rules! each {
    ($self:ident, $p:ident => $e:expr) => {
        match $self {
            AnyProvisioner::Netlink($p) => $e,
            AnyProvisioner::DryRun($p) => $e,
        }
    };
}

#[async_trait]
impl InterfaceProvisioner for AnyProvisioner {
    async fn create(&self, iface: &PodInterface) -> Result<CreatedInterface, ProvisionError> {
        each!(self, p => p.create(iface).await)
    }
    async fn delete(&self, netns: &Path, name: &str) -> Result<(), ProvisionError> {
        each!(self, p => p.delete(netns, name).await)
    }
    async fn inspect(&self, netns: &Path, name: &str) -> Result<Option<LinkState>, ProvisionError> {
        each!(self, p => p.inspect(netns, name).await)
    }
    async fn ensure_host(&self, host: &HostInterface, holder: &str) -> Result<(), ProvisionError> {
        each!(self, p => p.ensure_host(host, holder).await)
    }
    async fn release_host(&self, name: &str, holder: &str) -> Result<bool, ProvisionError> {
        each!(self, p => p.release_host(name, holder).await)
    }
    async fn configure(&self, setup: &InterfaceSetup) -> Result<bool, ProvisionError> {
        each!(self, p => p.configure(setup).await)
    }
    async fn deconfigure(&self, setup: &InterfaceSetup) -> Result<(), ProvisionError> {
        each!(self, p => p.deconfigure(setup).await)
    }
}

/// How long the kubelet may take to say which devices a pod has: half the time budget, at most
/// [`PodResourcesClient::DEFAULT_TIMEOUT`], so that a silent kubelet is reported as such before the budget
/// runs out.
fn kubelet_timeout(budget: Duration) -> Duration {
    (budget / 2).min(PodResourcesClient::DEFAULT_TIMEOUT)
}

/// This node's name: the configuration's `hostname`, else the kernel's.
fn node_name(conf: &DanmConf) -> String {
    conf.hostname.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "localhost".into())
    })
}

/// Appends one line to the configured log file, or to stderr; never to stdout.
fn log(conf: Option<&DanmConf>, line: &str) {
    let stamp =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let line = format!("{stamp} danm[{}]: {line}\n", std::process::id());
    let file = conf.and_then(|c| c.log_file.as_deref());
    let written = file
        .and_then(|p| std::fs::OpenOptions::new().create(true).append(true).open(p).ok())
        .map(|mut f| f.write_all(line.as_bytes()).is_ok())
        .unwrap_or(false);
    if !written {
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}

impl Danm {
    async fn build(&self, req: &Request) -> Result<(DanmConf, Meta), CniError> {
        let conf = DanmConf::from_slice(&req.config)?;
        let store = match &conf.backend {
            Backend::LocalDatastore(path) => AnyStore::Local(SqliteStore::open(path).map_err(|e| {
                CniError::new(ErrorCode::IO_FAILURE, format!("datastore.path {}: {e}", path.display()))
            })?),
            Backend::Kubeconfig(path) => {
                AnyStore::Kube(KubeStore::new(client_from_kubeconfig(path).await.map_err(|e| {
                    CniError::new(ErrorCode::IO_FAILURE, format!("kubeconfig {}: {e}", path.display()))
                })?))
            }
        };
        let provisioner = if self.dry_run {
            AnyProvisioner::DryRun(NoopProvisioner)
        } else {
            // The node lock orders this plugin's host interface records with netwatcher's.
            AnyProvisioner::Netlink(
                NetlinkProvisioner::new()
                    .map_err(|e| {
                        CniError::new(ErrorCode::IO_FAILURE, format!("the netlink provisioner cannot start: {e}"))
                    })?
                    .with_node_lock(danm_netlink::NODE_LOCK_PATH),
            )
        };
        let executor = ProcessExecutor::new(req.path.clone(), conf.cni_dir.clone());
        let config = MetaConfig { host: node_name(&conf), naming: conf.naming_scheme, timeout: conf.timeout };
        let mut meta = MetaPlugin::new(Arc::new(store), provisioner, executor, Arc::new(TokioSleeper), config);
        // The kubelet is asked only when an sriov attachment of a pod without danm.k8s.io/devices needs a
        // device: a node without the socket serves every other pod.
        if let Some(socket) = conf.pod_resources_socket() {
            let client = PodResourcesClient::new(socket).with_timeout(kubelet_timeout(conf.timeout));
            meta = meta.with_device_source(Arc::new(client));
        }
        Ok((conf, meta))
    }

    fn context(req: &Request) -> Result<PodContext, CniError> {
        let missing = |k: &str| {
            CniError::new(
                ErrorCode::INVALID_ENVIRONMENT_VARIABLES,
                format!("CNI_ARGS has no {k}: danm needs the pod's identity"),
            )
        };
        Ok(PodContext {
            container_id: req.container_id.clone(),
            netns: req.netns.clone(),
            namespace: req.args.pod_namespace().ok_or_else(|| missing("K8S_POD_NAMESPACE"))?.to_owned(),
            name: req.args.pod_name().ok_or_else(|| missing("K8S_POD_NAME"))?.to_owned(),
            uid: req.args.pod_uid().map(str::to_owned),
            args: req.args.to_string(),
        })
    }

    async fn serve<T>(
        &self,
        req: &Request,
        what: &str,
        f: impl AsyncFnOnce(&Meta) -> Result<T, MetaError>,
    ) -> Result<T, CniError> {
        let (conf, meta) = self.build(req).await.inspect_err(|e| log(None, &format!("{what}: {}", e.msg)))?;
        let out = f(&meta).await;
        match &out {
            // Successes are logged at `info` (the default), failures always.
            Ok(_) if conf.log_level.is_some_and(|l| l < LogLevel::Info) => {}
            Ok(_) => log(Some(&conf), &format!("{what} {}: ok", req.container_id)),
            Err(e) => log(Some(&conf), &format!("{what} {}: {e}", req.container_id)),
        }
        out.map_err(|e| e.to_cni())
    }
}

#[async_trait]
impl Plugin for Danm {
    async fn add(&self, req: &Request) -> Result<CniResult, CniError> {
        let ctx = Self::context(req)?;
        self.serve(req, "ADD", async |m: &Meta| m.add(&ctx).await).await
    }

    async fn del(&self, req: &Request) -> Result<(), CniError> {
        // DEL needs only the container: the records name everything else.
        let mut ctx = Self::context(req).unwrap_or_else(|_| PodContext {
            container_id: req.container_id.clone(),
            netns: req.netns.clone(),
            namespace: String::new(),
            name: String::new(),
            uid: None,
            args: req.args.to_string(),
        });
        if ctx.netns.as_deref().is_some_and(|p: &Path| p.as_os_str().is_empty()) {
            ctx.netns = None;
        }
        self.serve(req, "DEL", async |m: &Meta| m.del(&ctx).await).await
    }

    async fn check(&self, req: &Request) -> Result<(), CniError> {
        let ctx = Self::context(req)?;
        self.serve(req, "CHECK", async |m: &Meta| m.check(&ctx).await).await
    }

    async fn status(&self, req: &Request) -> Result<(), CniError> {
        self.serve(req, "STATUS", async |m: &Meta| m.status().await)
            .await
            .map_err(|e| CniError::new(ErrorCode::PLUGIN_NOT_AVAILABLE, e.msg))
    }

    async fn gc(&self, req: &Request) -> Result<(), CniError> {
        // Without the runtime's list of valid attachments there is nothing GC may judge stale: removing
        // everything would tear down every pod of the node.
        let Some(valid) = req.conf.valid_attachments()? else {
            log(None, "GC: no cni.dev/valid-attachments in the configuration; nothing to do");
            return Ok(());
        };
        self.serve(req, "GC", async |m: &Meta| m.gc(&valid).await.map(drop)).await
    }
}

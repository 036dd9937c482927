//! [`NetlinkProvisioner`]: danm-core's [`InterfaceProvisioner`] on the running kernel.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use danm_core::provision::{
    CreatedInterface, HostInterface, HostInventory, HostScan, InterfaceProvisioner, InterfaceSetup, LinkState,
    PodInterface, ProvisionError, Removal,
};
use futures::lock::Mutex;

use crate::lock::NodeLock;
use crate::netns::{self, Netns};
use crate::{host, pod};

/// Creates, inspects and removes pod and host interfaces through rtnetlink.
///
/// Host-side work (creating a pod interface before it moves, VLAN and VXLAN interfaces) happens in
/// the *host namespace* chosen at construction; pod-side work in the namespace named by each request.
/// Every operation runs on a short-lived thread of its own (see the crate docs), so the provisioner
/// can be called from any executor and from any thread.
///
/// Host interfaces are reference counted by holder in their alias. Updates of that record are
/// serialised within one provisioner, and across processes when every one of them is given the same
/// node lock ([`with_node_lock`](Self::with_node_lock)).
#[derive(Debug)]
pub struct NetlinkProvisioner {
    host: Netns,
    host_lock: Mutex<()>,
    node_lock: Option<PathBuf>,
}

impl NetlinkProvisioner {
    /// A provisioner whose host namespace is the network namespace of the calling thread, captured
    /// now: later namespace changes of the thread do not affect it.
    ///
    /// Fails only when `/proc/thread-self/ns/net` cannot be opened (no procfs).
    pub fn new() -> Result<Self, ProvisionError> {
        Ok(Self::with_netns(Netns::current()?))
    }

    /// A provisioner whose host namespace is the one at `path` (e.g. `/proc/1/ns/net`, or a
    /// `/var/run/netns/<name>` mount). Fails with [`ProvisionError::NoNetns`] when nothing is there.
    pub fn with_host_netns(path: impl AsRef<Path>) -> Result<Self, ProvisionError> {
        Ok(Self::with_netns(Netns::open_existing(path.as_ref())?))
    }

    fn with_netns(host: Netns) -> Self {
        Self { host, host_lock: Mutex::new(()), node_lock: None }
    }

    /// Also takes an exclusive `flock(2)` on the file at `path` (created if missing) around every change
    /// to a host interface, so that all processes of a node that use the same path (the `danm` plugin
    /// and netwatcher use [`NODE_LOCK_PATH`](crate::NODE_LOCK_PATH)) update holder records one at a
    /// time. Best effort: where the file cannot be created or locked, changes are ordered within this
    /// provisioner only.
    pub fn with_node_lock(mut self, path: impl Into<PathBuf>) -> Self {
        self.node_lock = Some(path.into());
        self
    }
}

#[async_trait]
impl InterfaceProvisioner for NetlinkProvisioner {
    async fn create(&self, iface: &PodInterface) -> Result<CreatedInterface, ProvisionError> {
        let pod_ns = Netns::open_existing(&iface.netns)?;
        let iface = iface.clone();
        let moved_ns = pod_ns.clone();
        netns::in_two(&self.host, &pod_ns, move |host, pod| pod::create(host, pod, moved_ns, iface)).await
    }

    async fn delete(&self, netns_path: &Path, name: &str) -> Result<(), ProvisionError> {
        // A namespace that is gone, or a stale mount point where it was, holds nothing to delete.
        let Some(pod_ns) = Netns::open(netns_path)? else {
            return Ok(());
        };
        if !netns::is_enterable(&pod_ns) {
            return Ok(());
        }
        let name = name.to_owned();
        netns::in_netns(&pod_ns, move |pod| pod::delete(pod, name)).await
    }

    async fn inspect(&self, netns_path: &Path, name: &str) -> Result<Option<LinkState>, ProvisionError> {
        let pod_ns = Netns::open_existing(netns_path)?;
        let name = name.to_owned();
        netns::in_netns(&pod_ns, move |pod| pod::inspect(pod, name)).await
    }

    async fn ensure_host(&self, host_iface: &HostInterface, holder: &str) -> Result<(), ProvisionError> {
        let _serial = self.host_lock.lock().await;
        let (want, holder, lock) = (host_iface.clone(), holder.to_owned(), self.node_lock.clone());
        netns::in_netns(&self.host, move |host| async move {
            let _node = NodeLock::take(lock.as_deref());
            host::ensure(host, want, holder).await
        })
        .await
    }

    async fn release_host(&self, name: &str, holder: &str) -> Result<bool, ProvisionError> {
        let _serial = self.host_lock.lock().await;
        let (name, holder, lock) = (name.to_owned(), holder.to_owned(), self.node_lock.clone());
        netns::in_netns(&self.host, move |host| async move {
            let _node = NodeLock::take(lock.as_deref());
            host::release(host, name, holder).await
        })
        .await
    }

    async fn configure(&self, setup: &InterfaceSetup) -> Result<bool, ProvisionError> {
        // Where there is no namespace, there is no interface a delegate made.
        let Some(pod_ns) = Netns::open(&setup.netns)? else {
            return Ok(false);
        };
        let setup = setup.clone();
        netns::in_netns(&pod_ns, move |pod| pod::configure(pod, setup)).await
    }

    async fn deconfigure(&self, setup: &InterfaceSetup) -> Result<(), ProvisionError> {
        let Some(table) = setup.policy.as_ref().map(|p| p.table) else {
            return Ok(());
        };
        let Some(pod_ns) = Netns::open(&setup.netns)? else {
            return Ok(());
        };
        if !netns::is_enterable(&pod_ns) {
            return Ok(());
        }
        let name = setup.name.clone();
        netns::in_netns(&pod_ns, move |pod| pod::deconfigure(pod, name, table)).await
    }
}

/// The host namespace's interfaces, and the VLAN/VXLAN interfaces whose alias is DANM's holder record.
#[async_trait]
impl HostInventory for NetlinkProvisioner {
    async fn scan_hosts(&self) -> Result<HostScan, ProvisionError> {
        netns::in_netns(&self.host, host::scan).await
    }

    async fn remove_host(&self, name: &str, when: Removal) -> Result<bool, ProvisionError> {
        let _serial = self.host_lock.lock().await;
        let (name, lock) = (name.to_owned(), self.node_lock.clone());
        netns::in_netns(&self.host, move |host| async move {
            let _node = NodeLock::take(lock.as_deref());
            host::remove(host, name, when).await
        })
        .await
    }
}

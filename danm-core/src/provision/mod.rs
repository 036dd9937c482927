//! The InterfaceProvisioner seam: creating and removing pod and host network interfaces.
//!
//! danm-core decides *what* interfaces a pod gets ([`PodInterface`]) and which host VLAN/VXLAN
//! interfaces a network needs ([`HostInterface`]); a provisioner makes it so in the kernel. Backends:
//! the netlink provisioner (crate `danm-netlink`), [`NoopProvisioner`] for dry runs,
//! [`UnavailableProvisioner`] for builds without a kernel backend, and `RecordingProvisioner`
//! (feature `test-util`) for tests. [`HostInventory`] reads back and removes the host interfaces a
//! backend manages, for a reconciler of a whole node (netwatcher).

mod fakes;
mod host;
mod types;

use std::path::Path;

use async_trait::async_trait;

pub use fakes::{NoopProvisioner, UnavailableProvisioner};
#[cfg(any(test, feature = "test-util"))]
pub use fakes::{ProvisionCall, RecordingProvisioner};
pub use host::{HostInventory, HostScan, MAX_PLAIN_HOLDER, ObservedHost, Removal, holder_record};
pub use types::{
    CreatedInterface, HostInterface, HostLinkKind, InterfaceSetup, IpVlanMode, Ipv6Mode, LinkKind, LinkState,
    MacVlanMode, PodInterface, PolicyRouting, ProvisionError, Route,
};

/// Creates, inspects and removes network interfaces.
///
/// What each method must guarantee:
/// - [`create`](Self::create) either leaves the interface fully configured in the pod's netns, or, when it
///   fails part-way, removes everything it created. An interface of that name already in the netns is an
///   error ([`ProvisionError::Exists`]).
/// - [`delete`](Self::delete) is idempotent: a missing netns or interface is success.
/// - [`inspect`](Self::inspect) reads an interface back from the kernel; `None` when it does not exist.
/// - [`ensure_host`](Self::ensure_host) creates a host VLAN/VXLAN interface if needed and records `holder`
///   (a network) as one of its users; calling it again for the same holder changes nothing.
/// - [`release_host`](Self::release_host) forgets `holder`, and removes the interface when no holder is
///   left; it returns whether the interface was removed. Releasing an unknown holder or interface is
///   success.
/// - [`configure`](Self::configure) finishes an interface a delegate created (sysctls, IPv6 addresses
///   without duplicate address detection, routes, policy routing). It returns `false`, having done
///   nothing, when the netns has no kernel interface of that name (a userspace interface, such as a VF
///   bound to DPDK) or there is no such netns. When it fails part-way, the policy rules it added are removed again; the routes
///   go with the interface.
/// - [`deconfigure`](Self::deconfigure) removes what `configure` added that would outlive the interface:
///   the policy rules from the interface's subnets to the table of `setup.policy`, unless another
///   interface of the netns still has an address in that subnet. It runs before the delegate removes
///   the interface, and is idempotent: a missing netns or interface is success.
#[async_trait]
pub trait InterfaceProvisioner: Send + Sync {
    /// Creates a pod interface, fully configured.
    async fn create(&self, iface: &PodInterface) -> Result<CreatedInterface, ProvisionError>;
    /// Removes interface `name` from the netns at `netns`.
    async fn delete(&self, netns: &Path, name: &str) -> Result<(), ProvisionError>;
    /// Reads interface `name` in the netns at `netns`.
    async fn inspect(&self, netns: &Path, name: &str) -> Result<Option<LinkState>, ProvisionError>;
    /// Makes sure a host interface exists, with `holder` among its users.
    async fn ensure_host(&self, host: &HostInterface, holder: &str) -> Result<(), ProvisionError>;
    /// Drops `holder` from a host interface's users; removes the interface with its last user.
    async fn release_host(&self, name: &str, holder: &str) -> Result<bool, ProvisionError>;
    /// Applies DANM's configuration to an interface a delegate created.
    async fn configure(&self, setup: &InterfaceSetup) -> Result<bool, ProvisionError>;
    /// Removes the policy rules [`configure`](Self::configure) added, before the interface goes.
    async fn deconfigure(&self, setup: &InterfaceSetup) -> Result<(), ProvisionError>;
}

macro_rules! forward_provisioner {
    ($ty:ty) => {
        #[async_trait]
        impl<T: InterfaceProvisioner + ?Sized> InterfaceProvisioner for $ty {
            async fn create(&self, iface: &PodInterface) -> Result<CreatedInterface, ProvisionError> {
                (**self).create(iface).await
            }
            async fn delete(&self, netns: &Path, name: &str) -> Result<(), ProvisionError> {
                (**self).delete(netns, name).await
            }
            async fn inspect(&self, netns: &Path, name: &str) -> Result<Option<LinkState>, ProvisionError> {
                (**self).inspect(netns, name).await
            }
            async fn ensure_host(&self, host: &HostInterface, holder: &str) -> Result<(), ProvisionError> {
                (**self).ensure_host(host, holder).await
            }
            async fn release_host(&self, name: &str, holder: &str) -> Result<bool, ProvisionError> {
                (**self).release_host(name, holder).await
            }
            async fn configure(&self, setup: &InterfaceSetup) -> Result<bool, ProvisionError> {
                (**self).configure(setup).await
            }
            async fn deconfigure(&self, setup: &InterfaceSetup) -> Result<(), ProvisionError> {
                (**self).deconfigure(setup).await
            }
        }
    };
}

forward_provisioner!(std::sync::Arc<T>);
forward_provisioner!(&T);
forward_provisioner!(Box<T>);

//! What a provisioner is asked to create, and what it reports back.

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;

/// IPVLAN modes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IpVlanMode {
    /// Layer 2 (upstream DANM's only mode, and the default).
    #[default]
    L2,
    /// Layer 3.
    L3,
    /// Layer 3 with source checks (L3S).
    L3S,
}

/// MACVLAN modes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MacVlanMode {
    /// Slaves on one parent reach each other directly (the default).
    #[default]
    Bridge,
    /// Slaves are isolated from each other.
    Private,
    /// Traffic between slaves goes through the external switch.
    Vepa,
    /// One slave takes the parent over.
    Passthru,
}

/// The kind of a pod interface created by a built-in backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// An IPVLAN slave of the parent.
    IpVlan(IpVlanMode),
    /// A MACVLAN slave of the parent.
    MacVlan(MacVlanMode),
}

/// How the pod interface's IPv6 is configured (upstream's per-interface sysctls).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv6Mode {
    /// IPv6 in use (an IPv6 address, or `ip6: none`): `disable_ipv6=0`, `autoconf=0`, `accept_ra=0`,
    /// `ndisc_notify=1`.
    Enabled,
    /// No IPv6 on this interface: `disable_ipv6=1`.
    Disabled,
}

/// A route: destination and gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Destination.
    pub dst: IpNet,
    /// Gateway.
    pub gateway: IpAddr,
}

/// Policy routing for a pod interface: routes in their own table, and a rule sending traffic from the
/// interface's subnet(s) to that table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRouting {
    /// The routing table (the network's `rt_tables`).
    pub table: u32,
    /// Routes to install in that table (the pod's `proutes` and `proutes6`).
    pub routes: Vec<Route>,
}

/// A pod interface to create with a built-in backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodInterface {
    /// The pod's netns (a path such as `/var/run/netns/x` or `/proc/<pid>/ns/net`).
    pub netns: PathBuf,
    /// The interface's final name in the pod.
    pub name: String,
    /// A unique name (at most 15 bytes) to create it under in the pod's netns before it is renamed (the
    /// final name may be taken there until the rename).
    pub temp_name: String,
    /// IPVLAN or MACVLAN, and the mode.
    pub link: LinkKind,
    /// The host parent interface: the network's VLAN/VXLAN host interface, or its `host_device`.
    pub parent: String,
    /// The MTU; the parent's when `None`.
    pub mtu: Option<u32>,
    /// Addresses, with the subnet's prefix length. IPv6 ones are added without duplicate address
    /// detection.
    pub addresses: Vec<IpNet>,
    /// The network's `routes`/`routes6`, in the main table, bound to this interface. Only routes of a
    /// family the interface has an address of are given.
    pub routes: Vec<Route>,
    /// The pod's policy routes, when the network has `rt_tables` and the pod asked for `proutes`.
    pub policy: Option<PolicyRouting>,
    /// IPv6 sysctls.
    pub ipv6: Ipv6Mode,
}

/// DANM's configuration of a pod interface that a delegate (a static delegate or SR-IOV) created, applied
/// after the delegate returns, as upstream's post-processing does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceSetup {
    /// The pod's netns.
    pub netns: PathBuf,
    /// The interface's name in the pod.
    pub name: String,
    /// The network's `routes`/`routes6`, in the main table, bound to this interface. Only routes of a
    /// family the interface has an address of are given.
    pub routes: Vec<Route>,
    /// The pod's policy routes, when the network has `rt_tables` and the pod asked for `proutes`. The
    /// rule's source is each subnet of the interface's addresses.
    pub policy: Option<PolicyRouting>,
    /// IPv6 sysctls. With [`Ipv6Mode::Enabled`], IPv6 addresses the delegate configured with duplicate
    /// address detection are added again without it.
    pub ipv6: Ipv6Mode,
}

/// What was created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedInterface {
    /// The MAC address.
    pub mac: String,
    /// The MTU.
    pub mtu: u32,
}

/// An interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    /// The name.
    pub name: String,
    /// The MAC address (lower-case, colon-separated).
    pub mac: String,
    /// The MTU.
    pub mtu: u32,
    /// Whether it is administratively up.
    pub up: bool,
    /// Its addresses.
    pub addresses: Vec<IpNet>,
}

/// The kind of a host interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostLinkKind {
    /// An 802.1Q VLAN `<NetworkID>.<vlan>`.
    Vlan(u16),
    /// A VXLAN `vx_<NetworkID>`: UDP 4789, group 239.0.0.0/8 plus the VNI, local address from the parent,
    /// learning on.
    Vxlan(u32),
}

/// A host interface a network needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInterface {
    /// Its name.
    pub name: String,
    /// Its parent (the network's `host_device`).
    pub parent: String,
    /// VLAN or VXLAN.
    pub kind: HostLinkKind,
    /// The MTU; derived from the parent when `None`. It may not exceed what the parent allows.
    pub mtu: Option<u32>,
}

/// Why a provisioner failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// This backend or kernel cannot do what was asked.
    #[error("{what} is not available: {reason}")]
    Unsupported {
        /// What was asked.
        what: String,
        /// Why it is not available.
        reason: String,
    },
    /// The netns does not exist.
    #[error("network namespace {path} does not exist")]
    NoNetns {
        /// Its path.
        path: PathBuf,
    },
    /// The parent interface does not exist.
    #[error("parent interface {parent} does not exist")]
    ParentMissing {
        /// Its name.
        parent: String,
    },
    /// An interface of that name already exists.
    #[error("interface {name} already exists")]
    Exists {
        /// Its name.
        name: String,
    },
    /// A request that cannot be carried out as given (an MTU above the parent's, for example).
    #[error("invalid request for {name}: {reason}")]
    Invalid {
        /// The interface.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A kernel operation failed.
    #[error("{operation} failed")]
    Kernel {
        /// What was being done, e.g. `adding 10.0.0.5/24 to eth1`.
        operation: String,
        /// The kernel's or library's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

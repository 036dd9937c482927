//! netwatcher's decisions, without I/O: which VLAN and VXLAN host interfaces a node needs for all
//! networks, and how to get there from what the node has.
//!
//! [`plan`] is a pure function of every network and a [`HostScan`](crate::provision::HostScan) of the
//! node; [`apply`] carries the plan out through any provisioner that also implements
//! [`HostInventory`](crate::provision::HostInventory), and [`report`] says where each network stands
//! afterwards. The Kubernetes controller (danm-k8s `netwatcher`) feeds it from watch caches and reports
//! the result as Events; an embedder can call the three with networks from any store.
//!
//! # Ownership and the contract with the CNI
//!
//! Host interfaces are **reference counted over networks**: each network that needs an interface is
//! one of its holders (`Kind/namespace/name`, as [`HolderKey`] prints it),
//! recorded on the interface itself by the backend (the netlink one keeps them in the link alias).
//! Pods are not holders: a network's interface stays while the network exists, whether or not pods use
//! it, as upstream DANM's did.
//!
//! - **netwatcher owns the interfaces' life cycle.** It creates them for new networks, adds holders,
//!   repairs drift (an interface deleted, brought down, given another MTU, or replaced by one of another
//!   kind, id or parent), releases the holders of networks that are gone and removes an interface with
//!   its last holder. It is the only one that releases or removes.
//! - **The CNI only ensures.** On ADD of a built-in (IPVLAN/MACVLAN) interface on a VLAN or VXLAN
//!   network, the `danm` plugin calls `ensure_host` for that network before it creates the pod
//!   interface: the interface then exists, with the network recorded, even when netwatcher has not seen
//!   the network yet or is not running. It never releases: DEL leaves host interfaces alone.
//! - Both record the same holder for a network, so whichever comes first, the record is the same, and
//!   netwatcher's next pass finds nothing to do. A holder recorded by the CNI for a network netwatcher
//!   does not know (its cache lags) would look stale; the controller therefore confirms every
//!   destructive plan against a fresh read of the networks before it acts (see danm-k8s).
//!
//! # What upstream did differently
//!
//! Upstream's netwatcher created an interface on a network's add, recreated it when the VNI or
//! host device changed, and deleted it on the network's delete with no reference count, so deleting one
//! of two networks sharing `vx_<NetworkID>` cut the other's pods off; and it never looked at the node
//! again, so an interface deleted by hand stayed gone. Here the plan is computed from all networks and
//! the node as it is, every time.

mod apply;
pub mod attachment;
mod holder;
mod plan;
#[cfg(test)]
mod tests;

pub use apply::{NetworkReport, StepOutcome, apply, failure_summary, report};
pub use attachment::Attachment;
pub use holder::HolderKey;
pub use plan::{Drift, HostAction, HostPlan, Placement, plan, plan_with_attachments};

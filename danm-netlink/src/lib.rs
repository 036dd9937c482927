//! danm-netlink: the netlink interface provisioner of DANM.
//!
//! [`NetlinkProvisioner`] implements danm-core's
//! [`InterfaceProvisioner`](danm_core::provision::InterfaceProvisioner) on the running kernel, through
//! rtnetlink (it never runs `ip`):
//! - **pod interfaces**: IPVLAN (l2, l3, l3s) and MACVLAN slaves of a host parent, created under a
//!   temporary name directly in the pod's network namespace (no move, which would cost the kernel an RCU
//!   grace period), renamed, given their MTU, IPv4 and IPv6
//!   addresses (IPv6 without duplicate address detection), upstream DANM's per-interface IPv6 sysctls,
//!   routes in the main table bound to the link, policy routing (a source rule per subnet and routes in
//!   the network's table), a gratuitous ARP, and brought up. A failed creation removes what it made.
//!   Deletion is by name and tolerates anything already gone, and also removes the policy rules of the
//!   interface's subnets that no other interface in the namespace still uses.
//! - **host interfaces**: VLAN `<NetworkID>.<vlan>` and VXLAN `vx_<NetworkID>` (UDP 4789, group
//!   239.0.0.0/8 plus the VNI, local address from the parent, learning and L2/L3 miss notifications on,
//!   as upstream), created idempotently and **reference counted** by holder, so an interface shared by
//!   several networks goes with the last of them. The holders are recorded in the interface's alias
//!   (`IFLA_IFALIAS`, see `ip link show`): the record lives and dies with the interface and survives
//!   restarts, but holds at most 255 bytes, so long holder names are stored hashed and at least 13
//!   holders fit. Interfaces whose alias is not DANM's are used as they are and never removed.
//!   With [`NetlinkProvisioner::with_node_lock`] (the `danm` plugin and netwatcher both use
//!   [`NODE_LOCK_PATH`]), changes to those records also take a node-wide `flock(2)`, so several
//!   processes on one node never lose each other's updates.
//!   [`HostInventory`](danm_core::provision::HostInventory) reads the host namespace back (every
//!   interface name, and each DANM-managed interface's kind, id, parent, holders, state and MTU, so
//!   netwatcher sees drift) and removes a managed interface whatever its holders.
//!
//! The kernel keeps **one IPVLAN mode per parent**: creating a slave in another mode switches every
//! slave of that parent to it (see the VM test `ipvlan_mode_is_shared_by_all_slaves_of_a_parent`).
//! Nothing in netlink shows a parent's current mode, so this crate cannot refuse such a request; the
//! networks sharing a host device must agree on the mode (danm-core's validation).
//!
//! # Network namespaces
//! A netlink socket belongs to the network namespace of the thread that opens it. Each operation
//! therefore runs on a short-lived thread that enters the namespaces it needs with `setns(2)` (through
//! the `nix` crate, so no `unsafe` code), opens one rtnetlink connection in each, and drives them with
//! a current-thread tokio runtime; the caller awaits the result over a channel. The caller's threads
//! never change namespace, and the provisioner works under any executor.
//!
//! # The gratuitous ARP
//! Instead of a raw packet socket, the provisioner sets `net.ipv4.conf.<if>.arp_notify=1` before it
//! brings the interface up; the kernel then announces the interface's IPv4 addresses when it comes up
//! (and again when its address changes). As upstream, a failure to arrange this is ignored.
//!
//! # Tests
//! `tests/kernel.rs` runs on the host kernel (macvlan, VXLAN) in namespaces it creates, as root;
//! `tests/vm.rs` (ipvlan, VLAN) runs inside a user-mode-linux VM: `tools/vm-setup.sh` prepares it and
//! `tools/uml-run.sh <test binary> --include-ignored` runs a test binary there (`tools/test-all.sh` does
//! both, and runs the kernel suite in the VM too).
//!
//! # What this crate is not
//! It does no IPAM, naming or planning (danm-core decides what to create), does not delegate to CNI
//! plugins, and only runs on Linux with `CAP_NET_ADMIN` (and `CAP_SYS_ADMIN` for `setns` into another
//! namespace: host interface work in the process's own namespace, netwatcher's, needs none). IPVLAN
//! needs a kernel with `CONFIG_IPVLAN`, VLANs one with `CONFIG_VLAN_8021Q`; without them creation fails with
//! [`ProvisionError::Unsupported`](danm_core::provision::ProvisionError::Unsupported).

mod error;
mod holders;
mod host;
mod links;
mod lock;
mod netns;
mod pod;
mod provisioner;
mod sysctl;

pub use lock::NODE_LOCK_PATH;
pub use provisioner::NetlinkProvisioner;

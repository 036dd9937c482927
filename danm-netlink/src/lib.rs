//! danm-netlink: the netlink interface provisioner of DANM.
//!
//! This crate will create and remove pod interfaces (ipvlan, macvlan) and host interfaces (VLAN, VXLAN)
//! with rtnetlink, behind danm-core's provisioner trait. It holds no provisioner yet: nothing here touches
//! the kernel today.

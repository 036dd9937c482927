//! Address management for IPv4 and IPv6 that scales to IPv4 /8 and IPv6 /64 pools.
//!
//! - [`Pool`]: a network's subnet, dynamic range and reserved addresses for one family (pure).
//! - [`Block`]: the persisted state, 64 addresses per versioned record, created on first use.
//! - [`Ipam`]: the driver that reads blocks from a [`Datastore`](crate::store::Datastore), decides, and
//!   writes back with compare-and-swap and bounded, jittered retries.
//!
//! The design and its trade-offs are written up in `docs/ipam.md`.

mod block;
mod driver;
mod error;
mod pool;
mod request;

use std::net::IpAddr;

use ipnet::IpNet;

pub use block::{AllocatorId, BLOCK_SIZE, Block, BlockKey, Cursor, FreeOutcome, OwnerId, PoolKey, SlotTaken};
pub use driver::{Ipam, IpamStats};
pub use error::IpamError;
pub use pool::{Family, MIN_IPV6_POOL_PREFIX, Pool, default_v6_pool_cidr};
pub use request::{IpRequest, IpRequestParseError};

/// Serde helpers that write a `u128` (a block index) as a decimal string: JSON numbers, and so
/// Kubernetes objects, cannot carry it exactly. Use with `#[serde(with = "danm_core::ipam::serde_u128")]`.
pub mod serde_u128 {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `v` as a decimal string.
    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    /// Reads a decimal string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// What one interface asks of IPAM: each family is absent (`None`), `none`, dynamic or static.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddressRequest {
    /// The `ip` key.
    pub ip: Option<IpRequest>,
    /// The `ip6` key.
    pub ip6: Option<IpRequest>,
}

/// What IPAM decided for one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignment {
    /// `none` was asked for: no address, recorded as `none`.
    None,
    /// An address, with the subnet's prefix length.
    Address {
        /// The address and prefix.
        address: IpNet,
        /// Whether it came from the dynamic range (as opposed to a static request).
        dynamic: bool,
    },
}

impl Assignment {
    /// The address, if one was assigned.
    pub fn address(&self) -> Option<IpNet> {
        match self {
            Self::None => None,
            Self::Address { address, .. } => Some(*address),
        }
    }

    /// The form a DanmEp records: the CIDR, or `none`.
    pub fn to_record(&self) -> String {
        match self {
            Self::None => "none".to_owned(),
            Self::Address { address, .. } => address.to_string(),
        }
    }
}

/// What IPAM decided for one interface.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Allocation {
    /// IPv4, when asked for.
    pub v4: Option<Assignment>,
    /// IPv6, when asked for.
    pub v6: Option<Assignment>,
}

impl Allocation {
    /// The addresses assigned, IPv4 first.
    pub fn addresses(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.v4.iter().chain(self.v6.iter()).filter_map(Assignment::address)
    }

    /// Whether `addr` is one of the addresses assigned.
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.addresses().any(|a| a.addr() == addr)
    }
}

/// How much of one pool is in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolUsage {
    /// The family.
    pub family: Family,
    /// The subnet.
    pub subnet: IpNet,
    /// The dynamic range's first address.
    pub start: IpAddr,
    /// The dynamic range's last address.
    pub end: IpAddr,
    /// Addresses the dynamic range can hand out.
    pub capacity: u128,
    /// Addresses allocated anywhere in the subnet (static ones outside the range included).
    pub allocated: u128,
    /// Addresses allocated inside the dynamic range.
    pub allocated_in_pool: u128,
}

impl PoolUsage {
    fn new(pool: &Pool, allocated: u128, allocated_in_pool: u128) -> Self {
        Self {
            family: pool.family(),
            subnet: pool.subnet(),
            start: pool.start(),
            end: pool.end(),
            capacity: pool.capacity(),
            allocated,
            allocated_in_pool,
        }
    }

    /// Addresses the dynamic range can still hand out.
    pub fn free(&self) -> u128 {
        self.capacity.saturating_sub(self.allocated_in_pool)
    }
}

/// One allocated address of a network, as [`Ipam::allocations`] lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocated {
    /// The address, with the subnet's prefix length.
    pub address: IpNet,
    /// Who holds it.
    pub owner: OwnerId,
    /// Whether it lies in the dynamic range (otherwise it is a static address outside it).
    pub in_pool: bool,
}

//! Errors of address management.

use std::net::IpAddr;

use ipnet::IpNet;

use super::Family;
use crate::store::StoreError;

/// Why an address could not be allocated or freed.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    /// The network's addressing options are malformed.
    #[error("{field}: {reason}")]
    InvalidNetwork {
        /// The offending network field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// An address was asked for, but the network has no subnet of that family.
    #[error("{request}: the network has no {family} subnet ({field} is empty), so no address can be allocated on it")]
    NoSubnet {
        /// `ip` or `ip6`.
        request: &'static str,
        /// The family.
        family: Family,
        /// The empty network field.
        field: &'static str,
    },
    /// A static address of the wrong family was asked for.
    #[error("{request}: {addr} is not an {family} address")]
    WrongFamily {
        /// `ip` or `ip6`.
        request: &'static str,
        /// The address asked for.
        addr: IpAddr,
        /// The family the key stands for.
        family: Family,
    },
    /// A static address outside the network's subnet was asked for.
    #[error("{request}: {addr} is outside the network's subnet {subnet}")]
    OutsideSubnet {
        /// `ip` or `ip6`.
        request: &'static str,
        /// The address asked for.
        addr: IpAddr,
        /// The subnet.
        subnet: IpNet,
    },
    /// The subnet's network or last (broadcast) address was asked for.
    #[error("{request}: {addr} is reserved (the first or last address of {subnet})")]
    Reserved {
        /// `ip` or `ip6`.
        request: &'static str,
        /// The address asked for.
        addr: IpAddr,
        /// The subnet.
        subnet: IpNet,
    },
    /// A static address already held by someone else was asked for.
    #[error("{request}: {addr} is already in use")]
    InUse {
        /// `ip` or `ip6`.
        request: &'static str,
        /// The address asked for.
        addr: IpAddr,
    },
    /// Every address of the dynamic range is taken.
    #[error("the {family} allocation pool of {network} is exhausted")]
    Exhausted {
        /// The network, as text.
        network: String,
        /// The family.
        family: Family,
    },
    /// Concurrent writers kept winning the race for longer than the retry policy allows.
    #[error("gave up on {network} after {conflicts} conflicting concurrent writes; try again")]
    Contention {
        /// The network, as text.
        network: String,
        /// How many writes lost the race.
        conflicts: u32,
    },
    /// An address to free is held by another owner; it was left alone.
    #[error("{addr} is held by another attachment and was not freed")]
    HeldByOther {
        /// The address.
        addr: IpAddr,
    },
    /// Undoing the first family of a dual-stack request failed after the second family failed.
    #[error("{error}; undoing the partial allocation also failed: {rollback}")]
    Rollback {
        /// Why the allocation failed.
        error: Box<IpamError>,
        /// Why freeing what was already allocated failed.
        rollback: Box<IpamError>,
    },
    /// The datastore failed.
    #[error("IPAM state could not be read or written")]
    Store(#[from] StoreError),
}

impl IpamError {
    /// Whether trying again later may succeed (contention or a datastore failure).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Contention { .. } | Self::Store(StoreError::Backend(_)) => true,
            Self::Rollback { error, .. } => error.is_transient(),
            _ => false,
        }
    }
}

//! A network's address pool for one family: its subnet, dynamic range and reserved addresses, as offsets.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv6Net};

use super::block::BLOCK_SIZE;
use super::error::IpamError;
use crate::model::NetworkOptions;

/// The widest IPv6 allocation pool: a /64.
pub const MIN_IPV6_POOL_PREFIX: u8 = 64;

/// The IPv6 allocation pool CIDR used when `allocation_pool_v6.cidr` is not given: `net6` itself when it is
/// a /64 or narrower, otherwise the first /64 of `net6`. Host bits of `net6` are cleared.
pub fn default_v6_pool_cidr(net6: Ipv6Net) -> Ipv6Net {
    let net6 = net6.trunc();
    if net6.prefix_len() >= MIN_IPV6_POOL_PREFIX {
        net6
    } else {
        Ipv6Net::new(net6.network(), MIN_IPV6_POOL_PREFIX).unwrap_or(net6)
    }
}

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub enum Family {
    /// IPv4 (`cidr`, `allocation_pool`, `routes`, the `ip` request).
    V4,
    /// IPv6 (`net6`, `allocation_pool_v6`, `routes6`, the `ip6` request).
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: &IpAddr) -> Self {
        if addr.is_ipv4() { Self::V4 } else { Self::V6 }
    }

    /// The network field that holds this family's subnet.
    pub fn subnet_field(self) -> &'static str {
        match self {
            Self::V4 => "spec.Options.cidr",
            Self::V6 => "spec.Options.net6",
        }
    }

    /// The interface request key of this family.
    pub fn request_field(self) -> &'static str {
        match self {
            Self::V4 => "ip",
            Self::V6 => "ip6",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::V4 => "IPv4",
            Self::V6 => "IPv6",
        })
    }
}

/// The address pool of one family of a network, with every address expressed as its offset from the
/// subnet's first address.
///
/// - The **subnet** (`cidr` / `net6`) bounds static requests, and is what the allocation blocks cover.
/// - The **dynamic range** `start..=end` is the allocation pool. Defaults as upstream: IPv4 from the first
///   host address to the one before broadcast; IPv6 inside `allocation_pool_v6.cidr`, which defaults to
///   `net6` itself, or to the first /64 of `net6` when `net6` is wider than /64.
/// - **Reserved**: the subnet's first and last address are never handed out, statically or dynamically.
/// - **Gateways** of `routes` / `routes6` inside the subnet are never handed out dynamically, but may be
///   requested statically (a router pod).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    family: Family,
    subnet: IpNet,
    start: u128,
    end: u128,
    gateways: BTreeSet<u128>,
}

fn to_u128(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> IpamError {
    IpamError::InvalidNetwork { field, reason: reason.into() }
}

impl Pool {
    /// The pool of `family` described by a network's options, or `None` when the network has no subnet
    /// of that family. Fails, naming the field, when the options are malformed.
    pub fn from_options(options: &NetworkOptions, family: Family) -> Result<Option<Self>, IpamError> {
        match family {
            Family::V4 => Self::v4(options),
            Family::V6 => Self::v6(options),
        }
    }

    fn v4(o: &NetworkOptions) -> Result<Option<Self>, IpamError> {
        if o.cidr.is_empty() {
            return Ok(None);
        }
        let field = "spec.Options.cidr";
        let subnet = match o.cidr.parse::<IpNet>() {
            Ok(n @ IpNet::V4(_)) => n.trunc(),
            _ => return Err(invalid(field, format!("`{}` is not an IPv4 CIDR", o.cidr))),
        };
        let mut pool = Self::bare(Family::V4, subnet);
        let (lo, hi) = (1, pool.last().saturating_sub(1));
        pool.start = pool.bound(&o.allocation_pool.start, "spec.Options.allocation_pool.start", lo)?;
        pool.end = pool.bound(&o.allocation_pool.end, "spec.Options.allocation_pool.end", hi)?;
        pool.gateways = pool.gateways_of(o.routes.values(), "spec.Options.routes")?;
        Ok(Some(pool))
    }

    fn v6(o: &NetworkOptions) -> Result<Option<Self>, IpamError> {
        if o.net6.is_empty() {
            return Ok(None);
        }
        let field = "spec.Options.net6";
        let subnet = match o.net6.parse::<IpNet>() {
            Ok(n @ IpNet::V6(_)) => n.trunc(),
            _ => return Err(invalid(field, format!("`{}` is not an IPv6 CIDR", o.net6))),
        };
        let mut pool = Self::bare(Family::V6, subnet);
        let range = if o.allocation_pool_v6.cidr.is_empty() {
            let IpNet::V6(net6) = subnet else { return Err(invalid(field, "not an IPv6 CIDR")) };
            IpNet::V6(default_v6_pool_cidr(net6))
        } else {
            let f = "spec.Options.allocation_pool_v6.cidr";
            match o.allocation_pool_v6.cidr.parse::<IpNet>() {
                Ok(n @ IpNet::V6(_)) if subnet.contains(&n) => n.trunc(),
                _ => {
                    return Err(invalid(f, format!("`{}` is not an IPv6 CIDR inside net6", o.allocation_pool_v6.cidr)));
                }
            }
        };
        let lo = to_u128(range.network()) - to_u128(subnet.network()) + 1;
        let hi = to_u128(range.broadcast()) - to_u128(subnet.network());
        let hi = hi.saturating_sub(1).min(pool.last().saturating_sub(1));
        pool.start = pool.bound(&o.allocation_pool_v6.start, "spec.Options.allocation_pool_v6.start", lo)?;
        pool.end = pool.bound(&o.allocation_pool_v6.end, "spec.Options.allocation_pool_v6.end", hi)?;
        pool.gateways = pool.gateways_of(o.routes6.values(), "spec.Options.routes6")?;
        Ok(Some(pool))
    }

    fn bare(family: Family, subnet: IpNet) -> Self {
        Self { family, subnet, start: 1, end: 0, gateways: BTreeSet::new() }
    }

    fn bound(&self, value: &str, field: &'static str, default: u128) -> Result<u128, IpamError> {
        if value.is_empty() {
            return Ok(default);
        }
        let addr: IpAddr = value.parse().map_err(|_| invalid(field, format!("`{value}` is not an IP address")))?;
        self.offset(addr).ok_or_else(|| invalid(field, format!("{addr} is outside {}", self.subnet)))
    }

    fn gateways_of<'a>(
        &self,
        gateways: impl Iterator<Item = &'a String>,
        field: &'static str,
    ) -> Result<BTreeSet<u128>, IpamError> {
        let mut set = BTreeSet::new();
        for gw in gateways {
            let addr: IpAddr =
                gw.parse().map_err(|_| invalid(field, format!("gateway `{gw}` is not an IP address")))?;
            if let Some(off) = self.offset(addr) {
                set.insert(off);
            }
        }
        Ok(set)
    }

    /// A pool over `subnet` with an explicit dynamic range and gateways, for embedders that keep their own
    /// network model. `start` and `end` must lie in the subnet.
    pub fn new(subnet: IpNet, start: IpAddr, end: IpAddr, gateways: &[IpAddr]) -> Result<Self, IpamError> {
        let subnet = subnet.trunc();
        let mut pool = Self::bare(Family::of(&subnet.network()), subnet);
        let out = |a: IpAddr| invalid("pool", format!("{a} is outside {subnet}"));
        pool.start = pool.offset(start).ok_or_else(|| out(start))?;
        pool.end = pool.offset(end).ok_or_else(|| out(end))?;
        pool.gateways = gateways.iter().filter_map(|g| pool.offset(*g)).collect();
        Ok(pool)
    }

    /// The family.
    pub fn family(&self) -> Family {
        self.family
    }

    /// The subnet (with host bits cleared).
    pub fn subnet(&self) -> IpNet {
        self.subnet
    }

    /// The first address of the dynamic range.
    pub fn start(&self) -> IpAddr {
        self.addr(self.start)
    }

    /// The last address of the dynamic range.
    pub fn end(&self) -> IpAddr {
        self.addr(self.end)
    }

    /// The offset of the subnet's last address.
    pub fn last(&self) -> u128 {
        match self.subnet {
            IpNet::V4(n) => u128::from(u32::from(n.hostmask())),
            IpNet::V6(n) => u128::from(n.hostmask()),
        }
    }

    /// The offset of `addr` in the subnet, or `None` when it is outside (or of the other family).
    pub fn offset(&self, addr: IpAddr) -> Option<u128> {
        (Family::of(&addr) == self.family && self.subnet.contains(&addr))
            .then(|| to_u128(addr) - to_u128(self.subnet.network()))
    }

    /// The address at `offset` (which must not exceed [`Pool::last`]).
    pub fn addr(&self, offset: u128) -> IpAddr {
        let a = to_u128(self.subnet.network()).wrapping_add(offset);
        match self.family {
            Family::V4 => IpAddr::V4(Ipv4Addr::from(u32::try_from(a).unwrap_or(u32::MAX))),
            Family::V6 => IpAddr::V6(Ipv6Addr::from(a)),
        }
    }

    /// The address at `offset`, with the subnet's prefix length: what a pod is given.
    pub fn addr_net(&self, offset: u128) -> IpNet {
        IpNet::new(self.addr(offset), self.subnet.prefix_len()).unwrap_or(self.subnet)
    }

    /// Whether `offset` is the subnet's first or last address, which are never handed out.
    pub fn is_reserved(&self, offset: u128) -> bool {
        offset == 0 || offset == self.last()
    }

    /// Whether `offset` may be handed out dynamically: inside the dynamic range, not reserved, not a
    /// gateway.
    pub fn is_dynamic(&self, offset: u128) -> bool {
        (self.start..=self.end).contains(&offset) && !self.is_reserved(offset) && !self.gateways.contains(&offset)
    }

    /// The first and last block index of the dynamic range, or `None` when the range is empty.
    pub fn block_range(&self) -> Option<(u128, u128)> {
        let bs = u128::from(BLOCK_SIZE);
        (self.start <= self.end).then(|| (self.start / bs, self.end / bs))
    }

    /// How many addresses can be handed out dynamically.
    pub fn capacity(&self) -> u128 {
        if self.start > self.end {
            return 0;
        }
        let in_range = |o: &u128| (self.start..=self.end).contains(o);
        let mut excluded: BTreeSet<u128> = [0, self.last()].into_iter().filter(in_range).collect();
        excluded.extend(self.gateways.iter().copied().filter(in_range));
        (self.end - self.start).saturating_add(1) - excluded.len() as u128
    }

    /// Splits an offset into its block index and slot.
    pub fn locate(offset: u128) -> (u128, u8) {
        let bs = u128::from(BLOCK_SIZE);
        (offset / bs, u8::try_from(offset % bs).unwrap_or(0))
    }

    /// The first slot of block `index`, at or after `from`, that can be handed out dynamically and is not
    /// taken in `block` (an absent block has every slot free).
    pub fn find_free(&self, index: u128, block: Option<&super::Block>, from: u8) -> Option<u8> {
        let base = index.checked_mul(u128::from(BLOCK_SIZE))?;
        (from..u8::try_from(BLOCK_SIZE).unwrap_or(u8::MAX)).find(|slot| {
            let off = base + u128::from(*slot);
            self.is_dynamic(off) && block.is_none_or(|b| b.owner(*slot).is_none())
        })
    }
}

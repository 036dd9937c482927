//! Addressing rules 1–16: subnets, routes, allocation pools and allocation state.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::error::{ValidationErrors, Violation};
use crate::ipam::default_v6_pool_cidr;
use crate::model::NetworkOptions;

/// The widest IPv4 subnet danm-rs accepts in `cidr`.
pub const MIN_IPV4_PREFIX: u8 = 8;
/// The widest IPv6 allocation pool CIDR danm-rs accepts in `allocation_pool_v6.cidr`.
pub use crate::ipam::MIN_IPV6_POOL_PREFIX;

const CIDR: &str = "spec.Options.cidr";
const ROUTES: &str = "spec.Options.routes";
const POOL: &str = "spec.Options.allocation_pool";
const NET6: &str = "spec.Options.net6";
const ROUTES6: &str = "spec.Options.routes6";
const POOL6: &str = "spec.Options.allocation_pool_v6";
const POOL6_CIDR: &str = "spec.Options.allocation_pool_v6.cidr";

/// Runs the addressing rules on `opts`; `creating` enables rules 5–6.
pub(crate) fn check(opts: &NetworkOptions, creating: bool, errs: &mut ValidationErrors) {
    if creating {
        check_no_allocation_state(opts, errs);
    }
    check_v4(opts, errs);
    check_v6(opts, errs);
}

/// Rules 5–6: allocation bitmasks and next-fit cursors are internal state, never given on create.
fn check_no_allocation_state(opts: &NetworkOptions, errs: &mut ValidationErrors) {
    let state = [
        ("spec.Options.alloc", &opts.alloc),
        ("spec.Options.alloc6", &opts.alloc6),
        ("spec.Options.allocation_pool.lastIp", &opts.allocation_pool.last_ip),
        ("spec.Options.allocation_pool_v6.lastIp", &opts.allocation_pool_v6.last_ip),
    ];
    for (field, value) in state {
        if !value.is_empty() {
            errs.push(
                field,
                Violation::AllocationStateOnCreate,
                "allocation state may not be set when creating a network",
            );
        }
    }
}

/// An IP family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn name(self) -> &'static str {
        match self {
            Self::V4 => "IPv4",
            Self::V6 => "IPv6",
        }
    }

    fn of_net(net: &IpNet) -> Self {
        if matches!(net, IpNet::V4(_)) { Self::V4 } else { Self::V6 }
    }

    fn net(self, s: &str) -> Option<IpNet> {
        s.parse::<IpNet>().ok().filter(|n| Self::of_net(n) == self)
    }

    fn addr(self, s: &str) -> Option<IpAddr> {
        match self {
            Self::V4 => s.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
            Self::V6 => s.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        }
    }

    fn addr_from(self, n: u128) -> Option<IpAddr> {
        match self {
            Self::V4 => u32::try_from(n).ok().map(|n| IpAddr::V4(n.into())),
            Self::V6 => Some(IpAddr::V6(n.into())),
        }
    }
}

fn as_u128(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u32::from(a).into(),
        IpAddr::V6(a) => a.into(),
    }
}

/// A subnet field: not given, given but invalid (already reported), or valid.
#[derive(Debug, Clone, Copy)]
enum Subnet {
    Absent,
    Invalid,
    Valid(IpNet),
}

/// Rules 1, 2 and 7–10.
fn check_v4(opts: &NetworkOptions, errs: &mut ValidationErrors) {
    let pool = &opts.allocation_pool;
    let subnet = if opts.cidr.is_empty() {
        Subnet::Absent
    } else {
        match Family::V4.net(&opts.cidr) {
            None => {
                errs.push(CIDR, Violation::InvalidIpv4Cidr, format!("{:?} is not an IPv4 CIDR", opts.cidr));
                Subnet::Invalid
            }
            Some(net) if net.prefix_len() < MIN_IPV4_PREFIX => {
                errs.push(
                    CIDR,
                    Violation::Ipv4CidrTooWide,
                    format!("{net} is wider than the widest supported IPv4 subnet, /{MIN_IPV4_PREFIX}"),
                );
                Subnet::Invalid
            }
            Some(net) => Subnet::Valid(net),
        }
    };
    check_routes(Family::V4, ROUTES, &opts.routes, CIDR, subnet, errs);
    match subnet {
        Subnet::Absent if !pool.start.is_empty() || !pool.end.is_empty() => {
            errs.push(POOL, Violation::PoolWithoutSubnet, "an IPv4 allocation pool needs cidr");
        }
        Subnet::Valid(net) => check_pool_bounds(
            Family::V4,
            &PoolBounds { field: POOL, start: &pool.start, end: &pool.end },
            CIDR,
            net,
            errs,
        ),
        _ => {}
    }
}

/// Rules 3, 4, 11–15 and the danm-rs replacement of rule 16.
fn check_v6(opts: &NetworkOptions, errs: &mut ValidationErrors) {
    let pool = &opts.allocation_pool_v6;
    let subnet = if opts.net6.is_empty() {
        Subnet::Absent
    } else {
        match Family::V6.net(&opts.net6) {
            None => {
                errs.push(NET6, Violation::InvalidIpv6Cidr, format!("{:?} is not an IPv6 CIDR", opts.net6));
                Subnet::Invalid
            }
            Some(net) if net.prefix_len() == 128 => {
                errs.push(NET6, Violation::Ipv6PrefixOutOfRange, format!("{net} is a single address, not a subnet"));
                Subnet::Invalid
            }
            Some(net) => Subnet::Valid(net),
        }
    };
    check_routes(Family::V6, ROUTES6, &opts.routes6, NET6, subnet, errs);
    let pool_given = !pool.cidr.is_empty() || !pool.start.is_empty() || !pool.end.is_empty();
    if matches!(subnet, Subnet::Absent) {
        if pool_given {
            errs.push(POOL6, Violation::PoolWithoutSubnet, "an IPv6 allocation pool needs net6");
        }
        return;
    }
    // The pool CIDR's own rules hold whether or not net6 is valid; bounds need both.
    let pool_net = if pool.cidr.is_empty() {
        match subnet {
            Subnet::Valid(IpNet::V6(net6)) => Some(IpNet::V6(default_v6_pool_cidr(net6))),
            _ => None,
        }
    } else {
        check_v6_pool_cidr(&pool.cidr, subnet, errs)
    };
    if let Some(pool_net) = pool_net {
        let bounds = PoolBounds { field: POOL6, start: &pool.start, end: &pool.end };
        let net_field = if pool.cidr.is_empty() { NET6 } else { POOL6_CIDR };
        check_pool_bounds(Family::V6, &bounds, net_field, pool_net, errs);
    }
}

/// Rules 15 and 16 on a given `allocation_pool_v6.cidr`; the pool CIDR when it passes them.
fn check_v6_pool_cidr(cidr: &str, net6: Subnet, errs: &mut ValidationErrors) -> Option<IpNet> {
    let Some(pool_net) = Family::V6.net(cidr) else {
        errs.push(POOL6_CIDR, Violation::InvalidIpv6PoolCidr, format!("{cidr:?} is not an IPv6 CIDR"));
        return None;
    };
    let prefix = pool_net.prefix_len();
    let mut ok = true;
    if prefix < MIN_IPV6_POOL_PREFIX || prefix == 128 {
        errs.push(
            POOL6_CIDR,
            Violation::Ipv6PrefixOutOfRange,
            format!("{pool_net} must have a prefix length from /{MIN_IPV6_POOL_PREFIX} to /127"),
        );
        ok = false;
    }
    if let Subnet::Valid(net6) = net6
        && !net6.contains(&pool_net)
    {
        errs.push(
            POOL6_CIDR,
            Violation::Ipv6PoolOutsideSubnet,
            format!("{pool_net} does not lie wholly inside net6 {net6}"),
        );
        ok = false;
    }
    ok.then_some(pool_net)
}

/// Rules 2 and 4: routes need the subnet; destinations are CIDRs and gateways addresses inside the subnet.
fn check_routes(
    family: Family,
    routes_field: &str,
    routes: &BTreeMap<String, String>,
    subnet_field: &str,
    subnet: Subnet,
    errs: &mut ValidationErrors,
) {
    if routes.is_empty() {
        return;
    }
    if matches!(subnet, Subnet::Absent) {
        errs.push(
            routes_field,
            Violation::RoutesWithoutSubnet,
            format!("{} routes need {subnet_field}", family.name()),
        );
        return;
    }
    for (dst, gw) in routes {
        let field = format!("{routes_field}[{dst:?}]");
        if family.net(dst).is_none() {
            errs.push(
                &field,
                Violation::InvalidRouteDestination,
                format!("route destination {dst:?} is not an {} CIDR", family.name()),
            );
        }
        match family.addr(gw) {
            None => errs.push(
                &field,
                Violation::InvalidRouteGateway,
                format!("gateway {gw:?} is not an {} address", family.name()),
            ),
            Some(addr) => {
                if let Subnet::Valid(net) = subnet
                    && !net.contains(&addr)
                {
                    errs.push(
                        &field,
                        Violation::RouteGatewayOutsideSubnet,
                        format!("gateway {addr} lies outside {subnet_field} {net}"),
                    );
                }
            }
        }
    }
}

/// The user-given boundaries of one allocation pool.
struct PoolBounds<'a> {
    field: &'a str,
    start: &'a str,
    end: &'a str,
}

/// Rules 8–10 and 12–14: the bounds lie inside `net` and are not its first or last address, and the pool,
/// with a missing start defaulting to the first address + 1 and a missing end to the last address − 1, is
/// not empty.
fn check_pool_bounds(family: Family, pool: &PoolBounds<'_>, net_field: &str, net: IpNet, errs: &mut ValidationErrors) {
    let first = as_u128(net.network());
    let last = as_u128(net.broadcast());
    let mut bound = |which: &str, value: &str| -> Result<Option<u128>, ()> {
        if value.is_empty() {
            return Ok(None);
        }
        let field = format!("{}.{which}", pool.field);
        let Some(addr) = family.addr(value) else {
            errs.push(field, Violation::InvalidPoolAddress, format!("{value:?} is not an {} address", family.name()));
            return Err(());
        };
        if !net.contains(&addr) {
            errs.push(field, Violation::PoolAddressOutsideSubnet, format!("{addr} lies outside {net}"));
            return Err(());
        }
        let n = as_u128(addr);
        if n == first || n == last {
            let what = if n == first { "first" } else { "last" };
            errs.push(
                field,
                Violation::PoolAddressReserved,
                format!("{addr} is the {what} address of {net}, which is reserved"),
            );
            return Err(());
        }
        Ok(Some(n))
    };
    let (Ok(start), Ok(end)) = (bound("start", pool.start), bound("end", pool.end)) else {
        return;
    };
    let eff_start = start.or_else(|| first.checked_add(1)).and_then(|n| family.addr_from(n));
    let eff_end = end.or_else(|| last.checked_sub(1)).and_then(|n| family.addr_from(n));
    let ordered = match (eff_start, eff_end) {
        (Some(s), Some(e)) => as_u128(e) > as_u128(s),
        _ => false,
    };
    if ordered {
        return;
    }
    let field = if end.is_some() {
        format!("{}.end", pool.field)
    } else if start.is_some() {
        format!("{}.start", pool.field)
    } else {
        net_field.to_owned()
    };
    let show = |a: Option<IpAddr>| a.map_or_else(|| "none".to_owned(), |a| a.to_string());
    errs.push(
        field,
        Violation::PoolEndNotAfterStart,
        format!(
            "the allocation pool of {net} is empty: its end {} is not after its start {}",
            show(eff_end),
            show(eff_start)
        ),
    );
}

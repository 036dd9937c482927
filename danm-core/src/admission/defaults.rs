//! The defaults a network gets at admission: its NetworkType and the bounds of its allocation pools.

use crate::ipam::{Family, Pool, default_v6_pool_cidr};
use crate::model::{Network, NetworkOptions};

/// The NetworkType of a network that names none: the built-in IPVLAN backend.
pub const DEFAULT_NETWORK_TYPE: &str = "ipvlan";

/// Fills in what a user expects to see once a network is admitted, as upstream's webhook did:
///
/// - `NetworkType` becomes `ipvlan` when empty;
/// - `allocation_pool.start`/`end` become the first and last address handed out dynamically, when `cidr`
///   is valid and they are not given;
/// - `allocation_pool_v6.cidr`/`start`/`end` likewise, when `net6` is valid.
///
/// Upstream's allocation bitmasks (`alloc`, `alloc6`) are not written: danm-rs keeps allocation state in
/// blocks of its own. Malformed subnets and bounds are left as they are for validation to report.
///
/// On an update, `old` is the stored network: a bound that still holds the default of the old subnet
/// while the subnet changed is recomputed for the new subnet, so that a client that sends back what it
/// read (as `kubectl apply` does for fields it did not set) can change a subnet.
pub fn apply_network_defaults(net: &mut Network, old: Option<&Network>) {
    if net.spec.network_type.is_empty() {
        net.spec.network_type = DEFAULT_NETWORK_TYPE.to_owned();
    }
    let opts = &mut net.spec.options;
    if let Some(old) = old {
        forget_stale_defaults(opts, &old.spec.options);
    }
    if let Ok(Some(pool)) = Pool::from_options(opts, Family::V4) {
        fill(&mut opts.allocation_pool.start, &pool.start().to_string());
        fill(&mut opts.allocation_pool.end, &pool.end().to_string());
    }
    if let Ok(Some(pool)) = Pool::from_options(opts, Family::V6) {
        if let Some(cidr) = default_v6_cidr(opts) {
            fill(&mut opts.allocation_pool_v6.cidr, &cidr);
        }
        fill(&mut opts.allocation_pool_v6.start, &pool.start().to_string());
        fill(&mut opts.allocation_pool_v6.end, &pool.end().to_string());
    }
}

fn fill(field: &mut String, value: &str) {
    if field.is_empty() {
        *field = value.to_owned();
    }
}

fn default_v6_cidr(opts: &NetworkOptions) -> Option<String> {
    match opts.net6.parse::<ipnet::IpNet>() {
        Ok(ipnet::IpNet::V6(net6)) => Some(default_v6_pool_cidr(net6).to_string()),
        _ => None,
    }
}

/// The bounds the defaults would give `opts`: (v4 start, v4 end, v6 cidr, v6 start, v6 end).
fn defaults_of(opts: &NetworkOptions) -> [Option<String>; 5] {
    let mut bare = opts.clone();
    bare.allocation_pool.start.clear();
    bare.allocation_pool.end.clear();
    bare.allocation_pool_v6.start.clear();
    bare.allocation_pool_v6.end.clear();
    let v4 = Pool::from_options(&bare, Family::V4).ok().flatten();
    let v6 = Pool::from_options(&bare, Family::V6).ok().flatten();
    [
        v4.as_ref().map(|p| p.start().to_string()),
        v4.as_ref().map(|p| p.end().to_string()),
        default_v6_cidr(opts),
        v6.as_ref().map(|p| p.start().to_string()),
        v6.as_ref().map(|p| p.end().to_string()),
    ]
}

/// Clears the bounds of `new` that are unchanged defaults of `old`'s subnet when the subnet changed.
fn forget_stale_defaults(new: &mut NetworkOptions, old: &NetworkOptions) {
    let [start4, end4, cidr6, start6, end6] = defaults_of(old);
    let stale = |value: &String, old_value: &String, default: &Option<String>| {
        !value.is_empty() && value == old_value && default.as_ref() == Some(value)
    };
    if new.cidr != old.cidr {
        if stale(&new.allocation_pool.start, &old.allocation_pool.start, &start4) {
            new.allocation_pool.start.clear();
        }
        if stale(&new.allocation_pool.end, &old.allocation_pool.end, &end4) {
            new.allocation_pool.end.clear();
        }
    }
    if new.net6 != old.net6 {
        let pool = &mut new.allocation_pool_v6;
        let old_pool = &old.allocation_pool_v6;
        if stale(&pool.cidr, &old_pool.cidr, &cidr6) {
            pool.cidr.clear();
        }
        if stale(&pool.start, &old_pool.start, &start6) {
            pool.start.clear();
        }
        if stale(&pool.end, &old_pool.end, &end6) {
            pool.end.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NetworkKind, NetworkSpec, ObjectMeta};

    fn net(cidr: &str, net6: &str) -> Network {
        let mut spec = NetworkSpec { network_id: "n".into(), ..NetworkSpec::default() };
        spec.options.cidr = cidr.into();
        spec.options.net6 = net6.into();
        Network::new(NetworkKind::DanmNet, ObjectMeta::new("n", Some("ns")), spec)
    }

    #[test]
    fn type_and_pools_are_filled() {
        let mut n = net("10.0.0.0/24", "fd00::/48");
        apply_network_defaults(&mut n, None);
        let o = &n.spec.options;
        assert_eq!(n.spec.network_type, "ipvlan");
        assert_eq!((o.allocation_pool.start.as_str(), o.allocation_pool.end.as_str()), ("10.0.0.1", "10.0.0.254"));
        assert_eq!(o.allocation_pool_v6.cidr, "fd00::/64");
        assert_eq!(o.allocation_pool_v6.start, "fd00::1");
        assert_eq!(o.allocation_pool_v6.end, "fd00::ffff:ffff:ffff:fffe");
        assert!(o.alloc.is_empty() && o.alloc6.is_empty());
    }

    #[test]
    fn given_values_and_malformed_subnets_stay() {
        let mut n = net("10.0.0.0/24", "");
        n.spec.network_type = "macvlan".into();
        n.spec.options.allocation_pool.start = "10.0.0.10".into();
        apply_network_defaults(&mut n, None);
        assert_eq!(n.spec.network_type, "macvlan");
        assert_eq!(n.spec.options.allocation_pool.start, "10.0.0.10");
        assert_eq!(n.spec.options.allocation_pool.end, "10.0.0.254");
        assert!(n.spec.options.allocation_pool_v6.is_empty());
        let mut bad = net("10.0.0.0/33", "nope");
        apply_network_defaults(&mut bad, None);
        assert!(bad.spec.options.allocation_pool.is_empty() && bad.spec.options.allocation_pool_v6.is_empty());
    }

    #[test]
    fn defaulted_bounds_follow_a_changed_subnet() {
        let mut old = net("10.0.0.0/24", "fd00::/64");
        apply_network_defaults(&mut old, None);
        let mut new = old.clone();
        new.spec.options.cidr = "10.1.0.0/16".into();
        new.spec.options.net6 = "fd01::/64".into();
        apply_network_defaults(&mut new, Some(&old));
        let o = &new.spec.options;
        assert_eq!((o.allocation_pool.start.as_str(), o.allocation_pool.end.as_str()), ("10.1.0.1", "10.1.255.254"));
        assert_eq!(o.allocation_pool_v6.cidr, "fd01::/64");
        // A bound the user chose stays, even when the subnet changes.
        let mut old = net("10.0.0.0/24", "");
        old.spec.options.allocation_pool.start = "10.0.0.5".into();
        apply_network_defaults(&mut old, None);
        let mut new = old.clone();
        new.spec.options.cidr = "10.0.0.0/23".into();
        apply_network_defaults(&mut new, Some(&old));
        assert_eq!(new.spec.options.allocation_pool.start, "10.0.0.5");
        assert_eq!(new.spec.options.allocation_pool.end, "10.0.1.254");
    }
}

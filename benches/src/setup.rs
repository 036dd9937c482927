//! Networks and stores shared by the benchmarks and the report.

use danm_core::model::{Network, NetworkKind, NetworkOptions, NetworkSpec, ObjectMeta};

/// A DanmNet named `bench` with an IPv4 `cidr` (and no pool, so the whole subnet is the pool).
pub fn ipv4_network(cidr: &str) -> Network {
    let options = NetworkOptions { cidr: cidr.into(), ..NetworkOptions::default() };
    network(options)
}

/// A DanmNet named `bench` with an IPv6 `net6`.
pub fn ipv6_network(net6: &str) -> Network {
    let options = NetworkOptions { net6: net6.into(), ..NetworkOptions::default() };
    network(options)
}

/// The same IPv4 network as upstream stores it once its webhook has run: with the `alloc` bitmask.
pub fn upstream_network(cidr: &str) -> Network {
    let mut net = ipv4_network(cidr);
    let prefix = cidr.rsplit_once('/').and_then(|(_, p)| p.parse().ok()).unwrap_or(24);
    net.spec.options.alloc = crate::upstream_ipam::initial_alloc(prefix);
    net
}

fn network(options: NetworkOptions) -> Network {
    let spec = NetworkSpec { network_id: "bench".into(), options, ..NetworkSpec::default() };
    Network::new(NetworkKind::DanmNet, ObjectMeta::new("bench", Some("bench")), spec)
}

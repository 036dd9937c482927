//! Addressing rules 1–16 of network validation.

mod common;

use common::*;
use danm_core::ipam::default_v6_pool_cidr;
use danm_core::validate::Violation::*;

const CIDR: &str = "spec.Options.cidr";
const NET6: &str = "spec.Options.net6";
const POOL: &str = "spec.Options.allocation_pool";
const POOL6: &str = "spec.Options.allocation_pool_v6";

fn v4() -> NetBuilder {
    dn().cidr("10.0.0.0/24")
}

fn v6() -> NetBuilder {
    dn().net6("fd00:1::/64")
}

#[test]
fn rule1_ipv4_cidr() {
    accepts(dn().cidr("10.0.0.0/8").create());
    accepts(dn().cidr("10.0.0.5/24").create());
    accepts(dn().cidr("192.168.1.0/30").create());
    accepts(dn().create());
    rejects(dn().cidr("10.0.0.0/7").create(), CIDR, Ipv4CidrTooWide);
    for bad in ["fd00::/64", "10.0.0.0", "10.0.0.0/33", "bogus", "10.0.0.256/24"] {
        rejects(dn().cidr(bad).create(), CIDR, InvalidIpv4Cidr);
    }
}

#[test]
fn rule2_ipv4_routes() {
    accepts(v4().route("10.20.0.0/16", "10.0.0.1").route("0.0.0.0/0", "10.0.0.254").create());
    let field = "spec.Options.routes[\"10.20.0.0/16\"]";
    rejects(v4().route("10.20.0.0/16", "10.0.1.1").create(), field, RouteGatewayOutsideSubnet);
    rejects(v4().route("10.20.0.0/16", "fd00::1").create(), field, InvalidRouteGateway);
    rejects(v4().route("10.20.0.0/16", "gw").create(), field, InvalidRouteGateway);
    rejects(v4().route("default", "10.0.0.1").create(), "spec.Options.routes[\"default\"]", InvalidRouteDestination);
    rejects(v4().route("fd00::/8", "10.0.0.1").create(), "spec.Options.routes[\"fd00::/8\"]", InvalidRouteDestination);
    rejects(dn().route("10.20.0.0/16", "10.0.0.1").create(), "spec.Options.routes", RoutesWithoutSubnet);
}

#[test]
fn rule3_ipv6_cidr() {
    accepts(dn().net6("fd00:1::/64").create());
    accepts(dn().net6("2001:db8::/32").create());
    for bad in ["10.0.0.0/24", "fd00::/129", "fd00::", "nonsense"] {
        rejects(dn().net6(bad).create(), NET6, InvalidIpv6Cidr);
    }
}

#[test]
fn rule4_ipv6_routes() {
    accepts(v6().route6("fd00:2::/64", "fd00:1::1").create());
    let field = "spec.Options.routes6[\"fd00:2::/64\"]";
    rejects(v6().route6("fd00:2::/64", "fd00:3::1").create(), field, RouteGatewayOutsideSubnet);
    rejects(v6().route6("fd00:2::/64", "10.0.0.1").create(), field, InvalidRouteGateway);
    rejects(
        v6().route6("10.0.0.0/8", "fd00:1::1").create(),
        "spec.Options.routes6[\"10.0.0.0/8\"]",
        InvalidRouteDestination,
    );
    rejects(dn().route6("fd00:2::/64", "fd00:1::1").create(), "spec.Options.routes6", RoutesWithoutSubnet);
}

#[test]
fn rules5_6_allocation_state_only_after_create() {
    type Setter = fn(&mut danm_core::model::NetworkOptions);
    let cases: [(&str, Setter); 4] = [
        ("spec.Options.alloc", |o| o.alloc = "AAAA".into()),
        ("spec.Options.alloc6", |o| o.alloc6 = "AAAA".into()),
        ("spec.Options.allocation_pool.lastIp", |o| o.allocation_pool.last_ip = "10.0.0.7".into()),
        ("spec.Options.allocation_pool_v6.lastIp", |o| o.allocation_pool_v6.last_ip = "fd00:1::7".into()),
    ];
    for (field, set) in cases {
        let net = dn().cidr("10.0.0.0/24").net6("fd00:1::/64").opts(set);
        rejects(net.create(), field, AllocationStateOnCreate);
        accepts(net.update(&net, false));
    }
}

#[test]
fn rule7_ipv4_pool_needs_cidr() {
    accepts(v4().pool("10.0.0.10", "10.0.0.20").create());
    rejects(dn().pool("10.0.0.10", "").create(), POOL, PoolWithoutSubnet);
    rejects(dn().pool("", "10.0.0.20").create(), POOL, PoolWithoutSubnet);
}

#[test]
fn rules8_9_ipv4_pool_bounds_inside_cidr() {
    accepts(v4().pool("10.0.0.1", "10.0.0.254").create());
    accepts(dn().cidr("10.0.0.5/24").pool("10.0.0.1", "10.0.0.9").create());
    let start = "spec.Options.allocation_pool.start";
    let end = "spec.Options.allocation_pool.end";
    rejects(v4().pool("10.0.1.10", "10.0.0.20").create(), start, PoolAddressOutsideSubnet);
    rejects(v4().pool("10.0.0.10", "10.0.1.20").create(), end, PoolAddressOutsideSubnet);
    rejects(v4().pool("fd00::1", "10.0.0.20").create(), start, InvalidPoolAddress);
    rejects(v4().pool("10.0.0.10", "ten").create(), end, InvalidPoolAddress);
    rejects(v4().pool("10.0.0.0", "10.0.0.20").create(), start, PoolAddressReserved);
    rejects(v4().pool("10.0.0.10", "10.0.0.255").create(), end, PoolAddressReserved);
}

#[test]
fn rule10_ipv4_pool_end_after_start() {
    accepts(v4().pool("10.0.0.10", "10.0.0.11").create());
    accepts(v4().pool("10.0.0.253", "").create());
    accepts(dn().cidr("10.0.0.0/30").create());
    rejects(v4().pool("10.0.0.20", "10.0.0.10").create(), "spec.Options.allocation_pool.end", PoolEndNotAfterStart);
    rejects(v4().pool("10.0.0.10", "10.0.0.10").create(), "spec.Options.allocation_pool.end", PoolEndNotAfterStart);
    // The default end is the last address − 1.
    rejects(v4().pool("10.0.0.254", "").create(), "spec.Options.allocation_pool.start", PoolEndNotAfterStart);
    // A /31 or /32 leaves no room for the default pool.
    rejects(dn().cidr("10.0.0.0/31").create(), CIDR, PoolEndNotAfterStart);
    rejects(dn().cidr("10.0.0.7/32").create(), CIDR, PoolEndNotAfterStart);
}

#[test]
fn rule11_ipv6_pool_needs_net6() {
    accepts(v6().pool6("fd00:1::/80", "", "").create());
    rejects(dn().pool6("fd00:1::/80", "", "").create(), POOL6, PoolWithoutSubnet);
    rejects(dn().pool6("", "fd00:1::5", "").create(), POOL6, PoolWithoutSubnet);
}

#[test]
fn rules12_13_ipv6_pool_bounds_inside_pool_cidr() {
    accepts(v6().pool6("fd00:1::/120", "fd00:1::1", "fd00:1::fe").create());
    let start = "spec.Options.allocation_pool_v6.start";
    let end = "spec.Options.allocation_pool_v6.end";
    rejects(v6().pool6("fd00:1::/120", "fd00:1::1:1", "").create(), start, PoolAddressOutsideSubnet);
    rejects(v6().pool6("fd00:1::/120", "", "fd00:1::1:1").create(), end, PoolAddressOutsideSubnet);
    rejects(v6().pool6("fd00:1::/120", "10.0.0.1", "").create(), start, InvalidPoolAddress);
    rejects(v6().pool6("fd00:1::/120", "fd00:1::", "").create(), start, PoolAddressReserved);
    rejects(v6().pool6("fd00:1::/120", "", "fd00:1::ff").create(), end, PoolAddressReserved);
    // Without a pool CIDR the bounds belong to the default pool, the first /64 of net6.
    accepts(dn().net6("fd00:1::/48").pool6("", "fd00:1::10", "fd00:1::20").create());
    rejects(dn().net6("fd00:1::/48").pool6("", "fd00:1:0:1::10", "").create(), start, PoolAddressOutsideSubnet);
}

#[test]
fn rule14_ipv6_pool_end_after_start() {
    accepts(v6().pool6("", "fd00:1::10", "fd00:1::11").create());
    let end = "spec.Options.allocation_pool_v6.end";
    rejects(v6().pool6("", "fd00:1::20", "fd00:1::10").create(), end, PoolEndNotAfterStart);
    rejects(
        v6().pool6("fd00:1::/120", "fd00:1::fe", "").create(),
        "spec.Options.allocation_pool_v6.start",
        PoolEndNotAfterStart,
    );
    rejects(dn().net6("fd00:1::/127").create(), NET6, PoolEndNotAfterStart);
    rejects(v6().pool6("fd00:1::/127", "", "").create(), "spec.Options.allocation_pool_v6.cidr", PoolEndNotAfterStart);
}

#[test]
fn rule15_ipv6_pool_cidr_inside_net6() {
    accepts(v6().pool6("fd00:1::1:0/112", "", "").create());
    accepts(v6().pool6("fd00:1::/64", "", "").create());
    let field = "spec.Options.allocation_pool_v6.cidr";
    rejects(v6().pool6("fd00:2::/80", "", "").create(), field, Ipv6PoolOutsideSubnet);
    rejects(v6().pool6("nope", "", "").create(), field, InvalidIpv6PoolCidr);
    rejects(v6().pool6("10.0.0.0/24", "", "").create(), field, InvalidIpv6PoolCidr);
}

#[test]
fn rule16_ipv6_prefix_limits() {
    // No combined size cap: a /8 IPv4 subnet and a /64 IPv6 pool together are fine.
    accepts(dn().cidr("10.0.0.0/8").net6("fd00:1::/64").pool6("fd00:1::/64", "", "").create());
    accepts(dn().net6("fd00:1::/120").create());
    let field = "spec.Options.allocation_pool_v6.cidr";
    rejects(dn().net6("fd00::/48").pool6("fd00::/56", "", "").create(), field, Ipv6PrefixOutOfRange);
    rejects(v6().pool6("fd00:1::5/128", "", "").create(), field, Ipv6PrefixOutOfRange);
    rejects(dn().net6("fd00:1::5/128").create(), NET6, Ipv6PrefixOutOfRange);
}

#[test]
fn default_v6_pool() {
    let p = |s: &str| s.parse().unwrap();
    assert_eq!(default_v6_pool_cidr(p("fd00:1::/48")), p("fd00:1::/64"));
    assert_eq!(default_v6_pool_cidr(p("fd00:1::/64")), p("fd00:1::/64"));
    assert_eq!(default_v6_pool_cidr(p("fd00:1::77/120")), p("fd00:1::/120"));
}

#[test]
fn upstream_dual_stack_manifest_validates() {
    let yaml = r#"
apiVersion: danm.k8s.io/v1
kind: ClusterNetwork
metadata:
  name: external
spec:
  NetworkID: external
  NetworkType: ipvlan
  AllowedTenants: [tenant-a, tenant-b]
  Options:
    host_device: ens3
    container_prefix: ext
    cidr: 10.100.0.0/16
    allocation_pool:
      start: 10.100.1.1
      end: 10.100.1.200
    routes:
      10.200.0.0/16: 10.100.0.1
    net6: 2001:db8:100::/56
    routes6:
      2001:db8:200::/64: 2001:db8:100::1
    rt_tables: 10
    vlan: 500
"#;
    let net: danm_core::model::Network = serde_yaml::from_str(yaml).unwrap();
    accepts(danm_core::validate::validate_network(&net, &danm_core::validate::Operation::Create));
}

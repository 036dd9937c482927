//! The IPAM driver against the in-memory store: allocation rules, freeing, and what is persisted.

use std::net::IpAddr;
use std::sync::Arc;

use danm_core::ipam::{AddressRequest, AllocatorId, Assignment, Family, IpRequest, Ipam, IpamError, OwnerId, PoolKey};
use danm_core::model::{Network, NetworkKind, NetworkOptions, NetworkSpec, ObjectMeta};
use danm_core::store::{Datastore, MemoryStore, Metered, Object, Query};
use futures::executor::block_on;

fn network(options: NetworkOptions) -> Network {
    let spec = NetworkSpec { network_id: "net".into(), options, ..NetworkSpec::default() };
    Network::new(NetworkKind::DanmNet, ObjectMeta::new("net", Some("ns")), spec)
}

fn v4(cidr: &str) -> Network {
    network(NetworkOptions { cidr: cidr.into(), ..NetworkOptions::default() })
}

fn ipam() -> Ipam<Arc<MemoryStore>> {
    Ipam::new(Arc::new(MemoryStore::new()), AllocatorId::new("node-a"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn dynamic(ipam: &Ipam<impl Datastore>, net: &Network, family: Family, owner: u64) -> Result<IpAddr, IpamError> {
    let a = block_on(ipam.assign(net, family, IpRequest::Dynamic, OwnerId(owner)))?;
    Ok(a.address().unwrap().addr())
}

#[test]
fn dynamic_allocation_is_next_fit_from_the_first_host_address() {
    let ipam = ipam();
    let net = v4("10.0.0.0/24");
    let got: Vec<_> = (0..3).map(|i| dynamic(&ipam, &net, Family::V4, i).unwrap()).collect();
    assert_eq!(got, [ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.3")]);
    // Freeing .1 does not make it the next address: next-fit goes on from the last one handed out.
    block_on(ipam.free(&net, ip("10.0.0.1"), OwnerId(0))).unwrap();
    assert_eq!(dynamic(&ipam, &net, Family::V4, 9).unwrap(), ip("10.0.0.4"));
    let a = block_on(ipam.assign(&net, Family::V4, IpRequest::Dynamic, OwnerId(10))).unwrap();
    assert_eq!(a, Assignment::Address { address: "10.0.0.5/24".parse().unwrap(), dynamic: true });
}

#[test]
fn a_fresh_driver_of_the_same_allocator_resumes_from_its_cursor() {
    let store = Arc::new(MemoryStore::new());
    let net = v4("10.1.0.0/16");
    let first = Ipam::new(store.clone(), AllocatorId::new("node-a"));
    for i in 0..70 {
        dynamic(&first, &net, Family::V4, i).unwrap();
    }
    // 70 addresses fill block 0 (offsets 1..=63) and go into block 1; a new process continues there.
    let second = Metered::new(store.clone());
    let again = Ipam::new(&second, AllocatorId::new("node-a"));
    assert_eq!(dynamic(&again, &net, Family::V4, 100).unwrap(), ip("10.1.0.71"));
    assert_eq!(second.stats().lists, 0, "no scan needed");
}

#[test]
fn the_pool_range_gateways_and_reserved_addresses_are_respected() {
    let ipam = ipam();
    let mut o = NetworkOptions { cidr: "192.168.1.0/24".into(), ..NetworkOptions::default() };
    o.allocation_pool.start = "192.168.1.10".into();
    o.allocation_pool.end = "192.168.1.14".into();
    o.routes.insert("10.20.0.0/16".into(), "192.168.1.12".into());
    let net = network(o);
    let mut got: Vec<_> = (0..4).map(|i| dynamic(&ipam, &net, Family::V4, i).unwrap()).collect();
    got.sort();
    assert_eq!(got, [ip("192.168.1.10"), ip("192.168.1.11"), ip("192.168.1.13"), ip("192.168.1.14")]);
    assert!(matches!(dynamic(&ipam, &net, Family::V4, 9), Err(IpamError::Exhausted { family: Family::V4, .. })));
    // Static: the gateway may be claimed by a router pod; outside the pool is fine; reserved is not.
    for (addr, ok) in
        [("192.168.1.12", true), ("192.168.1.200", true), ("192.168.1.0", false), ("192.168.1.255", false)]
    {
        let r = block_on(ipam.assign(&net, Family::V4, IpRequest::Static(ip(addr)), OwnerId(50)));
        assert_eq!(r.is_ok(), ok, "{addr}: {r:?}");
        if !ok {
            assert!(matches!(r, Err(IpamError::Reserved { request: "ip", .. })));
        }
    }
    let usage = block_on(ipam.usage(&net)).unwrap();
    assert_eq!((usage[0].capacity, usage[0].allocated, usage[0].allocated_in_pool, usage[0].free()), (4, 6, 4, 0));
    // Every address with its holder, in address order: the gateway and .200 are static, outside the range.
    let listed: Vec<(String, u64, bool)> = block_on(ipam.allocations(&net))
        .unwrap()
        .iter()
        .map(|a| (a.address.to_string(), a.owner.0, a.in_pool))
        .collect();
    let want = [(10, true), (11, true), (12, false), (13, true), (14, true), (200, false)];
    let owners: Vec<u64> = listed.iter().map(|(_, o, _)| *o).collect();
    assert_eq!(
        listed.iter().map(|(a, _, p)| (a.clone(), *p)).collect::<Vec<_>>(),
        want.map(|(host, p)| (format!("192.168.1.{host}/24"), p))
    );
    assert_eq!(owners.iter().filter(|o| **o == 50).count(), 2, "the two static claims: {owners:?}");
}

#[test]
fn static_requests_are_checked_and_idempotent_per_owner() {
    let ipam = ipam();
    let net = v4("10.0.0.0/24");
    let req = |a: &str, o: u64| block_on(ipam.assign(&net, Family::V4, IpRequest::Static(ip(a)), OwnerId(o)));
    assert!(req("10.0.0.7", 1).is_ok());
    assert!(req("10.0.0.7", 1).is_ok(), "the same holder asking again gets it again");
    assert!(matches!(req("10.0.0.7", 2), Err(IpamError::InUse { request: "ip", .. })));
    assert!(matches!(req("10.0.1.7", 2), Err(IpamError::OutsideSubnet { .. })));
    let wrong = block_on(ipam.assign(&net, Family::V4, IpRequest::Static(ip("fd00::1")), OwnerId(1)));
    assert!(matches!(wrong, Err(IpamError::WrongFamily { request: "ip", .. })));
    // Freeing needs the holder.
    assert!(matches!(block_on(ipam.free(&net, ip("10.0.0.7"), OwnerId(2))), Err(IpamError::HeldByOther { .. })));
    block_on(ipam.free(&net, ip("10.0.0.7"), OwnerId(1))).unwrap();
    block_on(ipam.free(&net, ip("10.0.0.7"), OwnerId(1))).unwrap();
    assert!(req("10.0.0.7", 2).is_ok());
}

#[test]
fn none_and_missing_subnets() {
    let ipam = ipam();
    let l2 = network(NetworkOptions::default());
    assert_eq!(block_on(ipam.assign(&l2, Family::V4, IpRequest::None, OwnerId(1))).unwrap(), Assignment::None);
    let err = block_on(ipam.assign(&l2, Family::V6, IpRequest::Dynamic, OwnerId(1))).unwrap_err();
    assert!(matches!(err, IpamError::NoSubnet { request: "ip6", field: "spec.Options.net6", .. }));
    assert!(err.to_string().contains("spec.Options.net6"), "{err}");
}

#[test]
fn dual_stack_failure_leaves_nothing_allocated() {
    let store = Arc::new(MemoryStore::new());
    let ipam = Ipam::new(store.clone(), AllocatorId::new("n"));
    let net =
        network(NetworkOptions { cidr: "10.0.0.0/24".into(), net6: "fd00::/120".into(), ..NetworkOptions::default() });
    let ok = AddressRequest { ip: Some(IpRequest::Dynamic), ip6: Some(IpRequest::Dynamic) };
    let a = block_on(ipam.allocate(&net, &ok, OwnerId(1))).unwrap();
    assert_eq!(a.addresses().map(|n| n.to_string()).collect::<Vec<_>>(), ["10.0.0.1/24", "fd00::1/120"]);
    block_on(ipam.assign(&net, Family::V6, IpRequest::Static(ip("fd00::9")), OwnerId(2))).unwrap();
    let clash = AddressRequest { ip: Some(IpRequest::Dynamic), ip6: Some(IpRequest::Static(ip("fd00::9"))) };
    assert!(matches!(block_on(ipam.allocate(&net, &clash, OwnerId(3))), Err(IpamError::InUse { request: "ip6", .. })));
    let usage = block_on(ipam.usage(&net)).unwrap();
    assert_eq!(usage.iter().map(|u| u.allocated).collect::<Vec<_>>(), [1, 2], "the IPv4 address was given back");
    block_on(ipam.release(&net, &a, OwnerId(1))).unwrap();
    assert_eq!(block_on(ipam.free_owner(&net, OwnerId(2))).unwrap(), [ip("fd00::9")]);
    assert!(block_on(store.list(&Query::Blocks(PoolKey::new(net.key(), Family::V4)))).unwrap().is_empty());
    assert!(store.is_empty(), "empty blocks are deleted, and the cursor never left block 0");
}

#[test]
fn ipv6_pools_default_to_net6_or_its_first_64() {
    let ipam = ipam();
    let narrow = network(NetworkOptions { net6: "fd00:1::/112".into(), ..NetworkOptions::default() });
    assert_eq!(dynamic(&ipam, &narrow, Family::V6, 1).unwrap(), ip("fd00:1::1"));
    let wide = network(NetworkOptions { net6: "fd00:2::/48".into(), ..NetworkOptions::default() });
    let u = block_on(ipam.usage(&wide)).unwrap();
    assert_eq!((u[0].start, u[0].end), (ip("fd00:2::1"), ip("fd00:2::ffff:ffff:ffff:fffe")));
    let mut o = NetworkOptions { net6: "fd00:3::/64".into(), ..NetworkOptions::default() };
    o.allocation_pool_v6.cidr = "fd00:3::ab00/120".into();
    let sub = network(o);
    assert_eq!(dynamic(&ipam, &sub, Family::V6, 1).unwrap(), ip("fd00:3::ab01"));
    // Addresses of net6 outside the pool CIDR are tracked too: a static duplicate is refused.
    let claim = |o| block_on(ipam.assign(&sub, Family::V6, IpRequest::Static(ip("fd00:3::5")), OwnerId(o)));
    assert!(claim(7).is_ok());
    assert!(matches!(claim(8), Err(IpamError::InUse { .. })));
}

#[test]
fn an_allocation_in_a_huge_pool_touches_one_small_record() {
    for (net, family) in [
        (v4("10.0.0.0/8"), Family::V4),
        (network(NetworkOptions { net6: "fd00::/64".into(), ..NetworkOptions::default() }), Family::V6),
    ] {
        let store = Metered::new(MemoryStore::new());
        let ipam = Ipam::new(&store, AllocatorId::new("n"));
        for i in 0..1000 {
            dynamic(&ipam, &net, family, i).unwrap();
        }
        let s = store.stats();
        assert_eq!(s.lists, 0);
        // One block write per address, plus one cursor write per 64 addresses.
        assert!(s.writes <= 1000 + 1000 / 64 + 1, "{s:?}");
        assert!(s.bytes_written / 1000 < 1800, "{s:?}");
        let listed = block_on(store.inner().list(&Query::Blocks(PoolKey::new(net.key(), family)))).unwrap();
        let held: usize = listed
            .iter()
            .map(|v| match &v.value {
                Object::Block { block, .. } => block.len(),
                _ => 0,
            })
            .sum();
        assert_eq!(held, 1000);
    }
}

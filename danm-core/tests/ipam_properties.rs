//! Property tests of IPAM: random sequences of dynamic, static, `none` and free requests over random IPv4
//! and IPv6 pools (IPv4 /8 and IPv6 /64 included), checked against a model of who holds what.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use danm_core::ipam::{AllocatorId, Assignment, Family, IpRequest, Ipam, IpamError, OwnerId, Pool, PoolKey};
use danm_core::model::{Network, NetworkKind, NetworkOptions, NetworkSpec, ObjectMeta};
use danm_core::store::{Datastore, MemoryStore, Object, Query};
use futures::executor::block_on;
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct PoolSpec {
    options: NetworkOptions,
    family: Family,
}

fn v4_pool() -> impl Strategy<Value = PoolSpec> {
    (
        prop::sample::select(vec![8u8, 16, 22, 24, 26, 28, 29, 30]),
        any::<u32>(),
        any::<Option<(u16, u16)>>(),
        prop::collection::vec(any::<u16>(), 0..3),
    )
        .prop_map(|(prefix, base, range, gws)| {
            let net = ipnet::Ipv4Net::new(Ipv4Addr::from(base), prefix).unwrap().trunc();
            let size = 1u64 << (32 - prefix);
            let at = |n: u64| Ipv4Addr::from(u32::from(net.network()) + (n % size) as u32).to_string();
            let mut options = NetworkOptions { cidr: net.to_string(), ..NetworkOptions::default() };
            if let Some((a, b)) = range {
                let (lo, hi) = (1 + u64::from(a.min(b)) % (size - 2), 1 + u64::from(a.max(b)) % (size - 2));
                let (lo, hi) = (lo.min(hi), lo.max(hi));
                if lo < hi {
                    options.allocation_pool.start = at(lo);
                    options.allocation_pool.end = at(hi);
                }
            }
            for (i, g) in gws.iter().enumerate() {
                options.routes.insert(format!("10.{i}.0.0/16"), at(u64::from(*g)));
            }
            PoolSpec { options, family: Family::V4 }
        })
}

fn v6_pool() -> impl Strategy<Value = PoolSpec> {
    (
        prop::sample::select(vec![64u8, 96, 112, 120, 124, 126]),
        any::<u64>(),
        any::<bool>(),
        prop::collection::vec(any::<u16>(), 0..3),
    )
        .prop_map(|(prefix, hi, sub_pool, gws)| {
            let base = Ipv6Addr::from((0xfd00_u128 << 112) | (u128::from(hi) << 64));
            let net = ipnet::Ipv6Net::new(base, prefix).unwrap().trunc();
            let size = 1u128 << (128 - prefix);
            let at = |n: u128| Ipv6Addr::from(u128::from(net.network()) + n % size).to_string();
            let mut options = NetworkOptions { net6: net.to_string(), ..NetworkOptions::default() };
            if sub_pool && prefix <= 120 {
                options.allocation_pool_v6.cidr = format!("{}/{}", at(size / 2), prefix + 4);
            }
            for (i, g) in gws.iter().enumerate() {
                options.routes6.insert(format!("fd0{i}::/64"), at(u128::from(*g)));
            }
            PoolSpec { options, family: Family::V6 }
        })
}

#[derive(Debug, Clone)]
enum Target {
    PoolStart,
    PoolEnd,
    Held(usize),
    Anywhere(u64),
}

#[derive(Debug, Clone)]
enum Op {
    Dynamic(u8),
    Static(Target, i8, u8),
    None(u8),
    Free(usize),
    FreeAsOther(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let target = prop_oneof![
        Just(Target::PoolStart),
        Just(Target::PoolEnd),
        any::<usize>().prop_map(Target::Held),
        any::<u64>().prop_map(Target::Anywhere),
    ];
    prop_oneof![
        4 => (0u8..6).prop_map(Op::Dynamic),
        2 => (target, -2i8..3, 0u8..6).prop_map(|(t, d, o)| Op::Static(t, d, o)),
        1 => (0u8..6).prop_map(Op::None),
        2 => any::<usize>().prop_map(Op::Free),
        1 => any::<usize>().prop_map(Op::FreeAsOther),
    ]
}

fn offset_of(pool: &Pool, target: &Target, delta: i8, held: &BTreeMap<u128, OwnerId>) -> u128 {
    let start = pool.offset(pool.start()).unwrap();
    let end = pool.offset(pool.end()).unwrap();
    let base = match target {
        Target::PoolStart => start,
        Target::PoolEnd => end,
        Target::Held(i) if !held.is_empty() => *held.keys().nth(i % held.len()).unwrap(),
        Target::Held(_) => start,
        Target::Anywhere(n) => u128::from(*n) % pool.last().saturating_add(1).max(1),
    };
    // The subnet's first and last addresses and one beyond are reachable through `delta`.
    base.saturating_add_signed(i128::from(delta)).min(pool.last() + 1)
}

fn run(spec: PoolSpec, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let spec_net = NetworkSpec { network_id: "n".into(), options: spec.options, ..NetworkSpec::default() };
    let network = Network::new(NetworkKind::ClusterNetwork, ObjectMeta::new("n", None), spec_net);
    let family = spec.family;
    let pool = Pool::from_options(&network.spec.options, family).unwrap().unwrap();
    let store = MemoryStore::new();
    let ipam = Ipam::new(&store, AllocatorId::new("node"));
    let mut held: BTreeMap<u128, OwnerId> = BTreeMap::new();
    let request_of = |offset: u128| {
        if offset > pool.last() {
            // One past the subnet: the first address of the next one.
            let a = pool.addr(pool.last());
            match a {
                IpAddr::V4(v) => IpAddr::V4(Ipv4Addr::from(u32::from(v).wrapping_add(1))),
                IpAddr::V6(v) => IpAddr::V6(Ipv6Addr::from(u128::from(v).wrapping_add(1))),
            }
        } else {
            pool.addr(offset)
        }
    };

    for op in ops {
        match op {
            Op::Dynamic(o) => {
                match block_on(ipam.assign(&network, family, IpRequest::Dynamic, OwnerId(u64::from(o)))) {
                    Ok(Assignment::Address { address, dynamic: true }) => {
                        prop_assert_eq!(address.prefix_len(), pool.subnet().prefix_len());
                        let off = pool.offset(address.addr()).unwrap();
                        prop_assert!(pool.is_dynamic(off), "{} is not a dynamic address of {:?}", address, pool);
                        prop_assert!(!held.contains_key(&off), "duplicate {}", address);
                        held.insert(off, OwnerId(u64::from(o)));
                    }
                    Err(IpamError::Exhausted { .. }) => {
                        let in_pool = held.keys().filter(|off| pool.is_dynamic(**off)).count() as u128;
                        prop_assert_eq!(in_pool, pool.capacity(), "exhausted while addresses were free");
                    }
                    other => prop_assert!(false, "unexpected {:?}", other),
                }
            }
            Op::Static(target, delta, o) => {
                let off = offset_of(&pool, &target, delta, &held);
                let addr = request_of(off);
                let owner = OwnerId(u64::from(o));
                match block_on(ipam.assign(&network, family, IpRequest::Static(addr), owner)) {
                    Ok(a) => {
                        prop_assert_eq!(a.address().map(|n| n.addr()), Some(addr));
                        prop_assert!(off <= pool.last() && !pool.is_reserved(off));
                        prop_assert!(held.get(&off).is_none_or(|h| *h == owner), "{} taken from its holder", addr);
                        held.insert(off, owner);
                    }
                    Err(IpamError::InUse { .. }) => prop_assert!(held.get(&off).is_some_and(|h| *h != owner)),
                    Err(IpamError::Reserved { .. }) => prop_assert!(pool.is_reserved(off)),
                    Err(IpamError::OutsideSubnet { .. }) => prop_assert!(off > pool.last()),
                    Err(e) => prop_assert!(false, "unexpected {}", e),
                }
            }
            Op::None(o) => {
                let a = block_on(ipam.assign(&network, family, IpRequest::None, OwnerId(u64::from(o))));
                prop_assert_eq!(a.ok(), Some(Assignment::None));
            }
            Op::Free(i) if !held.is_empty() => {
                let (off, owner) = held.iter().nth(i % held.len()).map(|(k, v)| (*k, *v)).unwrap();
                block_on(ipam.free(&network, pool.addr(off), owner)).map_err(|e| TestCaseError::fail(e.to_string()))?;
                held.remove(&off);
                // Free restores capacity: the address can be taken again at once.
                let again = block_on(ipam.assign(&network, family, IpRequest::Static(pool.addr(off)), OwnerId(99)));
                prop_assert!(again.is_ok(), "{:?}", again);
                block_on(ipam.free(&network, pool.addr(off), OwnerId(99))).unwrap();
            }
            Op::FreeAsOther(i) if !held.is_empty() => {
                let (off, owner) = held.iter().nth(i % held.len()).map(|(k, v)| (*k, *v)).unwrap();
                let r = block_on(ipam.free(&network, pool.addr(off), OwnerId(owner.0 + 1000)));
                prop_assert!(matches!(r, Err(IpamError::HeldByOther { .. })), "{:?}", r);
            }
            Op::Free(_) | Op::FreeAsOther(_) => {}
        }
        let usage = block_on(ipam.usage(&network)).unwrap();
        let u = usage.iter().find(|u| u.family == family).unwrap();
        prop_assert_eq!(u.allocated, held.len() as u128);
        prop_assert_eq!(u.allocated_in_pool, held.keys().filter(|o| pool.is_dynamic(**o)).count() as u128);
    }

    // The persisted state holds exactly the model, and every record round-trips through its JSON.
    let listed = block_on(store.list(&Query::Blocks(PoolKey::new(network.key(), family)))).unwrap();
    let mut persisted = BTreeMap::new();
    for v in listed {
        let key = v.value.key();
        let json = v.value.to_json().unwrap();
        prop_assert_eq!(&Object::from_json(&key, &json).unwrap(), &v.value);
        let Object::Block { key, block } = v.value else { unreachable!() };
        prop_assert!(!block.is_empty(), "an empty block was left behind");
        for (slot, owner) in block.slots() {
            persisted.insert(key.index * 64 + u128::from(slot), owner);
        }
    }
    prop_assert_eq!(persisted, held);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_never_duplicate_or_lose_an_address(
        spec in prop_oneof![v4_pool(), v6_pool()],
        ops in prop::collection::vec(op(), 1..48),
    ) {
        run(spec, ops)?;
    }
}

//! Sixteen allocators (one thread and one driver each, as sixteen nodes would be) allocating 10,000
//! addresses from one network through one in-memory store, racing for real: every one of them starts at
//! the same block, and a round-trip delay keeps reads and writes interleaved.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use danm_core::ipam::{AllocatorId, Family, IpRequest, Ipam, IpamStats, OwnerId, Pool, PoolKey};
use danm_core::model::{Network, NetworkKind, NetworkOptions, NetworkSpec, ObjectMeta};
use danm_core::retry::ThreadSleeper;
use danm_core::store::{Datastore, Latency, MemoryStore, Object, Query};
use futures::executor::block_on;

const THREADS: usize = 16;
const TOTAL: usize = 10_000;

type Store = Arc<Latency<Arc<MemoryStore>>>;

fn persisted(store: &MemoryStore, net: &Network) -> BTreeMap<IpAddr, OwnerId> {
    let pool = Pool::from_options(&net.spec.options, Family::V4).unwrap().unwrap();
    let listed = block_on(store.list(&Query::Blocks(PoolKey::new(net.key(), Family::V4)))).unwrap();
    let mut out = BTreeMap::new();
    for v in listed {
        let Object::Block { key, block } = v.value else { panic!("not a block") };
        for (slot, owner) in block.slots() {
            out.insert(pool.addr(key.index * 64 + u128::from(slot)), owner);
        }
    }
    out
}

/// Runs `work` on every allocator thread at once and returns what each produced with its driver's stats.
fn race<T: Send + 'static>(
    store: &Store,
    net: &Arc<Network>,
    work: impl Fn(usize, &Ipam<Store>, &Network) -> T + Send + Sync + 'static,
) -> Vec<(T, IpamStats)> {
    let barrier = Arc::new(Barrier::new(THREADS));
    let work = Arc::new(work);
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (store, net, barrier, work) = (store.clone(), net.clone(), barrier.clone(), work.clone());
            std::thread::spawn(move || {
                let ipam =
                    Ipam::new(store, AllocatorId::new(format!("node-{t}"))).with_sleeper(Arc::new(ThreadSleeper));
                barrier.wait();
                let out = work(t, &ipam, &net);
                (out, ipam.stats())
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().expect("allocator thread panicked")).collect()
}

fn report(phase: &str, results: &[IpamStats]) -> u64 {
    let conflicts: u64 = results.iter().map(|s| s.conflicts).sum();
    let scans: u64 = results.iter().map(|s| s.pool_scans).sum();
    let worst = results.iter().map(|s| s.conflicts).max().unwrap_or_default();
    let hits: u64 = results.iter().map(|s| s.cache_hits).sum();
    let misses: u64 = results.iter().map(|s| s.cache_misses).sum();
    println!(
        "{phase}: {conflicts} conflicts retried ({worst} at most by one allocator), {scans} pool scans, \
         {hits} writes without a read, {misses} of them refused as stale"
    );
    conflicts
}

#[test]
fn sixteen_allocators_never_duplicate_or_lose_an_address() {
    let memory = Arc::new(MemoryStore::new());
    let store: Store = Arc::new(Latency::new(memory.clone(), Duration::from_micros(50), Arc::new(ThreadSleeper)));
    let options = NetworkOptions { cidr: "10.20.0.0/16".into(), ..NetworkOptions::default() };
    let spec = NetworkSpec { network_id: "race".into(), options, ..NetworkSpec::default() };
    let net = Arc::new(Network::new(NetworkKind::DanmNet, ObjectMeta::new("race", Some("ns")), spec));

    // Phase 1: 10,000 dynamic allocations, 625 per allocator.
    let results = race(&store, &net, |t, ipam, net| {
        (0..TOTAL / THREADS)
            .map(|i| {
                let owner = OwnerId((t * TOTAL + i) as u64);
                let a = block_on(ipam.assign(net, Family::V4, IpRequest::Dynamic, owner)).expect("allocation failed");
                (a.address().unwrap().addr(), owner)
            })
            .collect::<Vec<_>>()
    });
    let stats: Vec<_> = results.iter().map(|(_, s)| *s).collect();
    let conflicts = report("allocate 10,000", &stats);
    let handed: Vec<(IpAddr, OwnerId)> = results.into_iter().flat_map(|(v, _)| v).collect();
    let distinct: HashSet<_> = handed.iter().map(|(a, _)| *a).collect();
    assert_eq!(handed.len(), TOTAL);
    assert_eq!(distinct.len(), TOTAL, "an address was handed out twice");
    let stored = persisted(&memory, &net);
    assert_eq!(stored, handed.iter().copied().collect::<BTreeMap<_, _>>(), "stored state differs: lost or extra");
    assert!(conflicts > 0, "the allocators never raced: the test proves nothing");

    // Phase 2: every allocator frees half of what it holds while allocating as many again.
    let per_thread: Vec<Vec<(IpAddr, OwnerId)>> = handed.chunks(TOTAL / THREADS).map(<[_]>::to_vec).collect();
    let per_thread = Arc::new(per_thread);
    let held = per_thread.clone();
    let results = race(&store, &net, move |t, ipam, net| {
        let mut mine = Vec::new();
        for (i, (addr, owner)) in held[t].iter().enumerate() {
            if i % 2 == 0 {
                block_on(ipam.free(net, *addr, *owner)).expect("free failed");
                let owner = OwnerId((1_000_000 + t * TOTAL + i) as u64);
                let a = block_on(ipam.assign(net, Family::V4, IpRequest::Dynamic, owner)).expect("allocation failed");
                mine.push((a.address().unwrap().addr(), owner));
            } else {
                mine.push((*addr, *owner));
            }
        }
        mine
    });
    let stats: Vec<_> = results.iter().map(|(_, s)| *s).collect();
    report("free 5,000 while allocating 5,000", &stats);
    let now: Vec<(IpAddr, OwnerId)> = results.into_iter().flat_map(|(v, _)| v).collect();
    let distinct: HashSet<_> = now.iter().map(|(a, _)| *a).collect();
    assert_eq!(distinct.len(), TOTAL, "an address was handed out twice");
    assert_eq!(persisted(&memory, &net), now.into_iter().collect::<BTreeMap<_, _>>());
}

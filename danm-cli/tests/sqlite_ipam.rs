//! Eight allocators, each a thread with its own connection to one SQLite file (as eight `danm`
//! processes would be), allocating 2,000 addresses from one /16: none handed out twice, and the blocks
//! in the file record exactly what was handed out.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Barrier};

use danm_cli::store::SqliteStore;
use danm_core::ipam::{AllocatorId, BLOCK_SIZE, Family, IpRequest, Ipam, OwnerId, Pool, PoolKey};
use danm_core::model::{Network, NetworkKind, NetworkOptions, NetworkSpec, ObjectMeta};
use danm_core::retry::ThreadSleeper;
use danm_core::store::{Datastore, Object, Query};
use futures::executor::block_on;

const THREADS: usize = 8;
const TOTAL: usize = 2_000;

fn network() -> Network {
    let options = NetworkOptions { cidr: "10.30.0.0/16".into(), ..NetworkOptions::default() };
    let spec = NetworkSpec { network_id: "race".into(), options, ..NetworkSpec::default() };
    Network::new(NetworkKind::DanmNet, ObjectMeta::new("race", Some("ns")), spec)
}

fn persisted(path: &Path, net: &Network) -> BTreeMap<IpAddr, OwnerId> {
    let store = SqliteStore::open(path).unwrap();
    let pool = Pool::from_options(&net.spec.options, Family::V4).unwrap().unwrap();
    let listed = block_on(store.list(&Query::Blocks(PoolKey::new(net.key(), Family::V4)))).unwrap();
    let mut out = BTreeMap::new();
    for v in listed {
        let Object::Block { key, block } = v.value else { panic!("not a block") };
        for (slot, owner) in block.slots() {
            assert!(out.insert(pool.addr(key.index * u128::from(BLOCK_SIZE) + u128::from(slot)), owner).is_none());
        }
    }
    out
}

#[test]
fn eight_connections_allocate_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ipam.db");
    let net = Arc::new(network());
    let barrier = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (path, net, barrier) = (path.clone(), net.clone(), barrier.clone());
            std::thread::spawn(move || {
                let store = SqliteStore::open(&path).unwrap();
                let ipam =
                    Ipam::new(store, AllocatorId::new(format!("node-{t}"))).with_sleeper(Arc::new(ThreadSleeper));
                barrier.wait();
                let handed: Vec<(IpAddr, OwnerId)> = (0..TOTAL / THREADS)
                    .map(|i| {
                        let owner = OwnerId((t * TOTAL + i) as u64);
                        let a = block_on(ipam.assign(&net, Family::V4, IpRequest::Dynamic, owner)).unwrap();
                        (a.address().unwrap().addr(), owner)
                    })
                    .collect();
                (handed, ipam.stats())
            })
        })
        .collect();
    let mut handed = Vec::new();
    let mut conflicts = 0;
    for t in threads {
        let (h, stats) = t.join().expect("an allocator thread panicked");
        handed.extend(h);
        conflicts += stats.conflicts;
    }
    println!("{THREADS} connections allocated {TOTAL} addresses with {conflicts} conflicts retried");
    let distinct: HashSet<IpAddr> = handed.iter().map(|(a, _)| *a).collect();
    assert_eq!(handed.len(), TOTAL);
    assert_eq!(distinct.len(), TOTAL, "an address was handed out twice");
    assert_eq!(persisted(&path, &net), handed.into_iter().collect::<BTreeMap<_, _>>(), "stored state differs");
}

//! Prints what one allocation costs in store traffic — round trips, writes and bytes written — for
//! danm-rs's block IPAM and for upstream DANM's bitmap, at the same pool sizes, on a metered store.
//!
//! `cargo run --release -p danm-benches --bin ipam-report`

use danm_benches::setup::{ipv4_network, upstream_network};
use danm_benches::upstream_ipam::UpstreamIpam;
use danm_core::ipam::{AllocatorId, Family, IpRequest, Ipam, OwnerId};
use danm_core::store::{Datastore, MemoryStore, Metered, Object, StoreStats};
use futures::executor::block_on;

const ALLOCATIONS: u64 = 250;

fn per_allocation(s: StoreStats) -> String {
    let n = ALLOCATIONS as f64;
    format!("{:>8.2} {:>8.2} {:>14.0}", s.round_trips() as f64 / n, s.writes as f64 / n, s.bytes_written as f64 / n)
}

fn main() {
    println!("{ALLOCATIONS} dynamic IPv4 allocations, one allocator, per allocation:");
    println!("{:<8} {:<18} {:>8} {:>8} {:>14}", "pool", "strategy", "trips", "writes", "bytes written");
    for prefix in [24u8, 16, 9, 8] {
        let cidr = format!("10.0.0.0/{prefix}");
        let store = Metered::new(MemoryStore::new());
        let ipam = Ipam::new(&store, AllocatorId::new("node"));
        let net = ipv4_network(&cidr);
        for i in 0..ALLOCATIONS {
            block_on(ipam.assign(&net, Family::V4, IpRequest::Dynamic, OwnerId(i))).expect("allocation failed");
        }
        println!("/{prefix:<7} {:<18} {}", "danm-rs blocks", per_allocation(store.stats()));

        if prefix < 9 {
            println!("/{prefix:<7} {:<18} {:>8} (upstream rejects subnets wider than /9)", "upstream bitmap", "-");
            continue;
        }
        let store = Metered::new(MemoryStore::new());
        let net = upstream_network(&cidr);
        let key = net.key();
        block_on(store.inner().create(&Object::Network(net))).expect("create network");
        let baseline = UpstreamIpam::new(&store);
        for _ in 0..ALLOCATIONS {
            baseline.allocate(&key).expect("baseline allocation failed");
        }
        println!("/{prefix:<7} {:<18} {}", "upstream bitmap", per_allocation(store.stats()));
    }
}

//! IPAM benchmarks: the cost of one allocation as the pool grows, and throughput under contention side by
//! side with upstream DANM's algorithm on the same store. Figures are quoted in docs/performance.md.

use std::net::IpAddr;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use danm_benches::setup::{ipv4_network, ipv6_network, upstream_network};
use danm_benches::upstream_ipam::UpstreamIpam;
use danm_core::ipam::{AllocatorId, Family, IpRequest, Ipam, OwnerId};
use danm_core::model::Network;
use danm_core::retry::ThreadSleeper;
use danm_core::store::{Datastore, Latency, MemoryStore, Object};
use futures::executor::block_on;

fn allocate(ipam: &Ipam<impl Datastore>, net: &Network, family: Family, owner: u64) -> IpAddr {
    let a = block_on(ipam.assign(net, family, IpRequest::Dynamic, OwnerId(owner))).expect("allocation failed");
    a.address().expect("an address").addr()
}

/// One dynamic allocation and its free, on an in-memory store already holding 1,000 addresses.
fn allocate_and_free(c: &mut Criterion) {
    let mut group = c.benchmark_group("ipam/allocate+free");
    let cases = [
        ("ipv4 /24", ipv4_network("10.0.0.0/24"), Family::V4, 100),
        ("ipv4 /16", ipv4_network("10.0.0.0/16"), Family::V4, 1000),
        ("ipv4 /8", ipv4_network("10.0.0.0/8"), Family::V4, 1000),
        ("ipv6 /64", ipv6_network("fd00::/64"), Family::V6, 1000),
    ];
    for (name, net, family, prefill) in cases {
        let ipam = Ipam::new(MemoryStore::new(), AllocatorId::new("bench"));
        for i in 0..prefill {
            allocate(&ipam, &net, family, i);
        }
        let mut owner = 1_000_000;
        group.bench_function(name, |b| {
            b.iter(|| {
                owner += 1;
                let addr = allocate(&ipam, &net, family, owner);
                block_on(ipam.free(&net, addr, OwnerId(owner))).expect("free failed");
            })
        });
    }
    group.finish();
}

type SlowStore = Arc<Latency<MemoryStore>>;

fn slow_store() -> SlowStore {
    Arc::new(Latency::new(MemoryStore::new(), Duration::from_millis(1), Arc::new(ThreadSleeper)))
}

/// Runs `per_thread` allocations on each of `threads` threads at once; returns the wall time.
fn run_threads(threads: usize, per_thread: u64, work: impl Fn(usize, u64) + Send + Sync + 'static) -> Duration {
    let work = Arc::new(work);
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (work, barrier) = (work.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..per_thread {
                    work(t, i);
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for h in handles {
        h.join().expect("allocator panicked");
    }
    start.elapsed()
}

/// Allocations per second with 1, 4 and 16 allocators on one /16 through a store 1 ms away.
fn contention(c: &mut Criterion) {
    let mut group = c.benchmark_group("ipam/contention-1ms");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(1));
    for threads in [1usize, 4, 16] {
        group.bench_with_input(BenchmarkId::new("danm-rs blocks", threads), &threads, |b, &threads| {
            b.iter_custom(|iters| {
                let store = slow_store();
                let net = Arc::new(ipv4_network("10.0.0.0/16"));
                let ipams: Arc<Vec<_>> = Arc::new(
                    (0..threads)
                        .map(|t| {
                            Ipam::new(store.clone(), AllocatorId::new(format!("node-{t}")))
                                .with_sleeper(Arc::new(ThreadSleeper))
                        })
                        .collect(),
                );
                let per_thread = iters.div_ceil(threads as u64);
                run_threads(threads, per_thread, move |t, i| {
                    allocate(&ipams[t], &net, Family::V4, (t as u64) << 32 | i);
                })
            })
        });
        group.bench_with_input(BenchmarkId::new("upstream bitmap", threads), &threads, |b, &threads| {
            b.iter_custom(|iters| {
                let store = slow_store();
                let net = upstream_network("10.0.0.0/16");
                let key = net.key();
                block_on(store.inner().create(&Object::Network(net))).expect("create network");
                let ipam = Arc::new(UpstreamIpam::new(store));
                let per_thread = iters.div_ceil(threads as u64);
                run_threads(threads, per_thread, move |_, _| {
                    ipam.allocate(&key).expect("baseline allocation failed");
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, allocate_and_free, contention);
criterion_main!(benches);

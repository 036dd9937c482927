//! Address management from danm-core on an in-memory store: a dual-stack network, dynamic and static
//! requests, freeing, and the pool's use.
//!
//! `cargo run -p danm-examples --example ipam_embedding`

use std::sync::Arc;

use danm_core::ipam::{AddressRequest, AllocatorId, IpRequest, Ipam, OwnerId};
use danm_core::model::{Network, NetworkKind, NetworkOptions, NetworkSpec, ObjectMeta};
use danm_core::store::MemoryStore;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    futures::executor::block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // A network as a user would apply it: an IPv4 /8 and an IPv6 /64, far beyond upstream's limits.
    let options =
        NetworkOptions { cidr: "10.0.0.0/8".into(), net6: "fd00:10::/64".into(), ..NetworkOptions::default() };
    let spec = NetworkSpec { network_id: "big".into(), options, ..NetworkSpec::default() };
    let network = Network::new(NetworkKind::ClusterNetwork, ObjectMeta::new("big", None), spec);

    // The store and one allocator (normally one per node).
    let store = Arc::new(MemoryStore::new());
    let ipam = Ipam::new(store.clone(), AllocatorId::new("node-1"));

    // Each attachment owns its addresses: the owner is derived from the container and interface.
    let first = OwnerId::for_attachment("container-1", "eth0");
    let both = AddressRequest { ip: Some(IpRequest::Dynamic), ip6: Some(IpRequest::Dynamic) };
    let a = ipam.allocate(&network, &both, first).await?;
    println!("container-1/eth0: {}", a.addresses().map(|n| n.to_string()).collect::<Vec<_>>().join(", "));

    let second = OwnerId::for_attachment("container-2", "eth0");
    let fixed = AddressRequest { ip: Some(IpRequest::Static("10.200.0.7".parse()?)), ip6: Some(IpRequest::None) };
    let b = ipam.allocate(&network, &fixed, second).await?;
    println!("container-2/eth0: {}", b.addresses().map(|n| n.to_string()).collect::<Vec<_>>().join(", "));

    // The same static address for someone else is refused, with the field named.
    let clash = ipam.allocate(&network, &fixed, OwnerId::for_attachment("container-3", "eth0")).await;
    println!("container-3/eth0: {}", clash.err().map(|e| e.to_string()).unwrap_or_default());

    for u in ipam.usage(&network).await? {
        println!(
            "{} {}: {} of {} dynamic addresses used, {} in all",
            u.family, u.subnet, u.allocated_in_pool, u.capacity, u.allocated
        );
    }
    ipam.release(&network, &a, first).await?;
    ipam.release(&network, &b, second).await?;
    println!("after freeing everything the store holds {} records", store.len());
    assert!(store.is_empty(), "empty blocks are deleted");
    Ok(())
}

//! Upstream DANM's IPAM, reproduced as a baseline: one bitmap over the whole subnet, stored base64-encoded
//! in the network object itself (`spec.Options.alloc`), next-fit from `allocation_pool.lastIp`, and the
//! whole network object rewritten on every allocation with an immediate retry on a version conflict.

use std::net::{IpAddr, Ipv4Addr};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use danm_core::model::{Network, NetworkKey};
use danm_core::store::{Datastore, DatastoreExt, Object, ObjectKey};

/// Why the baseline could not allocate.
#[derive(Debug)]
pub enum UpstreamError {
    /// The network does not exist or is malformed.
    Network(String),
    /// Every bit is set.
    Exhausted,
    /// The store failed.
    Store(danm_core::store::StoreError),
    /// Conflicts went on past the safety cap (upstream retries forever).
    Contention,
}

/// Upstream's allocator over a network stored in any Datastore.
#[derive(Debug)]
pub struct UpstreamIpam<S> {
    store: S,
    /// Conflicts retried so far.
    pub conflicts: std::sync::atomic::AtomicU64,
}

/// The bitmask of a subnet with every address free but the first and the last, base64-encoded, as the
/// upstream webhook initialises `alloc` on create.
pub fn initial_alloc(prefix: u8) -> String {
    let bits = 1usize << (32 - prefix);
    let mut bytes = vec![0u8; bits.div_ceil(8)];
    set(&mut bytes, 0);
    set(&mut bytes, bits - 1);
    STANDARD.encode(bytes)
}

fn set(bytes: &mut [u8], bit: usize) {
    bytes[bit / 8] |= 0x80 >> (bit % 8);
}

fn is_set(bytes: &[u8], bit: usize) -> bool {
    bytes[bit / 8] & (0x80 >> (bit % 8)) != 0
}

impl<S: Datastore> UpstreamIpam<S> {
    /// A baseline allocator over `store`.
    pub fn new(store: S) -> Self {
        Self { store, conflicts: std::sync::atomic::AtomicU64::new(0) }
    }

    /// Allocates the next free IPv4 address of `key`'s pool, as upstream does.
    pub fn allocate(&self, key: &NetworkKey) -> Result<IpAddr, UpstreamError> {
        for _ in 0..1_000_000 {
            let read = futures::executor::block_on(self.store.get_as::<Network>(&ObjectKey::Network(key.clone())))
                .map_err(UpstreamError::Store)?
                .ok_or_else(|| UpstreamError::Network(format!("{key} not found")))?;
            let mut net = read.value;
            let o = &mut net.spec.options;
            let cidr: ipnet::Ipv4Net = o.cidr.parse().map_err(|_| UpstreamError::Network("bad cidr".into()))?;
            let base = u32::from(cidr.network());
            let mut bytes = STANDARD.decode(&o.alloc).map_err(|e| UpstreamError::Network(e.to_string()))?;
            let offset = |s: &str| s.parse::<Ipv4Addr>().ok().map(|a| (u32::from(a) - base) as usize);
            let start = offset(&o.allocation_pool.start).unwrap_or(1);
            let end = offset(&o.allocation_pool.end).unwrap_or((1usize << (32 - cidr.prefix_len())) - 2);
            let cursor = offset(&o.allocation_pool.last_ip).filter(|c| (start..=end).contains(c)).unwrap_or(start);
            let found = (cursor..=end).chain(start..cursor).find(|b| !is_set(&bytes, *b));
            let Some(bit) = found else { return Err(UpstreamError::Exhausted) };
            set(&mut bytes, bit);
            let addr = Ipv4Addr::from(base + bit as u32);
            o.alloc = STANDARD.encode(&bytes);
            o.allocation_pool.last_ip = addr.to_string();
            match futures::executor::block_on(self.store.update(&Object::Network(net), &read.version)) {
                Ok(_) => return Ok(IpAddr::V4(addr)),
                Err(e) if e.is_conflict() => {
                    self.conflicts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Err(e) => return Err(UpstreamError::Store(e)),
            }
        }
        Err(UpstreamError::Contention)
    }
}

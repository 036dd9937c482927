//! The IPAM driver: reads allocation state from a Datastore, decides with [`Pool`], writes back with
//! compare-and-swap, and retries lost races with bounded, jittered backoff.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::block::{AllocatorId, Block, BlockKey, Cursor, FreeOutcome, OwnerId, PoolKey};
use super::error::IpamError;
use super::pool::{Family, Pool};
use super::{AddressRequest, Allocation, Assignment, IpRequest, PoolUsage};
use crate::model::Network;
use crate::retry::{NoSleep, RetryPolicy, Sleeper};
use crate::store::{Datastore, DatastoreExt, Object, ObjectKey, Query, StoreError, Version, Versioned};

/// How many consecutive full blocks a dynamic allocation reads one by one before it lists the pool's
/// blocks to find free space in one round trip.
const SCAN_LIMIT: u32 = 4;

/// Counters of one [`Ipam`] since it was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IpamStats {
    /// Addresses handed out (dynamic and static).
    pub allocated: u64,
    /// Addresses freed.
    pub freed: u64,
    /// Writes that lost a compare-and-swap race and were retried.
    pub conflicts: u64,
    /// Times a dynamic allocation listed a pool's blocks to find free space.
    pub pool_scans: u64,
    /// Dynamic allocations written straight into the block this driver wrote last, without a read.
    pub cache_hits: u64,
    /// Times that block had changed meanwhile, so the write was refused and the block read again.
    pub cache_misses: u64,
}

#[derive(Debug, Default)]
struct Counters {
    allocated: AtomicU64,
    freed: AtomicU64,
    conflicts: AtomicU64,
    pool_scans: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
}

#[derive(Debug, Clone)]
struct CursorState {
    block: u128,
    version: Option<Version>,
}

/// Address management over a [`Datastore`].
///
/// Allocation state lives in fixed-size blocks (see [`Block`]), each its own versioned record created on
/// first use and deleted when it empties, so the cost of an allocation — reads, writes and bytes written —
/// does not depend on the size of the pool. Each allocator keeps its own next-fit cursor, and an allocator
/// that loses a race jumps to a randomly chosen block further on, so concurrent allocators spread over the
/// pool instead of fighting over one record.
///
/// A driver remembers the block it wrote last in each pool, and writes its next dynamic allocation straight
/// into it at the remembered version; compare-and-swap refuses the write if the block changed meanwhile,
/// and the block is then read again. A long-running allocator thus needs one round trip per allocation.
///
/// Every address is recorded with its [`OwnerId`], so it can be freed by its holder with nothing else
/// known: DEL after a crash, and garbage collection, rely on that.
#[derive(Debug)]
pub struct Ipam<S> {
    store: S,
    allocator: AllocatorId,
    policy: RetryPolicy,
    sleeper: Arc<dyn Sleeper>,
    cursors: Mutex<HashMap<PoolKey, CursorState>>,
    /// Per pool, the block this driver wrote last, at the version it wrote.
    recent: Mutex<HashMap<PoolKey, (u128, Versioned<Block>)>>,
    counters: Counters,
}

impl<S: Datastore> Ipam<S> {
    /// An IPAM driver over `store`, allocating as `allocator` (normally the node name), with the default
    /// retry policy and no delay between retries. Use [`Ipam::with_sleeper`] to back off on a runtime.
    pub fn new(store: S, allocator: AllocatorId) -> Self {
        Self {
            store,
            allocator,
            policy: RetryPolicy::default(),
            sleeper: Arc::new(NoSleep),
            cursors: Mutex::new(HashMap::new()),
            recent: Mutex::new(HashMap::new()),
            counters: Counters::default(),
        }
    }

    /// Sets the retry policy.
    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets what waits between retries.
    pub fn with_sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.sleeper = sleeper;
        self
    }

    /// The datastore.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The counters so far.
    pub fn stats(&self) -> IpamStats {
        IpamStats {
            allocated: self.counters.allocated.load(Ordering::Relaxed),
            freed: self.counters.freed.load(Ordering::Relaxed),
            conflicts: self.counters.conflicts.load(Ordering::Relaxed),
            pool_scans: self.counters.pool_scans.load(Ordering::Relaxed),
            cache_hits: self.counters.cache_hits.load(Ordering::Relaxed),
            cache_misses: self.counters.cache_misses.load(Ordering::Relaxed),
        }
    }

    /// Allocates what `request` asks for on `network`, for `owner`: IPv4 first, then IPv6. When the second
    /// family fails, the first is freed again, so a failed call leaves nothing allocated.
    pub async fn allocate(
        &self,
        network: &Network,
        request: &AddressRequest,
        owner: OwnerId,
    ) -> Result<Allocation, IpamError> {
        let mut allocation = Allocation::default();
        if let Some(req) = request.ip {
            allocation.v4 = Some(self.assign(network, Family::V4, req, owner).await?);
        }
        if let Some(req) = request.ip6 {
            match self.assign(network, Family::V6, req, owner).await {
                Ok(a) => allocation.v6 = Some(a),
                Err(error) => {
                    return match self.release(network, &allocation, owner).await {
                        Ok(()) => Err(error),
                        Err(rollback) => {
                            Err(IpamError::Rollback { error: Box::new(error), rollback: Box::new(rollback) })
                        }
                    };
                }
            }
        }
        Ok(allocation)
    }

    /// Serves one family's request: `none`, a dynamic address, or a static one.
    pub async fn assign(
        &self,
        network: &Network,
        family: Family,
        request: IpRequest,
        owner: OwnerId,
    ) -> Result<Assignment, IpamError> {
        let request_field = family.request_field();
        if let IpRequest::Static(addr) = request
            && Family::of(&addr) != family
        {
            return Err(IpamError::WrongFamily { request: request_field, addr, family });
        }
        if request == IpRequest::None {
            return Ok(Assignment::None);
        }
        let Some(pool) = Pool::from_options(&network.spec.options, family)? else {
            return Err(IpamError::NoSubnet { request: request_field, family, field: family.subnet_field() });
        };
        let key = PoolKey::new(network.key(), family);
        let (offset, dynamic) = match request {
            IpRequest::Static(addr) => (self.claim(&key, &pool, addr, owner).await?, false),
            _ => (self.next_free(&key, &pool, owner).await?, true),
        };
        self.counters.allocated.fetch_add(1, Ordering::Relaxed);
        Ok(Assignment::Address { address: pool.addr_net(offset), dynamic })
    }

    /// Frees every address of `allocation` held by `owner`. Freeing what is not allocated succeeds.
    pub async fn release(&self, network: &Network, allocation: &Allocation, owner: OwnerId) -> Result<(), IpamError> {
        for net in allocation.addresses() {
            self.free(network, net.addr(), owner).await?;
        }
        Ok(())
    }

    /// Frees `addr` on `network` if `owner` holds it. An address that is not allocated, or a network
    /// without a subnet of its family, is nothing to do; one held by another owner is left alone and
    /// reported.
    pub async fn free(&self, network: &Network, addr: IpAddr, owner: OwnerId) -> Result<(), IpamError> {
        let family = Family::of(&addr);
        let Some(pool) = Pool::from_options(&network.spec.options, family)? else { return Ok(()) };
        let Some(offset) = pool.offset(addr) else { return Ok(()) };
        let (index, slot) = Pool::locate(offset);
        let key = BlockKey { pool: PoolKey::new(network.key(), family), index };
        let mut conflicts = 0;
        loop {
            let Some(current) = self.store.get_as::<Block>(&ObjectKey::Block(key.clone())).await? else {
                return Ok(());
            };
            let mut block = current.value;
            match block.free(slot, owner) {
                FreeOutcome::NotAllocated => return Ok(()),
                FreeOutcome::HeldBy(_) => return Err(IpamError::HeldByOther { addr }),
                FreeOutcome::Freed => {}
            }
            let written = if block.is_empty() {
                self.store.delete(&ObjectKey::Block(key.clone()), Some(&current.version)).await.map(|()| None)
            } else {
                let object = Object::Block { key: key.clone(), block: block.clone() };
                self.store
                    .update(&object, &current.version)
                    .await
                    .map(|version| Some(Versioned { version, value: block }))
            };
            match written {
                Ok(now) => {
                    self.counters.freed.fetch_add(1, Ordering::Relaxed);
                    self.remember_if_recent(&key, now);
                    return Ok(());
                }
                Err(e) if is_race(&e) => self.lost_race(&key.pool, &mut conflicts).await?,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Frees every address `owner` holds on `network`, in both families, and returns them. This reads all
    /// of the network's blocks: it is for recovery (DEL without a record, garbage collection), not for the
    /// common path.
    pub async fn free_owner(&self, network: &Network, owner: OwnerId) -> Result<Vec<IpAddr>, IpamError> {
        let mut freed = Vec::new();
        for family in [Family::V4, Family::V6] {
            let Some(pool) = Pool::from_options(&network.spec.options, family)? else { continue };
            let listed = self.store.list(&Query::Blocks(PoolKey::new(network.key(), family))).await?;
            for v in listed {
                let Object::Block { key, block } = v.value else { continue };
                let base = key.index * u128::from(super::BLOCK_SIZE);
                for (slot, holder) in block.slots() {
                    if holder == owner {
                        let addr = pool.addr(base + u128::from(slot));
                        self.free(network, addr, owner).await?;
                        freed.push(addr);
                    }
                }
            }
        }
        Ok(freed)
    }

    /// How much of each of `network`'s pools is in use.
    pub async fn usage(&self, network: &Network) -> Result<Vec<PoolUsage>, IpamError> {
        let mut out = Vec::new();
        for family in [Family::V4, Family::V6] {
            let Some(pool) = Pool::from_options(&network.spec.options, family)? else { continue };
            let listed = self.store.list(&Query::Blocks(PoolKey::new(network.key(), family))).await?;
            let (mut allocated, mut in_pool) = (0u128, 0u128);
            for v in listed {
                let Object::Block { key, block } = v.value else { continue };
                let base = key.index * u128::from(super::BLOCK_SIZE);
                for (slot, _) in block.slots() {
                    allocated += 1;
                    if pool.is_dynamic(base + u128::from(slot)) {
                        in_pool += 1;
                    }
                }
            }
            out.push(PoolUsage::new(&pool, allocated, in_pool));
        }
        Ok(out)
    }

    /// Every address allocated on `network`, IPv4 first, each family in address order, with its holder.
    /// It reads each pool's blocks once: the work grows with the addresses in use, not the subnet's size.
    pub async fn allocations(&self, network: &Network) -> Result<Vec<super::Allocated>, IpamError> {
        let mut out = Vec::new();
        for family in [Family::V4, Family::V6] {
            let Some(pool) = Pool::from_options(&network.spec.options, family)? else { continue };
            let listed = self.store.list(&Query::Blocks(PoolKey::new(network.key(), family))).await?;
            let mut found = Vec::new();
            for v in listed {
                let Object::Block { key, block } = v.value else { continue };
                let base = key.index * u128::from(super::BLOCK_SIZE);
                for (slot, owner) in block.slots() {
                    let offset = base + u128::from(slot);
                    found.push((
                        offset,
                        super::Allocated { address: pool.addr_net(offset), owner, in_pool: pool.is_dynamic(offset) },
                    ));
                }
            }
            found.sort_by_key(|(offset, _)| *offset);
            out.extend(found.into_iter().map(|(_, a)| a));
        }
        Ok(out)
    }

    /// Takes a static address.
    async fn claim(&self, key: &PoolKey, pool: &Pool, addr: IpAddr, owner: OwnerId) -> Result<u128, IpamError> {
        let request = pool.family().request_field();
        let offset = pool.offset(addr).ok_or(IpamError::OutsideSubnet { request, addr, subnet: pool.subnet() })?;
        if pool.is_reserved(offset) {
            return Err(IpamError::Reserved { request, addr, subnet: pool.subnet() });
        }
        let (index, slot) = Pool::locate(offset);
        let bkey = BlockKey { pool: key.clone(), index };
        let mut conflicts = 0;
        loop {
            let current = self.store.get_as::<Block>(&ObjectKey::Block(bkey.clone())).await?;
            if let Some(holder) = current.as_ref().and_then(|c| c.value.owner(slot)) {
                return if holder == owner { Ok(offset) } else { Err(IpamError::InUse { request, addr }) };
            }
            match self.write_slot(&bkey, current, slot, owner, false).await {
                Ok(now) => {
                    self.remember_if_recent(&bkey, Some(now));
                    return Ok(offset);
                }
                Err(e) if is_race(&e) => self.lost_race(key, &mut conflicts).await?,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Takes the next free address of the dynamic range, next-fit from this allocator's cursor.
    async fn next_free(&self, key: &PoolKey, pool: &Pool, owner: OwnerId) -> Result<u128, IpamError> {
        let exhausted = || IpamError::Exhausted { network: key.network.to_string(), family: key.family };
        let (first, last) = pool.block_range().ok_or_else(exhausted)?;
        let cursor = self.cursor(key, first, last).await?;
        let (mut index, mut resume) = (cursor, true);
        if let Some((recent, cached)) = self.recent(key).filter(|(i, _)| (first..=last).contains(i)) {
            let from = cached.value.last().map_or(0, |l| l.saturating_add(1));
            if let Some(slot) = pool.find_free(recent, Some(&cached.value), from) {
                let bkey = BlockKey { pool: key.clone(), index: recent };
                match self.write_slot(&bkey, Some(cached), slot, owner, true).await {
                    Ok(now) => {
                        self.counters.cache_hits.fetch_add(1, Ordering::Relaxed);
                        self.remember(key, recent, now);
                        return Ok(recent * u128::from(super::BLOCK_SIZE) + u128::from(slot));
                    }
                    Err(e) if is_race(&e) => self.counters.cache_misses.fetch_add(1, Ordering::Relaxed),
                    Err(e) => return Err(e.into()),
                };
            }
            // Carry on from that block with a fresh read.
            index = recent;
        }
        let (mut conflicts, mut full_run, mut scans) = (0u32, 0u32, 0u32);
        loop {
            let bkey = BlockKey { pool: key.clone(), index };
            let current = self.store.get_as::<Block>(&ObjectKey::Block(bkey.clone())).await?;
            // In the cursor's own block, continue after the last slot handed out there (next-fit).
            let from = match (&current, resume) {
                (Some(c), true) => c.value.last().map_or(0, |l| l.saturating_add(1)),
                _ => 0,
            };
            resume = false;
            let Some(slot) = pool.find_free(index, current.as_ref().map(|c| &c.value), from) else {
                full_run += 1;
                if full_run < SCAN_LIMIT {
                    index = if index >= last { first } else { index + 1 };
                    continue;
                }
                scans += 1;
                if scans > self.policy.max_conflicts {
                    return Err(IpamError::Contention { network: key.network.to_string(), conflicts });
                }
                self.counters.pool_scans.fetch_add(1, Ordering::Relaxed);
                index = self.find_space(key, pool, index, first, last).await?.ok_or_else(exhausted)?;
                full_run = 0;
                continue;
            };
            match self.write_slot(&bkey, current, slot, owner, true).await {
                Ok(now) => {
                    self.remember(key, index, now);
                    if index != cursor {
                        self.move_cursor(key, index).await;
                    }
                    return Ok(index * u128::from(super::BLOCK_SIZE) + u128::from(slot));
                }
                Err(e) if is_race(&e) => {
                    self.lost_race(key, &mut conflicts).await?;
                    index = scatter(index, conflicts, first, last);
                    full_run = 0;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Lists the pool's blocks and returns the first block, cyclically from `from`, with a free dynamic
    /// slot: an existing block that is not full, or one that does not exist yet.
    async fn find_space(
        &self,
        key: &PoolKey,
        pool: &Pool,
        from: u128,
        first: u128,
        last: u128,
    ) -> Result<Option<u128>, IpamError> {
        let listed = self.store.list(&Query::Blocks(key.clone())).await?;
        let blocks: BTreeMap<u128, Block> = listed
            .into_iter()
            .filter_map(|v| match v.value {
                Object::Block { key, block } => Some((key.index, block)),
                _ => None,
            })
            .collect();
        // Blocks that do not exist have every slot free; only the range's edge blocks, or a block full of
        // gateways, can lack a dynamic slot, so a few probes per gap suffice.
        let absent = |lo: u128, hi: u128| (lo..=hi).take(66).find(|i| pool.find_free(*i, None, 0).is_some());
        let search = |lo: u128, hi: u128| -> Option<u128> {
            let mut next = lo;
            for (index, block) in blocks.range(lo..=hi) {
                if next < *index
                    && let Some(i) = absent(next, index - 1)
                {
                    return Some(i);
                }
                if pool.find_free(*index, Some(block), 0).is_some() {
                    return Some(*index);
                }
                next = index.checked_add(1)?;
            }
            if next <= hi { absent(next, hi) } else { None }
        };
        Ok(search(from, last).or_else(|| if from > first { search(first, from - 1) } else { None }))
    }

    async fn write_slot(
        &self,
        key: &BlockKey,
        current: Option<Versioned<Block>>,
        slot: u8,
        owner: OwnerId,
        dynamic: bool,
    ) -> Result<Versioned<Block>, StoreError> {
        let (mut block, version) = match current {
            Some(c) => (c.value, Some(c.version)),
            None => (Block::default(), None),
        };
        if block.allocate(slot, owner, dynamic).is_err() {
            // Callers only pick free slots of the block they read; a taken slot means the read was stale.
            return Err(StoreError::Conflict { key: key.to_string() });
        }
        let object = Object::Block { key: key.clone(), block: block.clone() };
        let version = match version {
            Some(v) => self.store.update(&object, &v).await?,
            None => self.store.create(&object).await?,
        };
        Ok(Versioned { version, value: block })
    }

    fn recent(&self, key: &PoolKey) -> Option<(u128, Versioned<Block>)> {
        self.recent.lock().ok().and_then(|r| r.get(key).cloned())
    }

    fn remember(&self, key: &PoolKey, index: u128, block: Versioned<Block>) {
        if let Ok(mut r) = self.recent.lock() {
            r.insert(key.clone(), (index, block));
        }
    }

    /// After this driver wrote block `key` (`None`: deleted it), keeps the remembered block in step.
    fn remember_if_recent(&self, key: &BlockKey, now: Option<Versioned<Block>>) {
        if let Ok(mut r) = self.recent.lock()
            && r.get(&key.pool).is_some_and(|(i, _)| *i == key.index)
        {
            match now {
                Some(block) => r.insert(key.pool.clone(), (key.index, block)),
                None => r.remove(&key.pool),
            };
        }
    }

    async fn lost_race(&self, key: &PoolKey, conflicts: &mut u32) -> Result<(), IpamError> {
        self.counters.conflicts.fetch_add(1, Ordering::Relaxed);
        *conflicts += 1;
        if *conflicts > self.policy.max_conflicts {
            return Err(IpamError::Contention { network: key.network.to_string(), conflicts: *conflicts - 1 });
        }
        self.sleeper.sleep(self.policy.delay(*conflicts - 1)).await;
        Ok(())
    }

    async fn cursor(&self, key: &PoolKey, first: u128, last: u128) -> Result<u128, IpamError> {
        let cached = self.cursors.lock().ok().and_then(|c| c.get(key).cloned());
        let state = match cached {
            Some(s) => s,
            None => {
                let ckey = ObjectKey::Cursor { pool: key.clone(), allocator: self.allocator.clone() };
                let state = match self.store.get_as::<Cursor>(&ckey).await? {
                    Some(c) => CursorState { block: c.value.block, version: Some(c.version) },
                    None => CursorState { block: first, version: None },
                };
                if let Ok(mut c) = self.cursors.lock() {
                    c.insert(key.clone(), state.clone());
                }
                state
            }
        };
        // The pool may have changed since the cursor was written.
        Ok(if (first..=last).contains(&state.block) { state.block } else { first })
    }

    /// Records this allocator's new position. The cursor is a hint: a failed write only costs a scan
    /// later, so it is not an error.
    async fn move_cursor(&self, key: &PoolKey, block: u128) {
        let version = self.cursors.lock().ok().and_then(|c| c.get(key).and_then(|s| s.version.clone()));
        let object = Object::Cursor { pool: key.clone(), cursor: Cursor { allocator: self.allocator.clone(), block } };
        let written = match &version {
            Some(v) => self.store.update(&object, v).await,
            None => self.store.create(&object).await,
        };
        if let Ok(mut c) = self.cursors.lock() {
            match written {
                Ok(v) => c.insert(key.clone(), CursorState { block, version: Some(v) }),
                Err(_) => c.remove(key),
            };
        }
    }
}

/// A lost compare-and-swap: the block changed, appeared or disappeared since it was read.
fn is_race(e: &StoreError) -> bool {
    e.is_conflict() || e.is_not_found()
}

/// After the `conflicts`-th lost race at block `index`, a block chosen at random among the next
/// `2^(conflicts + 2)` (wrapping inside `first..=last`) and never `index` itself when there is another,
/// so that racing allocators drift apart at once instead of colliding again.
fn scatter(index: u128, conflicts: u32, first: u128, last: u128) -> u128 {
    let span = last - first;
    if span == 0 {
        return first;
    }
    let reach = 1u128.checked_shl(conflicts.saturating_add(2).min(20)).unwrap_or(u128::MAX).min(span);
    let step = fastrand::u128(1..=reach);
    let pos = (index - first).wrapping_add(step);
    first + if span == u128::MAX { pos } else { pos % (span + 1) }
}

#[cfg(test)]
mod tests {
    use super::scatter;

    #[test]
    fn scatter_moves_within_the_range_and_away() {
        for _ in 0..1000 {
            let next = scatter(10, 1, 10, 13);
            assert!((11..=13).contains(&next));
            assert_eq!(scatter(5, 3, 5, 5), 5);
            let far = scatter(u128::MAX - 1, 30, 0, u128::MAX);
            assert_ne!(far, u128::MAX - 1);
            let near = scatter(100, 1, 0, 1 << 40);
            assert!((101..=108).contains(&near));
        }
    }
}

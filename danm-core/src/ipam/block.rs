//! The persisted allocation state: fixed-size blocks of addresses, each its own versioned record.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Family;
use crate::model::NetworkKey;

/// How many consecutive addresses one block covers. Block `i` of a pool holds the addresses at offsets
/// `i * BLOCK_SIZE .. (i + 1) * BLOCK_SIZE` from the subnet's first address.
pub const BLOCK_SIZE: u32 = 64;

/// One address family of one network: the unit IPAM state is kept per.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PoolKey {
    /// The network.
    pub network: NetworkKey,
    /// The family.
    pub family: Family,
}

impl PoolKey {
    /// The key of `network`'s pool of `family`.
    pub fn new(network: NetworkKey, family: Family) -> Self {
        Self { network, family }
    }
}

impl fmt::Display for PoolKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.network, self.family)
    }
}

/// Identifies one block of one pool.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockKey {
    /// The pool.
    pub pool: PoolKey,
    /// The block's index: its first address is at offset `index * BLOCK_SIZE` in the subnet.
    pub index: u128,
}

impl fmt::Display for BlockKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} #{}", self.pool, self.index)
    }
}

/// Who holds an address: a stable 64-bit digest of the attachment (container ID and interface name).
///
/// It is what makes DEL and GC work after a crash: an address can be found and freed by its holder even
/// when no DanmEp was ever written for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OwnerId(pub u64);

impl OwnerId {
    /// The owner ID of the attachment `ifname` of container `container_id` (FNV-1a, stable across
    /// releases and platforms).
    pub fn for_attachment(container_id: &str, ifname: &str) -> Self {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut h = OFFSET;
        for b in container_id.bytes().chain([0xff]).chain(ifname.bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
        Self(h)
    }
}

impl fmt::Display for OwnerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl Serialize for OwnerId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for OwnerId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() != 16 {
            return Err(serde::de::Error::custom(format!("owner `{s}` is not 16 hex digits")));
        }
        u64::from_str_radix(&s, 16).map(Self).map_err(serde::de::Error::custom)
    }
}

/// Names the allocator (normally the node) that owns a next-fit cursor.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct AllocatorId(pub String);

impl AllocatorId {
    /// An allocator ID.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }
}

impl fmt::Display for AllocatorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The allocations of one block: which slots are taken, by whom, and the last slot handed out
/// dynamically (the block's next-fit position).
///
/// A block exists in the store only while it holds at least one address; the empty block is deleted.
/// Its JSON form is `{"last":5,"owners":{"3":"00a1b2c3d4e5f607","5":"..."}}`: at most 64 entries, so a
/// write never exceeds about 1.7 KB whatever the size of the pool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "BlockRepr", into = "BlockRepr")]
pub struct Block {
    owners: BTreeMap<u8, OwnerId>,
    last: Option<u8>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BlockRepr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last: Option<u8>,
    #[serde(default)]
    owners: BTreeMap<u8, OwnerId>,
}

impl TryFrom<BlockRepr> for Block {
    type Error = String;

    fn try_from(r: BlockRepr) -> Result<Self, Self::Error> {
        if let Some(slot) = r.owners.keys().chain(r.last.iter()).find(|s| u32::from(**s) >= BLOCK_SIZE) {
            return Err(format!("slot {slot} is outside a block of {BLOCK_SIZE} addresses"));
        }
        Ok(Self { owners: r.owners, last: r.last })
    }
}

impl From<Block> for BlockRepr {
    fn from(b: Block) -> Self {
        Self { last: b.last, owners: b.owners }
    }
}

/// The schema of [`Block`]'s JSON form: written by hand because the type serializes through a private
/// representation. Slot numbers (the keys of `owners`) cannot be constrained in a Kubernetes structural
/// schema; [`Block`]'s own decoding checks them.
#[cfg(feature = "schemars")]
impl schemars::JsonSchema for Block {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Block".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "The allocations of one block of 64 addresses.",
            "type": "object",
            "properties": {
                "last": {
                    "description": "The last slot handed out dynamically (the block's next-fit position).",
                    "type": "integer",
                    "minimum": 0,
                    "maximum": BLOCK_SIZE - 1,
                },
                "owners": {
                    "description": "Taken slots (0 to 63, as strings) and their holders (16 hex digits).",
                    "type": "object",
                    "maxProperties": BLOCK_SIZE,
                    "additionalProperties": { "type": "string", "pattern": "^[0-9a-fA-F]{16}$" },
                },
            },
        })
    }
}

/// The slot was already taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("slot {slot} is held by {owner}")]
pub struct SlotTaken {
    /// The slot.
    pub slot: u8,
    /// Its holder.
    pub owner: OwnerId,
}

/// What [`Block::free`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreeOutcome {
    /// The slot was held by the owner and is free now.
    Freed,
    /// The slot was not allocated: nothing to do.
    NotAllocated,
    /// Someone else holds the slot; it was left alone.
    HeldBy(OwnerId),
}

impl Block {
    /// Whether no slot is taken.
    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }

    /// How many slots are taken.
    pub fn len(&self) -> usize {
        self.owners.len()
    }

    /// The holder of `slot`, if it is taken.
    pub fn owner(&self, slot: u8) -> Option<OwnerId> {
        self.owners.get(&slot).copied()
    }

    /// The taken slots and their holders, in slot order.
    pub fn slots(&self) -> impl Iterator<Item = (u8, OwnerId)> + '_ {
        self.owners.iter().map(|(s, o)| (*s, *o))
    }

    /// The last slot handed out dynamically.
    pub fn last(&self) -> Option<u8> {
        self.last
    }

    /// Takes `slot` for `owner`; `dynamic` also moves the block's next-fit position to it.
    pub fn allocate(&mut self, slot: u8, owner: OwnerId, dynamic: bool) -> Result<(), SlotTaken> {
        debug_assert!(u32::from(slot) < BLOCK_SIZE);
        if let Some(holder) = self.owner(slot) {
            return Err(SlotTaken { slot, owner: holder });
        }
        self.owners.insert(slot, owner);
        if dynamic {
            self.last = Some(slot);
        }
        Ok(())
    }

    /// Frees `slot` if `owner` holds it.
    pub fn free(&mut self, slot: u8, owner: OwnerId) -> FreeOutcome {
        match self.owner(slot) {
            None => FreeOutcome::NotAllocated,
            Some(o) if o != owner => FreeOutcome::HeldBy(o),
            Some(_) => {
                self.owners.remove(&slot);
                FreeOutcome::Freed
            }
        }
    }
}

/// An allocator's next-fit position in one pool: the block it allocates from next.
///
/// Each allocator (node) has its own cursor, written only when it moves to another block, so cursors are
/// never a point of contention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    /// The allocator that owns this cursor.
    pub allocator: AllocatorId,
    /// The block index, as a decimal string (it may exceed what JSON numbers carry exactly).
    #[serde(with = "super::serde_u128")]
    #[cfg_attr(feature = "schemars", schemars(with = "String", regex(pattern = r"^[0-9]+$")))]
    pub block: u128,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_round_trips_and_rejects_bad_slots() {
        let mut b = Block::default();
        b.allocate(3, OwnerId(0xa1), true).unwrap();
        b.allocate(63, OwnerId(u64::MAX), false).unwrap();
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(json, r#"{"last":3,"owners":{"3":"00000000000000a1","63":"ffffffffffffffff"}}"#);
        assert_eq!(serde_json::from_str::<Block>(&json).unwrap(), b);
        assert!(serde_json::from_str::<Block>(r#"{"owners":{"64":"00000000000000a1"}}"#).is_err());
        assert!(serde_json::from_str::<Block>(r#"{"last":70,"owners":{}}"#).is_err());
        assert!(serde_json::from_str::<Block>(r#"{"owners":{"1":"xyz"}}"#).is_err());
    }

    #[test]
    fn allocate_and_free_respect_owners() {
        let mut b = Block::default();
        assert_eq!(b.allocate(1, OwnerId(1), true), Ok(()));
        assert_eq!(b.allocate(1, OwnerId(2), true), Err(SlotTaken { slot: 1, owner: OwnerId(1) }));
        assert_eq!(b.free(1, OwnerId(2)), FreeOutcome::HeldBy(OwnerId(1)));
        assert_eq!(b.free(1, OwnerId(1)), FreeOutcome::Freed);
        assert_eq!(b.free(1, OwnerId(1)), FreeOutcome::NotAllocated);
        assert!(b.is_empty());
    }

    #[test]
    fn owner_ids_are_stable() {
        // The digest is part of the persisted format: it must never change.
        assert_eq!(OwnerId::for_attachment("abc", "eth0"), OwnerId(0x348a_293a_6975_b88d));
        assert_eq!(OwnerId::for_attachment("abc", "eth0"), OwnerId::for_attachment("abc", "eth0"));
        assert_ne!(OwnerId::for_attachment("abc", "eth0"), OwnerId::for_attachment("abc", "eth1"));
        assert_ne!(OwnerId::for_attachment("ab", "ceth0"), OwnerId::for_attachment("abc", "eth0"));
        let c = Cursor { allocator: AllocatorId::new("node-1"), block: u128::MAX };
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Cursor>(&json).unwrap(), c);
    }
}

//! A TenantConfig profile's `alloc`: which VLAN or VXLAN IDs are reserved, as a bitmask.
//!
//! The format is upstream DANM's, so that a TenantConfig moves between the two unchanged: the standard
//! base64 encoding of a byte string in which bit `n` (the most significant bit of byte 0 is bit 0) is set
//! when ID `n` is reserved. Bit 0 is always set, as ID 0 is never valid. Upstream sizes the string for IDs
//! up to 4999 (625 bytes); danm-rs does the same, and grows it when a `vniRange` reaches further, up to
//! [`MAX_ALLOC_VNI`] so that a TenantConfig stays far below the API server's object size limit.

use std::ops::RangeInclusive;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The largest ID a profile's `alloc` can hold: 2^20 − 1, a bitmask of 128 KiB (175 KiB as base64).
pub const MAX_ALLOC_VNI: i64 = (1 << 20) - 1;

/// The IDs upstream's bitmask holds: 0 to 4999.
const UPSTREAM_BITS: usize = 5000;

/// A decoded `alloc` bitmask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VniAlloc {
    bytes: Vec<u8>,
}

/// Why an `alloc` value could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VniAllocError {
    /// The value is not standard base64.
    #[error("alloc is not a base64 bitmask")]
    NotBase64,
    /// An ID lies beyond [`MAX_ALLOC_VNI`].
    #[error("ID {0} is larger than {MAX_ALLOC_VNI}, the largest ID a TenantConfig can reserve")]
    TooLarge(i64),
}

impl VniAlloc {
    /// An empty bitmask (only bit 0 set) large enough for every ID of `ranges`.
    pub fn for_ranges(ranges: &[RangeInclusive<i64>]) -> Result<Self, VniAllocError> {
        let mut alloc = Self { bytes: vec![0; UPSTREAM_BITS.div_ceil(8)] };
        alloc.grow_for(ranges)?;
        alloc.bytes[0] |= 0x80;
        Ok(alloc)
    }

    /// Decodes an `alloc` value. The bitmask is not grown; use [`VniAlloc::grow_for`].
    pub fn decode(text: &str) -> Result<Self, VniAllocError> {
        let bytes = STANDARD.decode(text).map_err(|_| VniAllocError::NotBase64)?;
        Ok(Self { bytes })
    }

    /// Grows the bitmask (with free IDs) so that it holds every ID of `ranges`.
    pub fn grow_for(&mut self, ranges: &[RangeInclusive<i64>]) -> Result<(), VniAllocError> {
        let highest = ranges.iter().map(|r| *r.end()).max().unwrap_or(0);
        if highest > MAX_ALLOC_VNI {
            return Err(VniAllocError::TooLarge(highest));
        }
        let needed = usize::try_from(highest).unwrap_or(0) / 8 + 1;
        if self.bytes.len() < needed {
            self.bytes.resize(needed, 0);
        }
        Ok(())
    }

    /// The base64 text of the bitmask.
    pub fn encode(&self) -> String {
        STANDARD.encode(&self.bytes)
    }

    fn position(id: i64) -> Option<(usize, u8)> {
        let id = usize::try_from(id).ok()?;
        Some((id / 8, 0x80 >> (id % 8)))
    }

    /// Whether `id` is reserved. IDs beyond the bitmask are free.
    pub fn is_reserved(&self, id: i64) -> bool {
        Self::position(id).is_some_and(|(byte, bit)| self.bytes.get(byte).is_some_and(|b| b & bit != 0))
    }

    /// Marks `id` reserved, growing the bitmask if needed; `false` if it already was.
    pub fn reserve(&mut self, id: i64) -> Result<bool, VniAllocError> {
        if id > MAX_ALLOC_VNI {
            return Err(VniAllocError::TooLarge(id));
        }
        let Some((byte, bit)) = Self::position(id) else { return Ok(false) };
        if self.bytes.len() <= byte {
            self.bytes.resize(byte + 1, 0);
        }
        let was = self.bytes[byte] & bit != 0;
        self.bytes[byte] |= bit;
        Ok(!was)
    }

    /// Marks `id` free; `false` if it was not reserved. ID 0 stays reserved.
    pub fn release(&mut self, id: i64) -> bool {
        if id == 0 {
            return false;
        }
        let Some((byte, bit)) = Self::position(id) else { return false };
        match self.bytes.get_mut(byte) {
            Some(b) if *b & bit != 0 => {
                *b &= !bit;
                true
            }
            _ => false,
        }
    }

    /// The reserved IDs, in ascending order (ID 0 included).
    pub fn reserved(&self) -> impl Iterator<Item = i64> + '_ {
        self.bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| **b != 0)
            .flat_map(|(i, b)| (0..8).filter(move |bit| b & (0x80 >> bit) != 0).map(move |bit| (i * 8 + bit) as i64))
    }

    /// The lowest ID of `ranges` that is not reserved.
    pub fn lowest_free(&self, ranges: &[RangeInclusive<i64>]) -> Option<i64> {
        ranges.iter().filter_map(|r| r.clone().find(|id| !self.is_reserved(*id))).min()
    }

    /// How many IDs of `ranges` are not reserved (IDs listed twice count once per listing).
    pub fn free_count(&self, ranges: &[RangeInclusive<i64>]) -> u64 {
        ranges.iter().map(|r| r.clone().filter(|id| !self.is_reserved(*id)).count() as u64).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fresh_bitmask_has_upstreams_size_and_bit_zero() {
        let alloc = VniAlloc::for_ranges(&[100..=200]).unwrap();
        let text = alloc.encode();
        let bytes = STANDARD.decode(&text).unwrap();
        assert_eq!(bytes.len(), 625);
        assert_eq!(bytes[0], 0x80);
        assert!(bytes[1..].iter().all(|b| *b == 0));
        assert!(alloc.is_reserved(0));
        assert_eq!(VniAlloc::decode(&text).unwrap(), alloc);
    }

    #[test]
    fn reserved_lists_the_set_bits_in_order() {
        let mut alloc = VniAlloc::for_ranges(&[1..=20_000]).unwrap();
        for id in [19_999, 9, 8, 4095] {
            alloc.reserve(id).unwrap();
        }
        assert_eq!(alloc.reserved().collect::<Vec<_>>(), [0, 8, 9, 4095, 19_999]);
        alloc.release(9);
        assert_eq!(alloc.reserved().collect::<Vec<_>>(), [0, 8, 4095, 19_999]);
    }

    #[test]
    fn bits_are_most_significant_first() {
        let mut alloc = VniAlloc::for_ranges(&[1..=20]).unwrap();
        assert!(alloc.reserve(9).unwrap());
        assert!(!alloc.reserve(9).unwrap());
        let bytes = STANDARD.decode(alloc.encode()).unwrap();
        assert_eq!(bytes[1], 0x40);
        assert!(alloc.release(9));
        assert!(!alloc.release(9));
        assert!(!alloc.release(0));
    }

    #[test]
    fn lowest_free_and_growth() {
        let ranges = [10..=12, 5..=6];
        let mut alloc = VniAlloc::for_ranges(&ranges).unwrap();
        assert_eq!(alloc.lowest_free(&ranges), Some(5));
        alloc.reserve(5).unwrap();
        alloc.reserve(6).unwrap();
        assert_eq!(alloc.lowest_free(&ranges), Some(10));
        assert_eq!(alloc.free_count(&ranges), 3);
        let big = [70_000..=70_001];
        let mut grown = VniAlloc::for_ranges(&big).unwrap();
        assert_eq!(STANDARD.decode(grown.encode()).unwrap().len(), 70_001 / 8 + 1);
        grown.reserve(70_000).unwrap();
        assert_eq!(grown.lowest_free(&big), Some(70_001));
        assert_eq!(VniAlloc::for_ranges(&[1..=MAX_ALLOC_VNI + 1]), Err(VniAllocError::TooLarge(MAX_ALLOC_VNI + 1)));
        assert_eq!(VniAlloc::decode("not base64!"), Err(VniAllocError::NotBase64));
        // An upstream-sized bitmask read for a range past its end treats the missing IDs as free.
        let short = VniAlloc::decode(&VniAlloc::for_ranges(&[1..=2]).unwrap().encode()).unwrap();
        assert_eq!(short.lowest_free(&[6000..=6001]), Some(6000));
    }
}

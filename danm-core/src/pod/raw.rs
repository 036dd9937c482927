//! The interfaces annotation as the JSON decoder delivers it, before validation.
//!
//! Decoding keeps at most [`MAX_INTERFACES`] elements (the rest are counted, not stored), matches keys
//! case-insensitively, treats `null` as absent and records the first unknown key instead of failing, so
//! that validation can report it with its position.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::annotation::MAX_INTERFACES;

/// The list as decoded: at most [`MAX_INTERFACES`] elements kept, and how many there were.
pub(super) struct RawList {
    pub(super) items: Vec<RawInterface>,
    pub(super) total: usize,
}

impl<'de> Deserialize<'de> for RawList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(RawListVisitor)
    }
}

struct RawListVisitor;

impl<'de> Visitor<'de> for RawListVisitor {
    type Value = RawList;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of interface objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawList, A::Error> {
        let mut items = Vec::new();
        while items.len() < MAX_INTERFACES {
            match seq.next_element::<RawInterface>()? {
                Some(item) => items.push(item),
                None => return Ok(RawList { total: items.len(), items }),
            }
        }
        // Past the limit: count the rest without keeping it.
        let mut total = items.len();
        while seq.next_element::<IgnoredAny>()?.is_some() {
            total = total.saturating_add(1);
        }
        Ok(RawList { items, total })
    }
}

/// One element as decoded, before validation.
#[derive(Default)]
pub(super) struct RawInterface {
    pub(super) network: Option<String>,
    pub(super) tenant_network: Option<String>,
    pub(super) cluster_network: Option<String>,
    pub(super) ip: Option<String>,
    pub(super) ip6: Option<String>,
    pub(super) proutes: Option<BTreeMap<String, String>>,
    pub(super) proutes6: Option<BTreeMap<String, String>>,
    /// The first key that is not part of the schema.
    pub(super) unknown: Option<String>,
}

impl<'de> Deserialize<'de> for RawInterface {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(RawInterfaceVisitor)
    }
}

struct RawInterfaceVisitor;

impl<'de> Visitor<'de> for RawInterfaceVisitor {
    type Value = RawInterface;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an interface object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawInterface, A::Error> {
        let mut raw = RawInterface::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.to_ascii_lowercase().as_str() {
                "network" => raw.network = map.next_value()?,
                "tenantnetwork" => raw.tenant_network = map.next_value()?,
                "clusternetwork" => raw.cluster_network = map.next_value()?,
                "ip" => raw.ip = map.next_value()?,
                "ip6" => raw.ip6 = map.next_value()?,
                "proutes" => raw.proutes = map.next_value()?,
                "proutes6" => raw.proutes6 = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    raw.unknown.get_or_insert(key);
                }
            }
        }
        Ok(raw)
    }
}

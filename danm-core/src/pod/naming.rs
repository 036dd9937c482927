//! Names of the interfaces DANM creates inside a pod.
//!
//! The name follows from the interface's position in the annotation, the network's `container_prefix` and
//! the CNI configuration's `namingScheme`. This module computes names and detects collisions; it does not
//! check names against the kernel's limits or create anything.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The first interface's name; kubelet and container runtimes look for it.
pub const FIRST_INTERFACE: &str = "eth0";
/// The prefix used when the network sets no `container_prefix`.
pub const DEFAULT_PREFIX: &str = "eth";

/// The CNI configuration's `namingScheme`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum NamingScheme {
    /// `""`: the prefix followed by the sequence number.
    #[default]
    Default,
    /// `"legacy"`: exactly the prefix, without the sequence number.
    Legacy,
}

impl NamingScheme {
    /// The value as written in the CNI configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "",
            Self::Legacy => "legacy",
        }
    }
}

/// A `namingScheme` other than `""` or `"legacy"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("namingScheme `{value}` is neither empty nor `legacy`")]
pub struct NamingSchemeParseError {
    /// The rejected value.
    pub value: String,
}

impl FromStr for NamingScheme {
    type Err = NamingSchemeParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "" => Ok(Self::Default),
            "legacy" => Ok(Self::Legacy),
            _ => Err(NamingSchemeParseError { value: s.to_owned() }),
        }
    }
}

impl fmt::Display for NamingScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for NamingScheme {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for NamingScheme {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The name of the interface at position `sequence` of the annotation.
///
/// Position 0 is always `eth0`. Otherwise the name is `container_prefix` followed by `sequence`, or exactly
/// `container_prefix` with [`NamingScheme::Legacy`]; without a prefix it is `eth` followed by `sequence`
/// under either scheme.
pub fn interface_name(sequence: usize, container_prefix: &str, scheme: NamingScheme) -> String {
    if sequence == 0 {
        return FIRST_INTERFACE.to_owned();
    }
    match (container_prefix, scheme) {
        ("", _) => format!("{DEFAULT_PREFIX}{sequence}"),
        (prefix, NamingScheme::Legacy) => prefix.to_owned(),
        (prefix, NamingScheme::Default) => format!("{prefix}{sequence}"),
    }
}

/// Two interfaces of one pod would get the same name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("interfaces {first} and {second} would both be named `{name}`")]
pub struct DuplicateInterfaceName {
    /// The shared name.
    pub name: String,
    /// The position of the first interface with that name.
    pub first: usize,
    /// The position of the second one.
    pub second: usize,
}

/// Checks that the names of one pod's interfaces, in annotation order, are all different.
///
/// The legacy scheme names every interface of a network after its prefix alone, so two connections to
/// one network, or two networks sharing a prefix, collide.
pub fn check_unique_names<S: AsRef<str>>(names: &[S]) -> Result<(), DuplicateInterfaceName> {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (position, name) in names.iter().enumerate() {
        let name = name.as_ref();
        if let Some(&first) = seen.get(name) {
            return Err(DuplicateInterfaceName { name: name.to_owned(), first, second: position });
        }
        seen.insert(name, position);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_position_prefix_and_scheme() {
        use NamingScheme::{Default, Legacy};
        assert_eq!(interface_name(0, "ext", Default), "eth0");
        assert_eq!(interface_name(0, "ext", Legacy), "eth0");
        assert_eq!(interface_name(1, "ext", Default), "ext1");
        assert_eq!(interface_name(2, "ext", Legacy), "ext");
        assert_eq!(interface_name(3, "", Default), "eth3");
        assert_eq!(interface_name(3, "", Legacy), "eth3");
    }

    #[test]
    fn scheme_parses_and_prints() {
        assert_eq!("".parse(), Ok(NamingScheme::Default));
        assert_eq!("legacy".parse(), Ok(NamingScheme::Legacy));
        assert!("Legacy".parse::<NamingScheme>().is_err());
        assert_eq!(NamingScheme::Legacy.to_string(), "legacy");
        let parsed: NamingScheme = serde_json::from_str("\"legacy\"").unwrap();
        assert_eq!(parsed, NamingScheme::Legacy);
        assert_eq!(serde_json::to_string(&NamingScheme::Default).unwrap(), "\"\"");
    }

    #[test]
    fn duplicates_name_both_positions() {
        assert_eq!(check_unique_names(&["eth0", "ext1", "ext2"]), Ok(()));
        let names: Vec<String> =
            ["int", "int", "int"].iter().enumerate().map(|(i, p)| interface_name(i, p, NamingScheme::Legacy)).collect();
        assert_eq!(names, ["eth0", "int", "int"]);
        let err = check_unique_names(&names).unwrap_err();
        assert_eq!(err, DuplicateInterfaceName { name: "int".into(), first: 1, second: 2 });
        assert_eq!(err.to_string(), "interfaces 1 and 2 would both be named `int`");
    }
}

//! CNI specification versions: the ones this crate speaks, their ordering, and version negotiation.
//!
//! This module knows which wire shapes differ between versions (see [`CniVersion::has_ip_version_field`]
//! and [`CniVersion::has_v1_1_fields`]); the shapes themselves live in the result and config modules.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::{CniError, ErrorCode};

/// A CNI specification version this crate can read and write, ordered oldest first.
///
/// Versions before 0.3.0 (the `ip4`/`ip6` result shape) are not supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CniVersion {
    /// 0.3.0: the rich result type (interfaces, ips, routes, dns) and plugin chaining.
    V0_3_0,
    /// 0.3.1: a typo fix over 0.3.0; same wire format.
    V0_3_1,
    /// 0.4.0: the CHECK verb, `prevResult` on DEL, `disableCheck`.
    V0_4_0,
    /// 1.0.0: drops the `version` key of `ips` entries.
    V1_0_0,
    /// 1.1.0: GC and STATUS verbs, `cniVersions`, extra interface and route fields.
    V1_1_0,
}

impl CniVersion {
    /// Every supported version, oldest first.
    pub const SUPPORTED: [CniVersion; 5] =
        [CniVersion::V0_3_0, CniVersion::V0_3_1, CniVersion::V0_4_0, CniVersion::V1_0_0, CniVersion::V1_1_0];

    /// The newest supported version.
    pub const LATEST: CniVersion = CniVersion::V1_1_0;

    /// The version string as it appears on the wire, e.g. `"0.4.0"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::V0_3_0 => "0.3.0",
            Self::V0_3_1 => "0.3.1",
            Self::V0_4_0 => "0.4.0",
            Self::V1_0_0 => "1.0.0",
            Self::V1_1_0 => "1.1.0",
        }
    }

    /// Whether each `ips` entry of a result carries `"version": "4"|"6"` (versions before 1.0.0).
    pub fn has_ip_version_field(self) -> bool {
        self < Self::V1_0_0
    }

    /// Whether results carry the 1.1.0 fields: interface `mtu`/`socketPath`/`pciID` and route
    /// `mtu`/`advmss`/`priority`/`table`/`scope`.
    pub fn has_v1_1_fields(self) -> bool {
        self >= Self::V1_1_0
    }

    /// The supported versions as wire strings, oldest first.
    pub fn supported_strings() -> Vec<String> {
        Self::SUPPORTED.iter().map(|v| v.as_str().to_owned()).collect()
    }
}

/// Why a version string is not a [`CniVersion`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CNI version `{version}` is not supported (supported: {})", supported_list())]
pub struct UnsupportedVersion {
    /// The rejected version string.
    pub version: String,
}

impl From<UnsupportedVersion> for CniError {
    fn from(e: UnsupportedVersion) -> Self {
        CniError::new(ErrorCode::INCOMPATIBLE_VERSION, e.to_string())
    }
}

fn supported_list() -> String {
    CniVersion::supported_strings().join(", ")
}

impl FromStr for CniVersion {
    type Err = UnsupportedVersion;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CniVersion::SUPPORTED
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnsupportedVersion { version: s.to_owned() })
    }
}

impl fmt::Display for CniVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for CniVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CniVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Picks the protocol version for a configuration.
///
/// Following the specification's version selection, the candidates are `cni_version` together with
/// every entry of `cni_versions` when that list is present, and the highest candidate this crate
/// supports wins; entries naming unknown (e.g. future) versions are skipped. Without `cni_versions`,
/// `cni_version` alone must be supported. When no candidate is supported the error has code 1
/// ([`ErrorCode::INCOMPATIBLE_VERSION`]) and names the offered versions.
pub fn negotiate(cni_version: &str, cni_versions: Option<&[String]>) -> Result<CniVersion, CniError> {
    let Some(list) = cni_versions else {
        return cni_version.parse::<CniVersion>().map_err(CniError::from);
    };
    let best = list
        .iter()
        .map(String::as_str)
        .chain((!cni_version.is_empty()).then_some(cni_version))
        .filter_map(|v| v.parse::<CniVersion>().ok())
        .max();
    best.ok_or_else(|| {
        let mut offered: Vec<String> = list.iter().map(|v| format!("`{v}`")).collect();
        if !cni_version.is_empty() {
            offered.insert(0, format!("`{cni_version}`"));
        }
        let offered = if offered.is_empty() { "none".to_owned() } else { offered.join(", ") };
        CniError::new(
            ErrorCode::INCOMPATIBLE_VERSION,
            format!(
                "no supported CNI version among cniVersion/cniVersions {offered} (supported: {})",
                supported_list()
            ),
        )
    })
}

/// The output of the `VERSION` verb: `{"cniVersion": ..., "supportedVersions": [...]}`.
///
/// Version strings are kept as given so that a delegate's answer listing versions this crate does not
/// speak (e.g. `0.1.0`) still parses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    /// The `cniVersion` the runtime gave on input, echoed back.
    pub cni_version: String,
    /// Every version the plugin supports.
    pub supported_versions: Vec<String>,
}

impl VersionInfo {
    /// This crate's answer to `VERSION`, echoing the runtime's `cniVersion`
    /// (the newest supported version when the runtime gave none).
    pub fn ours(input_version: &str) -> Self {
        let cni_version = if input_version.is_empty() { CniVersion::LATEST.as_str() } else { input_version };
        Self { cni_version: cni_version.to_owned(), supported_versions: CniVersion::supported_strings() }
    }

    /// Whether the plugin that answered lists `version`.
    pub fn supports(&self, version: CniVersion) -> bool {
        self.supported_versions.iter().any(|v| v == version.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_displays_and_orders() {
        for v in CniVersion::SUPPORTED {
            assert_eq!(v.as_str().parse::<CniVersion>(), Ok(v));
            assert_eq!(v.to_string(), v.as_str());
        }
        assert!(CniVersion::V0_3_0 < CniVersion::V0_3_1);
        assert!(CniVersion::V0_4_0 < CniVersion::V1_0_0);
        assert_eq!(CniVersion::SUPPORTED.iter().max(), Some(&CniVersion::LATEST));
        assert!("0.2.0".parse::<CniVersion>().is_err());
        assert!("1.1".parse::<CniVersion>().is_err());
        assert!(CniVersion::V0_4_0.has_ip_version_field());
        assert!(!CniVersion::V1_0_0.has_ip_version_field());
        assert!(!CniVersion::V1_0_0.has_v1_1_fields());
        assert!(CniVersion::V1_1_0.has_v1_1_fields());
    }

    #[test]
    fn serde_as_string() {
        assert_eq!(serde_json::to_string(&CniVersion::V0_3_1).ok().as_deref(), Some("\"0.3.1\""));
        assert_eq!(serde_json::from_str::<CniVersion>("\"1.0.0\"").ok(), Some(CniVersion::V1_0_0));
        assert!(serde_json::from_str::<CniVersion>("\"9.9.9\"").is_err());
    }

    #[test]
    fn negotiation_picks_highest_supported() {
        assert_eq!(negotiate("0.4.0", None), Ok(CniVersion::V0_4_0));
        let list = strings(&["0.3.1", "1.1.0", "1.0.0"]);
        assert_eq!(negotiate("1.0.0", Some(&list)), Ok(CniVersion::V1_1_0));
        let future = strings(&["1.0.0", "2.0.0", "garbage"]);
        assert_eq!(negotiate("1.0.0", Some(&future)), Ok(CniVersion::V1_0_0));
        // cniVersion is a candidate too.
        assert_eq!(negotiate("1.1.0", Some(&strings(&["0.3.1"]))), Ok(CniVersion::V1_1_0));
        assert_eq!(negotiate("", Some(&strings(&["0.4.0"]))), Ok(CniVersion::V0_4_0));
    }

    #[test]
    fn negotiation_failure_is_code_1_naming_versions() {
        let e = negotiate("0.2.0", None).err();
        assert_eq!(e.as_ref().map(|e| e.code), Some(ErrorCode::INCOMPATIBLE_VERSION));
        assert!(e.is_some_and(|e| e.msg.contains("0.2.0")));
        let e = negotiate("0.1.0", Some(&strings(&["0.2.0", "3.0.0"]))).err();
        assert_eq!(e.as_ref().map(|e| e.code), Some(ErrorCode::INCOMPATIBLE_VERSION));
        assert!(e.is_some_and(|e| e.msg.contains("0.1.0") && e.msg.contains("3.0.0")));
        assert!(negotiate("", Some(&[])).is_err());
    }

    #[test]
    fn version_info_wire_format() {
        let info = VersionInfo::ours("0.4.0");
        let json = serde_json::to_value(&info).ok();
        let expected = serde_json::json!({
            "cniVersion": "0.4.0",
            "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
        });
        assert_eq!(json, Some(expected));
        assert_eq!(VersionInfo::ours("").cni_version, "1.1.0");
        let theirs: Option<VersionInfo> =
            serde_json::from_str(r#"{"cniVersion":"1.0.0","supportedVersions":["0.1.0","0.2.0","1.0.0"]}"#).ok();
        assert!(theirs.as_ref().is_some_and(|t| t.supports(CniVersion::V1_0_0)));
        assert!(theirs.is_some_and(|t| !t.supports(CniVersion::V1_1_0)));
    }
}

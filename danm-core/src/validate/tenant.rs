//! TenantConfig rules 1–6, and the `vniRange` syntax.

use std::fmt;
use std::ops::RangeInclusive;

use super::error::{ValidationErrors, Violation};
use super::names::{self, MAX_INTERFACE_NAME_LEN};
use super::network::{MAX_NETWORK_ID_LEN_WITH_VNI, VLAN_RANGE, VXLAN_RANGE};
use crate::model::{IfaceProfile, TenantConfig};

/// The admission operation a TenantConfig is validated for.
#[derive(Debug, Clone, Copy)]
pub enum TenantConfigOperation<'a> {
    /// The TenantConfig is being created.
    Create,
    /// The TenantConfig is being updated.
    Update {
        /// The stored TenantConfig before the update. No rule compares with it today.
        old: &'a TenantConfig,
    },
}

/// The kind of ID an interface profile hands out, from its `vniType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VniType {
    /// `vlan`: VLAN IDs 1–4094.
    Vlan,
    /// `vxlan`: VXLAN network identifiers 1–16777214.
    Vxlan,
}

impl VniType {
    /// Parses a `vniType` value (`vlan` or `vxlan`, exactly).
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "vlan" => Some(Self::Vlan),
            "vxlan" => Some(Self::Vxlan),
            _ => None,
        }
    }

    /// The IDs valid for this type.
    pub fn range(self) -> RangeInclusive<i64> {
        match self {
            Self::Vlan => VLAN_RANGE,
            Self::Vxlan => VXLAN_RANGE,
        }
    }

    /// The `vniType` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vlan => "vlan",
            Self::Vxlan => "vxlan",
        }
    }
}

impl fmt::Display for VniType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a `vniRange` value does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{part:?} is neither an ID nor an ID range like 2000-2500")]
pub struct VniRangeParseError {
    /// The comma-separated part that is at fault.
    pub part: String,
}

/// Parses a `vniRange` value in cpuset-list syntax (`"2000-2500,2601"`) into inclusive ranges, in the order
/// given. IDs are decimal digits; a range's start may not exceed its end. The empty string is no IDs.
pub fn parse_vni_range(value: &str) -> Result<Vec<RangeInclusive<i64>>, VniRangeParseError> {
    if value.is_empty() {
        return Ok(Vec::new());
    }
    value
        .split(',')
        .map(|part| {
            let err = || VniRangeParseError { part: part.to_owned() };
            let (lo, hi) = part.split_once('-').unwrap_or((part, part));
            let (lo, hi) = (parse_id(lo).ok_or_else(err)?, parse_id(hi).ok_or_else(err)?);
            if lo > hi { Err(err()) } else { Ok(lo..=hi) }
        })
        .collect()
}

fn parse_id(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Validates a TenantConfig: upstream rules 1–6, with `vniRange` checked against its `vniType`'s ID range,
/// profile names checked as interface or device pool names, and every `networkIds` value a plugin name,
/// of at most 10 characters for the types with host VLAN/VXLAN interfaces (ipvlan, macvlan, sriov). All violations are reported, not just the first.
pub fn validate_tenant_config(tc: &TenantConfig, op: &TenantConfigOperation<'_>) -> Result<(), ValidationErrors> {
    let mut errs = ValidationErrors::default();
    if tc.host_devices.is_empty() && tc.network_ids.is_empty() {
        errs.push("hostDevices", Violation::TenantConfigEmpty, "either hostDevices or networkIds must be given");
    }
    let creating = matches!(op, TenantConfigOperation::Create);
    for (i, profile) in tc.host_devices.iter().enumerate() {
        check_profile(&format!("hostDevices[{i}]"), profile, creating, &mut errs);
    }
    for (network_type, network_id) in &tc.network_ids {
        let field = format!("networkIds[{network_type:?}]");
        if network_type.is_empty() || network_id.is_empty() {
            errs.push(
                &field,
                Violation::EmptyNetworkIdMapping,
                "neither the NetworkType nor the NetworkID of a mapping may be empty",
            );
        }
        if !network_type.is_empty() {
            errs.check(names::plugin_name(&field, network_type));
        }
        if !network_id.is_empty() {
            errs.check(names::plugin_name(&field, network_id));
            // Rule 6, as upstream: only types DANM builds host VLAN/VXLAN interfaces for are limited. For the
            // others, a TenantNetwork's own check after the mutation (rule 18) still applies.
            let dynamic = matches!(network_type.to_ascii_lowercase().as_str(), "ipvlan" | "macvlan" | "sriov");
            if dynamic && network_id.len() > MAX_NETWORK_ID_LEN_WITH_VNI {
                errs.push(
                    &field,
                    Violation::NetworkIdTooLong,
                    format!(
                        "NetworkID {network_id:?} is longer than {MAX_NETWORK_ID_LEN_WITH_VNI} characters, too long \
                         for the host VLAN/VXLAN interface names"
                    ),
                );
            }
        }
    }
    errs.into_result()
}

/// Rules 2–4 for one interface profile at `path`.
fn check_profile(path: &str, profile: &IfaceProfile, creating: bool, errs: &mut ValidationErrors) {
    let name_field = format!("{path}.name");
    if profile.name.is_empty() {
        errs.push(&name_field, Violation::MissingProfileName, "an interface profile needs a name");
    } else if profile.is_device_pool() {
        if !names::is_device_pool_name(&profile.name) {
            errs.push(
                &name_field,
                Violation::InvalidProfileName,
                format!("{:?} contains '/' but is not a valid device pool name", profile.name),
            );
        }
    } else if let Err(why) = names::interface_name_reason(&profile.name) {
        errs.push(
            &name_field,
            Violation::InvalidProfileName,
            format!(
                "{:?} is neither a valid interface name of at most {MAX_INTERFACE_NAME_LEN} bytes ({why}) nor a \
                 device pool name",
                profile.name
            ),
        );
    }

    let type_field = format!("{path}.vniType");
    let range_field = format!("{path}.vniRange");
    let vni_type = if profile.vni_type.is_empty() {
        if !profile.vni_range.is_empty() {
            errs.push(&type_field, Violation::VniTypeWithoutRange, "vniRange needs vniType");
        }
        None
    } else {
        if profile.vni_range.is_empty() {
            errs.push(&range_field, Violation::VniTypeWithoutRange, "vniType needs vniRange");
        }
        let parsed = VniType::parse(&profile.vni_type);
        if parsed.is_none() {
            errs.push(
                &type_field,
                Violation::InvalidVniType,
                format!("{:?} is not a vniType: use vlan or vxlan", profile.vni_type),
            );
        }
        parsed
    };

    if creating && !profile.alloc.is_empty() {
        errs.push(format!("{path}.alloc"), Violation::ProfileAllocOnCreate, "alloc may not be set on create");
    }

    match parse_vni_range(&profile.vni_range) {
        Err(e) => errs.push(&range_field, Violation::InvalidVniRange, format!("vniRange does not parse: {e}")),
        Ok(ranges) => {
            let Some(vni_type) = vni_type else { return };
            let allowed = vni_type.range();
            if let Some(bad) = ranges.iter().find(|r| !allowed.contains(r.start()) || !allowed.contains(r.end())) {
                errs.push(
                    &range_field,
                    Violation::VniRangeOutOfRange,
                    format!(
                        "{}-{} is outside the {vni_type} ID range {}-{}",
                        bad.start(),
                        bad.end(),
                        allowed.start(),
                        allowed.end()
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vni_ranges_parse() {
        assert_eq!(parse_vni_range(""), Ok(vec![]));
        assert_eq!(parse_vni_range("7"), Ok(vec![7..=7]));
        assert_eq!(parse_vni_range("2000-2500,2601"), Ok(vec![2000..=2500, 2601..=2601]));
        assert_eq!(parse_vni_range("5-5"), Ok(vec![5..=5]));
        for bad in [",", "1,", ",1", "a", "1-", "-1", "1-2-3", "5-4", " 1", "+1", "1 - 2", "99999999999999999999"] {
            assert!(parse_vni_range(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn vni_types() {
        assert_eq!(VniType::parse("vlan"), Some(VniType::Vlan));
        assert_eq!(VniType::parse("vxlan"), Some(VniType::Vxlan));
        assert_eq!(VniType::parse("VLAN"), None);
        assert_eq!(VniType::Vxlan.range(), 1..=16_777_214);
        assert_eq!(VniType::Vlan.to_string(), "vlan");
    }
}

//! Network rules: which rule applies to which kind, and the rules that are not about addressing.

use super::addressing;
use super::error::{ValidationErrors, Violation};
use super::names::{self, MAX_INTERFACE_NAME_LEN};
use crate::model::{Network, NetworkKind, NetworkOptions, NetworkSpec};

/// The longest NetworkID of a network with a VLAN or VXLAN: `<NetworkID>.<vlan>` with a 4-digit VLAN ID
/// must fit a kernel interface name.
pub const MAX_NETWORK_ID_LEN_WITH_VNI: usize = 10;
/// VLAN IDs danm-rs accepts in `vlan`.
pub const VLAN_RANGE: std::ops::RangeInclusive<i64> = 1..=4094;
/// VXLAN network identifiers danm-rs accepts in `vxlan`.
pub const VXLAN_RANGE: std::ops::RangeInclusive<i64> = 1..=16_777_214;
/// Routing table IDs accepted in `rt_tables` (0 disables policy routing).
pub const RT_TABLES_RANGE: std::ops::RangeInclusive<i64> = 0..=255;
/// MTUs accepted in `mtu`.
pub const MTU_RANGE: std::ops::RangeInclusive<i64> = 68..=65535;
/// The MTU of a network that does not set `mtu`.
pub const DEFAULT_MTU: i64 = 1500;
/// The NetworkType of SR-IOV networks (compared without regard to ASCII case, as the CNI does).
pub const SRIOV: &str = "sriov";

const NETWORK_ID: &str = "spec.NetworkID";
const NETWORK_TYPE: &str = "spec.NetworkType";
const ALLOWED_TENANTS: &str = "spec.AllowedTenants";
const HOST_DEVICE: &str = "spec.Options.host_device";
const DEVICE_POOL: &str = "spec.Options.device_pool";
const CONTAINER_PREFIX: &str = "spec.Options.container_prefix";
const VLAN: &str = "spec.Options.vlan";
const VXLAN: &str = "spec.Options.vxlan";
const RT_TABLES: &str = "spec.Options.rt_tables";
const MTU: &str = "spec.Options.mtu";

/// The admission operation a network is validated for.
#[derive(Debug, Clone, Copy)]
pub enum Operation<'a> {
    /// The network is being created.
    Create,
    /// The network is being updated.
    Update {
        /// The stored network before the update.
        old: &'a Network,
        /// Whether any DanmEp references the network. The caller finds that out; validation only decides.
        in_use: bool,
    },
}

/// Validates a network for create or update, applying each rule to the kinds it is meant for.
///
/// Every kind: addressing rules 1–16, rule 20, M1 (update), and the danm-rs name and range rules.
/// DanmNet and ClusterNetwork: rules 17, 18 and 21 (update). DanmNet and TenantNetwork: rule 19.
/// TenantNetwork: T1–T2 (create) and T3–T6 (update); its rule 18 runs after the TenantConfig mutation, in
/// [`validate_tenant_network_mutated`]. All violations are reported, not just the first.
pub fn validate_network(net: &Network, op: &Operation<'_>) -> Result<(), ValidationErrors> {
    let spec = &net.spec;
    let mut errs = ValidationErrors::default();
    check_names(spec, &mut errs);
    check_ranges(&spec.options, &mut errs);
    addressing::check(&spec.options, matches!(op, Operation::Create), &mut errs);
    let kind = net.kind;
    if matches!(kind, NetworkKind::DanmNet | NetworkKind::ClusterNetwork) {
        check_vni_exclusive(&spec.options, &mut errs);
        check_network_id(spec, &mut errs);
    }
    if matches!(kind, NetworkKind::DanmNet | NetworkKind::TenantNetwork) && !spec.allowed_tenants.is_empty() {
        errs.push(
            ALLOWED_TENANTS,
            Violation::AllowedTenantsForbidden,
            format!("AllowedTenants is only valid for ClusterNetwork, not for {kind}"),
        );
    }
    check_device_kind(spec, &mut errs);
    match *op {
        Operation::Create => {
            if kind == NetworkKind::TenantNetwork {
                check_tenant_create(&spec.options, &mut errs);
            }
        }
        Operation::Update { old, in_use } => {
            let old_opts = &old.spec.options;
            if kind == NetworkKind::TenantNetwork {
                check_tenant_update(old_opts, &spec.options, &mut errs);
            } else if in_use {
                check_vni_change(old_opts, &spec.options, &mut errs);
            }
            if in_use {
                check_mtu_change(old_opts, &spec.options, &mut errs);
            }
        }
    }
    errs.into_result()
}

/// Validates a TenantNetwork after the TenantConfig mutation filled in its NetworkID, `host_device` and
/// VLAN/VXLAN: rule 18, rule 17, and the name and range rules of the fields the mutation writes.
pub fn validate_tenant_network_mutated(net: &Network) -> Result<(), ValidationErrors> {
    let spec = &net.spec;
    let opts = &spec.options;
    let mut errs = ValidationErrors::default();
    if !spec.network_id.is_empty() {
        errs.check(names::plugin_name(NETWORK_ID, &spec.network_id));
    }
    check_network_id(spec, &mut errs);
    if !opts.host_device.is_empty() {
        errs.check(names::interface_name(HOST_DEVICE, &opts.host_device));
    }
    check_range(VLAN, opts.vlan, VLAN_RANGE, Violation::VlanOutOfRange, &mut errs);
    check_range(VXLAN, opts.vxlan, VXLAN_RANGE, Violation::VxlanOutOfRange, &mut errs);
    check_vni_exclusive(opts, &mut errs);
    errs.into_result()
}

/// Rule D1: a network may not be deleted while `endpoints_in_use` DanmEps reference it.
pub fn validate_network_delete(net: &Network, endpoints_in_use: usize) -> Result<(), ValidationErrors> {
    let mut errs = ValidationErrors::default();
    if endpoints_in_use > 0 {
        let noun = if endpoints_in_use == 1 { "endpoint" } else { "endpoints" };
        errs.push(
            "metadata.name",
            Violation::DeleteWhileInUse,
            format!("{} is still used by {endpoints_in_use} {noun}", net.key()),
        );
    }
    errs.into_result()
}

/// danm-rs: NetworkType and NetworkID are plugin names; host_device and container_prefix make interface
/// names; device_pool is a resource name; AllowedTenants holds namespace names.
fn check_names(spec: &NetworkSpec, errs: &mut ValidationErrors) {
    if !spec.network_type.is_empty() {
        errs.check(names::plugin_name(NETWORK_TYPE, &spec.network_type));
    }
    if !spec.network_id.is_empty() {
        errs.check(names::plugin_name(NETWORK_ID, &spec.network_id));
    }
    let opts = &spec.options;
    if !opts.host_device.is_empty() {
        errs.check(names::interface_name(HOST_DEVICE, &opts.host_device));
    }
    if !opts.device_pool.is_empty() {
        errs.check(names::device_pool_name(DEVICE_POOL, &opts.device_pool));
    }
    if !opts.container_prefix.is_empty() {
        let longest = format!("{}99", opts.container_prefix);
        if let Err(why) = names::interface_name_reason(&longest) {
            errs.push(
                CONTAINER_PREFIX,
                Violation::InvalidContainerPrefix,
                format!(
                    "{:?} leaves no room for a 2-digit sequence number in a {MAX_INTERFACE_NAME_LEN}-byte \
                     interface name: {longest:?} is invalid ({why})",
                    opts.container_prefix
                ),
            );
        }
    }
    for (i, tenant) in spec.allowed_tenants.iter().enumerate() {
        errs.check(names::namespace_name(&format!("{ALLOWED_TENANTS}[{i}]"), tenant));
    }
}

/// danm-rs: integer options within their ranges.
fn check_ranges(opts: &NetworkOptions, errs: &mut ValidationErrors) {
    check_range(VLAN, opts.vlan, VLAN_RANGE, Violation::VlanOutOfRange, errs);
    check_range(VXLAN, opts.vxlan, VXLAN_RANGE, Violation::VxlanOutOfRange, errs);
    check_range(RT_TABLES, opts.rt_tables, RT_TABLES_RANGE, Violation::RtTablesOutOfRange, errs);
    check_range(MTU, opts.mtu, MTU_RANGE, Violation::MtuOutOfRange, errs);
}

fn check_range(
    field: &str,
    value: Option<i64>,
    range: std::ops::RangeInclusive<i64>,
    violation: Violation,
    errs: &mut ValidationErrors,
) {
    if let Some(v) = value
        && !range.contains(&v)
    {
        errs.push(field, violation, format!("{v} is outside {}–{}", range.start(), range.end()));
    }
}

/// Rule 17.
fn check_vni_exclusive(opts: &NetworkOptions, errs: &mut ValidationErrors) {
    if opts.vlan.is_some() && opts.vxlan.is_some() {
        errs.push(VXLAN, Violation::VlanAndVxlan, "vlan and vxlan are mutually exclusive");
    }
}

/// Rule 18: NetworkID is mandatory, and short enough for `<NetworkID>.<vlan>` and `vx_<NetworkID>` when a
/// VLAN or VXLAN is set, whatever the type.
fn check_network_id(spec: &NetworkSpec, errs: &mut ValidationErrors) {
    let id = &spec.network_id;
    if id.is_empty() {
        errs.push(NETWORK_ID, Violation::MissingNetworkId, "NetworkID is mandatory");
    } else if (spec.options.vlan.is_some() || spec.options.vxlan.is_some()) && id.len() > MAX_NETWORK_ID_LEN_WITH_VNI {
        errs.push(
            NETWORK_ID,
            Violation::NetworkIdTooLong,
            format!(
                "{id:?} is {} bytes long; with vlan or vxlan set it may have at most {MAX_NETWORK_ID_LEN_WITH_VNI}, \
                 so that the host interface names <NetworkID>.<vlan> and vx_<NetworkID> fit \
                 {MAX_INTERFACE_NAME_LEN} bytes",
                id.len()
            ),
        );
    }
}

/// Rule 20.
fn check_device_kind(spec: &NetworkSpec, errs: &mut ValidationErrors) {
    let opts = &spec.options;
    if spec.network_type.eq_ignore_ascii_case(SRIOV) {
        if opts.device_pool.is_empty() {
            errs.push(DEVICE_POOL, Violation::SriovWithoutDevicePool, "an sriov network needs device_pool");
        }
        if !opts.host_device.is_empty() {
            errs.push(HOST_DEVICE, Violation::SriovWithHostDevice, "an sriov network may not set host_device");
        }
    } else if !opts.host_device.is_empty() && !opts.device_pool.is_empty() {
        errs.push(DEVICE_POOL, Violation::HostDeviceAndDevicePool, "host_device and device_pool may not both be set");
    }
}

/// Rules T1–T2: VLAN and VXLAN IDs of a TenantNetwork come from the TenantConfig, not from the user.
fn check_tenant_create(opts: &NetworkOptions, errs: &mut ValidationErrors) {
    for (field, value) in [(VLAN, opts.vlan), (VXLAN, opts.vxlan)] {
        if value.is_some() {
            errs.push(field, Violation::TenantVniOnCreate, "a TenantNetwork may not set vlan or vxlan");
        }
    }
}

/// Rules T3–T6: a TenantNetwork's physical attributes never change.
fn check_tenant_update(old: &NetworkOptions, new: &NetworkOptions, errs: &mut ValidationErrors) {
    let changed = [
        (HOST_DEVICE, old.host_device != new.host_device),
        (DEVICE_POOL, old.device_pool != new.device_pool),
        (VLAN, old.vlan != new.vlan),
        (VXLAN, old.vxlan != new.vxlan),
    ];
    for (field, differs) in changed {
        if differs {
            errs.push(field, Violation::TenantPhysicalChange, "a TenantNetwork may not change this attribute");
        }
    }
}

/// Rule 21: while pods use a VLAN or VXLAN network, its ID and its host device stay as they are.
fn check_vni_change(old: &NetworkOptions, new: &NetworkOptions, errs: &mut ValidationErrors) {
    let has_vni = old.vlan.is_some() || old.vxlan.is_some();
    if !has_vni {
        return;
    }
    let changed = [
        (VLAN, old.vlan.is_some() && old.vlan != new.vlan),
        (VXLAN, old.vxlan.is_some() && old.vxlan != new.vxlan),
        (HOST_DEVICE, old.host_device != new.host_device),
    ];
    for (field, differs) in changed {
        if differs {
            errs.push(field, Violation::ChangedWhileInUse, "may not change while pods are connected to the network");
        }
    }
}

/// Rule M1: while pods use the network, its MTU (1500 when unset) may not go down.
fn check_mtu_change(old: &NetworkOptions, new: &NetworkOptions, errs: &mut ValidationErrors) {
    let before = old.mtu.unwrap_or(DEFAULT_MTU);
    let after = new.mtu.unwrap_or(DEFAULT_MTU);
    if after < before {
        errs.push(
            MTU,
            Violation::MtuLoweredWhileInUse,
            format!("the MTU may not go down from {before} to {after} while pods are connected to the network"),
        );
    }
}

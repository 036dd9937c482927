//! Validation error types: one [`ValidationError`] per broken rule, collected into [`ValidationErrors`].

use std::fmt;

/// Which rule a value broke.
///
/// Rule numbers refer to the admission rule tables of the DANM inventory (section 6): plain numbers are
/// network rules, `T` rules are TenantNetwork rules, `M1` is the MTU rule, `D1` the delete rule and `TC`
/// rules are TenantConfig rules. Rules marked "danm-rs" have no upstream counterpart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Violation {
    /// Rule 1: `cidr` is not an IPv4 CIDR.
    InvalidIpv4Cidr,
    /// Rule 1: the IPv4 prefix is wider than /8.
    Ipv4CidrTooWide,
    /// Rules 2 and 4: routes are given for a family whose subnet (`cidr` or `net6`) is not set.
    RoutesWithoutSubnet,
    /// Rules 2 and 4: a route destination is not a CIDR of the route table's family.
    InvalidRouteDestination,
    /// Rules 2 and 4: a route gateway is not an address of the route table's family.
    InvalidRouteGateway,
    /// Rules 2 and 4: a route gateway lies outside the subnet.
    RouteGatewayOutsideSubnet,
    /// Rule 3: `net6` is not an IPv6 CIDR.
    InvalidIpv6Cidr,
    /// Rules 5 and 6: allocation state (`alloc`, `alloc6`, a pool's `lastIp`) is set on create.
    AllocationStateOnCreate,
    /// Rules 7 and 11: an allocation pool is given without the subnet it belongs to.
    PoolWithoutSubnet,
    /// Rules 8, 9, 12 and 13: a pool boundary is not an address of the pool's family.
    InvalidPoolAddress,
    /// Rules 8, 9, 12 and 13: a pool boundary lies outside the subnet (IPv4) or the pool CIDR (IPv6).
    PoolAddressOutsideSubnet,
    /// Rules 8, 9, 12 and 13 (danm-rs): a pool boundary is the first or the last address of its subnet,
    /// which are reserved.
    PoolAddressReserved,
    /// Rules 10 and 14: the pool's end, with defaults applied, is not after its start.
    PoolEndNotAfterStart,
    /// Rule 15: `allocation_pool_v6.cidr` is not an IPv6 CIDR.
    InvalidIpv6PoolCidr,
    /// Rule 15: `allocation_pool_v6.cidr` does not lie wholly inside `net6`.
    Ipv6PoolOutsideSubnet,
    /// Rule 16 (danm-rs replacement): `net6` is a /128, or the IPv6 pool CIDR is wider than /64 or a /128.
    Ipv6PrefixOutOfRange,
    /// Rule 17: `vlan` and `vxlan` are both set.
    VlanAndVxlan,
    /// Rule 18: `NetworkID` is empty.
    MissingNetworkId,
    /// Rule 18 and TenantConfig rule 6: a NetworkID is too long for the host VLAN/VXLAN interface names.
    NetworkIdTooLong,
    /// Rule 19: `AllowedTenants` is set on a kind other than ClusterNetwork.
    AllowedTenantsForbidden,
    /// Rule 20: an `sriov` network has no `device_pool`.
    SriovWithoutDevicePool,
    /// Rule 20: an `sriov` network sets `host_device`.
    SriovWithHostDevice,
    /// Rule 20: a network that is not `sriov` sets both `host_device` and `device_pool`.
    HostDeviceAndDevicePool,
    /// Rule 21: `vlan`, `vxlan` or `host_device` changes while pods use a VLAN/VXLAN network.
    ChangedWhileInUse,
    /// Rules T1 and T2: a TenantNetwork sets `vlan` or `vxlan` on create.
    TenantVniOnCreate,
    /// Rules T3 to T6: a TenantNetwork update changes `host_device`, `device_pool`, `vlan` or `vxlan`.
    TenantPhysicalChange,
    /// Rule M1: the MTU is lowered while pods use the network.
    MtuLoweredWhileInUse,
    /// Rule D1: the network is deleted while endpoints reference it.
    DeleteWhileInUse,
    /// danm-rs: `NetworkType`, `NetworkID` or a `networkIds` entry is not a plugin name.
    InvalidPluginName,
    /// danm-rs: `host_device` is not a kernel interface name.
    InvalidInterfaceName,
    /// danm-rs: `container_prefix` plus a 2-digit sequence number is not a kernel interface name.
    InvalidContainerPrefix,
    /// danm-rs: `device_pool` is not a device-plugin resource name.
    InvalidDevicePoolName,
    /// danm-rs: `vlan` is outside 1–4094.
    VlanOutOfRange,
    /// danm-rs: `vxlan` is outside 1–16777214.
    VxlanOutOfRange,
    /// danm-rs: `rt_tables` is outside 0–255.
    RtTablesOutOfRange,
    /// danm-rs: `mtu` is outside 68–65535.
    MtuOutOfRange,
    /// danm-rs: an `AllowedTenants` entry is not a namespace name.
    InvalidNamespaceName,
    /// TenantConfig rule 1: neither `hostDevices` nor `networkIds` is given.
    TenantConfigEmpty,
    /// TenantConfig rule 2: an interface profile has no `name`.
    MissingProfileName,
    /// TenantConfig rule 2 (danm-rs): a profile name is neither an interface name nor a device pool name.
    InvalidProfileName,
    /// TenantConfig rule 2: only one of `vniType` and `vniRange` is given.
    VniTypeWithoutRange,
    /// TenantConfig rule 2: `vniType` is neither `vlan` nor `vxlan`.
    InvalidVniType,
    /// TenantConfig rule 3: a profile's `alloc` is set on create.
    ProfileAllocOnCreate,
    /// TenantConfig rule 4: `vniRange` does not parse as a list of IDs and ID ranges.
    InvalidVniRange,
    /// TenantConfig rule 4 (danm-rs range): `vniRange` holds an ID outside the range of its `vniType`.
    VniRangeOutOfRange,
    /// TenantConfig rule 5: a `networkIds` key or value is empty.
    EmptyNetworkIdMapping,
    /// TenantConfig mutation (danm-rs): a profile's `alloc` is not a VNI bitmask, or its `vniRange` reaches
    /// past the largest bitmask a TenantConfig holds.
    InvalidVniAlloc,
    /// TenantNetwork mutation: there is no TenantConfig to take the network's attributes from.
    NoTenantConfig,
    /// TenantNetwork mutation: the `host_device` or `device_pool` asked for is not a profile of the
    /// TenantConfig.
    ProfileNotAllowed,
    /// TenantNetwork mutation: the TenantConfig has no interface profile a network could be put on.
    NoSuitableProfile,
    /// TenantNetwork mutation: every ID of the profile's `vniRange` is reserved.
    VniExhausted,
    /// Pod admission (danm-rs): the interfaces annotation does not parse or breaks its schema.
    InvalidPodAnnotation,
    /// Pod admission (danm-rs): the pod's namespace is not among a ClusterNetwork's `AllowedTenants`.
    NetworkAccessDenied,
    /// Pod admission (danm-rs): a static address lies outside the network's subnet of its family.
    StaticAddressOutsideSubnet,
}

impl Violation {
    /// The number of the rule in the inventory's rule tables, e.g. `"1"`, `"T3"`, `"TC4"`, or `"danm-rs"`
    /// for a rule without an upstream counterpart; `"TM"` for the TenantNetwork mutation (profile and VNI
    /// from the TenantConfig) and `"pod"` for the pod interfaces annotation at admission.
    pub fn rule(self) -> &'static str {
        use Violation::*;
        match self {
            InvalidIpv4Cidr | Ipv4CidrTooWide => "1",
            RoutesWithoutSubnet | InvalidRouteDestination | InvalidRouteGateway | RouteGatewayOutsideSubnet => "2/4",
            InvalidIpv6Cidr => "3",
            AllocationStateOnCreate => "5-6",
            PoolWithoutSubnet => "7/11",
            InvalidPoolAddress | PoolAddressOutsideSubnet | PoolAddressReserved => "8-9/12-13",
            PoolEndNotAfterStart => "10/14",
            InvalidIpv6PoolCidr | Ipv6PoolOutsideSubnet => "15",
            Ipv6PrefixOutOfRange => "16",
            VlanAndVxlan => "17",
            MissingNetworkId | NetworkIdTooLong => "18",
            AllowedTenantsForbidden => "19",
            SriovWithoutDevicePool | SriovWithHostDevice | HostDeviceAndDevicePool => "20",
            ChangedWhileInUse => "21",
            TenantVniOnCreate => "T1-T2",
            TenantPhysicalChange => "T3-T6",
            MtuLoweredWhileInUse => "M1",
            DeleteWhileInUse => "D1",
            InvalidPluginName
            | InvalidInterfaceName
            | InvalidContainerPrefix
            | InvalidDevicePoolName
            | VlanOutOfRange
            | VxlanOutOfRange
            | RtTablesOutOfRange
            | MtuOutOfRange
            | InvalidNamespaceName => "danm-rs",
            TenantConfigEmpty => "TC1",
            MissingProfileName | InvalidProfileName | VniTypeWithoutRange | InvalidVniType => "TC2",
            ProfileAllocOnCreate => "TC3",
            InvalidVniRange | VniRangeOutOfRange => "TC4",
            EmptyNetworkIdMapping => "TC5",
            InvalidVniAlloc => "TC3",
            NoTenantConfig | ProfileNotAllowed | NoSuitableProfile | VniExhausted => "TM",
            InvalidPodAnnotation | NetworkAccessDenied | StaticAddressOutsideSubnet => "pod",
        }
    }
}

/// One broken rule: the field at fault, the rule, and a message for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// The path of the offending field, e.g. `spec.Options.cidr`, `spec.Options.routes["10.0.0.0/8"]` or
    /// `hostDevices[1].vniRange`.
    pub field: String,
    /// The rule that was broken.
    pub violation: Violation,
    /// What is wrong, in words.
    pub message: String,
}

impl ValidationError {
    /// An error for `field`.
    pub fn new(field: impl Into<String>, violation: Violation, message: impl Into<String>) -> Self {
        Self { field: field.into(), violation, message: message.into() }
    }
}

/// Every rule an object broke, in the order the checks ran. Never empty when returned as an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl ValidationErrors {
    /// Whether any error is of `violation`.
    pub fn has(&self, violation: Violation) -> bool {
        self.0.iter().any(|e| e.violation == violation)
    }

    /// Whether any error names `field`.
    pub fn has_field(&self, field: &str) -> bool {
        self.0.iter().any(|e| e.field == field)
    }

    /// Whether an error names `field` with `violation`.
    pub fn contains(&self, field: &str, violation: Violation) -> bool {
        self.0.iter().any(|e| e.field == field && e.violation == violation)
    }

    /// The errors that name `field`.
    pub fn for_field<'a>(&'a self, field: &'a str) -> impl Iterator<Item = &'a ValidationError> + 'a {
        self.0.iter().filter(move |e| e.field == field)
    }

    /// The errors, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, ValidationError> {
        self.0.iter()
    }

    /// How many errors there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when empty, the errors otherwise.
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }

    /// Appends one error.
    pub(crate) fn push(&mut self, field: impl Into<String>, violation: Violation, message: impl Into<String>) {
        self.0.push(ValidationError::new(field, violation, message));
    }

    /// Appends the error of a single check, if it failed.
    pub(crate) fn check(&mut self, result: Result<(), ValidationError>) {
        if let Err(e) = result {
            self.0.push(e);
        }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [] => f.write_str("no validation errors"),
            [one] => write!(f, "{one}"),
            many => {
                write!(f, "{} validation errors: ", many.len())?;
                for (i, e) in many.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ValidationErrors {}

impl From<ValidationError> for ValidationErrors {
    fn from(e: ValidationError) -> Self {
        Self(vec![e])
    }
}

impl IntoIterator for ValidationErrors {
    type Item = ValidationError;
    type IntoIter = std::vec::IntoIter<ValidationError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a ValidationErrors {
    type Item = &'a ValidationError;
    type IntoIter = std::slice::Iter<'a, ValidationError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_lookups() {
        let mut errs = ValidationErrors::default();
        assert_eq!(errs.to_string(), "no validation errors");
        assert_eq!(errs.clone().into_result(), Ok(()));
        errs.push("spec.Options.cidr", Violation::Ipv4CidrTooWide, "too wide");
        assert_eq!(errs.to_string(), "spec.Options.cidr: too wide");
        errs.push("spec.Options.vlan", Violation::VlanOutOfRange, "0 is outside 1–4094");
        assert_eq!(
            errs.to_string(),
            "2 validation errors: spec.Options.cidr: too wide; spec.Options.vlan: 0 is outside 1–4094"
        );
        assert!(errs.contains("spec.Options.vlan", Violation::VlanOutOfRange));
        assert!(!errs.contains("spec.Options.cidr", Violation::VlanOutOfRange));
        assert_eq!(errs.for_field("spec.Options.cidr").count(), 1);
        assert_eq!(Violation::Ipv4CidrTooWide.rule(), "1");
        assert_eq!(Violation::TenantPhysicalChange.rule(), "T3-T6");
        assert!(errs.into_result().is_err());
    }
}

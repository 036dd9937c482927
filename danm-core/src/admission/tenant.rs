//! TenantNetworks and TenantConfigs at admission, without I/O: which TenantConfig and which interface
//! profile a TenantNetwork gets, which VNI, which NetworkID; and the TenantConfig's own mutation.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;

use super::alloc::{VniAlloc, VniAllocError};
use crate::model::{IfaceProfile, Network, TenantConfig};
use crate::validate::{
    TenantConfigOperation, ValidationErrors, Violation, VniType, parse_vni_range, validate_tenant_config,
};

const HOST_DEVICE: &str = "spec.Options.host_device";
const DEVICE_POOL: &str = "spec.Options.device_pool";

/// Whether DANM picks an interface profile for networks of this NetworkType: the types with host
/// interfaces or devices (`ipvlan`, the empty default, `macvlan`, `sriov`), compared without regard to
/// ASCII case. Other types are static delegates and only get their NetworkID from the TenantConfig.
pub fn is_dynamic_type(network_type: &str) -> bool {
    matches!(network_type.to_ascii_lowercase().as_str(), "" | "ipvlan" | "macvlan" | "sriov")
}

/// Picks the TenantConfig for a TenantNetwork in `namespace`: the one named like the namespace when there
/// is one, otherwise the first by name. Upstream used whichever the API server listed first; this keeps
/// that for a cluster with one TenantConfig and makes the choice predictable with several. Returns the
/// index into `configs`.
pub fn select_tenant_config<'a>(namespace: &str, configs: impl IntoIterator<Item = &'a TenantConfig>) -> Option<usize> {
    let mut first: Option<(usize, &str)> = None;
    for (i, tc) in configs.into_iter().enumerate() {
        let name = tc.metadata.name.as_str();
        if name == namespace {
            return Some(i);
        }
        if first.is_none_or(|(_, n)| name < n) {
            first = Some((i, name));
        }
    }
    first.map(|(i, _)| i)
}

/// A VNI to reserve in a TenantConfig for a TenantNetwork.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VniReservation {
    /// The TenantConfig's name.
    pub tenant_config: String,
    /// The profile's index in `hostDevices`.
    pub profile: usize,
    /// The profile's name.
    pub profile_name: String,
    /// VLAN or VXLAN.
    pub vni_type: VniType,
    /// The ID.
    pub vni: i64,
}

/// What the TenantConfig makes of a TenantNetwork: the network with its profile, VNI and NetworkID filled
/// in, and the VNI to reserve for it.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantNetworkPlan {
    /// The mutated network.
    pub network: Network,
    /// The VNI to reserve, when the chosen profile hands one out.
    pub reservation: Option<VniReservation>,
}

/// Fills a new TenantNetwork in from a TenantConfig, as upstream's webhook did, deciding only:
///
/// - for a dynamic type ([`is_dynamic_type`]) an interface profile: the one named by `device_pool`, or by
///   `host_device` (never a device pool), or, when neither is given, the host interface profile with the
///   most free IDs (a profile without `vniType` counts as unlimited; ties go to the first listed), where
///   upstream picked one at random. The profile's name goes into `host_device` when neither was given;
///   when the profile has a `vniType`, the lowest free ID of its `vniRange` goes into `vlan` or `vxlan`;
/// - for every type, the NetworkID: `networkIds[NetworkType]` (type compared without regard to case)
///   overrides the user's.
///
/// A dynamic type needs a TenantConfig; a static delegate type without one keeps its NetworkID.
pub fn plan_tenant_network(net: &Network, tc: Option<&TenantConfig>) -> Result<TenantNetworkPlan, ValidationErrors> {
    let mut network = net.clone();
    let mut reservation = None;
    let mut errs = ValidationErrors::default();
    let dynamic = is_dynamic_type(&net.spec.network_type);
    let Some(tc) = tc else {
        if dynamic {
            errs.push(
                HOST_DEVICE,
                Violation::NoTenantConfig,
                "there is no TenantConfig to take the TenantNetwork's interface profile from",
            );
            return Err(errs);
        }
        return Ok(TenantNetworkPlan { network, reservation });
    };
    if dynamic {
        let (index, profile) = choose_profile(net, tc)?;
        let opts = &mut network.spec.options;
        if opts.host_device.is_empty() && opts.device_pool.is_empty() {
            opts.host_device = profile.name.clone();
        }
        if let Some(vni_type) = VniType::parse(&profile.vni_type) {
            let unset = match vni_type {
                VniType::Vlan => opts.vlan.is_none(),
                VniType::Vxlan => opts.vxlan.is_none(),
            };
            if unset {
                let (alloc, ranges) = profile_state(tc, index)?;
                let Some(vni) = alloc.lowest_free(&ranges) else {
                    return Err(exhausted(tc, index, vni_type));
                };
                match vni_type {
                    VniType::Vlan => opts.vlan = Some(vni),
                    VniType::Vxlan => opts.vxlan = Some(vni),
                }
                reservation = Some(VniReservation {
                    tenant_config: tc.metadata.name.clone(),
                    profile: index,
                    profile_name: profile.name.clone(),
                    vni_type,
                    vni,
                });
            }
        }
    }
    override_network_id(&mut network, tc);
    Ok(TenantNetworkPlan { network, reservation })
}

/// Sets a TenantNetwork's NetworkID from `networkIds[NetworkType]` when the TenantConfig has an entry.
pub fn override_network_id(net: &mut Network, tc: &TenantConfig) {
    let ty = &net.spec.network_type;
    if let Some((_, id)) = tc.network_ids.iter().find(|(t, _)| t.eq_ignore_ascii_case(ty)) {
        net.spec.network_id = id.clone();
    }
}

/// How many IDs a profile can still hand out; `u64::MAX` for a profile without `vniType`, 0 for one that
/// cannot be used (malformed range or bitmask).
fn capacity(tc: &TenantConfig, index: usize) -> u64 {
    let profile = &tc.host_devices[index];
    if profile.vni_type.is_empty() {
        return u64::MAX;
    }
    match profile_state(tc, index) {
        Ok((alloc, ranges)) if VniType::parse(&profile.vni_type).is_some() => alloc.free_count(&ranges),
        _ => 0,
    }
}

fn choose_profile<'a>(net: &Network, tc: &'a TenantConfig) -> Result<(usize, &'a IfaceProfile), ValidationErrors> {
    let opts = &net.spec.options;
    let (field, wanted): (&str, Option<&str>) = if !opts.device_pool.is_empty() {
        (DEVICE_POOL, Some(&opts.device_pool))
    } else if !opts.host_device.is_empty() {
        (HOST_DEVICE, Some(&opts.host_device))
    } else {
        (HOST_DEVICE, None)
    };
    let candidates: Vec<usize> = (0..tc.host_devices.len())
        .filter(|&i| {
            let p = &tc.host_devices[i];
            match wanted {
                Some(name) if field == DEVICE_POOL => p.name == name && p.is_device_pool(),
                Some(name) => p.name == name && !p.is_device_pool(),
                None => !p.is_device_pool() && !p.name.is_empty(),
            }
        })
        .collect();
    let mut errs = ValidationErrors::default();
    let Some(&first) = candidates.first() else {
        match wanted {
            Some(name) => errs.push(
                field,
                Violation::ProfileNotAllowed,
                format!("{name:?} is not an interface profile of TenantConfig {}", tc.metadata.name),
            ),
            None => errs.push(
                field,
                Violation::NoSuitableProfile,
                format!("TenantConfig {} has no host interface profile for TenantNetworks", tc.metadata.name),
            ),
        }
        return Err(errs);
    };
    let best = if wanted.is_some() {
        candidates.iter().copied().find(|&i| capacity(tc, i) > 0)
    } else {
        // max_by_key keeps the last of equals; reverse so that ties go to the first listed.
        candidates.iter().rev().copied().filter(|&i| capacity(tc, i) > 0).max_by_key(|&i| capacity(tc, i))
    };
    match best {
        Some(i) => Ok((i, &tc.host_devices[i])),
        None => {
            // Every candidate is exhausted or unusable: report the first one's state.
            profile_state(tc, first)?;
            let vni_type = VniType::parse(&tc.host_devices[first].vni_type).unwrap_or(VniType::Vlan);
            Err(exhausted(tc, first, vni_type))
        }
    }
}

fn exhausted(tc: &TenantConfig, index: usize, vni_type: VniType) -> ValidationErrors {
    let profile = &tc.host_devices[index];
    let mut errs = ValidationErrors::default();
    errs.push(
        format!("spec.Options.{vni_type}"),
        Violation::VniExhausted,
        format!(
            "every {vni_type} ID of profile {:?} of TenantConfig {} ({}) is reserved",
            profile.name, tc.metadata.name, profile.vni_range
        ),
    );
    errs
}

/// The decoded bitmask and ranges of profile `index`; an error naming the TenantConfig field when either
/// is malformed. A profile without `alloc` (a TenantConfig stored without passing admission) starts empty.
fn profile_state(tc: &TenantConfig, index: usize) -> Result<(VniAlloc, Vec<RangeInclusive<i64>>), ValidationErrors> {
    let profile = &tc.host_devices[index];
    let path = format!("TenantConfig {} hostDevices[{index}]", tc.metadata.name);
    let mut errs = ValidationErrors::default();
    let ranges = match parse_vni_range(&profile.vni_range) {
        Ok(r) => r,
        Err(e) => {
            errs.push(format!("{path}.vniRange"), Violation::InvalidVniRange, e.to_string());
            return Err(errs);
        }
    };
    let alloc = if profile.alloc.is_empty() {
        VniAlloc::for_ranges(&ranges)
    } else {
        VniAlloc::decode(&profile.alloc).and_then(|mut a| a.grow_for(&ranges).map(|()| a))
    };
    match alloc {
        Ok(a) => Ok((a, ranges)),
        Err(e) => {
            let field = if matches!(e, VniAllocError::NotBase64) { "alloc" } else { "vniRange" };
            errs.push(format!("{path}.{field}"), Violation::InvalidVniAlloc, e.to_string());
            Err(errs)
        }
    }
}

/// Marks reserved, in each profile of `tc` that hands out IDs, every ID that an existing network of any
/// kind holds on that profile's interface (its `device_pool`, or else its `host_device`) with that type.
/// Returns whether anything was newly marked.
///
/// The bitmask is a record of reservations, and a record can fall behind the networks: a delete admitted
/// but never carried out (another webhook refused it, or a finalizer keeps the network), a repeated
/// delete of a terminating network, a release in another TenantConfig than the one that reserved, a
/// TenantConfig re-created empty. Marking what the networks really hold before choosing makes sure that
/// none of those ever hands out an ID a network still uses; a written reservation then carries the
/// repaired bitmask. Bits of IDs no network holds are left alone: one may belong to a reservation whose
/// network is being created right now.
pub fn mark_in_use<'a>(tc: &mut TenantConfig, networks: impl IntoIterator<Item = &'a Network>) -> bool {
    let held = held_ids(networks);
    let mut changed = false;
    for index in 0..tc.host_devices.len() {
        let profile = &tc.host_devices[index];
        let Some(vni_type) = VniType::parse(&profile.vni_type) else { continue };
        // A profile whose range or bitmask cannot be read is reported when it is chosen.
        let Ok((mut alloc, _)) = profile_state(tc, index) else { continue };
        let mut marked = false;
        for (_, _, vni) in held.iter().filter(|(name, t, _)| *name == profile.name && *t == vni_type) {
            marked |= alloc.reserve(*vni).unwrap_or(false);
        }
        if marked {
            tc.host_devices[index].alloc = alloc.encode();
            changed = true;
        }
    }
    changed
}

/// The IDs networks hold: (interface or device pool, VLAN or VXLAN, ID).
fn held_ids<'a>(networks: impl IntoIterator<Item = &'a Network>) -> BTreeSet<(&'a str, VniType, i64)> {
    networks
        .into_iter()
        .flat_map(|net| {
            let opts = &net.spec.options;
            let name = if opts.device_pool.is_empty() { opts.host_device.as_str() } else { opts.device_pool.as_str() };
            [opts.vlan.map(|v| (name, VniType::Vlan, v)), opts.vxlan.map(|v| (name, VniType::Vxlan, v))]
        })
        .flatten()
        .collect()
}

/// The TenantConfig annotation in which the cleaner records since when each reserved ID has been held by
/// no network: a JSON object `{"<profile>/<vniType>": {"<ID>": <seconds since the Unix epoch>}}`.
pub const UNHELD_IDS_ANNOTATION: &str = "danm.k8s.io/unheld-ids";

/// A reserved ID that [`reclaim_unheld_ids`] released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReclaimedId {
    /// The profile's name (its `hostDevices[].name`).
    pub profile: String,
    /// VLAN or VXLAN.
    pub vni_type: VniType,
    /// The ID.
    pub id: i64,
    /// Since when (seconds since the Unix epoch) no network has held it.
    pub unheld_since: u64,
}

/// One pass over `tc` that gives back reservations no network uses: an ID whose creation was admitted
/// (and reserved) but never carried out, because another webhook refused it or the write failed.
///
/// Every ID of a profile's range that is reserved and held by no network in `networks` is recorded in
/// [`UNHELD_IDS_ANNOTATION`] when first seen; a later pass that finds it still unheld, `grace_secs` or
/// more after it was first seen, releases it. An ID is never released on the pass that first sees it,
/// whatever the grace: the network of a reservation may be being created right now. IDs held again, or
/// released otherwise, leave the record; IDs held but not marked are marked ([`mark_in_use`]).
/// [`apply_reservation`] and [`release_vni`] drop the ID they reserve or release from the record, so a
/// new reservation of an ID is never judged by a sighting of an earlier one.
///
/// `now` is seconds since the Unix epoch. Changes `tc` in place (bitmasks and annotation) and returns
/// the IDs released; the caller writes `tc` back when it changed.
pub fn reclaim_unheld_ids<'a>(
    tc: &mut TenantConfig,
    networks: impl IntoIterator<Item = &'a Network>,
    now: u64,
    grace_secs: u64,
) -> Vec<ReclaimedId> {
    let networks: Vec<&Network> = networks.into_iter().collect();
    mark_in_use(tc, networks.iter().copied());
    let held = held_ids(networks.iter().copied());
    let seen = read_unheld(tc).unwrap_or_default();
    let mut unheld = UnheldRecord::new();
    let mut released = Vec::new();
    for index in 0..tc.host_devices.len() {
        let profile = &tc.host_devices[index];
        let Some(vni_type) = VniType::parse(&profile.vni_type) else { continue };
        let Ok((mut alloc, ranges)) = profile_state(tc, index) else { continue };
        let key = unheld_key(&profile.name, vni_type);
        let recorded = seen.get(&key);
        let candidates: Vec<i64> = alloc
            .reserved()
            .filter(|id| *id != 0 && ranges.iter().any(|r| r.contains(id)))
            .filter(|id| !held.contains(&(profile.name.as_str(), vni_type, *id)))
            .collect();
        let mut freed = false;
        for id in candidates {
            match recorded.and_then(|r| r.get(&id.to_string())) {
                Some(&since) if now.saturating_sub(since) >= grace_secs => {
                    freed |= alloc.release(id);
                    released.push(ReclaimedId { profile: profile.name.clone(), vni_type, id, unheld_since: since });
                }
                Some(&since) => {
                    unheld.entry(key.clone()).or_default().insert(id.to_string(), since);
                }
                None => {
                    unheld.entry(key.clone()).or_default().insert(id.to_string(), now);
                }
            }
        }
        if freed {
            tc.host_devices[index].alloc = alloc.encode();
        }
    }
    write_unheld(tc, unheld);
    released
}

/// [`UNHELD_IDS_ANNOTATION`]'s content: `<profile>/<vniType>` to ID to the time it was first seen unheld.
type UnheldRecord = BTreeMap<String, BTreeMap<String, u64>>;

fn unheld_key(profile: &str, vni_type: VniType) -> String {
    format!("{profile}/{}", vni_type.as_str())
}

/// The record in `tc`; `None` when there is none or it cannot be read.
fn read_unheld(tc: &TenantConfig) -> Option<UnheldRecord> {
    serde_json::from_str(tc.metadata.annotations.get(UNHELD_IDS_ANNOTATION)?).ok()
}

/// Writes `record` into `tc`, without profiles left empty; an empty record removes the annotation.
fn write_unheld(tc: &mut TenantConfig, mut record: UnheldRecord) {
    record.retain(|_, ids| !ids.is_empty());
    if record.is_empty() {
        tc.metadata.annotations.remove(UNHELD_IDS_ANNOTATION);
    } else if let Ok(text) = serde_json::to_string(&record) {
        tc.metadata.annotations.insert(UNHELD_IDS_ANNOTATION.to_owned(), text);
    }
}

/// Marks a planned VNI reserved in the TenantConfig it was planned from (or a fresher copy of it).
/// Fails, as exhaustion, when another network took the ID in the meantime: plan again.
pub fn apply_reservation(tc: &mut TenantConfig, r: &VniReservation) -> Result<(), ValidationErrors> {
    let found = tc.host_devices.get(r.profile).is_some_and(|p| p.name == r.profile_name);
    if !found {
        let mut errs = ValidationErrors::default();
        errs.push(
            HOST_DEVICE,
            Violation::ProfileNotAllowed,
            format!("profile {:?} is no longer in TenantConfig {}", r.profile_name, tc.metadata.name),
        );
        return Err(errs);
    }
    let (mut alloc, _) = profile_state(tc, r.profile)?;
    let fresh = alloc.reserve(r.vni).map_err(|e| {
        let mut errs = ValidationErrors::default();
        errs.push(format!("spec.Options.{}", r.vni_type), Violation::InvalidVniAlloc, e.to_string());
        errs
    })?;
    if !fresh {
        return Err(exhausted(tc, r.profile, r.vni_type));
    }
    tc.host_devices[r.profile].alloc = alloc.encode();
    forget_unheld(tc, &r.profile_name, r.vni_type, r.vni);
    Ok(())
}

/// Drops `id` of a profile from [`UNHELD_IDS_ANNOTATION`]: its reservation ended or began again, so a
/// sighting of an earlier reservation of it no longer counts towards [`reclaim_unheld_ids`]'s grace.
fn forget_unheld(tc: &mut TenantConfig, profile: &str, vni_type: VniType, id: i64) {
    let Some(mut seen) = read_unheld(tc) else { return };
    let forgotten = seen.get_mut(&unheld_key(profile, vni_type)).and_then(|ids| ids.remove(&id.to_string()));
    if forgotten.is_some() {
        write_unheld(tc, seen);
    }
}

/// What releasing a TenantNetwork's VNI found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VniRelease {
    /// The network holds no VNI (or its type gets none), so there is nothing to release.
    NotReserved,
    /// The ID was freed in the TenantConfig.
    Released {
        /// The profile's index in `hostDevices`.
        profile: usize,
        /// The freed ID.
        vni: i64,
    },
    /// The ID was already free.
    AlreadyFree,
    /// No profile of the TenantConfig matches the network's interface and VNI type.
    NoProfile,
}

/// Frees a deleted TenantNetwork's VLAN or VXLAN ID in the TenantConfig (rule D2): in the profile named by
/// its `device_pool`, or else its `host_device`, with the matching `vniType`.
pub fn release_vni(tc: &mut TenantConfig, net: &Network) -> Result<VniRelease, ValidationErrors> {
    let opts = &net.spec.options;
    let (vni_type, vni) = match (opts.vlan, opts.vxlan) {
        (_, Some(v)) => (VniType::Vxlan, v),
        (Some(v), None) => (VniType::Vlan, v),
        (None, None) => return Ok(VniRelease::NotReserved),
    };
    if !is_dynamic_type(&net.spec.network_type) {
        return Ok(VniRelease::NotReserved);
    }
    let name = if opts.device_pool.is_empty() { &opts.host_device } else { &opts.device_pool };
    let Some(index) = tc.host_devices.iter().position(|p| &p.name == name && p.vni_type == vni_type.as_str()) else {
        return Ok(VniRelease::NoProfile);
    };
    let (mut alloc, _) = profile_state(tc, index)?;
    if !alloc.release(vni) {
        return Ok(VniRelease::AlreadyFree);
    }
    tc.host_devices[index].alloc = alloc.encode();
    forget_unheld(tc, name, vni_type, vni);
    Ok(VniRelease::Released { profile: index, vni })
}

/// Validates and mutates a TenantConfig for create (`old` is `None`) or update: TenantConfig rules 1–6,
/// then every profile with a `vniType` gets its `alloc` bitmask. On update, a profile that comes without
/// `alloc` keeps the one of the stored profile with the same name and `vniType`, so that reservations
/// survive a client that replaces the object with what it had applied; a given `alloc` is kept (the
/// webhook's own reservations arrive that way). A profile without `vniType` has no `alloc`.
pub fn admit_tenant_config(mut tc: TenantConfig, old: Option<&TenantConfig>) -> Result<TenantConfig, ValidationErrors> {
    let op = match old {
        None => TenantConfigOperation::Create,
        Some(old) => TenantConfigOperation::Update { old },
    };
    validate_tenant_config(&tc, &op)?;
    let mut errs = ValidationErrors::default();
    for i in 0..tc.host_devices.len() {
        let profile = &tc.host_devices[i];
        if profile.vni_type.is_empty() {
            continue;
        }
        let mut alloc = profile.alloc.clone();
        if alloc.is_empty()
            && let Some(prev) = old
                .and_then(|o| o.host_devices.iter().find(|p| p.name == profile.name && p.vni_type == profile.vni_type))
        {
            alloc.clone_from(&prev.alloc);
        }
        tc.host_devices[i].alloc = alloc;
        match profile_state(&tc, i) {
            Ok((bitmask, _)) => tc.host_devices[i].alloc = bitmask.encode(),
            Err(e) => errs.0.extend(e.0.into_iter().map(|mut e| {
                // Name the field as the TenantConfig under review sees it.
                e.field = e.field.rsplit_once(' ').map_or(e.field.clone(), |(_, f)| f.to_owned());
                e
            })),
        }
    }
    errs.into_result().map(|()| tc)
}

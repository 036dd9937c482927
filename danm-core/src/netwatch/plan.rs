//! The plan: from every network and the node's host interfaces, what to create, repair, recreate,
//! release and remove.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::attachment::Attachment;
use super::holder::HolderKey;
use crate::meta::host_interface;
use crate::model::Network;
use crate::provision::{HostInterface, HostLinkKind, HostScan, ObservedHost, holder_record};
use crate::validate;

/// The largest VNI that fits VXLAN's 24 bits.
const MAX_VNI: i64 = (1 << 24) - 1;

/// What the plan decided for one network that asks for a VLAN or VXLAN host interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// The network is served by this host interface (created or kept by the plan).
    Interface(String),
    /// The network's `host_device` is not on this node: it needs nothing here.
    DeviceAbsent {
        /// The missing device.
        device: String,
    },
    /// The network's host interface attributes cannot be carried out (an id out of range, an interface
    /// name the kernel refuses).
    Invalid {
        /// What is wrong, naming the field.
        reason: String,
    },
    /// Another network wants an interface of the same name with another kind, id or parent, and won.
    Conflict {
        /// The interface both want.
        interface: String,
        /// The holder whose attributes the interface has.
        with: HolderKey,
    },
}

/// How an interface differs from what its networks want.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// It does not exist.
    Missing,
    /// It is administratively down.
    Down,
    /// Its MTU differs from the one asked.
    Mtu {
        /// Asked.
        want: u32,
        /// Found.
        have: u32,
    },
    /// Some of its networks are not recorded as holders.
    Holders {
        /// How many are missing.
        missing: usize,
    },
    /// It is another kind, or has another VLAN id or VNI.
    Kind {
        /// Wanted.
        want: HostLinkKind,
        /// Found; `None` when it is neither VLAN nor VXLAN.
        have: Option<HostLinkKind>,
    },
    /// It sits on another parent.
    Parent {
        /// Wanted.
        want: String,
        /// Found.
        have: Option<String>,
    },
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("missing"),
            Self::Down => f.write_str("down"),
            Self::Mtu { want, have } => write!(f, "MTU {have} instead of {want}"),
            Self::Holders { missing } => write!(f, "{missing} holder(s) not recorded"),
            Self::Kind { want, have: Some(have) } => write!(f, "{} instead of {}", kind_text(*have), kind_text(*want)),
            Self::Kind { want, have: None } => write!(f, "neither VLAN nor VXLAN instead of {}", kind_text(*want)),
            Self::Parent { want, have } => {
                write!(f, "on {} instead of {want}", have.as_deref().unwrap_or("no parent"))
            }
        }
    }
}

fn kind_text(kind: HostLinkKind) -> String {
    match kind {
        HostLinkKind::Vlan(id) => format!("VLAN {id}"),
        HostLinkKind::Vxlan(vni) => format!("VXLAN {vni}"),
    }
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostAction {
    /// Creates the interface, or brings an existing one in line (holders, up, MTU): `ensure_host` once
    /// per holder.
    Ensure {
        /// The interface as its networks want it.
        host: HostInterface,
        /// Its networks (`Kind/namespace/name`), each to be recorded as a holder.
        holders: Vec<String>,
        /// Why: [`Drift::Missing`] for a creation.
        drift: Vec<Drift>,
    },
    /// Removes the interface whatever its holders, then creates it anew for its networks: its kind, id
    /// or parent changed.
    Recreate {
        /// The interface as its networks want it now.
        host: HostInterface,
        /// Its networks.
        holders: Vec<String>,
        /// What differs.
        drift: Vec<Drift>,
    },
    /// Drops holders whose networks are gone or moved on; the interface goes with its last holder.
    Release {
        /// The interface.
        name: String,
        /// The holders to drop, in recorded form.
        holders: Vec<String>,
    },
    /// Removes a managed interface that records no holder and no network wants.
    Remove {
        /// The interface.
        name: String,
    },
}

impl HostAction {
    /// The interface this step is about.
    pub fn interface(&self) -> &str {
        match self {
            Self::Ensure { host, .. } | Self::Recreate { host, .. } => &host.name,
            Self::Release { name, .. } | Self::Remove { name } => name,
        }
    }

    /// Whether this step can take an interface away (wholly, or from some of its users).
    pub fn is_destructive(&self) -> bool {
        !matches!(self, Self::Ensure { .. })
    }
}

impl fmt::Display for HostAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let drift = |d: &[Drift]| d.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        match self {
            Self::Ensure { host, drift: d, .. } if d.contains(&Drift::Missing) => {
                write!(f, "create {} {} on {}", kind_text(host.kind), host.name, host.parent)
            }
            Self::Ensure { host, drift: d, .. } => write!(f, "repair {} ({})", host.name, drift(d)),
            Self::Recreate { host, drift: d, .. } => write!(f, "recreate {} ({})", host.name, drift(d)),
            Self::Release { name, holders } => write!(f, "release {name} from {}", holders.join(", ")),
            Self::Remove { name } => write!(f, "remove {name} (no holder left)"),
        }
    }
}

/// What a node's host interfaces need: the steps, and where each network stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostPlan {
    /// The steps, in the order to take them: releases and removals of interfaces no network wants first
    /// (a VLAN id is free again before another interface takes it), then recreations, then creations
    /// and repairs, and last the releases of stale holders of interfaces still wanted (after their
    /// current networks are recorded, so the interface never drops to no holder on the way).
    pub actions: Vec<HostAction>,
    /// Every network (and NetworkAttachmentDefinition) that asks for a VLAN or VXLAN host interface,
    /// and what the plan decided for it. Those without one are not listed.
    pub placements: BTreeMap<HolderKey, Placement>,
}

impl HostPlan {
    /// Whether the node is as its networks want it.
    pub fn is_settled(&self) -> bool {
        self.actions.is_empty()
    }

    /// Whether any step can take an interface away.
    pub fn is_destructive(&self) -> bool {
        self.actions.iter().any(HostAction::is_destructive)
    }
}

/// The host interface a network asks for, or why it cannot have one; `None` when it asks for none.
fn wanted(network: &Network) -> Option<Result<HostInterface, String>> {
    let o = &network.spec.options;
    match (o.vlan, o.vxlan) {
        (None, None) => return None,
        (Some(v), _) if !(1..=4094).contains(&v) => {
            return Some(Err(format!("spec.Options.vlan {v} is outside 1..=4094")));
        }
        (None, Some(v)) if !(1..=MAX_VNI).contains(&v) => {
            return Some(Err(format!("spec.Options.vxlan {v} is outside 1..={MAX_VNI}")));
        }
        _ => {}
    }
    if o.host_device.is_empty() {
        // A device pool network (SR-IOV) takes its VLAN on the virtual function its plugin sets up: no
        // host interface.
        if !o.device_pool.is_empty() {
            return None;
        }
        return Some(Err("spec.Options.host_device is empty: a VLAN or VXLAN interface needs a parent".to_owned()));
    }
    let host = host_interface(network)?;
    if let Err(e) = validate::interface_name("spec.NetworkID", &host.name) {
        return Some(Err(format!("host interface {}", e.message)));
    }
    Some(Ok(host))
}

/// The holders that want one interface name.
struct Group {
    candidates: Vec<(HolderKey, HostInterface)>,
}

/// Plans a node's host interfaces.
///
/// `networks` are all networks of the three kinds; `scan` is the node now. The rules:
/// - A network with `vlan` (or else `vxlan`) wants `<NetworkID>.<vlan>` (or `vx_<NetworkID>`) on its
///   `host_device`, exactly as the CNI names it, when that device is on this node.
/// - Networks that want the same name share one interface, reference counted: each is a holder, and the
///   interface stays until the last of them is gone.
/// - When they disagree on kind, id or parent, the interface keeps the attributes it has if one of them
///   still wants those (changing it under the others would cut their pods off); otherwise the first
///   network by key decides. The others are [`Placement::Conflict`].
/// - The MTU is the largest any holder asks for, or the parent's allowance when one asks for none: the
///   pod interfaces of every holder then fit under it.
/// - A missing interface is created; one that is down, has another MTU or lacks holders is repaired; one
///   of another kind, id or parent is recreated; holders whose networks are gone are released, and an
///   interface nobody holds is removed.
pub fn plan(networks: &[Network], scan: &HostScan) -> HostPlan {
    plan_with_attachments(networks, &[], scan)
}

/// Plans a node's host interfaces for networks and NetworkAttachmentDefinitions alike: each
/// attachment that asks for a host interface ([`Attachment::host_request`]) is one more holder,
/// reference counted, repaired and released as a network is (see [`plan`]). A network and an
/// attachment that want the same interface share it; when they disagree on its attributes and the
/// interface is not there yet, the network decides.
pub fn plan_with_attachments(networks: &[Network], attachments: &[Attachment], scan: &HostScan) -> HostPlan {
    let observed: BTreeMap<&str, &ObservedHost> = scan.managed.iter().map(|h| (h.name.as_str(), h)).collect();
    let mut placements = BTreeMap::new();
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    let mut requests: Vec<(HolderKey, Option<Result<HostInterface, String>>)> = networks
        .iter()
        .map(|n| (HolderKey::from(n.key()), wanted(n)))
        .chain(attachments.iter().map(|a| (a.key(), a.host_request())))
        .collect();
    requests.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, request) in requests {
        match request {
            None => {}
            Some(Err(reason)) => {
                placements.insert(key, Placement::Invalid { reason });
            }
            Some(Ok(host)) if !scan.devices.contains(&host.parent) => {
                placements.insert(key, Placement::DeviceAbsent { device: host.parent });
            }
            Some(Ok(host)) => {
                groups
                    .entry(host.name.clone())
                    .or_insert_with(|| Group { candidates: Vec::new() })
                    .candidates
                    .push((key, host));
            }
        }
    }

    let mut releases = Vec::new();
    let mut stale_releases = Vec::new();
    let mut recreates = Vec::new();
    let mut ensures = Vec::new();
    for (name, group) in &groups {
        let seen = observed.get(name.as_str()).copied();
        let same = |a: &HostInterface, b: &HostInterface| a.kind == b.kind && a.parent == b.parent;
        let winner = seen
            .and_then(|o| {
                group.candidates.iter().find(|(_, h)| o.kind == Some(h.kind) && o.parent.as_deref() == Some(&h.parent))
            })
            .unwrap_or(&group.candidates[0]);
        let mut holders = Vec::new();
        let mut mtu = Some(0);
        for (key, host) in &group.candidates {
            if same(host, &winner.1) {
                holders.push(key.to_string());
                mtu = match (mtu, host.mtu) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
                placements.insert(key.clone(), Placement::Interface(name.clone()));
            } else {
                placements.insert(key.clone(), Placement::Conflict { interface: name.clone(), with: winner.0.clone() });
            }
        }
        let host = HostInterface { mtu, ..winner.1.clone() };
        let Some(seen) = seen else {
            ensures.push(HostAction::Ensure { host, holders, drift: vec![Drift::Missing] });
            continue;
        };
        let mut changed = Vec::new();
        if seen.kind != Some(host.kind) {
            changed.push(Drift::Kind { want: host.kind, have: seen.kind });
        }
        if seen.parent.as_deref() != Some(host.parent.as_str()) {
            changed.push(Drift::Parent { want: host.parent.clone(), have: seen.parent.clone() });
        }
        if !changed.is_empty() {
            recreates.push(HostAction::Recreate { host, holders, drift: changed });
            continue;
        }
        let records: BTreeSet<String> = holders.iter().map(|h| holder_record(h)).collect();
        let mut drift = Vec::new();
        if !seen.up {
            drift.push(Drift::Down);
        }
        if let Some(want) = host.mtu.filter(|m| *m != seen.mtu) {
            drift.push(Drift::Mtu { want, have: seen.mtu });
        }
        let missing = records.difference(&seen.holders).count();
        if missing > 0 {
            drift.push(Drift::Holders { missing });
        }
        if !drift.is_empty() {
            ensures.push(HostAction::Ensure { host, holders, drift });
        }
        let stale: Vec<String> = seen.holders.difference(&records).cloned().collect();
        if !stale.is_empty() {
            stale_releases.push(HostAction::Release { name: name.clone(), holders: stale });
        }
    }
    for seen in &scan.managed {
        if groups.contains_key(&seen.name) {
            continue;
        }
        releases.push(if seen.holders.is_empty() {
            HostAction::Remove { name: seen.name.clone() }
        } else {
            HostAction::Release { name: seen.name.clone(), holders: seen.holders.iter().cloned().collect() }
        });
    }
    let mut actions = releases;
    actions.extend(recreates);
    actions.extend(ensures);
    actions.extend(stale_releases);
    HostPlan { actions, placements }
}

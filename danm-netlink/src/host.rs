//! Host interfaces: the VLAN `<NetworkID>.<vlan>` and VXLAN `vx_<NetworkID>` interfaces of networks on
//! their host device, created idempotently and removed with their last holder.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use danm_core::provision::{HostInterface, HostLinkKind, HostScan, ObservedHost, ProvisionError, Removal};
use futures::TryStreamExt;
use netlink_packet_route::address::AddressScope;
use netlink_packet_route::link::{InfoData, InfoVlan, InfoVxlan, LinkAttribute, LinkMessage};
use nix::errno::Errno;
use rtnetlink::{Handle, LinkUnspec, LinkVlan, LinkVxlan};

use crate::error::{errno, invalid, is_gone, kernel};
use crate::holders::{AliasState, Holders};
use crate::links;

/// The VXLAN UDP port (IANA), as upstream uses.
pub(crate) const VXLAN_PORT: u16 = 4789;
/// The largest VNI (24 bits).
pub(crate) const MAX_VNI: u32 = (1 << 24) - 1;
/// VXLAN's encapsulation overhead over an IPv4 underlay (outer Ethernet is not counted: IP 20 + UDP 8
/// + VXLAN 8 + inner Ethernet 14).
pub(crate) const VXLAN_OVERHEAD_V4: u32 = 50;
/// The same over an IPv6 underlay (IP 40).
pub(crate) const VXLAN_OVERHEAD_V6: u32 = 70;

/// The multicast group of VNI `vni` over IPv4: 239.0.0.0/8 with the VNI as host part.
pub(crate) fn vxlan_group_v4(vni: u32) -> Ipv4Addr {
    Ipv4Addr::from(0xef00_0000 | (vni & MAX_VNI))
}

/// The multicast group of VNI `vni` over IPv6: ff02::/16 with the VNI as host part.
pub(crate) fn vxlan_group_v6(vni: u32) -> Ipv6Addr {
    Ipv6Addr::from((0xff02_u128 << 112) | u128::from(vni & MAX_VNI))
}

/// Makes sure `want` exists with `holder` among its holders.
pub(crate) async fn ensure(host: Handle, want: HostInterface, holder: String) -> Result<(), ProvisionError> {
    links::check_name(&want.name)?;
    match want.kind {
        HostLinkKind::Vlan(id) if id == 0 || id > 4094 => {
            return Err(invalid(&want.name, format!("VLAN {id} is outside 1..=4094")));
        }
        HostLinkKind::Vxlan(vni) if vni > MAX_VNI => {
            return Err(invalid(&want.name, format!("VNI {vni} does not fit in 24 bits")));
        }
        _ => {}
    }
    let parent = links::by_name(&host, &want.parent)
        .await?
        .ok_or_else(|| ProvisionError::ParentMissing { parent: want.parent.clone() })?;
    let underlay = match want.kind {
        HostLinkKind::Vlan(_) => None,
        HostLinkKind::Vxlan(_) => underlay_address(&host, &parent).await?,
    };
    let overhead = match (want.kind, underlay) {
        (HostLinkKind::Vlan(_), _) => 0,
        (HostLinkKind::Vxlan(_), Some(IpAddr::V6(_))) => VXLAN_OVERHEAD_V6,
        (HostLinkKind::Vxlan(_), _) => VXLAN_OVERHEAD_V4,
    };
    let max_mtu = links::mtu(&parent).saturating_sub(overhead);
    if let Some(mtu) = want.mtu.filter(|mtu| *mtu > max_mtu) {
        return Err(invalid(
            &want.name,
            format!("MTU {mtu} is above {max_mtu}, what parent {} allows (overhead {overhead})", want.parent),
        ));
    }

    match links::by_name(&host, &want.name).await? {
        Some(link) => adopt(&host, &link, &want, parent.header.index, &holder).await,
        None => create(&host, &want, parent.header.index, underlay, want.mtu.unwrap_or(max_mtu), &holder).await,
    }
}

/// Drops `holder` from interface `name`; removes the interface when it was the last. Interfaces
/// without DANM's record are left alone.
pub(crate) async fn release(host: Handle, name: String, holder: String) -> Result<bool, ProvisionError> {
    if links::check_name(&name).is_err() {
        return Ok(false);
    }
    let Some(link) = links::by_name(&host, &name).await? else {
        return Ok(false);
    };
    let AliasState::Managed(mut holders) = AliasState::parse(links::alias(&link)) else {
        return Ok(false);
    };
    if !holders.remove(&holder) {
        return Ok(false);
    }
    if holders.is_empty() {
        return match host.link().del(link.header.index).execute().await {
            Ok(()) => Ok(true),
            Err(e) if is_gone(&e) => Ok(true),
            Err(e) => Err(kernel(format!("deleting host interface {name}"), e)),
        };
    }
    // Fewer holders always fit where more did.
    let alias = holders.to_alias().unwrap_or_default();
    set_alias(&host, link.header.index, &name, alias).await?;
    Ok(false)
}

/// Every interface name of the namespace, and the interfaces that carry DANM's holder record.
pub(crate) async fn scan(host: Handle) -> Result<HostScan, ProvisionError> {
    let links: Vec<LinkMessage> =
        host.link().get().execute().try_collect().await.map_err(|e| kernel("listing interfaces", e))?;
    let names: BTreeMap<u32, String> = links.iter().map(|l| (l.header.index, links::name(l))).collect();
    let mut scan = HostScan { devices: names.values().cloned().collect(), managed: Vec::new() };
    for link in &links {
        let AliasState::Managed(holders) = AliasState::parse(links::alias(link)) else { continue };
        let (kind, parent) = match links::info_data(link) {
            Some(InfoData::Vlan(info)) => {
                let id = info.iter().find_map(|i| if let InfoVlan::Id(id) = i { Some(*id) } else { None });
                (id.map(HostLinkKind::Vlan), links::lower(link))
            }
            Some(InfoData::Vxlan(info)) => {
                let vni = info.iter().find_map(|i| if let InfoVxlan::Id(v) = i { Some(*v) } else { None });
                let dev = info.iter().find_map(|i| if let InfoVxlan::Link(d) = i { Some(*d) } else { None });
                (vni.map(HostLinkKind::Vxlan), dev)
            }
            _ => (None, links::lower(link)),
        };
        scan.managed.push(ObservedHost {
            name: links::name(link),
            kind,
            parent: parent.and_then(|index| names.get(&index).cloned()),
            holders: holders.into_records(),
            up: links::is_up(link),
            mtu: links::mtu(link),
        });
    }
    Ok(scan)
}

/// Removes interface `name` if it carries DANM's record, whatever its holders or (with
/// [`Removal::IfUnheld`]) only when it records none; whether it did.
pub(crate) async fn remove(host: Handle, name: String, when: Removal) -> Result<bool, ProvisionError> {
    if links::check_name(&name).is_err() {
        return Ok(false);
    }
    let Some(link) = links::by_name(&host, &name).await? else {
        return Ok(false);
    };
    match AliasState::parse(links::alias(&link)) {
        AliasState::Managed(holders) if when == Removal::Always || holders.is_empty() => {}
        _ => return Ok(false),
    }
    match host.link().del(link.header.index).execute().await {
        Ok(()) => Ok(true),
        Err(e) if is_gone(&e) => Ok(false),
        Err(e) => Err(kernel(format!("deleting host interface {name}"), e)),
    }
}

async fn create(
    host: &Handle,
    want: &HostInterface,
    parent: u32,
    underlay: Option<IpAddr>,
    mtu: u32,
    holder: &str,
) -> Result<(), ProvisionError> {
    let name = want.name.as_str();
    let mut holders = Holders::default();
    holders.insert(holder);
    let alias = holders.to_alias().unwrap_or_default();

    let (what, mut message) = match (want.kind, underlay) {
        (HostLinkKind::Vlan(id), _) => ("VLAN", LinkVlan::new(name, parent, id).build()),
        (HostLinkKind::Vxlan(vni), Some(IpAddr::V4(local))) => {
            let builder = LinkVxlan::new(name, vni).dev(parent).port(VXLAN_PORT).local(local);
            ("VXLAN", builder.group(vxlan_group_v4(vni)).learning(true).l2miss(true).l3miss(true).build())
        }
        (HostLinkKind::Vxlan(vni), Some(IpAddr::V6(local))) => {
            let builder = LinkVxlan::new(name, vni).dev(parent).port(VXLAN_PORT).local6(local);
            ("VXLAN", builder.group6(vxlan_group_v6(vni)).learning(true).l2miss(true).l3miss(true).build())
        }
        (HostLinkKind::Vxlan(_), None) => {
            return Err(invalid(name, format!("parent {} has no global address to send VXLAN from", want.parent)));
        }
    };
    message.attributes.push(LinkAttribute::Mtu(mtu));
    host.link().add(message).execute().await.map_err(|e| match errno(&e) {
        Some(Errno::EEXIST) => ProvisionError::Exists { name: name.to_owned() },
        Some(Errno::EOPNOTSUPP) => ProvisionError::Unsupported {
            what: format!("{what} interfaces"),
            reason: format!("the kernel has no {what} support"),
        },
        _ => kernel(format!("creating {what} interface {name} on {}", want.parent), e),
    })?;

    // The kernel ignores an alias given at creation, so it is set afterwards, with the link up.
    let finish = async {
        let index = links::by_name(host, name)
            .await?
            .ok_or_else(|| kernel(format!("finding interface {name}"), "it vanished after creation"))?
            .header
            .index;
        let message = LinkUnspec::new_with_index(index).alias(alias).up().build();
        host.link().set(message).execute().await.map_err(|e| kernel(format!("recording holders on {name}"), e))
    };
    if let Err(e) = finish.await {
        if let Ok(Some(link)) = links::by_name(host, name).await {
            let _ = host.link().del(link.header.index).execute().await;
        }
        return Err(e);
    }
    Ok(())
}

/// An interface of the wanted name exists: check it is the wanted one, adjust its MTU if one was
/// asked, record the holder and bring it up.
async fn adopt(
    host: &Handle,
    link: &LinkMessage,
    want: &HostInterface,
    parent: u32,
    holder: &str,
) -> Result<(), ProvisionError> {
    let name = want.name.as_str();
    if !is_same(link, want.kind, parent) {
        let what = match want.kind {
            HostLinkKind::Vlan(id) => format!("VLAN {id}"),
            HostLinkKind::Vxlan(vni) => format!("VXLAN {vni}"),
        };
        return Err(invalid(name, format!("the interface exists but is not {what} on {}", want.parent)));
    }
    let index = link.header.index;
    let mut change = LinkUnspec::new_with_index(index);
    let mut changed = false;
    let alias = AliasState::parse(links::alias(link));
    // An existing interface may serve several networks: its MTU is only ever raised here, to what this
    // network needs (netwatcher sets the largest any of them asks for), never lowered under another
    // network's pods; and someone else's interface keeps its MTU.
    let raise = want.mtu.filter(|mtu| *mtu > links::mtu(link) && !matches!(alias, AliasState::Foreign));
    if let Some(mtu) = raise {
        change = change.mtu(mtu);
        changed = true;
    }
    match alias {
        // Someone else's interface: use it, record nothing, never remove it.
        AliasState::Foreign => {}
        AliasState::Free => {
            let mut holders = Holders::default();
            holders.insert(holder);
            change = change.alias(holders.to_alias().unwrap_or_default());
            changed = true;
        }
        AliasState::Managed(mut holders) => {
            if holders.insert(holder) {
                let alias = holders.to_alias().ok_or_else(|| {
                    invalid(name, format!("{} holders already fill the 255 bytes of its alias", holders.len() - 1))
                })?;
                change = change.alias(alias);
                changed = true;
            }
        }
    }
    if !links::is_up(link) {
        change = change.up();
        changed = true;
    }
    if changed {
        host.link().set(change.build()).execute().await.map_err(|e| kernel(format!("updating {name}"), e))?;
    }
    Ok(())
}

async fn set_alias(host: &Handle, index: u32, name: &str, alias: String) -> Result<(), ProvisionError> {
    let message = LinkUnspec::new_with_index(index).alias(alias).build();
    host.link().set(message).execute().await.map_err(|e| kernel(format!("recording holders on {name}"), e))
}

/// Whether `link` is the wanted kind, id and parent.
fn is_same(link: &LinkMessage, kind: HostLinkKind, parent: u32) -> bool {
    match (kind, links::info_data(link)) {
        (HostLinkKind::Vlan(id), Some(InfoData::Vlan(info))) => {
            info.contains(&InfoVlan::Id(id)) && links::lower(link) == Some(parent)
        }
        (HostLinkKind::Vxlan(vni), Some(InfoData::Vxlan(info))) => {
            info.contains(&InfoVxlan::Id(vni)) && info.contains(&InfoVxlan::Link(parent))
        }
        _ => false,
    }
}

/// The VXLAN's local address: the parent's first global IPv4 address, else its first global IPv6 one.
/// Only creation needs one: an existing interface is used whatever the parent's addresses are now.
async fn underlay_address(host: &Handle, parent: &LinkMessage) -> Result<Option<IpAddr>, ProvisionError> {
    let global: Vec<IpAddr> = links::addresses(host, Some(parent.header.index))
        .await?
        .into_iter()
        .filter(|(_, scope)| *scope == AddressScope::Universe)
        .map(|(net, _)| net.addr())
        .collect();
    Ok(global.iter().find(|ip| ip.is_ipv4()).or_else(|| global.first()).copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vxlan_groups_carry_the_vni_as_host_part() {
        assert_eq!(vxlan_group_v4(5), Ipv4Addr::new(239, 0, 0, 5));
        assert_eq!(vxlan_group_v4(300), Ipv4Addr::new(239, 0, 1, 44));
        assert_eq!(vxlan_group_v4(0x12_3456), Ipv4Addr::new(239, 0x12, 0x34, 0x56));
        assert_eq!(vxlan_group_v4(MAX_VNI), Ipv4Addr::new(239, 255, 255, 255));
        assert_eq!(vxlan_group_v6(0x12_3456), "ff02::12:3456".parse::<Ipv6Addr>().unwrap());
    }
}

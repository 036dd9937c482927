//! Reading links and addresses back from the kernel.

use std::net::IpAddr;

use danm_core::provision::{LinkState, ProvisionError};
use futures::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{InfoData, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use rtnetlink::Handle;

use crate::error::{errno, invalid, kernel};

/// The longest interface name the kernel accepts (`IFNAMSIZ` less the terminating NUL).
pub(crate) const MAX_IFNAME: usize = 15;

/// Checks `name` the way the kernel's `dev_valid_name` does, so a bad name fails before anything is
/// created.
pub(crate) fn check_name(name: &str) -> Result<(), ProvisionError> {
    let reason = if name.is_empty() {
        "the name is empty"
    } else if name.len() > MAX_IFNAME {
        "the name is longer than 15 bytes"
    } else if name == "." || name == ".." {
        "the name is . or .."
    } else if name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()) {
        "the name contains '/', ':' or white space"
    } else {
        return Ok(());
    };
    Err(invalid(name, reason))
}

/// The link called `name`, if there is one.
pub(crate) async fn by_name(handle: &Handle, name: &str) -> Result<Option<LinkMessage>, ProvisionError> {
    let mut links = handle.link().get().match_name(name).execute();
    match links.try_next().await {
        Ok(link) => Ok(link),
        Err(e) if errno(&e) == Some(nix::errno::Errno::ENODEV) => Ok(None),
        Err(e) => Err(kernel(format!("looking up interface {name}"), e)),
    }
}

/// The link's name.
pub(crate) fn name(link: &LinkMessage) -> String {
    link.attributes
        .iter()
        .find_map(|a| if let LinkAttribute::IfName(n) = a { Some(n.clone()) } else { None })
        .unwrap_or_default()
}

/// The link's MTU.
pub(crate) fn mtu(link: &LinkMessage) -> u32 {
    link.attributes.iter().find_map(|a| if let LinkAttribute::Mtu(m) = a { Some(*m) } else { None }).unwrap_or(0)
}

/// The link's MAC address, lower-case and colon-separated.
pub(crate) fn mac(link: &LinkMessage) -> String {
    link.attributes
        .iter()
        .find_map(|a| if let LinkAttribute::Address(bytes) = a { Some(format_mac(bytes)) } else { None })
        .unwrap_or_default()
}

/// The link's alias (`IFLA_IFALIAS`).
pub(crate) fn alias(link: &LinkMessage) -> Option<&str> {
    link.attributes.iter().find_map(|a| if let LinkAttribute::IfAlias(s) = a { Some(s.as_str()) } else { None })
}

/// The index of the link this one sits on (`IFLA_LINK`).
pub(crate) fn lower(link: &LinkMessage) -> Option<u32> {
    link.attributes.iter().find_map(|a| if let LinkAttribute::Link(i) = a { Some(*i) } else { None })
}

/// The kind-specific data of the link (`IFLA_INFO_DATA`).
pub(crate) fn info_data(link: &LinkMessage) -> Option<&InfoData> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => {
            infos.iter().find_map(|i| if let LinkInfo::Data(d) = i { Some(d) } else { None })
        }
        _ => None,
    })
}

/// Whether the link is administratively up.
pub(crate) fn is_up(link: &LinkMessage) -> bool {
    link.header.flags.contains(LinkFlags::Up)
}

/// Formats hardware address bytes as `aa:bb:cc:dd:ee:ff`.
pub(crate) fn format_mac(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// The addresses on link `index` (all of them when `index` is `None`), with their scope.
pub(crate) async fn addresses(
    handle: &Handle,
    index: Option<u32>,
) -> Result<Vec<(IpNet, AddressScope)>, ProvisionError> {
    let mut request = handle.address().get();
    if let Some(index) = index {
        request = request.set_link_index_filter(index);
    }
    let messages: Vec<AddressMessage> =
        request.execute().try_collect().await.map_err(|e| kernel("listing addresses", e))?;
    Ok(messages.iter().filter_map(|m| address_of(m).map(|net| (net, m.header.scope))).collect())
}

/// The address of an address message: `IFA_LOCAL` for IPv4 (the peer may differ on point-to-point
/// links), `IFA_ADDRESS` otherwise.
pub(crate) fn address_of(msg: &AddressMessage) -> Option<IpNet> {
    let local = msg.attributes.iter().find_map(|a| if let AddressAttribute::Local(ip) = a { Some(*ip) } else { None });
    let address =
        msg.attributes.iter().find_map(|a| if let AddressAttribute::Address(ip) = a { Some(*ip) } else { None });
    let ip: IpAddr = local.or(address)?;
    IpNet::new(ip, msg.header.prefix_len).ok()
}

/// What [`InterfaceProvisioner::inspect`](danm_core::provision::InterfaceProvisioner::inspect) reports:
/// the link, and its addresses other than link-local ones (which the kernel adds by itself).
pub(crate) async fn state(handle: &Handle, link: &LinkMessage) -> Result<LinkState, ProvisionError> {
    let addresses = addresses(handle, Some(link.header.index))
        .await?
        .into_iter()
        .filter(|(_, scope)| *scope != AddressScope::Link)
        .map(|(net, _)| net)
        .collect();
    Ok(LinkState { name: name(link), mac: mac(link), mtu: mtu(link), up: is_up(link), addresses })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_like_the_kernel_does() {
        assert!(check_name("eth0").is_ok());
        assert!(check_name("vx_abcdefghijkl").is_ok());
        assert!(check_name("vx_abcdefghijklm").is_err());
        assert!(check_name("").is_err());
        assert!(check_name("..").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name("a:b").is_err());
        assert!(check_name("a b").is_err());
    }

    #[test]
    fn macs_are_lower_case_and_colon_separated() {
        assert_eq!(format_mac(&[0x02, 0xAB, 0, 1, 0x10, 0xff]), "02:ab:00:01:10:ff");
    }
}

//! Pod interfaces: creating them in the host, moving them into the pod, configuring, removing and
//! reading them back.

use std::collections::BTreeSet;
use std::net::IpAddr;

use danm_core::provision::{
    CreatedInterface, InterfaceSetup, IpVlanMode, Ipv6Mode, LinkKind, LinkState, MacVlanMode, PodInterface,
    ProvisionError, Route,
};
use futures::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope};
use netlink_packet_route::link::{self as nl, LinkAttribute};
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use nix::errno::Errno;
use rtnetlink::{Handle, IpVersion, LinkIpVlan, LinkMacVlan, LinkUnspec, RouteMessageBuilder};

use crate::error::{errno, invalid, is_gone, kernel};
use crate::netns::Netns;
use crate::{links, sysctl};

/// Where the interface being created is, so that a failure can remove it.
#[derive(Debug, Default)]
enum Stage {
    /// Nothing created yet.
    #[default]
    Nothing,
    /// Asked for in the pod under the temporary name, not yet found there.
    Moving,
    /// In the pod, with this index.
    InPod(u32),
}

/// What `create` has done so far.
#[derive(Debug, Default)]
struct Made {
    stage: Stage,
    /// Rules added (not ones that already existed).
    rules: Vec<RuleMessage>,
}

/// Creates `iface`: `host` is a handle in the host namespace, `pod` one in the pod's namespace, and the
/// calling thread is in the pod's namespace (for the sysctls).
pub(crate) async fn create(
    host: Handle,
    pod: Handle,
    pod_ns: Netns,
    iface: PodInterface,
) -> Result<CreatedInterface, ProvisionError> {
    links::check_name(&iface.name)?;
    links::check_name(&iface.temp_name)?;
    if iface.policy.as_ref().is_some_and(|p| p.table == 0) {
        return Err(invalid(&iface.name, "policy routing table 0 is not a table"));
    }
    let parent = links::by_name(&host, &iface.parent)
        .await?
        .ok_or_else(|| ProvisionError::ParentMissing { parent: iface.parent.clone() })?;
    if links::by_name(&pod, &iface.name).await?.is_some() {
        return Err(ProvisionError::Exists { name: iface.name.clone() });
    }
    let parent_mtu = links::mtu(&parent);
    if let Some(mtu) = iface.mtu.filter(|mtu| *mtu > parent_mtu) {
        return Err(invalid(
            &iface.name,
            format!("MTU {mtu} is above the MTU {parent_mtu} of parent {}", iface.parent),
        ));
    }

    let mut made = Made::default();
    match build(&host, &pod, &pod_ns, &iface, parent.header.index, &mut made).await {
        Ok(created) => Ok(created),
        Err(e) => {
            undo(&host, &pod, &iface, made).await;
            Err(e)
        }
    }
}

async fn build(
    host: &Handle,
    pod: &Handle,
    pod_ns: &Netns,
    iface: &PodInterface,
    parent: u32,
    made: &mut Made,
) -> Result<CreatedInterface, ProvisionError> {
    let temp = iface.temp_name.as_str();
    let name = iface.name.as_str();

    // 1. Create the slave under its temporary name directly in the pod's namespace (IFLA_NET_NS_FD; the
    // parent is found in the host namespace the request is sent in). Creating it in the host and moving
    // it would cost an RCU grace period in the kernel: tens of milliseconds.
    let mut message = match iface.link {
        LinkKind::IpVlan(mode) => LinkIpVlan::new(temp, parent, ipvlan_mode(mode)).build(),
        LinkKind::MacVlan(mode) => LinkMacVlan::new(temp, parent, macvlan_mode(mode)).build(),
    };
    if let Some(mtu) = iface.mtu {
        message.attributes.push(LinkAttribute::Mtu(mtu));
    }
    message.attributes.push(LinkAttribute::NetNsFd(pod_ns.raw_fd()));
    made.stage = Stage::Moving;
    host.link().add(message).execute().await.map_err(|e| add_link_error(iface, e))?;
    let index = links::by_name(pod, temp).await?.ok_or_else(|| vanished(temp))?.header.index;
    made.stage = Stage::InPod(index);

    // 3. Rename it.
    let rename = LinkUnspec::new_with_index(index).name(name.to_owned()).build();
    pod.link().set(rename).execute().await.map_err(|e| match errno(&e) {
        Some(Errno::EEXIST) => ProvisionError::Exists { name: name.to_owned() },
        _ => kernel(format!("renaming {temp} to {name}"), e),
    })?;

    // 4. Sysctls. The gratuitous ARP: with arp_notify set, the kernel announces every IPv4 address of
    // the link when it comes up. Upstream ignores a failed announcement, and so does this.
    sysctl::apply_ipv6(name, iface.ipv6)?;
    if iface.addresses.iter().any(|a| a.addr().is_ipv4()) {
        let _ = sysctl::write("ipv4", name, "arp_notify", "1");
    }

    // 5. Addresses, then up (IPv4 prefix routes appear only on an up link, and gateways need them).
    for address in &iface.addresses {
        add_address(pod, index, name, *address).await?;
    }
    let up = LinkUnspec::new_with_index(index).up().build();
    pod.link().set(up).execute().await.map_err(|e| kernel(format!("bringing {name} up"), e))?;

    // 6. Routes in the main table, then policy routing: a rule per subnet, then the table's routes.
    for route in &iface.routes {
        add_route(pod, index, name, route, None, false).await?;
    }
    if let Some(policy) = &iface.policy {
        for subnet in subnets(iface.addresses.iter().copied()) {
            if let Some(rule) = add_rule(pod, subnet, policy.table).await? {
                made.rules.push(rule);
            }
        }
        for route in &policy.routes {
            add_route(pod, index, name, route, Some(policy.table), false).await?;
        }
    }

    let link = links::by_name(pod, name).await?.ok_or_else(|| vanished(name))?;
    Ok(CreatedInterface { mac: links::mac(&link), mtu: links::mtu(&link) })
}

/// Removes what a failed `create` made. Every step is best effort: the original error is what the
/// caller needs to see.
async fn undo(host: &Handle, pod: &Handle, iface: &PodInterface, made: Made) {
    for rule in made.rules {
        let _ = pod.rule().del(rule).execute().await;
    }
    let temp = iface.temp_name.as_str();
    match made.stage {
        Stage::Nothing => {}
        Stage::Moving => {
            delete_named(pod, temp).await;
            delete_named(host, temp).await;
        }
        Stage::InPod(index) => {
            let _ = pod.link().del(index).execute().await;
        }
    }
}

async fn delete_named(handle: &Handle, name: &str) {
    if let Ok(Some(link)) = links::by_name(handle, name).await {
        let _ = handle.link().del(link.header.index).execute().await;
    }
}

/// Removes interface `name` and the policy rules of its subnets that no other interface still uses.
/// Anything already gone is success.
pub(crate) async fn delete(pod: Handle, name: String) -> Result<(), ProvisionError> {
    let Some((index, own)) = existing_with_subnets(&pod, &name).await? else {
        return Ok(());
    };
    match pod.link().del(index).execute().await {
        Ok(()) => {}
        Err(e) if is_gone(&e) => {}
        Err(e) => return Err(kernel(format!("deleting {name}"), e)),
    }
    if own.is_empty() {
        return Ok(());
    }
    let still_used = subnets(global_addresses(&pod, None).await?);
    let orphaned: BTreeSet<IpNet> = own.difference(&still_used).copied().collect();
    remove_rules(&pod, &name, &orphaned, None).await
}

/// The index of interface `name` and the subnets of its addresses; `None` when there is no such interface
/// (a name the kernel would refuse cannot exist).
async fn existing_with_subnets(pod: &Handle, name: &str) -> Result<Option<(u32, BTreeSet<IpNet>)>, ProvisionError> {
    if links::check_name(name).is_err() {
        return Ok(None);
    }
    let Some(link) = links::by_name(pod, name).await? else {
        return Ok(None);
    };
    let index = link.header.index;
    Ok(Some((index, subnets(global_addresses(pod, Some(index)).await?))))
}

/// Removes the rules "from `subnet` lookup `table`" for every subnet in `sources`; of any table when
/// `table` is `None`. Rules already gone are fine.
async fn remove_rules(
    pod: &Handle,
    name: &str,
    sources: &BTreeSet<IpNet>,
    table: Option<u32>,
) -> Result<(), ProvisionError> {
    if sources.is_empty() {
        return Ok(());
    }
    for version in [IpVersion::V4, IpVersion::V6] {
        let rules: Vec<RuleMessage> =
            pod.rule().get(version).execute().try_collect().await.map_err(|e| kernel("listing rules", e))?;
        for rule in rules {
            let ours = rule.header.action == RuleAction::ToTable
                && table.is_none_or(|t| rule_table(&rule) == t)
                && rule_source(&rule).is_some_and(|source| sources.contains(&source));
            if !ours {
                continue;
            }
            match pod.rule().del(rule).execute().await {
                Ok(()) => {}
                Err(e) if is_gone(&e) => {}
                Err(e) => return Err(kernel(format!("deleting a policy rule of {name}"), e)),
            }
        }
    }
    Ok(())
}

/// Applies DANM's configuration to interface `name` that a delegate made: sysctls, IPv6 addresses again
/// without duplicate address detection, routes, then policy routing. `false` when there is no such
/// interface. The calling thread is in the pod's namespace (for the sysctls).
pub(crate) async fn configure(pod: Handle, setup: InterfaceSetup) -> Result<bool, ProvisionError> {
    let name = setup.name.as_str();
    links::check_name(name)?;
    if setup.policy.as_ref().is_some_and(|p| p.table == 0) {
        return Err(invalid(name, "policy routing table 0 is not a table"));
    }
    let Some(link) = links::by_name(&pod, name).await? else {
        return Ok(false);
    };
    let index = link.header.index;
    sysctl::apply_ipv6(name, setup.ipv6)?;
    if setup.ipv6 == Ipv6Mode::Enabled {
        readd_without_dad(&pod, index, name).await?;
    }
    for route in &setup.routes {
        add_route(&pod, index, name, route, None, true).await?;
    }
    let Some(policy) = &setup.policy else {
        return Ok(true);
    };
    let mut added = Vec::new();
    let outcome = async {
        for subnet in subnets(global_addresses(&pod, Some(index)).await?) {
            if let Some(rule) = add_rule(&pod, subnet, policy.table).await? {
                added.push(rule);
            }
        }
        for route in &policy.routes {
            add_route(&pod, index, name, route, Some(policy.table), true).await?;
        }
        Ok(true)
    }
    .await;
    if outcome.is_err() {
        for rule in added {
            let _ = pod.rule().del(rule).execute().await;
        }
    }
    outcome
}

/// Removes the rules from the subnets of interface `name` to `table` that no other interface of the
/// namespace has an address in. A missing interface is success.
pub(crate) async fn deconfigure(pod: Handle, name: String, table: u32) -> Result<(), ProvisionError> {
    let Some((index, own)) = existing_with_subnets(&pod, &name).await? else {
        return Ok(());
    };
    let elsewhere = subnets(global_addresses_except(&pod, index).await?);
    let orphaned: BTreeSet<IpNet> = own.difference(&elsewhere).copied().collect();
    remove_rules(&pod, &name, &orphaned, Some(table)).await
}

/// Reads interface `name` back.
pub(crate) async fn inspect(pod: Handle, name: String) -> Result<Option<LinkState>, ProvisionError> {
    if links::check_name(&name).is_err() {
        return Ok(None);
    }
    match links::by_name(&pod, &name).await? {
        Some(link) => Ok(Some(links::state(&pod, &link).await?)),
        None => Ok(None),
    }
}

fn ipvlan_mode(mode: IpVlanMode) -> nl::IpVlanMode {
    match mode {
        IpVlanMode::L2 => nl::IpVlanMode::L2,
        IpVlanMode::L3 => nl::IpVlanMode::L3,
        IpVlanMode::L3S => nl::IpVlanMode::L3S,
    }
}

fn macvlan_mode(mode: MacVlanMode) -> nl::MacVlanMode {
    match mode {
        MacVlanMode::Bridge => nl::MacVlanMode::Bridge,
        MacVlanMode::Private => nl::MacVlanMode::Private,
        MacVlanMode::Vepa => nl::MacVlanMode::Vepa,
        MacVlanMode::Passthru => nl::MacVlanMode::Passthrough,
    }
}

fn add_link_error(iface: &PodInterface, e: rtnetlink::Error) -> ProvisionError {
    let kind = match iface.link {
        LinkKind::IpVlan(_) => "ipvlan",
        LinkKind::MacVlan(_) => "macvlan",
    };
    match errno(&e) {
        Some(Errno::EEXIST) => ProvisionError::Exists { name: iface.temp_name.clone() },
        Some(Errno::EOPNOTSUPP) => ProvisionError::Unsupported {
            what: format!("{kind} interfaces"),
            reason: format!("the kernel has no {kind} support"),
        },
        _ => kernel(format!("creating {kind} interface {} on {}", iface.temp_name, iface.parent), e),
    }
}

fn vanished(name: &str) -> ProvisionError {
    kernel(format!("finding interface {name}"), "it vanished while being set up")
}

async fn add_address(pod: &Handle, index: u32, name: &str, address: IpNet) -> Result<(), ProvisionError> {
    let mut request = pod.address().add(index, address.addr(), address.prefix_len());
    if address.addr().is_ipv6() {
        // No duplicate address detection: the address is usable at once, as upstream does it.
        let message = request.message_mut();
        message.header.flags |= AddressHeaderFlags::Nodad;
        message.attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    request.execute().await.map_err(|e| kernel(format!("adding {address} to {name}"), e))
}

/// Adds `route` through interface `index`, in `table` or the main table. With `existing_ok`, a route
/// that already exists (a delegate's IPAM may have added it) is left as it is.
async fn add_route(
    pod: &Handle,
    index: u32,
    name: &str,
    route: &Route,
    table: Option<u32>,
    existing_ok: bool,
) -> Result<(), ProvisionError> {
    let Route { dst, gateway } = *route;
    let describe = || match table {
        Some(table) => format!("route {dst} via {gateway} in table {table}"),
        None => format!("route {dst} via {gateway}"),
    };
    let dst = dst.trunc();
    let builder = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(dst.addr(), dst.prefix_len())
        .and_then(|b| b.gateway(gateway))
        .map_err(|e| invalid(name, format!("{}: {e}", describe())))?
        .output_interface(index);
    let builder = match table {
        Some(table) => builder.table_id(table),
        None => builder,
    };
    match pod.route().add(builder.build()).execute().await {
        Err(e) if existing_ok && errno(&e) == Some(Errno::EEXIST) => Ok(()),
        other => other.map_err(|e| kernel(format!("adding {} to {name}", describe()), e)),
    }
}

/// Adds "from `subnet` lookup `table`"; returns the rule, or `None` when it already existed. (The
/// kernel does not refuse a duplicate of a rule given no priority: it picks a new one, so the
/// existing rules are looked at first.)
async fn add_rule(pod: &Handle, subnet: IpNet, table: u32) -> Result<Option<RuleMessage>, ProvisionError> {
    let version = if subnet.addr().is_ipv4() { IpVersion::V4 } else { IpVersion::V6 };
    let existing: Vec<RuleMessage> =
        pod.rule().get(version).execute().try_collect().await.map_err(|e| kernel("listing rules", e))?;
    if existing.iter().any(|rule| {
        rule.header.action == RuleAction::ToTable && rule_table(rule) == table && rule_source(rule) == Some(subnet)
    }) {
        return Ok(None);
    }
    let request = pod.rule().add().table_id(table).action(RuleAction::ToTable);
    let (message, result) = match subnet {
        IpNet::V4(net) => {
            let mut request = request.v4().source_prefix(net.network(), net.prefix_len());
            (request.message_mut().clone(), request.execute().await)
        }
        IpNet::V6(net) => {
            let mut request = request.v6().source_prefix(net.network(), net.prefix_len());
            (request.message_mut().clone(), request.execute().await)
        }
    };
    match result {
        Ok(()) => Ok(Some(message)),
        Err(e) if errno(&e) == Some(Errno::EEXIST) => Ok(None),
        Err(e) => Err(kernel(format!("adding rule from {subnet} lookup {table}"), e)),
    }
}

/// The subnets of `addresses` (each address with its host bits cleared).
fn subnets(addresses: impl IntoIterator<Item = IpNet>) -> BTreeSet<IpNet> {
    addresses.into_iter().map(|a| a.trunc()).collect()
}

async fn global_addresses(pod: &Handle, index: Option<u32>) -> Result<Vec<IpNet>, ProvisionError> {
    Ok(links::addresses(pod, index)
        .await?
        .into_iter()
        .filter(|(_, scope)| *scope != AddressScope::Link && *scope != AddressScope::Host)
        .map(|(net, _)| net)
        .collect())
}

/// The global addresses of every interface but the one with `index`.
async fn global_addresses_except(pod: &Handle, index: u32) -> Result<Vec<IpNet>, ProvisionError> {
    let messages: Vec<AddressMessage> =
        pod.address().get().execute().try_collect().await.map_err(|e| kernel("listing addresses", e))?;
    Ok(messages
        .iter()
        .filter(|m| m.header.index != index)
        .filter(|m| m.header.scope != AddressScope::Link && m.header.scope != AddressScope::Host)
        .filter_map(links::address_of)
        .collect())
}

/// Adds every IPv6 address of interface `index` that is subject to duplicate address detection again
/// without it, so that it is usable at once, as upstream does for delegates' addresses.
async fn readd_without_dad(pod: &Handle, index: u32, name: &str) -> Result<(), ProvisionError> {
    let messages: Vec<AddressMessage> = pod
        .address()
        .get()
        .set_link_index_filter(index)
        .execute()
        .try_collect()
        .await
        .map_err(|e| kernel(format!("listing the addresses of {name}"), e))?;
    for message in messages {
        let Some(address) = links::address_of(&message).filter(|a| a.addr().is_ipv6()) else { continue };
        if message.header.scope == AddressScope::Link || has_nodad(&message) {
            continue;
        }
        pod.address()
            .del(message)
            .execute()
            .await
            .map_err(|e| kernel(format!("removing {address} from {name} to add it without DAD"), e))?;
        add_address(pod, index, name, address).await?;
    }
    Ok(())
}

fn has_nodad(message: &AddressMessage) -> bool {
    message.header.flags.contains(AddressHeaderFlags::Nodad)
        || message.attributes.iter().any(|a| matches!(a, AddressAttribute::Flags(f) if f.contains(AddressFlags::Nodad)))
}

fn rule_table(rule: &RuleMessage) -> u32 {
    rule.attributes
        .iter()
        .find_map(|a| if let RuleAttribute::Table(t) = a { Some(*t) } else { None })
        .unwrap_or(u32::from(rule.header.table))
}

fn rule_source(rule: &RuleMessage) -> Option<IpNet> {
    let source =
        rule.attributes.iter().find_map(|a| if let RuleAttribute::Source(ip) = a { Some(*ip) } else { None })?;
    IpNet::new(source, rule.header.src_len).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_clear_host_bits_and_deduplicate() {
        let addresses = ["10.0.0.5/24", "10.0.0.6/24", "fd00::5/64"].map(|a| a.parse::<IpNet>().unwrap());
        let got: Vec<String> = subnets(addresses).iter().map(ToString::to_string).collect();
        assert_eq!(got, ["10.0.0.0/24", "fd00::/64"]);
    }
}

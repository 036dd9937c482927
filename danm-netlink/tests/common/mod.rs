//! Test support: private network namespaces, a second namespace to act as the pod, and kernel read-backs
//! through rtnetlink (with `ip -j` as a cross-check).
#![allow(dead_code, missing_docs)]

use std::fs::File;
use std::future::Future;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;

use danm_core::provision::{Ipv6Mode, LinkKind, PodInterface, Route};
use futures::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::link::{InfoData, LinkAttribute, LinkInfo, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use netlink_packet_route::rule::{RuleAttribute, RuleMessage};
use nix::sched::{CloneFlags, setns, unshare};
use rtnetlink::{Handle, IpVersion, LinkBridge, LinkDummy, LinkUnspec, LinkVeth, RouteMessageBuilder};

/// Says why a test does not run, past libtest's output capture; under CI (`CI=true`) a skip is a failure.
pub fn skip(test: &str, why: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test} cannot run under CI: {why}");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {why}");
}

/// Moves the calling (test) thread into a fresh network namespace, which then serves as the host. `false`
/// (after saying so) when that is not permitted.
pub fn enter_fresh_netns(test: &str) -> bool {
    match unshare(CloneFlags::CLONE_NEWNET) {
        Ok(()) => true,
        Err(e) => {
            skip(test, &format!("cannot create a network namespace ({e}); run the tests as root"));
            false
        }
    }
}

/// Runs `future` to completion on a current-thread tokio runtime (which rtnetlink's sockets need).
pub fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_io().build().unwrap().block_on(future)
}

/// An rtnetlink handle in the calling thread's namespace; call inside [`block_on`].
pub fn connect() -> Handle {
    let (connection, handle, _) = rtnetlink::new_connection().unwrap();
    tokio::spawn(connection);
    handle
}

/// A network namespace of its own, standing for a pod's. It lives as long as this value.
#[derive(Debug)]
pub struct Ns {
    file: File,
}

impl Ns {
    pub fn new() -> Self {
        let file = std::thread::spawn(|| {
            unshare(CloneFlags::CLONE_NEWNET).unwrap();
            File::open("/proc/thread-self/ns/net").unwrap()
        })
        .join()
        .unwrap();
        Self { file }
    }

    /// A path that opens this namespace.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/fd/{}", std::process::id(), self.file.as_raw_fd()))
    }

    /// Runs `f` on a thread inside this namespace.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                setns(&self.file, CloneFlags::CLONE_NEWNET).unwrap();
                f()
            })
            .join()
            .unwrap()
        })
    }

    /// Runs an rtnetlink job inside this namespace.
    pub fn netlink<T: Send, Fut: Future<Output = T>>(&self, job: impl FnOnce(Handle) -> Fut + Send) -> T {
        self.run(|| block_on(async { job(connect()).await }))
    }
}

pub fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn route(dst: &str, gateway: &str) -> Route {
    Route { dst: net(dst), gateway: ip(gateway) }
}

/// A pod interface with nothing but the essentials.
pub fn pod_iface(ns: &Ns, name: &str, temp: &str, link: LinkKind, parent: &str, addresses: &[&str]) -> PodInterface {
    PodInterface {
        netns: ns.path(),
        name: name.to_owned(),
        temp_name: temp.to_owned(),
        link,
        parent: parent.to_owned(),
        mtu: None,
        addresses: addresses.iter().map(|a| net(a)).collect(),
        routes: vec![],
        policy: None,
        ipv6: if addresses.iter().any(|a| a.contains(':')) { Ipv6Mode::Enabled } else { Ipv6Mode::Disabled },
    }
}

pub async fn add_veth(h: &Handle, a: &str, b: &str) {
    h.link().add(LinkVeth::new(a, b).build()).execute().await.unwrap();
    set_up(h, a).await;
    set_up(h, b).await;
}

pub async fn add_dummy(h: &Handle, name: &str) {
    h.link().add(LinkDummy::new(name).build()).execute().await.unwrap();
    set_up(h, name).await;
}

pub async fn add_bridge(h: &Handle, name: &str) {
    h.link().add(LinkBridge::new(name).build()).execute().await.unwrap();
}

pub async fn set_up(h: &Handle, name: &str) {
    let index = link(h, name).await.unwrap().header.index;
    h.link().set(LinkUnspec::new_with_index(index).up().build()).execute().await.unwrap();
}

pub async fn add_address(h: &Handle, name: &str, address: &str) {
    let index = link(h, name).await.unwrap().header.index;
    let address = net(address);
    h.address().add(index, address.addr(), address.prefix_len()).execute().await.unwrap();
}

/// The link called `name`, if any.
pub async fn link(h: &Handle, name: &str) -> Option<LinkMessage> {
    h.link().get().match_name(name).execute().try_next().await.ok().flatten()
}

/// The names of all links.
pub async fn link_names(h: &Handle) -> Vec<String> {
    let links: Vec<LinkMessage> = h.link().get().execute().try_collect().await.unwrap();
    let mut names: Vec<String> = links.iter().map(attr_name).collect();
    names.sort();
    names
}

pub fn attr_name(link: &LinkMessage) -> String {
    link.attributes.iter().find_map(|a| if let LinkAttribute::IfName(n) = a { Some(n.clone()) } else { None }).unwrap()
}

pub fn alias(link: &LinkMessage) -> Option<String> {
    link.attributes.iter().find_map(|a| if let LinkAttribute::IfAlias(n) = a { Some(n.clone()) } else { None })
}

pub fn info_data(link: &LinkMessage) -> Option<InfoData> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => {
            infos.iter().find_map(|i| if let LinkInfo::Data(d) = i { Some(d.clone()) } else { None })
        }
        _ => None,
    })
}

pub fn mtu(link: &LinkMessage) -> u32 {
    link.attributes.iter().find_map(|a| if let LinkAttribute::Mtu(m) = a { Some(*m) } else { None }).unwrap()
}

/// A route as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRoute {
    pub table: u32,
    pub dst: IpNet,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
}

/// All IPv4 and IPv6 routes of every table.
pub async fn routes(h: &Handle) -> Vec<KernelRoute> {
    let mut all: Vec<RouteMessage> =
        h.route().get(RouteMessageBuilder::<Ipv4Addr>::new().build()).execute().try_collect().await.unwrap();
    let v6: Vec<RouteMessage> =
        h.route().get(RouteMessageBuilder::<Ipv6Addr>::new().build()).execute().try_collect().await.unwrap();
    all.extend(v6);
    all.iter()
        .map(|r| {
            let table = r
                .attributes
                .iter()
                .find_map(|a| if let RouteAttribute::Table(t) = a { Some(*t) } else { None })
                .unwrap_or(u32::from(r.header.table));
            let addr = |want: fn(&RouteAttribute) -> Option<&RouteAddress>| {
                r.attributes.iter().find_map(want).and_then(|a| match a {
                    RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
                    RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
                    _ => None,
                })
            };
            let dst_ip = addr(|a| if let RouteAttribute::Destination(d) = a { Some(d) } else { None });
            let unspecified = if r.header.address_family == netlink_packet_route::AddressFamily::Inet6 {
                IpAddr::V6(Ipv6Addr::UNSPECIFIED)
            } else {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            };
            KernelRoute {
                table,
                dst: IpNet::new(dst_ip.unwrap_or(unspecified), r.header.destination_prefix_length).unwrap(),
                gateway: addr(|a| if let RouteAttribute::Gateway(g) = a { Some(g) } else { None }),
                oif: r.attributes.iter().find_map(|a| if let RouteAttribute::Oif(i) = a { Some(*i) } else { None }),
            }
        })
        .collect()
}

/// A policy rule as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRule {
    pub table: u32,
    pub source: Option<IpNet>,
}

/// All IPv4 and IPv6 rules.
pub async fn rules(h: &Handle) -> Vec<KernelRule> {
    let mut all: Vec<RuleMessage> = h.rule().get(IpVersion::V4).execute().try_collect().await.unwrap();
    let v6: Vec<RuleMessage> = h.rule().get(IpVersion::V6).execute().try_collect().await.unwrap();
    all.extend(v6);
    all.iter()
        .map(|r| KernelRule {
            table: r
                .attributes
                .iter()
                .find_map(|a| if let RuleAttribute::Table(t) = a { Some(*t) } else { None })
                .unwrap_or(u32::from(r.header.table)),
            source: r
                .attributes
                .iter()
                .find_map(|a| if let RuleAttribute::Source(s) = a { Some(*s) } else { None })
                .map(|s| IpNet::new(s, r.header.src_len).unwrap()),
        })
        .collect()
}

/// The rules with a source (the default rules have none).
pub async fn source_rules(h: &Handle) -> Vec<KernelRule> {
    rules(h).await.into_iter().filter(|r| r.source.is_some()).collect()
}

/// Reads `net.<family>.conf.<ifname>.<key>` in the calling thread's namespace.
pub fn sysctl(family: &str, ifname: &str, key: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/net/{family}/conf/{ifname}/{key}")).unwrap().trim().to_owned()
}

/// `ip -j <args>` in the calling thread's namespace (a cross-check only: the crate never runs `ip`).
pub fn ip_json(args: &[&str]) -> serde_json::Value {
    let out = Command::new("ip").arg("-j").args(args).output().expect("running ip");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `ip <args>` in the calling thread's namespace, as an operator would change things behind DANM's back.
pub fn ip_cmd(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("running ip");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A DanmNet `default/<name>` with NetworkID `id` on `device`, with a VLAN or a VXLAN.
pub fn network(name: &str, id: &str, device: &str, vlan: Option<i64>, vxlan: Option<i64>) -> danm_core::model::Network {
    use danm_core::model::{Network, NetworkKind, NetworkOptions, NetworkSpec, ObjectMeta};
    let options = NetworkOptions { host_device: device.into(), vlan, vxlan, ..NetworkOptions::default() };
    let spec = NetworkSpec { network_id: id.into(), options, ..NetworkSpec::default() };
    Network::new(NetworkKind::DanmNet, ObjectMeta::new(name, Some("default")), spec)
}

/// One pass of netwatcher's logic over `networks` on `provisioner`: scan, plan, apply. Panics when a step
/// fails; returns the plan it carried out.
pub fn netwatch_pass(
    provisioner: &danm_netlink::NetlinkProvisioner,
    networks: &[danm_core::model::Network],
) -> danm_core::netwatch::HostPlan {
    use danm_core::provision::HostInventory;
    let scan = futures::executor::block_on(provisioner.scan_hosts()).unwrap();
    let plan = danm_core::netwatch::plan(networks, &scan);
    let outcomes = futures::executor::block_on(danm_core::netwatch::apply(&plan, provisioner));
    assert_eq!(danm_core::netwatch::failure_summary(&outcomes), None);
    plan
}

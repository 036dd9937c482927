//! The CNI ADD result, held in one canonical in-memory shape (that of CNI 1.1.0), plus the abbreviated
//! IPAM result and the merge of several attachments' results into one.
//!
//! Conversion to and from the JSON of each supported version lives in the sibling `result_json`
//! module; this module holds the data and the version-independent operations on it.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// A CNI ADD result: the interfaces an attachment created, their addresses, routes and DNS settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniResult {
    /// Every interface the attachment created, host-side ones included.
    pub interfaces: Vec<Interface>,
    /// The addresses assigned.
    pub ips: Vec<IpConfig>,
    /// The routes created.
    pub routes: Vec<Route>,
    /// DNS settings.
    pub dns: Dns,
}

/// One interface of a result (`interfaces[]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Interface {
    /// The interface name.
    pub name: String,
    /// The hardware address, where L2 addresses are meaningful.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// The MTU (CNI 1.1.0 and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// The isolation domain (e.g. netns path) holding the interface; `None` for host interfaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// An absolute path to a socket file for this interface (CNI 1.1.0 and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_path: Option<String>,
    /// The platform identifier of the PCI device behind this interface (CNI 1.1.0 and later).
    #[serde(default, rename = "pciID", skip_serializing_if = "Option::is_none")]
    pub pci_id: Option<String>,
}

/// One address of a result (`ips[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpConfig {
    /// The address with the prefix length of its subnet, e.g. `192.168.1.3/24`.
    pub address: IpNet,
    /// The default gateway of the subnet, if there is one.
    pub gateway: Option<IpAddr>,
    /// Index into the result's `interfaces`; absent in IPAM results.
    pub interface: Option<usize>,
}

/// One route of a result (`routes[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The destination, in CIDR notation.
    pub dst: IpNet,
    /// The next hop; when absent a gateway from `ips` may be used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
    /// The path MTU to the destination (CNI 1.1.0 and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// The MSS to advertise to the destination (CNI 1.1.0 and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advmss: Option<u32>,
    /// The route priority, lower is preferred (CNI 1.1.0 and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    /// The routing table (CNI 1.1.0 and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    /// The route scope: global (0), link (253), host (254) (CNI 1.1.0 and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<u32>,
}

impl Route {
    /// A route to `dst` via `gw`, without the 1.1.0 attributes.
    pub fn new(dst: IpNet, gw: Option<IpAddr>) -> Self {
        Self { dst, gw, mtu: None, advmss: None, priority: None, table: None, scope: None }
    }
}

/// DNS settings, as found in results and in network configurations (`dns`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    /// Name servers (IPv4 or IPv6 addresses), in priority order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    /// The local domain for short host-name lookups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Search domains, in priority order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    /// Resolver options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    /// Whether no setting is present.
    pub fn is_empty(&self) -> bool {
        self.nameservers.is_empty() && self.domain.is_none() && self.search.is_empty() && self.options.is_empty()
    }

    /// Adds `other`'s settings after this one's: lists are appended without repeating entries, and
    /// `domain` is taken from `other` only when this one has none.
    pub fn extend(&mut self, other: Dns) {
        fn append(into: &mut Vec<String>, from: Vec<String>) {
            for s in from {
                if !into.contains(&s) {
                    into.push(s);
                }
            }
        }
        append(&mut self.nameservers, other.nameservers);
        append(&mut self.search, other.search);
        append(&mut self.options, other.options);
        if self.domain.is_none() {
            self.domain = other.domain;
        }
    }
}

impl CniResult {
    /// Merges the results of several attachments into one, first attachment first.
    ///
    /// Interfaces are concatenated and each `ips[].interface` index is re-based onto the merged list;
    /// addresses are concatenated; routes are concatenated with exact duplicates dropped; DNS settings
    /// are combined by [`Dns::extend`].
    pub fn merge(results: impl IntoIterator<Item = CniResult>) -> CniResult {
        let mut out = CniResult::default();
        for r in results {
            let offset = out.interfaces.len();
            out.interfaces.extend(r.interfaces);
            out.ips.extend(
                r.ips
                    .into_iter()
                    .map(|ip| IpConfig { interface: ip.interface.and_then(|i| i.checked_add(offset)), ..ip }),
            );
            for route in r.routes {
                if !out.routes.contains(&route) {
                    out.routes.push(route);
                }
            }
            out.dns.extend(r.dns);
        }
        out
    }

    /// The abbreviated form an IPAM plugin returns: no interfaces and no `ips[].interface`.
    pub fn to_ipam(&self) -> IpamResult {
        IpamResult {
            ips: self.ips.iter().map(|ip| IpConfig { interface: None, ..ip.clone() }).collect(),
            routes: self.routes.clone(),
            dns: self.dns.clone(),
        }
    }

    /// Drops what protocol `version` cannot express (the 1.1.0 interface and route fields before 1.1.0),
    /// so that the result equals what a round trip through that version's JSON gives back.
    #[must_use]
    pub fn restricted_to(mut self, version: super::CniVersion) -> CniResult {
        if !version.has_v1_1_fields() {
            for i in &mut self.interfaces {
                i.mtu = None;
                i.socket_path = None;
                i.pci_id = None;
            }
            for r in &mut self.routes {
                *r = Route::new(r.dst, r.gw);
            }
        }
        self
    }
}

/// The abbreviated result of an IPAM plugin: addresses, routes and DNS, unaware of interfaces.
///
/// Its JSON is that of [`CniResult`] without `interfaces` and without `ips[].interface`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpamResult {
    /// The addresses allocated; their `interface` is always `None`.
    pub ips: Vec<IpConfig>,
    /// The routes to install.
    pub routes: Vec<Route>,
    /// DNS settings.
    pub dns: Dns,
}

impl IpamResult {
    /// The full result of an interface plugin: `interfaces` plus these addresses, each assigned to the
    /// interface at index `interface` of that list (or to none when `None`). The index should lie
    /// within `interfaces`; reading the JSON of a result whose index does not is an error.
    pub fn into_result(self, interfaces: Vec<Interface>, interface: Option<usize>) -> CniResult {
        CniResult {
            interfaces,
            ips: self.ips.into_iter().map(|ip| IpConfig { interface, ..ip }).collect(),
            routes: self.routes,
            dns: self.dns,
        }
    }
}

impl From<IpamResult> for CniResult {
    fn from(r: IpamResult) -> Self {
        r.into_result(Vec::new(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(addr: &str, gw: Option<&str>, iface: Option<usize>) -> IpConfig {
        IpConfig { address: addr.parse().unwrap(), gateway: gw.map(|g| g.parse().unwrap()), interface: iface }
    }

    fn iface(name: &str) -> Interface {
        Interface { name: name.into(), sandbox: Some("/run/netns/x".into()), ..Interface::default() }
    }

    #[test]
    fn merge_rebases_interface_indexes_and_combines() {
        let a = CniResult {
            interfaces: vec![iface("veth-a"), iface("eth0")],
            ips: vec![ip("10.0.0.2/24", Some("10.0.0.1"), Some(1))],
            routes: vec![Route::new("0.0.0.0/0".parse().unwrap(), Some("10.0.0.1".parse().unwrap()))],
            dns: Dns { nameservers: vec!["10.0.0.53".into()], domain: Some("a.local".into()), ..Dns::default() },
        };
        let b = CniResult {
            interfaces: vec![iface("net1")],
            ips: vec![ip("fd00::2/64", None, Some(0)), ip("192.0.2.9/32", None, None)],
            routes: vec![
                Route::new("0.0.0.0/0".parse().unwrap(), Some("10.0.0.1".parse().unwrap())),
                Route::new("fd01::/64".parse().unwrap(), None),
            ],
            dns: Dns {
                nameservers: vec!["10.0.0.53".into(), "fd00::53".into()],
                domain: Some("b.local".into()),
                search: vec!["svc".into()],
                options: vec!["ndots:2".into()],
            },
        };
        let m = CniResult::merge([a, b]);
        let names: Vec<&str> = m.interfaces.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["veth-a", "eth0", "net1"]);
        let idx: Vec<Option<usize>> = m.ips.iter().map(|i| i.interface).collect();
        assert_eq!(idx, [Some(1), Some(2), None]);
        assert_eq!(m.routes.len(), 2);
        assert_eq!(m.dns.nameservers, ["10.0.0.53", "fd00::53"]);
        assert_eq!(m.dns.domain.as_deref(), Some("a.local"));
        assert_eq!((m.dns.search.len(), m.dns.options.len()), (1, 1));
        assert_eq!(CniResult::merge([]), CniResult::default());
    }

    #[test]
    fn ipam_abbreviation_and_expansion() {
        let full = CniResult {
            interfaces: vec![iface("eth0")],
            ips: vec![ip("10.0.0.2/24", Some("10.0.0.1"), Some(0))],
            routes: vec![],
            dns: Dns::default(),
        };
        let ipam = full.to_ipam();
        assert_eq!(ipam.ips, [ip("10.0.0.2/24", Some("10.0.0.1"), None)]);
        assert_eq!(ipam.clone().into_result(vec![iface("eth0")], Some(0)), full);
        let bare = CniResult::from(ipam);
        assert!(bare.interfaces.is_empty() && bare.ips.iter().all(|i| i.interface.is_none()));
    }

    #[test]
    fn restriction_drops_only_v1_1_fields() {
        let mut r = CniResult {
            interfaces: vec![Interface { mtu: Some(9000), pci_id: Some("0000:3b:00.1".into()), ..iface("eth0") }],
            ..CniResult::default()
        };
        r.routes.push(Route { table: Some(100), scope: Some(253), ..Route::new("10.0.0.0/8".parse().unwrap(), None) });
        let old = r.clone().restricted_to(super::super::CniVersion::V1_0_0);
        assert_eq!(old.interfaces, [iface("eth0")]);
        assert_eq!(old.routes, [Route::new("10.0.0.0/8".parse().unwrap(), None)]);
        assert_eq!(r.clone().restricted_to(super::super::CniVersion::V1_1_0), r);
    }
}

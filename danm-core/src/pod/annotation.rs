//! The `danm.k8s.io/interfaces` pod annotation: which networks a pod connects to, and how.
//!
//! This module parses and validates the annotation's text into [`InterfaceRequest`]s, and writes them back
//! with upstream's key names. It does not look networks up, check addresses against a network's subnet, or
//! decide what happens when the list is empty (see [`super::connections_or_default`]).
//!
//! Compatibility with upstream DANM v4.3: object keys are matched case-insensitively and a key whose value
//! is `null` or `""` counts as absent, as Go's JSON decoder does; unknown keys are rejected, as upstream's
//! strict decoding does. Unlike upstream, text after the JSON list is an error.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::fieldpath;
use crate::ipam::{IpRequest, IpRequestParseError};
use crate::model::{NetworkKey, NetworkKind};

use super::raw::{RawInterface, RawList};

/// The annotation key of upstream DANM v4.3.
pub const INTERFACES_ANNOTATION: &str = "danm.k8s.io/interfaces";
/// The annotation key of upstream's unreleased master and its continuation; accepted as well.
pub const INTERFACES_ANNOTATION_ALT: &str = "danm.io/interfaces";
/// The most interfaces one annotation may ask for.
pub const MAX_INTERFACES: usize = 64;

/// A network named from a pod or a Service: its kind and object name, without a namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct NetworkRef {
    /// DanmNet (`network`), TenantNetwork (`tenantNetwork`) or ClusterNetwork (`clusterNetwork`).
    pub kind: NetworkKind,
    /// The network object's name.
    pub name: String,
}

impl NetworkRef {
    /// A reference to the network of `kind` named `name`.
    pub fn new(kind: NetworkKind, name: impl Into<String>) -> Self {
        Self { kind, name: name.into() }
    }

    /// The key of the referenced object as seen from a pod or Service in `namespace`.
    pub fn key(&self, namespace: &str) -> NetworkKey {
        NetworkKey::new(self.kind, namespace, self.name.clone())
    }
}

impl fmt::Display for NetworkRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// The key that names a network of `kind` in the annotation: `network`, `tenantNetwork` or `clusterNetwork`.
pub fn selector_key(kind: NetworkKind) -> &'static str {
    match kind {
        NetworkKind::DanmNet => "network",
        NetworkKind::TenantNetwork => "tenantNetwork",
        NetworkKind::ClusterNetwork => "clusterNetwork",
    }
}

/// One element of the annotation: one interface to create in the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceRequest {
    /// The network to connect to.
    pub network: NetworkRef,
    /// The IPv4 request; `None` when the key is absent (no IPv4 address).
    pub ip: Option<IpRequest>,
    /// The IPv6 request; `None` when the key is absent (no IPv6 address).
    pub ip6: Option<IpRequest>,
    /// IPv4 policy routes: destination network to gateway. Destinations are stored with host bits cleared.
    pub proutes: BTreeMap<IpNet, IpAddr>,
    /// IPv6 policy routes: destination network to gateway.
    pub proutes6: BTreeMap<IpNet, IpAddr>,
}

impl InterfaceRequest {
    /// A request for `network` with no addresses and no policy routes.
    pub fn new(network: NetworkRef) -> Self {
        Self { network, ip: None, ip6: None, proutes: BTreeMap::new(), proutes6: BTreeMap::new() }
    }
}

impl Serialize for InterfaceRequest {
    /// Writes the element with upstream's key names, leaving out absent and empty values.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry(selector_key(self.network.kind), &self.network.name)?;
        if let Some(ip) = &self.ip {
            map.serialize_entry("ip", ip)?;
        }
        if let Some(ip6) = &self.ip6 {
            map.serialize_entry("ip6", ip6)?;
        }
        if !self.proutes.is_empty() {
            map.serialize_entry("proutes", &RoutesOut(&self.proutes))?;
        }
        if !self.proutes6.is_empty() {
            map.serialize_entry("proutes6", &RoutesOut(&self.proutes6))?;
        }
        map.end()
    }
}

/// Policy routes written as a JSON object of strings.
struct RoutesOut<'a>(&'a BTreeMap<IpNet, IpAddr>);

impl Serialize for RoutesOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(dst, gw)| (dst.to_string(), gw.to_string())))
    }
}

/// Writes a list of requests as an annotation value that [`parse_interfaces`] reads back unchanged.
pub fn interfaces_to_annotation(requests: &[InterfaceRequest]) -> String {
    // Serialising strings and maps of strings into JSON cannot fail.
    serde_json::to_string(requests).unwrap_or_default()
}

/// Why the interfaces annotation was refused. Every message names the annotation key and, where there is
/// one, the element and field, e.g. `danm.k8s.io/interfaces[1].ip`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnnotationError {
    /// Both annotation keys are present and their values differ.
    #[error("annotations `{first}` and `{second}` are both set and differ; set only one")]
    Conflicting {
        /// The upstream v4.3 key.
        first: &'static str,
        /// The alternative key.
        second: &'static str,
    },
    /// The value is not a JSON list of objects with fields of the right types.
    #[error("{path}: malformed JSON: {message}")]
    Malformed {
        /// Where the problem is.
        path: String,
        /// What the JSON decoder reported.
        message: String,
    },
    /// The list has more elements than [`MAX_INTERFACES`].
    #[error("{key}: {count} interfaces requested, at most {max} are allowed")]
    TooMany {
        /// The annotation key.
        key: String,
        /// How many elements the list has.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// An element has a key that is not part of the schema.
    #[error("{path}: unknown key `{field}`")]
    UnknownKey {
        /// The element, e.g. `danm.k8s.io/interfaces[0]`.
        path: String,
        /// The unknown key.
        field: String,
    },
    /// An element names no network.
    #[error("{path}: names no network; set one of `network`, `tenantNetwork` or `clusterNetwork`")]
    NoSelector {
        /// The element.
        path: String,
    },
    /// An element names more than one network.
    #[error("{path}: names a network with both `{first}` and `{second}`; set only one")]
    TwoSelectors {
        /// The element.
        path: String,
        /// The first selector key found.
        first: &'static str,
        /// The second selector key found.
        second: &'static str,
    },
    /// The only network selector of an element is empty.
    #[error("{path}: the network name is empty")]
    EmptyNetworkName {
        /// The selector field, e.g. `danm.k8s.io/interfaces[0].network`.
        path: String,
    },
    /// `ip` or `ip6` is not `dynamic`, `none` or an address.
    #[error("{path}: {source}")]
    BadIp {
        /// The field.
        path: String,
        /// The parse error.
        source: IpRequestParseError,
    },
    /// A static `ip` is IPv6, or a static `ip6` is IPv4.
    #[error("{path}: `{address}` is not an {expected} address")]
    WrongFamily {
        /// The field.
        path: String,
        /// The requested address.
        address: IpAddr,
        /// `IPv4` or `IPv6`.
        expected: &'static str,
    },
    /// A policy route is not a destination CIDR mapped to a gateway address of the right family.
    #[error("{path}: {problem}")]
    BadRoute {
        /// The route entry, e.g. `danm.k8s.io/interfaces[0].proutes["10.0.0.0/8"]`.
        path: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// Reads the interfaces annotation from a pod's annotations.
///
/// Returns `Ok(None)` when neither key is present, and `Ok(Some(list))` otherwise; the list may be empty
/// (JSON `[]` or `null`). When both keys are present their values must be equal.
pub fn interfaces_from_annotations(
    annotations: &BTreeMap<String, String>,
) -> Result<Option<Vec<InterfaceRequest>>, AnnotationError> {
    let first = annotations.get(INTERFACES_ANNOTATION);
    let second = annotations.get(INTERFACES_ANNOTATION_ALT);
    let (key, value) = match (first, second) {
        (None, None) => return Ok(None),
        (Some(a), Some(b)) if a != b => {
            return Err(AnnotationError::Conflicting {
                first: INTERFACES_ANNOTATION,
                second: INTERFACES_ANNOTATION_ALT,
            });
        }
        (Some(a), _) => (INTERFACES_ANNOTATION, a),
        (None, Some(b)) => (INTERFACES_ANNOTATION_ALT, b),
    };
    parse_interfaces(key, value).map(Some)
}

/// Parses and validates one annotation value; `key` is the annotation key used in error paths.
pub fn parse_interfaces(key: &str, value: &str) -> Result<Vec<InterfaceRequest>, AnnotationError> {
    let mut de = serde_json::Deserializer::from_str(value);
    let raw: Option<RawList> = serde_path_to_error::deserialize(&mut de).map_err(|e| AnnotationError::Malformed {
        path: fieldpath::extend(key, e.path()),
        message: e.inner().to_string(),
    })?;
    de.end().map_err(|e| AnnotationError::Malformed { path: key.to_owned(), message: e.to_string() })?;
    let Some(raw) = raw else { return Ok(Vec::new()) };
    if raw.total > MAX_INTERFACES {
        return Err(AnnotationError::TooMany { key: key.to_owned(), count: raw.total, max: MAX_INTERFACES });
    }
    raw.items.into_iter().enumerate().map(|(index, item)| validate(key, index, item)).collect()
}

/// Turns one decoded element into a request, or says which field is wrong.
fn validate(key: &str, index: usize, raw: RawInterface) -> Result<InterfaceRequest, AnnotationError> {
    let mut element = key.to_owned();
    fieldpath::push_index(&mut element, index);
    if let Some(field) = raw.unknown {
        return Err(AnnotationError::UnknownKey { path: element, field });
    }
    let network = select_network(&element, raw.network, raw.tenant_network, raw.cluster_network)?;
    let ip = parse_ip(&element, "ip", raw.ip, true)?;
    let ip6 = parse_ip(&element, "ip6", raw.ip6, false)?;
    let proutes = parse_routes(&element, "proutes", raw.proutes.unwrap_or_default(), true)?;
    let proutes6 = parse_routes(&element, "proutes6", raw.proutes6.unwrap_or_default(), false)?;
    Ok(InterfaceRequest { network, ip, ip6, proutes, proutes6 })
}

/// Picks the one network selector of an element. As upstream, an empty selector counts as absent.
fn select_network(
    element: &str,
    network: Option<String>,
    tenant: Option<String>,
    cluster: Option<String>,
) -> Result<NetworkRef, AnnotationError> {
    let given =
        [(NetworkKind::DanmNet, network), (NetworkKind::TenantNetwork, tenant), (NetworkKind::ClusterNetwork, cluster)];
    let mut chosen: Option<NetworkRef> = None;
    let mut empty: Option<NetworkKind> = None;
    for (kind, name) in given {
        match name {
            None => {}
            Some(name) if name.is_empty() => empty = empty.or(Some(kind)),
            Some(name) => match &chosen {
                Some(first) => {
                    return Err(AnnotationError::TwoSelectors {
                        path: element.to_owned(),
                        first: selector_key(first.kind),
                        second: selector_key(kind),
                    });
                }
                None => chosen = Some(NetworkRef { kind, name }),
            },
        }
    }
    match (chosen, empty) {
        (Some(chosen), _) => Ok(chosen),
        (None, Some(kind)) => {
            Err(AnnotationError::EmptyNetworkName { path: fieldpath::with_key(element, selector_key(kind)) })
        }
        (None, None) => Err(AnnotationError::NoSelector { path: element.to_owned() }),
    }
}

/// Parses `ip` (`v4`) or `ip6`; an empty value counts as absent, as upstream.
fn parse_ip(element: &str, field: &str, value: Option<String>, v4: bool) -> Result<Option<IpRequest>, AnnotationError> {
    let Some(value) = value.filter(|v| !v.is_empty()) else { return Ok(None) };
    let path = || fieldpath::with_key(element, field);
    let request: IpRequest = value.parse().map_err(|source| AnnotationError::BadIp { path: path(), source })?;
    if let IpRequest::Static(address) = request
        && address.is_ipv4() != v4
    {
        return Err(AnnotationError::WrongFamily { path: path(), address, expected: family(v4) });
    }
    Ok(Some(request))
}

fn family(v4: bool) -> &'static str {
    if v4 { "IPv4" } else { "IPv6" }
}

/// Parses `proutes` (`v4`) or `proutes6`.
fn parse_routes(
    element: &str,
    field: &str,
    routes: BTreeMap<String, String>,
    v4: bool,
) -> Result<BTreeMap<IpNet, IpAddr>, AnnotationError> {
    let table = fieldpath::with_key(element, field);
    let mut out = BTreeMap::new();
    for (dst, gw) in routes {
        let bad = |problem: String| AnnotationError::BadRoute { path: fieldpath::with_key(&table, &dst), problem };
        let Ok(net) = dst.parse::<IpNet>() else {
            return Err(bad(format!("destination `{dst}` is not a CIDR")));
        };
        let Ok(gateway) = gw.parse::<IpAddr>() else {
            return Err(bad(format!("gateway `{gw}` is not an IP address")));
        };
        let net_v4 = matches!(net, IpNet::V4(_));
        if net_v4 != v4 || gateway.is_ipv4() != v4 {
            return Err(bad(format!("`{field}` takes {} destinations and gateways only", family(v4))));
        }
        out.insert(net.trunc(), gateway);
    }
    Ok(out)
}

//! Service discovery over DANM networks: which addresses of which pods a DANM Service publishes.
//!
//! A Service is handled when it has no `spec.selector` of its own, a non-empty `danm.k8s.io/selector`
//! and at least one network annotation (upstream's rule). It selects the DanmEps of its namespace whose
//! labels (a copy of their pod's) include the selector and whose network is one the Service names, and
//! publishes their addresses: IPv4 and IPv6 apart, ready or not from the pod's readiness (or all ready
//! with `service.alpha.kubernetes.io/tolerate-unready-endpoints`), each with the ports its pod listens on
//! for the Service's ports: each port's `targetPort`, a named one resolved against the pod's container
//! ports ([`ServicePort::endpoint_port`]), so pods may differ in their ports ([`ServiceEndpoints::port_groups`]).
//!
//! This is pure: the caller brings the Service, the candidate DanmEps and a pod look-up, from whatever
//! store it has ([`service_endpoints`]), or keeps them in a [`ServiceIndex`] that says which Services
//! each change touches.
//!
//! A selector matches the owner pod's current labels when the pod is known, and the DanmEp's copy of
//! them otherwise (upstream rewrote every DanmEp of a pod whose labels changed; here nothing is
//! rewritten).

mod index;

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use crate::model::{DanmEp, NetworkKind, PodRecord};
use crate::pod::NetworkRef;
use crate::service::{ServiceAnnotationError, ServicePort, ServiceRecord, ServiceSelection};

pub use index::{Publication, ServiceIndex, ServiceKey};

/// One port of a published address: a Service port's name and protocol with the port the pod listens on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct EndpointPort {
    /// The Service port's name; may be empty when the Service has one port.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The port the pod listens on: the Service port's `targetPort`, resolved for the pod.
    pub port: i32,
    /// The Service port's protocol.
    pub protocol: String,
}

/// One published address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct EndpointAddress {
    /// The address (without a prefix length).
    pub ip: IpAddr,
    /// The pod's name.
    pub pod: String,
    /// The pod's UID.
    #[serde(rename = "podUID", skip_serializing_if = "String::is_empty")]
    pub pod_uid: String,
    /// The pod's interface the address is on.
    pub interface: String,
    /// The node the pod runs on.
    #[serde(rename = "nodeName", skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// The pod's `spec.hostname`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The Service's ports as the pod listens on them, in the Service's order; a Service port whose
    /// named `targetPort` the pod does not have is left out. Empty when the Service has no ports, or
    /// when the pod resolves none of them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<EndpointPort>,
}

/// What a Service publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceEndpoints {
    /// The Service's namespace.
    pub namespace: String,
    /// The Service's name.
    pub service: String,
    /// The networks it publishes addresses of.
    pub networks: Vec<NetworkRef>,
    /// Addresses of ready pods (every selected pod's, when unready ones are tolerated).
    pub ready: Vec<EndpointAddress>,
    /// Addresses of pods that are not ready.
    #[serde(rename = "notReady")]
    pub not_ready: Vec<EndpointAddress>,
    /// The Service's ports as declared; each address carries the ports resolved for its pod.
    pub ports: Vec<ServicePort>,
}

impl ServiceEndpoints {
    /// The published addresses of one family, ready first.
    pub fn addresses(&self, ipv6: bool) -> impl Iterator<Item = &EndpointAddress> {
        self.ready.iter().chain(&self.not_ready).filter(move |a| a.ip.is_ipv6() == ipv6)
    }

    /// The published addresses grouped by their ports, as Kubernetes packs Endpoints subsets and
    /// EndpointSlices: one group per distinct port set, ordered by the set with the empty set (pods that
    /// resolve none of the Service's ports) last, each with its ready and not-ready addresses in their
    /// order here. A Service whose pods all listen on the same ports makes one group, and a pod that
    /// lacks a named port does not come before it (slices are named in this order).
    pub fn port_groups(&self) -> Vec<PortGroup<'_>> {
        let mut groups: BTreeMap<&[EndpointPort], PortGroup<'_>> = BTreeMap::new();
        for (ready, addresses) in [(true, &self.ready), (false, &self.not_ready)] {
            for a in addresses {
                let group = groups.entry(a.ports.as_slice()).or_insert_with(|| PortGroup {
                    ports: a.ports.as_slice(),
                    ready: Vec::new(),
                    not_ready: Vec::new(),
                });
                if ready { group.ready.push(a) } else { group.not_ready.push(a) }
            }
        }
        let mut groups: Vec<PortGroup<'_>> = groups.into_values().collect();
        // Stable: the sets keep their order; only the empty one moves to the end.
        groups.sort_by_key(|g| g.ports.is_empty());
        groups
    }
}

/// Published addresses that share the same ports (see [`ServiceEndpoints::port_groups`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortGroup<'a> {
    /// The ports every address of the group has.
    pub ports: &'a [EndpointPort],
    /// The group's ready addresses.
    pub ready: Vec<&'a EndpointAddress>,
    /// The group's addresses that are not ready.
    pub not_ready: Vec<&'a EndpointAddress>,
}

impl PortGroup<'_> {
    /// The group's addresses of one family, ready first, each with whether it is ready.
    pub fn addresses(&self, ipv6: bool) -> impl Iterator<Item = (&EndpointAddress, bool)> {
        let ready = self.ready.iter().map(|a| (*a, true));
        ready.chain(self.not_ready.iter().map(|a| (*a, false))).filter(move |(a, _)| a.ip.is_ipv6() == ipv6)
    }
}

/// The Service's ports as `pod` listens on them (see [`EndpointAddress::ports`]).
fn resolve_ports(ports: &[ServicePort], pod: Option<&PodRecord>) -> Vec<EndpointPort> {
    ports
        .iter()
        .filter_map(|p| {
            Some(EndpointPort { name: p.name.clone(), port: p.endpoint_port(pod)?, protocol: p.protocol.clone() })
        })
        .collect()
}

/// What `service` publishes, from the DanmEps `endpoints` (others than the Service's are ignored, so a
/// caller may pass more) and `pod`, which finds a pod by namespace and name. `Ok(None)` when the Service
/// is not a DANM Service.
///
/// This looks at every DanmEp given; [`ServiceIndex`] makes the same decision from an index, at a cost
/// proportional to the Service's own network, for a controller that follows changes.
pub fn service_endpoints<'p>(
    service: &ServiceRecord,
    endpoints: &[DanmEp],
    pod: impl Fn(&str, &str) -> Option<&'p PodRecord>,
) -> Result<Option<ServiceEndpoints>, ServiceAnnotationError> {
    if service.has_selector() {
        return Ok(None);
    }
    let Some(selection) = service.danm_selection()? else { return Ok(None) };
    Ok(Some(publish(service, &selection, endpoints.iter(), pod)))
}

/// The owner pod of `ep`, when `pod` finds it and its UID is the DanmEp's.
fn owner<'p>(ep: &DanmEp, pod: &impl Fn(&str, &str) -> Option<&'p PodRecord>) -> Option<&'p PodRecord> {
    let namespace = ep.metadata.namespace.as_deref().unwrap_or_default();
    pod(namespace, &ep.spec.pod)
        .filter(|p| ep.spec.pod_uid.is_empty() || p.metadata.uid.as_deref().is_none_or(|u| u == ep.spec.pod_uid))
}

/// The labels a Service's selector is matched against: the owner pod's current labels, or the copy the
/// DanmEp took when it was created while the pod is not known. So a pod's label change moves its
/// interfaces between Services without rewriting its DanmEps.
fn effective_labels<'a>(ep: &'a DanmEp, owner: Option<&'a PodRecord>) -> &'a BTreeMap<String, String> {
    owner.map_or(&ep.metadata.labels, |p| &p.metadata.labels)
}

/// Whether `selection` selects the interface `ep`, given its owner pod.
fn selects(selection: &ServiceSelection, namespace: &str, ep: &DanmEp, owner: Option<&PodRecord>) -> bool {
    let kind = ep.spec.network_kind().unwrap_or(NetworkKind::DanmNet);
    ep.metadata.namespace.as_deref().unwrap_or_default() == namespace
        && selection.selects_network(kind, &ep.spec.network_name)
        && selection.matches(effective_labels(ep, owner))
}

/// The addresses `selection` of `service` publishes out of `endpoints`.
fn publish<'e, 'p>(
    service: &ServiceRecord,
    selection: &ServiceSelection,
    endpoints: impl Iterator<Item = &'e DanmEp>,
    pod: impl Fn(&str, &str) -> Option<&'p PodRecord>,
) -> ServiceEndpoints {
    let namespace = service.metadata.namespace.clone().unwrap_or_default();
    let mut out = ServiceEndpoints {
        namespace: namespace.clone(),
        service: service.metadata.name.clone(),
        networks: selection.networks.clone(),
        ready: Vec::new(),
        not_ready: Vec::new(),
        ports: service.ports.clone(),
    };
    for ep in endpoints {
        let owner = owner(ep, &pod);
        if !selects(selection, &namespace, ep, owner) {
            continue;
        }
        let ready = selection.tolerate_unready || service.publish_not_ready_addresses || owner.is_some_and(|p| p.ready);
        let ports = resolve_ports(&service.ports, owner);
        for recorded in [&ep.spec.interface.address, &ep.spec.interface.address_ipv6] {
            // `none`, `dynamic` and empty are not addresses.
            let Ok(net) = recorded.parse::<ipnet::IpNet>() else { continue };
            let address = EndpointAddress {
                ip: net.addr(),
                pod: ep.spec.pod.clone(),
                pod_uid: ep.spec.pod_uid.clone(),
                interface: ep.spec.interface.name.clone(),
                node_name: owner
                    .and_then(|p| p.node_name.clone())
                    .or_else(|| Some(ep.spec.host.clone()).filter(|h| !h.is_empty())),
                hostname: owner.and_then(|p| p.hostname.clone()),
                ports: ports.clone(),
            };
            if ready {
                out.ready.push(address);
            } else {
                out.not_ready.push(address);
            }
        }
    }
    out.ready.sort();
    out.not_ready.sort();
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{ContainerPort, DanmEpSpec, ObjectMeta};
    use crate::service::TargetPort;

    fn ep(ns: &str, pod: &str, kind: &str, net: &str, v4: &str, v6: &str, app: &str) -> DanmEp {
        let mut metadata = ObjectMeta::new(format!("{pod}-{net}"), Some(ns));
        metadata.labels.insert("app".into(), app.into());
        let mut spec = DanmEpSpec {
            network_name: net.into(),
            api_type: kind.into(),
            pod: pod.into(),
            pod_uid: format!("uid-{pod}"),
            host: "node-1".into(),
            ..DanmEpSpec::default()
        };
        spec.interface.name = "eth1".into();
        spec.interface.address = v4.into();
        spec.interface.address_ipv6 = v6.into();
        DanmEp { api_version: "danm.k8s.io/v1".into(), kind: "DanmEp".into(), metadata, spec }
    }

    fn svc(annotations: &[(&str, &str)], selector: Option<&str>) -> ServiceRecord {
        let mut metadata = ObjectMeta::new("svc", Some("vnf"));
        metadata.annotations = annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ServiceRecord {
            metadata,
            cluster_ip: Some("None".into()),
            ports: Vec::new(),
            selector: selector.map(|s| BTreeMap::from([("app".to_string(), s.to_string())])),
            ..ServiceRecord::default()
        }
    }

    fn pod(name: &str, ready: bool) -> PodRecord {
        let mut metadata = ObjectMeta::new(name, Some("vnf"));
        metadata.uid = Some(format!("uid-{name}"));
        metadata.labels.insert("app".into(), "lb".into());
        PodRecord { metadata, node_name: Some("node-1".into()), hostname: None, ready, container_ports: Vec::new() }
    }

    fn service_port(name: &str, port: i32, protocol: &str, target: Option<TargetPort>) -> ServicePort {
        ServicePort { name: name.into(), port, protocol: protocol.into(), target_port: target }
    }

    fn endpoint_port(name: &str, port: i32, protocol: &str) -> EndpointPort {
        EndpointPort { name: name.into(), port, protocol: protocol.into() }
    }

    /// The ports of each published address, as `ip: name/port/protocol ...`.
    fn ports_by_ip(got: &ServiceEndpoints) -> Vec<String> {
        got.ready
            .iter()
            .chain(&got.not_ready)
            .map(|a| {
                let ports: Vec<String> =
                    a.ports.iter().map(|p| format!("{}/{}/{}", p.name, p.port, p.protocol)).collect();
                format!("{}: {}", a.ip, ports.join(" "))
            })
            .collect()
    }

    /// Two load balancer pods listening on different container ports for `http`; `lb-1` has no `admin`.
    fn pods_with_ports() -> [PodRecord; 2] {
        let mut a = pod("lb-0", true);
        a.container_ports = vec![
            ContainerPort::new("http", 8080, "TCP"),
            ContainerPort::new("admin", 9000, "TCP"),
            ContainerPort::new("dns", 5353, "TCP"),
        ];
        let mut b = pod("lb-1", true);
        b.container_ports = vec![ContainerPort::new("http", 8081, "TCP"), ContainerPort::new("dns", 53, "UDP")];
        [a, b]
    }

    #[test]
    fn numeric_and_absent_target_ports_are_published_for_every_pod() {
        let eps = [
            ep("vnf", "lb-0", "DanmNet", "internal", "10.0.0.5/24", "", "lb"),
            ep("vnf", "lb-9", "DanmNet", "internal", "10.0.0.9/24", "", "lb"),
        ];
        let pods = pods_with_ports();
        let find = |_: &str, n: &str| pods.iter().find(|p| p.metadata.name == n);
        let mut s = svc(&[("danm.k8s.io/selector", r#"{"app":"lb"}"#), ("danm.k8s.io/network", "internal")], None);
        s.ports = vec![
            service_port("web", 80, "TCP", Some(TargetPort::Number(8000))),
            service_port("plain", 443, "TCP", None),
        ];
        let got = service_endpoints(&s, &eps, find).unwrap().unwrap();
        // lb-9 has no pod record: numbers need none.
        assert_eq!(ports_by_ip(&got), ["10.0.0.5: web/8000/TCP plain/443/TCP", "10.0.0.9: web/8000/TCP plain/443/TCP"]);
        let groups = got.port_groups();
        assert_eq!(groups.len(), 1, "pods that agree make one group");
        assert_eq!(groups[0].ports, [endpoint_port("web", 8000, "TCP"), endpoint_port("plain", 443, "TCP")]);
        assert_eq!((groups[0].ready.len(), groups[0].not_ready.len()), (1, 1), "lb-9 is not known, so not ready");
    }

    #[test]
    fn a_named_target_port_is_resolved_per_pod() {
        let eps = [
            ep("vnf", "lb-0", "DanmNet", "internal", "10.0.0.5/24", "fd00::5/64", "lb"),
            ep("vnf", "lb-1", "DanmNet", "internal", "10.0.0.6/24", "", "lb"),
        ];
        let pods = pods_with_ports();
        let find = |_: &str, n: &str| pods.iter().find(|p| p.metadata.name == n);
        let mut s = svc(&[("danm.k8s.io/selector", r#"{"app":"lb"}"#), ("danm.k8s.io/network", "internal")], None);
        s.ports = vec![
            service_port("web", 80, "TCP", Some(TargetPort::Name("http".into()))),
            service_port("admin", 9999, "TCP", Some(TargetPort::Name("admin".into()))),
            service_port("dns", 53, "UDP", Some(TargetPort::Name("dns".into()))),
        ];
        let got = service_endpoints(&s, &eps, find).unwrap().unwrap();
        assert_eq!(
            ports_by_ip(&got),
            [
                // lb-0: its `dns` is TCP, so the UDP port does not resolve.
                "10.0.0.5: web/8080/TCP admin/9000/TCP",
                // lb-1 lacks `admin`: left out of that port only.
                "10.0.0.6: web/8081/TCP dns/53/UDP",
                "fd00::5: web/8080/TCP admin/9000/TCP",
            ]
        );
        let groups: Vec<(Vec<EndpointPort>, Vec<String>)> = got
            .port_groups()
            .iter()
            .map(|g| (g.ports.to_vec(), g.ready.iter().map(|a| a.ip.to_string()).collect()))
            .collect();
        assert_eq!(
            groups,
            [
                (
                    vec![endpoint_port("web", 8080, "TCP"), endpoint_port("admin", 9000, "TCP")],
                    vec!["10.0.0.5".into(), "fd00::5".into()]
                ),
                (vec![endpoint_port("web", 8081, "TCP"), endpoint_port("dns", 53, "UDP")], vec!["10.0.0.6".into()]),
            ],
            "two pods listening on different ports make two groups"
        );
        let v6: Vec<_> = got.port_groups()[0].addresses(true).map(|(a, ready)| (a.ip.to_string(), ready)).collect();
        assert_eq!(v6, [("fd00::5".to_owned(), true)]);

        // A protocol mismatch resolves nothing, and a pod that is not known resolves no name.
        s.ports = vec![service_port("web", 80, "UDP", Some(TargetPort::Name("http".into())))];
        let got = service_endpoints(&s, &eps, find).unwrap().unwrap();
        assert_eq!(ports_by_ip(&got), ["10.0.0.5: ", "10.0.0.6: ", "fd00::5: "]);
        s.ports = vec![service_port("web", 80, "TCP", Some(TargetPort::Name("http".into())))];
        let got = service_endpoints(&s, &eps, |_, _| None).unwrap().unwrap();
        assert!(got.not_ready.iter().all(|a| a.ports.is_empty()), "{got:?}");
    }

    #[test]
    fn selects_by_label_network_and_namespace_and_splits_readiness() {
        let eps = [
            ep("vnf", "lb-0", "DanmNet", "internal", "10.0.0.5/24", "fd00::5/64", "lb"),
            ep("vnf", "lb-1", "DanmNet", "internal", "10.0.0.6/24", "none", "lb"),
            ep("vnf", "lb-0", "ClusterNetwork", "management", "10.9.0.5/24", "", "lb"),
            ep("vnf", "proc-0", "DanmNet", "internal", "10.0.0.7/24", "", "processor"),
            ep("other", "lb-9", "DanmNet", "internal", "10.0.0.9/24", "", "lb"),
        ];
        let pods = [pod("lb-0", true), pod("lb-1", false)];
        let find = |_: &str, n: &str| pods.iter().find(|p| p.metadata.name == n);
        let s = svc(&[("danm.k8s.io/selector", r#"{"app":"lb"}"#), ("danm.k8s.io/network", "internal")], None);
        let got = service_endpoints(&s, &eps, find).unwrap().unwrap();
        let ips = |v: &[EndpointAddress]| v.iter().map(|a| a.ip.to_string()).collect::<Vec<_>>();
        assert_eq!(ips(&got.ready), ["10.0.0.5", "fd00::5"]);
        assert_eq!(ips(&got.not_ready), ["10.0.0.6"]);
        assert_eq!(got.addresses(true).count(), 1);

        let tolerant = svc(
            &[
                ("danm.k8s.io/selector", r#"{"app":"lb"}"#),
                ("danm.k8s.io/clusterNetwork", "management"),
                ("service.alpha.kubernetes.io/tolerate-unready-endpoints", "true"),
            ],
            None,
        );
        let got = service_endpoints(&tolerant, &eps, |_, _| None).unwrap().unwrap();
        assert_eq!(ips(&got.ready), ["10.9.0.5"], "unready pods are published when tolerated");

        let mut publish_all =
            svc(&[("danm.k8s.io/selector", r#"{"app":"lb"}"#), ("danm.k8s.io/network", "internal")], None);
        publish_all.publish_not_ready_addresses = true;
        let got = service_endpoints(&publish_all, &eps, find).unwrap().unwrap();
        assert_eq!(ips(&got.ready), ["10.0.0.5", "10.0.0.6", "fd00::5"], "spec.publishNotReadyAddresses");
        assert!(got.not_ready.is_empty());

        // Not DANM Services: a spec.selector, no network annotation, or no selector annotation.
        assert!(service_endpoints(&svc(&[("danm.k8s.io/network", "internal")], None), &eps, find).unwrap().is_none());
        let with_selector =
            svc(&[("danm.k8s.io/selector", r#"{"app":"lb"}"#), ("danm.k8s.io/network", "internal")], Some("lb"));
        assert!(service_endpoints(&with_selector, &eps, find).unwrap().is_none());
        assert!(service_endpoints(&svc(&[("danm.k8s.io/selector", "{")], None), &eps, find).is_err());
    }
}

//! Service discovery over DANM networks: which addresses of which pods a DANM Service publishes.
//!
//! A Service is handled when it has no `spec.selector` of its own, a non-empty `danm.k8s.io/selector`
//! and at least one network annotation (upstream's rule). It selects the DanmEps of its namespace whose
//! labels (a copy of their pod's) include the selector and whose network is one the Service names, and
//! publishes their addresses: IPv4 and IPv6 apart, ready or not from the pod's readiness (or all ready
//! with `service.alpha.kubernetes.io/tolerate-unready-endpoints`). This is pure: the caller brings the
//! Service, the candidate DanmEps and a pod look-up, from whatever store it has ([`service_endpoints`]),
//! or keeps them in a [`ServiceIndex`] that says which Services each change touches.
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
    /// The Service's ports.
    pub ports: Vec<ServicePort>,
}

impl ServiceEndpoints {
    /// The published addresses of one family, ready first.
    pub fn addresses(&self, ipv6: bool) -> impl Iterator<Item = &EndpointAddress> {
        self.ready.iter().chain(&self.not_ready).filter(move |a| a.ip.is_ipv6() == ipv6)
    }
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
    use crate::model::{DanmEpSpec, ObjectMeta};

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

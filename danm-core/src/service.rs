//! Kubernetes Services as svcwatcher sees them: the DANM selection annotations and the Service fields
//! used to build Endpoints.
//!
//! This module parses a Service's annotations into a [`ServiceSelection`] and matches labels against it.
//! It does not build Endpoints or watch anything. A Service is a DANM Service when it has a non-empty
//! `danm.k8s.io/selector` and at least one network annotation, as upstream decides; `spec.selector` is
//! recorded but not part of that decision.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::fieldpath;
use crate::model::{NetworkKind, ObjectMeta, PodRecord};
use crate::pod::NetworkRef;

/// The pod-label selector annotation of upstream DANM v4.3: a JSON object of label to value.
pub const SELECTOR_ANNOTATION: &str = "danm.k8s.io/selector";
/// The selector annotation under the `danm.io` group; accepted as well.
pub const SELECTOR_ANNOTATION_ALT: &str = "danm.io/selector";
/// `"true"` publishes the addresses of pods that are not Ready as ready addresses.
pub const TOLERATE_UNREADY_ANNOTATION: &str = "service.alpha.kubernetes.io/tolerate-unready-endpoints";

/// The annotation that selects a network of `kind` (`danm.k8s.io/network`, `.../tenantNetwork`,
/// `.../clusterNetwork`).
pub fn network_annotation(kind: NetworkKind) -> &'static str {
    match kind {
        NetworkKind::DanmNet => "danm.k8s.io/network",
        NetworkKind::TenantNetwork => "danm.k8s.io/tenantNetwork",
        NetworkKind::ClusterNetwork => "danm.k8s.io/clusterNetwork",
    }
}

/// The `danm.io` variant of [`network_annotation`].
pub fn network_annotation_alt(kind: NetworkKind) -> &'static str {
    match kind {
        NetworkKind::DanmNet => "danm.io/network",
        NetworkKind::TenantNetwork => "danm.io/tenantNetwork",
        NetworkKind::ClusterNetwork => "danm.io/clusterNetwork",
    }
}

/// What a DANM Service selects: pods by label, interfaces by network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceSelection {
    /// Labels a pod's DanmEps must carry, each with this value. Never empty.
    pub selector: BTreeMap<String, String>,
    /// The networks whose interfaces are published, in the order DanmNet, TenantNetwork, ClusterNetwork;
    /// at most one of each kind. Never empty.
    pub networks: Vec<NetworkRef>,
    /// Whether addresses of pods that are not Ready are published as ready.
    pub tolerate_unready: bool,
}

impl ServiceSelection {
    /// Whether `labels` carry every selector label with the selector's value.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.selector.iter().all(|(k, v)| labels.get(k) == Some(v))
    }

    /// Whether an interface on the network of `kind` named `name` is selected.
    pub fn selects_network(&self, kind: NetworkKind, name: &str) -> bool {
        self.networks.iter().any(|n| n.kind == kind && n.name == name)
    }
}

/// Why a Service's DANM annotations were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceAnnotationError {
    /// An annotation is set under both groups with different values.
    #[error("annotations `{first}` and `{second}` are both set and differ; set only one")]
    Conflicting {
        /// The `danm.k8s.io` key.
        first: &'static str,
        /// The `danm.io` key.
        second: &'static str,
    },
    /// The selector is not a JSON object of strings.
    #[error("{path}: malformed JSON: {message}")]
    MalformedSelector {
        /// The annotation key and, where known, the label, e.g. `danm.k8s.io/selector.app`.
        path: String,
        /// What the JSON decoder reported.
        message: String,
    },
}

/// One annotation set under either group: the value, or `None` when unset or empty.
fn either<'a>(
    annotations: &'a BTreeMap<String, String>,
    first: &'static str,
    second: &'static str,
) -> Result<Option<(&'static str, &'a str)>, ServiceAnnotationError> {
    let get = |key: &'static str| annotations.get(key).filter(|v| !v.is_empty()).map(|v| (key, v.as_str()));
    match (get(first), get(second)) {
        (Some((_, a)), Some((_, b))) if a != b => Err(ServiceAnnotationError::Conflicting { first, second }),
        (Some(a), _) => Ok(Some(a)),
        (None, b) => Ok(b),
    }
}

/// Reads the DANM selection of a Service from its annotations.
///
/// Returns `Ok(None)` for a Service svcwatcher leaves alone: no selector annotation, an empty selector,
/// or no network annotation. Empty annotation values count as unset.
pub fn service_selection(
    annotations: &BTreeMap<String, String>,
) -> Result<Option<ServiceSelection>, ServiceAnnotationError> {
    let selector = match either(annotations, SELECTOR_ANNOTATION, SELECTOR_ANNOTATION_ALT)? {
        Some((key, value)) => parse_selector(key, value)?,
        None => BTreeMap::new(),
    };
    let mut networks = Vec::new();
    for kind in NetworkKind::ALL {
        if let Some((_, name)) = either(annotations, network_annotation(kind), network_annotation_alt(kind))? {
            networks.push(NetworkRef::new(kind, name));
        }
    }
    if selector.is_empty() || networks.is_empty() {
        return Ok(None);
    }
    let tolerate_unready = annotations.get(TOLERATE_UNREADY_ANNOTATION).is_some_and(|v| v == "true");
    Ok(Some(ServiceSelection { selector, networks, tolerate_unready }))
}

/// Parses a selector value; JSON `null` is an empty selector, as upstream.
fn parse_selector(key: &str, value: &str) -> Result<BTreeMap<String, String>, ServiceAnnotationError> {
    let mut de = serde_json::Deserializer::from_str(value);
    let parsed: Option<BTreeMap<String, String>> =
        serde_path_to_error::deserialize(&mut de).map_err(|e| ServiceAnnotationError::MalformedSelector {
            path: fieldpath::extend(key, e.path()),
            message: e.inner().to_string(),
        })?;
    de.end().map_err(|e| ServiceAnnotationError::MalformedSelector { path: key.to_owned(), message: e.to_string() })?;
    Ok(parsed.unwrap_or_default())
}

/// What DANM needs to know of a Service: identity, annotations, ports, cluster IP and whether it has a
/// `spec.selector`. Read from a core `v1` Service; this is its own record shape, not the Service's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceRecord {
    /// Namespace, name, uid, labels and annotations.
    pub metadata: ObjectMeta,
    /// `spec.clusterIP`; `None` for a new Service, `"None"` for a headless one.
    #[serde(rename = "clusterIP", default, skip_serializing_if = "Option::is_none")]
    pub cluster_ip: Option<String>,
    /// `spec.ports`; each is published with the port its pods listen on (its `targetPort`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ServicePort>,
    /// `spec.selector`; DANM Services are expected to have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<BTreeMap<String, String>>,
    /// `spec.publishNotReadyAddresses`: publish every selected address as ready, as the
    /// `service.alpha.kubernetes.io/tolerate-unready-endpoints` annotation does.
    #[serde(rename = "publishNotReadyAddresses", default, skip_serializing_if = "std::ops::Not::not")]
    pub publish_not_ready_addresses: bool,
}

impl ServiceRecord {
    /// Whether `spec.selector` is set and non-empty, so that Kubernetes' own controller manages the
    /// Service's Endpoints.
    pub fn has_selector(&self) -> bool {
        self.selector.as_ref().is_some_and(|s| !s.is_empty())
    }

    /// Whether the Service is headless (`clusterIP: None`).
    pub fn is_headless(&self) -> bool {
        self.cluster_ip.as_deref() == Some("None")
    }

    /// The DANM selection of this Service (see [`service_selection`]).
    pub fn danm_selection(&self) -> Result<Option<ServiceSelection>, ServiceAnnotationError> {
        service_selection(&self.metadata.annotations)
    }
}

/// One entry of a Service's `spec.ports`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePort {
    /// The port's name; may be empty when the Service has one port.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The port number.
    pub port: i32,
    /// `TCP`, `UDP` or `SCTP`; Kubernetes' default `TCP` when absent.
    #[serde(default = "default_protocol")]
    pub protocol: String,
    /// `targetPort`: where the selected pods listen, a number or the name of a container port; the
    /// port number itself when absent (see [`ServicePort::endpoint_port`]).
    #[serde(rename = "targetPort", default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<TargetPort>,
}

impl ServicePort {
    /// The port the pod `pod` listens on for this Service port, which the Service's endpoints publish:
    /// a numeric `targetPort`; `port` when `targetPort` is absent, `0` or empty (the API server's
    /// default); for a named `targetPort`, the pod's container port of that name and this port's
    /// protocol. `None` when the name does not resolve (the pod has no such port, or is not known): the
    /// pod is then left out of this Service port, as Kubernetes does.
    pub fn endpoint_port(&self, pod: Option<&PodRecord>) -> Option<i32> {
        match &self.target_port {
            None | Some(TargetPort::Number(0)) => Some(self.port),
            Some(TargetPort::Name(name)) if name.is_empty() => Some(self.port),
            Some(TargetPort::Number(n)) => Some(*n),
            Some(TargetPort::Name(name)) => pod?.named_port(name, &self.protocol),
        }
    }
}

fn default_protocol() -> String {
    "TCP".to_owned()
}

/// A `targetPort`: a number or the name of a container port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TargetPort {
    /// A port number.
    Number(i32),
    /// A named container port.
    Name(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ContainerPort;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn selection_needs_selector_and_network() {
        let full = annotations(&[
            (SELECTOR_ANNOTATION, r#"{"app":"lb"}"#),
            ("danm.k8s.io/clusterNetwork", "ext"),
            ("danm.k8s.io/network", "int"),
            (TOLERATE_UNREADY_ANNOTATION, "true"),
        ]);
        let sel = service_selection(&full).unwrap().unwrap();
        assert_eq!(
            sel.networks,
            [NetworkRef::new(NetworkKind::DanmNet, "int"), NetworkRef::new(NetworkKind::ClusterNetwork, "ext")]
        );
        assert!(sel.tolerate_unready && sel.selects_network(NetworkKind::DanmNet, "int"));
        assert!(!sel.selects_network(NetworkKind::TenantNetwork, "int"));
        let no_net = annotations(&[(SELECTOR_ANNOTATION, r#"{"app":"lb"}"#), ("danm.k8s.io/network", "")]);
        assert_eq!(service_selection(&no_net), Ok(None));
        let empty_sel = annotations(&[(SELECTOR_ANNOTATION, "{}"), ("danm.k8s.io/network", "int")]);
        assert_eq!(service_selection(&empty_sel), Ok(None));
        let null_sel = annotations(&[(SELECTOR_ANNOTATION_ALT, "null"), ("danm.io/network", "int")]);
        assert_eq!(service_selection(&null_sel), Ok(None));
        assert_eq!(service_selection(&annotations(&[("danm.k8s.io/network", "int")])), Ok(None));
    }

    #[test]
    fn alternative_group_and_conflicts() {
        let alt = annotations(&[(SELECTOR_ANNOTATION_ALT, r#"{"a":"b"}"#), ("danm.io/tenantNetwork", "t")]);
        let sel = service_selection(&alt).unwrap().unwrap();
        assert_eq!(sel.networks, [NetworkRef::new(NetworkKind::TenantNetwork, "t")]);
        assert!(!sel.tolerate_unready);
        let clash = annotations(&[
            (SELECTOR_ANNOTATION, r#"{"a":"b"}"#),
            ("danm.k8s.io/network", "x"),
            ("danm.io/network", "y"),
        ]);
        let err = service_selection(&clash).unwrap_err();
        assert!(err.to_string().contains("danm.k8s.io/network") && err.to_string().contains("danm.io/network"));
    }

    #[test]
    fn malformed_selector_names_annotation() {
        for (value, path) in [
            (r#"{"app":1}"#, "danm.k8s.io/selector.app"),
            ("[1]", "danm.k8s.io/selector"),
            (r#"{"app":"x"} tail"#, "danm.k8s.io/selector"),
        ] {
            let a = annotations(&[(SELECTOR_ANNOTATION, value), ("danm.k8s.io/network", "n")]);
            match service_selection(&a) {
                Err(ServiceAnnotationError::MalformedSelector { path: p, .. }) => assert_eq!(p, path, "{value}"),
                other => panic!("{value}: {other:?}"),
            }
        }
    }

    fn port(target: Option<TargetPort>, protocol: &str) -> ServicePort {
        ServicePort { name: "web".into(), port: 80, protocol: protocol.into(), target_port: target }
    }

    #[test]
    fn endpoint_port_follows_target_port() {
        let pod = PodRecord {
            container_ports: vec![
                ContainerPort::new("metrics", 9090, "TCP"),
                ContainerPort::new("http", 8080, "TCP"),
                ContainerPort::new("http", 8443, "TCP"),
                ContainerPort::new("dns", 5353, "UDP"),
            ],
            ..PodRecord::default()
        };
        assert_eq!(port(None, "TCP").endpoint_port(None), Some(80), "absent: the port itself");
        assert_eq!(port(Some(TargetPort::Number(0)), "TCP").endpoint_port(None), Some(80));
        assert_eq!(port(Some(TargetPort::Name(String::new())), "TCP").endpoint_port(None), Some(80));
        assert_eq!(port(Some(TargetPort::Number(8000)), "TCP").endpoint_port(None), Some(8000), "no pod needed");
        let http = port(Some(TargetPort::Name("http".into())), "TCP");
        assert_eq!(http.endpoint_port(Some(&pod)), Some(8080), "the first port of that name");
        assert_eq!(http.endpoint_port(None), None, "an unknown pod resolves no name");
        assert_eq!(port(Some(TargetPort::Name("http".into())), "UDP").endpoint_port(Some(&pod)), None, "protocol");
        assert_eq!(port(Some(TargetPort::Name("dns".into())), "UDP").endpoint_port(Some(&pod)), Some(5353));
        assert_eq!(port(Some(TargetPort::Name("grpc".into())), "TCP").endpoint_port(Some(&pod)), None);
    }

    #[test]
    fn target_port_reads_a_number_or_a_name() {
        let ports: Vec<ServicePort> = serde_json::from_str(
            r#"[{"port":80,"targetPort":8080},{"port":81,"targetPort":"http","protocol":"UDP"},{"port":82}]"#,
        )
        .unwrap();
        let targets: Vec<_> = ports.iter().map(|p| p.target_port.clone()).collect();
        assert_eq!(targets, [Some(TargetPort::Number(8080)), Some(TargetPort::Name("http".into())), None]);
    }

    #[test]
    fn matches_requires_every_label() {
        let sel = ServiceSelection {
            selector: [("app".to_owned(), "lb".to_owned()), ("tier".to_owned(), "a".to_owned())].into(),
            ..ServiceSelection::default()
        };
        let labels = annotations(&[("app", "lb"), ("tier", "a"), ("extra", "x")]);
        assert!(sel.matches(&labels));
        assert!(!sel.matches(&annotations(&[("app", "lb")])));
        assert!(!sel.matches(&annotations(&[("app", "lb"), ("tier", "b")])));
    }
}

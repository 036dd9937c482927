//! Pods at admission: the interfaces annotation, checked when the pod is created rather than at its first
//! CNI ADD.

use std::collections::BTreeMap;

use ipnet::IpNet;

use crate::ipam::IpRequest;
use crate::model::{Network, NetworkKind};
use crate::pod::{AnnotationError, InterfaceRequest, interfaces_from_annotations, selector_key};
use crate::validate::{ValidationError, ValidationErrors, Violation};

/// The field an annotation error is about.
fn field_of(e: &AnnotationError) -> String {
    match e {
        AnnotationError::Conflicting { second, .. } => format!("metadata.annotations[{second:?}]"),
        AnnotationError::Malformed { path, .. }
        | AnnotationError::UnknownKey { path, .. }
        | AnnotationError::NoSelector { path }
        | AnnotationError::TwoSelectors { path, .. }
        | AnnotationError::EmptyNetworkName { path }
        | AnnotationError::BadIp { path, .. }
        | AnnotationError::WrongFamily { path, .. }
        | AnnotationError::BadRoute { path, .. } => path.clone(),
        AnnotationError::TooMany { key, .. } => key.clone(),
    }
}

/// Parses a pod's interfaces annotation strictly; `Ok(None)` when the pod has none (it gets the `default`
/// network fallback). The error names the annotation element and key at fault.
pub fn parse_pod_interfaces(
    annotations: &BTreeMap<String, String>,
) -> Result<Option<Vec<InterfaceRequest>>, ValidationErrors> {
    interfaces_from_annotations(annotations).map_err(|e| {
        ValidationErrors::from(ValidationError::new(field_of(&e), Violation::InvalidPodAnnotation, e.to_string()))
    })
}

/// Checks one interface request against the network it names, as far as the CNI's ADD would refuse it
/// anyway: a ClusterNetwork that does not allow the pod's namespace, and a static address outside the
/// network's subnet of its family. `element` is the request's path, e.g. `danm.k8s.io/interfaces[0]`.
pub fn check_request_against_network(
    namespace: &str,
    element: &str,
    request: &InterfaceRequest,
    network: &Network,
    errs: &mut ValidationErrors,
) {
    let spec = &network.spec;
    if network.kind == NetworkKind::ClusterNetwork
        && !spec.allowed_tenants.is_empty()
        && !spec.allowed_tenants.iter().any(|t| t == namespace)
    {
        errs.push(
            format!("{element}.{}", selector_key(NetworkKind::ClusterNetwork)),
            Violation::NetworkAccessDenied,
            format!(
                "namespace {namespace} is not among the AllowedTenants of ClusterNetwork {}",
                network.metadata.name
            ),
        );
    }
    let static_checks = [("ip", request.ip, &spec.options.cidr), ("ip6", request.ip6, &spec.options.net6)];
    for (key, ip, subnet) in static_checks {
        let Some(IpRequest::Static(addr)) = ip else { continue };
        let Ok(net) = subnet.parse::<IpNet>() else { continue };
        if !net.contains(&addr) {
            errs.push(
                format!("{element}.{key}"),
                Violation::StaticAddressOutsideSubnet,
                format!("{addr} lies outside {} of {}", net.trunc(), network.key()),
            );
        }
    }
}

//! The objects svcwatcher writes for a Service: its Endpoints and one EndpointSlice per address family,
//! and the writes that make the API server hold them.

use std::collections::BTreeMap;

use danm_core::discovery::{EndpointAddress, ServiceEndpoints, ServiceKey};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1 as discovery;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, PostParams};

/// The label that marks the Endpoints svcwatcher owns, with [`MANAGER`] as its value.
pub const MANAGED_BY_LABEL: &str = "danm.k8s.io/managed-by";
/// The value of [`MANAGED_BY_LABEL`], and of `endpointslice.kubernetes.io/managed-by` on slices.
pub const MANAGER: &str = "svcwatcher.danm.k8s.io";
/// Kubernetes' label naming the controller of an EndpointSlice.
pub const SLICE_MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// Kubernetes' label naming an EndpointSlice's Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Tells Kubernetes' mirroring controller not to copy these Endpoints into slices of its own: svcwatcher
/// writes the slices itself.
pub const SKIP_MIRROR_LABEL: &str = "endpointslice.kubernetes.io/skip-mirror";

/// The address families, each with its own EndpointSlice.
pub(crate) const FAMILIES: [(bool, &str, &str); 2] = [(false, "IPv4", "ipv4"), (true, "IPv6", "ipv6")];

/// The name of the Service's EndpointSlice of one family: `<service>-danm-ipv4` or `-ipv6`.
pub fn slice_name(service: &str, suffix: &str) -> String {
    format!("{service}-danm-{suffix}")
}

/// What svcwatcher writes for one Service.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    /// The Endpoints.
    pub endpoints: core::Endpoints,
    /// One per family with addresses; a family without addresses has no slice.
    pub slices: Vec<discovery::EndpointSlice>,
}

fn owner(service_uid: Option<&str>, name: &str) -> Option<Vec<OwnerReference>> {
    let uid = service_uid.filter(|u| !u.is_empty())?;
    Some(vec![OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: name.to_owned(),
        uid: uid.to_owned(),
        controller: Some(true),
        // Blocking the Service's deletion would need the right to update services/finalizers; the
        // garbage collector removes these objects after the Service either way.
        block_owner_deletion: None,
    }])
}

fn target(namespace: &str, a: &EndpointAddress) -> core::ObjectReference {
    core::ObjectReference {
        kind: Some("Pod".into()),
        namespace: Some(namespace.to_owned()),
        name: Some(a.pod.clone()),
        uid: Some(a.pod_uid.clone()).filter(|u| !u.is_empty()),
        ..core::ObjectReference::default()
    }
}

fn none_if_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

/// The Endpoints and EndpointSlices publishing `published` for the Service with `annotations` and
/// `uid`: the Endpoints named as the Service, with its annotations and one subset (ready and not-ready
/// addresses of both families, the Service's ports); a slice per family with addresses.
pub(crate) fn desired(
    published: &ServiceEndpoints,
    annotations: &BTreeMap<String, String>,
    uid: Option<&str>,
) -> Desired {
    let ns = published.namespace.as_str();
    let name = published.service.as_str();
    let owners = owner(uid, name);
    let address = |a: &EndpointAddress| core::EndpointAddress {
        ip: a.ip.to_string(),
        hostname: a.hostname.clone(),
        node_name: a.node_name.clone(),
        target_ref: Some(target(ns, a)),
    };
    let ports: Vec<core::EndpointPort> = published
        .ports
        .iter()
        .map(|p| core::EndpointPort {
            name: Some(p.name.clone()).filter(|n| !n.is_empty()),
            port: p.port,
            protocol: Some(p.protocol.clone()),
            app_protocol: None,
        })
        .collect();
    let ready: Vec<_> = published.ready.iter().map(address).collect();
    let not_ready: Vec<_> = published.not_ready.iter().map(address).collect();
    let subsets = match ready.is_empty() && not_ready.is_empty() {
        true => Vec::new(),
        false => vec![core::EndpointSubset {
            addresses: none_if_empty(ready),
            not_ready_addresses: none_if_empty(not_ready),
            ports: none_if_empty(ports.clone()),
        }],
    };
    let endpoints = core::Endpoints {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(ns.to_owned()),
            labels: Some(BTreeMap::from([
                (MANAGED_BY_LABEL.to_owned(), MANAGER.to_owned()),
                (SKIP_MIRROR_LABEL.to_owned(), "true".to_owned()),
            ])),
            annotations: Some(annotations.clone()).filter(|a| !a.is_empty()),
            owner_references: owners.clone(),
            ..ObjectMeta::default()
        },
        subsets: none_if_empty(subsets),
    };
    let slice_ports: Vec<discovery::EndpointPort> = published
        .ports
        .iter()
        .map(|p| discovery::EndpointPort {
            name: Some(p.name.clone()),
            port: Some(p.port),
            protocol: Some(p.protocol.clone()),
            app_protocol: None,
        })
        .collect();
    let mut slices = Vec::new();
    for (ipv6, address_type, suffix) in FAMILIES {
        let mut endpoints = Vec::new();
        for (ready, addresses) in [(true, &published.ready), (false, &published.not_ready)] {
            for a in addresses.iter().filter(|a| a.ip.is_ipv6() == ipv6) {
                endpoints.push(discovery::Endpoint {
                    addresses: vec![a.ip.to_string()],
                    conditions: Some(discovery::EndpointConditions {
                        ready: Some(ready),
                        serving: Some(ready),
                        terminating: Some(false),
                    }),
                    hostname: a.hostname.clone(),
                    node_name: a.node_name.clone(),
                    target_ref: Some(target(ns, a)),
                    ..discovery::Endpoint::default()
                });
            }
        }
        if endpoints.is_empty() {
            continue;
        }
        slices.push(discovery::EndpointSlice {
            metadata: ObjectMeta {
                name: Some(slice_name(name, suffix)),
                namespace: Some(ns.to_owned()),
                labels: Some(BTreeMap::from([
                    (SERVICE_NAME_LABEL.to_owned(), name.to_owned()),
                    (SLICE_MANAGED_BY_LABEL.to_owned(), MANAGER.to_owned()),
                ])),
                owner_references: owners.clone(),
                ..ObjectMeta::default()
            },
            address_type: address_type.to_owned(),
            endpoints,
            ports: none_if_empty(slice_ports.clone()),
        });
    }
    Desired { endpoints, slices }
}

/// What the API server's copy of an object must match: the fields svcwatcher sets.
fn same_meta(have: &ObjectMeta, want: &ObjectMeta) -> bool {
    let labels_held = want.labels.iter().flatten().all(|(k, v)| have.labels.as_ref().and_then(|l| l.get(k)) == Some(v));
    labels_held && have.annotations == want.annotations && have.owner_references == want.owner_references
}

fn is_ours(meta: &ObjectMeta, label: &str) -> bool {
    meta.labels.as_ref().and_then(|l| l.get(label)).is_some_and(|v| v == MANAGER)
}

/// Counts of the writes one reconciliation made.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Writes {
    pub(crate) written: u64,
    pub(crate) deleted: u64,
}

/// Makes the API server hold `want` for `key` (or nothing of svcwatcher's, with `None`). Objects that
/// already match are not written; Endpoints that svcwatcher did not write (no [`MANAGED_BY_LABEL`]) are
/// never replaced or deleted. Replaces carry the `resourceVersion` read, so a concurrent writer makes
/// this fail with a 409 rather than be overwritten.
pub(crate) async fn apply(
    client: &kube::Client,
    key: &ServiceKey,
    want: Option<&Desired>,
) -> Result<Writes, kube::Error> {
    let mut writes = Writes::default();
    let endpoints: Api<core::Endpoints> = Api::namespaced(client.clone(), &key.namespace);
    let slices: Api<discovery::EndpointSlice> = Api::namespaced(client.clone(), &key.namespace);
    let have = endpoints.get_opt(&key.name).await?;
    match (have, want) {
        (Some(have), Some(want)) => {
            if !is_ours(&have.metadata, MANAGED_BY_LABEL) {
                tracing::warn!(service = %key, "Endpoints exist and are not svcwatcher's; leaving them alone");
            } else if !(same_meta(&have.metadata, &want.endpoints.metadata) && have.subsets == want.endpoints.subsets) {
                let mut next = want.endpoints.clone();
                next.metadata.resource_version = have.metadata.resource_version.clone();
                endpoints.replace(&key.name, &PostParams::default(), &next).await?;
                writes.written += 1;
            }
        }
        (None, Some(want)) => {
            endpoints.create(&PostParams::default(), &want.endpoints).await?;
            writes.written += 1;
        }
        (Some(have), None) if is_ours(&have.metadata, MANAGED_BY_LABEL) => {
            delete(&endpoints, &key.name, have.metadata.resource_version).await?;
            writes.deleted += 1;
        }
        (_, None) => {}
    }
    for (_, _, suffix) in FAMILIES {
        let name = slice_name(&key.name, suffix);
        let wanted = want.and_then(|w| w.slices.iter().find(|s| s.metadata.name.as_deref() == Some(name.as_str())));
        match (slices.get_opt(&name).await?, wanted) {
            (Some(have), Some(want)) => {
                let same = same_meta(&have.metadata, &want.metadata)
                    && have.address_type == want.address_type
                    && have.endpoints == want.endpoints
                    && have.ports == want.ports;
                if !same && is_ours(&have.metadata, SLICE_MANAGED_BY_LABEL) {
                    let mut next = want.clone();
                    next.metadata.resource_version = have.metadata.resource_version.clone();
                    slices.replace(&name, &PostParams::default(), &next).await?;
                    writes.written += 1;
                }
            }
            (None, Some(want)) => {
                slices.create(&PostParams::default(), want).await?;
                writes.written += 1;
            }
            (Some(have), None) if is_ours(&have.metadata, SLICE_MANAGED_BY_LABEL) => {
                delete(&slices, &name, have.metadata.resource_version).await?;
                writes.deleted += 1;
            }
            (_, None) => {}
        }
    }
    Ok(writes)
}

/// Deletes `name` at `version`; already gone is done.
async fn delete<K>(api: &Api<K>, name: &str, version: Option<String>) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let params = DeleteParams {
        preconditions: Some(kube::api::Preconditions { resource_version: version, uid: None }),
        ..DeleteParams::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

//! The objects svcwatcher writes for a Service: its Endpoints and one EndpointSlice per address family,
//! and the writes that make the API server hold them.

use std::collections::BTreeMap;

use danm_core::discovery::{EndpointAddress, ServiceEndpoints, ServiceKey};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1 as discovery;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, ListParams, PostParams};

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

/// The address families, each with its own EndpointSlices.
pub(crate) const FAMILIES: [(bool, &str, &str); 2] = [(false, "IPv4", "ipv4"), (true, "IPv6", "ipv6")];

/// The most endpoints one EndpointSlice holds, as Kubernetes' own controller's default
/// (`--max-endpoints-per-slice`); a family with more gets several slices.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// The most addresses the Endpoints object holds, as Kubernetes' own controller: beyond it the object
/// is truncated (ready addresses first) and annotated [`OVER_CAPACITY_ANNOTATION`]; the EndpointSlices
/// hold every address.
pub const MAX_ENDPOINTS_ADDRESSES: usize = 1000;

/// Set to `truncated` on Endpoints that hold fewer addresses than the Service publishes.
pub const OVER_CAPACITY_ANNOTATION: &str = "endpoints.kubernetes.io/over-capacity";

/// The name of the `n`th (from 0) EndpointSlice of one family: `<service>-danm-ipv4`, then
/// `<service>-danm-ipv4-2`, `-3`, ... (and `-ipv6` alike), so a small Service keeps one stable name.
pub fn slice_name(service: &str, suffix: &str, n: usize) -> String {
    match n {
        0 => format!("{service}-danm-{suffix}"),
        n => format!("{service}-danm-{suffix}-{}", n + 1),
    }
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
    let ready: Vec<_> = published.ready.iter().take(MAX_ENDPOINTS_ADDRESSES).map(address).collect();
    let room = MAX_ENDPOINTS_ADDRESSES - ready.len();
    let not_ready: Vec<_> = published.not_ready.iter().take(room).map(address).collect();
    let mut annotations = annotations.clone();
    if published.ready.len() + published.not_ready.len() > MAX_ENDPOINTS_ADDRESSES {
        annotations.insert(OVER_CAPACITY_ANNOTATION.to_owned(), "truncated".to_owned());
    }
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
            annotations: Some(annotations).filter(|a| !a.is_empty()),
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
        for (n, chunk) in endpoints.chunks(MAX_ENDPOINTS_PER_SLICE).enumerate() {
            slices.push(discovery::EndpointSlice {
                metadata: ObjectMeta {
                    name: Some(slice_name(name, suffix, n)),
                    namespace: Some(ns.to_owned()),
                    labels: Some(BTreeMap::from([
                        (SERVICE_NAME_LABEL.to_owned(), name.to_owned()),
                        (SLICE_MANAGED_BY_LABEL.to_owned(), MANAGER.to_owned()),
                    ])),
                    owner_references: owners.clone(),
                    ..ObjectMeta::default()
                },
                address_type: address_type.to_owned(),
                endpoints: chunk.to_vec(),
                ports: none_if_empty(slice_ports.clone()),
            });
        }
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
    // svcwatcher's slices of this Service, found by their labels: however many a family had before.
    let selector = format!("{SERVICE_NAME_LABEL}={},{SLICE_MANAGED_BY_LABEL}={MANAGER}", key.name);
    let mut held: BTreeMap<String, discovery::EndpointSlice> = slices
        .list(&ListParams::default().labels(&selector))
        .await?
        .items
        .into_iter()
        .filter_map(|s| Some((s.metadata.name.clone()?, s)))
        .collect();
    for want in want.map(|w| w.slices.as_slice()).unwrap_or_default() {
        let name = want.metadata.name.clone().unwrap_or_default();
        match held.remove(&name) {
            Some(have) => {
                let same = same_meta(&have.metadata, &want.metadata)
                    && have.address_type == want.address_type
                    && have.endpoints == want.endpoints
                    && have.ports == want.ports;
                if !same {
                    let mut next = want.clone();
                    next.metadata.resource_version = have.metadata.resource_version.clone();
                    slices.replace(&name, &PostParams::default(), &next).await?;
                    writes.written += 1;
                }
            }
            None => {
                slices.create(&PostParams::default(), want).await?;
                writes.written += 1;
            }
        }
    }
    for (name, surplus) in held {
        delete(&slices, &name, surplus.metadata.resource_version).await?;
        writes.deleted += 1;
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

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use danm_core::discovery::{EndpointAddress, ServiceEndpoints};

    use super::*;

    fn published(v4: usize, v6: usize) -> ServiceEndpoints {
        let address = |ip: IpAddr, i: usize| EndpointAddress {
            ip,
            pod: format!("p{i}"),
            pod_uid: format!("u{i}"),
            interface: "eth1".into(),
            node_name: None,
            hostname: None,
        };
        let ready = (0..v4)
            .map(|i| address(IpAddr::from([10, 0, (i / 250) as u8, (i % 250) as u8]), i))
            .chain((0..v6).map(|i| address(IpAddr::from([0xfd00, 0, 0, 0, 0, 0, 0, i as u16]), i)))
            .collect();
        ServiceEndpoints {
            namespace: "vnf".into(),
            service: "svc".into(),
            networks: Vec::new(),
            ready,
            not_ready: Vec::new(),
            ports: Vec::new(),
        }
    }

    #[test]
    fn a_family_is_split_into_slices_of_at_most_a_hundred() {
        let d = desired(&published(250, 1), &BTreeMap::new(), Some("uid"));
        let slices: Vec<(String, &str, usize)> = d
            .slices
            .iter()
            .map(|s| (s.metadata.name.clone().unwrap(), s.address_type.as_str(), s.endpoints.len()))
            .collect();
        assert_eq!(
            slices,
            [
                ("svc-danm-ipv4".to_owned(), "IPv4", 100),
                ("svc-danm-ipv4-2".to_owned(), "IPv4", 100),
                ("svc-danm-ipv4-3".to_owned(), "IPv4", 50),
                ("svc-danm-ipv6".to_owned(), "IPv6", 1),
            ]
        );
        let addresses = d.endpoints.subsets.as_ref().unwrap()[0].addresses.as_ref().unwrap().len();
        assert_eq!(addresses, 251);
        assert!(d.endpoints.metadata.annotations.is_none());
    }

    #[test]
    fn endpoints_beyond_a_thousand_addresses_are_truncated_and_say_so() {
        let d = desired(&published(1200, 0), &BTreeMap::new(), None);
        let addresses = d.endpoints.subsets.as_ref().unwrap()[0].addresses.as_ref().unwrap().len();
        assert_eq!(addresses, MAX_ENDPOINTS_ADDRESSES);
        let annotations = d.endpoints.metadata.annotations.unwrap();
        assert_eq!(annotations.get(OVER_CAPACITY_ANNOTATION).map(String::as_str), Some("truncated"));
        assert_eq!(d.slices.iter().map(|s| s.endpoints.len()).sum::<usize>(), 1200, "slices hold every address");
        assert!(d.endpoints.metadata.owner_references.is_none(), "no owner without the Service's UID");
    }
}

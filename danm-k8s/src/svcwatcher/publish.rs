//! The objects svcwatcher writes for a Service: its Endpoints and its EndpointSlices (per address family
//! and port set), and the writes that make the API server hold them.

use std::collections::BTreeMap;

use danm_core::discovery::{EndpointAddress, PortGroup, ServiceEndpoints, ServiceKey};
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
/// is truncated (ready addresses first, each port set in proportion) and annotated [`OVER_CAPACITY_ANNOTATION`]; the EndpointSlices
/// hold every address.
pub const MAX_ENDPOINTS_ADDRESSES: usize = 1000;

/// Set to `truncated` on Endpoints that hold fewer addresses than the Service publishes.
pub const OVER_CAPACITY_ANNOTATION: &str = "endpoints.kubernetes.io/over-capacity";

/// The name of the `n`th (from 0) EndpointSlice of one family: `<service>-danm-ipv4`, then
/// `<service>-danm-ipv4-2`, `-3`, ... (and `-ipv6` alike), so a small Service whose pods listen on the
/// same ports keeps one stable name.
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
    /// Per family with addresses, per port set, one per [`MAX_ENDPOINTS_PER_SLICE`] endpoints; a family
    /// without addresses has no slice.
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
/// `uid`: the Endpoints named as the Service, with its annotations and one subset per port set (the
/// ready and not-ready addresses of both families whose pods listen on the same ports); per family, the
/// slices of each port set in turn, at most [`MAX_ENDPOINTS_PER_SLICE`] endpoints each.
///
/// As Kubernetes' controllers do, an address whose pod resolves none of the Service's ports is left out
/// of the Endpoints but kept in a slice without ports; a Service without ports publishes every address
/// without ports.
pub(crate) fn desired(
    published: &ServiceEndpoints,
    annotations: &BTreeMap<String, String>,
    uid: Option<&str>,
) -> Desired {
    let ns = published.namespace.as_str();
    let name = published.service.as_str();
    let owners = owner(uid, name);
    let groups = published.port_groups();
    let (subsets, truncated) = subsets(ns, &groups, !published.ports.is_empty());
    let mut annotations = annotations.clone();
    if truncated {
        annotations.insert(OVER_CAPACITY_ANNOTATION.to_owned(), "truncated".to_owned());
    }
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
    let mut slices = Vec::new();
    for (ipv6, address_type, suffix) in FAMILIES {
        // Numbered across the family's port sets, in their order: a Service whose pods agree keeps
        // `<service>-danm-<family>`.
        let mut n = 0;
        for group in &groups {
            let endpoints: Vec<discovery::Endpoint> =
                group.addresses(ipv6).map(|(a, ready)| slice_endpoint(ns, a, ready)).collect();
            let ports: Vec<discovery::EndpointPort> = group
                .ports
                .iter()
                .map(|p| discovery::EndpointPort {
                    name: Some(p.name.clone()),
                    port: Some(p.port),
                    protocol: Some(p.protocol.clone()),
                    app_protocol: None,
                })
                .collect();
            for chunk in endpoints.chunks(MAX_ENDPOINTS_PER_SLICE) {
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
                    ports: none_if_empty(ports.clone()),
                });
                n += 1;
            }
        }
    }
    Desired { endpoints, slices }
}

/// The Endpoints subsets of `groups`, one per port set, and whether addresses were left out to keep
/// within [`MAX_ENDPOINTS_ADDRESSES`]. With `has_ports`, addresses without ports are left out.
///
/// Truncation is Kubernetes' Endpoints controller's: when the ready addresses alone are over capacity,
/// each port set keeps its share of them (rounded up, the last ones taking what is left) and no
/// not-ready address is kept; otherwise every ready address is kept and the not-ready ones share what
/// is left alike. So no port set drops out of a truncated object.
fn subsets(ns: &str, groups: &[PortGroup<'_>], has_ports: bool) -> (Vec<core::EndpointSubset>, bool) {
    let listed: Vec<&PortGroup<'_>> = groups.iter().filter(|g| !(has_ports && g.ports.is_empty())).collect();
    let ready_total: usize = listed.iter().map(|g| g.ready.len()).sum();
    let not_ready_total: usize = listed.iter().map(|g| g.not_ready.len()).sum();
    let truncated = ready_total + not_ready_total > MAX_ENDPOINTS_ADDRESSES;
    let truncate_ready = ready_total > MAX_ENDPOINTS_ADDRESSES;
    let (share, of) = if truncate_ready {
        (MAX_ENDPOINTS_ADDRESSES, ready_total)
    } else {
        (MAX_ENDPOINTS_ADDRESSES - ready_total, not_ready_total)
    };
    let mut room = share;
    let mut quota = |n: usize| {
        let kept = (n * share).div_ceil(of.max(1)).min(room);
        room -= kept;
        kept
    };
    let kept = |addresses: &[&EndpointAddress], n: usize| -> Vec<core::EndpointAddress> {
        addresses.iter().take(n).map(|a| endpoint_address(ns, a)).collect()
    };
    let mut ready = Vec::with_capacity(listed.len());
    let mut not_ready = Vec::with_capacity(listed.len());
    for group in &listed {
        let (r, n) = match (truncated, truncate_ready) {
            (false, _) => (group.ready.len(), group.not_ready.len()),
            (true, true) => (quota(group.ready.len()), 0),
            (true, false) => (group.ready.len(), quota(group.not_ready.len())),
        };
        ready.push(kept(&group.ready, r));
        not_ready.push(kept(&group.not_ready, n));
    }
    let subsets = listed
        .iter()
        .zip(ready.into_iter().zip(not_ready))
        .filter(|(_, (ready, not_ready))| !(ready.is_empty() && not_ready.is_empty()))
        .map(|(group, (ready, not_ready))| core::EndpointSubset {
            addresses: none_if_empty(ready),
            not_ready_addresses: none_if_empty(not_ready),
            ports: none_if_empty(
                group
                    .ports
                    .iter()
                    .map(|p| core::EndpointPort {
                        name: Some(p.name.clone()).filter(|n| !n.is_empty()),
                        port: p.port,
                        protocol: Some(p.protocol.clone()),
                        app_protocol: None,
                    })
                    .collect(),
            ),
        })
        .collect();
    (subsets, truncated)
}

fn endpoint_address(ns: &str, a: &EndpointAddress) -> core::EndpointAddress {
    core::EndpointAddress {
        ip: a.ip.to_string(),
        hostname: a.hostname.clone(),
        node_name: a.node_name.clone(),
        target_ref: Some(target(ns, a)),
    }
}

fn slice_endpoint(ns: &str, a: &EndpointAddress, ready: bool) -> discovery::Endpoint {
    discovery::Endpoint {
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
    }
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

    use danm_core::discovery::{EndpointAddress, EndpointPort, ServiceEndpoints};
    use danm_core::service::ServicePort;

    use super::*;

    fn published(v4: usize, v6: usize) -> ServiceEndpoints {
        let address = |ip: IpAddr, i: usize| EndpointAddress {
            ip,
            pod: format!("p{i}"),
            pod_uid: format!("u{i}"),
            interface: "eth1".into(),
            node_name: None,
            hostname: None,
            ports: Vec::new(),
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
        assert!(d.slices.iter().all(|s| s.address_type == "IPv4"), "a family without addresses has no slice");
        assert!(d.endpoints.metadata.owner_references.is_none(), "no owner without the Service's UID");
    }

    #[test]
    fn truncated_endpoints_keep_every_port_set_in_proportion() {
        let mut p = published(2010, 0);
        p.ports = vec![ServicePort { name: "web".into(), port: 80, protocol: "TCP".into(), target_port: None }];
        for (i, a) in p.ready.iter_mut().enumerate() {
            a.ports = vec![port("web", if i < 2000 { 8080 } else { 8081 })];
        }
        // 100 not-ready addresses on 8080: left out, as the ready ones alone are over capacity.
        let not_ready: Vec<EndpointAddress> = p.ready[..100].to_vec();
        p.not_ready = not_ready;
        let d = desired(&p, &BTreeMap::new(), None);
        let subsets = subset_counts(&d);
        assert_eq!(subsets, [(8080, 996, 0), (8081, 4, 0)], "each port set keeps its share of the 1000");

        // Ready addresses within capacity: all kept; the not-ready ones share what is left.
        let mut p = published(900, 0);
        p.ports = vec![ServicePort { name: "web".into(), port: 80, protocol: "TCP".into(), target_port: None }];
        for (i, a) in p.ready.iter_mut().enumerate() {
            a.ports = vec![port("web", if i < 450 { 8080 } else { 8081 })];
        }
        let moved: Vec<EndpointAddress> = p.ready.drain(..).collect();
        let (ready, not_ready): (Vec<_>, Vec<_>) = moved.into_iter().enumerate().partition(|(i, _)| i % 450 < 400);
        p.ready = ready.into_iter().map(|(_, a)| a).collect();
        p.not_ready = not_ready.into_iter().map(|(_, a)| a).collect();
        let more_on_8080: Vec<EndpointAddress> = p.ready[..300].to_vec();
        p.not_ready.extend(more_on_8080);
        let d = desired(&p, &BTreeMap::new(), None);
        let counts: Vec<(usize, usize)> = subset_counts(&d).iter().map(|(_, r, n)| (*r, *n)).collect();
        // 800 ready; 400 not ready (350 on 8080, 50 on 8081) share the other 200: 175 and 25.
        assert_eq!(counts, [(400, 175), (400, 25)]);
    }

    /// Each Endpoints subset as (its one port, ready addresses, not-ready addresses).
    fn subset_counts(d: &Desired) -> Vec<(i32, usize, usize)> {
        let count = |v: &Option<Vec<core::EndpointAddress>>| v.as_ref().map_or(0, Vec::len);
        let subsets = d.endpoints.subsets.as_deref().unwrap_or_default();
        subsets
            .iter()
            .map(|s| {
                let ports = s.ports.as_ref().unwrap();
                assert_eq!(ports.len(), 1);
                (ports[0].port, count(&s.addresses), count(&s.not_ready_addresses))
            })
            .collect()
    }

    fn port(name: &str, port: i32) -> EndpointPort {
        EndpointPort { name: name.into(), port, protocol: "TCP".into() }
    }

    /// 150 IPv4 addresses listening on 8080, 3 on 8081 of which one is not ready, one on neither (its
    /// pod has no such named port), and one IPv6 address on 8080.
    fn published_on_two_port_sets() -> ServiceEndpoints {
        let mut p = published(154, 1);
        p.ports = vec![ServicePort { name: "web".into(), port: 80, protocol: "TCP".into(), target_port: None }];
        for (i, a) in p.ready.iter_mut().enumerate() {
            a.ports = match i {
                150..=152 => vec![port("web", 8081)],
                153 => Vec::new(),
                _ => vec![port("web", 8080)],
            };
        }
        let moved = p.ready.remove(152);
        p.not_ready.push(moved);
        p
    }

    #[test]
    fn pods_on_different_ports_get_a_subset_and_slices_each() {
        let d = desired(&published_on_two_port_sets(), &BTreeMap::new(), Some("uid"));
        let subsets = subset_counts(&d);
        assert_eq!(subsets, [(8080, 151, 0), (8081, 2, 1)], "the address without ports is not in the Endpoints");
        assert!(d.endpoints.metadata.annotations.is_none());
        let slices: Vec<(String, Option<i32>, usize)> = d
            .slices
            .iter()
            .map(|s| {
                let port = s.ports.as_ref().and_then(|p| p.first()).and_then(|p| p.port);
                (s.metadata.name.clone().unwrap(), port, s.endpoints.len())
            })
            .collect();
        assert_eq!(
            slices,
            [
                // Port sets in order, 8080, 8081, then none (the address whose pod resolves no port):
                // such a pod never renames the slices of the others.
                ("svc-danm-ipv4".to_owned(), Some(8080), 100),
                ("svc-danm-ipv4-2".to_owned(), Some(8080), 50),
                ("svc-danm-ipv4-3".to_owned(), Some(8081), 3),
                ("svc-danm-ipv4-4".to_owned(), None, 1),
                ("svc-danm-ipv6".to_owned(), Some(8080), 1),
            ]
        );
        let not_ready = d.slices[2].endpoints.iter().filter(|e| e.conditions.as_ref().unwrap().ready == Some(false));
        assert_eq!(not_ready.count(), 1);
        assert_eq!(d, desired(&published_on_two_port_sets(), &BTreeMap::new(), Some("uid")), "deterministic");
    }
}

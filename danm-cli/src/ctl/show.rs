//! `danmctl get` and `danmctl describe`.

use danm_core::ipam::{AllocatorId, Ipam, OwnerId};
use danm_core::manifest::Manifest;
use danm_core::model::{DanmEp, Network, NetworkKey, NetworkKind, PodRecord, TenantConfig};
use danm_core::service::ServiceRecord;
use danm_core::store::{Datastore, DatastoreExt, EndpointQuery, ObjectKey, Query, Record};
use serde_json::{Value, json};

use super::{CtlError, Resource};

/// How `get` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// A table.
    #[default]
    Table,
    /// A Kubernetes `List` object as JSON.
    Json,
    /// The same as YAML.
    Yaml,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "table" | "wide" => Ok(Self::Table),
            "json" => Ok(Self::Json),
            "yaml" => Ok(Self::Yaml),
            other => Err(format!("unknown output format `{other}`: use json or yaml")),
        }
    }
}

/// Lays rows out under headers, columns padded to their widest cell.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("   ").trim_end().to_owned()
    };
    let mut out = vec![line(headers.to_vec())];
    out.extend(rows.iter().map(|r| line(r.iter().map(String::as_str).collect())));
    out.join("\n") + "\n"
}

fn or_dash(s: &str) -> String {
    if s.is_empty() { "-".into() } else { s.to_owned() }
}

/// The values a query selects.
async fn values<S: Datastore + ?Sized, R: Record>(store: &S, query: &Query) -> Result<Vec<R>, CtlError> {
    Ok(store.list_as::<R>(query).await?.into_iter().map(|v| v.value).collect())
}

/// Objects as a Kubernetes `List` document.
fn documents<T: serde::Serialize>(items: &[T], format: Format) -> String {
    list_doc(items.iter().map(|i| serde_json::to_value(i).unwrap_or_default()).collect(), format)
}

fn list_doc(items: Vec<Value>, format: Format) -> String {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
    match format {
        Format::Yaml => serde_yaml::to_string(&list).unwrap_or_default(),
        _ => serde_json::to_string_pretty(&list).unwrap_or_default() + "\n",
    }
}

/// Lists objects; `namespace` `None` means every namespace.
pub async fn get<S: Datastore + ?Sized>(
    store: &S,
    resource: Resource,
    namespace: Option<&str>,
    format: Format,
) -> Result<String, CtlError> {
    let ns = namespace.map(str::to_owned);
    match resource {
        Resource::Networks | Resource::Kind(_) => {
            let kind = match resource {
                Resource::Kind(k) => Some(k),
                _ => None,
            };
            let nets: Vec<Network> = values::<_, Network>(store, &Query::Networks { kind, namespace: ns }).await?;
            if format != Format::Table {
                return Ok(documents(&nets, format));
            }
            let rows = nets
                .iter()
                .map(|n| {
                    let o = &n.spec.options;
                    let vid = match (o.vlan, o.vxlan) {
                        (Some(v), _) => format!("vlan {v}"),
                        (_, Some(v)) => format!("vxlan {v}"),
                        _ => "-".into(),
                    };
                    vec![
                        n.kind.to_string(),
                        n.metadata.namespace.clone().unwrap_or_else(|| "-".into()),
                        n.metadata.name.clone(),
                        n.spec.network_id.clone(),
                        or_dash(&n.spec.network_type),
                        or_dash(&o.cidr),
                        or_dash(&o.net6),
                        or_dash(&o.host_device),
                        vid,
                    ]
                })
                .collect::<Vec<_>>();
            Ok(table(&["KIND", "NAMESPACE", "NAME", "NETWORKID", "TYPE", "CIDR", "NET6", "HOST_DEVICE", "VID"], &rows))
        }
        Resource::TenantConfigs => {
            let tcs: Vec<TenantConfig> = values::<_, TenantConfig>(store, &Query::TenantConfigs).await?;
            if format != Format::Table {
                return Ok(documents(&tcs, format));
            }
            let rows = tcs
                .iter()
                .map(|t| {
                    let devs: Vec<String> = t.host_devices.iter().map(|d| d.name.clone()).collect();
                    let ids: Vec<String> = t.network_ids.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    vec![t.metadata.name.clone(), or_dash(&devs.join(",")), or_dash(&ids.join(","))]
                })
                .collect::<Vec<_>>();
            Ok(table(&["NAME", "HOST_DEVICES", "NETWORK_IDS"], &rows))
        }
        Resource::Endpoints => {
            let q = EndpointQuery { namespace: ns, ..EndpointQuery::default() };
            let eps: Vec<DanmEp> = values::<_, DanmEp>(store, &Query::Endpoints(q)).await?;
            if format != Format::Table {
                return Ok(documents(&eps, format));
            }
            Ok(endpoint_table(&eps))
        }
        Resource::Services => {
            let services: Vec<ServiceRecord> =
                values::<_, ServiceRecord>(store, &Query::Services { namespace: ns }).await?;
            if format != Format::Table {
                // As `v1` Services, which `danmctl apply` takes back.
                let docs: Vec<Manifest> = services.into_iter().map(Manifest::Service).collect();
                return Ok(documents(&docs, format));
            }
            let rows = services
                .iter()
                .map(|s| {
                    let selection = s.danm_selection().ok().flatten();
                    let selector =
                        selection.as_ref().map(|x| format!("{:?}", x.selector)).unwrap_or_else(|| "-".into());
                    let nets = selection
                        .map(|x| {
                            x.networks.iter().map(|n| format!("{}/{}", n.kind, n.name)).collect::<Vec<_>>().join(",")
                        })
                        .unwrap_or_else(|| "-".into());
                    vec![s.metadata.namespace.clone().unwrap_or_default(), s.metadata.name.clone(), selector, nets]
                })
                .collect::<Vec<_>>();
            Ok(table(&["NAMESPACE", "NAME", "DANM SELECTOR", "NETWORKS"], &rows))
        }
        Resource::ServiceEndpoints => service_endpoints(store, namespace, None, format).await,
        Resource::Pods => {
            let pods: Vec<PodRecord> = values::<_, PodRecord>(store, &Query::Pods { namespace: ns }).await?;
            if format != Format::Table {
                // As `v1` Pods, which `danmctl apply` takes back.
                let docs: Vec<Manifest> = pods.into_iter().map(Manifest::Pod).collect();
                return Ok(documents(&docs, format));
            }
            let rows = pods
                .iter()
                .map(|p| {
                    let ifaces = danm_core::pod::interfaces_from_annotations(&p.metadata.annotations)
                        .ok()
                        .flatten()
                        .map(|l| l.iter().map(|i| i.network.name.clone()).collect::<Vec<_>>().join(","))
                        .unwrap_or_default();
                    vec![
                        p.metadata.namespace.clone().unwrap_or_default(),
                        p.metadata.name.clone(),
                        p.metadata.uid.clone().unwrap_or_else(|| "-".into()),
                        or_dash(&ifaces),
                    ]
                })
                .collect::<Vec<_>>();
            Ok(table(&["NAMESPACE", "NAME", "UID", "NETWORKS"], &rows))
        }
    }
}

fn endpoint_table(eps: &[DanmEp]) -> String {
    let rows = eps
        .iter()
        .map(|e| {
            vec![
                e.metadata.namespace.clone().unwrap_or_default(),
                e.spec.pod.clone(),
                e.spec.interface.name.clone(),
                format!("{}/{}", e.spec.network_kind().unwrap_or(NetworkKind::DanmNet), e.spec.network_name),
                or_dash(&e.spec.interface.address),
                or_dash(&e.spec.interface.address_ipv6),
                or_dash(&e.spec.host),
            ]
        })
        .collect::<Vec<_>>();
    table(&["NAMESPACE", "POD", "INTERFACE", "NETWORK", "ADDRESS", "ADDRESS6", "HOST"], &rows)
}

/// What the DANM Services of `namespace` (all namespaces when `None`), or only the one named `service`,
/// publish.
pub async fn service_endpoints<S: Datastore + ?Sized>(
    store: &S,
    namespace: Option<&str>,
    service: Option<&str>,
    format: Format,
) -> Result<String, CtlError> {
    let services: Vec<ServiceRecord> = store
        .list_as::<ServiceRecord>(&Query::Services { namespace: namespace.map(str::to_owned) })
        .await?
        .into_iter()
        .map(|v| v.value)
        .filter(|s| service.is_none_or(|n| s.metadata.name == n))
        .collect();
    if let (Some(name), true) = (service, services.is_empty()) {
        return Err(CtlError::NotFound(format!("Service {name} (namespace {})", namespace.unwrap_or("any"))));
    }
    let mut published = Vec::new();
    for svc in &services {
        let ns = svc.metadata.namespace.clone().unwrap_or_default();
        let q = EndpointQuery { namespace: Some(ns.clone()), ..EndpointQuery::default() };
        let eps: Vec<DanmEp> = values::<_, DanmEp>(store, &Query::Endpoints(q)).await?;
        let pods: Vec<PodRecord> = values::<_, PodRecord>(store, &Query::Pods { namespace: Some(ns) }).await?;
        let find = |_: &str, name: &str| pods.iter().find(|p| p.metadata.name == name);
        if let Some(e) = danm_core::discovery::service_endpoints(svc, &eps, find)? {
            published.push(e);
        }
    }
    if format != Format::Table {
        return Ok(documents(&published, format));
    }
    let rows = published
        .iter()
        .map(|e| {
            let list = |v: &[danm_core::discovery::EndpointAddress]| {
                let s: Vec<String> = v.iter().map(|a| format!("{} ({})", a.ip, a.pod)).collect();
                if s.is_empty() { "-".to_owned() } else { s.join(", ") }
            };
            let nets: Vec<String> = e.networks.iter().map(|n| format!("{}/{}", n.kind, n.name)).collect();
            vec![e.namespace.clone(), e.service.clone(), nets.join(","), list(&e.ready), list(&e.not_ready)]
        })
        .collect::<Vec<_>>();
    Ok(table(&["NAMESPACE", "SERVICE", "NETWORKS", "READY", "NOT READY"], &rows))
}

/// The first network named `name` among `kinds`, seen from `namespace` (ClusterNetworks ignore it).
pub(super) async fn find_network<S: Datastore + ?Sized>(
    store: &S,
    kinds: &[NetworkKind],
    name: &str,
    namespace: &str,
) -> Result<Network, CtlError> {
    for kind in kinds {
        let key = NetworkKey::new(*kind, namespace, name);
        if let Some(v) = store.get_as::<Network>(&ObjectKey::Network(key)).await? {
            return Ok(v.value);
        }
    }
    Err(CtlError::NotFound(format!("network {name} (namespace {namespace})")))
}

/// Describes a network: its spec, the use of its pools per family, and its endpoints; with `addresses`,
/// also every allocated address and the attachment holding it (upstream's showalloc).
pub async fn describe_network<S: Datastore + ?Sized>(
    store: &S,
    name: &str,
    namespace: &str,
    addresses: bool,
) -> Result<String, CtlError> {
    let net = find_network(store, &NetworkKind::ALL, name, namespace).await?;
    let mut out = serde_yaml::to_string(&net).unwrap_or_default();
    let ipam = Ipam::new(store, AllocatorId::new("danmctl"));
    let usage = ipam.usage(&net).await?;
    out.push_str("\nPools:\n");
    if usage.is_empty() {
        out.push_str("  none: neither spec.Options.cidr nor spec.Options.net6 is set\n");
    } else {
        let rows = usage
            .iter()
            .map(|u| {
                vec![
                    u.family.to_string(),
                    u.subnet.to_string(),
                    format!("{} - {}", u.start, u.end),
                    u.capacity.to_string(),
                    u.allocated_in_pool.to_string(),
                    u.free().to_string(),
                    (u.allocated - u.allocated_in_pool).to_string(),
                ]
            })
            .collect::<Vec<_>>();
        out.push_str(&indent(&table(
            &["FAMILY", "SUBNET", "DYNAMIC RANGE", "CAPACITY", "USED", "FREE", "OUTSIDE RANGE"],
            &rows,
        )));
    }
    let eps: Vec<DanmEp> = values::<_, DanmEp>(store, &Query::Endpoints(EndpointQuery::network(net.key()))).await?;
    out.push_str(&format!("\nEndpoints ({}):\n", eps.len()));
    if !eps.is_empty() {
        out.push_str(&indent(&endpoint_table(&eps)));
    }
    if addresses {
        let allocated = ipam.allocations(&net).await?;
        out.push_str(&format!("\nAddresses ({}):\n", allocated.len()));
        if !allocated.is_empty() {
            out.push_str(&indent(&address_table(&allocated, &eps)));
        }
    }
    Ok(out)
}

/// Each allocated address with the DanmEp whose attachment holds it; an address no DanmEp accounts for
/// (an ADD under way before its record, or a leak for the cleaner) says so.
fn address_table(allocated: &[danm_core::ipam::Allocated], eps: &[DanmEp]) -> String {
    let holders: std::collections::BTreeMap<OwnerId, &DanmEp> =
        eps.iter().map(|e| (OwnerId::for_attachment(&e.spec.cid, &e.spec.interface.name), e)).collect();
    let rows = allocated
        .iter()
        .map(|a| {
            let range = if a.in_pool { "dynamic" } else { "outside" };
            match holders.get(&a.owner) {
                Some(e) => vec![
                    a.address.to_string(),
                    range.to_owned(),
                    format!("{}/{}", e.metadata.namespace.as_deref().unwrap_or_default(), e.spec.pod),
                    e.spec.interface.name.clone(),
                    e.spec.cid.clone(),
                ],
                None => vec![
                    a.address.to_string(),
                    range.to_owned(),
                    "-".to_owned(),
                    "-".to_owned(),
                    format!("no DanmEp (holder {})", a.owner),
                ],
            }
        })
        .collect::<Vec<_>>();
    table(&["ADDRESS", "RANGE", "POD", "INTERFACE", "CONTAINER"], &rows)
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("  {l}\n")).collect()
}

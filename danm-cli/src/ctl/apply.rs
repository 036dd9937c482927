//! `danmctl apply`: validate every document, then write them all.

use danm_core::manifest::{Manifest, decode_manifests};
use danm_core::model::{Network, NetworkKind, TenantConfig};
use danm_core::store::{Datastore, DatastoreExt, EndpointQuery, Object, ObjectKey, Query};
use danm_core::validate::{Operation, TenantConfigOperation, validate_network, validate_tenant_config};

use super::CtlError;

/// What `apply` did to one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// `Kind namespace/name`.
    pub object: String,
    /// `created`, `configured` or `unchanged`.
    pub action: &'static str,
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.object, self.action)
    }
}

fn describe(m: &Manifest) -> String {
    let meta = m.metadata();
    match &meta.namespace {
        Some(ns) => format!("{} {ns}/{}", m.kind(), meta.name),
        None => format!("{} {}", m.kind(), meta.name),
    }
}

/// Applies a multi-document YAML or JSON text: networks of every kind, TenantConfigs, pod records and
/// Services.
/// Every document is validated (against the stored object when it exists) before anything is written,
/// so a rejected document changes nothing. With `dry_run` nothing is written at all.
pub async fn apply<S: Datastore + ?Sized>(
    store: &S,
    text: &str,
    default_namespace: &str,
    dry_run: bool,
) -> Result<Vec<Applied>, CtlError> {
    let mut docs = decode_manifests(text)?;
    // Namespaced kinds without a namespace go to the default one, as kubectl does.
    for doc in &mut docs {
        let namespaced = match doc {
            Manifest::Network(n) => n.kind.is_namespaced(),
            Manifest::Pod(_) | Manifest::DanmEp(_) | Manifest::Service(_) => true,
            Manifest::TenantConfig(_) => false,
        };
        let meta = match doc {
            Manifest::Network(n) => &mut n.metadata,
            Manifest::Pod(p) => &mut p.metadata,
            Manifest::DanmEp(e) => &mut e.metadata,
            Manifest::Service(s) => &mut s.metadata,
            Manifest::TenantConfig(t) => &mut t.metadata,
        };
        if namespaced && meta.namespace.as_deref().unwrap_or_default().is_empty() {
            meta.namespace = Some(default_namespace.to_owned());
        }
        if !namespaced {
            meta.namespace = None;
        }
    }

    // Validate everything first.
    let mut plan = Vec::with_capacity(docs.len());
    for (index, doc) in docs.iter().enumerate() {
        let object = describe(doc);
        let reject = |errors: String| CtlError::Rejected { index, object: object.clone(), errors };
        let (obj, current) = match doc {
            Manifest::Network(net) => {
                let key = ObjectKey::Network(net.key());
                let current = store.get_as::<Network>(&key).await?;
                let verdict = match &current {
                    None => validate_network(net, &Operation::Create),
                    Some(old) => {
                        let users = store.list(&Query::Endpoints(EndpointQuery::network(net.key()))).await?;
                        validate_network(net, &Operation::Update { old: &old.value, in_use: !users.is_empty() })
                    }
                };
                verdict.map_err(|e| reject(e.to_string()))?;
                if net.kind == NetworkKind::TenantNetwork {
                    // TenantConfig-driven defaults are the admission webhook's job on Kubernetes; on the
                    // local store the network is taken as given, and must already be complete.
                    danm_core::validate::validate_tenant_network_mutated(net).map_err(|e| reject(e.to_string()))?;
                }
                (Object::Network(net.clone()), current.map(|v| (v.version, Object::Network(v.value))))
            }
            Manifest::TenantConfig(tc) => {
                let key = ObjectKey::TenantConfig(tc.metadata.name.clone());
                let current = store.get_as::<TenantConfig>(&key).await?;
                let verdict = match &current {
                    None => validate_tenant_config(tc, &TenantConfigOperation::Create),
                    Some(old) => validate_tenant_config(tc, &TenantConfigOperation::Update { old: &old.value }),
                };
                verdict.map_err(|e| reject(e.to_string()))?;
                (Object::TenantConfig(tc.clone()), current.map(|v| (v.version, Object::TenantConfig(v.value))))
            }
            Manifest::Pod(pod) => {
                if pod.metadata.name.is_empty() {
                    return Err(reject("metadata.name: a pod needs a name".into()));
                }
                // The interfaces annotation is checked now, not at the first ADD.
                danm_core::pod::interfaces_from_annotations(&pod.metadata.annotations)
                    .map_err(|e| reject(e.to_string()))?;
                let obj = Object::Pod(pod.clone());
                let current = store.get(&obj.key()).await?.map(|v| (v.version, v.value));
                (obj, current)
            }
            Manifest::DanmEp(_) => {
                return Err(reject("kind: DanmEp records are written by the danm CNI plugin, not applied".into()));
            }
            Manifest::Service(svc) => {
                // The DANM annotations are checked now, not when endpoints are computed.
                svc.danm_selection().map_err(|e| reject(e.to_string()))?;
                let obj = Object::Service(svc.clone());
                let current = store.get(&obj.key()).await?.map(|v| (v.version, v.value));
                (obj, current)
            }
        };
        plan.push((object, obj, current));
    }

    let mut applied = Vec::with_capacity(plan.len());
    for (object, obj, current) in plan {
        let action = match current {
            Some((_, old)) if old == obj => "unchanged",
            Some((version, _)) => {
                if !dry_run {
                    store.update(&obj, &version).await?;
                }
                "configured"
            }
            None => {
                if !dry_run {
                    store.create(&obj).await?;
                }
                "created"
            }
        };
        applied.push(Applied { object, action });
    }
    Ok(applied)
}

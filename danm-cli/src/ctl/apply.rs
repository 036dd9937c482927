//! `danmctl apply`: validate every document, then write them all.

use danm_core::admission::{Admission, AdmissionError, admit_tenant_config, parse_pod_interfaces};
use danm_core::manifest::{Manifest, decode_manifests};
use danm_core::model::{Network, NetworkKind, TenantConfig};
use danm_core::store::{Datastore, DatastoreExt, MemoryStore, Object, ObjectKey, Query, StoreError};

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
/// Every document is decided as the admission webhook decides it ([`danm_core::admission`]: defaults,
/// validation against the stored object when it exists, a TenantNetwork's profile, VNI and NetworkID from
/// the TenantConfig, TenantConfig bitmasks) before anything is written, so a rejected document changes
/// nothing; what is stored is the decided object. With `dry_run` nothing is written at all.
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

    // Decide everything first, as the admission webhook would: TenantConfigs (their bitmasks), then every
    // document in order. TenantNetworks to create are decided against a scratch copy of the TenantConfigs
    // (the stored ones with this text's applied over them), so that a TenantConfig in the same text is
    // used and several new TenantNetworks get different VNIs; their VNIs are reserved for real when they
    // are written.
    let decide = Admission::new(store).dry_run(true);
    let scratch = MemoryStore::new();
    for v in store.list_as::<TenantConfig>(&Query::TenantConfigs).await? {
        scratch.create(&Object::TenantConfig(v.value)).await?;
    }
    let mut configs = Vec::new();
    for (index, doc) in docs.iter().enumerate() {
        let Manifest::TenantConfig(tc) = doc else { continue };
        let key = ObjectKey::TenantConfig(tc.metadata.name.clone());
        let current = store.get_as::<TenantConfig>(&key).await?;
        let admitted = admit_tenant_config(tc.clone(), current.as_ref().map(|v| &v.value))
            .map_err(|e| CtlError::Rejected { index, object: describe(doc), errors: e.to_string() })?;
        match scratch.get(&key).await? {
            Some(v) => scratch.update(&Object::TenantConfig(admitted.clone()), &v.version).await?,
            None => scratch.create(&Object::TenantConfig(admitted.clone())).await?,
        };
        configs.push((index, admitted, current));
    }

    let mut plan = Vec::with_capacity(docs.len());
    for (index, doc) in docs.iter().enumerate() {
        let object = describe(doc);
        let reject = |errors: String| CtlError::Rejected { index, object: object.clone(), errors };
        let (obj, current, write) = match doc {
            Manifest::Network(net) => {
                let key = ObjectKey::Network(net.key());
                let current = store.get_as::<Network>(&key).await?;
                let decided = match &current {
                    None if net.kind == NetworkKind::TenantNetwork => {
                        Admission::new(&scratch).create_network(net.clone()).await
                    }
                    None => decide.create_network(net.clone()).await,
                    Some(old) => decide.update_network(&old.value, net.clone()).await,
                };
                let decided = decided.map_err(|e| refused(e, reject))?.object;
                let write = match (&current, net.kind) {
                    (None, NetworkKind::TenantNetwork) => Write::TenantNetwork(Box::new(net.clone())),
                    _ => Write::Plain,
                };
                (Object::Network(decided), current.map(|v| (v.version, Object::Network(v.value))), write)
            }
            Manifest::TenantConfig(_) => {
                let Some(pos) = configs.iter().position(|(i, _, _)| *i == index) else { continue };
                let (_, admitted, current) = configs.swap_remove(pos);
                (
                    Object::TenantConfig(admitted),
                    current.map(|v| (v.version, Object::TenantConfig(v.value))),
                    Write::First,
                )
            }
            Manifest::Pod(pod) => {
                if pod.metadata.name.is_empty() {
                    return Err(reject("metadata.name: a pod needs a name".into()));
                }
                // The interfaces annotation is checked now, not at the first ADD.
                parse_pod_interfaces(&pod.metadata.annotations).map_err(|e| reject(e.to_string()))?;
                let obj = Object::Pod(pod.clone());
                let current = store.get(&obj.key()).await?.map(|v| (v.version, v.value));
                (obj, current, Write::Plain)
            }
            Manifest::DanmEp(_) => {
                return Err(reject("kind: DanmEp records are written by the danm CNI plugin, not applied".into()));
            }
            Manifest::Service(svc) => {
                // The DANM annotations are checked now, not when endpoints are computed.
                svc.danm_selection().map_err(|e| reject(e.to_string()))?;
                let obj = Object::Service(svc.clone());
                let current = store.get(&obj.key()).await?.map(|v| (v.version, v.value));
                (obj, current, Write::Plain)
            }
        };
        plan.push((object, obj, current, write));
    }

    // TenantConfigs are written first: the TenantNetworks of the same text take their VNIs from them.
    let mut applied: Vec<Option<Applied>> = vec![None; plan.len()];
    let order: Vec<usize> = (0..plan.len())
        .filter(|&i| matches!(plan[i].3, Write::First))
        .chain((0..plan.len()).filter(|&i| !matches!(plan[i].3, Write::First)))
        .collect();
    for i in order {
        let (object, obj, current, write) = &plan[i];
        let action = match current {
            Some((_, old)) if old == obj => "unchanged",
            Some((version, _)) => {
                if !dry_run {
                    store.update(obj, version).await?;
                }
                "configured"
            }
            None => {
                if !dry_run {
                    match write {
                        Write::TenantNetwork(net) => create_tenant_network(store, (**net).clone(), i, object).await?,
                        Write::First | Write::Plain => {
                            store.create(obj).await?;
                        }
                    }
                }
                "created"
            }
        };
        applied[i] = Some(Applied { object: object.clone(), action });
    }
    Ok(applied.into_iter().flatten().collect())
}

/// How a planned document is written.
enum Write {
    /// Before everything else (TenantConfigs).
    First,
    /// As decided.
    Plain,
    /// Decided again against the stored TenantConfig, which reserves its VNI, then created; the VNI is
    /// released again when the create fails.
    TenantNetwork(Box<Network>),
}

async fn create_tenant_network<S: Datastore + ?Sized>(
    store: &S,
    net: Network,
    index: usize,
    object: &str,
) -> Result<(), CtlError> {
    let reject = |errors: String| CtlError::Rejected { index, object: object.to_owned(), errors };
    let admission = Admission::new(store);
    let decided = admission.create_network(net).await.map_err(|e| refused(e, reject))?.object;
    if let Err(e) = store.create(&Object::Network(decided.clone())).await {
        let _ = admission.release_tenant_vni(&decided).await;
        return Err(e.into());
    }
    Ok(())
}

/// An admission refusal as a rejected document; a failure to decide as the store error it was.
fn refused(e: AdmissionError, reject: impl FnOnce(String) -> CtlError) -> CtlError {
    match e {
        AdmissionError::Store(e) => CtlError::Store(e),
        AdmissionError::Contention { key } => CtlError::Store(StoreError::Conflict { key }),
        denial => reject(denial.to_string()),
    }
}

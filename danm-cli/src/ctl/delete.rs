//! `danmctl delete`: networks (refused while in use), TenantConfigs and pod records.

use danm_core::admission::{Admission, AdmissionError};
use danm_core::ipam::{Family, PoolKey};
use danm_core::model::{Network, NetworkKind};
use danm_core::store::{Datastore, Object, ObjectKey, Query, StoreError};

use super::show::find_network;
use super::{CtlError, Resource};

/// Deletes one object. A network that DanmEps still reference is refused; deleting a network also
/// removes its IPAM state, and a TenantNetwork's VNI is released in its TenantConfig. DanmEps are never
/// deleted by hand: DEL and GC free their addresses first.
pub async fn delete<S: Datastore + ?Sized>(
    store: &S,
    resource: Resource,
    name: &str,
    namespace: &str,
) -> Result<String, CtlError> {
    match resource {
        Resource::Networks | Resource::Kind(_) => {
            let kinds: Vec<NetworkKind> = match resource {
                Resource::Kind(k) => vec![k],
                _ => NetworkKind::ALL.to_vec(),
            };
            let net = find_network(store, &kinds, name, namespace).await?;
            delete_network(store, &net).await
        }
        Resource::TenantConfigs => {
            let key = ObjectKey::TenantConfig(name.to_owned());
            delete_key(store, &key).await?;
            Ok(format!("TenantConfig {name} deleted"))
        }
        Resource::Pods => {
            let key = ObjectKey::Pod { namespace: namespace.to_owned(), name: name.to_owned() };
            delete_key(store, &key).await?;
            Ok(format!("pod {namespace}/{name} deleted"))
        }
        Resource::Services => {
            let key = ObjectKey::Service { namespace: namespace.to_owned(), name: name.to_owned() };
            delete_key(store, &key).await?;
            Ok(format!("Service {namespace}/{name} deleted"))
        }
        Resource::ServiceEndpoints => Err(CtlError::Usage("endpoints are computed; delete the Service instead".into())),
        Resource::Endpoints => Err(CtlError::Usage(
            "DanmEps are removed by the CNI's DEL or GC, which free their addresses first; delete the pod instead"
                .into(),
        )),
    }
}

async fn delete_key<S: Datastore + ?Sized>(store: &S, key: &ObjectKey) -> Result<(), CtlError> {
    match store.delete(key, None).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Err(CtlError::NotFound(key.to_string())),
        Err(e) => Err(e.into()),
    }
}

async fn delete_network<S: Datastore + ?Sized>(store: &S, net: &Network) -> Result<String, CtlError> {
    // As the admission webhook: refused while DanmEps use it (D1); a TenantNetwork's VNI is released (D2).
    let admitted = Admission::new(store).delete_network(net).await.map_err(|e| match e {
        AdmissionError::Store(e) => CtlError::Store(e),
        AdmissionError::Contention { key } => CtlError::Store(StoreError::Conflict { key }),
        denial => CtlError::InUse(denial.to_string()),
    })?;
    delete_key(store, &ObjectKey::Network(net.key())).await?;
    let mut blocks = 0;
    for family in [Family::V4, Family::V6] {
        for b in store.list(&Query::Blocks(PoolKey::new(net.key(), family))).await? {
            if let Object::Block { key, .. } = &b.value {
                store.delete(&ObjectKey::Block(key.clone()), None).await?;
                blocks += 1;
            }
        }
    }
    let mut note = if blocks > 0 { format!(" ({blocks} leftover allocation block(s) removed)") } else { String::new() };
    for warning in admitted.warnings {
        note.push_str(&format!("\nwarning: {warning}"));
    }
    Ok(format!("{} deleted{note}", net.key()))
}

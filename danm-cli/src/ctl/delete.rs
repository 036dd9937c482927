//! `danmctl delete`: networks (refused while in use), TenantConfigs and pod records.

use danm_core::ipam::{Family, PoolKey};
use danm_core::model::{Network, NetworkKind};
use danm_core::store::{Datastore, EndpointQuery, Object, ObjectKey, Query};
use danm_core::validate::validate_network_delete;

use super::show::find_network;
use super::{CtlError, Resource};

/// Deletes one object. A network that DanmEps still reference is refused; deleting a network also
/// removes its IPAM state. DanmEps are never deleted by hand: DEL and GC free their addresses first.
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
    let users = store.list(&Query::Endpoints(EndpointQuery::network(net.key()))).await?;
    validate_network_delete(net, users.len()).map_err(|e| CtlError::InUse(e.to_string()))?;
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
    let note = if blocks > 0 { format!(" ({blocks} leftover allocation block(s) removed)") } else { String::new() };
    Ok(format!("{} deleted{note}", net.key()))
}

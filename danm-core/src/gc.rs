//! The cleaner's decision and sweep: DanmEps whose pod is gone, or exists with another UID, are stale;
//! their addresses are freed and the records removed. Records younger than a grace period are left
//! alone, so that a sweep never races a pod that is being set up.
//!
//! The sweep frees addresses and removes records only: interfaces live in pod namespaces on their nodes,
//! which the runtime's DEL or GC (or the namespace's teardown) removes.
//!
//! [`reclaim_ids`] gives back the VLAN and VXLAN IDs TenantConfigs hold reserved for networks that were
//! never created (see [`reclaim_unheld_ids`]).

use std::time::Duration;

use crate::admission::{ReclaimedId, reclaim_unheld_ids};
use crate::ipam::{AllocatorId, Ipam, IpamError, OwnerId};
use crate::meta::{CREATED_ANNOTATION, PHASE_ANNOTATION};
use crate::model::{DanmEp, Network, NetworkKey, NetworkKind, PodRecord, TenantConfig};
use crate::store::{Datastore, DatastoreExt, EndpointQuery, Object, ObjectKey, Query, StoreError};

/// Why a DanmEp is stale, or `None` when it is not (yet).
///
/// `pod` is the pod record of the DanmEp's namespace and `Pod` name, if it exists; `now` and the
/// record's creation time are seconds since the Unix epoch. A record without a creation time is as old
/// as can be.
pub fn staleness(ep: &DanmEp, pod: Option<&PodRecord>, now: u64, grace: Duration) -> Option<String> {
    let created = ep.metadata.annotations.get(CREATED_ANNOTATION).and_then(|c| c.parse::<u64>().ok()).unwrap_or(0);
    if now.saturating_sub(created) < grace.as_secs() {
        return None;
    }
    match pod {
        None => Some(format!("pod {} is gone", ep.spec.pod)),
        Some(p) => match p.metadata.uid.as_deref() {
            Some(uid) if !ep.spec.pod_uid.is_empty() && uid != ep.spec.pod_uid => {
                Some(format!("pod {} now has UID {uid}, not {}", ep.spec.pod, ep.spec.pod_uid))
            }
            _ => None,
        },
    }
}

/// One record a sweep removed (or, in a dry run, would remove).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swept {
    /// `namespace/pod interface (container)`.
    pub attachment: String,
    /// Why it was stale.
    pub reason: String,
}

/// Why a sweep failed part-way (what it had done stays done).
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// The store failed.
    #[error("datastore")]
    Store(#[from] StoreError),
    /// Freeing an address failed.
    #[error("freeing the addresses of {attachment}")]
    Ipam {
        /// The attachment.
        attachment: String,
        /// The IPAM error.
        #[source]
        source: IpamError,
    },
}

/// One pass of the cleaner over every DanmEp of the store: frees the addresses of the stale ones and
/// deletes them. With `dry_run` nothing is changed and the stale ones are only reported.
pub async fn sweep<S: Datastore + ?Sized>(store: &S, grace: Duration, dry_run: bool) -> Result<Vec<Swept>, GcError> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let ipam = Ipam::new(store, AllocatorId::new("danm-cleaner"));
    let eps = store.list_as::<DanmEp>(&Query::Endpoints(EndpointQuery::default())).await?;
    let mut swept = Vec::new();
    for v in eps {
        let ep = v.value;
        let namespace = ep.metadata.namespace.clone().unwrap_or_default();
        let key = ObjectKey::Pod { namespace: namespace.clone(), name: ep.spec.pod.clone() };
        let pod = store.get_as::<PodRecord>(&key).await?.map(|p| p.value);
        let Some(reason) = staleness(&ep, pod.as_ref(), now, grace) else { continue };
        let attachment = format!("{namespace}/{} {} ({})", ep.spec.pod, ep.spec.interface.name, ep.spec.cid);
        if !dry_run {
            free(&ipam, store, &ep).await.map_err(|source| GcError::Ipam { attachment: attachment.clone(), source })?;
            match store.delete(&Object::Endpoint(ep.clone()).key(), Some(&v.version)).await {
                Ok(()) | Err(StoreError::NotFound { .. }) => {}
                // Changed meanwhile (a DEL or an ADD is at work): the next pass decides again.
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        swept.push(Swept { attachment, reason });
    }
    Ok(swept)
}

/// A VLAN or VXLAN ID a pass released from a TenantConfig (or, in a dry run, would release).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reclaimed {
    /// The TenantConfig's name.
    pub tenant_config: String,
    /// The ID, its profile and since when no network has held it.
    pub id: ReclaimedId,
}

/// How often a pass re-reads a TenantConfig that changed under it before leaving it to the next pass.
const RECLAIM_ATTEMPTS: usize = 5;

/// One pass over every TenantConfig: records the reserved IDs no network holds, and releases those that
/// an earlier pass recorded `grace` or more ago ([`reclaim_unheld_ids`]). Each TenantConfig is written
/// with a compare-and-swap on its version; one that keeps changing is left to the next pass. With
/// `dry_run` nothing is written, and what this pass would release is reported.
pub async fn reclaim_ids<S: Datastore + ?Sized>(
    store: &S,
    grace: Duration,
    dry_run: bool,
) -> Result<Vec<Reclaimed>, GcError> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let configs = store.list_as::<TenantConfig>(&Query::TenantConfigs).await?;
    if configs.is_empty() {
        return Ok(Vec::new());
    }
    let networks: Vec<Network> = store
        .list_as::<Network>(&Query::Networks { kind: None, namespace: None })
        .await?
        .into_iter()
        .map(|v| v.value)
        .collect();
    let mut reclaimed = Vec::new();
    for config in configs {
        let (mut current, mut version) = (config.value, config.version);
        for _ in 0..RECLAIM_ATTEMPTS {
            let mut next = current.clone();
            let released = reclaim_unheld_ids(&mut next, &networks, now, grace.as_secs());
            let name = next.metadata.name.clone();
            let report =
                |ids: Vec<ReclaimedId>| ids.into_iter().map(|id| Reclaimed { tenant_config: name.clone(), id });
            if dry_run || next == current {
                reclaimed.extend(report(released));
                break;
            }
            match store.update(&Object::TenantConfig(next), &version).await {
                Ok(_) => {
                    reclaimed.extend(report(released));
                    break;
                }
                Err(StoreError::Conflict { .. }) => {
                    let key = ObjectKey::TenantConfig(name.clone());
                    let Some(fresh) = store.get_as::<TenantConfig>(&key).await? else { break };
                    (current, version) = (fresh.value, fresh.version);
                }
                // Deleted meanwhile: nothing left to reclaim in it.
                Err(StoreError::NotFound { .. }) => break,
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(reclaimed)
}

async fn free<S: Datastore + ?Sized>(ipam: &Ipam<&S>, store: &S, ep: &DanmEp) -> Result<(), IpamError> {
    let kind = ep.spec.network_kind().unwrap_or(NetworkKind::DanmNet);
    let key = NetworkKey::new(kind, ep.metadata.namespace.as_deref().unwrap_or_default(), ep.spec.network_name.clone());
    let Some(network) = store.get_as::<Network>(&ObjectKey::Network(key)).await?.map(|v| v.value) else {
        // The network is gone, and its pools with it.
        return Ok(());
    };
    let owner = OwnerId::for_attachment(&ep.spec.cid, &ep.spec.interface.name);
    if ep.metadata.annotations.contains_key(PHASE_ANNOTATION) {
        ipam.free_owner(&network, owner).await?;
        return Ok(());
    }
    for recorded in [&ep.spec.interface.address, &ep.spec.interface.address_ipv6] {
        let Ok(net) = recorded.parse::<ipnet::IpNet>() else { continue };
        match ipam.free(&network, net.addr(), owner).await {
            Ok(()) | Err(IpamError::HeldByOther { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

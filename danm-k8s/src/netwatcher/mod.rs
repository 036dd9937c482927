//! netwatcher: the per-node controller (a DaemonSet) that keeps the node's VLAN and VXLAN host
//! interfaces in line with all DanmNets, TenantNetworks and ClusterNetworks, and with Multus'
//! NetworkAttachmentDefinitions (NAD mode).
//!
//! The decisions are danm-core's ([`danm_core::netwatch`]): interfaces named as the CNI names them
//! (`<NetworkID>.<vlan>`, `vx_<NetworkID>`), reference counted over networks (an interface shared by
//! several networks stays until the last of them goes), drift repaired (an interface deleted, downed,
//! given another MTU or replaced comes back as wanted), changed ones recreated. This module feeds that
//! logic from Kubernetes and reports back:
//!
//! - **What is reconciled is the node, not one network.** A host interface's fate depends on every
//!   network that shares it, and a deleted network must be noticed without a finalizer (one per node on
//!   every network would be needed otherwise). So the controller's object is this node's `Node`
//!   (watched by name), [`reconcile`] plans over all networks from reflector caches of the three kinds,
//!   and every change to any network triggers it (kube's `reconcile_all_on`). It runs again every
//!   [`Config::resync`] to repair drift, and after [`Config::retry`] (doubling) when a pass failed
//!   ([`error_policy`]).
//! - **Destructive plans are confirmed.** Before it releases a holder or removes an interface, a pass
//!   re-reads the networks from the API server and plans again, so a network the CNI has just recorded
//!   on an interface, but the cache has not seen yet, is not taken for a deleted one.
//! - **Per-node state** is published as Events (`events.k8s.io/v1`, shown by `kubectl describe`) on the
//!   network, with this node as reporting instance and in the note, when a network's state on this node
//!   changes: [`REASON_READY`], [`REASON_FAILED`], [`REASON_CONFLICT`], [`REASON_INVALID`]. A
//!   `host_device` absent from a node is normal in a cluster of unlike nodes and is not reported.
//! - **NAD mode** ([`Config::attachments`]): when the API server serves NetworkAttachmentDefinitions
//!   (a probe list at start; a 404 turns the mode off, logged once), a fourth cache holds them and each
//!   one asking for a host interface is a holder beside the networks
//!   ([`danm_core::netwatch::plan_with_attachments`]). After a pass, each NAD ready on this node whose
//!   `master` does not name its interface yet is rewritten to it, with the original parent in the
//!   `danm.k8s.io/host-device` annotation: a replace at the read `resourceVersion`, re-read and tried
//!   again on a conflict. Every node that made the interface may do so, and all write the same value;
//!   a node without the parent device writes nothing.
//! - **Metrics** (with a [`Telemetry`]): the reconcile metrics labelled
//!   `controller="netwatcher"`, `danm_netwatcher_host_interfaces`, `danm_netwatcher_networks{state}`
//!   and `danm_netwatcher_steps_total{step,result}`.
//!
//! The provisioner is a value: the netlink one on a node, danm-core's recording one in tests. Only
//! netwatcher releases and removes host interfaces; the CNI only ensures them (see
//! [`danm_core::netwatch`] for the contract).

mod events;
mod metrics;
mod reconcile;
mod rewrite;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use danm_core::provision::{HostInventory, InterfaceProvisioner};
use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::Node;
use kube::api::ListParams;
use kube::runtime::controller::{self, Controller};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client};

pub use events::{REASON_CONFLICT, REASON_FAILED, REASON_INVALID, REASON_READY};
pub use reconcile::{Context, Error, NetworkCaches, error_policy, reconcile};

use crate::runtime::Telemetry;
use crate::{ClusterNetwork, DanmNet, NetworkAttachmentDefinition, TenantNetwork};

/// The controller's name: in Events (reporting controller) and in the reconcile metrics.
pub const CONTROLLER: &str = "netwatcher";

/// How netwatcher runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The node this instance manages (the `NODE_NAME` of its pod, from the downward API).
    pub node_name: String,
    /// How often the node is reconciled without any change to the networks, to repair drift.
    pub resync: Duration,
    /// The first retry after a failed pass; it doubles with every failure in a row, up to `resync`.
    pub retry: Duration,
    /// NAD mode: whether NetworkAttachmentDefinitions are watched too (when the API server serves them).
    pub attachments: bool,
}

impl Config {
    /// The defaults for `node_name`: resync every 60 s, first retry after 5 s, NAD mode on.
    pub fn new(node_name: impl Into<String>) -> Self {
        Self {
            node_name: node_name.into(),
            resync: Duration::from_secs(60),
            retry: Duration::from_secs(5),
            attachments: true,
        }
    }
}

/// How many times the NetworkAttachmentDefinition API is asked for before NAD mode is given up.
const PROBE_ATTEMPTS: u32 = 5;

/// Whether the API server serves NetworkAttachmentDefinitions to this client: a list of one object
/// answers. A 404 (the CRD is not installed) is final at once; any other error is asked again a few
/// times, and then NAD mode is off as well, with a warning (netwatcher does not wait for an API it
/// could not read: its networks would wait too).
async fn probe_attachments(client: &Client) -> bool {
    let api = Api::<NetworkAttachmentDefinition>::all(client.clone());
    for attempt in 1..=PROBE_ATTEMPTS {
        match api.list(&ListParams::default().limit(1)).await {
            Ok(_) => return true,
            Err(kube::Error::Api(s)) if s.code == 404 => {
                tracing::info!(
                    "the API server does not serve NetworkAttachmentDefinitions (k8s.cni.cncf.io/v1): NAD mode is off"
                );
                return false;
            }
            Err(e) if attempt == PROBE_ATTEMPTS => {
                tracing::warn!(error = %e, "NetworkAttachmentDefinitions cannot be listed: NAD mode is off");
                return false;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200) * attempt).await,
        }
    }
    false
}

/// Runs netwatcher for `config.node_name` until `shutdown` resolves (a pass under way is finished
/// first): watches that Node, the three network kinds and, in NAD mode when the API server serves
/// them, NetworkAttachmentDefinitions, and reconciles the node's host interfaces through
/// `provisioner`. Marks `telemetry` ready once the caches are filled.
pub async fn run<P>(
    client: Client,
    provisioner: P,
    config: Config,
    telemetry: Option<Arc<Telemetry>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) where
    P: InterfaceProvisioner + HostInventory + 'static,
{
    // kube's controller wants a `Sync` shutdown future; a channel turns any future into one.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(());
    });
    let (danmnets, danmnet_writer) = reflector::store();
    let (tenantnetworks, tenant_writer) = reflector::store();
    let (clusternetworks, cluster_writer) = reflector::store();
    let wc = watcher::Config::default();
    let (attachments, attachment_changes) = if config.attachments && probe_attachments(&client).await {
        let (store, writer) = reflector::store();
        let api = Api::<NetworkAttachmentDefinition>::all(client.clone());
        let changes =
            reflector(writer, watcher(api, wc.clone()).default_backoff()).touched_objects().map(|r| r.map(drop));
        (Some(store), Some(changes.boxed()))
    } else {
        (None, None)
    };
    let caches = NetworkCaches { danmnets, tenantnetworks, clusternetworks, attachments };
    let changes = stream::select_all(
        [
            reflector(danmnet_writer, watcher(Api::<DanmNet>::all(client.clone()), wc.clone()).default_backoff())
                .touched_objects()
                .map(|r| r.map(drop))
                .boxed(),
            reflector(tenant_writer, watcher(Api::<TenantNetwork>::all(client.clone()), wc.clone()).default_backoff())
                .touched_objects()
                .map(|r| r.map(drop))
                .boxed(),
            reflector(
                cluster_writer,
                watcher(Api::<ClusterNetwork>::all(client.clone()), wc.clone()).default_backoff(),
            )
            .touched_objects()
            .map(|r| r.map(drop))
            .boxed(),
        ]
        .into_iter()
        .chain(attachment_changes),
    )
    .filter_map(|change| async move {
        match change {
            Ok(()) => Some(()),
            Err(e) => {
                tracing::warn!(error = %e, "watching networks failed; retrying");
                None
            }
        }
    });

    if let Some(telemetry) = &telemetry {
        let (telemetry, caches) = (telemetry.clone(), caches.clone());
        tokio::spawn(async move {
            let ready = caches.danmnets.wait_until_ready().await.is_ok()
                && caches.tenantnetworks.wait_until_ready().await.is_ok()
                && caches.clusternetworks.wait_until_ready().await.is_ok()
                && match &caches.attachments {
                    Some(store) => store.wait_until_ready().await.is_ok(),
                    None => true,
                };
            telemetry.set_ready(ready);
        });
    }

    let node = config.node_name.clone();
    let ctx = Arc::new(Context::new(client.clone(), provisioner, config, caches, telemetry.as_deref()));
    let nodes = Api::<Node>::all(client);
    let node_filter = watcher::Config::default().fields(&format!("metadata.name={node}"));
    tracing::info!(%node, "netwatcher starting");
    Controller::new(nodes, node_filter)
        .with_config(controller::Config::default().debounce(Duration::from_millis(200)))
        .reconcile_all_on(changes)
        .graceful_shutdown_on(async {
            let _ = stopped.await;
        })
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "netwatcher controller");
            }
        })
        .await;
    tracing::info!(%node, "netwatcher stopped");
}

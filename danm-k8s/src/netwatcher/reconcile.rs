//! One reconciliation of the node: networks from the caches, the node from the provisioner, danm-core's
//! plan carried out, Events for what changed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use danm_core::error_chain;
use danm_core::model::Network;
use danm_core::netwatch::{self, Attachment, HolderKey, HostAction, HostPlan, NetworkReport, Placement};
use danm_core::provision::{HostInventory, HostScan, InterfaceProvisioner, ProvisionError};
use k8s_openapi::api::core::v1::{Node, ObjectReference};
use kube::api::{Api, ListParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::Store;
use kube::{Client, Resource};
use tokio::sync::Mutex;

use super::Config;
use super::events::Published;
use super::metrics::Metrics;
use super::rewrite;
use crate::nad::{self, NetworkAttachmentDefinition};
use crate::runtime::{ReconcileMetrics, Telemetry};
use crate::{ClusterNetwork, DanmNet, TenantNetwork};

/// How long a reconciliation waits for the network caches' first full list before it tries again.
const CACHE_WAIT: Duration = Duration::from_secs(5);

/// Why a reconciliation failed; [`error_policy`] retries it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The network caches have not had their first full list yet (the CRDs may be missing).
    #[error("the network caches are not filled yet")]
    CachesNotReady,
    /// Reading the node's host interfaces failed.
    #[error("reading the node's host interfaces failed")]
    Scan(#[source] ProvisionError),
    /// The fresh read of the networks that confirms a destructive plan failed.
    #[error("listing {kind} objects failed")]
    List {
        /// The kind.
        kind: &'static str,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Some steps of the plan failed.
    #[error("{0}")]
    Steps(String),
    /// Rewriting a NetworkAttachmentDefinition's `master` to its host interface failed.
    #[error(
        "rewriting the master of NetworkAttachmentDefinition {namespace}/{name} failed{}",
        if .source.is_none() { ": other writers kept changing it" } else { "" }
    )]
    Rewrite {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The API error; `None` when it kept conflicting with other writers.
        #[source]
        source: Option<kube::Error>,
    },
}

/// The caches of the three network kinds the controller keeps (reflector stores), and of
/// NetworkAttachmentDefinitions when NAD mode is on.
#[derive(Debug, Clone)]
pub struct NetworkCaches {
    /// DanmNets.
    pub danmnets: Store<DanmNet>,
    /// TenantNetworks.
    pub tenantnetworks: Store<TenantNetwork>,
    /// ClusterNetworks.
    pub clusternetworks: Store<ClusterNetwork>,
    /// NetworkAttachmentDefinitions; `None` when NAD mode is off (by configuration, or because the API
    /// server does not serve the kind).
    pub attachments: Option<Store<NetworkAttachmentDefinition>>,
}

/// Every holder of host interfaces: the networks, the NetworkAttachmentDefinitions (as danm-core
/// reads them, and as objects, for the rewrite), and the references their Events go to.
#[derive(Debug, Default)]
struct Holders {
    networks: Vec<Network>,
    attachments: Vec<Attachment>,
    nads: BTreeMap<HolderKey, NetworkAttachmentDefinition>,
    refs: BTreeMap<HolderKey, ObjectReference>,
}

impl Holders {
    fn networks<K>(&mut self, objects: impl IntoIterator<Item = K>)
    where
        K: Resource<DynamicType = ()> + Into<Network> + Clone,
    {
        for object in objects {
            let reference = object.object_ref(&());
            let network: Network = object.into();
            self.refs.insert(network.key().into(), reference);
            self.networks.push(network);
        }
    }

    fn attachments(&mut self, objects: impl IntoIterator<Item = NetworkAttachmentDefinition>) {
        for nad in objects {
            let attachment = nad.attachment();
            let key = attachment.key();
            self.refs.insert(key.clone(), nad.object_ref(&()));
            self.nads.insert(key, nad);
            self.attachments.push(attachment);
        }
    }

    fn plan(&self, scan: &HostScan) -> HostPlan {
        netwatch::plan_with_attachments(&self.networks, &self.attachments, scan)
    }
}

impl NetworkCaches {
    /// Waits (up to `wait`) until every cache has had its first full list.
    async fn ready(&self, wait: Duration) -> bool {
        let all = async {
            self.danmnets.wait_until_ready().await.is_ok()
                && self.tenantnetworks.wait_until_ready().await.is_ok()
                && self.clusternetworks.wait_until_ready().await.is_ok()
                && match &self.attachments {
                    Some(store) => store.wait_until_ready().await.is_ok(),
                    None => true,
                }
        };
        tokio::time::timeout(wait, all).await.unwrap_or(false)
    }

    fn holders(&self) -> Holders {
        let mut holders = Holders::default();
        holders.networks(self.danmnets.state().iter().map(|o| DanmNet::clone(o)));
        holders.networks(self.tenantnetworks.state().iter().map(|o| TenantNetwork::clone(o)));
        holders.networks(self.clusternetworks.state().iter().map(|o| ClusterNetwork::clone(o)));
        if let Some(store) = &self.attachments {
            holders.attachments(store.state().iter().map(|o| NetworkAttachmentDefinition::clone(o)));
        }
        holders
    }
}

/// Every holder, read from the API server now (a consistent read, not a cache); the
/// NetworkAttachmentDefinitions only when `attachments`.
async fn list_fresh(client: &Client, attachments: bool) -> Result<Holders, Error> {
    let params = ListParams::default();
    let list_err = |kind| move |source| Error::List { kind, source };
    let mut holders = Holders::default();
    let danmnets = Api::<DanmNet>::all(client.clone()).list(&params).await.map_err(list_err("DanmNet"))?;
    holders.networks(danmnets);
    let tenant = Api::<TenantNetwork>::all(client.clone()).list(&params).await.map_err(list_err("TenantNetwork"))?;
    holders.networks(tenant);
    let cluster = Api::<ClusterNetwork>::all(client.clone()).list(&params).await.map_err(list_err("ClusterNetwork"))?;
    holders.networks(cluster);
    if attachments {
        let nads =
            Api::<NetworkAttachmentDefinition>::all(client.clone()).list(&params).await.map_err(list_err(nad::KIND))?;
        holders.attachments(nads);
    }
    Ok(holders)
}

/// What a reconciliation needs: the API client, the provisioner of this node, the network caches, and
/// the controller's state (what was reported, how many passes failed in a row).
pub struct Context<P> {
    client: Client,
    provisioner: P,
    config: Config,
    caches: NetworkCaches,
    recorder: Recorder,
    published: Mutex<Published>,
    failures: AtomicU32,
    metrics: Metrics,
    reconciles: Option<ReconcileMetrics>,
}

impl<P> std::fmt::Debug for Context<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("config", &self.config).finish_non_exhaustive()
    }
}

impl<P> Context<P>
where
    P: InterfaceProvisioner + HostInventory,
{
    /// A context for the node `config.node_name`, with metrics registered in `telemetry` when given.
    pub fn new(
        client: Client,
        provisioner: P,
        config: Config,
        caches: NetworkCaches,
        telemetry: Option<&Telemetry>,
    ) -> Self {
        let reporter = Reporter { controller: super::CONTROLLER.to_owned(), instance: Some(config.node_name.clone()) };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            provisioner,
            caches,
            published: Mutex::new(Published::default()),
            failures: AtomicU32::new(0),
            metrics: Metrics::new(telemetry),
            reconciles: telemetry.map(|t| t.reconcile_metrics(super::CONTROLLER)),
            config,
        }
    }

    /// The provisioner.
    pub fn provisioner(&self) -> &P {
        &self.provisioner
    }
}

/// Reconciles this node's host interfaces with all networks: waits for the caches, scans the node,
/// plans, confirms a destructive plan against a fresh read of the networks (a network the CNI just
/// recorded may not be in the cache yet), carries the plan out, publishes what changed as Events and
/// asks to run again after the resync period (sooner, through [`error_policy`], when something failed).
///
/// The object reconciled is the Node; any change to any network triggers it too.
pub async fn reconcile<P>(node: Arc<Node>, ctx: Arc<Context<P>>) -> Result<Action, Error>
where
    P: InterfaceProvisioner + HostInventory,
{
    let started = Instant::now();
    let result = pass(&ctx).await;
    if let Some(metrics) = &ctx.reconciles {
        metrics.observe(started, result.is_ok());
    }
    if result.is_ok() {
        ctx.failures.store(0, Ordering::Relaxed);
        tracing::debug!(node = node.metadata.name.as_deref().unwrap_or_default(), "host interfaces reconciled");
    }
    result.map(|()| Action::requeue(ctx.config.resync))
}

async fn pass<P>(ctx: &Context<P>) -> Result<(), Error>
where
    P: InterfaceProvisioner + HostInventory,
{
    if !ctx.caches.ready(CACHE_WAIT).await {
        return Err(Error::CachesNotReady);
    }
    let scan = ctx.provisioner.scan_hosts().await.map_err(Error::Scan)?;
    let mut holders = ctx.caches.holders();
    let mut plan = holders.plan(&scan);
    if plan.is_destructive() {
        holders = list_fresh(&ctx.client, ctx.caches.attachments.is_some()).await?;
        plan = holders.plan(&scan);
    }
    let outcomes = netwatch::apply(&plan, &ctx.provisioner).await;
    for outcome in &outcomes {
        match &outcome.result {
            Ok(()) => tracing::info!(step = %outcome.action, "host interface step done"),
            Err(e) => tracing::warn!(step = %outcome.action, error = %error_chain(e), "host interface step failed"),
        }
    }
    let reports = netwatch::report(&plan, &outcomes);
    for (key, report) in reports.iter().filter(|(_, r)| r.is_problem()) {
        tracing::debug!(network = %key, report = ?report, "network needs attention");
    }
    ctx.metrics.record(&outcomes, reports.values(), interfaces_needed(&plan));
    let changed: BTreeSet<String> = outcomes
        .iter()
        .filter(|o| o.result.is_ok() && matches!(o.action, HostAction::Ensure { .. } | HostAction::Recreate { .. }))
        .map(|o| o.action.interface().to_owned())
        .collect();
    ctx.published.lock().await.publish(&ctx.recorder, &ctx.config.node_name, &reports, &holders.refs, &changed).await;
    let mut rewrite_failed = None;
    for (key, nad) in &holders.nads {
        let Some(NetworkReport::Ready { interface }) = reports.get(key) else { continue };
        match rewrite::point_master_at_interface(&ctx.client, nad, interface).await {
            Ok(true) => tracing::info!(attachment = %key, %interface, "master rewritten to the host interface"),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(attachment = %key, error = %error_chain(&e), "rewriting master failed");
                rewrite_failed.get_or_insert(e);
            }
        }
    }
    match (netwatch::failure_summary(&outcomes), rewrite_failed) {
        (Some(summary), _) => Err(Error::Steps(summary)),
        (None, Some(e)) => Err(e),
        (None, None) => Ok(()),
    }
}

fn interfaces_needed(plan: &HostPlan) -> usize {
    let names: BTreeSet<&String> = plan
        .placements
        .values()
        .filter_map(|p| if let Placement::Interface(name) = p { Some(name) } else { None })
        .collect();
    names.len()
}

/// After a failed reconciliation: logs it and retries after [`Config::retry`], doubled with every
/// failure in a row, up to the resync period.
pub fn error_policy<P>(_node: Arc<Node>, error: &Error, ctx: Arc<Context<P>>) -> Action {
    let failures = ctx.failures.fetch_add(1, Ordering::Relaxed).min(16);
    let delay = ctx.config.retry.saturating_mul(1 << failures).min(ctx.config.resync);
    tracing::warn!(error = %error_chain(error), retry_in = ?delay, "reconciling host interfaces failed");
    Action::requeue(delay)
}

//! svcwatcher: Endpoints and EndpointSlices for DANM Services, from the addresses of the pods' DanmEps on
//! the networks the Services name.
//!
//! It follows Services, DanmEps and Pods with watches ([`watch_changes`]), keeps them in danm-core's
//! [`ServiceIndex`], and reconciles only the Services each change touches: the work per change is
//! proportional to the Services and network it touches, not to the size of the cluster. Per Service it
//! writes (see [`publish`]):
//!
//! - the **Endpoints** named as the Service, with the Service's annotations (as upstream) and a subset
//!   per port set: ready and not-ready addresses with `hostname`, `nodeName`, a `targetRef` with the
//!   pod's UID, and the Service's ports as those pods listen on them (each port's `targetPort`, a named
//!   one resolved per pod); labelled `danm.k8s.io/managed-by` and `endpointslice.kubernetes.io/skip-mirror`;
//! - **EndpointSlices** per address family with addresses (`<service>-danm-ipv4`, `-ipv6`, then `-2`,
//!   `-3`, ... for more than 100 endpoints or more than one port set), labelled
//!   `kubernetes.io/service-name` and `endpointslice.kubernetes.io/managed-by`, so cluster DNS resolves
//!   headless Services through them;
//!
//! both owned by the Service, so Kubernetes' garbage collector removes them with it even while
//! svcwatcher is down. Endpoints that svcwatcher did not write are never touched.
//!
//! Replicas elect a leader on a Lease ([`crate::runtime::LeaderElector`]); every replica keeps its index
//! current, and only the leader writes. Nothing is written until all three watches have listed once, so
//! a restart never publishes a half-known state.

pub mod publish;

mod convert;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use danm_core::discovery::{Publication, ServiceIndex, ServiceKey};
use danm_core::model::{DanmEp, PodRecord};
use danm_core::service::ServiceRecord;
use futures::stream::{FuturesUnordered, Stream, StreamExt};
use futures::{FutureExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tokio::time::Instant;

use crate::crd;
use crate::runtime::{Action, Leadership, ReconcileMetrics, Telemetry};
pub use publish::Desired;

/// Why a reconciliation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or failed a read or write.
    #[error("writing the Endpoints of {service}")]
    Api {
        /// The Service.
        service: ServiceKey,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

/// One change svcwatcher follows, as the records the index keeps.
#[derive(Debug, Clone)]
pub enum Change {
    /// A Service changed.
    Service(Event<ServiceRecord>),
    /// A DanmEp changed (boxed: a DanmEp is several times the size of the other records).
    Endpoint(Event<Box<DanmEp>>),
    /// A Pod changed.
    Pod(Event<PodRecord>),
}

fn map_event<A, B>(event: Event<A>, f: impl Fn(A) -> B) -> Event<B> {
    match event {
        Event::Apply(o) => Event::Apply(f(o)),
        Event::Delete(o) => Event::Delete(f(o)),
        Event::Init => Event::Init,
        Event::InitApply(o) => Event::InitApply(f(o)),
        Event::InitDone => Event::InitDone,
    }
}

/// The changes of every Service, DanmEp and Pod of the cluster, from three watches that restart with
/// backoff after errors (each error is also passed on, to be logged).
pub fn watch_changes(client: kube::Client) -> impl Stream<Item = Result<Change, watcher::Error>> + Send {
    let config = watcher::Config::default();
    let services = watcher::watcher(Api::<Service>::all(client.clone()), config.clone())
        .default_backoff()
        .map_ok(|e| Change::Service(map_event(e, |s| convert::service_record(&s))));
    let endpoints = watcher::watcher(Api::<crd::DanmEp>::all(client.clone()), config.clone())
        .default_backoff()
        .map_ok(|e| Change::Endpoint(map_event(e, |ep| Box::new(convert::endpoint(ep)))));
    let pods = watcher::watcher(Api::<Pod>::all(client), config)
        .default_backoff()
        .map_ok(|e| Change::Pod(map_event(e, |p| convert::pod_record(&p))));
    futures::stream::select(services.boxed(), futures::stream::select(endpoints.boxed(), pods.boxed()))
}

/// Settings of a svcwatcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// How many Services are written at once.
    pub concurrency: usize,
    /// How often a published Service is re-read and repaired even without a change.
    pub resync: Duration,
    /// The first retry delay after a failed write; it doubles per failure up to `max_backoff`.
    pub backoff: Duration,
    /// The longest retry delay.
    pub max_backoff: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            concurrency: 8,
            resync: Duration::from_secs(600),
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(60),
        }
    }
}

#[derive(Debug)]
struct Metrics {
    reconcile: ReconcileMetrics,
    events: Family<Vec<(String, String)>, Counter>,
    writes: Counter,
    deletes: Counter,
    queued: Gauge,
    leading: Gauge,
    indexed: Family<Vec<(String, String)>, Gauge>,
}

impl Metrics {
    fn new(telemetry: &Telemetry) -> Self {
        let m = Self {
            reconcile: telemetry.reconcile_metrics("svcwatcher"),
            events: Family::default(),
            writes: Counter::default(),
            deletes: Counter::default(),
            queued: Gauge::default(),
            leading: Gauge::default(),
            indexed: Family::default(),
        };
        telemetry.register("svcwatcher_events", "Watch events handled, by kind", m.events.clone());
        telemetry.register("svcwatcher_writes", "Endpoints and EndpointSlices created or replaced", m.writes.clone());
        telemetry.register("svcwatcher_deletes", "Endpoints and EndpointSlices deleted", m.deletes.clone());
        telemetry.register("svcwatcher_queued_services", "Services waiting to be reconciled", m.queued.clone());
        telemetry.register("svcwatcher_leading", "1 while this replica leads and writes", m.leading.clone());
        telemetry.register("svcwatcher_indexed_objects", "Objects in the index, by kind", m.indexed.clone());
        m
    }

    fn event(&self, kind: &str) {
        self.events.get_or_create(&vec![("kind".to_owned(), kind.to_owned())]).inc();
    }
}

/// What reconciliations share: the client, the settings, the leadership and the metrics.
pub struct Context {
    client: kube::Client,
    config: Config,
    leadership: Leadership,
    telemetry: Arc<Telemetry>,
    metrics: Metrics,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Context {
    /// A context writing through `client`, leading while `leadership` says so, counting into `telemetry`
    /// (which it marks ready once every watch has listed).
    pub fn new(client: kube::Client, config: Config, leadership: Leadership, telemetry: &Arc<Telemetry>) -> Arc<Self> {
        let metrics = Metrics::new(telemetry);
        Arc::new(Self { client, config, leadership, telemetry: telemetry.clone(), metrics })
    }
}

/// Makes the API server hold `want` for the Service `key`: its Endpoints and EndpointSlices, or, with
/// `None` (the Service is gone, not a DANM Service, or malformed), none of svcwatcher's.
pub async fn reconcile(key: &ServiceKey, want: Option<&Desired>, ctx: &Context) -> Result<Action, Error> {
    let writes =
        publish::apply(&ctx.client, key, want).await.map_err(|source| Error::Api { service: key.clone(), source })?;
    ctx.metrics.writes.inc_by(writes.written);
    ctx.metrics.deletes.inc_by(writes.deleted);
    if writes != publish::Writes::default() {
        tracing::info!(service = %key, written = writes.written, deleted = writes.deleted, "endpoints updated");
    }
    Ok(match want {
        Some(_) => Action::Requeue(ctx.config.resync),
        None => Action::AwaitChange,
    })
}

/// What to do after a failed reconciliation: retry after a delay that doubles with each consecutive
/// failure (`attempt` counts from 1), with jitter, up to the configured maximum.
pub fn error_policy(key: &ServiceKey, error: &Error, attempt: u32, ctx: &Context) -> Action {
    let base = ctx.config.backoff.saturating_mul(1 << attempt.saturating_sub(1).min(16));
    let delay = base.min(ctx.config.max_backoff);
    let jittered = delay.mul_f64(0.5 + fastrand::f64() / 2.0);
    tracing::warn!(service = %key, attempt, retry_in = ?jittered, error = %error, cause = ?std::error::Error::source(error), "reconciliation failed");
    Action::Requeue(jittered)
}

/// The three kinds of object followed, for relist bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Service = 0,
    Endpoint = 1,
    Pod = 2,
}

const KIND_NAMES: [&str; 3] = ["Service", "DanmEp", "Pod"];

/// svcwatcher's state: the index, the queue of Services to reconcile, and what was last published.
#[derive(Debug)]
pub struct SvcWatcher {
    index: ServiceIndex,
    ctx: Arc<Context>,
    dirty: BTreeSet<ServiceKey>,
    scheduled: BTreeSet<(Instant, ServiceKey)>,
    schedule_of: HashMap<ServiceKey, Instant>,
    failures: HashMap<ServiceKey, u32>,
    in_flight: HashSet<ServiceKey>,
    /// What the API server was last made to hold per Service (`None`: nothing of svcwatcher's).
    published: HashMap<ServiceKey, Option<Desired>>,
    /// The objects listed so far in a relist, per kind.
    relisting: [Option<HashSet<(String, String)>>; 3],
    synced: [bool; 3],
}

impl SvcWatcher {
    /// A svcwatcher with an empty index.
    pub fn new(ctx: Arc<Context>) -> Self {
        Self {
            index: ServiceIndex::new(),
            ctx,
            dirty: BTreeSet::new(),
            scheduled: BTreeSet::new(),
            schedule_of: HashMap::new(),
            failures: HashMap::new(),
            in_flight: HashSet::new(),
            published: HashMap::new(),
            relisting: [None, None, None],
            synced: [false; 3],
        }
    }

    /// The index as the changes so far made it.
    pub fn index(&self) -> &ServiceIndex {
        &self.index
    }

    /// Whether every kind has been listed once.
    pub fn synced(&self) -> bool {
        self.synced.iter().all(|s| *s)
    }

    /// Takes one change into the index and queues the Services it touches.
    pub fn observe(&mut self, change: Change) {
        let touched = match change {
            Change::Service(e) => {
                self.event(Kind::Service, e, |ix, s| ix.apply_service(s), |ix, ns, n| ix.delete_service(ns, n))
            }
            Change::Endpoint(e) => {
                self.event(Kind::Endpoint, e, |ix, ep| ix.apply_endpoint(*ep), |ix, ns, n| ix.delete_endpoint(ns, n))
            }
            Change::Pod(e) => self.event(Kind::Pod, e, |ix, p| ix.apply_pod(p), |ix, ns, n| ix.delete_pod(ns, n)),
        };
        self.dirty.extend(touched);
        let (services, endpoints, pods) = self.index.len();
        for (kind, n) in [("Service", services), ("DanmEp", endpoints), ("Pod", pods)] {
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            self.ctx.metrics.indexed.get_or_create(&vec![("kind".to_owned(), kind.to_owned())]).set(n);
        }
    }

    fn event<T: Named>(
        &mut self,
        kind: Kind,
        event: Event<T>,
        apply: impl Fn(&mut ServiceIndex, T) -> BTreeSet<ServiceKey>,
        delete: impl Fn(&mut ServiceIndex, &str, &str) -> BTreeSet<ServiceKey>,
    ) -> BTreeSet<ServiceKey> {
        let slot = kind as usize;
        self.ctx.metrics.event(KIND_NAMES[slot]);
        match event {
            Event::Apply(o) => apply(&mut self.index, o),
            Event::Delete(o) => {
                let (ns, name) = o.key();
                delete(&mut self.index, &ns, &name)
            }
            Event::Init => {
                self.relisting[slot] = Some(HashSet::new());
                BTreeSet::new()
            }
            Event::InitApply(o) => {
                if let Some(seen) = &mut self.relisting[slot] {
                    seen.insert(o.key());
                }
                apply(&mut self.index, o)
            }
            Event::InitDone => {
                let seen = self.relisting[slot].take().unwrap_or_default();
                let held: Vec<(String, String)> = match kind {
                    Kind::Service => self.index.service_keys().map(|k| (k.namespace, k.name)).collect(),
                    Kind::Endpoint => self.index.endpoint_keys().map(|(a, b)| (a.to_owned(), b.to_owned())).collect(),
                    Kind::Pod => self.index.pod_keys().map(|(a, b)| (a.to_owned(), b.to_owned())).collect(),
                };
                let mut touched = BTreeSet::new();
                for (ns, name) in held.into_iter().filter(|k| !seen.contains(k)) {
                    touched.extend(delete(&mut self.index, &ns, &name));
                }
                if !self.synced[slot] {
                    tracing::info!(kind = KIND_NAMES[slot], "listed");
                }
                self.synced[slot] = true;
                if self.synced() {
                    self.ctx.telemetry.set_ready(true);
                }
                touched
            }
        }
    }

    /// What the API server should hold for `key`, as the index stands.
    fn desired(&self, key: &ServiceKey) -> Option<Desired> {
        match self.index.publication(key) {
            Publication::Endpoints(published) => {
                let service = self.index.service(key)?;
                Some(publish::desired(&published, &service.metadata.annotations, service.metadata.uid.as_deref()))
            }
            Publication::Invalid(e) => {
                tracing::warn!(service = %key, error = %e, "malformed DANM annotations; publishing nothing");
                None
            }
            Publication::Gone | Publication::NotDanm => None,
        }
    }

    fn schedule(&mut self, key: ServiceKey, at: Instant) {
        if let Some(old) = self.schedule_of.insert(key.clone(), at) {
            self.scheduled.remove(&(old, key.clone()));
        }
        self.scheduled.insert((at, key));
    }

    fn unschedule(&mut self, key: &ServiceKey) {
        if let Some(at) = self.schedule_of.remove(key) {
            self.scheduled.remove(&(at, key.clone()));
        }
    }

    /// Moves the Services whose retry or resync is due into the queue; their last publication is
    /// forgotten, so they are read back from the API server and repaired.
    fn promote_due(&mut self, now: Instant) {
        while let Some((at, key)) = self.scheduled.first().cloned() {
            if at > now {
                break;
            }
            self.scheduled.pop_first();
            self.schedule_of.remove(&key);
            self.published.remove(&key);
            self.dirty.insert(key);
        }
    }

    /// The next queued Service not being written now.
    fn next_ready(&mut self) -> Option<ServiceKey> {
        let key = self.dirty.iter().find(|k| !self.in_flight.contains(*k))?.clone();
        self.dirty.remove(&key);
        Some(key)
    }

    fn finished(&mut self, key: ServiceKey, want: Option<Desired>, result: Result<Action, Error>) {
        self.in_flight.remove(&key);
        let action = match result {
            Ok(action) => {
                self.failures.remove(&key);
                if want.is_none() && self.index.service(&key).is_none() {
                    // Gone and cleaned up: nothing is kept of it.
                    self.published.remove(&key);
                } else {
                    self.published.insert(key.clone(), want);
                }
                action
            }
            Err(e) => {
                self.published.remove(&key);
                let attempt = self.failures.entry(key.clone()).or_default();
                *attempt += 1;
                error_policy(&key, &e, *attempt, &self.ctx)
            }
        };
        match action {
            Action::Requeue(after) => self.schedule(key, Instant::now() + after),
            Action::AwaitChange => self.unschedule(&key),
        }
    }

    /// Follows `changes` and reconciles until `shutdown` resolves or the changes end; writes started
    /// before are finished first.
    pub async fn run(
        mut self,
        changes: impl Stream<Item = Result<Change, watcher::Error>>,
        shutdown: impl Future<Output = ()>,
    ) {
        let mut changes = pin!(changes);
        let mut shutdown = pin!(shutdown);
        let mut leadership = self.ctx.leadership.clone();
        let mut leading = leadership.is_leader();
        let mut running = FuturesUnordered::new();
        loop {
            self.ctx.metrics.leading.set(i64::from(leading));
            if leading && self.synced() {
                self.promote_due(Instant::now());
                while running.len() < self.ctx.config.concurrency.max(1) {
                    let Some(key) = self.next_ready() else { break };
                    let want = self.desired(&key);
                    if self.published.get(&key) == Some(&want) {
                        continue;
                    }
                    self.in_flight.insert(key.clone());
                    let ctx = self.ctx.clone();
                    running.push(
                        async move {
                            let started = std::time::Instant::now();
                            let result = reconcile(&key, want.as_ref(), &ctx).await;
                            ctx.metrics.reconcile.observe(started, result.is_ok());
                            (key, want, result)
                        }
                        .boxed(),
                    );
                }
            }
            self.ctx.metrics.queued.set(i64::try_from(self.dirty.len()).unwrap_or(i64::MAX));
            let next_due = self.scheduled.first().map(|(at, _)| *at);
            tokio::select! {
                () = &mut shutdown => break,
                change = changes.next() => match change {
                    Some(Ok(change)) => self.observe(change),
                    Some(Err(e)) => tracing::warn!(error = %e, "watch failed; it restarts with backoff"),
                    None => break,
                },
                Some((key, want, result)) = running.next(), if !running.is_empty() => {
                    self.finished(key, want, result);
                }
                now_leading = leadership.changed() => {
                    leading = now_leading.unwrap_or(false);
                    if leading {
                        // Another replica may have written since: re-read every Service.
                        self.published.clear();
                        let all: Vec<ServiceKey> = self.index.service_keys().collect();
                        self.dirty.extend(all);
                    }
                }
                () = tokio::time::sleep_until(next_due.unwrap_or_else(Instant::now)), if next_due.is_some() && leading => {}
            }
        }
        while let Some((key, want, result)) = running.next().await {
            self.finished(key, want, result);
        }
    }
}

/// The namespace and name of a watched record.
trait Named {
    fn key(&self) -> (String, String);
}

impl Named for ServiceRecord {
    fn key(&self) -> (String, String) {
        (self.metadata.namespace.clone().unwrap_or_default(), self.metadata.name.clone())
    }
}

impl Named for Box<DanmEp> {
    fn key(&self) -> (String, String) {
        (self.metadata.namespace.clone().unwrap_or_default(), self.metadata.name.clone())
    }
}

impl Named for PodRecord {
    fn key(&self) -> (String, String) {
        (self.metadata.namespace.clone().unwrap_or_default(), self.metadata.name.clone())
    }
}

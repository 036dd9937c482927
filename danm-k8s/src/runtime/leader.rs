//! Leader election on a `coordination.k8s.io/v1` Lease.
//!
//! One replica holds the Lease and renews it every retry period; the others watch it, and take it over
//! when it has not changed for a whole lease duration as measured by their own clock (never by
//! comparing timestamps written by another node, so clock skew between nodes does not matter). Every
//! write is a compare-and-swap on the Lease's `resourceVersion`: of two replicas racing for an expired
//! Lease, one gets 409 and stays a follower. A leader that cannot renew for the renew deadline steps
//! down before its Lease can expire, so two replicas never both believe they lead. On shutdown a leader
//! releases the Lease so a follower takes over at once.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;

/// The timings of a [`LeaderElector`], as client-go names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTimings {
    /// How long a Lease that nobody renews stays held (`leaseDurationSeconds`).
    pub lease_duration: Duration,
    /// How long a leader keeps leading while its renewals fail; shorter than `lease_duration`.
    pub renew_deadline: Duration,
    /// How often a leader renews and a follower tries to take over.
    pub retry_period: Duration,
}

impl Default for LeaseTimings {
    /// 15 s, 10 s and 2 s: Kubernetes' own controllers' defaults.
    fn default() -> Self {
        Self {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Whether this replica leads, as the [`LeaderElector`] last decided.
#[derive(Debug, Clone)]
pub struct Leadership {
    rx: watch::Receiver<bool>,
    /// The sender of a leadership nobody elects ([`Leadership::always`]), kept so it never ends.
    _fixed: Option<std::sync::Arc<watch::Sender<bool>>>,
}

impl Leadership {
    /// Whether this replica leads now.
    pub fn is_leader(&self) -> bool {
        *self.rx.borrow()
    }

    /// Waits until leadership changes; returns the new state, or `None` when the elector is gone.
    pub async fn changed(&mut self) -> Option<bool> {
        self.rx.changed().await.ok()?;
        Some(*self.rx.borrow_and_update())
    }

    /// A leadership that follows `rx`: for a caller that runs its own election, and for tests.
    pub fn from_receiver(rx: watch::Receiver<bool>) -> Self {
        Self { rx, _fixed: None }
    }

    /// A leadership that is always held: for a single replica without election, and for tests.
    pub fn always() -> Self {
        let (tx, rx) = watch::channel(true);
        Self { rx, _fixed: Some(std::sync::Arc::new(tx)) }
    }
}

/// What this replica last saw of the Lease.
#[derive(Debug, Clone)]
struct Observed {
    resource_version: Option<String>,
    holder: Option<String>,
    at: Instant,
}

/// Takes part in the election of one Lease (see the module docs).
#[derive(Debug)]
pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timings: LeaseTimings,
    state: watch::Sender<bool>,
    observed: Option<Observed>,
    last_renewed: Option<Instant>,
}

impl LeaderElector {
    /// An elector for the Lease `namespace/name`, as `identity` (unique per replica: the pod name).
    pub fn new(client: kube::Client, namespace: &str, name: &str, identity: &str, timings: LeaseTimings) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity: identity.to_owned(),
            timings,
            state: watch::channel(false).0,
            observed: None,
            last_renewed: None,
        }
    }

    /// The leadership this elector decides.
    pub fn leadership(&self) -> Leadership {
        Leadership { rx: self.state.subscribe(), _fixed: None }
    }

    /// Whether this replica leads now.
    pub fn is_leader(&self) -> bool {
        *self.state.borrow()
    }

    /// One round: acquires, renews or observes the Lease, and updates the leadership. Returns whether this
    /// replica leads afterwards. An API error is returned after leadership has been updated (a leader
    /// keeps leading through errors until the renew deadline).
    pub async fn step(&mut self) -> Result<bool, kube::Error> {
        let result = self.try_acquire_or_renew().await;
        let now = Instant::now();
        let leading = match &result {
            Ok(true) => {
                self.last_renewed = Some(now);
                true
            }
            Ok(false) => false,
            Err(_) => self.is_leader() && self.last_renewed.is_some_and(|t| now - t < self.timings.renew_deadline),
        };
        self.set(leading);
        result.map(|_| leading)
    }

    /// Runs rounds every retry period until `shutdown` resolves, then releases the Lease if held.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self.step().await {
                tracing::warn!(lease = %self.name, error = %e, leading = self.is_leader(), "leader election round failed");
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(self.timings.retry_period) => {}
            }
        }
        if self.is_leader() {
            self.set(false);
            if let Err(e) = self.release().await {
                tracing::warn!(lease = %self.name, error = %e, "releasing the lease failed; it expires on its own");
            }
        }
    }

    fn set(&self, leading: bool) {
        let was = self.state.send_replace(leading);
        if was != leading {
            tracing::info!(lease = %self.name, identity = %self.identity, leading, "leadership changed");
        }
    }

    fn spec(&self, previous: Option<&LeaseSpec>) -> LeaseSpec {
        let now = MicroTime(Timestamp::now());
        let ours = previous.and_then(|s| s.holder_identity.as_deref()) == Some(self.identity.as_str());
        let transitions = previous.and_then(|s| s.lease_transitions).unwrap_or(0);
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(i32::try_from(self.timings.lease_duration.as_secs()).unwrap_or(i32::MAX)),
            acquire_time: match ours {
                true => previous.and_then(|s| s.acquire_time.clone()),
                false => Some(now.clone()),
            },
            renew_time: Some(now),
            lease_transitions: Some(if ours || previous.is_none() { transitions } else { transitions + 1 }),
            ..LeaseSpec::default()
        }
    }

    async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let now = Instant::now();
        let Some(current) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(self.name.clone()), ..ObjectMeta::default() },
                spec: Some(self.spec(None)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => Ok(self.observe(&created, now)),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let holder = current.spec.as_ref().and_then(|s| s.holder_identity.clone()).filter(|h| !h.is_empty());
        let changed = self
            .observed
            .as_ref()
            .is_none_or(|o| o.resource_version != current.metadata.resource_version || o.holder != holder);
        if changed {
            self.observe(&current, now);
        }
        let ours = holder.as_deref() == Some(self.identity.as_str());
        let expired =
            holder.is_none() || self.observed.as_ref().is_some_and(|o| now - o.at >= self.lease_duration_of(&current));
        if !ours && !expired {
            return Ok(false);
        }
        let mut next = current.clone();
        next.spec = Some(self.spec(current.spec.as_ref()));
        match self.api.replace(&self.name, &PostParams::default(), &next).await {
            Ok(written) => Ok(self.observe(&written, now)),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The holder's lease duration as written in the Lease, or ours.
    fn lease_duration_of(&self, lease: &Lease) -> Duration {
        lease
            .spec
            .as_ref()
            .and_then(|s| s.lease_duration_seconds)
            .and_then(|s| u64::try_from(s).ok())
            .map_or(self.timings.lease_duration, Duration::from_secs)
    }

    /// Records `lease` as seen at `at`; returns whether this replica holds it.
    fn observe(&mut self, lease: &Lease, at: Instant) -> bool {
        let holder = lease.spec.as_ref().and_then(|s| s.holder_identity.clone()).filter(|h| !h.is_empty());
        let ours = holder.as_deref() == Some(self.identity.as_str());
        self.observed = Some(Observed { resource_version: lease.metadata.resource_version.clone(), holder, at });
        ours
    }

    /// Gives the Lease up: no holder, so any follower takes it on its next round.
    async fn release(&mut self) -> Result<(), kube::Error> {
        let Some(mut current) = self.api.get_opt(&self.name).await? else { return Ok(()) };
        let spec = current.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        self.api.replace(&self.name, &PostParams::default(), &current).await?;
        Ok(())
    }
}

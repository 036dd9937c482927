//! Admission: what upstream DANM's admission webhook decided about networks, TenantConfigs and (new in
//! danm-rs) pods, as decisions over a [`Datastore`].
//!
//! An [`Admission`] takes one object being created, updated or deleted and returns it as it should be
//! stored ([`Admitted`], with the defaults and TenantConfig-driven fields filled in) or an
//! [`AdmissionError`] naming every broken rule. The Kubernetes admission webhook (`danm-k8s`) and
//! `danmctl apply`/`delete` on the local store make the same decisions through it.
//!
//! What it decides:
//!
//! - **Networks**, create and update: the defaults of [`apply_network_defaults`], then every rule of
//!   [`crate::validate::validate_network`]; an update is checked against the stored network and whether
//!   DanmEps use it (found by [`EndpointQuery::network`], never by listing every endpoint).
//! - **TenantNetworks**, in addition: the interface profile, VNI and NetworkID from the TenantConfig
//!   ([`plan_tenant_network`]), the VNI reserved in the TenantConfig's `alloc` bitmask by a
//!   compare-and-swap write with bounded, jittered retries, and rule 18 on the result. An update keeps
//!   the profile, VNI and device the stored network has when the new object leaves them out.
//! - **Deletes** of networks: refused while DanmEps use the network (rule D1); a TenantNetwork's VNI is
//!   released (rule D2).
//! - **TenantConfigs**: rules TC1–TC6 and the `alloc` bitmasks ([`admit_tenant_config`]).
//! - **Pods**: the interfaces annotation, strictly parsed, and each request against the network it names
//!   where that network exists ([`check_request_against_network`]).
//!
//! With [`Admission::dry_run`] nothing is written: a TenantNetwork shows the VNI it would get.
//!
//! What it does not do: decode or encode admission requests, talk HTTP, or decide anything about objects
//! other than these.

mod alloc;
mod defaults;
mod error;
mod pod;
mod tenant;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

pub use alloc::{MAX_ALLOC_VNI, VniAlloc, VniAllocError};
pub use defaults::{DEFAULT_NETWORK_TYPE, apply_network_defaults};
pub use error::{AdmissionError, Result};
pub use pod::{check_request_against_network, parse_pod_interfaces};
pub use tenant::{
    ReclaimedId, TenantNetworkPlan, UNHELD_IDS_ANNOTATION, VniRelease, VniReservation, admit_tenant_config,
    apply_reservation, is_dynamic_type, mark_in_use, override_network_id, plan_tenant_network, reclaim_unheld_ids,
    release_vni, select_tenant_config,
};

use crate::model::{Network, NetworkKind, TenantConfig};
use crate::pod::{INTERFACES_ANNOTATION, INTERFACES_ANNOTATION_ALT};
use crate::retry::{NoSleep, RetryPolicy, Sleeper};
use crate::store::{Datastore, DatastoreExt, EndpointQuery, Object, ObjectKey, Query, Versioned};
use crate::validate::{
    Operation, ValidationErrors, validate_network, validate_network_delete, validate_tenant_network_mutated,
};

/// An admitted object and anything the requester should be warned about.
#[derive(Debug, Clone, PartialEq)]
pub struct Admitted<T> {
    /// The object as it should be stored.
    pub object: T,
    /// Things worth telling the requester that do not stop the request (an admission webhook returns them
    /// as warnings).
    pub warnings: Vec<String>,
}

impl<T> Admitted<T> {
    fn new(object: T) -> Self {
        Self { object, warnings: Vec::new() }
    }
}

static NO_SLEEP: NoSleep = NoSleep;

/// Admission decisions over a datastore. Cheap to build: make one per request.
#[derive(Debug)]
pub struct Admission<'a, S: ?Sized> {
    store: &'a S,
    dry_run: bool,
    policy: RetryPolicy,
    sleeper: &'a dyn Sleeper,
}

impl<'a, S: Datastore + ?Sized> Admission<'a, S> {
    /// Decisions over `store`, writing (VNI reservations and releases) as they go, with the default
    /// retry policy and no wait between retries.
    pub fn new(store: &'a S) -> Self {
        Self { store, dry_run: false, policy: RetryPolicy::default(), sleeper: &NO_SLEEP }
    }

    /// With `dry_run`, nothing is written: a TenantNetwork gets the VNI it would get, and deleting one
    /// releases nothing.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Retries lost compare-and-swap races as `policy` says, waiting with `sleeper`.
    pub fn with_retry(mut self, policy: RetryPolicy, sleeper: &'a dyn Sleeper) -> Self {
        self.policy = policy;
        self.sleeper = sleeper;
        self
    }

    /// Admits a new network of any kind.
    ///
    /// A TenantNetwork's VNI is reserved before this returns, unless this is a dry run or a network of the
    /// same key exists already (its creation will fail, and a reservation would leak).
    pub async fn create_network(&self, mut net: Network) -> Result<Admitted<Network>> {
        apply_network_defaults(&mut net, None);
        validate_network(&net, &Operation::Create)?;
        if net.kind != NetworkKind::TenantNetwork {
            return Ok(Admitted::new(net));
        }
        // A name the API server generates (`generateName`) is not known yet, and cannot exist.
        let exists = !net.metadata.name.is_empty() && self.store.get(&ObjectKey::Network(net.key())).await?.is_some();
        let net = self.reserve(&net, self.dry_run || exists).await?;
        Ok(Admitted::new(net))
    }

    /// Admits a change to a stored network (`old`).
    pub async fn update_network(&self, old: &Network, mut new: Network) -> Result<Admitted<Network>> {
        let tenant = new.kind == NetworkKind::TenantNetwork;
        if tenant {
            keep_physical_attributes(&mut new, old);
        }
        apply_network_defaults(&mut new, Some(old));
        let users = self.store.list(&Query::Endpoints(EndpointQuery::network(old.key()))).await?;
        validate_network(&new, &Operation::Update { old, in_use: !users.is_empty() })?;
        if tenant {
            let configs = self.tenant_configs().await?;
            if let Some(i) = select_tenant_config(namespace_of(&new), configs.iter().map(|v| &v.value)) {
                override_network_id(&mut new, &configs[i].value);
            }
            validate_tenant_network_mutated(&new)?;
        }
        Ok(Admitted::new(new))
    }

    /// Admits the deletion of a stored network: refused while DanmEps use it (rule D1); a TenantNetwork's
    /// VNI is released (rule D2) unless this is a dry run.
    pub async fn delete_network(&self, net: &Network) -> Result<Admitted<()>> {
        let users = self.store.list(&Query::Endpoints(EndpointQuery::network(net.key()))).await?;
        validate_network_delete(net, users.len())?;
        let mut admitted = Admitted::new(());
        if net.kind == NetworkKind::TenantNetwork && !self.dry_run {
            admitted.warnings = self.release_tenant_vni(net).await?;
        }
        Ok(admitted)
    }

    /// Releases a TenantNetwork's VNI in its TenantConfig (a no-op for a network without one). A missing
    /// TenantConfig or profile, or an unreadable bitmask, does not fail: it is returned as a warning, so
    /// that a broken TenantConfig never keeps a network from being deleted.
    pub async fn release_tenant_vni(&self, net: &Network) -> Result<Vec<String>> {
        for attempt in 0..=self.policy.max_conflicts {
            let configs = self.tenant_configs().await?;
            let Some(i) = select_tenant_config(namespace_of(net), configs.iter().map(|v| &v.value)) else {
                if net.spec.options.vlan.is_some() || net.spec.options.vxlan.is_some() {
                    return Ok(vec![format!("no TenantConfig exists: the VNI of {} was not released", net.key())]);
                }
                return Ok(Vec::new());
            };
            let Versioned { version, value: mut tc } = configs[i].clone();
            let outcome = match release_vni(&mut tc, net) {
                Ok(o) => o,
                Err(e) => return Ok(vec![format!("the VNI of {} was not released: {e}", net.key())]),
            };
            match outcome {
                VniRelease::NotReserved | VniRelease::AlreadyFree => return Ok(Vec::new()),
                VniRelease::NoProfile => {
                    return Ok(vec![format!(
                        "TenantConfig {} has no profile for the interface and VNI type of {}: its VNI was not \
                         released",
                        tc.metadata.name,
                        net.key()
                    )]);
                }
                VniRelease::Released { .. } => {}
            }
            match self.store.update(&Object::TenantConfig(tc), &version).await {
                Ok(_) => return Ok(Vec::new()),
                Err(e) if e.is_conflict() => self.sleeper.sleep(self.policy.delay(attempt)).await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AdmissionError::Contention { key: "TenantConfig".into() })
    }

    /// Admits a TenantConfig for create (`old` is `None`) or update; see [`admit_tenant_config`].
    pub fn tenant_config(&self, new: TenantConfig, old: Option<&TenantConfig>) -> Result<Admitted<TenantConfig>> {
        Ok(Admitted::new(admit_tenant_config(new, old)?))
    }

    /// Admits a new pod of `namespace` with these annotations: its interfaces annotation must parse, and
    /// each request must suit the network it names when that network exists. A network that does not
    /// exist (yet) is a warning: the CNI reports it when the pod starts.
    pub async fn create_pod(&self, namespace: &str, annotations: &BTreeMap<String, String>) -> Result<Admitted<()>> {
        let mut admitted = Admitted::new(());
        let Some(requests) = parse_pod_interfaces(annotations)? else { return Ok(admitted) };
        let key = if annotations.contains_key(INTERFACES_ANNOTATION) {
            INTERFACES_ANNOTATION
        } else {
            INTERFACES_ANNOTATION_ALT
        };
        let mut errs = ValidationErrors::default();
        for (i, request) in requests.iter().enumerate() {
            let element = format!("{key}[{i}]");
            let net_key = request.network.key(namespace);
            match self.store.get_as::<Network>(&ObjectKey::Network(net_key.clone())).await? {
                Some(net) => check_request_against_network(namespace, &element, request, &net.value, &mut errs),
                None => admitted.warnings.push(format!("{element}: {net_key} does not exist")),
            }
        }
        errs.into_result()?;
        Ok(admitted)
    }

    async fn tenant_configs(&self) -> Result<Vec<Versioned<TenantConfig>>> {
        Ok(self.store.list_as::<TenantConfig>(&Query::TenantConfigs).await?)
    }

    /// Plans a new TenantNetwork from the current TenantConfig and, unless `dry_run`, reserves its VNI
    /// with a compare-and-swap write of the TenantConfig, planning again after a lost race.
    async fn reserve(&self, net: &Network, dry_run: bool) -> Result<Network> {
        for attempt in 0..=self.policy.max_conflicts {
            let mut configs = self.tenant_configs().await?;
            let chosen = select_tenant_config(namespace_of(net), configs.iter().map(|v| &v.value));
            if let Some(i) = chosen {
                // The IDs existing networks hold are taken, whatever the bitmask says (see `mark_in_use`).
                let all = Query::Networks { kind: None, namespace: None };
                let networks = self.store.list_as::<Network>(&all).await?;
                mark_in_use(&mut configs[i].value, networks.iter().map(|v| &v.value));
            }
            let plan = plan_tenant_network(net, chosen.map(|i| &configs[i].value))?;
            validate_tenant_network_mutated(&plan.network)?;
            let (Some(reservation), Some(i), false) = (&plan.reservation, chosen, dry_run) else {
                return Ok(plan.network);
            };
            let Versioned { version, value: mut tc } = configs[i].clone();
            apply_reservation(&mut tc, reservation)?;
            match self.store.update(&Object::TenantConfig(tc), &version).await {
                Ok(_) => return Ok(plan.network),
                Err(e) if e.is_conflict() => self.sleeper.sleep(self.policy.delay(attempt)).await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AdmissionError::Contention { key: "TenantConfig".into() })
    }
}

fn namespace_of(net: &Network) -> &str {
    net.metadata.namespace.as_deref().unwrap_or_default()
}

/// A TenantNetwork update that leaves out `host_device`, `device_pool`, `vlan` or `vxlan` keeps the
/// stored value: those fields belong to the TenantConfig, and a client that sends back what it applied
/// does not know them. Changing them to another value is still refused (rules T3–T6).
fn keep_physical_attributes(new: &mut Network, old: &Network) {
    let (n, o) = (&mut new.spec.options, &old.spec.options);
    if n.host_device.is_empty() {
        n.host_device.clone_from(&o.host_device);
    }
    if n.device_pool.is_empty() {
        n.device_pool.clone_from(&o.device_pool);
    }
    if n.vlan.is_none() {
        n.vlan = o.vlan;
    }
    if n.vxlan.is_none() {
        n.vxlan = o.vxlan;
    }
}

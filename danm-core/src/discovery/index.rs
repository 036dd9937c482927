//! An index of Services, DanmEps and pods that follows changes one at a time and says which Services each
//! change touches.
//!
//! Services and DanmEps are kept in buckets by namespace and network. A change to a DanmEp looks only at
//! the Services of its own bucket; a change to a pod only at the buckets of its own DanmEps; a Service's
//! publication is computed from the DanmEps of its own networks in its namespace. So the work per change
//! is proportional to what the change touches, never to the number of objects in the cluster.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use super::{ServiceEndpoints, owner, publish, selects};
use crate::model::{DanmEp, NetworkKind, PodRecord};
use crate::pod::NetworkRef;
use crate::service::{ServiceAnnotationError, ServiceRecord, ServiceSelection};

/// A Service's namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ServiceKey {
    /// The namespace.
    pub namespace: String,
    /// The name.
    pub name: String,
}

impl ServiceKey {
    /// The key of `namespace/name`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self { namespace: namespace.into(), name: name.into() }
    }
}

impl std::fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// What a Service should publish now.
#[derive(Debug, Clone, PartialEq)]
pub enum Publication {
    /// The Service is not known (deleted): whatever was published for it goes.
    Gone,
    /// The Service is not a DANM Service (it has a `spec.selector`, or no DANM selection annotations):
    /// DANM publishes nothing for it.
    NotDanm,
    /// The Service's DANM annotations are malformed: nothing is published until they are fixed.
    Invalid(ServiceAnnotationError),
    /// The addresses the Service publishes.
    Endpoints(ServiceEndpoints),
}

/// A namespace and a network: the bucket Services and DanmEps are kept in.
type BucketKey = (String, NetworkRef);
/// A namespace and a name.
type ObjectKey = (String, String);

#[derive(Debug, Default)]
struct Bucket {
    services: BTreeSet<String>,
    endpoints: BTreeSet<String>,
}

impl Bucket {
    fn is_empty(&self) -> bool {
        self.services.is_empty() && self.endpoints.is_empty()
    }
}

#[derive(Debug)]
struct IndexedService {
    record: ServiceRecord,
    /// The DANM selection; `Err` for malformed annotations, `Ok(None)` for a Service DANM leaves alone.
    selection: Result<Option<ServiceSelection>, ServiceAnnotationError>,
}

impl IndexedService {
    fn selection(&self) -> Option<&ServiceSelection> {
        self.selection.as_ref().ok().and_then(Option::as_ref)
    }
}

/// Services, DanmEps and pods, indexed to answer which Services a change touches (see the module docs).
///
/// Every `apply_*` and `delete_*` returns the Services whose publication may have changed: the caller
/// recomputes those with [`ServiceIndex::publication`] and nothing else. Applying an object again
/// unchanged touches nothing.
#[derive(Debug, Default)]
pub struct ServiceIndex {
    services: HashMap<ObjectKey, IndexedService>,
    endpoints: HashMap<ObjectKey, DanmEp>,
    pods: HashMap<ObjectKey, PodRecord>,
    buckets: HashMap<BucketKey, Bucket>,
    /// The DanmEps of each pod, by the pod's namespace and name.
    by_pod: HashMap<ObjectKey, BTreeSet<String>>,
}

fn namespace_of(meta: &crate::model::ObjectMeta) -> String {
    meta.namespace.clone().unwrap_or_default()
}

fn bucket_of(ep: &DanmEp) -> BucketKey {
    let kind = ep.spec.network_kind().unwrap_or(NetworkKind::DanmNet);
    (namespace_of(&ep.metadata), NetworkRef::new(kind, ep.spec.network_name.clone()))
}

/// Whether two records of one pod differ in what Service discovery reads.
fn pod_differs(a: &PodRecord, b: &PodRecord) -> bool {
    a.ready != b.ready
        || a.node_name != b.node_name
        || a.hostname != b.hostname
        || a.metadata.uid != b.metadata.uid
        || a.metadata.labels != b.metadata.labels
        || a.container_ports != b.container_ports
}

impl ServiceIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many Services, DanmEps and pods the index holds.
    pub fn len(&self) -> (usize, usize, usize) {
        (self.services.len(), self.endpoints.len(), self.pods.len())
    }

    /// Whether the index holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0, 0)
    }

    /// The keys of every Service held.
    pub fn service_keys(&self) -> impl Iterator<Item = ServiceKey> + '_ {
        self.services.keys().map(|(ns, name)| ServiceKey::new(ns.clone(), name.clone()))
    }

    /// The namespace and name of every DanmEp held.
    pub fn endpoint_keys(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.endpoints.keys().map(|(ns, name)| (ns.as_str(), name.as_str()))
    }

    /// The namespace and name of every pod held.
    pub fn pod_keys(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.pods.keys().map(|(ns, name)| (ns.as_str(), name.as_str()))
    }

    /// The Service `key` as last applied.
    pub fn service(&self, key: &ServiceKey) -> Option<&ServiceRecord> {
        self.services.get(&(key.namespace.clone(), key.name.clone())).map(|s| &s.record)
    }

    fn pod(&self, namespace: &str, name: &str) -> Option<&PodRecord> {
        self.pods.get(&(namespace.to_owned(), name.to_owned()))
    }

    /// The Services of `ep`'s bucket that select it, with its owner as the index knows it now.
    fn selecting(&self, ep: &DanmEp, into: &mut BTreeSet<ServiceKey>) {
        let key = bucket_of(ep);
        let Some(bucket) = self.buckets.get(&key) else { return };
        let namespace = key.0;
        let owner = owner(ep, &|ns: &str, name: &str| self.pod(ns, name));
        for name in &bucket.services {
            let selected = self
                .services
                .get(&(namespace.clone(), name.clone()))
                .and_then(IndexedService::selection)
                .is_some_and(|selection| selects(selection, &namespace, ep, owner));
            if selected {
                into.insert(ServiceKey::new(namespace.clone(), name.clone()));
            }
        }
    }

    fn unbucket_service(&mut self, namespace: &str, name: &str) {
        let Some(old) = self.services.get(&(namespace.to_owned(), name.to_owned())) else { return };
        let networks: Vec<NetworkRef> = old.selection().map(|s| s.networks.clone()).unwrap_or_default();
        for network in networks {
            let key = (namespace.to_owned(), network);
            if let Some(bucket) = self.buckets.get_mut(&key) {
                bucket.services.remove(name);
                if bucket.is_empty() {
                    self.buckets.remove(&key);
                }
            }
        }
    }

    /// Adds or replaces a Service. Touches that Service.
    pub fn apply_service(&mut self, service: ServiceRecord) -> BTreeSet<ServiceKey> {
        let namespace = namespace_of(&service.metadata);
        let name = service.metadata.name.clone();
        if let Some(old) = self.services.get(&(namespace.clone(), name.clone()))
            && old.record == service
        {
            return BTreeSet::new();
        }
        self.unbucket_service(&namespace, &name);
        let selection = if service.has_selector() { Ok(None) } else { service.danm_selection() };
        if let Ok(Some(selection)) = &selection {
            for network in &selection.networks {
                let bucket = self.buckets.entry((namespace.clone(), network.clone())).or_default();
                bucket.services.insert(name.clone());
            }
        }
        self.services.insert((namespace.clone(), name.clone()), IndexedService { record: service, selection });
        BTreeSet::from([ServiceKey::new(namespace, name)])
    }

    /// Removes a Service. Touches that Service when it was held.
    pub fn delete_service(&mut self, namespace: &str, name: &str) -> BTreeSet<ServiceKey> {
        self.unbucket_service(namespace, name);
        match self.services.remove(&(namespace.to_owned(), name.to_owned())) {
            Some(_) => BTreeSet::from([ServiceKey::new(namespace, name)]),
            None => BTreeSet::new(),
        }
    }

    fn remove_endpoint(&mut self, namespace: &str, name: &str, touched: &mut BTreeSet<ServiceKey>) {
        let Some(old) = self.endpoints.remove(&(namespace.to_owned(), name.to_owned())) else { return };
        self.selecting(&old, touched);
        let key = bucket_of(&old);
        if let Some(bucket) = self.buckets.get_mut(&key) {
            bucket.endpoints.remove(name);
            if bucket.is_empty() {
                self.buckets.remove(&key);
            }
        }
        let pod_key = (namespace.to_owned(), old.spec.pod.clone());
        if let Some(eps) = self.by_pod.get_mut(&pod_key) {
            eps.remove(name);
            if eps.is_empty() {
                self.by_pod.remove(&pod_key);
            }
        }
    }

    /// Adds or replaces a DanmEp. Touches the Services that selected it before and those that select
    /// it now.
    pub fn apply_endpoint(&mut self, ep: DanmEp) -> BTreeSet<ServiceKey> {
        let namespace = namespace_of(&ep.metadata);
        let name = ep.metadata.name.clone();
        let key = (namespace.clone(), name.clone());
        if self.endpoints.get(&key).is_some_and(|old| old.spec == ep.spec && old.metadata.labels == ep.metadata.labels)
        {
            return BTreeSet::new();
        }
        let mut touched = BTreeSet::new();
        self.remove_endpoint(&namespace, &name, &mut touched);
        self.selecting(&ep, &mut touched);
        self.buckets.entry(bucket_of(&ep)).or_default().endpoints.insert(name.clone());
        self.by_pod.entry((namespace, ep.spec.pod.clone())).or_default().insert(name);
        self.endpoints.insert(key, ep);
        touched
    }

    /// Removes a DanmEp (its pod's CNI DEL, or the cleaner). Touches the Services that selected it.
    pub fn delete_endpoint(&mut self, namespace: &str, name: &str) -> BTreeSet<ServiceKey> {
        let mut touched = BTreeSet::new();
        self.remove_endpoint(namespace, name, &mut touched);
        touched
    }

    /// The Services selecting any DanmEp of the pod `namespace/name` as the index stands.
    fn selecting_pod(&self, namespace: &str, name: &str, into: &mut BTreeSet<ServiceKey>) {
        let Some(eps) = self.by_pod.get(&(namespace.to_owned(), name.to_owned())) else { return };
        for ep in eps {
            if let Some(ep) = self.endpoints.get(&(namespace.to_owned(), ep.clone())) {
                self.selecting(ep, into);
            }
        }
    }

    /// Adds or replaces a pod. Touches the Services selecting its interfaces before or after, when its
    /// labels, readiness, node, hostname, UID or container ports changed.
    pub fn apply_pod(&mut self, pod: PodRecord) -> BTreeSet<ServiceKey> {
        let namespace = namespace_of(&pod.metadata);
        let name = pod.metadata.name.clone();
        let key = (namespace.clone(), name.clone());
        let mut touched = BTreeSet::new();
        match self.pods.get(&key) {
            Some(old) if !pod_differs(old, &pod) => {
                self.pods.insert(key, pod);
                return touched;
            }
            _ => self.selecting_pod(&namespace, &name, &mut touched),
        }
        self.pods.insert(key, pod);
        self.selecting_pod(&namespace, &name, &mut touched);
        touched
    }

    /// Removes a pod. Touches the Services selecting its interfaces (which become not ready, or
    /// unselected when the pod's labels had changed since its DanmEps were written).
    pub fn delete_pod(&mut self, namespace: &str, name: &str) -> BTreeSet<ServiceKey> {
        let mut touched = BTreeSet::new();
        if !self.pods.contains_key(&(namespace.to_owned(), name.to_owned())) {
            return touched;
        }
        self.selecting_pod(namespace, name, &mut touched);
        self.pods.remove(&(namespace.to_owned(), name.to_owned()));
        self.selecting_pod(namespace, name, &mut touched);
        touched
    }

    /// What the Service `key` publishes now, from the DanmEps of its networks in its namespace.
    pub fn publication(&self, key: &ServiceKey) -> Publication {
        let Some(service) = self.services.get(&(key.namespace.clone(), key.name.clone())) else {
            return Publication::Gone;
        };
        let selection = match &service.selection {
            Err(e) => return Publication::Invalid(e.clone()),
            Ok(None) => return Publication::NotDanm,
            Ok(Some(selection)) => selection,
        };
        let endpoints = selection
            .networks
            .iter()
            .filter_map(|network| self.buckets.get(&(key.namespace.clone(), network.clone())))
            .flat_map(|bucket| bucket.endpoints.iter())
            .filter_map(|name| self.endpoints.get(&(key.namespace.clone(), name.clone())));
        Publication::Endpoints(publish(&service.record, selection, endpoints, |ns, name| self.pod(ns, name)))
    }
}

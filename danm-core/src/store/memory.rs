//! The in-memory Datastore: real compare-and-swap semantics in a process, for embedders and tests.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Datastore, EndpointQuery, Object, ObjectKey, Query, Result, StoreError, Version, Versioned};
use crate::ipam::BlockKey;
use crate::model::{DanmEp, NetworkKey, NetworkKind};

/// A Datastore held in process memory.
///
/// It keeps the same contract as the persistent backends: versions increase with every write (one counter
/// for the whole store, like an etcd revision), a stale write gets [`StoreError::Conflict`], and DanmEps
/// are found through indexes on pod UID, container ID and network rather than by scanning. Cloning the
/// data out on every read keeps callers from sharing mutable state.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    revision: u64,
    objects: BTreeMap<ObjectKey, (u64, Object)>,
    endpoint_index: HashMap<IndexKey, BTreeSet<ObjectKey>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum IndexKey {
    PodUid(String),
    Container(String),
    Network(NetworkKind, String),
}

fn index_keys(ep: &DanmEp) -> Vec<IndexKey> {
    let mut keys = Vec::with_capacity(3);
    if !ep.spec.pod_uid.is_empty() {
        keys.push(IndexKey::PodUid(ep.spec.pod_uid.clone()));
    }
    if !ep.spec.cid.is_empty() {
        keys.push(IndexKey::Container(ep.spec.cid.clone()));
    }
    if let Some(kind) = ep.spec.network_kind() {
        keys.push(IndexKey::Network(kind, ep.spec.network_name.clone()));
    }
    keys
}

impl State {
    fn lock_err() -> StoreError {
        StoreError::Backend("the in-memory store's lock was poisoned by a panicking thread".into())
    }

    fn index(&mut self, key: &ObjectKey, object: &Object, add: bool) {
        let Object::Endpoint(ep) = object else { return };
        for ik in index_keys(ep) {
            let set = self.endpoint_index.entry(ik.clone()).or_default();
            if add {
                set.insert(key.clone());
            } else {
                set.remove(key);
                if set.is_empty() {
                    self.endpoint_index.remove(&ik);
                }
            }
        }
    }

    fn put(&mut self, key: ObjectKey, object: Object) -> Version {
        self.revision += 1;
        if let Some((_, old)) = self.objects.remove(&key) {
            self.index(&key, &old, false);
        }
        self.index(&key, &object, true);
        self.objects.insert(key, (self.revision, object));
        Version::from(self.revision)
    }

    fn check(&self, key: &ObjectKey, expected: Option<&Version>) -> Result<()> {
        match self.objects.get(key) {
            None => Err(StoreError::NotFound { key: key.to_string() }),
            Some((v, _)) if expected.is_some_and(|e| e.as_str() != v.to_string()) => {
                Err(StoreError::Conflict { key: key.to_string() })
            }
            Some(_) => Ok(()),
        }
    }

    fn range(&self, from: ObjectKey, keep: impl Fn(&ObjectKey) -> Option<bool>) -> Vec<Versioned<Object>> {
        // `keep` answers Some(true) to take, Some(false) to skip, None to stop.
        let mut out = Vec::new();
        for (k, (v, o)) in self.objects.range((Bound::Included(from), Bound::Unbounded)) {
            match keep(k) {
                None => break,
                Some(true) => out.push(Versioned { version: Version::from(*v), value: o.clone() }),
                Some(false) => {}
            }
        }
        out
    }

    /// The objects of one namespaced kind (made by `key`), in `namespace` or in all.
    fn in_namespace(
        &self,
        namespace: Option<&str>,
        key: impl Fn(String, String) -> ObjectKey,
    ) -> Vec<Versioned<Object>> {
        let from = key(namespace.unwrap_or_default().to_owned(), String::new());
        let same_kind = |k: &ObjectKey| std::mem::discriminant(k) == std::mem::discriminant(&from);
        let in_ns = |k: &ObjectKey| match k {
            ObjectKey::Pod { namespace: ns, .. } | ObjectKey::Service { namespace: ns, .. } => Some(ns.clone()),
            _ => None,
        };
        self.range(from.clone(), |k| {
            if !same_kind(k) {
                return None;
            }
            match namespace {
                Some(want) if in_ns(k).as_deref() != Some(want) => None,
                _ => Some(true),
            }
        })
    }

    fn endpoints(&self, q: &EndpointQuery) -> Vec<Versioned<Object>> {
        let index = q
            .container_id
            .clone()
            .map(IndexKey::Container)
            .or_else(|| q.pod_uid.clone().map(IndexKey::PodUid))
            .or_else(|| q.network.as_ref().map(|n| IndexKey::Network(n.kind, n.name.clone())));
        let matches = |o: &Object| matches!(o, Object::Endpoint(ep) if q.matches(ep));
        match index {
            Some(ik) => self
                .endpoint_index
                .get(&ik)
                .into_iter()
                .flatten()
                .filter_map(|k| self.objects.get(k))
                .filter(|(_, o)| matches(o))
                .map(|(v, o)| Versioned { version: Version::from(*v), value: o.clone() })
                .collect(),
            None => {
                let from =
                    ObjectKey::Endpoint { namespace: q.namespace.clone().unwrap_or_default(), name: String::new() };
                self.range(from, |k| match k {
                    ObjectKey::Endpoint { namespace, .. } => match &q.namespace {
                        Some(ns) if ns != namespace => None,
                        _ => Some(true),
                    },
                    _ => None,
                })
                .into_iter()
                .filter(|v| matches(&v.value))
                .collect()
            }
        }
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many objects the store holds.
    pub fn len(&self) -> usize {
        self.state.lock().map(|s| s.objects.len()).unwrap_or_default()
    }

    /// Whether the store holds no object.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl Datastore for MemoryStore {
    async fn get(&self, key: &ObjectKey) -> Result<Option<Versioned<Object>>> {
        let state = self.state.lock().map_err(|_| State::lock_err())?;
        Ok(state.objects.get(key).map(|(v, o)| Versioned { version: Version::from(*v), value: o.clone() }))
    }

    async fn list(&self, query: &Query) -> Result<Vec<Versioned<Object>>> {
        let state = self.state.lock().map_err(|_| State::lock_err())?;
        Ok(match query {
            Query::Networks { kind, namespace } => {
                let first =
                    NetworkKey { kind: kind.unwrap_or(NetworkKind::DanmNet), namespace: None, name: String::new() };
                state.range(ObjectKey::Network(first), |k| match k {
                    ObjectKey::Network(n) => {
                        if kind.is_some_and(|want| want != n.kind) {
                            return if kind.is_some_and(|want| want < n.kind) { None } else { Some(false) };
                        }
                        Some(namespace.is_none() || n.namespace.is_none() || n.namespace == *namespace)
                    }
                    _ => None,
                })
            }
            Query::TenantConfigs => state.range(ObjectKey::TenantConfig(String::new()), |k| {
                matches!(k, ObjectKey::TenantConfig(_)).then_some(true)
            }),
            Query::Endpoints(q) => state.endpoints(q),
            Query::Pods { namespace } => {
                state.in_namespace(namespace.as_deref(), |namespace, name| ObjectKey::Pod { namespace, name })
            }
            Query::Services { namespace } => {
                state.in_namespace(namespace.as_deref(), |namespace, name| ObjectKey::Service { namespace, name })
            }
            Query::Blocks(pool) => {
                let from = ObjectKey::Block(BlockKey { pool: pool.clone(), index: 0 });
                state.range(from, |k| match k {
                    ObjectKey::Block(b) if b.pool == *pool => Some(true),
                    _ => None,
                })
            }
        })
    }

    async fn create(&self, object: &Object) -> Result<Version> {
        let key = object.key();
        let mut state = self.state.lock().map_err(|_| State::lock_err())?;
        if state.objects.contains_key(&key) {
            return Err(StoreError::Conflict { key: key.to_string() });
        }
        Ok(state.put(key, object.clone()))
    }

    async fn update(&self, object: &Object, expected: &Version) -> Result<Version> {
        let key = object.key();
        let mut state = self.state.lock().map_err(|_| State::lock_err())?;
        state.check(&key, Some(expected))?;
        Ok(state.put(key, object.clone()))
    }

    async fn delete(&self, key: &ObjectKey, expected: Option<&Version>) -> Result<()> {
        let mut state = self.state.lock().map_err(|_| State::lock_err())?;
        state.check(key, expected)?;
        if let Some((_, old)) = state.objects.remove(key) {
            state.revision += 1;
            state.index(key, &old, false);
        }
        Ok(())
    }
}

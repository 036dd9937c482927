//! The stored objects, the resourceVersion counter, the bounded event history and the open watches.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::error::ApiError;
use super::fault::{Fault, RequestRecord};
use super::resource::{ResourceType, builtin};

/// The state behind every handle and client of one fake server.
pub(crate) type Shared = Arc<Mutex<State>>;

/// Locks the state; a panic in another test thread does not poison it for the rest.
pub(crate) fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// (group, version, plural): where objects of one kind are kept.
type KindKey = (String, String, String);

fn kind_key(rt: &ResourceType) -> KindKey {
    (rt.group().to_owned(), rt.version().to_owned(), rt.plural().to_owned())
}

/// What a change did to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    /// The object was created.
    Added,
    /// The object was changed.
    Modified,
    /// The object was removed.
    Deleted,
}

/// One committed change, kept in the history and sent to the open watches of its kind.
#[derive(Debug)]
pub(crate) struct Change {
    /// The resourceVersion the change was committed at.
    pub(crate) rv: u64,
    kind_key: KindKey,
    /// What happened.
    pub(crate) kind: ChangeKind,
    /// The object after the change (for a deletion, its last state).
    pub(crate) object: Value,
    /// The object before the change, if it existed.
    pub(crate) old: Option<Value>,
}

struct Watcher {
    kind_key: KindKey,
    changes: UnboundedSender<Arc<Change>>,
    closed: Arc<AtomicBool>,
}

/// Everything the fake API server holds.
pub(crate) struct State {
    /// The registered kinds.
    pub(crate) kinds: Vec<ResourceType>,
    objects: BTreeMap<KindKey, BTreeMap<(String, String), Value>>,
    rv: u64,
    serial: u64,
    history: VecDeque<Arc<Change>>,
    history_limit: usize,
    oldest: u64,
    watchers: Vec<Watcher>,
    /// How often an idle watch that asked for bookmarks gets one.
    pub(crate) bookmark_interval: Option<Duration>,
    /// Faults still to be injected, in the order they were added.
    pub(crate) faults: Vec<Fault>,
    /// Every request received, oldest first.
    pub(crate) requests: Vec<RequestRecord>,
}

impl State {
    /// An empty store serving the built-in kinds.
    pub(crate) fn new(history_limit: usize, bookmark_interval: Option<Duration>) -> Self {
        Self {
            kinds: builtin(),
            objects: BTreeMap::new(),
            rv: 0,
            serial: 0,
            history: VecDeque::new(),
            history_limit,
            oldest: 0,
            watchers: Vec::new(),
            bookmark_interval,
            faults: Vec::new(),
            requests: Vec::new(),
        }
    }

    /// Adds `rt`, replacing a kind registered at the same group, version and plural.
    pub(crate) fn register(&mut self, rt: ResourceType) {
        self.kinds.retain(|k| !k.is_at(rt.group(), rt.version(), rt.plural()));
        self.kinds.push(rt);
    }

    /// The registered kind of objects with this `apiVersion` and `kind`.
    pub(crate) fn kind_for(&self, api_version: &str, kind: &str) -> Option<ResourceType> {
        self.kinds.iter().find(|rt| rt.is_for(api_version, kind)).cloned()
    }

    /// The latest resourceVersion committed.
    pub(crate) fn rv(&self) -> u64 {
        self.rv
    }

    /// Advances the global resourceVersion.
    pub(crate) fn bump(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    /// A fresh number for uids and generated names.
    pub(crate) fn serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    /// The stored object `namespace`/`name` of kind `rt` (namespace empty when cluster-scoped).
    pub(crate) fn get(&self, rt: &ResourceType, namespace: &str, name: &str) -> Option<&Value> {
        self.objects.get(&kind_key(rt))?.get(&(namespace.to_owned(), name.to_owned()))
    }

    /// Every stored object of kind `rt`, ordered by namespace and name.
    pub(crate) fn objects_of<'a>(&'a self, rt: &ResourceType) -> impl Iterator<Item = &'a Value> + use<'a> {
        self.objects.get(&kind_key(rt)).into_iter().flat_map(BTreeMap::values)
    }

    /// Stores (or, for `Deleted`, removes) `object`, keeps the change in the history and sends it to the
    /// open watches of its kind. The caller has already stamped `object` with the current resourceVersion.
    pub(crate) fn commit(&mut self, rt: &ResourceType, kind: ChangeKind, object: Value, old: Option<Value>) {
        let key = kind_key(rt);
        let text = |pointer: &str| object.pointer(pointer).and_then(Value::as_str).unwrap_or("").to_owned();
        let id = (text("/metadata/namespace"), text("/metadata/name"));
        let objects = self.objects.entry(key.clone()).or_default();
        match kind {
            ChangeKind::Deleted => objects.remove(&id),
            ChangeKind::Added | ChangeKind::Modified => objects.insert(id, object.clone()),
        };
        let change = Arc::new(Change { rv: self.rv, kind_key: key, kind, object, old });
        self.history.push_back(change.clone());
        while self.history.len() > self.history_limit {
            if let Some(evicted) = self.history.pop_front() {
                self.oldest = evicted.rv;
            }
        }
        self.watchers.retain(|w| w.kind_key != change.kind_key || w.changes.send(change.clone()).is_ok());
    }

    /// The kept changes to kind `rt` after resourceVersion `since`, or 410 when some are no longer kept.
    pub(crate) fn changes_since(&self, rt: &ResourceType, since: u64) -> Result<Vec<Arc<Change>>, ApiError> {
        if since < self.oldest {
            return Err(ApiError::expired(since, self.oldest));
        }
        let key = kind_key(rt);
        Ok(self.history.iter().filter(|c| c.rv > since && c.kind_key == key).cloned().collect())
    }

    /// Opens a watch on kind `rt`: every later change arrives on the receiver until the flag is raised.
    pub(crate) fn subscribe(&mut self, rt: &ResourceType) -> (UnboundedReceiver<Arc<Change>>, Arc<AtomicBool>) {
        let (changes, receiver) = unbounded_channel();
        let closed = Arc::new(AtomicBool::new(false));
        self.watchers.push(Watcher { kind_key: kind_key(rt), changes, closed: closed.clone() });
        (receiver, closed)
    }

    /// The number of watches whose client still reads them.
    pub(crate) fn open_watches(&mut self) -> usize {
        self.watchers.retain(|w| !w.changes.is_closed());
        self.watchers.len()
    }

    /// Forgets the history, as an etcd compaction does, and ends every open watch at once (changes not yet
    /// read are not delivered), so a client resuming from an older resourceVersion gets 410.
    pub(crate) fn compact(&mut self) {
        self.history.clear();
        self.oldest = self.rv;
        for watcher in self.watchers.drain(..) {
            watcher.closed.store(true, Ordering::SeqCst);
        }
    }

    /// Takes one use of the first fault matching the request, if any.
    pub(crate) fn take_fault(&mut self, method: &str, path: &str) -> Option<ApiError> {
        let index = self.faults.iter().position(|f| f.matches(method, path))?;
        let error = self.faults[index].use_once();
        if self.faults[index].is_spent() {
            self.faults.remove(index);
        }
        Some(error)
    }
}

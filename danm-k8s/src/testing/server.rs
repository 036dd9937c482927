//! The handle tests hold: builds clients, registers kinds, seeds and inspects objects, injects faults.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::core::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::fault::{Fault, RequestRecord};
use super::resource::ResourceType;
use super::service::FakeService;
use super::state::{Shared, State, lock};

/// An in-process Kubernetes API server: a cheaply clonable handle to one shared state, served to any
/// number of real [`kube::Client`]s. See the [module docs](super) for what it implements.
#[derive(Clone)]
pub struct FakeApiServer {
    shared: Shared,
}

impl fmt::Debug for FakeApiServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.shared);
        f.debug_struct("FakeApiServer")
            .field("resource_version", &state.rv())
            .field("kinds", &state.kinds.len())
            .finish()
    }
}

impl Default for FakeApiServer {
    fn default() -> Self {
        Self::builder().build()
    }
}

impl FakeApiServer {
    /// A server with the built-in kinds, a history of 1000 changes and bookmarks every second.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder to change the history length, the bookmark interval or the kinds served.
    pub fn builder() -> FakeApiServerBuilder {
        FakeApiServerBuilder { history_limit: 1000, bookmark_interval: Some(Duration::from_secs(1)), kinds: Vec::new() }
    }

    /// A server that also knows every DANM kind of [`crate::crd`] (the network kinds with a status
    /// subresource): what the Kubernetes datastore and the controllers need.
    pub fn with_danm_kinds() -> Self {
        use crate::crd;
        Self::builder()
            .register(ResourceType::of::<crd::DanmNet>().with_status_subresource())
            .register(ResourceType::of::<crd::TenantNetwork>().with_status_subresource())
            .register(ResourceType::of::<crd::ClusterNetwork>().with_status_subresource())
            .register(ResourceType::of::<crd::TenantConfig>())
            .register(ResourceType::of::<crd::DanmEp>())
            .register(ResourceType::of::<crd::DanmIpamBlock>())
            .register(ResourceType::of::<crd::DanmIpamCursor>())
            .build()
    }

    /// A [`kube::Client`] whose requests this server answers, with default namespace `default`.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime, as [`kube::Client::new`] does.
    pub fn client(&self) -> kube::Client {
        kube::Client::new(FakeService(self.shared.clone()), "default")
    }

    /// Serves this server's API over plain HTTP on `127.0.0.1`, at a free port, for what needs a real
    /// address (a binary given a kubeconfig; see [`FakeApiServer::kubeconfig`]). The connections are served
    /// on the current Tokio runtime, as long as it runs.
    ///
    /// # Errors
    ///
    /// When no port can be bound.
    pub async fn serve_http(&self) -> std::io::Result<std::net::SocketAddr> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let service = FakeService(self.shared.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let service = service.clone();
                tokio::spawn(async move {
                    let handler = hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                        let mut service = service.clone();
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = http_body_util::BodyExt::collect(body).await.map(|b| b.to_bytes());
                            let request =
                                http::Request::from_parts(parts, kube::client::Body::from(body.unwrap_or_default()));
                            tower::Service::call(&mut service, request).await
                        }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    // A client that goes away mid-request ends only its own connection.
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, handler).await;
                });
            }
        });
        Ok(address)
    }

    /// A kubeconfig document for a server at `address` (from [`FakeApiServer::serve_http`]), with a token
    /// user (the fake accepts any) and `default` as the namespace.
    pub fn kubeconfig(address: std::net::SocketAddr) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: fake, cluster: {{server: \"http://{address}\"}}}}]\n\
             users: [{{name: test, user: {{token: test}}}}]\n\
             contexts: [{{name: fake, context: {{cluster: fake, user: test, namespace: default}}}}]\n\
             current-context: fake\n"
        )
    }

    /// Serves `kind` from now on (a CRD being installed), replacing any kind at the same group, version
    /// and plural.
    pub fn register(&self, kind: ResourceType) {
        lock(&self.shared).register(kind);
    }

    /// Stores `object` directly, as if created (or, when it exists, replaced) through the API but without
    /// preconditions and keeping its `.status`; watches see the change. A namespaced object without a
    /// namespace goes to `default`. Returns the object as stored.
    ///
    /// # Panics
    ///
    /// When `object` does not serialize to an object whose `apiVersion` and `kind` name a registered kind,
    /// or when it is invalid (no name nor generateName).
    pub fn seed<T: Serialize>(&self, object: &T) -> Value {
        let object = serde_json::to_value(object).expect("seeded objects serialize to JSON");
        let text = |field: &str| object[field].as_str().unwrap_or("").to_owned();
        let (api_version, kind) = (text("apiVersion"), text("kind"));
        let mut state = lock(&self.shared);
        let rt =
            state.kind_for(&api_version, &kind).unwrap_or_else(|| panic!("{api_version}/{kind} is not registered"));
        state.upsert(&rt, object).unwrap_or_else(|e| panic!("cannot seed {api_version}/{kind}: {}", e.message))
    }

    /// The stored object of kind `K` named `name` in `namespace` (empty for cluster-scoped kinds).
    ///
    /// # Panics
    ///
    /// When the stored JSON does not deserialize as `K`.
    pub fn object<K>(&self, namespace: &str, name: &str) -> Option<K>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned,
        K::Scope: 'static,
    {
        let json = lock(&self.shared).get(&ResourceType::of::<K>(), namespace, name).cloned()?;
        Some(serde_json::from_value(json).expect("stored objects deserialize as their kind"))
    }

    /// Every stored object of kind `K`, ordered by namespace and name.
    ///
    /// # Panics
    ///
    /// When a stored object does not deserialize as `K`.
    pub fn objects<K>(&self) -> Vec<K>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned,
        K::Scope: 'static,
    {
        let state = lock(&self.shared);
        let stored = state.objects_of(&ResourceType::of::<K>());
        stored.map(|o| serde_json::from_value(o.clone()).expect("stored objects deserialize as their kind")).collect()
    }

    /// The stored JSON of the object with this `apiVersion` and `kind` (empty namespace when cluster-scoped).
    pub fn object_json(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let state = lock(&self.shared);
        state.get(&state.kind_for(api_version, kind)?, namespace, name).cloned()
    }

    /// The stored JSON of every object with this `apiVersion` and `kind`, ordered by namespace and name.
    pub fn objects_json(&self, api_version: &str, kind: &str) -> Vec<Value> {
        let state = lock(&self.shared);
        state.kind_for(api_version, kind).map(|rt| state.objects_of(&rt).cloned().collect()).unwrap_or_default()
    }

    /// Removes an object at once, finalizers or not (watches see `DELETED`); returns its last state.
    pub fn remove(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let mut state = lock(&self.shared);
        let rt = state.kind_for(api_version, kind)?;
        let current = state.get(&rt, namespace, name).cloned()?;
        Some(state.remove_now(&rt, current))
    }

    /// The latest resourceVersion committed (one counter for all kinds, as etcd's revision).
    pub fn resource_version(&self) -> u64 {
        lock(&self.shared).rv()
    }

    /// Forgets the change history and ends every open watch without delivering what it has not read yet,
    /// so that a client resuming from an older resourceVersion gets `410 Gone` and must list again.
    pub fn compact(&self) {
        lock(&self.shared).compact();
    }

    /// How many watch streams are open (a test can wait for a watcher to be listening).
    pub fn open_watches(&self) -> usize {
        lock(&self.shared).open_watches()
    }

    /// Answers matching requests with the fault's error until it has been used up. Faults are tried in
    /// the order they were injected; each request uses at most one.
    pub fn inject(&self, fault: Fault) {
        lock(&self.shared).faults.push(fault);
    }

    /// The requests received so far, oldest first; the log is emptied.
    pub fn take_requests(&self) -> Vec<RequestRecord> {
        std::mem::take(&mut lock(&self.shared).requests)
    }
}

/// Configures a [`FakeApiServer`] before it serves.
#[derive(Clone, Debug)]
pub struct FakeApiServerBuilder {
    history_limit: usize,
    bookmark_interval: Option<Duration>,
    kinds: Vec<ResourceType>,
}

impl FakeApiServerBuilder {
    /// How many changes are kept for watches to resume from (default 1000); older resourceVersions get 410.
    #[must_use]
    pub fn history_limit(mut self, changes: usize) -> Self {
        self.history_limit = changes;
        self
    }

    /// How often a watch that allows bookmarks gets one (default one second); `None` sends only the one at
    /// the start of the watch.
    #[must_use]
    pub fn bookmark_interval(mut self, interval: Option<Duration>) -> Self {
        self.bookmark_interval = interval;
        self
    }

    /// Serves `kind` as well as the built-in kinds.
    #[must_use]
    pub fn register(mut self, kind: ResourceType) -> Self {
        self.kinds.push(kind);
        self
    }

    /// The server.
    pub fn build(self) -> FakeApiServer {
        let mut state = State::new(self.history_limit, self.bookmark_interval);
        for kind in self.kinds {
            state.register(kind);
        }
        FakeApiServer { shared: Arc::new(Mutex::new(state)) }
    }
}

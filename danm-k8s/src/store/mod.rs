//! The Kubernetes Datastore: danm-core's [`Datastore`] over the API server, one Kubernetes object per
//! stored object.
//!
//! - Networks, TenantConfigs and DanmEps are the `danm.k8s.io/v1` custom resources of [`crate::crd`]; pod
//!   records and Services are the core `v1` Pods and Services; IPAM blocks and cursors are
//!   `DanmIpamBlock` and `DanmIpamCursor` objects, one per block and per cursor, so an allocation never
//!   rewrites a network and nodes do not contend on one object.
//! - Compare-and-swap is Kubernetes' own: an update is a replace carrying the `resourceVersion` read, a
//!   delete carries it as a precondition, and the API server's 409 (by status code, never by message) is
//!   [`StoreError::Conflict`]; 404 is [`StoreError::NotFound`].
//! - Pods are the kubelet's: the store reads them, refuses to replace them, and sets an annotation (the
//!   `network-status` the CNI reports) with a merge patch of that annotation alone.
//! - DanmEps are looked up by label selector (pod UID, container ID, network, host), a pool's blocks by its
//!   labels: never by listing every object of the cluster.

mod convert;

use async_trait::async_trait;
use danm_core::model::NetworkKind;
use danm_core::store::{Datastore, EndpointQuery, Object, ObjectKey, Query, Result, StoreError, Version, Versioned};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, Preconditions};
use kube::discovery::ApiResource;

use crate::crd::ipam::names::pool_selector;
pub(crate) use convert::endpoint_from_crd;
use convert::{Kind, from_dynamic, to_dynamic};

/// A [`Datastore`] on a Kubernetes API server.
///
/// Pods belong to the kubelet: DANM only reads them, and this store refuses to create, replace or delete
/// a Pod ([`StoreError::Unsupported`]), since a pod record is not the whole Pod. Tests against a fake API
/// server may allow it with [`KubeStore::allowing_pod_writes`].
#[derive(Clone)]
pub struct KubeStore {
    client: kube::Client,
    pod_writes: bool,
}

impl std::fmt::Debug for KubeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeStore").finish_non_exhaustive()
    }
}

impl KubeStore {
    /// A store using `client`.
    pub fn new(client: kube::Client) -> Self {
        Self { client, pod_writes: false }
    }

    /// The same store, writing pods as the reduced documents a pod record makes: only for a test server.
    pub fn allowing_pod_writes(mut self) -> Self {
        self.pod_writes = true;
        self
    }

    fn check_write(&self, key: &ObjectKey) -> Result<()> {
        if matches!(key, ObjectKey::Pod { .. }) && !self.pod_writes {
            return Err(StoreError::Unsupported {
                operation: format!("writing {key} (pods are the kubelet's; DANM only reads them)"),
                backend: "Kubernetes",
            });
        }
        Ok(())
    }

    fn api(&self, resource: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, resource),
            None => Api::all_with(self.client.clone(), resource),
        }
    }

    async fn list_kind(&self, kind: Kind, namespace: Option<&str>, labels: &str) -> Result<Vec<Versioned<Object>>> {
        let resource = kind.resource();
        let namespace = namespace.filter(|_| kind.namespaced());
        let mut params = ListParams::default();
        if !labels.is_empty() {
            params = params.labels(labels);
        }
        let listed = self.api(&resource, namespace).list(&params).await.map_err(|e| api_error(&kind.to_string(), e))?;
        listed.items.into_iter().map(|o| from_dynamic(kind, o)).collect()
    }
}

/// Maps an API error to the store's errors by HTTP status code.
fn api_error(what: &str, e: kube::Error) -> StoreError {
    match &e {
        kube::Error::Api(status) if status.code == 409 => StoreError::Conflict { key: what.to_owned() },
        kube::Error::Api(status) if status.code == 404 => StoreError::NotFound { key: what.to_owned() },
        _ => StoreError::Backend(Box::new(e)),
    }
}

#[async_trait]
impl Datastore for KubeStore {
    async fn get(&self, key: &ObjectKey) -> Result<Option<Versioned<Object>>> {
        let (kind, namespace, name) = convert::locate(key);
        let api = self.api(&kind.resource(), namespace.as_deref());
        match api.get_opt(&name).await.map_err(|e| api_error(&key.to_string(), e))? {
            Some(o) => from_dynamic(kind, o).map(Some),
            None => Ok(None),
        }
    }

    async fn list(&self, query: &Query) -> Result<Vec<Versioned<Object>>> {
        let mut out = match query {
            Query::Networks { kind, namespace } => {
                let mut all = Vec::new();
                for k in kind.map(|k| vec![k]).unwrap_or_else(|| NetworkKind::ALL.to_vec()) {
                    all.extend(self.list_kind(Kind::Network(k), namespace.as_deref(), "").await?);
                }
                all
            }
            Query::TenantConfigs => self.list_kind(Kind::TenantConfig, None, "").await?,
            Query::Endpoints(q) => self
                .list_kind(Kind::Endpoint, q.namespace.as_deref(), &q.label_selector())
                .await?
                .into_iter()
                .filter(|v| matches!(&v.value, Object::Endpoint(ep) if q.matches(ep)))
                .collect(),
            Query::Pods { namespace } => self.list_kind(Kind::Pod, namespace.as_deref(), "").await?,
            Query::Services { namespace } => self.list_kind(Kind::Service, namespace.as_deref(), "").await?,
            Query::Blocks(pool) => self
                .list_kind(Kind::Block, None, &pool_selector(pool))
                .await?
                .into_iter()
                .filter(|v| matches!(&v.value, Object::Block { key, .. } if key.pool == *pool))
                .collect(),
        };
        out.sort_by_key(|v| v.value.key());
        Ok(out)
    }

    async fn create(&self, object: &Object) -> Result<Version> {
        let key = object.key();
        self.check_write(&key)?;
        let (kind, namespace, _) = convert::locate(&key);
        let body = to_dynamic(object, None)?;
        let api = self.api(&kind.resource(), namespace.as_deref());
        let created = api.create(&PostParams::default(), &body).await.map_err(|e| api_error(&key.to_string(), e))?;
        self.write_status(&api, &key, object, &body, created).await
    }

    async fn update(&self, object: &Object, expected: &Version) -> Result<Version> {
        let key = object.key();
        self.check_write(&key)?;
        let (kind, namespace, name) = convert::locate(&key);
        let body = to_dynamic(object, Some(expected))?;
        let api = self.api(&kind.resource(), namespace.as_deref());
        let replaced =
            api.replace(&name, &PostParams::default(), &body).await.map_err(|e| api_error(&key.to_string(), e))?;
        self.write_status(&api, &key, object, &body, replaced).await
    }

    async fn delete(&self, key: &ObjectKey, expected: Option<&Version>) -> Result<()> {
        self.check_write(key)?;
        let (kind, namespace, name) = convert::locate(key);
        let api = self.api(&kind.resource(), namespace.as_deref());
        let mut params = DeleteParams::default();
        if let Some(v) = expected {
            params.preconditions = Some(Preconditions { resource_version: Some(v.as_str().to_owned()), uid: None });
        }
        api.delete(&name, &params).await.map_err(|e| api_error(&key.to_string(), e))?;
        Ok(())
    }

    /// A JSON merge patch of the one annotation: the Pod stays the kubelet's, and nothing else of it is
    /// read or written.
    async fn annotate_pod(&self, namespace: &str, name: &str, key: &str, value: Option<&str>) -> Result<()> {
        let api = self.api(&Kind::Pod.resource(), Some(namespace));
        let patch = serde_json::json!({"metadata": {"annotations": {key: value}}});
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| api_error(&format!("pod {namespace}/{name}"), e))?;
        Ok(())
    }
}

impl KubeStore {
    /// Networks and Pods keep `status` in a subresource, which create and replace leave alone: a network
    /// that carries one, and every pod record (its readiness), gets it written there too, at the version
    /// the main write returned.
    async fn write_status(
        &self,
        api: &Api<DynamicObject>,
        key: &ObjectKey,
        object: &Object,
        body: &DynamicObject,
        written: DynamicObject,
    ) -> Result<Version> {
        let has_status = match object {
            Object::Network(n) => n.status.as_ref().is_some_and(|s| !s.is_null()),
            // A pod record's readiness is the Pod's Ready condition.
            Object::Pod(_) => true,
            _ => false,
        };
        if !has_status {
            return version_of(key, &written);
        }
        let mut with_status = body.clone();
        with_status.metadata.resource_version = written.metadata.resource_version.clone();
        let name = written.metadata.name.clone().unwrap_or_default();
        let done = api
            .replace_status(&name, &PostParams::default(), &with_status)
            .await
            .map_err(|e| api_error(&key.to_string(), e))?;
        version_of(key, &done)
    }
}

/// A client from the kubeconfig file at `path` (its current context).
pub async fn client_from_kubeconfig(path: &std::path::Path) -> std::result::Result<kube::Client, kube::Error> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(kube::Error::InferKubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
        .await
        .map_err(kube::Error::InferKubeconfig)?;
    kube::Client::try_from(config)
}

fn version_of(key: &ObjectKey, object: &DynamicObject) -> Result<Version> {
    object.metadata.resource_version.clone().map(Version::new).ok_or_else(|| StoreError::Invalid {
        key: key.to_string(),
        reason: "the API server returned no resourceVersion".into(),
    })
}

/// The label selector of a DanmEp query (re-exported for callers building their own watches).
pub fn endpoint_selector(q: &EndpointQuery) -> String {
    q.label_selector()
}

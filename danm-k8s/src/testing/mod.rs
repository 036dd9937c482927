//! An in-process fake Kubernetes API server behind a real [`kube::Client`], for tests (feature `test-util`),
//! and a fake kubelet PodResources API ([`FakeKubelet`]) on a unix socket.
//!
//! [`FakeApiServer`] keeps objects as JSON, keyed by group, version, plural, namespace and name, and
//! answers the HTTP requests a [`kube::Client`] sends through [`kube::Client::new`] over a
//! `tower::Service`: no sockets, no TLS, no cluster. Typed `Api<Pod>`, `Api<DynamicObject>`, CRD types and
//! `kube::runtime` watchers and controllers all run against it unchanged.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), kube::Error> {
//! use danm_k8s::testing::{FakeApiServer, ResourceType};
//! use k8s_openapi::api::core::v1::Pod;
//! use kube::api::{Api, PostParams};
//!
//! let server = FakeApiServer::new();
//! server.register(ResourceType::namespaced("danm.k8s.io", "v1", "danmnets", "DanmNet"));
//! let pods: Api<Pod> = Api::namespaced(server.client(), "default");
//! let mut pod = Pod::default();
//! pod.metadata.name = Some("p".into());
//! pods.create(&PostParams::default(), &pod).await?;
//! assert!(server.object::<Pod>("default", "p").is_some());
//! # Ok(()) }
//! ```
//!
//! # What it implements
//!
//! - **Paths**: `/api/v1/...` and `/apis/{group}/{version}/...`; `namespaces/{ns}/{plural}[/{name}[/status]]`
//!   for namespaced kinds, `{plural}[/{name}[/status]]` for cluster-scoped kinds, and `{plural}` across all
//!   namespaces for namespaced kinds. Unregistered kinds, wrongly scoped paths and other subresources are
//!   404. Built in: core `pods`, `services`, `namespaces`, `nodes` (with status subresources) and
//!   `endpoints`, `discovery.k8s.io/v1` `endpointslices`, `coordination.k8s.io/v1` `leases`; others are
//!   added with [`FakeApiServer::register`]: the DANM kinds by [`FakeApiServer::with_danm_kinds`],
//!   Multus' NetworkAttachmentDefinition (a namespaced custom resource) with
//!   `register(ResourceType::of::<danm_k8s::NetworkAttachmentDefinition>())`.
//! - **resourceVersion**: one global counter, bumped by every write, as etcd's revision; lists carry it
//!   in `metadata.resourceVersion`. A write that changes nothing keeps the object (and sends no event).
//! - **GET**, **LIST** with `labelSelector` (`=`, `==`, `!=`, `in (..)`, `notin (..)`, `key`, `!key`,
//!   `key>n`, `key<n`, comma-combined) and `fieldSelector` (`=`, `==`, `!=` on any dotted path, e.g.
//!   `metadata.name`, `spec.nodeName`; a missing field reads as empty).
//! - **POST**: sets `uid`, `creationTimestamp`, `generation: 1`, `resourceVersion`; fills `generateName`;
//!   409 `AlreadyExists`. With a status subresource, a client's `.status` is dropped.
//! - **PUT**: 404 when missing; 409 `Conflict` when `metadata.resourceVersion` is given and stale; system
//!   metadata is kept; `generation` is bumped when anything outside `metadata` and `status` changes.
//! - **PATCH**: `merge-patch+json`, `json-patch+json` (incl. `test`; a failed op is 422 `Invalid`),
//!   `apply-patch+yaml` (a merge of the fields given; creates a missing object) and
//!   `strategic-merge-patch+json` (as a merge patch). A `metadata.resourceVersion` in the patched result
//!   that differs from the stored one is 409 `Conflict`.
//! - **status subresource**: PUT/PATCH of `/status` change only `.status`; main-resource writes keep it.
//! - **DELETE** (one, or a collection by selector): `preconditions.resourceVersion`/`uid` mismatch is
//!   409; an object with finalizers gets `deletionTimestamp` and goes when its last finalizer is removed.
//! - **WATCH** (`watch=true|1`): JSON-lines `ADDED`/`MODIFIED`/`DELETED`/`BOOKMARK`/`ERROR` events.
//!   Without `resourceVersion` (or `0`) it starts with the current objects as `ADDED`; with one, it replays
//!   the kept history after it, or sends an `ERROR` event with a 410 `Expired` status when that history is
//!   gone. Selectors apply (an object entering or leaving the selection is `ADDED`/`DELETED`).
//!   `allowWatchBookmarks` gives a bookmark at the start and then periodically; `sendInitialEvents` ends
//!   the initial events with a `k8s.io/initial-events-end` bookmark; `timeoutSeconds` ends the stream.
//! - **Errors** are `metav1.Status` bodies with `code`, `reason`, `message` and `details`, which kube turns
//!   into [`kube::Error::Api`].
//! - **Faults** ([`Fault`]) and a request log ([`FakeApiServer::take_requests`]) for retry paths.
//! - **Over HTTP** ([`FakeApiServer::serve_http`], plain HTTP/1.1 on `127.0.0.1`) with a matching
//!   [`FakeApiServer::kubeconfig`], for binaries that take a kubeconfig.
//!
//! # What it does not implement
//!
//! Authentication and authorization, admission and validation (any JSON object is accepted), defaulting,
//! field management (`managedFields`, apply conflicts between managers; `force` is ignored; lists in
//! patches are replaced, not merged by key), `limit`/`continue` paging (one page, no continue token),
//! `resourceVersion` on lists and `resourceVersionMatch` (lists always show the latest state), `dryRun`
//! (rejected with 400), graceful deletion periods, `propagationPolicy` and garbage collection by owner
//! references, escaped characters in field selectors, subresources other than `status`, discovery
//! (`/api`, `/apis`, `/version`), protobuf, and conversion between versions (each version is stored apart).

mod error;
mod fault;
mod kubelet;
mod ops;
mod patch;
mod resource;
mod route;
mod selector;
mod server;
mod service;
mod state;
mod watch;

pub use fault::{Fault, RequestRecord};
pub use kubelet::{FakeKubelet, KubeletBehaviour};
pub use resource::ResourceType;
pub use server::{FakeApiServer, FakeApiServerBuilder};

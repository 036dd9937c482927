//! The Datastore conformance suite (feature `test-util`): the contract of [`Datastore`], as checks that
//! every backend must pass.
//!
//! Each check takes a store, normally fresh and empty, does its work through the trait alone, and panics
//! with a message naming the broken rule. [`run_all`] runs every check, each on a fresh store from the
//! factory it is given:
//!
//! - get, create, update and delete of every object kind, and objects that round-trip unchanged;
//! - `Conflict` on creating an existing key and on a stale version, `NotFound` on a missing key,
//!   unconditional delete, and a new version on every write;
//! - every [`Query`](super::Query): networks by kind and namespace (ClusterNetworks included when a
//!   namespace is given), TenantConfigs, pods by namespace, the blocks of one pool, and DanmEps by
//!   container, pod, network and namespace and their combinations, each in key order;
//! - compare-and-swap increments racing on one object, none lost ([`cas_race`], and
//!   [`cas_race_threads`] for handles on separate threads).
//!
//! The checks are plain futures that need no particular runtime: drive them with the executor the
//! backend needs. They are not a benchmark and leave the objects they wrote in the store.

mod fixtures;
mod lists;
mod race;

use super::{Datastore, Object, ObjectKey, StoreError, Version};

pub use lists::{list_blocks, list_endpoints, list_networks, list_pods, list_services, list_tenant_configs};
pub use race::{cas_race, cas_race_threads};

/// Runs every check of the suite, each on a fresh store from `make`.
pub async fn run_all<S: Datastore>(make: impl Fn() -> S) {
    round_trip_every_kind(&make()).await;
    create_existing_conflicts(&make()).await;
    stale_versions_conflict(&make()).await;
    missing_keys_not_found(&make()).await;
    unconditional_delete(&make()).await;
    versions_change_on_every_write(&make()).await;
    list_networks(&make()).await;
    list_tenant_configs(&make()).await;
    list_pods(&make()).await;
    list_services(&make()).await;
    list_blocks(&make()).await;
    list_endpoints(&make()).await;
    annotate_pod(&make()).await;
    cas_race(&make(), 8, 25).await;
}

fn assert_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::Conflict { .. }) => {}
        other => panic!("{what}: expected Conflict, got {other:?}"),
    }
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::NotFound { .. }) => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

async fn create<S: Datastore + ?Sized>(store: &S, object: &Object) -> Version {
    let key = object.key();
    store.create(object).await.unwrap_or_else(|e| panic!("creating {key} failed: {e:?}"))
}

async fn read<S: Datastore + ?Sized>(store: &S, key: &ObjectKey) -> Option<(Version, Object)> {
    let got = store.get(key).await.unwrap_or_else(|e| panic!("reading {key} failed: {e:?}"));
    got.map(|v| (v.version, comparable(&v.value)))
}

/// `object` without the metadata a server owns and may set or change on its own (its resource version,
/// uid, creation time, generation, field managers): the suite compares what a client wrote.
pub(super) fn comparable(object: &Object) -> Object {
    let mut o = object.clone();
    let meta = match &mut o {
        Object::Network(x) => &mut x.metadata,
        Object::TenantConfig(x) => &mut x.metadata,
        Object::Endpoint(x) => &mut x.metadata,
        Object::Pod(x) => &mut x.metadata,
        Object::Service(x) => &mut x.metadata,
        Object::Block { .. } | Object::Cursor { .. } => return o,
    };
    meta.resource_version = None;
    meta.uid = None;
    for owned in ["creationTimestamp", "generation", "managedFields", "selfLink"] {
        meta.other.remove(owned);
    }
    o
}

/// A changed copy of `object` (same key), so that an update is visible.
fn changed(object: &Object, n: u8) -> Object {
    let mut o = object.clone();
    let mark = format!("change-{n}");
    match &mut o {
        Object::Network(x) => x.spec.options.container_prefix = mark,
        Object::TenantConfig(x) => {
            x.network_ids.insert("macvlan".into(), mark);
        }
        Object::Endpoint(x) => x.spec.interface.mac_address = mark,
        Object::Pod(x) => x.hostname = Some(mark),
        Object::Service(x) => x.cluster_ip = Some(mark),
        Object::Block { block, .. } => {
            block.allocate(n % 16 + 1, crate::ipam::OwnerId(u64::from(n)), true).expect("slot 1..=16 is free")
        }
        Object::Cursor { cursor, .. } => cursor.block = u128::from(n),
    }
    o
}

/// Every object kind is created, read back unchanged with the version create returned, updated, read back
/// updated, and deleted with its current version.
pub async fn round_trip_every_kind<S: Datastore + ?Sized>(store: &S) {
    for object in fixtures::one_of_each() {
        let key = object.key();
        assert_eq!(read(store, &key).await, None, "{key} exists before it was created");
        let v1 = create(store, &object).await;
        assert_eq!(read(store, &key).await, Some((v1.clone(), comparable(&object))), "{key} did not round-trip");
        let updated = changed(&object, 1);
        assert_ne!(updated, object);
        let v2 = store.update(&updated, &v1).await.unwrap_or_else(|e| panic!("updating {key} failed: {e:?}"));
        assert_eq!(
            read(store, &key).await,
            Some((v2.clone(), comparable(&updated))),
            "{key} did not round-trip an update"
        );
        store.delete(&key, Some(&v2)).await.unwrap_or_else(|e| panic!("deleting {key} failed: {e:?}"));
        assert_eq!(read(store, &key).await, None, "{key} is still there after delete");
    }
}

/// Creating a key that exists is a `Conflict` and leaves the stored object alone.
pub async fn create_existing_conflicts<S: Datastore + ?Sized>(store: &S) {
    for object in fixtures::one_of_each() {
        let key = object.key();
        let v1 = create(store, &object).await;
        assert_conflict(store.create(&changed(&object, 2)).await, &format!("creating {key} twice"));
        assert_eq!(read(store, &key).await, Some((v1, comparable(&object))), "a refused create changed {key}");
    }
}

/// Update and delete with a stale version are a `Conflict` and change nothing.
pub async fn stale_versions_conflict<S: Datastore + ?Sized>(store: &S) {
    for object in fixtures::one_of_each() {
        let key = object.key();
        let v1 = create(store, &object).await;
        let current = changed(&object, 3);
        let v2 = store.update(&current, &v1).await.unwrap_or_else(|e| panic!("updating {key} failed: {e:?}"));
        assert_conflict(store.update(&changed(&object, 4), &v1).await, &format!("updating {key} at a stale version"));
        assert_conflict(store.delete(&key, Some(&v1)).await, &format!("deleting {key} at a stale version"));
        assert_eq!(read(store, &key).await, Some((v2, comparable(&current))), "a refused write changed {key}");
    }
}

/// Update and delete of a key that does not exist, or no longer does, are `NotFound`.
pub async fn missing_keys_not_found<S: Datastore + ?Sized>(store: &S) {
    for object in fixtures::one_of_each() {
        let key = object.key();
        let bogus = Version::new("1");
        assert_not_found(store.update(&object, &bogus).await, &format!("updating missing {key}"));
        assert_not_found(store.delete(&key, Some(&bogus)).await, &format!("deleting missing {key} at a version"));
        assert_not_found(store.delete(&key, None).await, &format!("deleting missing {key}"));
        let v1 = create(store, &object).await;
        store.delete(&key, Some(&v1)).await.unwrap_or_else(|e| panic!("deleting {key} failed: {e:?}"));
        assert_not_found(store.update(&object, &v1).await, &format!("updating deleted {key}"));
        assert_not_found(store.delete(&key, Some(&v1)).await, &format!("deleting deleted {key}"));
        assert_eq!(read(store, &key).await, None, "a refused write brought {key} back");
    }
}

/// Delete without a version removes the object whatever its version, and the key can be created again.
pub async fn unconditional_delete<S: Datastore + ?Sized>(store: &S) {
    for object in fixtures::one_of_each() {
        let key = object.key();
        let v1 = create(store, &object).await;
        store.update(&changed(&object, 5), &v1).await.unwrap_or_else(|e| panic!("updating {key} failed: {e:?}"));
        store.delete(&key, None).await.unwrap_or_else(|e| panic!("deleting {key} without a version failed: {e:?}"));
        assert_eq!(read(store, &key).await, None, "{key} is still there after an unconditional delete");
        let v3 = create(store, &object).await;
        assert_eq!(
            read(store, &key).await,
            Some((v3, comparable(&object))),
            "{key} could not be created again after delete"
        );
    }
}

/// Every write gives the object a version it never had before, also across a delete and a new create, and
/// a write to one object does not change another's version.
pub async fn versions_change_on_every_write<S: Datastore + ?Sized>(store: &S) {
    let objects = fixtures::one_of_each();
    let bystander = &objects[0];
    let bystander_version = create(store, bystander).await;
    for object in &objects[1..] {
        let key = object.key();
        let mut seen = vec![create(store, object).await];
        for n in 0..3 {
            let last = seen.last().expect("one version at least").clone();
            let v = store.update(&changed(object, 10 + n), &last).await.unwrap_or_else(|e| panic!("{key}: {e:?}"));
            assert!(!seen.contains(&v), "{key}: update returned version {v}, which it had before");
            assert_eq!(read(store, &key).await.map(|(v, _)| v), Some(v.clone()), "{key}: get disagrees with update");
            seen.push(v);
        }
        store.delete(&key, seen.last()).await.unwrap_or_else(|e| panic!("deleting {key} failed: {e:?}"));
        let again = create(store, object).await;
        assert!(!seen.contains(&again), "{key}: re-created at version {again}, which it had before");
        assert_conflict(store.update(object, &seen[0]).await, &format!("{key}: a version from before delete"));
    }
    let now = read(store, &bystander.key()).await.map(|(v, _)| v);
    assert_eq!(now, Some(bystander_version), "writes to other objects changed a version");
}

#[cfg(all(test, feature = "memory"))]
mod tests {
    use std::sync::Arc;

    use futures::executor::block_on;

    use super::*;
    use crate::store::MemoryStore;

    #[test]
    fn memory_store_conforms() {
        block_on(run_all(MemoryStore::new));
    }

    #[test]
    fn memory_store_handles_race_on_threads() {
        let store = Arc::new(MemoryStore::new());
        cas_race_threads((0..4).map(|_| store.clone()).collect(), 200);
    }
}

/// [`Datastore::annotate_pod`] sets and removes one annotation and keeps the pod's other annotations,
/// labels and fields; a missing pod is `NotFound`.
pub async fn annotate_pod<S: Datastore + ?Sized>(store: &S) {
    let mut record = fixtures::pod("vnf", "annotated");
    record.metadata.annotations.insert("keep".into(), "me".into());
    record.metadata.labels.insert("app".into(), "lb".into());
    create(store, &Object::Pod(record.clone())).await;
    let key = Object::Pod(record.clone()).key();
    let pod_of = |o: Object| match o {
        Object::Pod(p) => p,
        other => panic!("{key} read back as {other:?}"),
    };

    store.annotate_pod("vnf", "annotated", "status", Some("[1]")).await.expect("setting an annotation");
    let (_, got) = read(store, &key).await.expect("the pod is still there");
    let got = pod_of(got);
    assert_eq!(got.metadata.annotations.get("status").map(String::as_str), Some("[1]"));
    assert_eq!(got.metadata.annotations.get("keep").map(String::as_str), Some("me"));
    assert_eq!(got.metadata.labels, record.metadata.labels);
    assert_eq!(got.hostname, record.hostname);

    store.annotate_pod("vnf", "annotated", "status", Some("[2]")).await.expect("replacing an annotation");
    store.annotate_pod("vnf", "annotated", "status", None).await.expect("removing an annotation");
    let (_, got) = read(store, &key).await.expect("the pod is still there");
    assert_eq!(comparable(&Object::Pod(pod_of(got))), comparable(&Object::Pod(record)));

    assert_not_found(store.annotate_pod("vnf", "absent", "status", Some("x")).await, "annotating a missing pod");
}

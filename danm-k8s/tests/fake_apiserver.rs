//! The fake API server, exercised only through real `kube::Client`s: typed and dynamic `Api`s, and
//! `kube::runtime` watchers and controllers.

use std::sync::Arc;
use std::time::Duration;

use danm_k8s::testing::{FakeApiServer, Fault, ResourceType};
use futures::{Stream, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
    WatchEvent, WatchParams,
};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher::{self, Event};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(5);

fn danmnet_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("danm.k8s.io", "v1", "DanmNet"), "danmnets")
}

/// A server that also serves DanmNets (with a status subresource), and a DanmNet `Api` in `default`.
fn with_danmnets() -> (FakeApiServer, Api<DynamicObject>) {
    let server = FakeApiServer::builder()
        .register(ResourceType::namespaced("danm.k8s.io", "v1", "danmnets", "DanmNet").with_status_subresource())
        .build();
    let api = Api::namespaced_with(server.client(), "default", &danmnet_resource());
    (server, api)
}

fn danmnet(name: &str, spec: Value) -> DynamicObject {
    DynamicObject::new(name, &danmnet_resource()).within("default").data(json!({ "spec": spec }))
}

fn pod(namespace: &str, name: &str, labels: Value) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name, "namespace": namespace, "labels": labels },
        "spec": { "containers": [{ "name": "c", "image": "i" }], "nodeName": format!("node-{name}") },
    }))
    .unwrap()
}

/// The `code` and `reason` of the API error `result` must be.
fn status_of<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> (u16, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn names<K: kube::Resource>(objects: impl IntoIterator<Item = K>) -> Vec<String> {
    objects.into_iter().map(|o| o.meta().name.clone().unwrap_or_default()).collect()
}

fn name_of<K: kube::Resource>(object: &K) -> &str {
    object.meta().name.as_deref().unwrap_or_default()
}

fn rv<K: kube::Resource>(object: &K) -> u64 {
    object.meta().resource_version.as_deref().unwrap().parse().unwrap()
}

/// The next item of `stream`, within [`WAIT`].
async fn next<S: Stream + Unpin>(stream: &mut S) -> S::Item {
    tokio::time::timeout(WAIT, stream.next()).await.expect("an event in time").expect("the stream is open")
}

#[tokio::test]
async fn create_get_replace_delete_through_typed_and_dynamic_apis() {
    let (server, nets) = with_danmnets();
    let pods: Api<Pod> = Api::default_namespaced(server.client());
    let created = pods.create(&PostParams::default(), &pod("default", "p", json!({}))).await.unwrap();
    let meta = &created.metadata;
    assert!(meta.uid.is_some() && meta.creation_timestamp.is_some());
    assert_eq!((meta.generation, meta.resource_version.as_deref()), (Some(1), Some("1")));
    let mut fetched = pods.get("p").await.unwrap();
    assert_eq!(fetched.metadata.uid, meta.uid);

    fetched.metadata.labels = Some([("a".to_owned(), "b".to_owned())].into());
    let replaced = pods.replace("p", &PostParams::default(), &fetched).await.unwrap();
    assert_eq!(rv(&replaced), 2);
    assert_eq!(replaced.metadata.generation, Some(1), "a metadata change keeps the generation");
    assert_eq!(replaced.metadata.creation_timestamp, meta.creation_timestamp);
    let unchanged = pods.replace("p", &PostParams::default(), &replaced).await.unwrap();
    assert_eq!(rv(&unchanged), 2, "a write that changes nothing is not a new version");

    let net = nets.create(&PostParams::default(), &danmnet("n1", json!({ "NetworkID": "n1" }))).await.unwrap();
    assert_eq!(rv(&net), 3, "one counter for every kind");
    let stored = server.object_json("danm.k8s.io/v1", "DanmNet", "default", "n1").unwrap();
    assert_eq!(stored["spec"]["NetworkID"], "n1");

    let mut unnamed = pod("default", "", json!({}));
    unnamed.metadata.name = None;
    unnamed.metadata.generate_name = Some("gen-".into());
    let generated = pods.create(&PostParams::default(), &unnamed).await.unwrap();
    assert!(name_of(&generated).starts_with("gen-"));

    assert!(pods.delete("p", &DeleteParams::default()).await.unwrap().is_left());
    assert!(server.object::<Pod>("default", "p").is_none());
    assert_eq!(server.objects::<Pod>().len(), 1);
}

#[tokio::test]
async fn conflicts_already_exists_and_not_found_are_real_status_errors() {
    let (server, nets) = with_danmnets();
    let pods: Api<Pod> = Api::default_namespaced(server.client());
    let first = pods.create(&PostParams::default(), &pod("default", "p", json!({}))).await.unwrap();
    let again = pods.create(&PostParams::default(), &pod("default", "p", json!({}))).await;
    assert_eq!(status_of(again), (409, "AlreadyExists".into()));

    let mut newer = first.clone();
    newer.metadata.labels = Some([("v".to_owned(), "2".to_owned())].into());
    pods.replace("p", &PostParams::default(), &newer).await.unwrap();
    let mut stale = first.clone();
    stale.metadata.labels = Some([("v".to_owned(), "stale".to_owned())].into());
    assert_eq!(status_of(pods.replace("p", &PostParams::default(), &stale).await), (409, "Conflict".into()));

    assert_eq!(status_of(pods.get("missing").await), (404, "NotFound".into()));
    let mut missing = pod("default", "missing", json!({}));
    missing.metadata.resource_version = None;
    assert_eq!(status_of(pods.replace("missing", &PostParams::default(), &missing).await).0, 404);
    assert_eq!(status_of(pods.delete("missing", &DeleteParams::default()).await).0, 404);
    assert_eq!(status_of(nets.get("missing").await).0, 404);

    let unregistered = GroupVersionKind::gvk("danm.k8s.io", "v1", "ClusterNetwork");
    let resource = ApiResource::from_gvk_with_plural(&unregistered, "clusternetworks");
    let clusternetworks: Api<DynamicObject> = Api::all_with(server.client(), &resource);
    assert_eq!(status_of(clusternetworks.list(&ListParams::default()).await), (404, "NotFound".into()));
}

#[tokio::test]
async fn every_patch_type_applies_and_honours_resource_version() {
    let (server, nets) = with_danmnets();
    let created = nets.create(&PostParams::default(), &danmnet("n", json!({ "a": 1, "b": 1 }))).await.unwrap();
    let params = PatchParams::default();

    let merged = nets.patch("n", &params, &Patch::Merge(json!({ "spec": { "a": 2, "b": null } }))).await.unwrap();
    assert_eq!(merged.data["spec"], json!({ "a": 2 }));
    assert_eq!(merged.metadata.generation, Some(2), "a spec change bumps the generation");

    let ops = json!([
        { "op": "test", "path": "/spec/a", "value": 2 },
        { "op": "add", "path": "/spec/c", "value": 3 },
    ]);
    let json_patched = nets.patch("n", &params, &Patch::Json::<()>(serde_json::from_value(ops).unwrap())).await;
    assert_eq!(json_patched.unwrap().data["spec"], json!({ "a": 2, "c": 3 }));
    let failing = json!([{ "op": "test", "path": "/spec/a", "value": 99 }]);
    let failed = nets.patch("n", &params, &Patch::Json::<()>(serde_json::from_value(failing).unwrap())).await;
    assert_eq!(status_of(failed), (422, "Invalid".into()));

    let apply = PatchParams::apply("danm-test");
    let applied = json!({ "apiVersion": "danm.k8s.io/v1", "kind": "DanmNet", "spec": { "d": 4 } });
    let applied = nets.patch("n", &apply, &Patch::Apply(&applied)).await.unwrap();
    assert_eq!(applied.data["spec"], json!({ "a": 2, "c": 3, "d": 4 }));
    let new = json!({ "apiVersion": "danm.k8s.io/v1", "kind": "DanmNet", "metadata": { "name": "m" }, "spec": {} });
    nets.patch("m", &apply, &Patch::Apply(&new)).await.unwrap();
    assert!(server.object_json("danm.k8s.io/v1", "DanmNet", "default", "m").is_some(), "apply creates");

    let pods: Api<Pod> = Api::default_namespaced(server.client());
    pods.create(&PostParams::default(), &pod("default", "p", json!({}))).await.unwrap();
    let strategic = Patch::Strategic(json!({ "metadata": { "labels": { "s": "1" } } }));
    let patched = pods.patch("p", &params, &strategic).await.unwrap();
    assert_eq!(patched.metadata.labels.unwrap()["s"], "1");

    let stale = json!({ "metadata": { "resourceVersion": created.metadata.resource_version }, "spec": { "a": 0 } });
    assert_eq!(status_of(nets.patch("n", &params, &Patch::Merge(stale)).await), (409, "Conflict".into()));
    let current = applied.metadata.resource_version.clone();
    let fresh = json!({ "metadata": { "resourceVersion": current }, "spec": { "a": 5 } });
    assert_eq!(nets.patch("n", &params, &Patch::Merge(fresh)).await.unwrap().data["spec"]["a"], 5);
    assert_eq!(status_of(nets.patch("x", &params, &Patch::Merge(json!({}))).await).0, 404);
}

#[tokio::test]
async fn status_subresource_changes_only_status() {
    let (server, nets) = with_danmnets();
    let mut net = danmnet("n", json!({ "v": 1 }));
    net.data["status"] = json!({ "ignored": true });
    let created = nets.create(&PostParams::default(), &net).await.unwrap();
    assert!(created.data.get("status").is_none(), "create drops a client's status");

    let params = PatchParams::default();
    let both = json!({ "spec": { "v": 2 }, "status": { "ready": true } });
    let after_status_patch = nets.patch_status("n", &params, &Patch::Merge(&both)).await.unwrap();
    assert_eq!(
        (&after_status_patch.data["spec"]["v"], &after_status_patch.data["status"]["ready"]),
        (&json!(1), &json!(true))
    );
    assert_eq!(after_status_patch.metadata.generation, Some(1));

    let mut main = after_status_patch.clone();
    main.data["spec"]["v"] = json!(3);
    main.data["status"] = json!({ "ready": false });
    let replaced = nets.replace("n", &PostParams::default(), &main).await.unwrap();
    assert_eq!((&replaced.data["spec"]["v"], &replaced.data["status"]["ready"]), (&json!(3), &json!(true)));

    let mut status_put = replaced.clone();
    status_put.data["spec"]["v"] = json!(4);
    status_put.data["status"] = json!({ "ready": false });
    let after_status_put = nets.replace_status("n", &PostParams::default(), &status_put).await.unwrap();
    assert_eq!(
        (&after_status_put.data["spec"]["v"], &after_status_put.data["status"]["ready"]),
        (&json!(3), &json!(false))
    );
    assert_eq!(nets.get_status("n").await.unwrap().data["status"]["ready"], false);

    let leases: Api<Lease> = Api::default_namespaced(server.client());
    assert_eq!(status_of(leases.get_status("l").await).0, 404, "leases have no status subresource");
}

#[tokio::test]
async fn label_selectors_of_every_form() {
    let server = FakeApiServer::new();
    for (name, labels) in [
        ("web", json!({ "tier": "web", "app": "a" })),
        ("db", json!({ "tier": "db", "app": "a", "gen": "3" })),
        ("cache", json!({ "tier": "cache" })),
        ("bare", json!({})),
    ] {
        server.seed(&pod("default", name, labels));
    }
    let pods: Api<Pod> = Api::default_namespaced(server.client());
    let select = |selector: &'static str| {
        let pods = pods.clone();
        async move { names(pods.list(&ListParams::default().labels(selector)).await.unwrap()) }
    };
    assert_eq!(select("tier=web").await, ["web"]);
    assert_eq!(select("tier==db").await, ["db"]);
    assert_eq!(select("tier!=web").await, ["bare", "cache", "db"]);
    assert_eq!(select("tier in (web,db)").await, ["db", "web"]);
    assert_eq!(select("tier in (web, cache)").await, ["cache", "web"]);
    assert_eq!(select("tier notin (web,db)").await, ["bare", "cache"]);
    assert_eq!(select("app").await, ["db", "web"]);
    assert_eq!(select("!app").await, ["bare", "cache"]);
    assert_eq!(select("app=a,tier in (db,cache),gen>2").await, ["db"]);
    assert_eq!(select("").await, ["bare", "cache", "db", "web"]);
    assert_eq!(status_of(pods.list(&ListParams::default().labels("tier in web")).await), (400, "BadRequest".into()));
}

#[tokio::test]
async fn field_selectors_and_lists_across_namespaces() {
    let server = FakeApiServer::new();
    server.seed(&pod("a", "p1", json!({})));
    server.seed(&pod("b", "p2", json!({})));
    let mut running = pod("b", "p3", json!({}));
    running.status = Some(serde_json::from_value(json!({ "phase": "Running" })).unwrap());
    server.seed(&running);

    let all: Api<Pod> = Api::all(server.client());
    let list = all.list(&ListParams::default()).await.unwrap();
    assert_eq!(names(list.items), ["p1", "p2", "p3"]);
    assert_eq!(list.metadata.resource_version.as_deref(), Some("3"));
    let fields = |selector: &'static str| {
        let all = all.clone();
        async move { names(all.list(&ListParams::default().fields(selector)).await.unwrap()) }
    };
    assert_eq!(fields("metadata.name=p2").await, ["p2"]);
    assert_eq!(fields("metadata.namespace!=a").await, ["p2", "p3"]);
    assert_eq!(fields("spec.nodeName==node-p1").await, ["p1"]);
    assert_eq!(fields("status.phase=Running,metadata.namespace=b").await, ["p3"]);
    let in_b: Api<Pod> = Api::namespaced(server.client(), "b");
    assert_eq!(names(in_b.list(&ListParams::default()).await.unwrap()), ["p2", "p3"]);
}

#[tokio::test]
async fn finalizers_delay_deletion_and_preconditions_guard_it() {
    let (server, nets) = with_danmnets();
    let mut net = danmnet("n", json!({}));
    net.metadata.finalizers = Some(vec!["danm.k8s.io/cleanup".into()]);
    let created = nets.create(&PostParams::default(), &net).await.unwrap();

    let wrong = DeleteParams {
        preconditions: Some(kube::api::Preconditions { resource_version: Some("999".into()), uid: None }),
        ..DeleteParams::default()
    };
    assert_eq!(status_of(nets.delete("n", &wrong).await), (409, "Conflict".into()));

    let deleting = nets.delete("n", &DeleteParams::default()).await.unwrap().left().unwrap();
    assert!(deleting.metadata.deletion_timestamp.is_some());
    assert!(nets.get("n").await.unwrap().metadata.deletion_timestamp.is_some(), "still there");
    assert!(rv(&deleting) > rv(&created));

    let release = Patch::Merge(json!({ "metadata": { "finalizers": null } }));
    nets.patch("n", &PatchParams::default(), &release).await.unwrap();
    assert_eq!(status_of(nets.get("n").await).0, 404, "gone with its last finalizer");
    assert!(server.object_json("danm.k8s.io/v1", "DanmNet", "default", "n").is_none());
}

#[tokio::test]
async fn watcher_lists_then_follows_live_changes() {
    let server = FakeApiServer::new();
    server.seed(&pod("default", "a", json!({})));
    let pods: Api<Pod> = Api::default_namespaced(server.client());
    let mut events = watcher::watcher(pods.clone(), watcher::Config::default()).boxed();
    assert!(matches!(next(&mut events).await.unwrap(), Event::Init));
    assert!(matches!(next(&mut events).await.unwrap(), Event::InitApply(p) if name_of(&p) == "a"));
    assert!(matches!(next(&mut events).await.unwrap(), Event::InitDone));

    pods.create(&PostParams::default(), &pod("default", "b", json!({}))).await.unwrap();
    assert!(matches!(next(&mut events).await.unwrap(), Event::Apply(p) if name_of(&p) == "b"));
    assert_eq!(server.open_watches(), 1);
    pods.patch("a", &PatchParams::default(), &Patch::Merge(json!({ "metadata": { "labels": { "x": "y" } } })))
        .await
        .unwrap();
    assert!(matches!(next(&mut events).await.unwrap(), Event::Apply(p) if p.metadata.labels.is_some()));
    pods.delete("b", &DeleteParams::default()).await.unwrap();
    assert!(matches!(next(&mut events).await.unwrap(), Event::Delete(p) if name_of(&p) == "b"));
}

#[tokio::test]
async fn watcher_relists_after_410_gone() {
    let server = FakeApiServer::new();
    server.seed(&pod("default", "a", json!({})));
    let pods: Api<Pod> = Api::default_namespaced(server.client());
    let mut events = watcher::watcher(pods.clone(), watcher::Config::default()).boxed();
    for _ in 0..3 {
        next(&mut events).await.unwrap(); // Init, InitApply(a), InitDone
    }
    pods.create(&PostParams::default(), &pod("default", "b", json!({}))).await.unwrap();
    assert!(matches!(next(&mut events).await.unwrap(), Event::Apply(_)));

    server.seed(&pod("default", "c", json!({})));
    server.compact(); // the watch ends before it delivers c, and its resourceVersion is now too old
    match next(&mut events).await {
        Err(watcher::Error::WatchError(status)) => assert_eq!((status.code, status.reason.as_str()), (410, "Expired")),
        other => panic!("expected 410, got {other:?}"),
    }
    assert!(matches!(next(&mut events).await.unwrap(), Event::Init));
    let mut relisted = Vec::new();
    while let Event::InitApply(p) = next(&mut events).await.unwrap() {
        relisted.push(p);
    }
    assert_eq!(names(relisted), ["a", "b", "c"]);
}

#[tokio::test]
async fn watch_events_resume_select_and_expire() {
    let server = FakeApiServer::builder().history_limit(2).bookmark_interval(None).build();
    let pods: Api<Pod> = Api::default_namespaced(server.client());
    let a = pods.create(&PostParams::default(), &pod("default", "a", json!({ "sel": "yes" }))).await.unwrap();

    let params = WatchParams::default().labels("sel=yes");
    let mut watch = pods.watch(&params, &rv(&a).to_string()).await.unwrap().boxed();
    assert!(matches!(next(&mut watch).await.unwrap(), WatchEvent::Bookmark(b) if b.metadata.resource_version == "1"));
    pods.create(&PostParams::default(), &pod("default", "b", json!({ "sel": "no" }))).await.unwrap();
    let leave = Patch::Merge(json!({ "metadata": { "labels": { "sel": "no" } } }));
    pods.patch("a", &PatchParams::default(), &leave).await.unwrap();
    assert!(matches!(next(&mut watch).await.unwrap(), WatchEvent::Deleted(p) if name_of(&p) == "a"));
    let enter = Patch::Merge(json!({ "metadata": { "labels": { "sel": "yes" } } }));
    pods.patch("b", &PatchParams::default(), &enter).await.unwrap();
    assert!(matches!(next(&mut watch).await.unwrap(), WatchEvent::Added(p) if name_of(&p) == "b"));

    let mut replay = pods.watch(&WatchParams::default(), "2").await.unwrap().boxed();
    assert!(matches!(next(&mut replay).await.unwrap(), WatchEvent::Modified(p) if rv(&p) == 3));
    assert!(matches!(next(&mut replay).await.unwrap(), WatchEvent::Modified(p) if rv(&p) == 4));
    assert!(matches!(next(&mut replay).await.unwrap(), WatchEvent::Bookmark(b) if b.metadata.resource_version == "4"));

    let mut from_zero = pods.watch(&WatchParams::default(), "0").await.unwrap().boxed();
    assert!(matches!(next(&mut from_zero).await.unwrap(), WatchEvent::Added(p) if name_of(&p) == "a"));
    assert!(matches!(next(&mut from_zero).await.unwrap(), WatchEvent::Added(p) if name_of(&p) == "b"));

    let mut expired = pods.watch(&WatchParams::default(), "1").await.unwrap().boxed();
    assert!(matches!(next(&mut expired).await.unwrap(), WatchEvent::Error(s) if s.code == 410));
    assert!(tokio::time::timeout(WAIT, expired.next()).await.unwrap().is_none(), "the stream ends after the error");
}

#[tokio::test(start_paused = true)]
async fn bookmarks_are_periodic_and_watches_time_out() {
    let server = FakeApiServer::builder().bookmark_interval(Some(Duration::from_secs(2))).build();
    let pods: Api<Pod> = Api::default_namespaced(server.client());
    let mut watch = pods.watch(&WatchParams::default().timeout(5), "0").await.unwrap().boxed();
    assert!(matches!(next(&mut watch).await.unwrap(), WatchEvent::Bookmark(b) if b.metadata.resource_version == "0"));
    server.seed(&pod("default", "a", json!({})));
    assert!(matches!(next(&mut watch).await.unwrap(), WatchEvent::Added(_)));
    assert!(matches!(next(&mut watch).await.unwrap(), WatchEvent::Bookmark(b) if b.metadata.resource_version == "1"));
    assert!(matches!(next(&mut watch).await.unwrap(), WatchEvent::Bookmark(_)));
    assert!(tokio::time::timeout(WAIT, watch.next()).await.unwrap().is_none(), "timeoutSeconds ends the watch");
}

#[tokio::test]
async fn streaming_list_ends_its_initial_events_with_a_bookmark() {
    let server = FakeApiServer::new();
    server.seed(&pod("default", "a", json!({})));
    let pods: Api<Pod> = Api::default_namespaced(server.client());
    let mut events = watcher::watcher(pods, watcher::Config::default().streaming_lists()).boxed();
    assert!(matches!(next(&mut events).await.unwrap(), Event::Init));
    assert!(matches!(next(&mut events).await.unwrap(), Event::InitApply(_)));
    assert!(matches!(next(&mut events).await.unwrap(), Event::InitDone));
}

#[tokio::test]
async fn injected_faults_fail_the_next_matching_requests() {
    let server = FakeApiServer::new();
    let leases: Api<Lease> = Api::default_namespaced(server.client());
    let lease: Lease =
        serde_json::from_value(json!({ "metadata": { "name": "l" }, "spec": { "holderIdentity": "x" } })).unwrap();
    let lease = leases.create(&PostParams::default(), &lease).await.unwrap();
    server.take_requests();

    server.inject(Fault::status(503).method("PUT").path_contains("/leases/l").times(2));
    for _ in 0..2 {
        let failed = leases.replace("l", &PostParams::default(), &lease).await;
        assert_eq!(status_of(failed), (503, "ServiceUnavailable".into()));
    }
    assert!(leases.get("l").await.is_ok(), "other verbs are not affected");
    let mut renewed = lease.clone();
    renewed.spec.as_mut().unwrap().holder_identity = Some("y".into());
    leases.replace("l", &PostParams::default(), &renewed).await.unwrap();
    let methods: Vec<String> = server.take_requests().into_iter().map(|r| r.method).collect();
    assert_eq!(methods, ["PUT", "PUT", "GET", "PUT"]);
    assert_eq!(server.object::<Lease>("default", "l").unwrap().spec.unwrap().holder_identity.as_deref(), Some("y"));
}

#[tokio::test]
async fn a_controller_reconciles_objects_end_to_end() {
    async fn reconcile(pod: Arc<Pod>, pods: Arc<Api<Pod>>) -> Result<Action, kube::Error> {
        let seen = Patch::Merge(json!({ "metadata": { "annotations": { "danm.k8s.io/seen": "true" } } }));
        pods.patch(pod.metadata.name.as_deref().unwrap_or_default(), &PatchParams::default(), &seen).await?;
        Ok(Action::await_change())
    }
    fn retry(_: Arc<Pod>, _: &kube::Error, _: Arc<Api<Pod>>) -> Action {
        Action::requeue(Duration::from_millis(10))
    }
    let server = FakeApiServer::new();
    server.seed(&pod("default", "before", json!({})));
    let pods: Api<Pod> = Api::default_namespaced(server.client());
    server.inject(Fault::status(500).method("PATCH").times(1));
    let controller = Controller::new(pods.clone(), watcher::Config::default())
        .run(reconcile, retry, Arc::new(pods.clone()))
        .for_each(|_| async {});
    let task = tokio::spawn(controller);

    pods.create(&PostParams::default(), &pod("default", "after", json!({}))).await.unwrap();
    let seen = |name: &str| {
        server
            .object::<Pod>("default", name)
            .and_then(|p| p.metadata.annotations)
            .is_some_and(|a| a.contains_key("danm.k8s.io/seen"))
    };
    tokio::time::timeout(WAIT, async {
        while !(seen("before") && seen("after")) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("both pods reconciled, one after a retried failure");
    task.abort();
}

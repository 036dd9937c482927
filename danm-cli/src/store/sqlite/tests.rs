use danm_core::ipam::{Family, PoolKey};
use danm_core::model::{NetworkKey, NetworkKind, ObjectMeta, PodRecord};
use danm_core::store::EndpointQuery;
use futures::executor::block_on;

use super::*;

fn pod(ns: &str, name: &str) -> Object {
    Object::Pod(PodRecord { metadata: ObjectMeta::new(name, Some(ns)), ..PodRecord::default() })
}

fn query_plan(conn: &Connection, select: &query::Select) -> Vec<String> {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {}", select.sql())).unwrap();
    let rows = stmt.query_map(params_from_iter(select.params()), |r| r.get::<_, String>(3)).unwrap();
    rows.map(Result::unwrap).collect()
}

#[test]
fn every_query_is_answered_from_a_key_range_or_an_index_in_key_order() {
    let store = SqliteStore::open_in_memory().unwrap();
    let conn = store.lock().unwrap();
    let net = NetworkKey::new(NetworkKind::DanmNet, "a", "n1");
    let endpoint_queries = [
        EndpointQuery::container("c1"),
        EndpointQuery::pod("u1"),
        EndpointQuery::network(net.clone()),
        EndpointQuery::network(NetworkKey::new(NetworkKind::ClusterNetwork, "", "c1")),
        EndpointQuery { namespace: Some("a".into()), ..EndpointQuery::default() },
        EndpointQuery { namespace: Some("a".into()), pod_uid: Some("u1".into()), ..EndpointQuery::default() },
        EndpointQuery {
            namespace: Some("a".into()),
            pod_uid: Some("u1".into()),
            container_id: Some("c1".into()),
            network: Some(net.clone()),
            host: None,
        },
    ];
    let mut queries: Vec<Query> = endpoint_queries.into_iter().map(Query::Endpoints).collect();
    for kind in [None, Some(NetworkKind::DanmNet), Some(NetworkKind::ClusterNetwork)] {
        queries.push(Query::Networks { kind, namespace: Some("a".into()) });
    }
    queries.push(Query::Networks { kind: Some(NetworkKind::TenantNetwork), namespace: None });
    queries.push(Query::Pods { namespace: Some("a".into()) });
    queries.push(Query::Blocks(PoolKey::new(net, Family::V6)));
    for q in &queries {
        for select in query::plan(q) {
            let plan = query_plan(&conn, &select);
            assert!(plan.iter().all(|d| d.starts_with("SEARCH ")), "{q:?} is not answered from an index: {plan:?}");
            assert!(!plan.iter().any(|d| d.contains("TEMP B-TREE")), "{q:?} needs a sort: {plan:?}");
        }
    }
    // Listing a whole kind reads that kind's table in key order, and nothing else.
    for q in [Query::TenantConfigs, Query::Pods { namespace: None }, Query::Endpoints(EndpointQuery::default())] {
        for select in query::plan(&q) {
            let plan = query_plan(&conn, &select);
            assert_eq!(plan, [format!("SCAN {}", select.table.name())], "{q:?}");
        }
    }
}

#[test]
fn objects_and_the_revision_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("danm.db");
    let first = SqliteStore::open(&path).unwrap();
    let v1 = block_on(first.create(&pod("a", "p1"))).unwrap();
    let other = SqliteStore::open(&path).unwrap();
    let v2 = block_on(other.create(&pod("a", "p2"))).unwrap();
    assert!(v2.as_str().parse::<i64>().unwrap() > v1.as_str().parse::<i64>().unwrap(), "one counter per file");
    drop((first, other));

    let again = SqliteStore::open(&path).unwrap();
    let got = block_on(again.get(&pod("a", "p1").key())).unwrap().unwrap();
    assert_eq!(got, Versioned { version: v1, value: pod("a", "p1") });
    block_on(again.delete(&pod("a", "p2").key(), Some(&v2))).unwrap();
    let v3 = block_on(again.create(&pod("a", "p2"))).unwrap();
    assert!(v3.as_str().parse::<i64>().unwrap() > v2.as_str().parse::<i64>().unwrap() + 1, "delete is a write");

    let raw = Connection::open(&path).unwrap();
    let mode: String = raw.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn open_names_a_missing_directory_and_refuses_another_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nowhere").join("danm.db");
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(err, SqliteError::MissingDirectory { .. }), "{err:?}");
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    assert!(!path.parent().unwrap().exists(), "the directory was created");

    let path = dir.path().join("danm.db");
    drop(SqliteStore::open(&path).unwrap());
    Connection::open(&path).unwrap().execute("UPDATE meta SET value = 99 WHERE name = 'schema_version'", []).unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(err, SqliteError::SchemaVersion { found: 99, supported: SCHEMA_VERSION, .. }), "{err:?}");
}

#[test]
fn a_corrupt_value_is_invalid_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("danm.db");
    let store = SqliteStore::open(&path).unwrap();
    block_on(store.create(&pod("a", "p1"))).unwrap();
    Connection::open(&path).unwrap().execute("UPDATE pods SET value = '{\"metadata\": 7}'", []).unwrap();
    let err = block_on(store.get(&pod("a", "p1").key())).unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
    let err = block_on(store.list(&Query::Pods { namespace: None })).unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
}

#[test]
fn a_writer_locked_out_past_the_timeout_gets_a_transient_backend_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("danm.db");
    let store = SqliteStore::open(&path).unwrap();
    store.lock().unwrap().busy_timeout(Duration::from_millis(50)).unwrap();
    let holder = Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();

    let err = block_on(store.create(&pod("a", "p1"))).unwrap_err();
    let StoreError::Backend(source) = &err else { panic!("expected a backend error, got {err:?}") };
    let sqlite = source.downcast_ref::<SqliteError>().expect("the source is the SQLite error");
    assert!(sqlite.is_transient(), "{sqlite:?}");
    // Readers are not blocked by the writer.
    assert_eq!(block_on(store.get(&pod("a", "p1").key())).unwrap(), None);

    holder.execute_batch("ROLLBACK").unwrap();
    block_on(store.create(&pod("a", "p1"))).unwrap();
}

#[test]
fn connections_opening_a_new_file_at_once_all_succeed() {
    // Before any of them has switched the file to WAL mode, SQLite answers some of them "busy" at once.
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("fresh-{round}.db"));
        let barrier = std::sync::Barrier::new(8);
        std::thread::scope(|s| {
            let opens: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        SqliteStore::open(&path)
                    })
                })
                .collect();
            for open in opens {
                open.join().unwrap().expect("a concurrent open failed");
            }
        });
    }
}

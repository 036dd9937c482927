//! The Datastore conformance suite against every backend this workspace has: the SQLite store (on a file
//! and in memory) and the in-memory store.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use danm_cli::store::SqliteStore;
use danm_core::store::{MemoryStore, conformance};
use futures::executor::block_on;

#[test]
fn sqlite_file_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let n = AtomicUsize::new(0);
    block_on(conformance::run_all(|| {
        let path = dir.path().join(format!("store-{}.db", n.fetch_add(1, Ordering::Relaxed)));
        SqliteStore::open(path).unwrap()
    }));
    assert!(n.load(Ordering::Relaxed) > 10, "every check gets a fresh file");
}

#[test]
fn sqlite_memory_store_conforms() {
    block_on(conformance::run_all(|| SqliteStore::open_in_memory().unwrap()));
}

#[test]
fn memory_store_conforms() {
    block_on(conformance::run_all(MemoryStore::new));
}

#[test]
fn sqlite_handles_on_threads_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("race.db");
    let handles: Vec<_> = (0..4).map(|_| SqliteStore::open(&path).unwrap()).collect();
    let conflicts = conformance::cas_race_threads(handles, 150);
    println!("4 connections x 150 increments: {conflicts} conflicts retried");
}

#[test]
fn memory_store_on_threads_loses_no_update() {
    let store = Arc::new(MemoryStore::new());
    conformance::cas_race_threads((0..4).map(|_| store.clone()).collect(), 500);
}

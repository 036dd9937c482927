//! Several OS processes, each with its own connection, racing compare-and-swap increments on one record
//! of one SQLite file: no update may be lost. The test binary re-runs itself as the children; the child
//! role is an ignored test that does its work only when `DANM_SQLITE_CHILD_DB` names the file. The
//! children start together: each waits for a start file the parent creates once all are running.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use danm_cli::store::SqliteStore;
use danm_core::ipam::{AllocatorId, Cursor, Family, PoolKey};
use danm_core::model::{NetworkKey, NetworkKind};
use danm_core::store::{Datastore, Object, StoreError};
use futures::executor::block_on;

const CHILD_DB: &str = "DANM_SQLITE_CHILD_DB";
const START: &str = "start";
const PROCESSES: usize = 4;
const INCREMENTS: u128 = 250;

fn counter(n: u128) -> Object {
    let pool = PoolKey::new(NetworkKey::new(NetworkKind::DanmNet, "race", "counter"), Family::V4);
    Object::Cursor { pool, cursor: Cursor { allocator: AllocatorId::new("counter"), block: n } }
}

#[test]
fn processes_racing_on_one_file_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    // The children race on creating the file, its schema and the counter too.
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(&exe)
                .args(["--exact", "child_increments", "--ignored", "--nocapture", "--test-threads=1"])
                .env(CHILD_DB, &path)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    std::fs::write(dir.path().join(START), b"").unwrap();
    let mut conflicts = 0u64;
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "a child failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        let line = stdout
            .lines()
            .find_map(|l| l.split_once("conflicts=").map(|(_, n)| n))
            .expect("the child ran its increments");
        conflicts += line.trim().parse::<u64>().unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let got = block_on(store.get(&counter(0).key())).unwrap().unwrap();
    let Object::Cursor { cursor, .. } = got.value else { panic!("the counter changed kind") };
    println!("{PROCESSES} processes x {INCREMENTS} increments: {conflicts} conflicts retried");
    assert_eq!(cursor.block, PROCESSES as u128 * INCREMENTS, "an update was lost or invented");
}

/// The child role: increments the counter in the file named by `DANM_SQLITE_CHILD_DB`.
#[test]
#[ignore = "run by processes_racing_on_one_file_lose_no_update as a child process"]
fn child_increments() {
    let Some(path) = std::env::var_os(CHILD_DB) else { return };
    let start = Path::new(&path).with_file_name(START);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !start.exists() {
        assert!(Instant::now() < deadline, "the parent never gave the start signal");
        std::thread::sleep(Duration::from_millis(1));
    }
    let store = SqliteStore::open(path).unwrap();
    match block_on(store.create(&counter(0))) {
        Ok(_) | Err(StoreError::Conflict { .. }) => {}
        Err(e) => panic!("creating the counter failed: {e:?}"),
    }
    let (mut done, mut conflicts) = (0, 0u64);
    while done < INCREMENTS {
        let got = block_on(store.get(&counter(0).key())).unwrap().unwrap();
        let Object::Cursor { cursor, .. } = got.value else { panic!("the counter changed kind") };
        match block_on(store.update(&counter(cursor.block + 1), &got.version)) {
            Ok(_) => done += 1,
            Err(StoreError::Conflict { .. }) => conflicts += 1,
            Err(e) => panic!("incrementing failed: {e:?}"),
        }
    }
    println!("conflicts={conflicts}");
}

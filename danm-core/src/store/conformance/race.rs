//! Compare-and-swap increments racing on one object: every successful write counts, none is lost.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::executor::block_on;

use super::fixtures;
use super::{create, read};
use crate::ipam::Family;
use crate::model::NetworkKind;
use crate::store::{Datastore, Object, ObjectKey, StoreError};

/// The counter: a cursor whose block number is the count.
fn counter(n: u128) -> Object {
    let pool = fixtures::pool(NetworkKind::DanmNet, "race", "counter", Family::V4);
    fixtures::cursor(&pool, "counter", n)
}

async fn count<S: Datastore + ?Sized>(store: &S, key: &ObjectKey) -> u128 {
    match read(store, key).await {
        Some((_, Object::Cursor { cursor, .. })) => cursor.block,
        other => panic!("the counter {key} is gone or changed kind: {other:?}"),
    }
}

/// Returns `Pending` once (waking itself at once), so that other futures polled by the same executor run
/// between a read and the write that depends on it.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Adds one to the counter `increments` times, each a read and a compare-and-swap write retried after a
/// conflict; returns how many conflicts it met.
async fn increment<S: Datastore + ?Sized>(store: &S, increments: usize) -> u64 {
    let key = counter(0).key();
    let (mut done, mut conflicts) = (0, 0);
    while done < increments {
        let Some((version, Object::Cursor { cursor, .. })) = read(store, &key).await else {
            panic!("the counter {key} is gone or changed kind");
        };
        YieldNow(false).await;
        match store.update(&counter(cursor.block + 1), &version).await {
            Ok(_) => done += 1,
            Err(StoreError::Conflict { .. }) => conflicts += 1,
            Err(e) => panic!("incrementing {key} failed: {e:?}"),
        }
    }
    conflicts
}

/// `tasks` futures, polled together on the caller's executor, each add one to a counter `increments`
/// times with read and compare-and-swap; every task reads before any writes, so they do race. The count
/// must end at exactly `tasks * increments`: no successful write lost, no failed one applied.
pub async fn cas_race<S: Datastore + ?Sized>(store: &S, tasks: usize, increments: usize) {
    let key = counter(0).key();
    create(store, &counter(0)).await;
    let conflicts: u64 = futures::future::join_all((0..tasks).map(|_| increment(store, increments))).await.iter().sum();
    let total = tasks * increments;
    assert_eq!(count(store, &key).await, total as u128, "concurrent compare-and-swap lost or invented updates");
    assert!(tasks < 2 || increments == 0 || conflicts > 0, "the tasks never raced: the check proves nothing");
}

/// Like [`cas_race`], with one OS thread per handle, each driving its own increments with
/// [`block_on`]. The handles must reach one store (clones of an `Arc`, or connections to one file). For
/// backends whose futures need no runtime context. Returns how many conflicts were retried.
pub fn cas_race_threads<S: Datastore>(handles: Vec<S>, increments: usize) -> u64 {
    let Some(first) = handles.first() else { return 0 };
    let key = counter(0).key();
    block_on(create(first, &counter(0)));
    let conflicts = std::thread::scope(|scope| {
        let threads: Vec<_> = handles.iter().map(|h| scope.spawn(move || block_on(increment(h, increments)))).collect();
        threads.into_iter().map(|t| t.join().expect("an incrementing thread panicked")).sum()
    });
    let total = handles.len() * increments;
    assert_eq!(block_on(count(first, &key)), total as u128, "concurrent compare-and-swap lost or invented updates");
    conflicts
}

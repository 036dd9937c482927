//! Watch streams: JSON-lines `WatchEvent`s replayed from the history, then live, with bookmarks.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{Instant, sleep_until};

use super::error::ApiError;
use super::resource::ResourceType;
use super::route::Query;
use super::selector::Filter;
use super::state::{Change, ChangeKind, Shared, State, lock};

/// The annotation of the bookmark that ends the initial events of a streaming list.
const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";

/// Opens a watch of kind `rt`, seen through `filter`, with the options of `query`.
///
/// Without a resourceVersion (or with `0`, or with `sendInitialEvents`), it starts with an `ADDED` event
/// per existing object; with one, it replays the kept changes after it, or sends one `ERROR` event with a
/// 410 `Status` and ends when those are no longer kept.
pub(crate) fn open(
    shared: &Shared,
    state: &mut State,
    rt: &ResourceType,
    filter: Filter,
    query: &Query,
) -> Result<BoxStream<'static, Bytes>, ApiError> {
    let since = match query.resource_version.as_deref() {
        None | Some("0") => None,
        Some(rv) => {
            Some(rv.parse::<u64>().map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?)
        }
    };
    let mut pending = VecDeque::new();
    match since.filter(|_| !query.send_initial_events) {
        Some(since) => match state.changes_since(rt, since) {
            Ok(changes) => pending.extend(changes.iter().filter_map(|c| event_line(c, &filter))),
            Err(expired) => return Ok(stream::iter([line("ERROR", &expired.to_status())]).boxed()),
        },
        None => pending.extend(state.objects_of(rt).filter(|o| filter.matches(o)).map(|o| line("ADDED", o))),
    }
    if query.send_initial_events || query.bookmarks {
        pending.push_back(bookmark(rt, state.rv(), query.send_initial_events));
    }
    let (changes, closed) = state.subscribe(rt);
    let interval = state.bookmark_interval.filter(|_| query.bookmarks);
    let watch = Watch {
        shared: shared.clone(),
        rt: rt.clone(),
        filter,
        changes,
        closed,
        pending,
        deadline: query.timeout.map(|t| Instant::now() + t),
        next_bookmark: interval.map(|i| Instant::now() + i),
        interval,
    };
    Ok(stream::unfold(watch, Watch::next).boxed())
}

/// One open watch: lines ready to send, and the changes still to read.
struct Watch {
    shared: Shared,
    rt: ResourceType,
    filter: Filter,
    changes: UnboundedReceiver<Arc<Change>>,
    closed: Arc<AtomicBool>,
    pending: VecDeque<Bytes>,
    deadline: Option<Instant>,
    interval: Option<Duration>,
    next_bookmark: Option<Instant>,
}

impl Watch {
    /// The next line, or `None` when the watch ends (its timeout passed or the history was compacted).
    async fn next(mut self) -> Option<(Bytes, Self)> {
        loop {
            if self.closed.load(Ordering::SeqCst) {
                return None;
            }
            if let Some(line) = self.pending.pop_front() {
                return Some((line, self));
            }
            let never = Instant::now() + Duration::from_secs(365 * 24 * 3600);
            tokio::select! {
                change = self.changes.recv() => match change {
                    Some(change) => self.pending.extend(event_line(&change, &self.filter)),
                    None => return None,
                },
                () = sleep_until(self.next_bookmark.unwrap_or(never)), if self.next_bookmark.is_some() => {
                    self.bookmark_now();
                }
                () = sleep_until(self.deadline.unwrap_or(never)), if self.deadline.is_some() => return None,
            }
        }
    }

    /// Queues the changes committed so far, then a bookmark at the current resourceVersion: under the lock,
    /// every change up to that version is already in the channel.
    fn bookmark_now(&mut self) {
        let state = lock(&self.shared);
        while let Ok(change) = self.changes.try_recv() {
            self.pending.extend(event_line(&change, &self.filter));
        }
        self.pending.push_back(bookmark(&self.rt, state.rv(), false));
        self.next_bookmark = self.interval.map(|i| Instant::now() + i);
    }
}

/// The event a watcher through `filter` sees for `change`, if any: an object that starts or stops
/// matching is `ADDED` or `DELETED`, as the API server's watch cache does.
fn event_line(change: &Change, filter: &Filter) -> Option<Bytes> {
    let now = filter.matches(&change.object);
    let before = change.old.as_ref().is_some_and(|old| filter.matches(old));
    let kind = match (change.kind, before, now) {
        (ChangeKind::Added, _, true) | (ChangeKind::Modified, false, true) => "ADDED",
        (ChangeKind::Modified, true, true) => "MODIFIED",
        (ChangeKind::Modified, true, false) | (ChangeKind::Deleted, true, _) | (ChangeKind::Deleted, _, true) => {
            "DELETED"
        }
        _ => return None,
    };
    Some(line(kind, &change.object))
}

fn bookmark(rt: &ResourceType, rv: u64, initial_events_end: bool) -> Bytes {
    let mut object = json!({
        "kind": rt.kind(),
        "apiVersion": rt.api_version(),
        "metadata": { "resourceVersion": rv.to_string() },
    });
    if initial_events_end {
        object["metadata"]["annotations"] = json!({ INITIAL_EVENTS_END: "true" });
    }
    line("BOOKMARK", &object)
}

fn line(kind: &str, object: &Value) -> Bytes {
    #[derive(serde::Serialize)]
    struct Event<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        object: &'a Value,
    }
    let mut bytes = serde_json::to_vec(&Event { kind, object }).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

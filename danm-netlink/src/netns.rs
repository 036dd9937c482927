//! Doing netlink work inside a network namespace.
//!
//! A netlink socket belongs, for its whole life, to the network namespace of the thread that opened it,
//! and `/proc/sys/net` shows the namespace of the thread that reads it. So every operation runs on a
//! thread of its own: the thread enters each namespace it needs with `setns(2)`, opens one rtnetlink
//! connection in each, and drives them with a current-thread tokio runtime. The thread ends with the
//! operation, so no thread of the caller (or of its async runtime) ever changes namespace.

use std::fs::File;
use std::future::Future;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use danm_core::provision::ProvisionError;
use futures::channel::oneshot;
use nix::errno::Errno;
use nix::sched::{CloneFlags, setns};
use rtnetlink::Handle;

use crate::error::kernel;

/// An open network namespace. The open file keeps the namespace alive and lets a thread enter it.
#[derive(Debug, Clone)]
pub(crate) struct Netns {
    file: Arc<File>,
    path: PathBuf,
}

impl Netns {
    /// Opens the namespace at `path`; `None` when there is nothing at that path.
    pub(crate) fn open(path: &Path) -> Result<Option<Self>, ProvisionError> {
        match File::open(path) {
            Ok(file) => Ok(Some(Self { file: Arc::new(file), path: path.to_owned() })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(kernel(format!("opening network namespace {}", path.display()), e)),
        }
    }

    /// Opens the namespace at `path`, which must exist.
    pub(crate) fn open_existing(path: &Path) -> Result<Self, ProvisionError> {
        Self::open(path)?.ok_or_else(|| ProvisionError::NoNetns { path: path.to_owned() })
    }

    /// The namespace of the calling thread.
    pub(crate) fn current() -> Result<Self, ProvisionError> {
        Self::open_existing(Path::new("/proc/thread-self/ns/net"))
    }

    /// The descriptor to move a link into this namespace with (valid while `self` lives).
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Moves the calling thread into this namespace. A thread already there stays without `setns(2)`,
    /// so work in the process's own namespace (netwatcher's host interfaces) needs `CAP_NET_ADMIN` only,
    /// not `CAP_SYS_ADMIN`.
    fn enter(&self) -> Result<(), Errno> {
        if self.is_current() {
            return Ok(());
        }
        setns(self.file.as_fd(), CloneFlags::CLONE_NEWNET)
    }

    /// Whether the calling thread is in this namespace (same device and inode of the nsfs file).
    fn is_current(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (self.file.metadata(), std::fs::metadata("/proc/thread-self/ns/net")) {
            (Ok(ours), Ok(current)) => ours.dev() == current.dev() && ours.ino() == current.ino(),
            _ => false,
        }
    }
}

/// Runs `job` on a new thread with one rtnetlink handle in `netns`; the thread stays in `netns`.
pub(crate) async fn in_netns<T, F, Fut>(netns: &Netns, job: F) -> Result<T, ProvisionError>
where
    T: Send + 'static,
    F: FnOnce(Handle) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, ProvisionError>>,
{
    run(vec![netns.clone()], move |mut handles| {
        let handle = handles.remove(0);
        job(handle)
    })
    .await
}

/// Runs `job` on a new thread with a handle in `first` and one in `second`; the thread stays in
/// `second` (so `/proc/sys/net` shows `second`).
pub(crate) async fn in_two<T, F, Fut>(first: &Netns, second: &Netns, job: F) -> Result<T, ProvisionError>
where
    T: Send + 'static,
    F: FnOnce(Handle, Handle) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, ProvisionError>>,
{
    run(vec![first.clone(), second.clone()], move |mut handles| {
        let second = handles.remove(1);
        let first = handles.remove(0);
        job(first, second)
    })
    .await
}

/// Whether a namespace at `path` can be entered: what `delete` needs to tell a namespace from a
/// stale mount point (an empty file left after the namespace was unmounted).
pub(crate) fn is_enterable(netns: &Netns) -> bool {
    // Entering on a throwaway thread leaves the caller's namespace alone.
    let netns = netns.clone();
    std::thread::spawn(move || netns.enter().is_ok()).join().unwrap_or(false)
}

async fn run<T, F, Fut>(spaces: Vec<Netns>, job: F) -> Result<T, ProvisionError>
where
    T: Send + 'static,
    F: FnOnce(Vec<Handle>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, ProvisionError>>,
{
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("danm-netns".to_owned())
        .spawn(move || {
            // The receiver may be gone if the caller's future was dropped; nothing to report then.
            let _ = tx.send(on_thread(spaces, job));
        })
        .map_err(|e| kernel("starting a namespace worker thread", e))?;
    rx.await.map_err(|_| kernel("running a namespace worker thread", "the thread panicked"))?
}

fn on_thread<T, F, Fut>(spaces: Vec<Netns>, job: F) -> Result<T, ProvisionError>
where
    F: FnOnce(Vec<Handle>) -> Fut,
    Fut: Future<Output = Result<T, ProvisionError>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| kernel("starting a tokio runtime for netlink", e))?;
    runtime.block_on(async move {
        let mut handles = Vec::with_capacity(spaces.len());
        for netns in &spaces {
            netns.enter().map_err(|e| kernel(format!("entering network namespace {}", netns.path.display()), e))?;
            let (connection, handle, _) =
                rtnetlink::new_connection().map_err(|e| kernel("opening a netlink socket", e))?;
            tokio::spawn(connection);
            handles.push(handle);
        }
        job(handles).await
    })
}

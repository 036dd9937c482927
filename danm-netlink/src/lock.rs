//! The node-wide lock on host interface records, shared by every process that changes them.
//!
//! A host interface's holders live in its alias, and adding or dropping one is a read, a change and a
//! write. Within one provisioner a mutex orders them; across processes (the `danm` plugin of every ADD
//! and netwatcher, on one node) an exclusive `flock(2)` on one file does, so no update is lost.

use std::fs::{File, OpenOptions};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

/// Where the `danm` plugin and netwatcher take the lock by default: under `/run`, which is the host's
/// for the plugin and a `hostPath` mount for netwatcher.
pub const NODE_LOCK_PATH: &str = "/run/danm/host-interfaces.lock";

/// The lock, held until dropped.
#[derive(Debug)]
pub(crate) struct NodeLock {
    _file: Option<Flock<File>>,
}

impl NodeLock {
    /// Takes the lock at `path`, waiting for other holders, creating the file and its directory if
    /// needed. Best effort: where the file cannot be opened or locked (a read-only `/run`), the caller
    /// goes on with only its process's own ordering, as without a lock path.
    pub(crate) fn take(path: Option<&Path>) -> Self {
        let Some(path) = path else { return Self { _file: None } };
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(path).ok();
        Self { _file: file.and_then(|f| Flock::lock(f, FlockArg::LockExclusive).ok()) }
    }

    /// Whether the lock is held (and not skipped).
    #[cfg(test)]
    pub(crate) fn is_held(&self) -> bool {
        self._file.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_excludes_other_holders_until_dropped() {
        let dir = std::env::temp_dir().join(format!("danm-lock-test-{}", std::process::id()));
        let path = dir.join("sub").join("host-interfaces.lock");
        let first = NodeLock::take(Some(&path));
        assert!(first.is_held());
        let other = File::open(&path).unwrap();
        let Err((other, _)) = Flock::lock(other, FlockArg::LockExclusiveNonblock) else { panic!("not exclusive") };
        drop(first);
        assert!(Flock::lock(other, FlockArg::LockExclusiveNonblock).is_ok());
        assert!(!NodeLock::take(None).is_held());
        assert!(!NodeLock::take(Some(Path::new("/proc/no/such/dir/lock"))).is_held());
        let _ = std::fs::remove_dir_all(dir);
    }
}

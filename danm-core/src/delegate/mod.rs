//! The DelegateExecutor seam: running other CNI plugins (ADD, DEL, CHECK, ...) and reading their
//! static configurations.
//!
//! Backends: the process executor of `danm-cli` (executes `<plugin>` from `CNI_PATH` with the CNI
//! environment and config on stdin), and `ScriptedExecutor` (feature `test-util`) for tests.

#[cfg(any(test, feature = "test-util"))]
mod scripted;

use std::fmt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::cni::CniError;
#[cfg(any(test, feature = "test-util"))]
pub use scripted::{Scripted, ScriptedExecutor};

/// A CNI verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CniCommand {
    /// `ADD`
    Add,
    /// `DEL`
    Del,
    /// `CHECK`
    Check,
    /// `STATUS`
    Status,
    /// `GC`
    Gc,
    /// `VERSION`
    Version,
}

impl CniCommand {
    /// The `CNI_COMMAND` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "ADD",
            Self::Del => "DEL",
            Self::Check => "CHECK",
            Self::Status => "STATUS",
            Self::Gc => "GC",
            Self::Version => "VERSION",
        }
    }

    /// Parses a `CNI_COMMAND` value (exact, upper case, as the spec writes them).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ADD" => Self::Add,
            "DEL" => Self::Del,
            "CHECK" => Self::Check,
            "STATUS" => Self::Status,
            "GC" => Self::Gc,
            "VERSION" => Self::Version,
            _ => return None,
        })
    }
}

impl fmt::Display for CniCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One run of a delegate plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The plugin's name (its `type`): a name, never a path. Executors refuse anything else.
    pub plugin: String,
    /// The verb.
    pub command: CniCommand,
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_NETNS`, when there is one.
    pub netns: Option<PathBuf>,
    /// `CNI_IFNAME`: the interface name DANM chose.
    pub ifname: String,
    /// `CNI_ARGS`, passed through.
    pub args: String,
    /// The configuration written to the plugin's stdin.
    pub stdin: Vec<u8>,
}

/// Why a delegate run failed.
#[derive(Debug, thiserror::Error)]
pub enum DelegateError {
    /// The plugin name is not a plain name (a path, `..`, whitespace, ...).
    #[error("delegate type `{plugin}` is not a plugin name")]
    BadName {
        /// The rejected name.
        plugin: String,
    },
    /// No executable of that name on the plugin path.
    #[error("delegate plugin `{plugin}` was not found in {path}")]
    NotFound {
        /// The plugin.
        plugin: String,
        /// The directories searched, `:`-separated.
        path: String,
    },
    /// The plugin ran and reported a CNI error.
    #[error("delegate `{plugin}` {command} failed: {error}")]
    Failed {
        /// The plugin.
        plugin: String,
        /// The verb.
        command: CniCommand,
        /// What it reported.
        error: CniError,
    },
    /// The plugin exited unsuccessfully without a CNI error, or was killed by a signal.
    #[error("delegate `{plugin}` {command} exited abnormally ({status}): {stderr}")]
    Crashed {
        /// The plugin.
        plugin: String,
        /// The verb.
        command: CniCommand,
        /// How it ended.
        status: String,
        /// The end of its stderr.
        stderr: String,
    },
    /// The plugin's configuration file could not be read or parsed.
    #[error("delegate configuration {path} is unusable: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Starting or talking to the plugin failed.
    #[error("running delegate `{plugin}` failed")]
    Io {
        /// The plugin.
        plugin: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Runs delegate plugins and reads their static configurations.
///
/// What each method must guarantee:
/// - [`invoke`](Self::invoke) refuses a plugin name that is not a plain name, runs the plugin with the
///   CNI environment of the invocation, and returns its stdout when it exits successfully. A plugin's
///   CNI error is [`DelegateError::Failed`]. **Dropping the returned future stops the plugin**: that is
///   how DANM enforces its time budget.
/// - [`static_config`](Self::static_config) returns the bytes and path of `<NetworkID>.conf` or, when
///   that does not exist, `<NetworkID>.conflist` from the configuration directory; `None` when neither
///   exists. The NetworkID is a plain name; anything else is refused.
#[async_trait]
pub trait DelegateExecutor: Send + Sync {
    /// Runs a delegate plugin.
    async fn invoke(&self, invocation: &Invocation) -> Result<Vec<u8>, DelegateError>;
    /// Reads a static delegate configuration.
    async fn static_config(&self, network_id: &str) -> Result<Option<(PathBuf, Vec<u8>)>, DelegateError>;
}

macro_rules! forward_executor {
    ($ty:ty) => {
        #[async_trait]
        impl<T: DelegateExecutor + ?Sized> DelegateExecutor for $ty {
            async fn invoke(&self, invocation: &Invocation) -> Result<Vec<u8>, DelegateError> {
                (**self).invoke(invocation).await
            }
            async fn static_config(&self, network_id: &str) -> Result<Option<(PathBuf, Vec<u8>)>, DelegateError> {
                (**self).static_config(network_id).await
            }
        }
    };
}

forward_executor!(std::sync::Arc<T>);
forward_executor!(&T);
forward_executor!(Box<T>);

/// Whether `name` is a plain plugin or file name: only `[A-Za-z0-9._-]`, not `.`, no `..`, not empty.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && !name.contains("..")
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The static configuration files looked for, in order, for a NetworkID in `dir`.
pub fn static_config_candidates(dir: &Path, network_id: &str) -> [PathBuf; 2] {
    [dir.join(format!("{network_id}.conf")), dir.join(format!("{network_id}.conflist"))]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names() {
        for ok in ["macvlan", "sriov", "host-local", "a.b_c-1"] {
            assert!(is_plain_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", "../bin/sh", "/usr/bin/x", "a b", "a\nb", "x..y", "ü"] {
            assert!(!is_plain_name(bad), "{bad:?}");
        }
        for c in [
            CniCommand::Add,
            CniCommand::Del,
            CniCommand::Check,
            CniCommand::Status,
            CniCommand::Gc,
            CniCommand::Version,
        ] {
            assert_eq!(CniCommand::parse(c.as_str()), Some(c));
        }
        assert_eq!(CniCommand::parse("add"), None);
    }
}

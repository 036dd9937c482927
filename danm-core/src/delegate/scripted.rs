//! A scripted delegate executor for tests: answers from a script per plugin, keeps the interfaces its
//! "plugins" created, and records every invocation.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{CniCommand, DelegateError, DelegateExecutor, Invocation, is_plain_name};
use crate::cni::{CniError, ErrorCode};

/// How a scripted plugin answers ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scripted {
    /// Succeeds, printing this result JSON.
    Succeed(String),
    /// Fails with a CNI error.
    Fail(String),
    /// Exits abnormally without a CNI error.
    Crash,
    /// Never answers (until the future is dropped).
    Hang,
}

#[derive(Debug, Default)]
struct State {
    scripts: BTreeMap<String, Scripted>,
    configs: BTreeMap<String, (PathBuf, Vec<u8>)>,
    calls: Vec<Invocation>,
    /// (container, ifname) pairs an ADD succeeded for and no DEL removed yet.
    live: BTreeSet<(String, String)>,
}

/// A stateful fake [`DelegateExecutor`]. ADD follows the plugin's [`Scripted`] answer (a plugin without a
/// script succeeds with an empty result); DEL always succeeds and forgets the attachment; CHECK succeeds
/// only for live attachments.
#[derive(Debug, Default)]
pub struct ScriptedExecutor {
    state: Mutex<State>,
}

impl ScriptedExecutor {
    /// An executor with no scripts and no configurations.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets how `plugin` answers ADD.
    pub fn script(&self, plugin: &str, answer: Scripted) {
        self.lock().scripts.insert(plugin.to_owned(), answer);
    }

    /// Makes `static_config(network_id)` return `bytes` as if read from `path`.
    pub fn set_config(&self, network_id: &str, path: impl Into<PathBuf>, bytes: impl Into<Vec<u8>>) {
        self.lock().configs.insert(network_id.to_owned(), (path.into(), bytes.into()));
    }

    /// Every invocation so far.
    pub fn calls(&self) -> Vec<Invocation> {
        self.lock().calls.clone()
    }

    /// The (container, ifname) attachments that were added and not deleted.
    pub fn live(&self) -> BTreeSet<(String, String)> {
        self.lock().live.clone()
    }
}

#[async_trait]
impl DelegateExecutor for ScriptedExecutor {
    async fn invoke(&self, inv: &Invocation) -> Result<Vec<u8>, DelegateError> {
        if !is_plain_name(&inv.plugin) {
            return Err(DelegateError::BadName { plugin: inv.plugin.clone() });
        }
        let script = {
            let mut s = self.lock();
            s.calls.push(inv.clone());
            let key = (inv.container_id.clone(), inv.ifname.clone());
            match inv.command {
                CniCommand::Del => {
                    s.live.remove(&key);
                    return Ok(Vec::new());
                }
                CniCommand::Check => {
                    return if s.live.contains(&key) {
                        Ok(Vec::new())
                    } else {
                        Err(DelegateError::Failed {
                            plugin: inv.plugin.clone(),
                            command: inv.command,
                            error: CniError::new(
                                ErrorCode::plugin(100).unwrap_or(ErrorCode::IO_FAILURE),
                                "interface gone",
                            ),
                        })
                    };
                }
                CniCommand::Add => {}
                _ => return Ok(Vec::new()),
            }
            let script = s.scripts.get(&inv.plugin).cloned().unwrap_or(Scripted::Succeed("{}".into()));
            if let Scripted::Succeed(_) = script {
                s.live.insert(key);
            }
            script
        };
        match script {
            Scripted::Succeed(out) => Ok(out.into_bytes()),
            Scripted::Fail(msg) => Err(DelegateError::Failed {
                plugin: inv.plugin.clone(),
                command: inv.command,
                error: CniError::new(ErrorCode::plugin(100).unwrap_or(ErrorCode::IO_FAILURE), msg),
            }),
            Scripted::Crash => Err(DelegateError::Crashed {
                plugin: inv.plugin.clone(),
                command: inv.command,
                status: "signal 11".into(),
                stderr: "segmentation fault".into(),
            }),
            Scripted::Hang => {
                // Never completes; the caller's time budget drops this future.
                futures::future::pending::<()>().await;
                Ok(Vec::new())
            }
        }
    }

    async fn static_config(&self, network_id: &str) -> Result<Option<(PathBuf, Vec<u8>)>, DelegateError> {
        if !is_plain_name(network_id) {
            return Err(DelegateError::BadName { plugin: network_id.to_owned() });
        }
        Ok(self.lock().configs.get(network_id).cloned())
    }
}

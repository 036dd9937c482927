//! [`ProcessExecutor`]: the `DelegateExecutor` that runs CNI plugins as child processes and reads
//! static delegate configurations from the CNI configuration directory.
//!
//! A plugin is looked up by its plain name in each `CNI_PATH` directory in turn (the first regular,
//! executable file wins) and started with a cleared environment holding only `PATH` and the CNI
//! variables of the invocation. The child runs in a process group of its own: dropping the future of
//! [`ProcessExecutor::invoke`] before the plugin exits kills the whole group, so neither the plugin
//! nor anything it started (an IPAM plugin, a shell's children) outlives DANM's time budget.

mod capture;
#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use async_trait::async_trait;
use danm_core::cni::CniError;
use danm_core::cni::skel::{CNI_ARGS, CNI_COMMAND, CNI_CONTAINERID, CNI_IFNAME, CNI_NETNS, CNI_PATH, MAX_CONFIG_BYTES};
use danm_core::delegate::{DelegateError, DelegateExecutor, Invocation, is_plain_name, static_config_candidates};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use capture::{GroupKill, read_capped, read_file_capped, read_tail};

/// The most a plugin may print on stdout, in bytes; more is an error.
pub const MAX_STDOUT_BYTES: usize = 4 << 20;
/// How much of the end of a plugin's stderr is kept for error messages, in bytes.
pub const STDERR_TAIL_BYTES: usize = 4096;
/// The largest static configuration file read, in bytes.
pub const MAX_CONFIG_FILE_BYTES: usize = MAX_CONFIG_BYTES;

/// Runs delegate plugins from the plugin search path and reads static configurations from the CNI
/// configuration directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessExecutor {
    plugin_path: Vec<PathBuf>,
    conf_dir: PathBuf,
}

impl ProcessExecutor {
    /// An executor searching `plugin_path` (the `CNI_PATH` directories, in order) for plugins and
    /// `conf_dir` (DANM's `cniDir`) for static configurations.
    pub fn new(plugin_path: impl IntoIterator<Item = impl Into<PathBuf>>, conf_dir: impl Into<PathBuf>) -> Self {
        Self { plugin_path: plugin_path.into_iter().map(Into::into).collect(), conf_dir: conf_dir.into() }
    }

    /// The plugin search path.
    pub fn plugin_path(&self) -> &[PathBuf] {
        &self.plugin_path
    }

    /// The static configuration directory.
    pub fn conf_dir(&self) -> &Path {
        &self.conf_dir
    }

    /// The executable for `plugin`: the first `<dir>/<plugin>` on the search path that is a regular
    /// file (after following links) with an execute bit set. `None` for a name that is not plain.
    pub async fn find(&self, plugin: &str) -> Option<PathBuf> {
        if !is_plain_name(plugin) {
            return None;
        }
        for dir in &self.plugin_path {
            let candidate = dir.join(plugin);
            if let Ok(meta) = tokio::fs::metadata(&candidate).await
                && meta.is_file()
                && meta.permissions().mode() & 0o111 != 0
            {
                return Some(candidate);
            }
        }
        None
    }

    /// The search path as a `CNI_PATH` value.
    fn cni_path(&self) -> OsString {
        let mut joined = OsString::new();
        for (n, dir) in self.plugin_path.iter().enumerate() {
            if n > 0 {
                joined.push(":");
            }
            joined.push(dir);
        }
        joined
    }

    fn command(&self, exe: &Path, inv: &Invocation) -> Command {
        let mut cmd = Command::new(exe);
        cmd.env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        cmd.env(CNI_COMMAND, inv.command.as_str())
            .env(CNI_CONTAINERID, &inv.container_id)
            .env(CNI_IFNAME, &inv.ifname)
            .env(CNI_ARGS, &inv.args)
            .env(CNI_PATH, self.cni_path());
        if let Some(netns) = &inv.netns {
            cmd.env(CNI_NETNS, netns);
        }
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true).process_group(0);
        cmd
    }
}

/// Starts `cmd`, retrying briefly while the executable is busy being written (`ETXTBSY`), as it is
/// for a moment when a plugin binary is being installed or when another thread forks while holding
/// it open for writing.
async fn spawn(mut cmd: Command) -> std::io::Result<tokio::process::Child> {
    const ATTEMPTS: u32 = 5;
    let busy = rustix::io::Errno::TXTBSY.raw_os_error();
    let mut attempt = 1;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(busy) && attempt < ATTEMPTS => {
                tokio::time::sleep(std::time::Duration::from_millis(20 * u64::from(attempt))).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

#[async_trait]
impl DelegateExecutor for ProcessExecutor {
    async fn invoke(&self, inv: &Invocation) -> Result<Vec<u8>, DelegateError> {
        if !is_plain_name(&inv.plugin) {
            return Err(DelegateError::BadName { plugin: inv.plugin.clone() });
        }
        let Some(exe) = self.find(&inv.plugin).await else {
            let path = self.cni_path().to_string_lossy().into_owned();
            return Err(DelegateError::NotFound { plugin: inv.plugin.clone(), path });
        };
        let io = |source: std::io::Error| DelegateError::Io { plugin: inv.plugin.clone(), source };
        let mut child = spawn(self.command(&exe, inv)).await.map_err(io)?;
        let mut group = GroupKill::new(child.id());
        let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let write = async {
            if let Some(mut pipe) = stdin {
                match pipe.write_all(&inv.stdin).await {
                    // A plugin may exit without reading its configuration; its exit status tells.
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                    other => other?,
                }
            }
            Ok::<(), std::io::Error>(())
        };
        let (status, (), out, err) = tokio::try_join!(
            child.wait(),
            write,
            read_capped(stdout, MAX_STDOUT_BYTES),
            read_tail(stderr, STDERR_TAIL_BYTES)
        )
        .map_err(io)?;
        // The plugin has been reaped: its process group ID may be reused from now on.
        group.disarm();
        if status.success() {
            if out.overflowed {
                let msg = format!("the plugin printed more than {MAX_STDOUT_BYTES} bytes on stdout");
                return Err(io(std::io::Error::new(std::io::ErrorKind::InvalidData, msg)));
            }
            return Ok(out.bytes);
        }
        if let Ok(error) = CniError::from_slice(&out.bytes) {
            return Err(DelegateError::Failed { plugin: inv.plugin.clone(), command: inv.command, error });
        }
        let tail = if err.is_empty() { capture::tail(&out.bytes, STDERR_TAIL_BYTES) } else { &err[..] };
        Err(DelegateError::Crashed {
            plugin: inv.plugin.clone(),
            command: inv.command,
            status: status.to_string(),
            stderr: String::from_utf8_lossy(tail).trim().to_owned(),
        })
    }

    async fn static_config(&self, network_id: &str) -> Result<Option<(PathBuf, Vec<u8>)>, DelegateError> {
        if !is_plain_name(network_id) {
            return Err(DelegateError::Config {
                path: self.conf_dir.clone(),
                reason: format!("NetworkID `{network_id}` is not a plain file name"),
            });
        }
        for path in static_config_candidates(&self.conf_dir, network_id) {
            match read_file_capped(&path, MAX_CONFIG_FILE_BYTES).await {
                Ok(Some(bytes)) => return Ok(Some((path, bytes))),
                Ok(None) => {}
                Err(reason) => return Err(DelegateError::Config { path, reason }),
            }
        }
        Ok(None)
    }
}

//! Bounded reading of a child's output and of configuration files, and the guard that kills a
//! plugin's process group when its invocation is abandoned.

use std::io::ErrorKind;
use std::path::Path;

use rustix::process::{Pid, Signal, kill_process_group};
use tokio::io::{AsyncRead, AsyncReadExt};

/// What was read from a stream with a cap.
pub(super) struct Capped {
    /// The first bytes, up to the cap.
    pub(super) bytes: Vec<u8>,
    /// Whether the stream went on past the cap (the rest was read and dropped).
    pub(super) overflowed: bool,
}

/// Reads `stream` to its end, keeping the first `cap` bytes. Reading on past the cap keeps the child
/// from blocking on a full pipe.
pub(super) async fn read_capped(stream: Option<impl AsyncRead + Unpin>, cap: usize) -> std::io::Result<Capped> {
    let mut out = Capped { bytes: Vec::new(), overflowed: false };
    let Some(mut stream) = stream else { return Ok(out) };
    let mut buf = [0u8; 8192];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(out);
        }
        let room = cap.saturating_sub(out.bytes.len());
        out.bytes.extend_from_slice(&buf[..n.min(room)]);
        out.overflowed |= n > room;
    }
}

/// Reads `stream` to its end, keeping its last `cap` bytes.
pub(super) async fn read_tail(stream: Option<impl AsyncRead + Unpin>, cap: usize) -> std::io::Result<Vec<u8>> {
    let mut kept = Vec::new();
    let Some(mut stream) = stream else { return Ok(kept) };
    let mut buf = [0u8; 8192];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(tail(&kept, cap).to_vec());
        }
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > cap.saturating_mul(2) {
            kept.drain(..kept.len() - cap);
        }
    }
}

/// The last `cap` bytes of `bytes`.
pub(super) fn tail(bytes: &[u8], cap: usize) -> &[u8] {
    &bytes[bytes.len().saturating_sub(cap)..]
}

/// Reads the regular file at `path` if it exists: `Ok(None)` when it does not, an error message when
/// it is not a regular file, cannot be read, or holds more than `cap` bytes.
pub(super) async fn read_file_capped(path: &Path, cap: usize) -> Result<Option<Vec<u8>>, String> {
    let file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot open it: {e}")),
    };
    let meta = file.metadata().await.map_err(|e| format!("cannot inspect it: {e}"))?;
    if !meta.is_file() {
        return Err("it is not a regular file".to_owned());
    }
    let mut bytes = Vec::new();
    let limit = u64::try_from(cap).map_or(u64::MAX, |c| c.saturating_add(1));
    file.take(limit).read_to_end(&mut bytes).await.map_err(|e| format!("cannot read it: {e}"))?;
    if bytes.len() > cap {
        return Err(format!("it is larger than {cap} bytes"));
    }
    Ok(Some(bytes))
}

/// Kills a child's process group with `SIGKILL` when dropped while armed.
///
/// The child must lead its own process group (spawned with `process_group(0)`), and the guard must be
/// disarmed once the child has been reaped, after which its group ID may be reused.
pub(super) struct GroupKill(Option<Pid>);

impl GroupKill {
    /// A guard for the group led by process `id` (none when the child has no ID).
    pub(super) fn new(id: Option<u32>) -> Self {
        Self(id.and_then(|id| i32::try_from(id).ok()).and_then(Pid::from_raw))
    }

    /// Stops the guard from killing anything.
    pub(super) fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            // The group may already be gone; there is nothing to do about a failure here.
            let _ = kill_process_group(pid, Signal::KILL);
        }
    }
}

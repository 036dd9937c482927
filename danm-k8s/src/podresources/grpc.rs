//! Unary gRPC calls over HTTP/2 on a unix socket: as much of gRPC as the kubelet's PodResources API
//! needs. A request is one length-prefixed message (a 1-byte compressed flag, never set, and a 4-byte
//! big-endian length) POSTed as `application/grpc` with `te: trailers` and the caller's deadline in
//! `grpc-timeout`; the answer's status is `grpc-status`/`grpc-message`, in the trailers or, for an
//! answer without a body, in the headers.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// The gRPC status codes this client tells apart.
pub(crate) mod code {
    /// Success.
    pub const OK: u32 = 0;
    /// An error the server did not classify: what a Go gRPC server answers for a plain Go error.
    pub const UNKNOWN: u32 = 2;
    /// Out of a quota: the kubelet rate-limits this API.
    pub const RESOURCE_EXHAUSTED: u32 = 8;
    /// The server does not know the method (or has it switched off).
    pub const UNIMPLEMENTED: u32 = 12;
    /// Briefly unavailable.
    pub const UNAVAILABLE: u32 = 14;
}

const CODE_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// A gRPC status other than OK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Status {
    /// The code.
    pub code: u32,
    /// `grpc-message`, decoded.
    pub message: String,
}

impl Status {
    /// The status a non-200 HTTP answer without `grpc-status` stands for (gRPC's HTTP mapping).
    fn from_http(status: StatusCode) -> Self {
        let code = match status.as_u16() {
            400 => 13,
            401 => 16,
            403 => 7,
            404 => code::UNIMPLEMENTED,
            429 | 502..=504 => 14,
            _ => 2,
        };
        Self { code, message: format!("HTTP status {status}") }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = usize::try_from(self.code).ok().and_then(|i| CODE_NAMES.get(i)).unwrap_or(&"code");
        write!(f, "{name} ({})", self.code)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    /// The socket could not be connected to.
    #[error("{0}")]
    Connect(#[source] std::io::Error),
    /// The HTTP/2 connection failed.
    #[error("HTTP/2: {0}")]
    Http(#[source] hyper::Error),
    /// The server answered with a status other than OK.
    #[error("{0}")]
    Status(Status),
    /// The answer does not follow the gRPC protocol.
    #[error("{0}")]
    Protocol(String),
}

/// One HTTP/2 connection; the task driving it ends when this is dropped.
#[derive(Debug)]
pub(crate) struct Channel {
    sender: http2::SendRequest<Full<Bytes>>,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Channel {
    /// Connects to the unix socket at `socket` and starts HTTP/2 on it.
    pub(crate) async fn connect(socket: &Path) -> Result<Self, CallError> {
        let stream = tokio::net::UnixStream::connect(socket).await.map_err(CallError::Connect)?;
        let (sender, connection) =
            http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.map_err(CallError::Http)?;
        let driver = tokio::spawn(async move {
            // A broken connection shows as an error of the call that uses it.
            let _ = connection.await;
        });
        Ok(Self { sender, driver })
    }

    /// Calls `path` (`/<package>.<Service>/<Method>`) with the encoded `message`, telling the server the
    /// call's `deadline`; returns the answer's message, refusing one over `limit` bytes.
    pub(crate) async fn unary(
        &mut self,
        path: &str,
        message: &[u8],
        deadline: Duration,
        limit: usize,
    ) -> Result<Bytes, CallError> {
        let request = Request::post(format!("http://localhost{path}"))
            .header(header::CONTENT_TYPE, "application/grpc")
            .header(header::TE, "trailers")
            .header("grpc-timeout", grpc_timeout(deadline))
            .header(header::USER_AGENT, concat!("danm-rs/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(Bytes::from(frame(message))))
            .map_err(|e| CallError::Protocol(format!("the request cannot be built: {e}")))?;
        self.sender.ready().await.map_err(CallError::Http)?;
        let response = self.sender.send_request(request).await.map_err(CallError::Http)?;
        let (parts, body) = response.into_parts();
        // An answer without a body carries its status in the headers.
        if let Some(status) = status_of(&parts.headers)?.filter(|s| s.code != code::OK) {
            return Err(CallError::Status(status));
        }
        if parts.status != StatusCode::OK {
            return Err(CallError::Status(Status::from_http(parts.status)));
        }
        let content_type = parts.headers.get(header::CONTENT_TYPE).map(|v| String::from_utf8_lossy(v.as_bytes()));
        let content_type = content_type.unwrap_or_default();
        if !content_type.starts_with("application/grpc") {
            return Err(CallError::Protocol(format!("content-type `{content_type}` is not application/grpc")));
        }
        let collected = Limited::new(body, limit.saturating_add(5)).collect().await.map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                CallError::Protocol(format!("the answer is larger than {limit} bytes"))
            } else {
                CallError::Protocol(format!("reading the answer failed: {}", danm_core::error_chain(e.as_ref())))
            }
        })?;
        let status = match collected.trailers() {
            Some(trailers) => status_of(trailers)?,
            None => None,
        };
        let status = status.or(status_of(&parts.headers)?);
        match status {
            Some(s) if s.code == code::OK => unframe(collected.to_bytes(), limit),
            Some(s) => Err(CallError::Status(s)),
            None => Err(CallError::Protocol("the answer has no grpc-status".into())),
        }
    }
}

/// `message` with gRPC's 5-byte prefix: not compressed, its length in big-endian.
pub(crate) fn frame(message: &[u8]) -> Vec<u8> {
    let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(message.len() + 5);
    out.push(0);
    out.extend(len.to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// The one message of a unary answer's body.
pub(crate) fn unframe(body: Bytes, limit: usize) -> Result<Bytes, CallError> {
    let protocol = |reason: &str| Err(CallError::Protocol(reason.to_owned()));
    let Some(prefix) = body.get(..5) else {
        return protocol("the answer holds no message");
    };
    match prefix[0] {
        0 => {}
        1 => return protocol("the answer is compressed, which was not asked for"),
        flag => return Err(CallError::Protocol(format!("the answer's message has flags {flag:#04x}"))),
    }
    let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
    if len > limit {
        return Err(CallError::Protocol(format!("the answer is larger than {limit} bytes")));
    }
    match body.len().cmp(&(5 + len)) {
        std::cmp::Ordering::Less => protocol("the answer ends inside its message"),
        std::cmp::Ordering::Greater => protocol("the answer holds more than one message"),
        std::cmp::Ordering::Equal => Ok(body.slice(5..)),
    }
}

/// The status in `grpc-status` and `grpc-message`, when `grpc-status` is there.
fn status_of(headers: &HeaderMap) -> Result<Option<Status>, CallError> {
    let Some(raw) = headers.get("grpc-status") else { return Ok(None) };
    let code = std::str::from_utf8(raw.as_bytes()).ok().and_then(|s| s.trim().parse::<u32>().ok());
    let code = code.ok_or_else(|| {
        CallError::Protocol(format!("grpc-status `{}` is not a number", String::from_utf8_lossy(raw.as_bytes())))
    })?;
    let message = headers.get("grpc-message").map(|m| percent_decode(m.as_bytes())).unwrap_or_default();
    Ok(Some(Status { code, message }))
}

/// `grpc-message` is percent-encoded UTF-8; a `%` not followed by two hex digits stands for itself.
fn percent_decode(raw: &[u8]) -> String {
    let hex = |b: u8| char::from(b).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%'
            && let (Some(hi), Some(lo)) = (raw.get(i + 1).and_then(|b| hex(*b)), raw.get(i + 2).and_then(|b| hex(*b)))
        {
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A deadline as `grpc-timeout`: at most 8 digits, here in milliseconds (at least 1).
fn grpc_timeout(deadline: Duration) -> String {
    let millis = deadline.as_millis().clamp(1, 99_999_999);
    format!("{millis}m")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_framed_and_unframed() {
        assert_eq!(frame(b"abc"), [0, 0, 0, 0, 3, b'a', b'b', b'c']);
        assert_eq!(frame(b""), [0, 0, 0, 0, 0]);
        assert_eq!(unframe(Bytes::from(frame(b"abc")), 16).unwrap(), Bytes::from_static(b"abc"));
        assert_eq!(unframe(Bytes::from(frame(b"")), 16).unwrap(), Bytes::new());
        let refused = |body: &[u8], limit| match unframe(Bytes::copy_from_slice(body), limit) {
            Err(CallError::Protocol(reason)) => reason,
            other => panic!("{body:?}: {other:?}"),
        };
        assert!(refused(&[0, 0, 0], 16).contains("no message"));
        assert!(refused(&[1, 0, 0, 0, 1, 7], 16).contains("compressed"));
        assert!(refused(&[0, 0, 0, 0, 2, 7], 16).contains("ends inside"));
        assert!(refused(&[0, 0, 0, 0, 1, 7, 0], 16).contains("more than one"));
        assert!(refused(&[0, 0, 0, 1, 0], 16).contains("larger than 16 bytes"));
    }

    #[test]
    fn statuses_are_read_from_headers() {
        let mut headers = HeaderMap::new();
        assert_eq!(status_of(&headers).unwrap(), None);
        headers.insert("grpc-status", "12".parse().unwrap());
        headers.insert("grpc-message", "PodResources API Get method disabled%3A see %25 and 100%".parse().unwrap());
        let status = status_of(&headers).unwrap().unwrap();
        assert_eq!(status.code, code::UNIMPLEMENTED);
        assert_eq!(status.message, "PodResources API Get method disabled: see % and 100%");
        assert_eq!(status.to_string(), "UNIMPLEMENTED (12): PodResources API Get method disabled: see % and 100%");
        assert_eq!(percent_decode(b"caf%C3%A9 %zz %4"), "café %zz %4");
        headers.insert("grpc-status", "twelve".parse().unwrap());
        assert!(matches!(status_of(&headers), Err(CallError::Protocol(_))));
        assert_eq!(Status { code: 99, message: String::new() }.to_string(), "code (99)");
    }

    #[test]
    fn http_statuses_map_to_grpc_codes() {
        assert_eq!(Status::from_http(StatusCode::NOT_FOUND).code, code::UNIMPLEMENTED);
        assert_eq!(Status::from_http(StatusCode::SERVICE_UNAVAILABLE).code, 14);
        assert_eq!(Status::from_http(StatusCode::IM_A_TEAPOT).code, 2);
        assert_eq!(grpc_timeout(Duration::from_secs(3)), "3000m");
        assert_eq!(grpc_timeout(Duration::ZERO), "1m");
        assert_eq!(grpc_timeout(Duration::from_secs(1 << 40)), "99999999m");
    }
}

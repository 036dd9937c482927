//! The webhook's HTTPS server: TLS, HTTP/1.1, timeouts and graceful shutdown.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use danm_core::store::Datastore;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;

use super::review::{PATHS, Webhook};

/// The server's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerOptions {
    /// How long a client may take to finish the TLS handshake.
    pub handshake_timeout: Duration,
    /// How long a client may take to send a request's headers (also the idle time of a kept-alive
    /// connection).
    pub header_read_timeout: Duration,
    /// How long a client may take to send a request's body.
    pub body_read_timeout: Duration,
    /// The largest request body accepted; the API server sends at most about 3 MiB.
    pub max_body_bytes: usize,
    /// On shutdown, how long requests in flight may take to finish.
    pub shutdown_grace: Duration,
}

impl Default for ServerOptions {
    /// 5 s to shake hands, to send headers and to send a body (upstream's read and write timeouts were
    /// 5 s); 4 MiB bodies; 10 s of grace.
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(5),
            header_read_timeout: Duration::from_secs(5),
            body_read_timeout: Duration::from_secs(5),
            max_body_bytes: 4 << 20,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Serves `webhook` over HTTPS on `listener` with `tls` until `shutdown` resolves: `POST` of an
/// AdmissionReview to any of [`PATHS`]. Then it stops accepting, lets requests in flight finish for
/// [`ServerOptions::shutdown_grace`], and drops what is left.
pub async fn serve_webhook<S: Datastore + ?Sized + 'static>(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    webhook: Arc<Webhook<S>>,
    options: ServerOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::debug!(error = %e, "accepting a webhook connection failed");
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let webhook = webhook.clone();
        let watcher = graceful.watcher();
        connections.spawn(async move {
            let tls = match tokio::time::timeout(options.handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
            };
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let webhook = webhook.clone();
                async move { Ok::<_, Infallible>(handle(&webhook, request, &options).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(options.header_read_timeout)
                .serve_connection(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(%peer, error = %e, "webhook connection ended with an error");
            }
        });
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    if tokio::time::timeout(options.shutdown_grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still in flight after the shutdown grace period were dropped");
    }
    connections.shutdown().await;
    Ok(())
}

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    response
}

async fn handle<S: Datastore + ?Sized + 'static>(
    webhook: &Webhook<S>,
    request: Request<Incoming>,
    options: &ServerOptions,
) -> Response<Full<Bytes>> {
    const PLAIN: &str = "text/plain; charset=utf-8";
    if !PATHS.contains(&request.uri().path()) {
        return reply(StatusCode::NOT_FOUND, PLAIN, "not found\n");
    }
    if request.method() != Method::POST {
        return reply(StatusCode::METHOD_NOT_ALLOWED, PLAIN, "only POST\n");
    }
    let body = Limited::new(request.into_body(), options.max_body_bytes);
    let body = match tokio::time::timeout(options.body_read_timeout, body.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return reply(StatusCode::PAYLOAD_TOO_LARGE, PLAIN, "request body too large\n");
        }
        Ok(Err(_)) => return reply(StatusCode::BAD_REQUEST, PLAIN, "the request body could not be read\n"),
        Err(_) => return reply(StatusCode::REQUEST_TIMEOUT, PLAIN, "the request body was not sent in time\n"),
    };
    let (status, answer) = webhook.review(&body).await;
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    reply(status, "application/json", answer)
}

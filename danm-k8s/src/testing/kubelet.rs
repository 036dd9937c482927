//! A fake kubelet serving the PodResources v1 API (`Get` and `List`) as gRPC over HTTP/2 on a unix
//! socket, for tests of [`crate::podresources`] and of the `danm` plugin.

use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::{BodyExt, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::podresources::grpc::{frame, unframe};
use crate::podresources::proto::{
    GetPodResourcesRequest, GetPodResourcesResponse, ListPodResourcesResponse, Message, PodResources,
};
use crate::podresources::{GET_DISABLED, GET_PATH, LIST_PATH};

/// How the fake kubelet answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KubeletBehaviour {
    /// `Get` and `List` are served, as kubelets from 1.27 with the `KubeletPodResourcesGet` gate on
    /// (the default from 1.34) do. `Get` of a pod it does not run fails with `UNKNOWN`, as the kubelet's
    /// does.
    #[default]
    Serve,
    /// `Get` is answered `UNIMPLEMENTED`, as gRPC answers a method a server does not have (kubelets
    /// before 1.27); `List` is served.
    WithoutGet,
    /// `Get` is answered `UNKNOWN` with the message "PodResources API Get method disabled", as kubelets
    /// from 1.27 answer with the `KubeletPodResourcesGet` feature gate off; `List` is served.
    GetDisabled,
    /// Connections are accepted and requests read, but nothing is ever answered.
    Silent,
    /// Every request is answered `RESOURCE_EXHAUSTED`, as a kubelet over its rate limit does.
    RateLimited,
}

#[derive(Debug, Default)]
struct State {
    pods: Vec<PodResources>,
    behaviour: KubeletBehaviour,
    calls: Vec<String>,
}

/// A fake kubelet PodResources API. Clones share their state; [`serve`](Self::serve) listens on a socket
/// until the runtime ends.
#[derive(Debug, Clone, Default)]
pub struct FakeKubelet {
    state: Arc<Mutex<State>>,
}

type Body = BoxBody<Bytes, Infallible>;

impl FakeKubelet {
    /// A kubelet that runs no pod and serves `Get` and `List`.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets how it answers from now on.
    pub fn set_behaviour(&self, behaviour: KubeletBehaviour) {
        self.lock().behaviour = behaviour;
    }

    /// Adds a pod with its resources (listed in the order added).
    pub fn add_pod(&self, pod: PodResources) {
        self.lock().pods.push(pod);
    }

    /// The methods called so far (`Get`, `List`, or the path of an unknown one), in order.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// Listens on a new unix socket at `socket` and serves every connection from a task of the current
    /// tokio runtime.
    pub fn serve(&self, socket: &Path) -> std::io::Result<()> {
        let listener = tokio::net::UnixListener::bind(socket)?;
        let kubelet = self.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let kubelet = kubelet.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let kubelet = kubelet.clone();
                        async move { Ok::<_, Infallible>(kubelet.answer(request).await) }
                    });
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(())
    }

    async fn answer(&self, request: Request<Incoming>) -> Response<Body> {
        let path = request.uri().path().to_owned();
        let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let behaviour = {
            let mut state = self.lock();
            let call = path.strip_prefix("/v1.PodResourcesLister/").unwrap_or(&path).to_owned();
            state.calls.push(call);
            state.behaviour
        };
        if behaviour == KubeletBehaviour::Silent {
            futures::future::pending::<()>().await;
        }
        let Ok(message) = unframe(body, usize::MAX) else {
            return status_only(13, "the request is not one gRPC message");
        };
        if behaviour == KubeletBehaviour::RateLimited {
            return status_only(8, "rejected by rate limit");
        }
        match path.as_str() {
            GET_PATH if behaviour == KubeletBehaviour::WithoutGet => {
                status_only(12, "unknown method Get for service v1.PodResourcesLister")
            }
            GET_PATH if behaviour == KubeletBehaviour::GetDisabled => status_only(2, GET_DISABLED),
            GET_PATH => {
                let Ok(asked) = GetPodResourcesRequest::decode(&message) else {
                    return status_only(13, "GetPodResourcesRequest cannot be decoded");
                };
                let found = self
                    .lock()
                    .pods
                    .iter()
                    .find(|p| p.name == asked.pod_name && p.namespace == asked.pod_namespace)
                    .cloned();
                match found {
                    Some(pod) => ok(&GetPodResourcesResponse { pod_resources: Some(pod) }),
                    None => status_only(
                        2,
                        &format!("pod {} in namespace {} not found", asked.pod_name, asked.pod_namespace),
                    ),
                }
            }
            LIST_PATH => ok(&ListPodResourcesResponse { pod_resources: self.lock().pods.clone() }),
            _ => status_only(12, &format!("unknown method {path}")),
        }
    }
}

/// A successful answer: the message, then the trailers with `grpc-status: 0`.
fn ok(message: &impl Message) -> Response<Body> {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let frames = [Ok(Frame::data(Bytes::from(frame(&message.to_bytes())))), Ok(Frame::trailers(trailers))];
    let body = StreamBody::new(futures::stream::iter(frames)).boxed();
    Response::builder().header("content-type", "application/grpc").body(body).unwrap_or_default()
}

/// An answer without a body: the status in the headers, the message percent-encoded as gRPC does.
fn status_only(code: u32, message: &str) -> Response<Body> {
    let encoded: String = message
        .bytes()
        .map(|b| if (0x20..0x7f).contains(&b) && b != b'%' { char::from(b).to_string() } else { format!("%{b:02X}") })
        .collect();
    let body = http_body_util::Empty::new().map_err(|never| match never {}).boxed();
    Response::builder()
        .header("content-type", "application/grpc")
        .header("grpc-status", code.to_string())
        .header("grpc-message", encoded)
        .body(body)
        .unwrap_or_default()
}

//! The `tower::Service` a `kube::Client` sends its requests to: routing by path and verb.

use std::convert::Infallible;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use http::{Method, Request, Response, StatusCode, header};
use http_body::Frame;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use serde_json::{Value, json};

use super::error::ApiError;
use super::fault::RequestRecord;
use super::ops::Part;
use super::patch::PatchBody;
use super::route::{Query, Route};
use super::selector::Filter;
use super::state::{Shared, State, lock};
use super::watch;

/// The body of every response: a whole JSON document, or a watch stream.
pub(crate) type ResponseBody = UnsyncBoxBody<Bytes, Infallible>;

/// Serves requests from the shared state; clones serve the same state.
#[derive(Clone)]
pub(crate) struct FakeService(pub(crate) Shared);

impl tower::Service<Request<kube::client::Body>> for FakeService {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<kube::client::Body>) -> Self::Future {
        let shared = self.0.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let response = match body.collect_bytes().await {
                Ok(body) => serve(&shared, &parts, &body).unwrap_or_else(|e| error(&e)),
                Err(e) => error(&ApiError::bad_request(format!("cannot read the request body: {e}"))),
            };
            Ok(response)
        })
    }
}

fn serve(shared: &Shared, request: &http::request::Parts, body: &[u8]) -> Result<Response<ResponseBody>, ApiError> {
    let mut state = lock(shared);
    let (method, path) = (request.method.as_str(), request.uri.path());
    let query_text = request.uri.query().unwrap_or("");
    state.requests.push(RequestRecord {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query_text.to_owned(),
    });
    if let Some(fault) = state.take_fault(method, path) {
        return Err(fault);
    }
    let route = Route::resolve(path, &state.kinds)?;
    let query = Query::parse(query_text)?;
    if query.dry_run {
        return Err(ApiError::bad_request("dryRun is not supported by the fake API server"));
    }
    let (rt, namespace) = (&route.rt, route.object_namespace());
    let part = if route.status { Part::Status } else { Part::Main };
    match (&request.method, route.name.as_deref()) {
        (&Method::GET, None) => {
            let filter = filter(&route, &query);
            if query.watch {
                let lines = watch::open(shared, &mut state, rt, filter, &query)?;
                return Ok(streaming(lines));
            }
            let items: Vec<Value> = state.objects_of(rt).filter(|o| filter.matches(o)).cloned().collect();
            Ok(list(&state, &route, items))
        }
        (&Method::POST, None) if !rt.is_namespaced() || route.namespace.is_some() => {
            Ok(document(StatusCode::CREATED, &state.create(rt, namespace, parse(body)?, true)?))
        }
        (&Method::DELETE, None) => {
            let filter = filter(&route, &query);
            let doomed: Vec<Value> = state.objects_of(rt).filter(|o| filter.matches(o)).cloned().collect();
            let options = parse_options(body)?;
            let mut deleted = Vec::new();
            for object in doomed {
                let (ns, name) = (&object["metadata"]["namespace"], &object["metadata"]["name"]);
                let (ns, name) = (ns.as_str().unwrap_or(""), name.as_str().unwrap_or(""));
                deleted.push(state.delete(rt, ns, name, &options)?);
            }
            Ok(list(&state, &route, deleted))
        }
        (&Method::GET, Some(name)) => {
            let object = state.get(rt, namespace, name).ok_or_else(|| ApiError::not_found(rt, name))?;
            Ok(document(StatusCode::OK, object))
        }
        (&Method::PUT, Some(name)) => {
            Ok(document(StatusCode::OK, &state.update(rt, namespace, name, parse(body)?, part)?))
        }
        (&Method::PATCH, Some(name)) => {
            let content_type = request.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            let patch = PatchBody::decode(content_type, body)?;
            let (object, created) = state.patch(rt, namespace, name, &patch, part)?;
            Ok(document(if created { StatusCode::CREATED } else { StatusCode::OK }, &object))
        }
        (&Method::DELETE, Some(name)) if !route.status => {
            Ok(document(StatusCode::OK, &state.delete(rt, namespace, name, &parse_options(body)?)?))
        }
        (method, _) => Err(ApiError::with_code(405, format!("the server does not allow {method} on this path"))),
    }
}

/// The objects a list, watch or collection delete on `route` sees.
fn filter(route: &Route, query: &Query) -> Filter {
    Filter { namespace: route.namespace.clone(), labels: query.labels.clone(), fields: query.fields.clone() }
}

fn parse(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("cannot decode the request body: {e}")))
}

/// The `DeleteOptions` of a DELETE, `null` when the body is empty.
fn parse_options(body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() { Ok(Value::Null) } else { parse(body) }
}

fn list(state: &State, route: &Route, items: Vec<Value>) -> Response<ResponseBody> {
    let list = json!({
        "kind": format!("{}List", route.rt.kind()),
        "apiVersion": route.rt.api_version(),
        "metadata": { "resourceVersion": state.rv().to_string() },
        "items": items,
    });
    document(StatusCode::OK, &list)
}

fn document(status: StatusCode, value: &Value) -> Response<ResponseBody> {
    let body = Full::new(Bytes::from(serde_json::to_vec(value).unwrap_or_default())).boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}

fn error(error: &ApiError) -> Response<ResponseBody> {
    document(StatusCode::from_u16(error.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), &error.to_status())
}

fn streaming(lines: futures::stream::BoxStream<'static, Bytes>) -> Response<ResponseBody> {
    let body = StreamBody::new(lines.map(|line| Ok::<_, Infallible>(Frame::data(line)))).boxed_unsync();
    let mut response = Response::new(body);
    response.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}

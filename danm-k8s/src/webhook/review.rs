//! One AdmissionReview in, one AdmissionReview out: decoding, dispatch to danm-core's admission
//! decisions, the JSON patch and the denial status.

use std::sync::Arc;
use std::time::{Duration, Instant};

use danm_core::admission::{Admission, AdmissionError, Admitted};
use danm_core::error_chain;
use danm_core::model::{Network, TenantConfig};
use danm_core::pod::{INTERFACES_ANNOTATION, INTERFACES_ANNOTATION_ALT};
use danm_core::retry::{BoxFuture, RetryPolicy, Sleeper};
use danm_core::store::Datastore;
use danm_core::validate::ValidationErrors;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::response::{StatusCause, StatusDetails};
use kube::core::{DynamicObject, Status};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::metrics::WebhookMetrics;
use crate::runtime::Telemetry;

/// Network CREATE and UPDATE (upstream's path).
pub const NETWORK_PATH: &str = "/netvalidation";
/// TenantConfig CREATE and UPDATE (upstream's path).
pub const TENANT_CONFIG_PATH: &str = "/confvalidation";
/// Network DELETE (upstream's path).
pub const NETWORK_DELETE_PATH: &str = "/netdeletion";
/// Pod CREATE, and UPDATE of the interfaces annotation (danm-rs).
pub const POD_PATH: &str = "/podvalidation";
/// Every path the webhook answers on. Each accepts any kind it handles: the request's kind and
/// operation decide, so a configuration that sends DELETEs to `/netvalidation` works too.
pub const PATHS: [&str; 4] = [NETWORK_PATH, TENANT_CONFIG_PATH, NETWORK_DELETE_PATH, POD_PATH];

/// How long one decision may take before it is answered with a failure: below the API server's
/// `timeoutSeconds` (25 in `deploy/webhook`), so the requester gets our message rather than a timeout.
pub const DEFAULT_DECISION_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy)]
struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// The admission webhook's logic over a datastore: answers AdmissionReview `admission.k8s.io/v1`
/// requests for DanmNets, TenantNetworks, ClusterNetworks, TenantConfigs and Pods with danm-core's
/// [`Admission`] decisions.
///
/// An admitted object comes back with a JSON patch from the object as received to the object as
/// decided (defaults, TenantConfig-driven fields); a refused one with `allowed: false` and a status whose
/// `code` is 400 (the object breaks a rule), 403 (not allowed now: in use, TenantConfig), 409 (a write kept
/// conflicting: try again) or 500, whose `message` names every field at fault, and whose
/// `details.causes` lists them one by one. `dryRun` requests write nothing.
#[derive(Debug)]
pub struct Webhook<S: ?Sized> {
    store: Arc<S>,
    policy: RetryPolicy,
    decision_timeout: Duration,
    metrics: Option<WebhookMetrics>,
}

/// What the webhook decided about one request.
enum Outcome {
    Allow { patch: Option<json_patch::Patch>, warnings: Vec<String> },
    Deny { code: u16, reason: &'static str, message: String, causes: Vec<StatusCause> },
}

impl Outcome {
    fn allow() -> Self {
        Self::Allow { patch: None, warnings: Vec::new() }
    }

    fn invalid(field: String, message: String) -> Self {
        let causes = vec![cause(&field, &message)];
        Self::Deny { code: 400, reason: "BadRequest", message: format!("{field}: {message}"), causes }
    }

    fn label(&self) -> &'static str {
        match self {
            Self::Allow { .. } => "allowed",
            Self::Deny { code, .. } if *code >= 500 || *code == 409 => "error",
            Self::Deny { .. } => "denied",
        }
    }
}

fn cause(field: &str, message: &str) -> StatusCause {
    StatusCause { reason: "FieldValueInvalid".into(), message: message.to_owned(), field: field.to_owned() }
}

impl From<AdmissionError> for Outcome {
    fn from(e: AdmissionError) -> Self {
        let code = e.status_code();
        let reason = match code {
            400 => "Invalid",
            403 => "Forbidden",
            409 => "Conflict",
            _ => "InternalError",
        };
        let causes = e.errors().map(ValidationErrors::iter).into_iter().flatten();
        let causes = causes.map(|v| cause(&v.field, &v.message)).collect();
        Self::Deny { code, reason, message: error_chain(&e), causes }
    }
}

/// Decodes an object strictly (unknown fields are refused, as upstream does) into a danm-core type.
fn decode<T: DeserializeOwned>(what: &str, value: &Value) -> Result<T, Outcome> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { what.to_owned() } else { path };
        Outcome::invalid(field, format!("{what} does not decode: {}", e.inner()))
    })
}

fn object_json(object: Option<&DynamicObject>, what: &str) -> Result<Value, Outcome> {
    let object = object.ok_or_else(|| Outcome::invalid(what.into(), "is missing from the request".into()))?;
    serde_json::to_value(object).map_err(|e| Outcome::invalid(what.into(), e.to_string()))
}

/// An allowed outcome whose patch turns `original` into `admitted`.
fn patched<T: serde::Serialize>(original: &Value, admitted: Admitted<T>) -> Outcome {
    match serde_json::to_value(&admitted.object) {
        Ok(after) => {
            let patch = json_patch::diff(original, &after);
            let patch = (!patch.0.is_empty()).then_some(patch);
            Outcome::Allow { patch, warnings: admitted.warnings }
        }
        Err(e) => Outcome::Deny {
            code: 500,
            reason: "InternalError",
            message: format!("the admitted object does not encode: {e}"),
            causes: Vec::new(),
        },
    }
}

impl<S: Datastore + ?Sized + 'static> Webhook<S> {
    /// The webhook over `store`, with the default retry policy and decision timeout.
    pub fn new(store: Arc<S>) -> Self {
        Self { store, policy: RetryPolicy::default(), decision_timeout: DEFAULT_DECISION_TIMEOUT, metrics: None }
    }

    /// Retries lost compare-and-swap races (VNI reservations and releases) as `policy` says.
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Answers a request that takes longer than `timeout` with a failure (HTTP 500 in the status).
    pub fn with_decision_timeout(mut self, timeout: Duration) -> Self {
        self.decision_timeout = timeout;
        self
    }

    /// Counts requests in `telemetry`: `danm_webhook_requests_total` (labels `kind`, `operation`,
    /// `result` = allowed, denied or error) and `danm_webhook_request_duration_seconds` (label `kind`).
    pub fn with_telemetry(mut self, telemetry: &Telemetry) -> Self {
        self.metrics = Some(WebhookMetrics::register(telemetry));
        self
    }

    /// Answers one request body: the HTTP status and the AdmissionReview to send back. A body that is not
    /// an AdmissionReview with a request gets 400 and a review without a `uid`; every decision, allowed or
    /// not, gets 200.
    pub async fn review(&self, body: &[u8]) -> (u16, Vec<u8>) {
        let review: AdmissionReview<DynamicObject> = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => return bad_review(&format!("the body is not an AdmissionReview: {e}")),
        };
        let request: AdmissionRequest<DynamicObject> = match review.try_into() {
            Ok(r) => r,
            Err(_) => return bad_review("the AdmissionReview has no request"),
        };
        let started = Instant::now();
        let outcome = match tokio::time::timeout(self.decision_timeout, self.decide(&request)).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::Deny {
                code: 500,
                reason: "Timeout",
                message: format!("no decision within {:?}; try again", self.decision_timeout),
                causes: Vec::new(),
            },
        };
        let kind = request.kind.kind.as_str();
        let operation = operation_name(&request.operation);
        if let Some(m) = &self.metrics {
            m.observe(kind, operation, outcome.label(), started);
        }
        let response = respond(&request, outcome);
        match serde_json::to_value(response.into_review()).map(base64_patch).and_then(|v| serde_json::to_vec(&v)) {
            Ok(bytes) => (200, bytes),
            Err(e) => bad_review(&format!("the response does not encode: {e}")),
        }
    }

    async fn decide(&self, request: &AdmissionRequest<DynamicObject>) -> Outcome {
        let admission = Admission::new(&*self.store).dry_run(request.dry_run).with_retry(self.policy, &TokioSleeper);
        let kind = request.kind.kind.as_str();
        let outcome = match kind {
            "DanmNet" | "TenantNetwork" | "ClusterNetwork" => self.network(&admission, request).await,
            "TenantConfig" => tenant_config(&admission, request),
            "Pod" => pod(&admission, request).await,
            other => {
                tracing::warn!(kind = other, "a request for a kind the webhook does not handle was allowed");
                Ok(Outcome::allow())
            }
        };
        let outcome = outcome.unwrap_or_else(|denial| denial);
        match &outcome {
            Outcome::Deny { code, message, .. } => tracing::info!(
                uid = %request.uid, kind, name = %request.name, namespace = request.namespace.as_deref().unwrap_or(""),
                operation = operation_name(&request.operation), code, %message, "refused"
            ),
            Outcome::Allow { patch, .. } => tracing::debug!(
                uid = %request.uid, kind, name = %request.name, operation = operation_name(&request.operation),
                patched = patch.is_some(), "admitted"
            ),
        }
        outcome
    }

    async fn network(
        &self,
        admission: &Admission<'_, S>,
        request: &AdmissionRequest<DynamicObject>,
    ) -> Result<Outcome, Outcome> {
        let in_namespace = |mut net: Network| {
            if net.kind.is_namespaced() && net.metadata.namespace.as_deref().unwrap_or_default().is_empty() {
                net.metadata.namespace.clone_from(&request.namespace);
            }
            net
        };
        Ok(match request.operation {
            Operation::Create => {
                let original = object_json(request.object.as_ref(), "object")?;
                let net = in_namespace(decode::<Network>("object", &original)?);
                patched(&original, admission.create_network(net).await?)
            }
            Operation::Update => {
                let original = object_json(request.object.as_ref(), "object")?;
                let old = in_namespace(decode::<Network>(
                    "oldObject",
                    &object_json(request.old_object.as_ref(), "oldObject")?,
                )?);
                let new = in_namespace(decode::<Network>("object", &original)?);
                patched(&original, admission.update_network(&old, new).await?)
            }
            Operation::Delete => {
                let old = object_json(request.old_object.as_ref(), "oldObject")?;
                // An object stored before a field was removed from the schema must still be deletable.
                let net = match decode::<Network>("oldObject", &old) {
                    Ok(net) => in_namespace(net),
                    Err(_) => return Ok(Outcome::allow()),
                };
                let admitted = admission.delete_network(&net).await?;
                Outcome::Allow { patch: None, warnings: admitted.warnings }
            }
            Operation::Connect => Outcome::allow(),
        })
    }
}

fn tenant_config<S: Datastore + ?Sized>(
    admission: &Admission<'_, S>,
    request: &AdmissionRequest<DynamicObject>,
) -> Result<Outcome, Outcome> {
    let old = match request.operation {
        Operation::Create => None,
        Operation::Update => {
            Some(decode::<TenantConfig>("oldObject", &object_json(request.old_object.as_ref(), "oldObject")?)?)
        }
        Operation::Delete | Operation::Connect => return Ok(Outcome::allow()),
    };
    let original = object_json(request.object.as_ref(), "object")?;
    let tc = decode::<TenantConfig>("object", &original)?;
    Ok(patched(&original, admission.tenant_config(tc, old.as_ref())?))
}

async fn pod<S: Datastore + ?Sized>(
    admission: &Admission<'_, S>,
    request: &AdmissionRequest<DynamicObject>,
) -> Result<Outcome, Outcome> {
    let Some(pod) = &request.object else {
        if matches!(request.operation, Operation::Create | Operation::Update) {
            return Err(Outcome::invalid("object".into(), "is missing from the request".into()));
        }
        return Ok(Outcome::allow());
    };
    let annotations = pod.metadata.annotations.clone().unwrap_or_default();
    match request.operation {
        Operation::Create => {}
        // An update is judged only when it changes what the pod asks for: a pod whose network went away
        // since it was created must still take its other updates (labels, finalizers).
        Operation::Update => {
            let old = request.old_object.as_ref().and_then(|o| o.metadata.annotations.as_ref());
            let asked =
                |a: Option<&std::collections::BTreeMap<String, String>>, key: &str| a.and_then(|a| a.get(key)).cloned();
            let unchanged = [INTERFACES_ANNOTATION, INTERFACES_ANNOTATION_ALT]
                .iter()
                .all(|key| asked(old, key) == asked(Some(&annotations), key));
            if unchanged {
                return Ok(Outcome::allow());
            }
        }
        _ => return Ok(Outcome::allow()),
    }
    let namespace = request.namespace.as_deref().or(pod.metadata.namespace.as_deref()).unwrap_or("default");
    let admitted = admission.create_pod(namespace, &annotations.into_iter().collect()).await?;
    Ok(Outcome::Allow { patch: None, warnings: admitted.warnings })
}

fn operation_name(op: &Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

fn respond(request: &AdmissionRequest<DynamicObject>, outcome: Outcome) -> AdmissionResponse {
    let response = AdmissionResponse::from(request);
    match outcome {
        Outcome::Allow { patch, warnings } => {
            let mut response = match patch {
                // Encoding a patch of JSON values cannot fail; if it did, the object goes in unchanged.
                Some(patch) => response.clone().with_patch(patch).unwrap_or(response),
                None => response,
            };
            if !warnings.is_empty() {
                response.warnings = Some(warnings);
            }
            response
        }
        Outcome::Deny { code, reason, message, causes } => {
            let mut response = response.deny(&message);
            let details = StatusDetails {
                name: request.name.clone(),
                group: request.kind.group.clone(),
                kind: request.kind.kind.clone(),
                uid: String::new(),
                causes,
                retry_after_seconds: if code == 409 { 1 } else { 0 },
            };
            response.result = Status::failure(&message, reason).with_code(code).with_details(details);
            response
        }
    }
}

/// Writes `response.patch` as the base64 string the API server's `[]byte` field is documented to take
/// (kube serialises the bytes as a JSON array of numbers).
fn base64_patch(mut review: Value) -> Value {
    use base64::Engine;
    if let Some(patch) = review.pointer_mut("/response/patch")
        && let Some(bytes) = patch.as_array()
    {
        let bytes: Vec<u8> = bytes.iter().filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok())).collect();
        *patch = Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
    }
    review
}

fn bad_review(message: &str) -> (u16, Vec<u8>) {
    let review = AdmissionResponse::invalid(message).into_review();
    (400, serde_json::to_vec(&review).unwrap_or_else(|_| message.as_bytes().to_vec()))
}

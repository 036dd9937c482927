//! A client of the kubelet's PodResources v1 API: which devices the device plugins allocated to a pod.
//!
//! The kubelet serves `v1.PodResourcesLister` as gRPC on a unix socket, by default
//! `/var/lib/kubelet/pod-resources/kubelet.sock`. [`PodResourcesClient`] asks `Get` for one pod and,
//! when the kubelet does not serve it (`UNIMPLEMENTED` from kubelets before 1.27; `UNKNOWN` with
//! [`GET_DISABLED`] from later ones with the `KubeletPodResourcesGet` feature gate off), `List` for
//! every pod of the node, keeping the one asked about. It implements
//! danm-core's [`DeviceSource`], so the `danm` plugin can give it to the meta-plugin for the devices of
//! `sriov` attachments.
//!
//! What it is not: a general gRPC client. It speaks just enough gRPC for unary calls (HTTP/2 through
//! hyper on a tokio `UnixStream`), and encodes the few messages it needs by hand
//! ([`proto`]) rather than with generated code: no `protoc` at build time and no gRPC framework for two
//! calls. Each question opens its own connection (the `danm` plugin asks at most once per ADD) and is
//! bounded by one timeout, connecting included.

pub(crate) mod grpc;
pub mod proto;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use danm_core::device::{DeviceError, DeviceSource, PodDevices, PodRef};

use grpc::{CallError, Channel, code};
use proto::{GetPodResourcesRequest, GetPodResourcesResponse, ListPodResourcesResponse, Message, PodResources};

/// The `Get` method's path.
pub const GET_PATH: &str = "/v1.PodResourcesLister/Get";
/// The `List` method's path.
pub const LIST_PATH: &str = "/v1.PodResourcesLister/List";
/// The message of the `UNKNOWN` status with which a kubelet that has `Get` but the
/// `KubeletPodResourcesGet` feature gate off answers it.
pub const GET_DISABLED: &str = "PodResources API Get method disabled";

/// A client of the kubelet's PodResources API on one unix socket. Nothing is connected until a question
/// is asked, so a client for a socket that does not exist is only an error when it is used.
#[derive(Debug, Clone)]
pub struct PodResourcesClient {
    socket: PathBuf,
    timeout: Duration,
    max_message: usize,
}

impl PodResourcesClient {
    /// How long one question may take, connecting included, unless [`with_timeout`](Self::with_timeout)
    /// says otherwise.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
    /// The largest answer accepted: a `List` of a node with many pods, as other clients of this API allow.
    pub const MAX_MESSAGE: usize = 16 << 20;

    /// A client of the API on `socket`.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self { socket: socket.into(), timeout: Self::DEFAULT_TIMEOUT, max_message: Self::MAX_MESSAGE }
    }

    /// Sets how long one question may take, connecting included.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The resources the kubelet allocated to `pod`; `None` when it does not list the pod.
    pub async fn pod_resources(&self, pod: PodRef<'_>) -> Result<Option<PodResources>, DeviceError> {
        self.bounded(self.ask(pod)).await
    }

    /// The resources of every pod of the node (`List`).
    pub async fn list(&self) -> Result<Vec<PodResources>, DeviceError> {
        self.bounded(async {
            let mut channel = self.connect().await?;
            self.list_on(&mut channel).await
        })
        .await
    }

    async fn bounded<T>(&self, work: impl Future<Output = Result<T, DeviceError>>) -> Result<T, DeviceError> {
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| DeviceError::Timeout { endpoint: self.describe(), seconds: self.timeout.as_secs_f64() })?
    }

    async fn connect(&self) -> Result<Channel, DeviceError> {
        Channel::connect(&self.socket).await.map_err(|e| self.failure("connecting", e))
    }

    /// `Get`, or `List` when the kubelet does not serve `Get`.
    async fn ask(&self, pod: PodRef<'_>) -> Result<Option<PodResources>, DeviceError> {
        let mut channel = self.connect().await?;
        let request = GetPodResourcesRequest { pod_name: pod.name.to_owned(), pod_namespace: pod.namespace.to_owned() };
        match channel.unary(GET_PATH, &request.to_bytes(), self.timeout, self.max_message).await {
            Ok(answer) => {
                let answer = GetPodResourcesResponse::decode(&answer).map_err(|e| self.malformed("Get", &e))?;
                return Ok(answer.pod_resources);
            }
            Err(CallError::Status(status)) if get_not_served(&status) => {}
            Err(e) => return Err(self.failure("Get", e)),
        }
        let pods = self.list_on(&mut channel).await?;
        Ok(pods.into_iter().find(|p| p.namespace == pod.namespace && p.name == pod.name))
    }

    async fn list_on(&self, channel: &mut Channel) -> Result<Vec<PodResources>, DeviceError> {
        let answer = channel.unary(LIST_PATH, &[], self.timeout, self.max_message).await;
        let answer = answer.map_err(|e| self.failure("List", e))?;
        let answer = ListPodResourcesResponse::decode(&answer).map_err(|e| self.malformed("List", &e))?;
        Ok(answer.pod_resources)
    }

    fn failure(&self, what: &str, error: CallError) -> DeviceError {
        let endpoint = self.describe();
        match error {
            CallError::Connect(e) => DeviceError::Unreachable { endpoint, reason: format!("{what}: {e}") },
            CallError::Http(e) => {
                DeviceError::Unreachable { endpoint, reason: format!("{what}: {}", danm_core::error_chain(&e)) }
            }
            CallError::Status(status) if matches!(status.code, code::RESOURCE_EXHAUSTED | code::UNAVAILABLE) => {
                DeviceError::Busy { endpoint, reason: format!("{what}: {status}") }
            }
            CallError::Status(status) => DeviceError::Refused { endpoint, reason: format!("{what}: {status}") },
            CallError::Protocol(reason) => DeviceError::Malformed { endpoint, reason: format!("{what}: {reason}") },
        }
    }

    fn malformed(&self, what: &str, error: &proto::DecodeError) -> DeviceError {
        DeviceError::Malformed { endpoint: self.describe(), reason: format!("{what}: {error}") }
    }
}

/// Whether `status` answers `Get` as a kubelet that does not serve it: `UNIMPLEMENTED` from one without
/// the method (before 1.27), `UNKNOWN` with [`GET_DISABLED`] from one with the `KubeletPodResourcesGet`
/// feature gate off.
fn get_not_served(status: &grpc::Status) -> bool {
    status.code == code::UNIMPLEMENTED || (status.code == code::UNKNOWN && status.message.contains(GET_DISABLED))
}

/// A pod's devices by resource: every container's, in the pod's order, each resource's IDs in the
/// kubelet's order.
pub fn pod_devices(pod: &PodResources) -> PodDevices {
    let mut devices = PodDevices::new();
    for container in &pod.containers {
        for d in &container.devices {
            devices.extend(&d.resource_name, d.device_ids.iter().cloned());
        }
    }
    devices
}

#[async_trait]
impl DeviceSource for PodResourcesClient {
    async fn pod_devices(&self, pod: PodRef<'_>) -> Result<PodDevices, DeviceError> {
        Ok(self.pod_resources(pod).await?.map(|p| pod_devices(&p)).unwrap_or_default())
    }

    fn describe(&self) -> String {
        format!("the kubelet's PodResources API at {}", self.socket.display())
    }
}

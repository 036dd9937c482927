//! The DeviceSource seam: which devices (SR-IOV VFs, by PCI address) the device plugins allocated to a pod.
//!
//! An `sriov` attachment needs the device the pod was given from its network's `device_pool` (a
//! device-plugin resource name). The meta-plugin takes the pod's devices from the pod record's
//! [`DEVICES_ANNOTATION`] when the pod has it (the local store, tests, an explicit override), and
//! otherwise asks the [`DeviceSource`] it was given. Backends: the kubelet's PodResources API client of
//! `danm-k8s`, and `FixedDeviceSource` (feature `test-util`) for tests.
//!
//! This module only holds the trait and its values; it does no I/O.

#[cfg(any(test, feature = "test-util"))]
mod fixed;

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;

#[cfg(any(test, feature = "test-util"))]
pub use fixed::FixedDeviceSource;

/// The pod annotation that lists the devices assigned to the pod per device pool, as a JSON object of
/// resource name to device IDs (PCI addresses), e.g. `{"nokia.k8s.io/sriov_ens1f0": ["0000:01:00.1"]}`.
/// When a pod has it, it wins over any [`DeviceSource`].
pub const DEVICES_ANNOTATION: &str = "danm.k8s.io/devices";

/// The pod a device question is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodRef<'a> {
    /// The pod's namespace.
    pub namespace: &'a str,
    /// The pod's name.
    pub name: &'a str,
}

impl fmt::Display for PodRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The devices allocated to one pod, by resource name. Each resource's IDs keep the order they were
/// added in: for a pod of several containers, the first container's first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodDevices {
    by_resource: BTreeMap<String, Vec<String>>,
}

impl PodDevices {
    /// No devices.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `ids` to the devices of `resource`.
    pub fn extend<I, T>(&mut self, resource: &str, ids: I)
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        let list = self.by_resource.entry(resource.to_owned()).or_default();
        list.extend(ids.into_iter().map(Into::into));
    }

    /// The devices of `resource`, in allocation order; empty when the pod has none.
    pub fn of(&self, resource: &str) -> &[String] {
        self.by_resource.get(resource).map(Vec::as_slice).unwrap_or_default()
    }

    /// Every resource with its devices, by resource name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.by_resource.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// Whether the pod has no device at all.
    pub fn is_empty(&self) -> bool {
        self.by_resource.values().all(Vec::is_empty)
    }

    /// Reads the value of [`DEVICES_ANNOTATION`]. The error says what is malformed.
    pub fn from_annotation(value: &str) -> Result<Self, String> {
        let by_resource: BTreeMap<String, Vec<String>> =
            serde_json::from_str(value).map_err(|e| format!("annotation {DEVICES_ANNOTATION} is malformed: {e}"))?;
        Ok(Self { by_resource })
    }
}

impl<R: Into<String>, I: IntoIterator<Item = T>, T: Into<String>> FromIterator<(R, I)> for PodDevices {
    fn from_iter<It: IntoIterator<Item = (R, I)>>(iter: It) -> Self {
        let mut devices = Self::new();
        for (resource, ids) in iter {
            devices.extend(&resource.into(), ids);
        }
        devices
    }
}

/// Why a [`DeviceSource`] could not say which devices a pod has. Each variant names the source it is
/// about (`endpoint`, e.g. "the kubelet's PodResources API at /var/lib/kubelet/pod-resources/kubelet.sock").
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeviceError {
    /// The source cannot be reached (no such socket, connection refused): nothing was asked.
    #[error("{endpoint} cannot be reached: {reason}")]
    Unreachable {
        /// The source.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// The source did not answer within its time limit (an overloaded kubelet): the CNI answers "try again
    /// later" (code 11).
    #[error("{endpoint} did not answer within {seconds} s")]
    Timeout {
        /// The source.
        endpoint: String,
        /// The limit.
        seconds: f64,
    },
    /// The source is overloaded or briefly unavailable (a rate-limited kubelet): asking again later may
    /// succeed, so the CNI answers "try again later" (code 11).
    #[error("{endpoint} is busy: {reason}")]
    Busy {
        /// The source.
        endpoint: String,
        /// What it answered.
        reason: String,
    },
    /// The source answered the request with an error.
    #[error("{endpoint} refused the request: {reason}")]
    Refused {
        /// The source.
        endpoint: String,
        /// What it answered.
        reason: String,
    },
    /// The source's answer cannot be read.
    #[error("{endpoint} gave an unreadable answer: {reason}")]
    Malformed {
        /// The source.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Tells which devices the device plugins allocated to a pod.
///
/// What each method must guarantee:
/// - [`pod_devices`](Self::pod_devices) returns every device allocated to the pod, by resource name,
///   across all its containers (each container's devices after the previous container's, each resource's
///   IDs in the order the allocator reports them). A pod the source knows with no devices is an empty
///   [`PodDevices`], not an error; a pod it does not know is empty or an error, as the source answers
///   (the kubelet's `List` leaves it out, its `Get` fails). It changes nothing and may be called any
///   number of times; the meta-plugin calls it at most once per ADD, and only when an attachment needs a
///   device. It is bounded in time: a source that cannot answer promptly returns
///   [`DeviceError::Timeout`] rather than using up the caller's budget. Dropping the future abandons
///   the question.
/// - [`describe`](Self::describe) names the source for messages, e.g. "the kubelet's PodResources API
///   at /var/lib/kubelet/pod-resources/kubelet.sock".
#[async_trait]
pub trait DeviceSource: Send + Sync + fmt::Debug {
    /// The devices allocated to `pod`, by resource name.
    async fn pod_devices(&self, pod: PodRef<'_>) -> Result<PodDevices, DeviceError>;
    /// The source, as messages name it.
    fn describe(&self) -> String;
}

macro_rules! forward_source {
    ($ty:ty) => {
        #[async_trait]
        impl<T: DeviceSource + ?Sized> DeviceSource for $ty {
            async fn pod_devices(&self, pod: PodRef<'_>) -> Result<PodDevices, DeviceError> {
                (**self).pod_devices(pod).await
            }
            fn describe(&self) -> String {
                (**self).describe()
            }
        }
    };
}

forward_source!(std::sync::Arc<T>);
forward_source!(&T);
forward_source!(Box<T>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_keep_their_order_per_resource() {
        let mut d = PodDevices::new();
        assert!(d.is_empty());
        d.extend("example.com/a", ["0000:01:00.3", "0000:01:00.1"]);
        d.extend("example.com/b", ["0000:02:00.1"]);
        d.extend("example.com/a", ["0000:01:00.2"]);
        assert_eq!(d.of("example.com/a"), ["0000:01:00.3", "0000:01:00.1", "0000:01:00.2"]);
        assert_eq!(d.of("example.com/none"), [] as [String; 0]);
        assert_eq!(d.iter().map(|(r, _)| r).collect::<Vec<_>>(), ["example.com/a", "example.com/b"]);
        let collected: PodDevices = [("example.com/b", vec!["0000:02:00.1"])].into_iter().collect();
        assert_eq!(collected.of("example.com/b"), ["0000:02:00.1"]);
    }

    #[test]
    fn the_annotation_is_read_or_named_when_malformed() {
        let d =
            PodDevices::from_annotation(r#"{"nokia.k8s.io/sriov_ens1f0": ["0000:01:00.1", "0000:01:00.2"]}"#).unwrap();
        assert_eq!(d.of("nokia.k8s.io/sriov_ens1f0"), ["0000:01:00.1", "0000:01:00.2"]);
        let err = PodDevices::from_annotation(r#"{"x": "0000:01:00.1"}"#).unwrap_err();
        assert!(err.contains(DEVICES_ANNOTATION), "{err}");
    }

    #[test]
    fn errors_name_their_source() {
        let e = DeviceError::Timeout { endpoint: "the kubelet".into(), seconds: 2.5 };
        assert_eq!(e.to_string(), "the kubelet did not answer within 2.5 s");
    }
}

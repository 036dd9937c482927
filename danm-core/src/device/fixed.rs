//! A device source for tests: answers from devices set per pod, records every question, and can be told
//! to fail or never to answer.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{DeviceError, DeviceSource, PodDevices, PodRef};

#[derive(Debug, Default)]
struct State {
    pods: BTreeMap<(String, String), PodDevices>,
    failure: Option<DeviceError>,
    hang: bool,
    calls: Vec<(String, String)>,
}

/// A stateful fake [`DeviceSource`]: a pod's devices are what [`set`](Self::set) stored for it (none for
/// a pod never set); [`fail`](Self::fail) makes every question fail, [`hang`](Self::hang) makes every
/// question wait until it is dropped. Every question is recorded, answered or not.
#[derive(Debug, Default)]
pub struct FixedDeviceSource {
    state: Mutex<State>,
}

impl FixedDeviceSource {
    /// A source that knows no pod.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores the devices of pod `namespace/name`, replacing what was there.
    pub fn set(&self, namespace: &str, name: &str, devices: PodDevices) {
        self.lock().pods.insert((namespace.to_owned(), name.to_owned()), devices);
    }

    /// Makes every question fail with `error` from now on.
    pub fn fail(&self, error: DeviceError) {
        self.lock().failure = Some(error);
    }

    /// Makes every question wait forever (until its future is dropped) from now on.
    pub fn hang(&self) {
        self.lock().hang = true;
    }

    /// The pods asked about, `(namespace, name)`, in order.
    pub fn calls(&self) -> Vec<(String, String)> {
        self.lock().calls.clone()
    }
}

#[async_trait]
impl DeviceSource for FixedDeviceSource {
    async fn pod_devices(&self, pod: PodRef<'_>) -> Result<PodDevices, DeviceError> {
        let (hang, answer) = {
            let mut state = self.lock();
            state.calls.push((pod.namespace.to_owned(), pod.name.to_owned()));
            let answer = match &state.failure {
                Some(e) => Err(e.clone()),
                None => {
                    Ok(state.pods.get(&(pod.namespace.to_owned(), pod.name.to_owned())).cloned().unwrap_or_default())
                }
            };
            (state.hang, answer)
        };
        if hang {
            futures::future::pending::<()>().await;
        }
        answer
    }

    fn describe(&self) -> String {
        "the fixed device source".into()
    }
}

//! Provisioners that do not touch the kernel: a do-nothing one for dry runs, one that refuses with a
//! clear error for builds without a kernel backend, and a recording one for tests.

use std::path::Path;

use async_trait::async_trait;

use super::{
    CreatedInterface, HostInterface, HostInventory, HostScan, InterfaceProvisioner, InterfaceSetup, LinkState,
    PodInterface, ProvisionError, Removal,
};

/// Does nothing and reports success: for dry runs, where the plan is shown but not applied.
/// [`inspect`](InterfaceProvisioner::inspect) reports every interface as absent.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopProvisioner;

#[async_trait]
impl InterfaceProvisioner for NoopProvisioner {
    async fn create(&self, iface: &PodInterface) -> Result<CreatedInterface, ProvisionError> {
        Ok(CreatedInterface { mac: String::new(), mtu: iface.mtu.unwrap_or(1500) })
    }
    async fn delete(&self, _netns: &Path, _name: &str) -> Result<(), ProvisionError> {
        Ok(())
    }
    async fn inspect(&self, _netns: &Path, _name: &str) -> Result<Option<LinkState>, ProvisionError> {
        Ok(None)
    }
    async fn ensure_host(&self, _host: &HostInterface, _holder: &str) -> Result<(), ProvisionError> {
        Ok(())
    }
    async fn release_host(&self, _name: &str, _holder: &str) -> Result<bool, ProvisionError> {
        Ok(false)
    }
    async fn configure(&self, _setup: &InterfaceSetup) -> Result<bool, ProvisionError> {
        Ok(true)
    }
    async fn deconfigure(&self, _setup: &InterfaceSetup) -> Result<(), ProvisionError> {
        Ok(())
    }
}

/// Sees no host interface and removes none.
#[async_trait]
impl HostInventory for NoopProvisioner {
    async fn scan_hosts(&self) -> Result<HostScan, ProvisionError> {
        Ok(HostScan::default())
    }
    async fn remove_host(&self, _name: &str, _when: Removal) -> Result<bool, ProvisionError> {
        Ok(false)
    }
}

/// Refuses every request with [`ProvisionError::Unsupported`] naming the reason: what a build without a
/// kernel backend uses, so that the built-in network types fail clearly instead of pretending.
/// Deleting is still success (there is nothing this backend could have created).
#[derive(Debug, Clone)]
pub struct UnavailableProvisioner {
    reason: String,
}

impl UnavailableProvisioner {
    /// A provisioner that refuses, giving `reason`.
    pub fn new(reason: impl Into<String>) -> Self {
        Self { reason: reason.into() }
    }

    fn refuse<T>(&self, what: &str) -> Result<T, ProvisionError> {
        Err(ProvisionError::Unsupported { what: what.to_owned(), reason: self.reason.clone() })
    }
}

#[async_trait]
impl InterfaceProvisioner for UnavailableProvisioner {
    async fn create(&self, iface: &PodInterface) -> Result<CreatedInterface, ProvisionError> {
        self.refuse(&format!("creating {} with a built-in backend", iface.name))
    }
    async fn delete(&self, _netns: &Path, _name: &str) -> Result<(), ProvisionError> {
        Ok(())
    }
    async fn inspect(&self, _netns: &Path, name: &str) -> Result<Option<LinkState>, ProvisionError> {
        self.refuse(&format!("inspecting {name}"))
    }
    async fn ensure_host(&self, host: &HostInterface, _holder: &str) -> Result<(), ProvisionError> {
        self.refuse(&format!("creating host interface {}", host.name))
    }
    async fn release_host(&self, _name: &str, _holder: &str) -> Result<bool, ProvisionError> {
        Ok(false)
    }
    async fn configure(&self, setup: &InterfaceSetup) -> Result<bool, ProvisionError> {
        self.refuse(&format!("configuring {}", setup.name))
    }
    async fn deconfigure(&self, _setup: &InterfaceSetup) -> Result<(), ProvisionError> {
        Ok(())
    }
}

/// Refuses to scan; removing is success, as deleting is.
#[async_trait]
impl HostInventory for UnavailableProvisioner {
    async fn scan_hosts(&self) -> Result<HostScan, ProvisionError> {
        self.refuse("reading the host interfaces")
    }
    async fn remove_host(&self, _name: &str, _when: Removal) -> Result<bool, ProvisionError> {
        Ok(false)
    }
}

#[cfg(any(test, feature = "test-util"))]
pub use recording::{ProvisionCall, RecordingProvisioner};

#[cfg(any(test, feature = "test-util"))]
mod recording {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::super::{
        CreatedInterface, HostInterface, HostInventory, HostScan, InterfaceProvisioner, InterfaceSetup, LinkState,
        ObservedHost, PodInterface, ProvisionError, Removal, holder_record,
    };

    /// One call made to a [`RecordingProvisioner`].
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum ProvisionCall {
        /// `create` of the interface with this name in this netns.
        Create(PathBuf, String),
        /// `delete`.
        Delete(PathBuf, String),
        /// `inspect`.
        Inspect(PathBuf, String),
        /// `ensure_host` of this interface for this holder.
        EnsureHost(String, String),
        /// `release_host`.
        ReleaseHost(String, String),
        /// `configure` of the interface with this name in this netns.
        Configure(PathBuf, String),
        /// `deconfigure`.
        Deconfigure(PathBuf, String),
        /// `scan_hosts`.
        ScanHosts,
        /// `remove_host`.
        RemoveHost(String),
    }

    #[derive(Debug, Default)]
    struct State {
        calls: Vec<ProvisionCall>,
        pods: BTreeMap<(PathBuf, String), PodInterface>,
        configured: BTreeMap<(PathBuf, String), InterfaceSetup>,
        hosts: BTreeMap<String, ObservedHost>,
        devices: BTreeSet<String>,
        fail_on: Option<usize>,
    }

    /// A stateful fake provisioner: it keeps the interfaces it "created" (so `inspect` and `delete`
    /// behave like a kernel's), records every call, and can be told to fail on the Nth call.
    ///
    /// Host interfaces behave as the netlink backend's: holders are kept in recorded form
    /// ([`holder_record`]), `ensure_host` refuses an interface of the wanted name that is another kind or
    /// on another parent, sets the MTU when one is asked and brings the interface up; a new interface
    /// gets the asked MTU or 1500. Once [`set_host_devices`](Self::set_host_devices) has named the
    /// node's devices, `ensure_host` also refuses a parent not among them; before, any parent goes.
    #[derive(Debug, Default)]
    pub struct RecordingProvisioner {
        state: Mutex<State>,
    }

    impl RecordingProvisioner {
        /// An empty provisioner.
        pub fn new() -> Self {
            Self::default()
        }

        /// Makes call number `n` (0-based, counting every method) fail.
        pub fn fail_on_call(&self, n: usize) {
            self.lock().fail_on = Some(n);
        }

        /// The calls so far.
        pub fn calls(&self) -> Vec<ProvisionCall> {
            self.lock().calls.clone()
        }

        /// The pod interfaces that exist now, by netns and name.
        pub fn pod_interfaces(&self) -> Vec<(PathBuf, String)> {
            self.lock().pods.keys().cloned().collect()
        }

        /// The configuration applied to delegated interfaces and not removed since, by netns and name.
        pub fn configured(&self) -> BTreeMap<(PathBuf, String), InterfaceSetup> {
            self.lock().configured.clone()
        }

        /// The host interfaces that exist now, with their holders (in recorded form).
        pub fn host_interfaces(&self) -> BTreeMap<String, BTreeSet<String>> {
            self.lock().hosts.iter().map(|(name, host)| (name.clone(), host.holders.clone())).collect()
        }

        /// Host interface `name` as [`scan_hosts`](HostInventory::scan_hosts) would report it.
        pub fn host(&self, name: &str) -> Option<ObservedHost> {
            self.lock().hosts.get(name).cloned()
        }

        /// Names the node's interfaces other than the host interfaces (the possible `host_device`s).
        pub fn set_host_devices<S: Into<String>>(&self, devices: impl IntoIterator<Item = S>) {
            self.lock().devices = devices.into_iter().map(Into::into).collect();
        }

        /// Replaces (or adds) a host interface behind the provisioner's back, as an operator would.
        pub fn set_host_behind_the_back(&self, host: ObservedHost) {
            self.lock().hosts.insert(host.name.clone(), host);
        }

        /// Removes a host interface behind the provisioner's back, as `ip link del` would.
        pub fn remove_host_behind_the_back(&self, name: &str) {
            self.lock().hosts.remove(name);
        }

        /// Removes a pod interface behind the provisioner's back, as an operator or a crash would.
        pub fn remove_behind_the_back(&self, netns: &Path, name: &str) {
            self.lock().pods.remove(&(netns.to_path_buf(), name.to_owned()));
        }

        fn lock(&self) -> std::sync::MutexGuard<'_, State> {
            self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
        }

        fn record(&self, call: ProvisionCall) -> Result<std::sync::MutexGuard<'_, State>, ProvisionError> {
            let mut s = self.lock();
            let n = s.calls.len();
            s.calls.push(call.clone());
            if s.fail_on == Some(n) {
                return Err(ProvisionError::Kernel {
                    operation: format!("{call:?}"),
                    source: format!("injected failure on call {n}").into(),
                });
            }
            Ok(s)
        }
    }

    #[async_trait]
    impl InterfaceProvisioner for RecordingProvisioner {
        async fn create(&self, iface: &PodInterface) -> Result<CreatedInterface, ProvisionError> {
            let key = (iface.netns.clone(), iface.name.clone());
            let mut s = self.record(ProvisionCall::Create(key.0.clone(), key.1.clone()))?;
            if s.pods.contains_key(&key) {
                return Err(ProvisionError::Exists { name: iface.name.clone() });
            }
            s.pods.insert(key, iface.clone());
            Ok(CreatedInterface { mac: "02:00:00:00:00:01".into(), mtu: iface.mtu.unwrap_or(1500) })
        }
        async fn delete(&self, netns: &Path, name: &str) -> Result<(), ProvisionError> {
            let mut s = self.record(ProvisionCall::Delete(netns.to_path_buf(), name.to_owned()))?;
            s.pods.remove(&(netns.to_path_buf(), name.to_owned()));
            Ok(())
        }
        async fn inspect(&self, netns: &Path, name: &str) -> Result<Option<LinkState>, ProvisionError> {
            let s = self.record(ProvisionCall::Inspect(netns.to_path_buf(), name.to_owned()))?;
            Ok(s.pods.get(&(netns.to_path_buf(), name.to_owned())).map(|i| LinkState {
                name: i.name.clone(),
                mac: "02:00:00:00:00:01".into(),
                mtu: i.mtu.unwrap_or(1500),
                up: true,
                addresses: i.addresses.clone(),
            }))
        }
        async fn ensure_host(&self, host: &HostInterface, holder: &str) -> Result<(), ProvisionError> {
            let mut s = self.record(ProvisionCall::EnsureHost(host.name.clone(), holder.to_owned()))?;
            if !s.devices.is_empty() && !s.devices.contains(&host.parent) {
                return Err(ProvisionError::ParentMissing { parent: host.parent.clone() });
            }
            let existing = s.hosts.entry(host.name.clone()).or_insert_with(|| ObservedHost {
                name: host.name.clone(),
                kind: Some(host.kind),
                parent: Some(host.parent.clone()),
                holders: BTreeSet::new(),
                up: true,
                mtu: host.mtu.unwrap_or(1500),
            });
            if existing.kind != Some(host.kind) || existing.parent.as_deref() != Some(host.parent.as_str()) {
                return Err(ProvisionError::Invalid {
                    name: host.name.clone(),
                    reason: format!("the interface exists but is not {:?} on {}", host.kind, host.parent),
                });
            }
            existing.holders.insert(holder_record(holder));
            existing.up = true;
            if let Some(mtu) = host.mtu {
                existing.mtu = mtu;
            }
            Ok(())
        }
        async fn release_host(&self, name: &str, holder: &str) -> Result<bool, ProvisionError> {
            let mut s = self.record(ProvisionCall::ReleaseHost(name.to_owned(), holder.to_owned()))?;
            let Some(host) = s.hosts.get_mut(name) else { return Ok(false) };
            if !host.holders.remove(&holder_record(holder)) {
                return Ok(false);
            }
            if host.holders.is_empty() {
                s.hosts.remove(name);
                return Ok(true);
            }
            Ok(false)
        }
        async fn configure(&self, setup: &InterfaceSetup) -> Result<bool, ProvisionError> {
            let key = (setup.netns.clone(), setup.name.clone());
            let mut s = self.record(ProvisionCall::Configure(key.0.clone(), key.1.clone()))?;
            s.configured.insert(key, setup.clone());
            Ok(true)
        }
        async fn deconfigure(&self, setup: &InterfaceSetup) -> Result<(), ProvisionError> {
            let key = (setup.netns.clone(), setup.name.clone());
            let mut s = self.record(ProvisionCall::Deconfigure(key.0.clone(), key.1.clone()))?;
            s.configured.remove(&key);
            Ok(())
        }
    }

    #[async_trait]
    impl HostInventory for RecordingProvisioner {
        async fn scan_hosts(&self) -> Result<HostScan, ProvisionError> {
            let s = self.record(ProvisionCall::ScanHosts)?;
            let mut devices = s.devices.clone();
            devices.extend(s.hosts.keys().cloned());
            Ok(HostScan { devices, managed: s.hosts.values().cloned().collect() })
        }
        async fn remove_host(&self, name: &str, when: Removal) -> Result<bool, ProvisionError> {
            let mut s = self.record(ProvisionCall::RemoveHost(name.to_owned()))?;
            if when == Removal::IfUnheld && s.hosts.get(name).is_some_and(|h| !h.holders.is_empty()) {
                return Ok(false);
            }
            Ok(s.hosts.remove(name).is_some())
        }
    }
}

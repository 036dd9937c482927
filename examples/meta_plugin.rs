//! Driving the DANM meta-plugin from Rust, without the `danm` binary, with a provisioner of your own.
//!
//! The provisioner here only logs what it is asked to do and keeps the interfaces in memory; a real one
//! would talk to the kernel (see the danm-netlink crate). Delegates are not used, so the executor refuses
//! every plugin.
//!
//! `cargo run -p danm-examples --example meta_plugin`

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use danm_core::delegate::{DelegateError, DelegateExecutor, Invocation};
use danm_core::meta::{MetaConfig, MetaPlugin, PodContext};
use danm_core::model::{Network, NetworkKind, NetworkOptions, NetworkSpec, ObjectMeta, PodRecord};
use danm_core::provision::{
    CreatedInterface, HostInterface, InterfaceProvisioner, InterfaceSetup, LinkState, PodInterface, ProvisionError,
};
use danm_core::retry::{BoxFuture, Sleeper};
use danm_core::store::{Datastore, MemoryStore, Object};

/// A provisioner that prints its work and remembers interfaces.
#[derive(Debug, Default)]
struct LoggingProvisioner {
    interfaces: Mutex<BTreeMap<(PathBuf, String), PodInterface>>,
}

#[async_trait]
impl InterfaceProvisioner for LoggingProvisioner {
    async fn create(&self, iface: &PodInterface) -> Result<CreatedInterface, ProvisionError> {
        let addrs: Vec<String> = iface.addresses.iter().map(ToString::to_string).collect();
        println!(
            "  create {} ({:?} on {}) in {} with {}",
            iface.name,
            iface.link,
            iface.parent,
            iface.netns.display(),
            addrs.join(", ")
        );
        let key = (iface.netns.clone(), iface.name.clone());
        self.interfaces
            .lock()
            .map_err(|_| ProvisionError::Invalid { name: iface.name.clone(), reason: "lock".into() })?
            .insert(key, iface.clone());
        Ok(CreatedInterface { mac: "02:42:ac:11:00:02".into(), mtu: iface.mtu.unwrap_or(1500) })
    }
    async fn delete(&self, netns: &Path, name: &str) -> Result<(), ProvisionError> {
        println!("  delete {name} in {}", netns.display());
        if let Ok(mut m) = self.interfaces.lock() {
            m.remove(&(netns.to_path_buf(), name.to_owned()));
        }
        Ok(())
    }
    async fn inspect(&self, netns: &Path, name: &str) -> Result<Option<LinkState>, ProvisionError> {
        let m =
            self.interfaces.lock().map_err(|_| ProvisionError::Invalid { name: name.into(), reason: "lock".into() })?;
        Ok(m.get(&(netns.to_path_buf(), name.to_owned())).map(|i| LinkState {
            name: i.name.clone(),
            mac: "02:42:ac:11:00:02".into(),
            mtu: 1500,
            up: true,
            addresses: i.addresses.clone(),
        }))
    }
    async fn ensure_host(&self, host: &HostInterface, holder: &str) -> Result<(), ProvisionError> {
        println!("  host interface {} on {} for {holder}", host.name, host.parent);
        Ok(())
    }
    async fn release_host(&self, _name: &str, _holder: &str) -> Result<bool, ProvisionError> {
        Ok(false)
    }
    async fn configure(&self, setup: &InterfaceSetup) -> Result<bool, ProvisionError> {
        println!("  configure delegated {} in {}", setup.name, setup.netns.display());
        Ok(true)
    }
    async fn deconfigure(&self, _setup: &InterfaceSetup) -> Result<(), ProvisionError> {
        Ok(())
    }
}

/// No delegates in this example.
#[derive(Debug)]
struct NoDelegates;

#[async_trait]
impl DelegateExecutor for NoDelegates {
    async fn invoke(&self, inv: &Invocation) -> Result<Vec<u8>, DelegateError> {
        Err(DelegateError::NotFound { plugin: inv.plugin.clone(), path: "(none)".into() })
    }
    async fn static_config(&self, _network_id: &str) -> Result<Option<(PathBuf, Vec<u8>)>, DelegateError> {
        Ok(None)
    }
}

/// The time budget and IPAM backoff need a real timer: tokio's.
#[derive(Debug)]
struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(d))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = Arc::new(MemoryStore::new());
    for (name, ty, cidr, vlan) in
        [("internal", "ipvlan", "10.10.0.0/24", None), ("external", "macvlan", "192.0.2.0/24", Some(100))]
    {
        let options =
            NetworkOptions { host_device: "eth1".into(), cidr: cidr.into(), vlan, ..NetworkOptions::default() };
        let spec = NetworkSpec { network_id: name.into(), network_type: ty.into(), options, ..NetworkSpec::default() };
        store
            .create(&Object::Network(Network::new(NetworkKind::DanmNet, ObjectMeta::new(name, Some("vnf")), spec)))
            .await?;
    }
    let mut meta = ObjectMeta::new("lb-0", Some("vnf"));
    meta.uid = Some("7f9d".into());
    meta.annotations.insert(
        "danm.k8s.io/interfaces".into(),
        r#"[{"network":"internal","ip":"dynamic"},{"network":"external","ip":"192.0.2.10"}]"#.into(),
    );
    store.create(&Object::Pod(PodRecord { metadata: meta, ..PodRecord::default() })).await?;

    let config = MetaConfig { host: "node-1".into(), ..MetaConfig::default() };
    let plugin =
        MetaPlugin::new(store.clone(), LoggingProvisioner::default(), NoDelegates, Arc::new(TokioSleeper), config);
    let ctx = PodContext {
        container_id: "0123abcd".into(),
        netns: Some("/var/run/netns/lb-0".into()),
        namespace: "vnf".into(),
        name: "lb-0".into(),
        uid: Some("7f9d".into()),
        args: String::new(),
    };
    println!("ADD");
    let result = plugin.add(&ctx).await?;
    println!("result: {}", result.to_json(danm_core::cni::CniVersion::LATEST));
    println!("CHECK");
    plugin.check(&ctx).await?;
    println!("DEL");
    plugin.del(&ctx).await?;
    println!("left in the store: {} objects (2 networks and the pod)", store.len());
    Ok(())
}

//! DEL and GC: undoing recorded attachments, idempotently.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use futures::future::join_all;

use super::delegate_conf::invocation;
use super::{Backend, DELEGATE_ANNOTATION, MetaError, MetaPlugin, PHASE_ANNOTATION, PodContext, RESULT_ANNOTATION};
use crate::cni::{Attachment as GcAttachment, CniResult, NetConfList};
use crate::delegate::{CniCommand, DelegateExecutor};
use crate::ipam::{IpamError, OwnerId};
use crate::model::{DanmEp, Network, NetworkKey, NetworkKind};
use crate::provision::{InterfaceProvisioner, InterfaceSetup, Ipv6Mode, PolicyRouting};
use crate::store::{Datastore, DatastoreExt, EndpointQuery, Object, ObjectKey, Query, StoreError};

impl<S: Datastore, P: InterfaceProvisioner, D: DelegateExecutor> MetaPlugin<S, P, D> {
    /// DEL: removes every attachment recorded for the container. Succeeds when there is nothing to do
    /// (a repeated DEL, a half-done ADD, a missing netns or interface). An attachment whose interface
    /// could not be removed keeps its record, so that a retried DEL finds it again.
    /// The whole DEL runs under the time budget; a delegate that hangs is stopped and the DEL fails,
    /// keeping the records of what is left.
    pub async fn del(&self, ctx: &PodContext) -> Result<(), MetaError> {
        self.budget("DEL", self.del_unbounded(ctx)).await
    }

    async fn del_unbounded(&self, ctx: &PodContext) -> Result<(), MetaError> {
        let eps = self.store.list_as::<DanmEp>(&Query::Endpoints(EndpointQuery::container(&ctx.container_id))).await?;
        let jobs = eps.iter().map(|v| self.teardown(&v.value, ctx.netns.as_deref(), &ctx.args));
        let errors: Vec<MetaError> = join_all(jobs).await.into_iter().filter_map(Result::err).collect();
        MetaError::many(errors).map_or(Ok(()), Err)
    }

    /// GC: removes the attachments this node recorded for containers not in `valid` (the runtime's
    /// `cni.dev/valid-attachments`). Keeps going past errors and reports them all.
    pub async fn gc(&self, valid: &[GcAttachment]) -> Result<Vec<String>, MetaError> {
        self.budget("GC", self.gc_unbounded(valid)).await
    }

    async fn gc_unbounded(&self, valid: &[GcAttachment]) -> Result<Vec<String>, MetaError> {
        let keep: BTreeSet<&str> = valid.iter().map(|a| a.container_id.as_str()).collect();
        let eps = self.store.list_as::<DanmEp>(&Query::Endpoints(EndpointQuery::host(&self.config.host))).await?;
        let stale: Vec<&DanmEp> =
            eps.iter().map(|v| &v.value).filter(|ep| !keep.contains(ep.spec.cid.as_str())).collect();
        let results = join_all(stale.iter().map(|ep| self.teardown(ep, None, ""))).await;
        let mut removed = Vec::new();
        let mut errors = Vec::new();
        for (ep, r) in stale.iter().zip(results) {
            match r {
                Ok(()) => removed.push(format!("{}/{} ({})", ep.spec.pod, ep.spec.interface.name, ep.spec.cid)),
                Err(e) => errors.push(e),
            }
        }
        MetaError::many(errors).map_or(Ok(removed), Err)
    }

    /// Removes one recorded attachment: its interface (or delegate), its addresses, then its record.
    async fn teardown(&self, ep: &DanmEp, netns: Option<&Path>, args: &str) -> Result<(), MetaError> {
        let name = &ep.spec.interface.name;
        let network = self.endpoint_network(ep).await?;
        let label = endpoint_network_label(ep);
        let recorded_netns = (!ep.spec.netns.is_empty()).then(|| PathBuf::from(&ep.spec.netns));
        let netns = netns.map(Path::to_path_buf).or(recorded_netns);
        match Backend::of(&ep.spec.network_type) {
            Backend::BuiltIn(_) => {
                if let Some(ns) = &netns {
                    self.provisioner.delete(ns, name).await.map_err(|source| MetaError::Provision {
                        interface: name.clone(),
                        network: label.clone(),
                        source: Box::new(source),
                    })?;
                }
            }
            _ => {
                if let (Some(ns), Some(table)) = (&netns, policy_table(ep, network.as_ref())) {
                    let setup = InterfaceSetup {
                        netns: ns.clone(),
                        name: name.clone(),
                        routes: Vec::new(),
                        policy: Some(PolicyRouting { table, routes: Vec::new() }),
                        ipv6: Ipv6Mode::Disabled,
                    };
                    self.provisioner.deconfigure(&setup).await.map_err(|source| MetaError::Provision {
                        interface: name.clone(),
                        network: label.clone(),
                        source: Box::new(source),
                    })?;
                }
                if let Some(list) = recorded_delegate(ep) {
                    let prev = ep
                        .metadata
                        .annotations
                        .get(RESULT_ANNOTATION)
                        .and_then(|r| CniResult::from_slice(r.as_bytes()).ok());
                    let ctx = PodContext {
                        container_id: ep.spec.cid.clone(),
                        netns: None,
                        namespace: String::new(),
                        name: ep.spec.pod.clone(),
                        uid: None,
                        args: args.to_owned(),
                    };
                    self.delegate_del(&ctx, name, netns.as_deref(), &list, prev.as_ref()).await?;
                }
            }
        }
        if let Some(net) = &network {
            self.free_endpoint(ep, net).await.map_err(|source| MetaError::Ipam {
                interface: name.clone(),
                network: label.clone(),
                source: Box::new(source),
            })?;
        }
        self.delete_endpoint(ep).await
    }

    /// Runs DEL for every plugin of a delegate list, last plugin first, each given the final result.
    pub(super) async fn delegate_del(
        &self,
        ctx: &PodContext,
        ifname: &str,
        netns: Option<&Path>,
        list: &NetConfList,
        prev: Option<&CniResult>,
    ) -> Result<(), MetaError> {
        let label = list.name.clone();
        let version = list.negotiated_version().map_err(|e| MetaError::DelegateConfig {
            interface: ifname.to_owned(),
            network: label.clone(),
            reason: e.to_string(),
        })?;
        let mut errors = Vec::new();
        for i in (0..list.plugins.len()).rev() {
            let conf = match list.plugin_conf(i, version, prev, None) {
                Ok(c) => c,
                Err(e) => {
                    errors.push(MetaError::DelegateConfig {
                        interface: ifname.to_owned(),
                        network: label.clone(),
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            let inv =
                invocation(&conf, CniCommand::Del, ctx, netns.filter(|p| p.exists()).map(Path::to_path_buf), ifname);
            if let Err(source) = self.delegates.invoke(&inv).await {
                errors.push(MetaError::Delegate {
                    interface: ifname.to_owned(),
                    network: label.clone(),
                    source: Box::new(source),
                });
            }
        }
        MetaError::many(errors).map_or(Ok(()), Err)
    }

    /// Frees an endpoint's addresses: the recorded ones, or, for an ADD that never finished, whatever its
    /// owner holds on the network.
    async fn free_endpoint(&self, ep: &DanmEp, network: &Network) -> Result<(), IpamError> {
        let owner = OwnerId::for_attachment(&ep.spec.cid, &ep.spec.interface.name);
        if ep.metadata.annotations.contains_key(PHASE_ANNOTATION) {
            self.ipam.free_owner(network, owner).await?;
            return Ok(());
        }
        for recorded in [&ep.spec.interface.address, &ep.spec.interface.address_ipv6] {
            let Ok(net) = recorded.parse::<ipnet::IpNet>() else { continue };
            match self.ipam.free(network, net.addr(), owner).await {
                // Held by someone else: it was freed before and handed out again.
                Ok(()) | Err(IpamError::HeldByOther { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Deletes a DanmEp; one already gone is fine.
    pub(super) async fn delete_endpoint(&self, ep: &DanmEp) -> Result<(), MetaError> {
        let key = Object::Endpoint(ep.clone()).key();
        match self.store.delete(&key, None).await {
            Ok(()) => Ok(()),
            Err(StoreError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The network an endpoint is attached to, if it still exists.
    async fn endpoint_network(&self, ep: &DanmEp) -> Result<Option<Network>, MetaError> {
        let Some(kind) = ep.spec.network_kind() else { return Ok(None) };
        let namespace = ep.metadata.namespace.clone().unwrap_or_default();
        let key = NetworkKey::new(kind, &namespace, ep.spec.network_name.clone());
        Ok(self.store.get_as::<Network>(&ObjectKey::Network(key)).await?.map(|v| v.value))
    }
}

/// The delegate configuration recorded in an endpoint. It is written before the delegate first runs, so
/// an endpoint without one never had a delegate run for it.
fn recorded_delegate(ep: &DanmEp) -> Option<NetConfList> {
    let recorded = ep.metadata.annotations.get(DELEGATE_ANNOTATION)?;
    let value: serde_json::Value = serde_json::from_str(recorded).ok()?;
    NetConfList::from_value(&value).ok()
}

/// The table DANM put a delegated interface's policy routes in: the network's `rt_tables`, when the
/// endpoint has policy routes.
fn policy_table(ep: &DanmEp, network: Option<&Network>) -> Option<u32> {
    let iface = &ep.spec.interface;
    if iface.proutes.is_empty() && iface.proutes6.is_empty() {
        return None;
    }
    network?.spec.options.rt_tables.and_then(|t| u32::try_from(t).ok()).filter(|t| *t > 0)
}

fn endpoint_network_label(ep: &DanmEp) -> String {
    let kind = ep.spec.network_kind().unwrap_or(NetworkKind::DanmNet);
    NetworkKey::new(kind, ep.metadata.namespace.as_deref().unwrap_or_default(), ep.spec.network_name.clone())
        .to_string()
}

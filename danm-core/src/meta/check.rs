//! CHECK: the recorded attachments really exist in the pod's netns, with their addresses.

use std::path::PathBuf;

use super::delegate_conf::invocation;
use super::{Backend, DELEGATE_ANNOTATION, MetaError, MetaPlugin, PHASE_ANNOTATION, PodContext, RESULT_ANNOTATION};
use crate::cni::{CniResult, NetConfList};
use crate::delegate::{CniCommand, DelegateExecutor};
use crate::model::DanmEp;
use crate::provision::InterfaceProvisioner;
use crate::store::{Datastore, DatastoreExt, EndpointQuery, Query};

impl<S: Datastore, P: InterfaceProvisioner, D: DelegateExecutor> MetaPlugin<S, P, D> {
    /// CHECK: every attachment recorded for the container exists in its netns with the addresses it was
    /// given; delegates are asked to CHECK theirs too. Fails naming what is missing.
    pub async fn check(&self, ctx: &PodContext) -> Result<(), MetaError> {
        self.budget("CHECK", self.check_unbounded(ctx)).await
    }

    async fn check_unbounded(&self, ctx: &PodContext) -> Result<(), MetaError> {
        let eps = self.store.list_as::<DanmEp>(&Query::Endpoints(EndpointQuery::container(&ctx.container_id))).await?;
        if eps.is_empty() {
            return Err(MetaError::Check(format!("no attachments are recorded for container {}", ctx.container_id)));
        }
        let mut problems = Vec::new();
        for ep in eps.iter().map(|v| &v.value) {
            if let Err(e) = self.check_one(ctx, ep).await {
                problems.push(e);
            }
        }
        MetaError::many(problems).map_or(Ok(()), Err)
    }

    async fn check_one(&self, ctx: &PodContext, ep: &DanmEp) -> Result<(), MetaError> {
        let name = &ep.spec.interface.name;
        if ep.metadata.annotations.contains_key(PHASE_ANNOTATION) {
            return Err(MetaError::Check(format!("interface {name}: its ADD never completed")));
        }
        let netns = ctx.netns.clone().unwrap_or_else(|| PathBuf::from(&ep.spec.netns));
        let state = self.provisioner.inspect(&netns, name).await.map_err(|source| MetaError::Provision {
            interface: name.clone(),
            network: ep.spec.network_name.clone(),
            source: Box::new(source),
        })?;
        let Some(state) = state else {
            return Err(MetaError::Check(format!("interface {name} is gone from {}", netns.display())));
        };
        for recorded in [&ep.spec.interface.address, &ep.spec.interface.address_ipv6] {
            let Ok(addr) = recorded.parse::<ipnet::IpNet>() else { continue };
            if !state.addresses.iter().any(|a| a.addr() == addr.addr()) {
                return Err(MetaError::Check(format!("interface {name} has lost its address {addr}")));
            }
        }
        if !matches!(Backend::of(&ep.spec.network_type), Backend::BuiltIn(_)) {
            self.delegate_check(ctx, ep, &netns).await?;
        }
        Ok(())
    }

    async fn delegate_check(&self, ctx: &PodContext, ep: &DanmEp, netns: &std::path::Path) -> Result<(), MetaError> {
        let name = &ep.spec.interface.name;
        let Some(list) = ep
            .metadata
            .annotations
            .get(DELEGATE_ANNOTATION)
            .and_then(|v| serde_json::from_str::<serde_json::Value>(v).ok())
            .and_then(|v| NetConfList::from_value(&v).ok())
        else {
            return Ok(());
        };
        if list.disable_check {
            return Ok(());
        }
        let prev =
            ep.metadata.annotations.get(RESULT_ANNOTATION).and_then(|r| CniResult::from_slice(r.as_bytes()).ok());
        let cfg_err =
            |reason: String| MetaError::DelegateConfig { interface: name.clone(), network: list.name.clone(), reason };
        let version = list.negotiated_version().map_err(|e| cfg_err(e.to_string()))?;
        for i in 0..list.plugins.len() {
            let conf = list.plugin_conf(i, version, prev.as_ref(), None).map_err(|e| cfg_err(e.to_string()))?;
            let inv = invocation(&conf, CniCommand::Check, ctx, Some(netns.to_path_buf()), name);
            self.delegates.invoke(&inv).await.map_err(|source| MetaError::Delegate {
                interface: name.clone(),
                network: list.name.clone(),
                source: Box::new(source),
            })?;
        }
        Ok(())
    }
}

//! ADD: record intent, allocate, set every attachment up in parallel under one time budget, then record
//! the outcome — or undo everything.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::future::{Either, join_all, select};
use ipnet::IpNet;

use super::delegate_conf::invocation;
use super::delegate_conf::{list_to_value, patch_static_list, sriov_list, static_list};
use super::devices::{DeviceLookup, device_of, device_ranks};
use super::plan::{Attachment, Backend, host_interface, plan};
use super::{
    DELEGATE_ANNOTATION, MetaError, MetaPlugin, PHASE_ANNOTATION, PHASE_PENDING, PodContext, RESULT_ANNOTATION,
};
use crate::cni::{CniResult, CniVersion, Interface, IpConfig, NetConfList, Route as CniRoute};
use crate::delegate::{CniCommand, DelegateExecutor};
use crate::ipam::{Allocation, Assignment};
use crate::model::{DanmEp, DanmEpIface, DanmEpSpec, ObjectMeta, PodRecord, labels};
use crate::pod::{NETWORK_STATUS_ANNOTATION, NetworkStatus, network_status_to_annotation};
use crate::provision::{
    InterfaceProvisioner, InterfaceSetup, Ipv6Mode, PodInterface, PolicyRouting, ProvisionError, Route,
};
use crate::store::{Datastore, DatastoreExt, EndpointQuery, Object, Query, Version};

/// How far one attachment got: what rollback must undo.
#[derive(Debug, Default)]
pub(super) struct Progress {
    /// IPAM was asked (so something may be allocated even if `allocation` is unknown).
    pub ipam_started: bool,
    /// What IPAM handed out.
    pub allocation: Option<Allocation>,
    /// The interface may exist (creation was attempted, or the delegate was run).
    pub touched: bool,
    /// The delegate configuration used.
    pub delegate: Option<NetConfList>,
    /// The configuration applied (or being applied) to the delegate's interface.
    pub setup: Option<InterfaceSetup>,
    /// The attachment's DanmEp and its current version, once recorded.
    pub endpoint: Option<(DanmEp, Version)>,
    /// The device (PCI address) of a device-based attachment.
    pub device: Option<String>,
    /// The finished attachment, or why it failed.
    pub outcome: Option<Result<Outcome, MetaError>>,
}

/// A finished attachment.
#[derive(Debug)]
pub(super) struct Outcome {
    pub result: CniResult,
}

pub(super) type Slot = Arc<Mutex<Progress>>;

pub(super) fn lock(slot: &Slot) -> std::sync::MutexGuard<'_, Progress> {
    slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn new_endpoint_id() -> String {
    let b: [u8; 16] = std::array::from_fn(|_| fastrand::u8(..));
    let h = |r: std::ops::Range<usize>| b[r].iter().map(|x| format!("{x:02x}")).collect::<String>();
    // A random (version 4, variant 1) UUID, as upstream names DanmEps.
    let v = format!("{:x}{}", 4, &h(6..8)[1..]);
    let var = format!("{:x}{}", 8 | (b[8] >> 6), &h(8..10)[1..]);
    format!("{}-{}-{}-{}-{}", h(0..4), h(4..6), v, var, h(10..16))
}

impl<S: Datastore, P: InterfaceProvisioner, D: DelegateExecutor> MetaPlugin<S, P, D> {
    /// ADD: sets up every interface the pod asks for and returns the merged result, `eth0` first.
    /// On failure nothing is left behind: no address, no DanmEp, no interface.
    pub async fn add(&self, ctx: &PodContext) -> Result<CniResult, MetaError> {
        let netns = ctx.netns.clone().ok_or_else(|| MetaError::Check("CNI_NETNS is required for ADD".into()))?;
        let pod = self.pod(ctx).await?;
        let (requests, networks) = self.requests(&pod, &ctx.namespace).await?;
        let attachments = plan(&ctx.namespace, &ctx.container_id, &requests, networks, self.config.naming)?;

        // A repeated ADD for the same container starts from a clean slate, and so does a pod whose earlier
        // sandbox was replaced without a DEL (upstream's clean-up of outdated allocations): otherwise its
        // static addresses would stay "in use" by the sandbox that is gone.
        self.del(ctx).await?;
        self.replace_old_sandboxes(ctx, &pod).await?;

        // Intent first: one DanmEp per interface, so that whatever happens next can be found and undone.
        let slots: Vec<Slot> = attachments.iter().map(|_| Slot::default()).collect();
        for (a, slot) in attachments.iter().zip(&slots) {
            let ep = self.intent(ctx, &pod, a, &netns);
            match self.store.create(&Object::Endpoint(ep.clone())).await {
                Ok(v) => lock(slot).endpoint = Some((ep, v)),
                Err(e) => {
                    let undo = self.undo(&attachments, &slots, &netns, ctx).await;
                    return Err(combine(MetaError::Store(e), undo));
                }
            }
        }

        let ranks = device_ranks(&attachments);
        let devices = self.device_lookup(ctx, &pod);
        let work = join_all(
            attachments
                .iter()
                .zip(&slots)
                .zip(ranks)
                .map(|((a, slot), rank)| self.attach(ctx, a, &netns, slot, (&devices, rank))),
        );
        let timer = self.sleeper.sleep(self.config.timeout);
        if let Either::Right(_) = select(Box::pin(work), timer).await {
            // The budget ran out: the unfinished attachments' futures are dropped here, which stops
            // their delegates.
        }
        let mut errors = Vec::new();
        let mut results = Vec::new();
        for (a, slot) in attachments.iter().zip(&slots) {
            match lock(slot).outcome.take() {
                Some(Ok(o)) => results.push(o.result),
                Some(Err(e)) => errors.push(e),
                None => errors.push(MetaError::Timeout {
                    interface: a.name.clone(),
                    network: a.network_label(),
                    seconds: self.config.timeout.as_secs_f64(),
                }),
            }
        }
        if errors.is_empty() {
            let reported = match self.record(&attachments, &slots, &results).await {
                Ok(()) => self.report_status(ctx, &attachments, &results).await,
                Err(e) => Err(e),
            };
            match reported {
                Ok(()) => return Ok(CniResult::merge(results)),
                Err(e) => errors.push(e),
            }
        }
        let undo = self.undo(&attachments, &slots, &netns, ctx).await;
        errors.extend(undo);
        Err(MetaError::many(errors).unwrap_or_else(|| MetaError::Check("ADD failed".into())))
    }

    /// Writes the pod's `network-status` annotation: one entry per interface, `eth0` (the default) first.
    async fn report_status(
        &self,
        ctx: &PodContext,
        attachments: &[Attachment],
        results: &[CniResult],
    ) -> Result<(), MetaError> {
        let entries: Vec<NetworkStatus> = attachments
            .iter()
            .zip(results)
            .map(|(a, result)| {
                let key = a.network.key();
                let name = match key.namespace {
                    Some(ns) => format!("{ns}/{}", key.name),
                    None => key.name,
                };
                NetworkStatus::from_result(name, &a.name, result, a.index == 0)
            })
            .collect();
        let value = network_status_to_annotation(&entries);
        self.store.annotate_pod(&ctx.namespace, &ctx.name, NETWORK_STATUS_ANNOTATION, Some(&value)).await?;
        Ok(())
    }

    /// Removes the attachments recorded for this pod (same UID) by other containers.
    async fn replace_old_sandboxes(&self, ctx: &PodContext, pod: &PodRecord) -> Result<(), MetaError> {
        let Some(uid) = pod.metadata.uid.as_deref().filter(|u| !u.is_empty()) else { return Ok(()) };
        let query =
            Query::Endpoints(EndpointQuery { namespace: Some(ctx.namespace.clone()), ..EndpointQuery::pod(uid) });
        let eps = self.store.list_as::<DanmEp>(&query).await?;
        let old: BTreeSet<String> =
            eps.into_iter().map(|v| v.value.spec.cid).filter(|cid| *cid != ctx.container_id).collect();
        for cid in old {
            let stale = PodContext { container_id: cid, netns: None, ..ctx.clone() };
            self.del(&stale).await?;
        }
        Ok(())
    }

    /// The DanmEp recorded before an attachment is set up.
    fn intent(&self, ctx: &PodContext, pod: &PodRecord, a: &Attachment, netns: &Path) -> DanmEp {
        let id = new_endpoint_id();
        let mut meta = ObjectMeta::new(id.clone(), Some(&ctx.namespace));
        meta.labels = pod.metadata.labels.clone();
        meta.labels.insert(labels::POD_UID.into(), labels::value(pod.metadata.uid.as_deref().unwrap_or_default()));
        meta.labels.insert(labels::CONTAINER_ID.into(), labels::value(&ctx.container_id));
        meta.labels.insert(labels::NETWORK_KIND.into(), a.network.kind.to_string());
        meta.labels.insert(labels::NETWORK_NAME.into(), labels::value(&a.network.metadata.name));
        meta.labels.insert(labels::HOST.into(), labels::value(&self.config.host));
        meta.annotations.insert(PHASE_ANNOTATION.into(), PHASE_PENDING.into());
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        meta.annotations.insert(super::CREATED_ANNOTATION.into(), now.to_string());
        let route_map = |m: &BTreeMap<IpNet, IpAddr>| m.iter().map(|(d, g)| (d.to_string(), g.to_string())).collect();
        DanmEp {
            api_version: crate::model::API_VERSION.into(),
            kind: "DanmEp".into(),
            metadata: meta,
            spec: DanmEpSpec {
                network_name: a.network.metadata.name.clone(),
                network_type: a.network.spec.network_type.clone(),
                endpoint_id: id,
                interface: DanmEpIface {
                    name: a.name.clone(),
                    proutes: route_map(&a.request.proutes),
                    proutes6: route_map(&a.request.proutes6),
                    ..DanmEpIface::default()
                },
                host: self.config.host.clone(),
                pod: ctx.name.clone(),
                pod_uid: pod.metadata.uid.clone().unwrap_or_default(),
                cid: ctx.container_id.clone(),
                netns: netns.display().to_string(),
                api_type: a.network.kind.to_string(),
            },
        }
    }

    /// Sets one attachment up, writing its progress into `slot` as it goes. `device` is the pod's devices
    /// and the attachment's rank among the `sriov` attachments of its pool.
    async fn attach(
        &self,
        ctx: &PodContext,
        a: &Attachment,
        netns: &Path,
        slot: &Slot,
        device: (&DeviceLookup<'_>, usize),
    ) {
        let outcome = self.attach_inner(ctx, a, netns, slot, device).await;
        lock(slot).outcome = Some(outcome);
    }

    async fn attach_inner(
        &self,
        ctx: &PodContext,
        a: &Attachment,
        netns: &Path,
        slot: &Slot,
        (devices, rank): (&DeviceLookup<'_>, usize),
    ) -> Result<Outcome, MetaError> {
        // The device first: a pod without one gets no address either.
        let device = match a.backend {
            Backend::Sriov => {
                let device = device_of(a, devices, rank).await?;
                lock(slot).device = Some(device.clone());
                device
            }
            _ => String::new(),
        };
        let ipam_err = |source| MetaError::Ipam {
            interface: a.name.clone(),
            network: a.network_label(),
            source: Box::new(source),
        };
        let allocation = match &a.addresses {
            Some(req) => {
                lock(slot).ipam_started = true;
                let alloc = self.ipam.allocate(&a.network, req, a.owner).await.map_err(ipam_err)?;
                lock(slot).allocation = Some(alloc);
                alloc
            }
            None => Allocation::default(),
        };
        let result = match &a.backend {
            Backend::BuiltIn(link) => self.builtin(a, *link, netns, &allocation, slot).await?,
            Backend::Sriov => {
                let list = sriov_list(&a.network.spec.network_id, &device, a.network.spec.options.vlan, &allocation);
                let result = self.run_delegate(ctx, a, netns, list, slot).await?;
                self.configure_delegated(a, netns, &allocation, result, slot).await?
            }
            Backend::Static(_) => {
                let cfg_err = |reason: String| MetaError::DelegateConfig {
                    interface: a.name.clone(),
                    network: a.network_label(),
                    reason,
                };
                let found = self.delegates.static_config(&a.network.spec.network_id).await.map_err(|source| {
                    MetaError::Delegate {
                        interface: a.name.clone(),
                        network: a.network_label(),
                        source: Box::new(source),
                    }
                })?;
                let Some((path, bytes)) = found else {
                    return Err(cfg_err(format!(
                        "no static delegate configuration {0}.conf or {0}.conflist in the CNI config directory",
                        a.network.spec.network_id
                    )));
                };
                let mut list = static_list(&bytes, a.addresses.as_ref().map(|_| &allocation))
                    .map_err(|e| cfg_err(format!("{}: {e}", path.display())))?;
                let mastered = patch_static_list(&mut list, a.parent().as_deref(), a.network.spec.options.mtu);
                // A plugin that now sits on the network's VLAN/VXLAN interface needs it to exist.
                if let Some(host) = host_interface(&a.network).filter(|h| mastered && !h.parent.is_empty()) {
                    self.provisioner.ensure_host(&host, &a.network.key().to_string()).await.map_err(|source| {
                        MetaError::Provision {
                            interface: a.name.clone(),
                            network: a.network_label(),
                            source: Box::new(source),
                        }
                    })?;
                }
                let result = self.run_delegate(ctx, a, netns, list, slot).await?;
                self.configure_delegated(a, netns, &allocation, result, slot).await?
            }
        };
        Ok(Outcome { result })
    }

    async fn builtin(
        &self,
        a: &Attachment,
        link: crate::provision::LinkKind,
        netns: &Path,
        allocation: &Allocation,
        slot: &Slot,
    ) -> Result<CniResult, MetaError> {
        let perr = |source| MetaError::Provision {
            interface: a.name.clone(),
            network: a.network_label(),
            source: Box::new(source),
        };
        if let Some(host) = host_interface(&a.network) {
            self.provisioner.ensure_host(&host, &a.network.key().to_string()).await.map_err(perr)?;
        }
        let iface = pod_interface(a, link, netns, allocation);
        lock(slot).touched = true;
        let created = match self.provisioner.create(&iface).await {
            Ok(c) => c,
            Err(e @ ProvisionError::Exists { .. }) => {
                // Not ours: rollback must leave it alone.
                lock(slot).touched = false;
                return Err(perr(e));
            }
            Err(e) => return Err(perr(e)),
        };
        let ips =
            iface.addresses.iter().map(|addr| IpConfig { address: *addr, gateway: None, interface: Some(0) }).collect();
        let routes = iface.routes.iter().map(|r| CniRoute::new(r.dst, Some(r.gateway))).collect();
        Ok(CniResult {
            interfaces: vec![Interface {
                name: a.name.clone(),
                mac: Some(created.mac),
                mtu: Some(created.mtu),
                sandbox: Some(netns.display().to_string()),
                ..Interface::default()
            }],
            ips,
            routes,
            ..CniResult::default()
        })
    }

    /// Applies DANM's routes, policy routing and sysctls to the interface a delegate made, as upstream does
    /// after every delegate. A userspace interface (no kernel interface of that name) is left as it is.
    async fn configure_delegated(
        &self,
        a: &Attachment,
        netns: &Path,
        allocation: &Allocation,
        result: CniResult,
        slot: &Slot,
    ) -> Result<CniResult, MetaError> {
        let setup = delegated_setup(a, netns, allocation, &result);
        lock(slot).setup = Some(setup.clone());
        self.provisioner.configure(&setup).await.map_err(|source| MetaError::Provision {
            interface: a.name.clone(),
            network: a.network_label(),
            source: Box::new(source),
        })?;
        Ok(result)
    }

    /// Runs a delegate configuration list plugin by plugin, each given the previous one's result.
    async fn run_delegate(
        &self,
        ctx: &PodContext,
        a: &Attachment,
        netns: &Path,
        list: NetConfList,
        slot: &Slot,
    ) -> Result<CniResult, MetaError> {
        let cfg_err = |reason: String| MetaError::DelegateConfig {
            interface: a.name.clone(),
            network: a.network_label(),
            reason,
        };
        let version = list.negotiated_version().map_err(|e| cfg_err(e.to_string()))?;
        // Record the configuration before the delegate runs: a DEL after a crash needs it.
        let endpoint = lock(slot).endpoint.clone();
        if let Some((mut ep, v)) = endpoint {
            ep.metadata.annotations.insert(DELEGATE_ANNOTATION.into(), list_to_value(&list).to_string());
            let v = self.store.update(&Object::Endpoint(ep.clone()), &v).await?;
            lock(slot).endpoint = Some((ep, v));
        }
        {
            let mut p = lock(slot);
            p.delegate = Some(list.clone());
            p.touched = true;
        }
        let mut prev: Option<CniResult> = None;
        for i in 0..list.plugins.len() {
            let conf = list.plugin_conf(i, version, prev.as_ref(), None).map_err(|e| cfg_err(e.to_string()))?;
            let inv = invocation(&conf, CniCommand::Add, ctx, Some(netns.to_path_buf()), &a.name);
            let out = self.delegates.invoke(&inv).await.map_err(|source| MetaError::Delegate {
                interface: a.name.clone(),
                network: a.network_label(),
                source: Box::new(source),
            })?;
            // Upstream treats an empty or unparsable result as an empty success; so do we.
            let parsed = if out.iter().all(u8::is_ascii_whitespace) { None } else { CniResult::from_slice(&out).ok() };
            prev = Some(parsed.or(prev).unwrap_or_default());
        }
        Ok(prev.unwrap_or_default())
    }

    /// Records every finished attachment in its DanmEp: addresses, MAC, result, delegate configuration.
    async fn record(&self, attachments: &[Attachment], slots: &[Slot], results: &[CniResult]) -> Result<(), MetaError> {
        for ((a, slot), result) in attachments.iter().zip(slots).zip(results) {
            let (allocation, delegate, endpoint, device) = {
                let p = lock(slot);
                (p.allocation, p.delegate.clone(), p.endpoint.clone(), p.device.clone())
            };
            let Some((ep, version)) = endpoint else { continue };
            let mut updated = ep;
            updated.metadata.annotations.remove(PHASE_ANNOTATION);
            let iface = &mut updated.spec.interface;
            match allocation.filter(|_| a.addresses.is_some()) {
                Some(alloc) => {
                    iface.address = alloc.v4.map(|x: Assignment| x.to_record()).unwrap_or_default();
                    iface.address_ipv6 = alloc.v6.map(|x: Assignment| x.to_record()).unwrap_or_default();
                }
                None => {
                    // A delegate with its own IPAM: record what it returned.
                    let first = |v4: bool| {
                        result.ips.iter().find(|ip| ip.address.addr().is_ipv4() == v4).map(|ip| ip.address.to_string())
                    };
                    iface.address = first(true).unwrap_or_default();
                    iface.address_ipv6 = first(false).unwrap_or_default();
                }
            }
            // The pod's side of the attachment: a delegate's result may list host-side interfaces first.
            let own = result
                .interfaces
                .iter()
                .find(|i| i.name == a.name)
                .or_else(|| result.interfaces.iter().find(|i| i.sandbox.is_some()))
                .or_else(|| result.interfaces.first());
            iface.mac_address = own.and_then(|i| i.mac.clone()).unwrap_or_default();
            iface.device_id = device.unwrap_or_default();
            iface.mtu = own.and_then(|i| i.mtu);
            updated
                .metadata
                .annotations
                .insert(RESULT_ANNOTATION.into(), result.to_json(CniVersion::LATEST).to_string());
            if let Some(list) = &delegate {
                updated.metadata.annotations.insert(DELEGATE_ANNOTATION.into(), list_to_value(list).to_string());
            }
            let v = self.store.update(&Object::Endpoint(updated.clone()), &version).await?;
            lock(slot).endpoint = Some((updated, v));
        }
        Ok(())
    }

    /// Undoes attachments after a failure: interfaces, delegates, addresses and DanmEps. Returns the
    /// errors met on the way (and keeps going past them).
    async fn undo(&self, attachments: &[Attachment], slots: &[Slot], netns: &Path, ctx: &PodContext) -> Vec<MetaError> {
        let jobs = attachments.iter().zip(slots).map(|(a, slot)| async move {
            let (touched, delegate, setup, allocation, ipam_started, endpoint) = {
                let p = lock(slot);
                (p.touched, p.delegate.clone(), p.setup.clone(), p.allocation, p.ipam_started, p.endpoint.clone())
            };
            let mut errors = Vec::new();
            if let Some(setup) = setup.filter(|s| s.policy.is_some())
                && let Err(source) = self.provisioner.deconfigure(&setup).await
            {
                // Keep everything, as when the interface could not be removed: a retried DEL finds it.
                errors.push(MetaError::Provision {
                    interface: a.name.clone(),
                    network: a.network_label(),
                    source: Box::new(source),
                });
                return errors;
            }
            if touched {
                let removed = match (&a.backend, &delegate) {
                    (Backend::BuiltIn(_), _) => {
                        self.provisioner.delete(netns, &a.name).await.map_err(|source| MetaError::Provision {
                            interface: a.name.clone(),
                            network: a.network_label(),
                            source: Box::new(source),
                        })
                    }
                    (_, Some(list)) => self.delegate_del(ctx, &a.name, Some(netns), list, None).await,
                    (_, None) => Ok(()),
                };
                if let Err(e) = removed {
                    // The interface may still be there: keep its addresses and its record, so that the
                    // DEL the runtime sends after a failed ADD finds them and tries again.
                    errors.push(e);
                    return errors;
                }
            }
            let freed = match (allocation, ipam_started) {
                (Some(alloc), _) => self.ipam.release(&a.network, &alloc, a.owner).await.map(drop),
                (None, true) => self.ipam.free_owner(&a.network, a.owner).await.map(drop),
                (None, false) => Ok(()),
            };
            if let Err(source) = freed {
                errors.push(MetaError::Ipam {
                    interface: a.name.clone(),
                    network: a.network_label(),
                    source: Box::new(source),
                });
            }
            if let Some((ep, _)) = &endpoint
                && let Err(e) = self.delete_endpoint(ep).await
            {
                errors.push(e);
            }
            errors
        });
        join_all(jobs).await.into_iter().flatten().collect()
    }
}

/// One error followed by others, as one.
fn combine(first: MetaError, rest: Vec<MetaError>) -> MetaError {
    if rest.is_empty() {
        return first;
    }
    let mut all = vec![first];
    all.extend(rest);
    MetaError::Many(all)
}

/// The pod interface a built-in attachment asks the provisioner for.
fn pod_interface(
    a: &Attachment,
    link: crate::provision::LinkKind,
    netns: &Path,
    allocation: &Allocation,
) -> PodInterface {
    let o = &a.network.spec.options;
    let addresses: Vec<IpNet> = allocation.addresses().collect();
    let Finish { routes, policy, ipv6 } = finish(a, &addresses);
    PodInterface {
        netns: PathBuf::from(netns),
        name: a.name.clone(),
        temp_name: format!("dm{:013x}", a.owner.0 >> 12),
        link,
        parent: a.parent().unwrap_or_default(),
        mtu: o.mtu.and_then(|m| u32::try_from(m).ok()),
        addresses,
        routes,
        policy,
        ipv6,
    }
}

/// What DANM configures on an attachment's interface besides its addresses, built-in or delegated alike.
struct Finish {
    routes: Vec<Route>,
    policy: Option<PolicyRouting>,
    ipv6: Ipv6Mode,
}

/// The routes, policy routing and IPv6 mode of attachment `a` with `addresses` on its interface: routes
/// and policy routes only of a family the interface has an address of; IPv6 enabled when the pod asked
/// for `ip6` (even `none`) or the interface has an IPv6 address.
fn finish(a: &Attachment, addresses: &[IpNet]) -> Finish {
    let o = &a.network.spec.options;
    let has_v4 = addresses.iter().any(|n| n.addr().is_ipv4());
    let has_v6 = addresses.iter().any(|n| n.addr().is_ipv6());
    let parse_routes = |m: &BTreeMap<String, String>| -> Vec<Route> {
        m.iter()
            .filter_map(|(d, g)| Some(Route { dst: d.parse::<IpNet>().ok()?.trunc(), gateway: g.parse().ok()? }))
            .collect()
    };
    // A network's routes go on the first of the pod's interfaces on that network: the same route twice
    // in the main table is refused by the kernel.
    let mut routes = Vec::new();
    if has_v4 && a.network_routes {
        routes.extend(parse_routes(&o.routes));
    }
    if has_v6 && a.network_routes {
        routes.extend(parse_routes(&o.routes6));
    }
    let table = o.rt_tables.and_then(|t| u32::try_from(t).ok()).filter(|t| *t > 0);
    let mut proutes = Vec::new();
    if has_v4 {
        proutes.extend(a.request.proutes.iter().map(|(d, g)| Route { dst: *d, gateway: *g }));
    }
    if has_v6 {
        proutes.extend(a.request.proutes6.iter().map(|(d, g)| Route { dst: *d, gateway: *g }));
    }
    let policy = table.filter(|_| !proutes.is_empty()).map(|table| PolicyRouting { table, routes: proutes });
    let ipv6 = if a.request.ip6.is_some() || has_v6 { Ipv6Mode::Enabled } else { Ipv6Mode::Disabled };
    Finish { routes, policy, ipv6 }
}

/// The configuration DANM applies to the interface a delegate made for attachment `a`. Its addresses are
/// the ones DANM allocated, or, when the delegate kept its own IPAM, the ones its result gives the pod's
/// interface.
pub(super) fn delegated_setup(
    a: &Attachment,
    netns: &Path,
    allocation: &Allocation,
    result: &CniResult,
) -> InterfaceSetup {
    let addresses: Vec<IpNet> = match a.addresses {
        Some(_) => allocation.addresses().collect(),
        None => {
            let own = result.interfaces.iter().position(|i| i.name == a.name && i.sandbox.is_some());
            result.ips.iter().filter(|ip| ip.interface.is_none() || ip.interface == own).map(|ip| ip.address).collect()
        }
    };
    let Finish { routes, policy, ipv6 } = finish(a, &addresses);
    InterfaceSetup { netns: PathBuf::from(netns), name: a.name.clone(), routes, policy, ipv6 }
}

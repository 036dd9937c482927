//! Builders and assertions shared by the validation tests.
#![allow(dead_code)]

use danm_core::model::{IfaceProfile, Network, NetworkKind, NetworkOptions, NetworkSpec, ObjectMeta, TenantConfig};
use danm_core::validate::{
    Operation, TenantConfigOperation, ValidationError, ValidationErrors, Violation, validate_network,
    validate_tenant_config,
};

/// Builds a network that passes validation until a method breaks it.
#[derive(Debug, Clone)]
pub struct NetBuilder(pub Network);

/// A DanmNet named `n1` in namespace `ns` with NetworkID `net1`.
pub fn dn() -> NetBuilder {
    net(NetworkKind::DanmNet)
}

/// A TenantNetwork named `n1` in namespace `ns` with NetworkID `net1`.
pub fn tn() -> NetBuilder {
    net(NetworkKind::TenantNetwork)
}

/// A ClusterNetwork named `n1` with NetworkID `net1`.
pub fn cn() -> NetBuilder {
    net(NetworkKind::ClusterNetwork)
}

/// A network of `kind` named `n1` with NetworkID `net1`.
pub fn net(kind: NetworkKind) -> NetBuilder {
    let ns = kind.is_namespaced().then_some("ns");
    let spec = NetworkSpec { network_id: "net1".into(), ..NetworkSpec::default() };
    NetBuilder(Network::new(kind, ObjectMeta::new("n1", ns), spec))
}

impl NetBuilder {
    /// Changes the options.
    pub fn opts(mut self, f: impl FnOnce(&mut NetworkOptions)) -> Self {
        f(&mut self.0.spec.options);
        self
    }
    pub fn id(mut self, id: &str) -> Self {
        self.0.spec.network_id = id.into();
        self
    }
    pub fn ty(mut self, ty: &str) -> Self {
        self.0.spec.network_type = ty.into();
        self
    }
    pub fn tenants(mut self, tenants: &[&str]) -> Self {
        self.0.spec.allowed_tenants = tenants.iter().map(|t| t.to_string()).collect();
        self
    }
    pub fn cidr(self, cidr: &str) -> Self {
        self.opts(|o| o.cidr = cidr.into())
    }
    pub fn pool(self, start: &str, end: &str) -> Self {
        self.opts(|o| {
            o.allocation_pool.start = start.into();
            o.allocation_pool.end = end.into();
        })
    }
    pub fn route(self, dst: &str, gw: &str) -> Self {
        self.opts(|o| {
            o.routes.insert(dst.into(), gw.into());
        })
    }
    pub fn net6(self, net6: &str) -> Self {
        self.opts(|o| o.net6 = net6.into())
    }
    pub fn pool6(self, cidr: &str, start: &str, end: &str) -> Self {
        self.opts(|o| {
            o.allocation_pool_v6.cidr = cidr.into();
            o.allocation_pool_v6.start = start.into();
            o.allocation_pool_v6.end = end.into();
        })
    }
    pub fn route6(self, dst: &str, gw: &str) -> Self {
        self.opts(|o| {
            o.routes6.insert(dst.into(), gw.into());
        })
    }
    pub fn vlan(self, vlan: i64) -> Self {
        self.opts(|o| o.vlan = Some(vlan))
    }
    pub fn vxlan(self, vni: i64) -> Self {
        self.opts(|o| o.vxlan = Some(vni))
    }
    pub fn host_device(self, dev: &str) -> Self {
        self.opts(|o| o.host_device = dev.into())
    }
    pub fn device_pool(self, pool: &str) -> Self {
        self.opts(|o| o.device_pool = pool.into())
    }
    pub fn mtu(self, mtu: i64) -> Self {
        self.opts(|o| o.mtu = Some(mtu))
    }
    pub fn build(self) -> Network {
        self.0
    }
    /// Validates the network for create.
    pub fn create(&self) -> Result<(), ValidationErrors> {
        validate_network(&self.0, &Operation::Create)
    }
    /// Validates the network as an update of `old`.
    pub fn update(&self, old: &NetBuilder, in_use: bool) -> Result<(), ValidationErrors> {
        validate_network(&self.0, &Operation::Update { old: &old.0, in_use })
    }
}

/// A TenantConfig with no profiles and no NetworkID mappings.
pub fn tc() -> TenantConfig {
    TenantConfig {
        api_version: "danm.k8s.io/v1".into(),
        kind: "TenantConfig".into(),
        metadata: ObjectMeta::new("tconf", None),
        host_devices: Vec::new(),
        network_ids: Default::default(),
        allowed_cluster_networks: Vec::new(),
    }
}

/// An interface profile.
pub fn profile(name: &str, vni_type: &str, vni_range: &str) -> IfaceProfile {
    IfaceProfile { name: name.into(), vni_type: vni_type.into(), vni_range: vni_range.into(), alloc: String::new() }
}

/// A TenantConfig with one profile.
pub fn tc_with(p: IfaceProfile) -> TenantConfig {
    let mut t = tc();
    t.host_devices.push(p);
    t
}

/// Validates a TenantConfig for create.
pub fn tc_create(t: &TenantConfig) -> Result<(), ValidationErrors> {
    validate_tenant_config(t, &TenantConfigOperation::Create)
}

/// Asserts that `result` is exactly one error and returns it.
#[track_caller]
pub fn single(result: Result<(), ValidationErrors>) -> ValidationError {
    match result {
        Ok(()) => panic!("expected one validation error, got none"),
        Err(errs) => {
            assert_eq!(errs.len(), 1, "expected one validation error, got: {errs}");
            errs.into_iter().next().unwrap()
        }
    }
}

/// Asserts that `result` is exactly one error, on `field`, of `violation`.
#[track_caller]
pub fn rejects(result: Result<(), ValidationErrors>, field: &str, violation: Violation) {
    let e = single(result);
    assert_eq!((e.field.as_str(), e.violation), (field, violation), "message: {}", e.message);
}

/// Asserts that `result` is `Ok`.
#[track_caller]
pub fn accepts(result: Result<(), ValidationErrors>) {
    if let Err(errs) = result {
        panic!("expected no validation error, got: {errs}");
    }
}

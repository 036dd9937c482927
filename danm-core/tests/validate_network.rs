//! Network rules 17–21, T1–T6, M1, D1 and the danm-rs name and range rules, and how rules map to kinds.

mod common;

use common::*;
use danm_core::validate::Violation::*;
use danm_core::validate::{validate_network_delete, validate_tenant_network_mutated};

const NETWORK_ID: &str = "spec.NetworkID";
const VLAN: &str = "spec.Options.vlan";
const VXLAN: &str = "spec.Options.vxlan";
const HOST_DEVICE: &str = "spec.Options.host_device";
const DEVICE_POOL: &str = "spec.Options.device_pool";
const MTU: &str = "spec.Options.mtu";

#[test]
fn rule17_vlan_and_vxlan_exclusive() {
    for b in [dn(), cn()] {
        accepts(b.clone().vlan(100).create());
        accepts(b.clone().vxlan(100).create());
        rejects(b.vlan(100).vxlan(100).create(), VXLAN, VlanAndVxlan);
    }
    let both = tn().vlan(100).vxlan(100);
    rejects(validate_tenant_network_mutated(&both.0), VXLAN, VlanAndVxlan);
}

#[test]
fn rule18_network_id() {
    for b in [dn(), cn()] {
        accepts(b.clone().create());
        rejects(b.clone().id("").create(), NETWORK_ID, MissingNetworkId);
        // Host interface names <NetworkID>.<vlan> and vx_<NetworkID> must fit, whatever the type.
        accepts(b.clone().id("abcdefghij").vlan(4094).create());
        accepts(b.clone().id("abcdefghijk").create());
        rejects(b.clone().id("abcdefghijk").vlan(5).create(), NETWORK_ID, NetworkIdTooLong);
        rejects(b.clone().id("abcdefghijk").vxlan(5).ty("flannel").create(), NETWORK_ID, NetworkIdTooLong);
    }
    // A TenantNetwork gets its NetworkID from the TenantConfig: rule 18 runs after the mutation.
    accepts(tn().id("").create());
    accepts(validate_tenant_network_mutated(&tn().vlan(7).build()));
    rejects(validate_tenant_network_mutated(&tn().id("").build()), NETWORK_ID, MissingNetworkId);
    rejects(validate_tenant_network_mutated(&tn().id("abcdefghijk").vxlan(7).build()), NETWORK_ID, NetworkIdTooLong);
}

#[test]
fn tenant_network_mutated_checks_written_fields() {
    rejects(validate_tenant_network_mutated(&tn().id("a/b").build()), NETWORK_ID, InvalidPluginName);
    rejects(validate_tenant_network_mutated(&tn().host_device("eth 0").build()), HOST_DEVICE, InvalidInterfaceName);
    rejects(validate_tenant_network_mutated(&tn().vlan(4095).build()), VLAN, VlanOutOfRange);
    rejects(validate_tenant_network_mutated(&tn().vxlan(0).build()), VXLAN, VxlanOutOfRange);
}

#[test]
fn rule19_allowed_tenants_only_on_cluster_networks() {
    accepts(cn().tenants(&["tenant-a", "tenant-b"]).create());
    rejects(dn().tenants(&["tenant-a"]).create(), "spec.AllowedTenants", AllowedTenantsForbidden);
    rejects(tn().tenants(&["tenant-a"]).create(), "spec.AllowedTenants", AllowedTenantsForbidden);
}

#[test]
fn rule20_device_kinds() {
    for b in [dn(), tn(), cn()] {
        accepts(b.clone().ty("sriov").device_pool("nokia.k8s.io/sriov_ens1f0").create());
        accepts(b.clone().ty("ipvlan").host_device("ens3").create());
        accepts(b.clone().ty("macvlan").device_pool("nokia.k8s.io/pool").create());
        rejects(b.clone().ty("sriov").create(), DEVICE_POOL, SriovWithoutDevicePool);
        rejects(b.clone().ty("SRIOV").create(), DEVICE_POOL, SriovWithoutDevicePool);
        let both = b.clone().host_device("ens3").device_pool("nokia.k8s.io/sriov_ens1f0");
        rejects(both.clone().ty("sriov").create(), HOST_DEVICE, SriovWithHostDevice);
        rejects(both.ty("ipvlan").create(), DEVICE_POOL, HostDeviceAndDevicePool);
    }
}

#[test]
fn rule21_vni_and_host_device_fixed_while_in_use() {
    for b in [dn(), cn()] {
        let old = b.clone().host_device("ens3").vlan(100);
        accepts(old.clone().vlan(200).update(&old, false));
        accepts(old.clone().cidr("10.0.0.0/24").update(&old, true));
        rejects(old.clone().vlan(200).update(&old, true), VLAN, ChangedWhileInUse);
        rejects(old.clone().host_device("ens4").update(&old, true), HOST_DEVICE, ChangedWhileInUse);
        let old = b.clone().host_device("ens3").vxlan(100);
        rejects(old.clone().vxlan(200).update(&old, true), VXLAN, ChangedWhileInUse);
        // Without a VLAN or VXLAN nothing hangs off the host device.
        let plain = b.clone().host_device("ens3");
        accepts(plain.clone().host_device("ens4").update(&plain, true));
    }
}

#[test]
fn rules_t1_t2_tenant_network_create_without_vni() {
    accepts(tn().host_device("ens3").create());
    rejects(tn().vlan(100).create(), VLAN, TenantVniOnCreate);
    rejects(tn().vxlan(100).create(), VXLAN, TenantVniOnCreate);
    // Only on create: an update that keeps the mutated VLAN is fine.
    let stored = tn().host_device("ens3").vlan(100);
    accepts(stored.clone().cidr("10.0.0.0/24").update(&stored, false));
}

#[test]
fn rules_t3_t6_tenant_network_physical_attributes_fixed() {
    let old = tn().host_device("ens3").vlan(100);
    accepts(old.clone().cidr("10.0.0.0/24").update(&old, false));
    rejects(old.clone().host_device("ens4").update(&old, false), HOST_DEVICE, TenantPhysicalChange);
    rejects(old.clone().vlan(101).update(&old, false), VLAN, TenantPhysicalChange);
    let old = tn().vxlan(100);
    rejects(old.clone().vxlan(101).update(&old, false), VXLAN, TenantPhysicalChange);
    let old = tn().device_pool("nokia.k8s.io/a");
    rejects(old.clone().device_pool("nokia.k8s.io/b").update(&old, false), DEVICE_POOL, TenantPhysicalChange);
}

#[test]
fn rule_m1_mtu_not_lowered_while_in_use() {
    for b in [dn(), tn(), cn()] {
        let old = b.clone().mtu(9000);
        accepts(old.clone().mtu(1500).update(&old, false));
        accepts(old.clone().mtu(9001).update(&old, true));
        rejects(old.clone().mtu(8999).update(&old, true), MTU, MtuLoweredWhileInUse);
        // Unset means 1500.
        rejects(b.clone().update(&old, true), MTU, MtuLoweredWhileInUse);
        rejects(b.clone().mtu(1400).update(&b, true), MTU, MtuLoweredWhileInUse);
        accepts(b.clone().mtu(1500).update(&b, true));
    }
}

#[test]
fn rule_d1_delete_refused_while_in_use() {
    accepts(validate_network_delete(&dn().build(), 0));
    let e = single(validate_network_delete(&cn().build(), 3));
    assert_eq!((e.field.as_str(), e.violation), ("metadata.name", DeleteWhileInUse));
    assert!(e.message.contains("3 endpoints"), "{}", e.message);
}

#[test]
fn plugin_names() {
    accepts(dn().ty("flannel").id("flannel_1.0").create());
    rejects(dn().ty("../../bin/sh").create(), "spec.NetworkType", InvalidPluginName);
    rejects(dn().ty("ipvlan ").create(), "spec.NetworkType", InvalidPluginName);
    rejects(dn().id("a/b").create(), NETWORK_ID, InvalidPluginName);
    rejects(dn().id("..").create(), NETWORK_ID, InvalidPluginName);
    rejects(tn().id("x\ny").create(), NETWORK_ID, InvalidPluginName);
}

#[test]
fn device_names() {
    accepts(dn().host_device("ens1f0.100").create());
    rejects(dn().host_device("eth0:1").create(), HOST_DEVICE, InvalidInterfaceName);
    rejects(cn().host_device("averyveryverylong").create(), HOST_DEVICE, InvalidInterfaceName);
    rejects(dn().ty("sriov").device_pool("sriov_ens1f0").create(), DEVICE_POOL, InvalidDevicePoolName);
    let prefix = "spec.Options.container_prefix";
    accepts(dn().opts(|o| o.container_prefix = "abcdefghijklm".into()).create());
    rejects(dn().opts(|o| o.container_prefix = "abcdefghijklmn".into()).create(), prefix, InvalidContainerPrefix);
    rejects(dn().opts(|o| o.container_prefix = "a/".into()).create(), prefix, InvalidContainerPrefix);
}

#[test]
fn allowed_tenants_are_namespace_names() {
    rejects(cn().tenants(&["ok", "Not_OK"]).create(), "spec.AllowedTenants[1]", InvalidNamespaceName);
}

#[test]
fn integer_ranges() {
    accepts(dn().vlan(1).create());
    accepts(dn().vlan(4094).create());
    accepts(dn().vxlan(16_777_214).create());
    accepts(dn().opts(|o| (o.rt_tables, o.mtu) = (Some(0), Some(68))).create());
    accepts(dn().opts(|o| (o.rt_tables, o.mtu) = (Some(255), Some(65535))).create());
    for v in [0, 4095, -1] {
        rejects(dn().vlan(v).create(), VLAN, VlanOutOfRange);
    }
    for v in [0, 16_777_215] {
        rejects(dn().vxlan(v).create(), VXLAN, VxlanOutOfRange);
    }
    for v in [-1, 256] {
        rejects(dn().opts(|o| o.rt_tables = Some(v)).create(), "spec.Options.rt_tables", RtTablesOutOfRange);
    }
    for v in [67, 65536, i64::MAX] {
        rejects(dn().mtu(v).create(), MTU, MtuOutOfRange);
    }
}

#[test]
fn every_violation_of_one_network_is_reported() {
    let net = dn()
        .id("")
        .ty("a/b")
        .tenants(&["x"])
        .cidr("10.0.0.0/4")
        .net6("fd00::/64")
        .route6("fd00:9::/64", "fd01::1")
        .vlan(5000)
        .vxlan(7)
        .opts(|o| o.alloc = "AAAA".into());
    let errs = net.create().unwrap_err();
    let expected = [
        ("spec.NetworkType", InvalidPluginName),
        (VLAN, VlanOutOfRange),
        ("spec.Options.alloc", AllocationStateOnCreate),
        ("spec.Options.cidr", Ipv4CidrTooWide),
        ("spec.Options.routes6[\"fd00:9::/64\"]", RouteGatewayOutsideSubnet),
        (VXLAN, VlanAndVxlan),
        (NETWORK_ID, MissingNetworkId),
        ("spec.AllowedTenants", AllowedTenantsForbidden),
    ];
    for (field, violation) in expected {
        assert!(errs.contains(field, violation), "{field} {violation:?} missing from: {errs}");
    }
    assert_eq!(errs.len(), expected.len(), "{errs}");
    let shown = errs.to_string();
    assert!(shown.starts_with("8 validation errors: "), "{shown}");
    assert!(shown.contains("spec.Options.cidr: "), "{shown}");
    assert!(errs.has(VlanAndVxlan) && errs.has_field(NETWORK_ID) && !errs.has(MtuOutOfRange));
}

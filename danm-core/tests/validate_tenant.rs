//! TenantConfig rules 1–6.

mod common;

use common::*;
use danm_core::validate::Violation::*;
use danm_core::validate::{TenantConfigOperation, validate_tenant_config};

fn with_ids(pairs: &[(&str, &str)]) -> danm_core::model::TenantConfig {
    let mut t = tc();
    t.network_ids = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    t
}

#[test]
fn rule1_profiles_or_network_ids() {
    accepts(tc_create(&tc_with(profile("ens3", "", ""))));
    accepts(tc_create(&with_ids(&[("flannel", "flannel")])));
    rejects(tc_create(&tc()), "hostDevices", TenantConfigEmpty);
}

#[test]
fn rule2_profile_names() {
    accepts(tc_create(&tc_with(profile("nokia.k8s.io/sriov_ens1f0", "vlan", "100-200"))));
    rejects(tc_create(&tc_with(profile("", "", ""))), "hostDevices[0].name", MissingProfileName);
    for bad in ["eth0:1", "abcdefghijklmnop", "bad/pool/name", "Nokia.io/x"] {
        rejects(tc_create(&tc_with(profile(bad, "", ""))), "hostDevices[0].name", InvalidProfileName);
    }
    let mut t = tc_with(profile("ens3", "", ""));
    t.host_devices.push(profile("ens 4", "", ""));
    rejects(tc_create(&t), "hostDevices[1].name", InvalidProfileName);
}

#[test]
fn rule2_vni_type_and_range_together() {
    accepts(tc_create(&tc_with(profile("ens3", "vxlan", "1000-2000"))));
    rejects(tc_create(&tc_with(profile("ens3", "vlan", ""))), "hostDevices[0].vniRange", VniTypeWithoutRange);
    rejects(tc_create(&tc_with(profile("ens3", "", "100"))), "hostDevices[0].vniType", VniTypeWithoutRange);
    rejects(tc_create(&tc_with(profile("ens3", "geneve", "100"))), "hostDevices[0].vniType", InvalidVniType);
    rejects(tc_create(&tc_with(profile("ens3", "VLAN", "100"))), "hostDevices[0].vniType", InvalidVniType);
}

#[test]
fn rule3_alloc_only_after_create() {
    let mut p = profile("ens3", "vlan", "100-200");
    p.alloc = "AAAA".into();
    let t = tc_with(p);
    rejects(tc_create(&t), "hostDevices[0].alloc", ProfileAllocOnCreate);
    accepts(validate_tenant_config(&t, &TenantConfigOperation::Update { old: &t }));
}

#[test]
fn rule4_vni_range() {
    accepts(tc_create(&tc_with(profile("ens3", "vlan", "1-4094"))));
    accepts(tc_create(&tc_with(profile("ens3", "vlan", "2000-2500,2601"))));
    // The range follows the vniType, not a fixed cap of 5000.
    accepts(tc_create(&tc_with(profile("ens3", "vxlan", "5000-6000,16777214"))));
    let field = "hostDevices[0].vniRange";
    for bad in ["1-x", "200-100", "1,,2", "1-2-3"] {
        rejects(tc_create(&tc_with(profile("ens3", "vlan", bad))), field, InvalidVniRange);
    }
    rejects(tc_create(&tc_with(profile("ens3", "vlan", "4000-4095"))), field, VniRangeOutOfRange);
    rejects(tc_create(&tc_with(profile("ens3", "vlan", "0,5"))), field, VniRangeOutOfRange);
    rejects(tc_create(&tc_with(profile("ens3", "vxlan", "16777215"))), field, VniRangeOutOfRange);
}

#[test]
fn rule5_network_id_mappings_not_empty() {
    rejects(tc_create(&with_ids(&[("", "flannel")])), "networkIds[\"\"]", EmptyNetworkIdMapping);
    rejects(tc_create(&with_ids(&[("flannel", "")])), "networkIds[\"flannel\"]", EmptyNetworkIdMapping);
}

#[test]
fn rule6_network_ids_are_short_plugin_names() {
    accepts(tc_create(&with_ids(&[("flannel", "abcdefghij"), ("calico", "calico-1.0")])));
    // At most 10 characters for the types with host VLAN/VXLAN interfaces, as upstream; any length else.
    accepts(tc_create(&with_ids(&[("flannel", "abcdefghijk")])));
    rejects(tc_create(&with_ids(&[("macvlan", "abcdefghijk")])), "networkIds[\"macvlan\"]", NetworkIdTooLong);
    rejects(tc_create(&with_ids(&[("SRIOV", "abcdefghijk")])), "networkIds[\"SRIOV\"]", NetworkIdTooLong);
    let field = "networkIds[\"flannel\"]";
    rejects(tc_create(&with_ids(&[("flannel", "../x")])), field, InvalidPluginName);
    rejects(tc_create(&with_ids(&[("a b", "x")])), "networkIds[\"a b\"]", InvalidPluginName);
}

#[test]
fn every_violation_of_one_tenant_config_is_reported() {
    let mut t = with_ids(&[("flannel", "")]);
    t.host_devices = vec![profile("", "vlan", "5000"), profile("ens3", "bogus", "1-")];
    let errs = tc_create(&t).unwrap_err();
    let expected = [
        ("hostDevices[0].name", MissingProfileName),
        ("hostDevices[0].vniRange", VniRangeOutOfRange),
        ("hostDevices[1].vniType", InvalidVniType),
        ("hostDevices[1].vniRange", InvalidVniRange),
        ("networkIds[\"flannel\"]", EmptyNetworkIdMapping),
    ];
    for (field, violation) in expected {
        assert!(errs.contains(field, violation), "{field} {violation:?} missing from: {errs}");
    }
    assert_eq!(errs.len(), expected.len(), "{errs}");
}

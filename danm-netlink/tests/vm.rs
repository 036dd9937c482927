//! Real-kernel tests that need what the host kernel may lack (ipvlan, 802.1Q VLANs). They run inside
//! the user-mode-linux VM: `tools/uml-run.sh <this test binary> --include-ignored` (as `tools/test-all.sh`
//! does), which sets `DANM_VM=1`. On the host they are ignored; run there with `--include-ignored`
//! they print `SKIPPED: ...` (and fail under `CI=true`).

mod common;

use common::*;
use danm_core::netwatch::HostAction;
use danm_core::provision::{
    HostInterface, HostInventory, HostLinkKind, InterfaceProvisioner, IpVlanMode, LinkKind, MacVlanMode, PolicyRouting,
    ProvisionError,
};
use danm_netlink::NetlinkProvisioner;
use futures::executor::block_on as run;
use netlink_packet_route::link::{InfoData, InfoIpVlan, InfoVlan, IpVlanMode as NlIpVlanMode, LinkAttribute};

/// In the VM: a fresh host namespace with a dummy parent `p0` (10.40.0.1/24) and a provisioner.
fn vm_host(test: &str) -> Option<NetlinkProvisioner> {
    if std::env::var("DANM_VM").as_deref() != Ok("1") {
        skip(test, "not inside the test VM; run this binary through tools/uml-run.sh");
        return None;
    }
    if !enter_fresh_netns(test) {
        return None;
    }
    block_on(async {
        let h = connect();
        add_dummy(&h, "p0").await;
        add_address(&h, "p0", "10.40.0.1/24").await;
    });
    Some(NetlinkProvisioner::new().unwrap())
}

fn host_links() -> Vec<String> {
    block_on(async { link_names(&connect()).await })
}

fn ipvlan_mode_of(pod: &Ns, name: &'static str) -> Option<NlIpVlanMode> {
    let link = pod.netlink(|h| async move { link(&h, name).await.unwrap() });
    match info_data(&link) {
        Some(InfoData::IpVlan(infos)) => {
            infos.into_iter().find_map(|i| if let InfoIpVlan::Mode(m) = i { Some(m) } else { None })
        }
        _ => None,
    }
}

fn mac_of(link: &netlink_packet_route::link::LinkMessage) -> String {
    let bytes =
        link.attributes.iter().find_map(|a| if let LinkAttribute::Address(b) = a { Some(b.clone()) } else { None });
    bytes.unwrap().iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

#[test]
#[ignore = "needs ipvlan and 8021q: runs in the VM through tools/uml-run.sh"]
fn ipvlan_l2_pod_interface_is_fully_configured() {
    let Some(provisioner) = vm_host("ipvlan_l2_pod_interface_is_fully_configured") else { return };
    let pod = Ns::new();
    let mut iface =
        pod_iface(&pod, "eth0", "tmp-v1", LinkKind::IpVlan(IpVlanMode::L2), "p0", &["10.40.0.5/24", "fd00:40::5/64"]);
    iface.mtu = Some(1400);
    iface.routes = vec![route("10.41.0.0/16", "10.40.0.1")];
    iface.policy = Some(PolicyRouting { table: 150, routes: vec![route("0.0.0.0/0", "10.40.0.254")] });
    let created = run(provisioner.create(&iface)).unwrap();

    // An ipvlan slave shares its parent's MAC.
    let parent = block_on(async { link(&connect(), "p0").await.unwrap() });
    assert_eq!(created.mac, mac_of(&parent));
    assert_eq!(host_links(), ["lo", "p0"]);
    let state = run(provisioner.inspect(&pod.path(), "eth0")).unwrap().unwrap();
    assert!(state.up);
    assert_eq!(state.mtu, 1400);
    let mut addresses = state.addresses.clone();
    addresses.sort();
    assert_eq!(addresses, [net("10.40.0.5/24"), net("fd00:40::5/64")]);
    assert_eq!(ipvlan_mode_of(&pod, "eth0"), Some(NlIpVlanMode::L2));

    let (routes, rules, index) = pod.netlink(|h| async move {
        let index = link(&h, "eth0").await.unwrap().header.index;
        (routes(&h).await, source_rules(&h).await, index)
    });
    for (table, dst, gateway) in [(254, "10.41.0.0/16", "10.40.0.1"), (150, "0.0.0.0/0", "10.40.0.254")] {
        let want = KernelRoute { table, dst: net(dst), gateway: Some(ip(gateway)), oif: Some(index) };
        assert!(routes.contains(&want), "{want:?} missing from {routes:#?}");
    }
    assert_eq!(
        rules,
        [
            KernelRule { table: 150, source: Some(net("10.40.0.0/24")) },
            KernelRule { table: 150, source: Some(net("fd00:40::/64")) }
        ]
    );
    pod.run(|| {
        assert_eq!(sysctl("ipv6", "eth0", "disable_ipv6"), "0");
        assert_eq!(sysctl("ipv6", "eth0", "ndisc_notify"), "1");
        let link = ip_json(&["-d", "link", "show", "eth0"]);
        assert_eq!(link[0]["linkinfo"]["info_kind"], "ipvlan", "{link}");
        assert_eq!(link[0]["linkinfo"]["info_data"]["mode"], "l2", "{link}");
    });

    run(provisioner.delete(&pod.path(), "eth0")).unwrap();
    let (links, rules) = pod.netlink(|h| async move { (link_names(&h).await, source_rules(&h).await) });
    assert_eq!(links, ["lo"]);
    assert_eq!(rules, []);
}

#[test]
#[ignore = "needs ipvlan and 8021q: runs in the VM through tools/uml-run.sh"]
fn ipvlan_l3_and_l3s_modes() {
    let Some(provisioner) = vm_host("ipvlan_l3_and_l3s_modes") else { return };
    block_on(async { add_dummy(&connect(), "p1").await });
    let (l3, l3s) = (Ns::new(), Ns::new());
    let mut a = pod_iface(&l3, "eth1", "tmp-v2", LinkKind::IpVlan(IpVlanMode::L3), "p0", &["10.40.0.6/24"]);
    a.routes = vec![route("10.42.0.0/16", "10.40.0.1")];
    run(provisioner.create(&a)).unwrap();
    let b = pod_iface(&l3s, "eth1", "tmp-v3", LinkKind::IpVlan(IpVlanMode::L3S), "p1", &["10.45.0.7/24"]);
    run(provisioner.create(&b)).unwrap();
    assert_eq!(ipvlan_mode_of(&l3, "eth1"), Some(NlIpVlanMode::L3));
    assert_eq!(ipvlan_mode_of(&l3s, "eth1"), Some(NlIpVlanMode::L3S));
    assert_eq!(run(provisioner.inspect(&l3.path(), "eth1")).unwrap().unwrap().addresses, [net("10.40.0.6/24")]);
    assert_eq!(host_links(), ["lo", "p0", "p1"]);
}

/// The kernel keeps one IPVLAN mode per parent: a new slave's mode becomes that of all the parent's
/// slaves. (What danm-core's validation has to keep consistent across networks sharing a device.)
#[test]
#[ignore = "needs ipvlan and 8021q: runs in the VM through tools/uml-run.sh"]
fn ipvlan_mode_is_shared_by_all_slaves_of_a_parent() {
    let Some(provisioner) = vm_host("ipvlan_mode_is_shared_by_all_slaves_of_a_parent") else { return };
    let (first, second) = (Ns::new(), Ns::new());
    run(provisioner.create(&pod_iface(&first, "eth1", "tmp-v8", LinkKind::IpVlan(IpVlanMode::L3), "p0", &[]))).unwrap();
    run(provisioner.create(&pod_iface(&second, "eth1", "tmp-v9", LinkKind::IpVlan(IpVlanMode::L2), "p0", &[])))
        .unwrap();
    assert_eq!(ipvlan_mode_of(&first, "eth1"), Some(NlIpVlanMode::L2));
}

#[test]
#[ignore = "needs ipvlan and 8021q: runs in the VM through tools/uml-run.sh"]
fn ipvlan_failures_leave_nothing() {
    let Some(provisioner) = vm_host("ipvlan_failures_leave_nothing") else { return };
    let pod = Ns::new();
    let mut unreachable = pod_iface(&pod, "eth1", "tmp-v4", LinkKind::IpVlan(IpVlanMode::L2), "p0", &["10.40.0.8/24"]);
    unreachable.routes = vec![route("10.43.0.0/16", "192.0.2.1")];
    assert!(matches!(run(provisioner.create(&unreachable)), Err(ProvisionError::Kernel { .. })));

    // ipvlan and macvlan cannot share a parent: the kernel refuses the second kind (EBUSY).
    let other = Ns::new();
    run(provisioner.create(&pod_iface(&other, "eth1", "tmp-v5", LinkKind::MacVlan(MacVlanMode::Bridge), "p0", &[])))
        .unwrap();
    let busy = pod_iface(&pod, "eth1", "tmp-v6", LinkKind::IpVlan(IpVlanMode::L2), "p0", &["10.40.0.9/24"]);
    let err = run(provisioner.create(&busy)).unwrap_err();
    assert!(matches!(&err, ProvisionError::Kernel { operation, .. } if operation.contains("ipvlan")), "{err:?}");

    let (links, rules) = pod.netlink(|h| async move { (link_names(&h).await, source_rules(&h).await) });
    assert_eq!(links, ["lo"]);
    assert_eq!(rules, []);
    assert_eq!(host_links(), ["lo", "p0"]);
}

fn vlan(name: &str, parent: &str, id: u16) -> HostInterface {
    HostInterface { name: name.to_owned(), parent: parent.to_owned(), kind: HostLinkKind::Vlan(id), mtu: None }
}

#[test]
#[ignore = "needs ipvlan and 8021q: runs in the VM through tools/uml-run.sh"]
fn vlan_host_interface_is_reference_counted_across_restarts() {
    let Some(provisioner) = vm_host("vlan_host_interface_is_reference_counted_across_restarts") else { return };
    let want = vlan("net1.100", "p0", 100);
    run(provisioner.ensure_host(&want, "DanmNet/default/a")).unwrap();
    run(provisioner.ensure_host(&want, "DanmNet/default/a")).unwrap();
    run(provisioner.ensure_host(&want, "TenantNetwork/t1/b")).unwrap();

    let (link, parent) = block_on(async {
        let h = connect();
        (link(&h, "net1.100").await.unwrap(), link(&h, "p0").await.unwrap())
    });
    let Some(InfoData::Vlan(info)) = info_data(&link) else { panic!("not a VLAN") };
    assert!(info.contains(&InfoVlan::Id(100)), "{info:?}");
    assert!(link.attributes.contains(&LinkAttribute::Link(parent.header.index)));
    assert_eq!(mtu(&link), 1500);
    assert_eq!(alias(&link).as_deref(), Some("danm-holders:DanmNet/default/a,TenantNetwork/t1/b"));
    let shown = ip_json(&["-d", "link", "show", "net1.100"]);
    assert_eq!(shown[0]["linkinfo"]["info_data"]["id"], 100, "{shown}");
    assert!(shown[0]["flags"].as_array().unwrap().iter().any(|f| f == "UP"), "{shown}");
    drop(provisioner);

    let restarted = NetlinkProvisioner::new().unwrap();
    assert!(!run(restarted.release_host("net1.100", "DanmNet/default/a")).unwrap());
    assert!(host_links().contains(&"net1.100".to_owned()));
    assert!(run(restarted.release_host("net1.100", "TenantNetwork/t1/b")).unwrap());
    assert_eq!(host_links(), ["lo", "p0"]);
    assert!(!run(restarted.release_host("net1.100", "TenantNetwork/t1/b")).unwrap());
}

#[test]
#[ignore = "needs ipvlan and 8021q: runs in the VM through tools/uml-run.sh"]
fn ipvlan_pod_interface_on_a_vlan_host_interface() {
    let Some(provisioner) = vm_host("ipvlan_pod_interface_on_a_vlan_host_interface") else { return };
    run(provisioner.ensure_host(&vlan("net2.200", "p0", 200), "net2")).unwrap();
    let pod = Ns::new();
    let iface = pod_iface(&pod, "eth0", "tmp-v7", LinkKind::IpVlan(IpVlanMode::L2), "net2.200", &["10.44.0.5/24"]);
    run(provisioner.create(&iface)).unwrap();
    assert!(run(provisioner.inspect(&pod.path(), "eth0")).unwrap().unwrap().up);
    run(provisioner.delete(&pod.path(), "eth0")).unwrap();
    assert!(run(provisioner.release_host("net2.200", "net2")).unwrap());
    assert_eq!(host_links(), ["lo", "p0"]);
}

#[test]
#[ignore = "needs ipvlan and 8021q: runs in the VM through tools/uml-run.sh"]
fn vlan_checks_id_mtu_and_existing_interfaces() {
    let Some(provisioner) = vm_host("vlan_checks_id_mtu_and_existing_interfaces") else { return };
    run(provisioner.ensure_host(&vlan("net3.300", "p0", 300), "n1")).unwrap();
    let err = run(provisioner.ensure_host(&vlan("net3.300", "p0", 301), "n2")).unwrap_err();
    assert!(matches!(&err, ProvisionError::Invalid { reason, .. } if reason.contains("not VLAN 301")), "{err:?}");
    assert!(matches!(
        run(provisioner.ensure_host(&vlan("net4.0", "p0", 0), "n1")),
        Err(ProvisionError::Invalid { .. })
    ));
    let mut too_big = vlan("net5.5", "p0", 5);
    too_big.mtu = Some(1501);
    assert!(matches!(run(provisioner.ensure_host(&too_big, "n1")), Err(ProvisionError::Invalid { .. })));
    assert!(matches!(
        run(provisioner.ensure_host(&vlan("net6.6", "nope0", 6), "n1")),
        Err(ProvisionError::ParentMissing { .. })
    ));
    assert_eq!(host_links(), ["lo", "net3.300", "p0"]);
}

#[test]
#[ignore = "needs ipvlan and 8021q: runs in the VM through tools/uml-run.sh"]
fn netwatch_passes_keep_vlan_interfaces_in_line_with_their_networks() {
    let Some(provisioner) = vm_host("netwatch_passes_keep_vlan_interfaces_in_line_with_their_networks") else {
        return;
    };
    block_on(async { add_dummy(&connect(), "p1").await });
    let alias_of = |name: &'static str| block_on(async move { link(&connect(), name).await.map(|l| alias(&l)) });
    let (a, b) = (network("a", "net7", "p0", Some(100), None), network("b", "net7", "p0", Some(100), None));

    // Two networks share one VLAN interface; one deleted, it stays; both deleted, it goes.
    netwatch_pass(&provisioner, &[a.clone(), b.clone()]);
    assert_eq!(alias_of("net7.100"), Some(Some("danm-holders:DanmNet/default/a,DanmNet/default/b".into())));
    assert!(netwatch_pass(&provisioner, &[a.clone(), b.clone()]).is_settled());
    netwatch_pass(&provisioner, std::slice::from_ref(&b));
    assert_eq!(alias_of("net7.100"), Some(Some("danm-holders:DanmNet/default/b".into())));

    // Deleted behind netwatcher's back: back on the next pass, on the same parent with the same id.
    ip_cmd(&["link", "del", "net7.100"]);
    netwatch_pass(&provisioner, std::slice::from_ref(&b));
    let scan = run(provisioner.scan_hosts()).unwrap();
    let [seen] = &scan.managed[..] else { panic!("{scan:?}") };
    assert_eq!((seen.kind, seen.parent.as_deref(), seen.up), (Some(HostLinkKind::Vlan(100)), Some("p0"), true));

    // The network moved to another device: the interface is made again there.
    let moved = network("b", "net7", "p1", Some(100), None);
    let plan = netwatch_pass(&provisioner, std::slice::from_ref(&moved));
    assert!(matches!(&plan.actions[..], [HostAction::Recreate { .. }]), "{:?}", plan.actions);
    let scan = run(provisioner.scan_hosts()).unwrap();
    assert_eq!(scan.managed[0].parent.as_deref(), Some("p1"));

    // Another VLAN id is another name: the old interface goes, the new one comes.
    let renumbered = network("b", "net7", "p1", Some(101), None);
    netwatch_pass(&provisioner, std::slice::from_ref(&renumbered));
    assert_eq!(host_links(), ["lo", "net7.101", "p0", "p1"]);
    netwatch_pass(&provisioner, &[]);
    assert_eq!(host_links(), ["lo", "p0", "p1"]);
}

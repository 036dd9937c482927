//! Real-kernel tests of the netlink provisioner on the machine's own kernel (macvlan, VXLAN, veth).
//!
//! Each test moves its own thread into a fresh network namespace, which stands for the host, and makes
//! further namespaces for pods, so tests run in parallel with the same names and touch nothing outside.
//! Without the privilege to do so they print `SKIPPED: ...` (and fail under `CI=true`).

mod common;

use std::path::Path;

use common::*;
use danm_core::netwatch::HostAction;
use danm_core::netwatch::attachment::{Attachment, HOST_DEVICE_ANNOTATION, HOST_INTERFACE_ANNOTATION};
use danm_core::provision::{
    HostInterface, HostInventory, HostLinkKind, InterfaceProvisioner, InterfaceSetup, IpVlanMode, Ipv6Mode, LinkKind,
    MacVlanMode, PolicyRouting, ProvisionError, Removal, Route,
};
use danm_netlink::NetlinkProvisioner;
use futures::executor::block_on as run;
use netlink_packet_route::link::{InfoData, InfoMacVlan, InfoVxlan, MacVlanMode as NlMacVlanMode};

/// A host namespace with a veth pair `p0`/`p1` (up, so slaves of `p0` have carrier) and a provisioner.
fn host(test: &str) -> Option<NetlinkProvisioner> {
    if !enter_fresh_netns(test) {
        return None;
    }
    block_on(async {
        let h = connect();
        add_veth(&h, "p0", "p1").await;
    });
    Some(NetlinkProvisioner::new().unwrap())
}

fn host_links() -> Vec<String> {
    block_on(async { link_names(&connect()).await })
}

fn macvlan() -> LinkKind {
    LinkKind::MacVlan(MacVlanMode::Bridge)
}

#[test]
fn macvlan_pod_interface_is_fully_configured() {
    let Some(provisioner) = host("macvlan_pod_interface_is_fully_configured") else { return };
    let pod = Ns::new();
    let mut iface = pod_iface(&pod, "eth1", "tmp-a1", macvlan(), "p0", &["10.10.0.5/24", "fd00:10::5/64"]);
    iface.mtu = Some(1400);
    iface.routes = vec![route("10.20.0.0/16", "10.10.0.1"), route("fd00:20::/64", "fd00:10::1")];
    iface.policy = Some(PolicyRouting {
        table: 100,
        routes: vec![route("0.0.0.0/0", "10.10.0.254"), route("::/0", "fd00:10::fe")],
    });

    let created = run(provisioner.create(&iface)).unwrap();
    assert_eq!(created.mtu, 1400);
    assert_eq!(created.mac.len(), 17, "{created:?}");
    // Nothing stays behind in the host under the temporary name.
    assert_eq!(host_links(), ["lo", "p0", "p1"]);

    // What inspect reads back (link-local addresses aside).
    let state = run(provisioner.inspect(&pod.path(), "eth1")).unwrap().unwrap();
    assert_eq!(state.name, "eth1");
    assert_eq!(state.mac, created.mac);
    assert_eq!(state.mtu, 1400);
    assert!(state.up);
    let mut addresses = state.addresses.clone();
    addresses.sort();
    assert_eq!(addresses, [net("10.10.0.5/24"), net("fd00:10::5/64")]);

    // Kind, routes and rules, read with netlink in the pod.
    let (link, routes, rules) = pod.netlink(|h| async move {
        let link = link(&h, "eth1").await.unwrap();
        (link, routes(&h).await, source_rules(&h).await)
    });
    let Some(InfoData::MacVlan(infos)) = info_data(&link) else { panic!("not a macvlan") };
    assert!(infos.contains(&InfoMacVlan::Mode(NlMacVlanMode::Bridge)), "{infos:?}");
    let oif = Some(link.header.index);
    for (table, dst, gateway) in [
        (254, "10.20.0.0/16", "10.10.0.1"),
        (254, "fd00:20::/64", "fd00:10::1"),
        (100, "0.0.0.0/0", "10.10.0.254"),
        (100, "::/0", "fd00:10::fe"),
    ] {
        let want = KernelRoute { table, dst: net(dst), gateway: Some(ip(gateway)), oif };
        assert!(routes.contains(&want), "{want:?} missing from {routes:#?}");
    }
    assert_eq!(
        rules,
        [
            KernelRule { table: 100, source: Some(net("10.10.0.0/24")) },
            KernelRule { table: 100, source: Some(net("fd00:10::/64")) }
        ]
    );

    // Sysctls, and a cross-check of flags and rules with iproute2.
    pod.run(|| {
        for (key, value) in [("disable_ipv6", "0"), ("autoconf", "0"), ("accept_ra", "0"), ("ndisc_notify", "1")] {
            assert_eq!(sysctl("ipv6", "eth1", key), value, "net.ipv6.conf.eth1.{key}");
        }
        assert_eq!(sysctl("ipv4", "eth1", "arp_notify"), "1");
        let addr = ip_json(&["addr", "show", "dev", "eth1"]);
        let v6 = addr[0]["addr_info"].as_array().unwrap().iter().find(|a| a["local"] == "fd00:10::5").unwrap();
        assert_eq!(v6["nodad"], true, "{v6}");
        let link = ip_json(&["-d", "link", "show", "eth1"]);
        assert_eq!(link[0]["linkinfo"]["info_kind"], "macvlan");
        assert_eq!(link[0]["linkinfo"]["info_data"]["mode"], "bridge");
        let rules = ip_json(&["rule", "show"]);
        assert!(
            rules
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["src"] == "10.10.0.0" && r["srclen"] == 24 && r["table"] == "100")
        );
    });
}

#[test]
fn ipv6_disabled_private_macvlan() {
    let Some(provisioner) = host("ipv6_disabled_private_macvlan") else { return };
    let pod = Ns::new();
    let iface = pod_iface(&pod, "net1", "tmp-b1", LinkKind::MacVlan(MacVlanMode::Private), "p0", &["10.11.0.7/16"]);
    let created = run(provisioner.create(&iface)).unwrap();
    assert_eq!(created.mtu, 1500, "the parent's MTU when none is asked");
    let state = run(provisioner.inspect(&pod.path(), "net1")).unwrap().unwrap();
    assert_eq!(state.addresses, [net("10.11.0.7/16")]);
    pod.run(|| assert_eq!(sysctl("ipv6", "net1", "disable_ipv6"), "1"));
    let link = pod.netlink(|h| async move { link(&h, "net1").await.unwrap() });
    let Some(InfoData::MacVlan(infos)) = info_data(&link) else { panic!("not a macvlan") };
    assert!(infos.contains(&InfoMacVlan::Mode(NlMacVlanMode::Private)), "{infos:?}");
}

#[test]
fn delete_removes_interface_and_its_rules_and_is_idempotent() {
    let Some(provisioner) = host("delete_removes_interface_and_its_rules_and_is_idempotent") else { return };
    let pod = Ns::new();
    let mut eth1 = pod_iface(&pod, "eth1", "tmp-c1", macvlan(), "p0", &["10.12.0.5/24", "fd00:12::5/64"]);
    eth1.policy = Some(PolicyRouting { table: 100, routes: vec![route("0.0.0.0/0", "10.12.0.1")] });
    let mut eth2 = pod_iface(&pod, "eth2", "tmp-c2", macvlan(), "p0", &["10.12.0.6/24"]);
    eth2.policy = Some(PolicyRouting { table: 101, routes: vec![] });
    run(provisioner.create(&eth1)).unwrap();
    run(provisioner.create(&eth2)).unwrap();
    assert_eq!(pod.netlink(|h| async move { source_rules(&h).await }).len(), 3);

    // eth1's IPv6 rule goes; its IPv4 subnet is still eth2's, so that rule stays.
    run(provisioner.delete(&pod.path(), "eth1")).unwrap();
    let (links, rules) = pod.netlink(|h| async move { (link_names(&h).await, source_rules(&h).await) });
    assert_eq!(links, ["eth2", "lo"]);
    assert_eq!(
        rules,
        [
            KernelRule { table: 101, source: Some(net("10.12.0.0/24")) },
            KernelRule { table: 100, source: Some(net("10.12.0.0/24")) }
        ]
    );

    run(provisioner.delete(&pod.path(), "eth2")).unwrap();
    let (links, rules) = pod.netlink(|h| async move { (link_names(&h).await, source_rules(&h).await) });
    assert_eq!(links, ["lo"]);
    assert_eq!(rules, []);

    // Already gone, a namespace that does not exist, a file that is not a namespace.
    run(provisioner.delete(&pod.path(), "eth2")).unwrap();
    run(provisioner.delete(Path::new("/run/netns/danm-test-does-not-exist"), "eth0")).unwrap();
    let not_a_netns = std::env::temp_dir().join(format!("danm-not-a-netns-{}", std::process::id()));
    std::fs::write(&not_a_netns, "").unwrap();
    run(provisioner.delete(&not_a_netns, "eth0")).unwrap();
    std::fs::remove_file(not_a_netns).unwrap();
    run(provisioner.delete(&pod.path(), "a-name-too-long-for-linux")).unwrap();
    assert_eq!(run(provisioner.inspect(&pod.path(), "eth2")).unwrap(), None);
    assert_eq!(host_links(), ["lo", "p0", "p1"]);
}

/// Asserts that nothing a failed `create` made is left: only `lo` in the pod, no temporary link in the
/// host, no rule.
fn assert_nothing_left(pod: &Ns) {
    let (links, rules) = pod.netlink(|h| async move { (link_names(&h).await, source_rules(&h).await) });
    assert_eq!(links, ["lo"]);
    assert_eq!(rules, []);
    assert_eq!(host_links(), ["lo", "p0", "p1"]);
}

#[test]
fn missing_parent_fails_before_creating_anything() {
    let Some(provisioner) = host("missing_parent_fails_before_creating_anything") else { return };
    let pod = Ns::new();
    let iface = pod_iface(&pod, "eth1", "tmp-d1", macvlan(), "nope0", &["10.13.0.5/24"]);
    let err = run(provisioner.create(&iface)).unwrap_err();
    assert!(matches!(&err, ProvisionError::ParentMissing { parent } if parent == "nope0"), "{err:?}");
    assert_nothing_left(&pod);
}

#[test]
fn unreachable_gateway_undoes_everything() {
    let Some(provisioner) = host("unreachable_gateway_undoes_everything") else { return };
    let pod = Ns::new();
    let mut iface = pod_iface(&pod, "eth1", "tmp-e1", macvlan(), "p0", &["10.14.0.5/24"]);
    iface.routes = vec![route("10.99.0.0/16", "10.14.0.1"), route("10.98.0.0/16", "192.0.2.1")];
    let err = run(provisioner.create(&iface)).unwrap_err();
    assert!(matches!(&err, ProvisionError::Kernel { operation, .. } if operation.contains("192.0.2.1")), "{err:?}");
    assert_nothing_left(&pod);
}

#[test]
fn failing_policy_route_removes_the_rules_already_added() {
    let Some(provisioner) = host("failing_policy_route_removes_the_rules_already_added") else { return };
    let pod = Ns::new();
    let mut iface = pod_iface(&pod, "eth1", "tmp-f1", macvlan(), "p0", &["10.15.0.5/24", "fd00:15::5/64"]);
    iface.policy = Some(PolicyRouting { table: 200, routes: vec![route("0.0.0.0/0", "198.51.100.1")] });
    let err = run(provisioner.create(&iface)).unwrap_err();
    assert!(matches!(&err, ProvisionError::Kernel { operation, .. } if operation.contains("table 200")), "{err:?}");
    assert_nothing_left(&pod);
}

#[test]
fn address_clash_undoes_everything() {
    let Some(provisioner) = host("address_clash_undoes_everything") else { return };
    let pod = Ns::new();
    let iface = pod_iface(&pod, "eth1", "tmp-g1", macvlan(), "p0", &["10.16.0.5/24", "10.16.0.5/24"]);
    let err = run(provisioner.create(&iface)).unwrap_err();
    assert!(matches!(&err, ProvisionError::Kernel { operation, .. } if operation.contains("10.16.0.5/24")), "{err:?}");
    assert_nothing_left(&pod);
}

#[test]
fn existing_name_invalid_mtu_and_missing_netns_are_refused() {
    let Some(provisioner) = host("existing_name_invalid_mtu_and_missing_netns_are_refused") else { return };
    let pod = Ns::new();
    let first = pod_iface(&pod, "eth1", "tmp-h1", macvlan(), "p0", &["10.17.0.5/24"]);
    run(provisioner.create(&first)).unwrap();

    let again = pod_iface(&pod, "eth1", "tmp-h2", macvlan(), "p0", &["10.17.0.6/24"]);
    let err = run(provisioner.create(&again)).unwrap_err();
    assert!(matches!(&err, ProvisionError::Exists { name } if name == "eth1"), "{err:?}");

    let mut too_big = pod_iface(&pod, "eth2", "tmp-h3", macvlan(), "p0", &["10.17.0.7/24"]);
    too_big.mtu = Some(9000);
    let err = run(provisioner.create(&too_big)).unwrap_err();
    assert!(matches!(&err, ProvisionError::Invalid { name, .. } if name == "eth2"), "{err:?}");

    let long_name = pod_iface(&pod, "a-name-too-long-for-linux", "tmp-h4", macvlan(), "p0", &[]);
    assert!(matches!(run(provisioner.create(&long_name)), Err(ProvisionError::Invalid { .. })));

    let mut nowhere = pod_iface(&pod, "eth3", "tmp-h5", macvlan(), "p0", &[]);
    nowhere.netns = "/run/netns/danm-test-does-not-exist".into();
    assert!(matches!(run(provisioner.create(&nowhere)), Err(ProvisionError::NoNetns { .. })));

    let links = pod.netlink(|h| async move { link_names(&h).await });
    assert_eq!(links, ["eth1", "lo"]);
    assert_eq!(host_links(), ["lo", "p0", "p1"]);
}

#[test]
fn gratuitous_arp_reaches_a_neighbour() {
    let Some(provisioner) = host("gratuitous_arp_reaches_a_neighbour") else { return };
    let (pod_a, pod_b) = (Ns::new(), Ns::new());
    run(provisioner.create(&pod_iface(&pod_a, "eth1", "tmp-i1", macvlan(), "p0", &["10.18.0.2/24"]))).unwrap();
    // Let A learn neighbours from gratuitous ARP (by default Linux only refreshes known ones).
    pod_a.run(|| std::fs::write("/proc/sys/net/ipv4/conf/eth1/arp_accept", "1").unwrap());
    let b = run(provisioner.create(&pod_iface(&pod_b, "eth1", "tmp-i2", macvlan(), "p0", &["10.18.0.3/24"]))).unwrap();

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let neighbours = pod_a.run(|| ip_json(&["neigh", "show", "dev", "eth1"]));
        let learned = neighbours.as_array().unwrap().iter().any(|n| n["dst"] == "10.18.0.3" && n["lladdr"] == b.mac);
        if learned {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "A never learned B from its gratuitous ARP: {neighbours}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn concurrent_creates_do_not_interfere() {
    let Some(provisioner) = host("concurrent_creates_do_not_interfere") else { return };
    let pods: Vec<Ns> = (0..6).map(|_| Ns::new()).collect();
    let ifaces: Vec<_> = pods
        .iter()
        .enumerate()
        .map(|(i, pod)| {
            pod_iface(pod, "eth0", &format!("tmp-j{i}"), macvlan(), "p0", &[&format!("10.19.0.{}/24", i + 2)])
        })
        .collect();
    let results = run(futures::future::join_all(ifaces.iter().map(|iface| provisioner.create(iface))));
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    for (i, pod) in pods.iter().enumerate() {
        let state = run(provisioner.inspect(&pod.path(), "eth0")).unwrap().unwrap();
        assert_eq!(state.addresses, [net(&format!("10.19.0.{}/24", i + 2))]);
    }
    assert_eq!(host_links(), ["lo", "p0", "p1"]);
}

#[test]
fn ipvlan_is_created_or_cleanly_unsupported() {
    let Some(provisioner) = host("ipvlan_is_created_or_cleanly_unsupported") else { return };
    let pod = Ns::new();
    let iface = pod_iface(&pod, "eth1", "tmp-k1", LinkKind::IpVlan(IpVlanMode::L2), "p0", &["10.20.0.5/24"]);
    match run(provisioner.create(&iface)) {
        // This kernel has ipvlan: the VM tests cover it in depth.
        Ok(_) => assert!(run(provisioner.inspect(&pod.path(), "eth1")).unwrap().is_some()),
        Err(ProvisionError::Unsupported { what, .. }) => {
            assert_eq!(what, "ipvlan interfaces");
            assert_nothing_left(&pod);
        }
        Err(e) => panic!("{e:?}"),
    }
}

fn vxlan(name: &str, parent: &str, vni: u32) -> HostInterface {
    HostInterface { name: name.to_owned(), parent: parent.to_owned(), kind: HostLinkKind::Vxlan(vni), mtu: None }
}

#[test]
fn vxlan_host_interface_is_reference_counted_across_restarts() {
    let Some(provisioner) = host("vxlan_host_interface_is_reference_counted_across_restarts") else { return };
    block_on(async { add_address(&connect(), "p0", "10.30.0.1/24").await });
    let want = vxlan("vx_net1", "p0", 5);
    run(provisioner.ensure_host(&want, "DanmNet/default/a")).unwrap();
    run(provisioner.ensure_host(&want, "DanmNet/default/a")).unwrap();

    let link = block_on(async { link(&connect(), "vx_net1").await.unwrap() });
    let Some(InfoData::Vxlan(info)) = info_data(&link) else { panic!("not a vxlan") };
    for expected in [
        InfoVxlan::Id(5),
        InfoVxlan::Port(4789),
        InfoVxlan::Group("239.0.0.5".parse().unwrap()),
        InfoVxlan::Local("10.30.0.1".parse().unwrap()),
        InfoVxlan::Learning(true),
    ] {
        assert!(info.contains(&expected), "{expected:?} missing from {info:?}");
    }
    assert_eq!(mtu(&link), 1450, "the parent's 1500 less the VXLAN overhead");
    assert_eq!(alias(&link).as_deref(), Some("danm-holders:DanmNet/default/a"));
    let shown = ip_json(&["link", "show", "vx_net1"]);
    assert!(shown[0]["flags"].as_array().unwrap().iter().any(|f| f == "UP"), "{shown}");

    run(provisioner.ensure_host(&want, "ClusterNetwork/b")).unwrap();
    drop(provisioner);

    // A new provisioner (a restarted process) knows the holders from the interface itself.
    let restarted = NetlinkProvisioner::new().unwrap();
    assert!(!run(restarted.release_host("vx_net1", "DanmNet/default/a")).unwrap());
    assert!(!run(restarted.release_host("vx_net1", "DanmNet/default/a")).unwrap(), "releasing twice is harmless");
    assert!(host_links().contains(&"vx_net1".to_owned()));
    assert!(run(restarted.release_host("vx_net1", "ClusterNetwork/b")).unwrap());
    assert!(!host_links().contains(&"vx_net1".to_owned()));
    assert!(!run(restarted.release_host("vx_net1", "ClusterNetwork/b")).unwrap(), "an unknown interface is success");
}

#[test]
fn vxlan_checks_vni_mtu_parent_and_existing_interfaces() {
    let Some(provisioner) = host("vxlan_checks_vni_mtu_parent_and_existing_interfaces") else { return };
    block_on(async {
        let h = connect();
        add_address(&h, "p0", "10.31.0.1/24").await;
        add_bridge(&h, "br0").await;
    });

    // A large VNI: the whole 24 bits go into the group.
    run(provisioner.ensure_host(&vxlan("vx_big", "p0", 0x12_3456), "n1")).unwrap();
    let big = block_on(async { link(&connect(), "vx_big").await.unwrap() });
    let Some(InfoData::Vxlan(info)) = info_data(&big) else { panic!("not a vxlan") };
    assert!(info.contains(&InfoVxlan::Group("239.18.52.86".parse().unwrap())), "{info:?}");

    // An existing interface's MTU is raised to what a network asks for, never lowered under the
    // networks already on it; one above what the parent allows is refused.
    let mut smaller = vxlan("vx_big", "p0", 0x12_3456);
    smaller.mtu = Some(1400);
    run(provisioner.ensure_host(&smaller, "n2")).unwrap();
    assert_eq!(block_on(async { mtu(&link(&connect(), "vx_big").await.unwrap()) }), 1450, "not lowered");
    let mut low = vxlan("vx_low", "p0", 8);
    low.mtu = Some(1300);
    run(provisioner.ensure_host(&low, "n1")).unwrap();
    assert_eq!(block_on(async { mtu(&link(&connect(), "vx_low").await.unwrap()) }), 1300, "created as asked");
    low.mtu = Some(1400);
    run(provisioner.ensure_host(&low, "n2")).unwrap();
    assert_eq!(block_on(async { mtu(&link(&connect(), "vx_low").await.unwrap()) }), 1400, "raised");
    let mut too_big = vxlan("vx_mtu", "p0", 7);
    too_big.mtu = Some(1451);
    assert!(matches!(run(provisioner.ensure_host(&too_big, "n1")), Err(ProvisionError::Invalid { .. })));

    // The same name with another VNI, a VNI beyond 24 bits, a parent without an address, no parent.
    let err = run(provisioner.ensure_host(&vxlan("vx_big", "p0", 9), "n3")).unwrap_err();
    assert!(matches!(&err, ProvisionError::Invalid { reason, .. } if reason.contains("not VXLAN 9")), "{err:?}");
    assert!(matches!(
        run(provisioner.ensure_host(&vxlan("vx_x", "p0", 1 << 24), "n1")),
        Err(ProvisionError::Invalid { .. })
    ));
    let err = run(provisioner.ensure_host(&vxlan("vx_noaddr", "br0", 8), "n1")).unwrap_err();
    assert!(matches!(&err, ProvisionError::Invalid { reason, .. } if reason.contains("no global address")), "{err:?}");
    let err = run(provisioner.ensure_host(&vxlan("vx_none", "nope0", 8), "n1")).unwrap_err();
    assert!(matches!(err, ProvisionError::ParentMissing { .. }));

    // An IPv6 underlay: ff02::/16 plus the VNI, and 70 bytes of overhead.
    block_on(async {
        let h = connect();
        add_bridge(&h, "br6").await;
        add_address(&h, "br6", "fd00:31::1/64").await;
    });
    run(provisioner.ensure_host(&vxlan("vx_v6", "br6", 0x10_0001), "n1")).unwrap();
    let v6 = block_on(async { link(&connect(), "vx_v6").await.unwrap() });
    let Some(InfoData::Vxlan(info)) = info_data(&v6) else { panic!("not a vxlan") };
    assert!(info.contains(&InfoVxlan::Group6("ff02::10:1".parse().unwrap())), "{info:?}");
    assert!(info.contains(&InfoVxlan::Local6("fd00:31::1".parse().unwrap())), "{info:?}");
    assert_eq!(mtu(&v6), 1430);
    assert_eq!(host_links(), ["br0", "br6", "lo", "p0", "p1", "vx_big", "vx_low", "vx_v6"]);
}

#[test]
fn host_interfaces_not_made_by_danm_are_adopted_or_left_alone() {
    let Some(provisioner) = host("host_interfaces_not_made_by_danm_are_adopted_or_left_alone") else { return };
    block_on(async { add_address(&connect(), "p0", "10.32.0.1/24").await });
    // Made by someone else, with an alias of theirs: used, never removed.
    run(provisioner.ensure_host(&vxlan("vx_theirs", "p0", 11), "tmp")).unwrap();
    let set_alias = |name: &'static str, alias: &'static str| {
        block_on(async move {
            let h = connect();
            let index = link(&h, name).await.unwrap().header.index;
            let message = rtnetlink::LinkUnspec::new_with_index(index).alias(alias.to_owned()).build();
            h.link().set(message).execute().await.unwrap();
        })
    };
    set_alias("vx_theirs", "uplink owned by ops");
    run(provisioner.ensure_host(&vxlan("vx_theirs", "p0", 11), "n1")).unwrap();
    assert!(!run(provisioner.release_host("vx_theirs", "n1")).unwrap());
    let link = block_on(async { link(&connect(), "vx_theirs").await.unwrap() });
    assert_eq!(alias(&link).as_deref(), Some("uplink owned by ops"));
}

/// The alias of host interface `name`, or `None` when it does not exist.
fn host_alias(name: &'static str) -> Option<String> {
    block_on(async move { link(&connect(), name).await.map(|l| alias(&l).unwrap_or_default()) })
}

#[test]
fn netwatch_passes_keep_vxlan_interfaces_in_line_with_their_networks() {
    let Some(provisioner) = host("netwatch_passes_keep_vxlan_interfaces_in_line_with_their_networks") else { return };
    block_on(async { add_address(&connect(), "p0", "10.33.0.1/24").await });
    let (a, b) = (network("a", "foo", "p0", None, Some(5)), network("b", "foo", "p0", None, Some(5)));
    let elsewhere = network("c", "bar", "eth9", None, Some(6));

    // Two networks share one interface; a network whose device is not here needs nothing.
    netwatch_pass(&provisioner, &[a.clone(), b.clone(), elsewhere.clone()]);
    assert_eq!(host_alias("vx_foo").as_deref(), Some("danm-holders:DanmNet/default/a,DanmNet/default/b"));
    assert!(netwatch_pass(&provisioner, &[a.clone(), b.clone(), elsewhere.clone()]).is_settled());
    assert_eq!(host_links(), ["lo", "p0", "p1", "vx_foo"]);

    // The scan sees what the kernel has.
    let scan = run(provisioner.scan_hosts()).unwrap();
    assert!(scan.devices.contains("p0") && scan.devices.contains("vx_foo"));
    let [seen] = &scan.managed[..] else { panic!("{scan:?}") };
    assert_eq!(seen.kind, Some(HostLinkKind::Vxlan(5)));
    assert_eq!(seen.parent.as_deref(), Some("p0"));
    assert_eq!(seen.holders, ["DanmNet/default/a".to_owned(), "DanmNet/default/b".to_owned()].into());
    assert!(seen.up);
    assert_eq!(seen.mtu, 1450);

    // One network deleted: the interface stays for the other.
    netwatch_pass(&provisioner, std::slice::from_ref(&b));
    assert_eq!(host_alias("vx_foo").as_deref(), Some("danm-holders:DanmNet/default/b"));

    // Deleted behind netwatcher's back: back on the next pass. Brought down: up again.
    ip_cmd(&["link", "del", "vx_foo"]);
    assert_eq!(host_alias("vx_foo"), None);
    netwatch_pass(&provisioner, std::slice::from_ref(&b));
    assert_eq!(host_alias("vx_foo").as_deref(), Some("danm-holders:DanmNet/default/b"));
    ip_cmd(&["link", "set", "vx_foo", "down"]);
    netwatch_pass(&provisioner, std::slice::from_ref(&b));
    assert!(run(provisioner.scan_hosts()).unwrap().managed[0].up);

    // The VNI changed: the interface is made again with the new one.
    let b6 = network("b", "foo", "p0", None, Some(6));
    let plan = netwatch_pass(&provisioner, std::slice::from_ref(&b6));
    assert!(matches!(&plan.actions[..], [HostAction::Recreate { .. }]), "{:?}", plan.actions);
    let link = block_on(async { link(&connect(), "vx_foo").await.unwrap() });
    let Some(InfoData::Vxlan(info)) = info_data(&link) else { panic!("not a vxlan") };
    assert!(info.contains(&InfoVxlan::Id(6)), "{info:?}");
    assert!(info.contains(&InfoVxlan::Group("239.0.0.6".parse().unwrap())), "{info:?}");

    // The last network deleted: the interface goes; what is not DANM's stays.
    netwatch_pass(&provisioner, &[elsewhere]);
    assert_eq!(host_links(), ["lo", "p0", "p1"]);
    assert!(run(provisioner.scan_hosts()).unwrap().managed.is_empty());
}

/// One netwatch pass over NetworkAttachmentDefinitions alone; panics when a step fails.
fn attachment_pass(provisioner: &NetlinkProvisioner, attachments: &[Attachment]) -> danm_core::netwatch::HostPlan {
    let scan = run(provisioner.scan_hosts()).unwrap();
    let plan = danm_core::netwatch::plan_with_attachments(&[], attachments, &scan);
    assert_eq!(danm_core::netwatch::failure_summary(&run(danm_core::netwatch::apply(&plan, provisioner))), None);
    plan
}

#[test]
fn a_network_attachment_definitions_vxlan_stays_on_its_parent_after_the_rewrite() {
    let Some(provisioner) = host("a_network_attachment_definitions_vxlan_stays_on_its_parent_after_the_rewrite") else {
        return;
    };
    block_on(async { add_address(&connect(), "p0", "10.34.0.1/24").await });
    let mut nad = Attachment {
        namespace: "default".into(),
        name: "m".into(),
        config: r#"{"cniVersion":"0.3.1","name":"ov","type":"ipvlan","master":"p0","vxlan":7}"#.into(),
        ..Attachment::default()
    };
    attachment_pass(&provisioner, std::slice::from_ref(&nad));
    let [seen] = &run(provisioner.scan_hosts()).unwrap().managed[..] else { panic!() };
    assert_eq!(
        (seen.name.as_str(), seen.kind, seen.parent.as_deref()),
        ("vx_ov", Some(HostLinkKind::Vxlan(7)), Some("p0"))
    );
    assert_eq!(host_alias("vx_ov").as_deref(), Some("danm-holders:NetworkAttachmentDefinition/default/m"));

    // master now names vx_ov: the interface stays on p0, nothing to do.
    let rewrite = nad.rewrite().unwrap();
    nad.config = rewrite.config;
    nad.annotations.insert(HOST_DEVICE_ANNOTATION.into(), rewrite.host_device);
    nad.annotations.insert(HOST_INTERFACE_ANNOTATION.into(), rewrite.host_interface);
    assert!(attachment_pass(&provisioner, std::slice::from_ref(&nad)).is_settled());

    // The attachment deleted: the interface goes.
    attachment_pass(&provisioner, &[]);
    assert_eq!(host_links(), ["lo", "p0", "p1"]);
}

#[test]
fn remove_host_takes_only_danm_interfaces() {
    let Some(provisioner) = host("remove_host_takes_only_danm_interfaces") else { return };
    block_on(async { add_address(&connect(), "p0", "10.34.0.1/24").await });
    run(provisioner.ensure_host(&vxlan("vx_mine", "p0", 21), "n1")).unwrap();
    run(provisioner.ensure_host(&vxlan("vx_mine", "p0", 21), "n2")).unwrap();
    ip_cmd(&["link", "add", "vx_theirs", "type", "vxlan", "id", "22", "dev", "p0", "dstport", "4789"]);
    let scan = run(provisioner.scan_hosts()).unwrap();
    assert_eq!(scan.managed.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(), ["vx_mine"]);
    assert!(!run(provisioner.remove_host("vx_theirs", Removal::Always)).unwrap());
    assert!(!run(provisioner.remove_host("p0", Removal::Always)).unwrap());
    assert!(!run(provisioner.remove_host("vx_mine", Removal::IfUnheld)).unwrap(), "it has a holder");
    assert!(run(provisioner.remove_host("vx_mine", Removal::Always)).unwrap(), "removed whatever its holders");
    assert!(!run(provisioner.remove_host("vx_mine", Removal::Always)).unwrap(), "removing twice is harmless");
    assert!(!run(provisioner.remove_host("not a valid name", Removal::Always)).unwrap());
    assert_eq!(host_links(), ["lo", "p0", "p1", "vx_theirs"]);
}

#[test]
fn holders_recorded_at_once_by_two_provisioners_sharing_the_node_lock_are_all_kept() {
    let Some(first) = host("holders_recorded_at_once_by_two_provisioners_sharing_the_node_lock_are_all_kept") else {
        return;
    };
    block_on(async { add_address(&connect(), "p0", "10.35.0.1/24").await });
    let dir = std::env::temp_dir().join(format!("danm-node-lock-{}", std::process::id()));
    let lock = dir.join("host-interfaces.lock");
    // Two provisioners stand for two processes (the danm plugin and netwatcher): each orders only its
    // own calls, and the node lock orders theirs.
    let first = first.with_node_lock(&lock);
    let second = NetlinkProvisioner::new().unwrap().with_node_lock(&lock);
    let want = vxlan("vx_busy", "p0", 31);
    std::thread::scope(|s| {
        for i in 0..12 {
            let (p, want) = (if i % 2 == 0 { &first } else { &second }, &want);
            s.spawn(move || run(p.ensure_host(want, &format!("DanmNet/default/n{i}"))).unwrap());
        }
    });
    let alias = host_alias("vx_busy").unwrap();
    let recorded = alias.strip_prefix("danm-holders:").unwrap().split(',').count();
    assert_eq!(recorded, 12, "{alias}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn host_interfaces_need_only_cap_net_admin() {
    let Some(_) = host("host_interfaces_need_only_cap_net_admin") else { return };
    block_on(async { add_address(&connect(), "p0", "10.36.0.1/24").await });
    // Capabilities are per thread, and the provisioner's worker threads inherit this one's.
    use rustix::thread::{CapabilitySet, capabilities, set_capabilities};
    let mut caps = capabilities(None).unwrap();
    caps.effective.remove(CapabilitySet::SYS_ADMIN);
    caps.permitted.remove(CapabilitySet::SYS_ADMIN);
    set_capabilities(None, caps).unwrap();
    assert!(!capabilities(None).unwrap().effective.contains(CapabilitySet::SYS_ADMIN));

    let provisioner = NetlinkProvisioner::new().unwrap();
    let net = network("a", "capped", "p0", None, Some(41));
    netwatch_pass(&provisioner, std::slice::from_ref(&net));
    assert_eq!(host_alias("vx_capped").as_deref(), Some("danm-holders:DanmNet/default/a"));
    netwatch_pass(&provisioner, &[]);
    assert_eq!(host_alias("vx_capped"), None);
}

/// What a delegate would leave in the pod: veth `name` (its peer `name`-p) with `addresses`, up. IPv6
/// addresses are added the way delegates add them: with duplicate address detection.
fn delegate_made(pod: &Ns, name: &str, addresses: &[&str]) {
    let peer = format!("{name}-p");
    pod.run(|| {
        ip_cmd(&["link", "add", name, "type", "veth", "peer", "name", &peer]);
        for address in addresses {
            ip_cmd(&["addr", "add", address, "dev", name]);
        }
        ip_cmd(&["link", "set", &peer, "up"]);
        ip_cmd(&["link", "set", name, "up"]);
    });
}

fn setup(pod: &Ns, name: &str, table: Option<u32>, routes: Vec<Route>, proutes: Vec<Route>) -> InterfaceSetup {
    InterfaceSetup {
        netns: pod.path(),
        name: name.into(),
        routes,
        policy: table.map(|table| PolicyRouting { table, routes: proutes }),
        ipv6: Ipv6Mode::Enabled,
    }
}

#[test]
fn delegated_interfaces_get_routes_policy_routing_sysctls_and_no_dad() {
    let Some(provisioner) = host("delegated_interfaces_get_routes_policy_routing_sysctls_and_no_dad") else { return };
    let pod = Ns::new();
    delegate_made(&pod, "eth1", &["10.30.0.5/24", "fd00:30::5/64"]);
    delegate_made(&pod, "eth2", &["10.30.0.6/24"]);
    let eth1 = setup(
        &pod,
        "eth1",
        Some(150),
        vec![route("10.40.0.0/16", "10.30.0.1"), route("fd00:40::/64", "fd00:30::1")],
        vec![route("0.0.0.0/0", "10.30.0.254"), route("::/0", "fd00:30::fe")],
    );
    assert!(run(provisioner.configure(&eth1)).unwrap());
    // Again: what is there already is left as it is.
    assert!(run(provisioner.configure(&eth1)).unwrap());
    let eth2 = Ipv6Mode::Disabled;
    let eth2 = InterfaceSetup { ipv6: eth2, ..setup(&pod, "eth2", Some(150), vec![], vec![]) };
    assert!(run(provisioner.configure(&eth2)).unwrap());
    // A userspace interface (nothing of that name in the kernel) is left alone.
    assert!(!run(provisioner.configure(&setup(&pod, "dpdk0", Some(150), vec![], vec![]))).unwrap());

    let (index, routes, rules) = pod.netlink(|h| async move {
        (link(&h, "eth1").await.unwrap().header.index, routes(&h).await, source_rules(&h).await)
    });
    for (table, dst, gateway) in [
        (254, "10.40.0.0/16", "10.30.0.1"),
        (254, "fd00:40::/64", "fd00:30::1"),
        (150, "0.0.0.0/0", "10.30.0.254"),
        (150, "::/0", "fd00:30::fe"),
    ] {
        let want = KernelRoute { table, dst: net(dst), gateway: Some(ip(gateway)), oif: Some(index) };
        assert!(routes.contains(&want), "{want:?} missing from {routes:#?}");
    }
    assert_eq!(
        rules,
        [
            KernelRule { table: 150, source: Some(net("10.30.0.0/24")) },
            KernelRule { table: 150, source: Some(net("fd00:30::/64")) }
        ]
    );
    pod.run(|| {
        for (key, value) in [("disable_ipv6", "0"), ("autoconf", "0"), ("accept_ra", "0"), ("ndisc_notify", "1")] {
            assert_eq!(sysctl("ipv6", "eth1", key), value, "net.ipv6.conf.eth1.{key}");
        }
        assert_eq!(sysctl("ipv6", "eth2", "disable_ipv6"), "1");
        let addr = ip_json(&["addr", "show", "dev", "eth1"]);
        let v6 = addr[0]["addr_info"].as_array().unwrap().iter().find(|a| a["local"] == "fd00:30::5").unwrap();
        assert_eq!(v6["nodad"], true, "{v6}");
        assert_eq!(v6["prefixlen"], 64, "{v6}");
    });

    // eth1 goes: its IPv6 rule with it; its IPv4 subnet is still eth2's, so that rule stays.
    run(provisioner.deconfigure(&eth1)).unwrap();
    let rules = pod.netlink(|h| async move { source_rules(&h).await });
    assert_eq!(rules, [KernelRule { table: 150, source: Some(net("10.30.0.0/24")) }]);
    // The delegate removes eth1; when eth2 goes too, nothing is left.
    pod.run(|| ip_cmd(&["link", "del", "eth1"]));
    run(provisioner.deconfigure(&eth2)).unwrap();
    assert_eq!(pod.netlink(|h| async move { source_rules(&h).await }), []);
    // Idempotent, and a missing interface or netns is success.
    run(provisioner.deconfigure(&eth2)).unwrap();
    run(provisioner.deconfigure(&setup(&pod, "gone0", Some(150), vec![], vec![]))).unwrap();
    let gone = InterfaceSetup { netns: "/var/run/netns/danm-no-such-netns".into(), ..eth2.clone() };
    run(provisioner.deconfigure(&gone)).unwrap();
    assert!(!run(provisioner.configure(&gone)).unwrap());
}

#[test]
fn a_delegated_interface_whose_policy_route_fails_keeps_no_rule() {
    let Some(provisioner) = host("a_delegated_interface_whose_policy_route_fails_keeps_no_rule") else { return };
    let pod = Ns::new();
    delegate_made(&pod, "eth1", &["10.31.0.5/24", "fd00:31::5/64"]);
    let eth1 = setup(&pod, "eth1", Some(151), vec![], vec![route("0.0.0.0/0", "198.51.100.1")]);
    let err = run(provisioner.configure(&eth1)).unwrap_err();
    assert!(matches!(&err, ProvisionError::Kernel { operation, .. } if operation.contains("table 151")), "{err:?}");
    assert_eq!(pod.netlink(|h| async move { source_rules(&h).await }), []);
    // Table 0 is refused before anything is done.
    let zero = setup(&pod, "eth1", Some(0), vec![], vec![]);
    assert!(matches!(run(provisioner.configure(&zero)), Err(ProvisionError::Invalid { .. })));
}

use std::collections::{BTreeMap, BTreeSet};

use futures::executor::block_on;
use proptest::prelude::*;

use super::*;
use crate::model::{Network, NetworkKind, NetworkOptions, NetworkSpec, ObjectMeta};
use crate::provision::{
    HostInterface, HostInventory, HostLinkKind, HostScan, InterfaceProvisioner, ObservedHost, RecordingProvisioner,
    holder_record,
};

fn net(kind: NetworkKind, name: &str, id: &str, device: &str, vlan: Option<i64>, vxlan: Option<i64>) -> Network {
    let meta = ObjectMeta::new(name, kind.is_namespaced().then_some("ns"));
    let options = NetworkOptions { host_device: device.into(), vlan, vxlan, ..NetworkOptions::default() };
    Network::new(kind, meta, NetworkSpec { network_id: id.into(), options, ..NetworkSpec::default() })
}

fn vx(name: &str, id: &str, vni: i64) -> Network {
    net(NetworkKind::DanmNet, name, id, "eth1", None, Some(vni))
}

fn devices() -> BTreeSet<String> {
    ["eth0", "eth1"].map(String::from).into()
}

fn observed(name: &str, kind: HostLinkKind, parent: &str, holders: &[&str]) -> ObservedHost {
    ObservedHost {
        name: name.into(),
        kind: Some(kind),
        parent: Some(parent.into()),
        holders: holders.iter().map(|h| holder_record(h)).collect(),
        up: true,
        mtu: 1450,
    }
}

fn scan(managed: Vec<ObservedHost>) -> HostScan {
    HostScan { devices: devices(), managed }
}

const A: &str = "DanmNet/ns/a";
const B: &str = "DanmNet/ns/b";

#[test]
fn networks_sharing_an_interface_are_both_its_holders() {
    let p = plan(&[vx("b", "foo", 10), vx("a", "foo", 10)], &scan(vec![]));
    let host = HostInterface { name: "vx_foo".into(), parent: "eth1".into(), kind: HostLinkKind::Vxlan(10), mtu: None };
    assert_eq!(
        p.actions,
        [HostAction::Ensure { host, holders: vec![A.into(), B.into()], drift: vec![Drift::Missing] }]
    );
    assert_eq!(p.placements.len(), 2);
    assert!(p.placements.values().all(|pl| *pl == Placement::Interface("vx_foo".into())));
    assert!(!p.is_destructive());
}

#[test]
fn an_interface_as_wanted_needs_nothing() {
    let p = plan(
        &[vx("a", "foo", 10), vx("b", "foo", 10)],
        &scan(vec![observed("vx_foo", HostLinkKind::Vxlan(10), "eth1", &[A, B])]),
    );
    assert!(p.is_settled(), "{:?}", p.actions);
}

#[test]
fn a_deleted_network_is_released_and_the_interface_stays_for_the_other() {
    let p = plan(&[vx("b", "foo", 10)], &scan(vec![observed("vx_foo", HostLinkKind::Vxlan(10), "eth1", &[A, B])]));
    assert_eq!(p.actions, [HostAction::Release { name: "vx_foo".into(), holders: vec![A.into()] }]);
    let p = plan(&[], &scan(vec![observed("vx_foo", HostLinkKind::Vxlan(10), "eth1", &[B])]));
    assert_eq!(p.actions, [HostAction::Release { name: "vx_foo".into(), holders: vec![B.into()] }]);
    assert!(p.is_destructive());
    assert!(p.placements.is_empty());
}

#[test]
fn drift_is_repaired() {
    let mut down = observed("vx_foo", HostLinkKind::Vxlan(10), "eth1", &[A]);
    down.up = false;
    let p = plan(&[vx("a", "foo", 10)], &scan(vec![down]));
    assert!(matches!(&p.actions[..], [HostAction::Ensure { drift, .. }] if *drift == [Drift::Down]));

    let p = plan(
        &[vx("a", "foo", 10), vx("b", "foo", 10)],
        &scan(vec![observed("vx_foo", HostLinkKind::Vxlan(10), "eth1", &[A])]),
    );
    assert!(matches!(&p.actions[..], [HostAction::Ensure { drift, .. }] if *drift == [Drift::Holders { missing: 1 }]));

    let p = plan(&[vx("a", "foo", 10)], &scan(vec![]));
    assert!(matches!(&p.actions[..], [HostAction::Ensure { drift, .. }] if *drift == [Drift::Missing]));
    assert_eq!(p.actions[0].to_string(), "create VXLAN 10 vx_foo on eth1");
}

#[test]
fn a_changed_vni_or_parent_recreates_the_interface() {
    let p = plan(&[vx("a", "foo", 11)], &scan(vec![observed("vx_foo", HostLinkKind::Vxlan(10), "eth1", &[A])]));
    let [HostAction::Recreate { host, holders, drift }] = &p.actions[..] else { panic!("{:?}", p.actions) };
    assert_eq!(host.kind, HostLinkKind::Vxlan(11));
    assert_eq!(holders, &[A.to_owned()]);
    assert_eq!(drift, &[Drift::Kind { want: HostLinkKind::Vxlan(11), have: Some(HostLinkKind::Vxlan(10)) }]);
    assert_eq!(p.actions[0].to_string(), "recreate vx_foo (VXLAN 10 instead of VXLAN 11)");

    let moved = net(NetworkKind::DanmNet, "a", "foo", "eth0", None, Some(10));
    let p = plan(&[moved], &scan(vec![observed("vx_foo", HostLinkKind::Vxlan(10), "eth1", &[A])]));
    assert!(matches!(&p.actions[..], [HostAction::Recreate { drift, .. }]
        if *drift == [Drift::Parent { want: "eth0".into(), have: Some("eth1".into()) }]));
}

#[test]
fn vlan_interfaces_are_named_as_the_cni_names_them() {
    let n = net(NetworkKind::ClusterNetwork, "c", "ext", "eth0", Some(200), None);
    let p = plan(&[n], &scan(vec![]));
    let [HostAction::Ensure { host, holders, .. }] = &p.actions[..] else { panic!() };
    assert_eq!(host.name, "ext.200");
    assert_eq!(host.kind, HostLinkKind::Vlan(200));
    assert_eq!(holders, &["ClusterNetwork/c".to_owned()]);
}

#[test]
fn an_absent_device_needs_nothing_and_frees_what_the_network_held() {
    let n = net(NetworkKind::DanmNet, "a", "foo", "bond9", None, Some(10));
    let p = plan(std::slice::from_ref(&n), &scan(vec![]));
    assert!(p.is_settled());
    assert_eq!(p.placements[&n.key().into()], Placement::DeviceAbsent { device: "bond9".into() });
    let p = plan(&[n], &scan(vec![observed("vx_foo", HostLinkKind::Vxlan(10), "eth1", &[A])]));
    assert_eq!(p.actions, [HostAction::Release { name: "vx_foo".into(), holders: vec![A.into()] }]);
}

#[test]
fn conflicts_keep_what_the_interface_is() {
    // Nothing yet: the first network by key decides.
    let (a, b) = (vx("a", "foo", 10), vx("b", "foo", 20));
    let p = plan(&[b.clone(), a.clone()], &scan(vec![]));
    assert_eq!(p.placements[&a.key().into()], Placement::Interface("vx_foo".into()));
    assert_eq!(p.placements[&b.key().into()], Placement::Conflict { interface: "vx_foo".into(), with: a.key().into() });
    // The interface is b's already: b keeps it.
    let p = plan(&[a.clone(), b.clone()], &scan(vec![observed("vx_foo", HostLinkKind::Vxlan(20), "eth1", &[B])]));
    assert!(p.is_settled(), "{:?}", p.actions);
    assert_eq!(p.placements[&a.key().into()], Placement::Conflict { interface: "vx_foo".into(), with: b.key().into() });
}

#[test]
fn unusable_attributes_are_invalid() {
    let cases = [
        (net(NetworkKind::DanmNet, "a", "foo", "eth1", Some(5000), None), "spec.Options.vlan"),
        (net(NetworkKind::DanmNet, "a", "foo", "eth1", None, Some(1 << 24)), "spec.Options.vxlan"),
        (net(NetworkKind::DanmNet, "a", "foo", "", Some(5), None), "host_device"),
        (net(NetworkKind::DanmNet, "a", "a-network-id-too-long", "eth1", None, Some(5)), "vx_a-network-id"),
    ];
    for (n, needle) in cases {
        let p = plan(std::slice::from_ref(&n), &scan(vec![]));
        assert!(p.is_settled());
        let Placement::Invalid { reason } = &p.placements[&n.key().into()] else { panic!("{:?}", p.placements) };
        assert!(reason.contains(needle), "{reason}");
    }
    // Networks without VLAN or VXLAN are none of netwatcher's business, and neither are device pool
    // (SR-IOV) networks, whose VLAN goes on the virtual function.
    assert!(plan(&[net(NetworkKind::DanmNet, "a", "foo", "eth1", None, None)], &scan(vec![])).placements.is_empty());
    let mut sriov = net(NetworkKind::TenantNetwork, "s", "sriov", "", Some(300), None);
    sriov.spec.options.device_pool = "intel.com/sriov_pool".into();
    assert!(plan(&[sriov], &scan(vec![])).placements.is_empty());
}

#[test]
fn the_largest_mtu_wins_and_none_means_the_parents() {
    let mut a = vx("a", "foo", 10);
    let mut b = vx("b", "foo", 10);
    a.spec.options.mtu = Some(1400);
    b.spec.options.mtu = Some(1420);
    let p = plan(&[a.clone(), b.clone()], &scan(vec![observed("vx_foo", HostLinkKind::Vxlan(10), "eth1", &[A, B])]));
    assert!(matches!(&p.actions[..], [HostAction::Ensure { host, drift, .. }]
        if host.mtu == Some(1420) && *drift == [Drift::Mtu { want: 1420, have: 1450 }]));
    b.spec.options.mtu = None;
    let p = plan(&[a, b], &scan(vec![observed("vx_foo", HostLinkKind::Vxlan(10), "eth1", &[A, B])]));
    assert!(p.is_settled());
}

#[test]
fn unheld_interfaces_are_removed_and_order_keeps_interfaces_held() {
    let mut empty = observed("vx_old", HostLinkKind::Vxlan(3), "eth1", &[]);
    empty.holders.clear();
    // a renamed to c: c must be recorded before a is released.
    let p = plan(&[vx("c", "foo", 10)], &scan(vec![empty, observed("vx_foo", HostLinkKind::Vxlan(10), "eth1", &[A])]));
    let kinds: Vec<String> = p.actions.iter().map(ToString::to_string).collect();
    assert_eq!(
        kinds,
        [
            "remove vx_old (no holder left)",
            "repair vx_foo (1 holder(s) not recorded)",
            "release vx_foo from DanmNet/ns/a"
        ]
    );
}

#[test]
fn long_holders_compare_in_recorded_form() {
    let long = "a-network-with-a-name-long-enough-to-be-hashed-in-the-record";
    let n = vx(long, "foo", 10);
    let key = n.key().to_string();
    let record = holder_record(&key);
    assert!(record.starts_with('#'));
    let p = plan(&[n], &scan(vec![observed("vx_foo", HostLinkKind::Vxlan(10), "eth1", &[&record])]));
    assert!(p.is_settled(), "{:?}", p.actions);
}

#[test]
fn apply_converges_and_reports() {
    let fake = RecordingProvisioner::new();
    fake.set_host_devices(["eth0", "eth1"]);
    let nets = [vx("a", "foo", 10), vx("b", "foo", 10), net(NetworkKind::DanmNet, "x", "bar", "eth9", None, Some(1))];
    let p = plan(&nets, &block_on(fake.scan_hosts()).unwrap());
    let outcomes = block_on(apply(&p, &fake));
    assert!(failure_summary(&outcomes).is_none());
    assert_eq!(fake.host_interfaces()["vx_foo"], [A.to_owned(), B.to_owned()].into());
    let reports = report(&p, &outcomes);
    assert_eq!(reports[&nets[0].key().into()], NetworkReport::Ready { interface: "vx_foo".into() });
    assert_eq!(reports[&nets[2].key().into()], NetworkReport::DeviceAbsent { device: "eth9".into() });
    assert!(plan(&nets, &block_on(fake.scan_hosts()).unwrap()).is_settled());

    // Deleted behind netwatcher's back: created again.
    fake.remove_host_behind_the_back("vx_foo");
    let p = plan(&nets, &block_on(fake.scan_hosts()).unwrap());
    block_on(apply(&p, &fake));
    assert_eq!(fake.host_interfaces()["vx_foo"].len(), 2);

    // One network goes: the interface stays; the last goes: so does the interface.
    let p = plan(&nets[1..], &block_on(fake.scan_hosts()).unwrap());
    block_on(apply(&p, &fake));
    assert_eq!(fake.host_interfaces()["vx_foo"], [B.to_owned()].into());
    let p = plan(&nets[2..], &block_on(fake.scan_hosts()).unwrap());
    block_on(apply(&p, &fake));
    assert!(fake.host_interfaces().is_empty());
}

#[test]
fn a_failed_repair_keeps_the_stale_holder() {
    let fake = RecordingProvisioner::new();
    fake.set_host_devices(["eth1"]);
    block_on(apply(&plan(&[vx("a", "foo", 10)], &block_on(fake.scan_hosts()).unwrap()), &fake));
    // a renamed to b, and recording b fails: a stays recorded, so the interface stays.
    let p = plan(&[vx("b", "foo", 10)], &block_on(fake.scan_hosts()).unwrap());
    fake.fail_on_call(fake.calls().len());
    let outcomes = block_on(apply(&p, &fake));
    assert_eq!(outcomes.len(), 1);
    let summary = failure_summary(&outcomes).unwrap();
    assert!(summary.starts_with("1 of 1 steps failed; first: repair vx_foo"), "{summary}");
    assert_eq!(fake.host_interfaces()["vx_foo"], [A.to_owned()].into());
    let reports = report(&p, &outcomes);
    assert!(
        matches!(&reports[&vx("b", "foo", 10).key().into()], NetworkReport::Failed { error, .. } if error.contains("injected"))
    );
}

#[test]
fn an_interface_a_pod_took_since_the_scan_is_not_removed() {
    let fake = RecordingProvisioner::new();
    fake.set_host_devices(["eth1"]);
    let mut empty = observed("vx_foo", HostLinkKind::Vxlan(10), "eth1", &[]);
    empty.holders.clear();
    fake.set_host_behind_the_back(empty);
    let p = plan(&[], &block_on(fake.scan_hosts()).unwrap());
    assert_eq!(p.actions, [HostAction::Remove { name: "vx_foo".into() }]);
    // Meanwhile the plugin sets up a pod of a network netwatcher has not seen yet.
    let host = HostInterface { name: "vx_foo".into(), parent: "eth1".into(), kind: HostLinkKind::Vxlan(10), mtu: None };
    block_on(fake.ensure_host(&host, A)).unwrap();
    let outcomes = block_on(apply(&p, &fake));
    assert!(failure_summary(&outcomes).is_none());
    assert_eq!(fake.host_interfaces()["vx_foo"], [A.to_owned()].into(), "the pod's parent stays");
    // Still unheld when its turn comes: removed.
    block_on(fake.release_host("vx_foo", A)).unwrap();
    let mut empty = observed("vx_bar", HostLinkKind::Vxlan(11), "eth1", &[]);
    empty.holders.clear();
    fake.set_host_behind_the_back(empty);
    block_on(apply(&plan(&[], &block_on(fake.scan_hosts()).unwrap()), &fake));
    assert!(fake.host_interfaces().is_empty());
}

fn arb_network() -> impl Strategy<Value = Network> {
    let kinds = prop::sample::select(NetworkKind::ALL.to_vec());
    (
        kinds,
        0..4usize,
        prop::sample::select(vec!["p", "q", "r"]),
        prop::sample::select(vec!["eth0", "eth1", "eth9"]),
        0..3u8,
        1..4i64,
    )
        .prop_map(|(kind, name, id, device, which, n)| {
            let (vlan, vxlan) = match which {
                0 => (Some(n), None),
                1 => (None, Some(n)),
                _ => (None, None),
            };
            net(kind, &format!("n{name}"), id, device, vlan, vxlan)
        })
}

fn dedup(networks: Vec<Network>) -> Vec<Network> {
    let mut by_key = BTreeMap::new();
    for n in networks {
        by_key.insert(n.key(), n);
    }
    by_key.into_values().collect()
}

proptest! {
    /// From any state one set of networks left, and with any drift on top, one pass brings the node to
    /// what another set wants: a second plan has nothing to do, and every interface is held by exactly
    /// the networks placed on it.
    #[test]
    fn one_pass_converges(
        before in prop::collection::vec(arb_network(), 0..6),
        after in prop::collection::vec(arb_network(), 0..6),
        removed in prop::collection::vec(any::<bool>(), 3),
        down in prop::collection::vec(any::<bool>(), 3),
    ) {
        let (before, after) = (dedup(before), dedup(after));
        let fake = RecordingProvisioner::new();
        fake.set_host_devices(["eth0", "eth1"]);
        block_on(apply(&plan(&before, &block_on(fake.scan_hosts()).unwrap()), &fake));
        for (i, name) in fake.host_interfaces().keys().enumerate().take(3) {
            if removed[i] {
                fake.remove_host_behind_the_back(name);
            } else if down[i] {
                let mut host = fake.host(name).unwrap();
                host.up = false;
                fake.set_host_behind_the_back(host);
            }
        }
        let p = plan(&after, &block_on(fake.scan_hosts()).unwrap());
        let outcomes = block_on(apply(&p, &fake));
        prop_assert!(failure_summary(&outcomes).is_none(), "{:?}", failure_summary(&outcomes));
        let again = plan(&after, &block_on(fake.scan_hosts()).unwrap());
        prop_assert!(again.is_settled(), "{:?}", again.actions);
        let mut expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (key, placement) in &p.placements {
            if let Placement::Interface(name) = placement {
                expected.entry(name.clone()).or_default().insert(holder_record(&key.to_string()));
            }
        }
        prop_assert_eq!(fake.host_interfaces(), expected);
        let failed = report(&p, &outcomes).values().any(|r| matches!(r, NetworkReport::Failed { .. }));
        prop_assert!(!failed);
    }
}

fn attachment(name: &str, config: &str) -> attachment::Attachment {
    attachment::Attachment { namespace: "ns".into(), name: name.into(), config: config.into(), ..Default::default() }
}

#[test]
fn a_vlan_shared_by_a_network_and_an_attachment_stays_until_both_go() {
    const NAD: &str = "NetworkAttachmentDefinition/ns/m";
    let fake = RecordingProvisioner::new();
    fake.set_host_devices(["eth0", "eth1"]);
    let nets = [net(NetworkKind::DanmNet, "a", "ext", "eth1", Some(100), None)];
    let nads = [attachment("m", r#"{"name":"ext","type":"macvlan","master":"eth1","vlan":100}"#)];
    let p = plan_with_attachments(&nets, &nads, &block_on(fake.scan_hosts()).unwrap());
    let [HostAction::Ensure { host, holders, .. }] = &p.actions[..] else { panic!("{:?}", p.actions) };
    assert_eq!((host.name.as_str(), host.parent.as_str()), ("ext.100", "eth1"));
    assert_eq!(holders, &[A.to_owned(), NAD.to_owned()]);
    assert_eq!(p.placements[&nads[0].key()], Placement::Interface("ext.100".into()));
    block_on(apply(&p, &fake));
    assert!(plan_with_attachments(&nets, &nads, &block_on(fake.scan_hosts()).unwrap()).is_settled());

    // Rewritten to the interface, with the parent recorded: the same plan, nothing to do.
    let mut rewritten = nads[0].clone();
    let rewrite = rewritten.rewrite().unwrap();
    rewritten.config = rewrite.config;
    rewritten.annotations.insert(attachment::HOST_DEVICE_ANNOTATION.into(), rewrite.host_device);
    rewritten.annotations.insert(attachment::HOST_INTERFACE_ANNOTATION.into(), rewrite.host_interface);
    let nads = [rewritten];
    assert!(plan_with_attachments(&nets, &nads, &block_on(fake.scan_hosts()).unwrap()).is_settled());

    // The network goes: the interface stays for the attachment; then the attachment goes too.
    let p = plan_with_attachments(&[], &nads, &block_on(fake.scan_hosts()).unwrap());
    assert_eq!(p.actions, [HostAction::Release { name: "ext.100".into(), holders: vec![A.into()] }]);
    block_on(apply(&p, &fake));
    assert_eq!(fake.host_interfaces()["ext.100"], [NAD.to_owned()].into());
    block_on(apply(&plan_with_attachments(&[], &[], &block_on(fake.scan_hosts()).unwrap()), &fake));
    assert!(fake.host_interfaces().is_empty());
}

#[test]
fn attachments_are_placed_and_reported_as_networks_are() {
    let nads = [
        attachment("absent", r#"{"name":"abs","master":"bond9","vxlan":5}"#),
        attachment("bad", r#"{"name":"bad","master":"eth1","vlan":5000}"#),
        attachment("other", r#"{"name":"foo","master":"eth1","vxlan":99}"#),
        attachment("list", r#"{"name":"l","plugins":[{"type":"macvlan","master":"eth1","vlan":5}]}"#),
    ];
    let p = plan_with_attachments(&[vx("a", "foo", 10)], &nads, &scan(vec![]));
    assert_eq!(p.placements.len(), 4, "{:?}", p.placements);
    assert_eq!(p.placements[&nads[0].key()], Placement::DeviceAbsent { device: "bond9".into() });
    assert!(matches!(&p.placements[&nads[1].key()], Placement::Invalid { reason } if reason.contains("vlan")));
    // A network wins over an attachment wanting the same name with another VNI.
    let with = HolderKey::from(vx("a", "foo", 10).key());
    assert_eq!(p.placements[&nads[2].key()], Placement::Conflict { interface: "vx_foo".into(), with });
}

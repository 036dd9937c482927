//! Results rendered in, read from, and converted between every supported version.

use serde_json::{Value, json};

use crate::cni::{CniResult, CniVersion, Dns, ErrorCode, Interface, IpConfig, IpamResult, Route};

/// A result using every field, the 1.1.0-only ones included.
fn sample() -> CniResult {
    CniResult {
        interfaces: vec![
            Interface {
                name: "veth1a2b".into(),
                mac: Some("aa:bb:cc:00:00:01".into()),
                mtu: Some(1500),
                ..Interface::default()
            },
            Interface {
                name: "eth0".into(),
                mac: Some("aa:bb:cc:00:00:02".into()),
                mtu: Some(1500),
                sandbox: Some("/var/run/netns/blue".into()),
                socket_path: Some("/run/vhost/sock0".into()),
                pci_id: Some("0000:3b:00.1".into()),
            },
        ],
        ips: vec![
            IpConfig {
                address: "10.1.0.5/16".parse().unwrap(),
                gateway: Some("10.1.0.1".parse().unwrap()),
                interface: Some(1),
            },
            IpConfig {
                address: "fd00:1::5/64".parse().unwrap(),
                gateway: Some("fd00:1::1".parse().unwrap()),
                interface: Some(1),
            },
            IpConfig { address: "192.0.2.10/32".parse().unwrap(), gateway: None, interface: None },
        ],
        routes: vec![
            Route {
                dst: "0.0.0.0/0".parse().unwrap(),
                gw: Some("10.1.0.1".parse().unwrap()),
                mtu: Some(1400),
                advmss: Some(1360),
                priority: Some(100),
                table: Some(254),
                scope: Some(0),
            },
            Route::new("fd00:2::/64".parse().unwrap(), None),
        ],
        dns: Dns {
            nameservers: vec!["10.1.0.1".into(), "fd00:1::1".into()],
            domain: Some("example.local".into()),
            search: vec!["svc.cluster.local".into()],
            options: vec!["ndots:5".into()],
        },
    }
}

fn v0_3_0() -> Value {
    json!({
        "cniVersion": "0.3.0",
        "interfaces": [
            {"name": "veth1a2b", "mac": "aa:bb:cc:00:00:01"},
            {"name": "eth0", "mac": "aa:bb:cc:00:00:02", "sandbox": "/var/run/netns/blue"}
        ],
        "ips": [
            {"version": "4", "address": "10.1.0.5/16", "gateway": "10.1.0.1", "interface": 1},
            {"version": "6", "address": "fd00:1::5/64", "gateway": "fd00:1::1", "interface": 1},
            {"version": "4", "address": "192.0.2.10/32"}
        ],
        "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}, {"dst": "fd00:2::/64"}],
        "dns": {
            "nameservers": ["10.1.0.1", "fd00:1::1"],
            "domain": "example.local",
            "search": ["svc.cluster.local"],
            "options": ["ndots:5"]
        }
    })
}

fn v0_3_1() -> Value {
    json!({
        "cniVersion": "0.3.1",
        "interfaces": [
            {"name": "veth1a2b", "mac": "aa:bb:cc:00:00:01"},
            {"name": "eth0", "mac": "aa:bb:cc:00:00:02", "sandbox": "/var/run/netns/blue"}
        ],
        "ips": [
            {"version": "4", "address": "10.1.0.5/16", "gateway": "10.1.0.1", "interface": 1},
            {"version": "6", "address": "fd00:1::5/64", "gateway": "fd00:1::1", "interface": 1},
            {"version": "4", "address": "192.0.2.10/32"}
        ],
        "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}, {"dst": "fd00:2::/64"}],
        "dns": {
            "nameservers": ["10.1.0.1", "fd00:1::1"],
            "domain": "example.local",
            "search": ["svc.cluster.local"],
            "options": ["ndots:5"]
        }
    })
}

fn v0_4_0() -> Value {
    json!({
        "cniVersion": "0.4.0",
        "interfaces": [
            {"name": "veth1a2b", "mac": "aa:bb:cc:00:00:01"},
            {"name": "eth0", "mac": "aa:bb:cc:00:00:02", "sandbox": "/var/run/netns/blue"}
        ],
        "ips": [
            {"version": "4", "address": "10.1.0.5/16", "gateway": "10.1.0.1", "interface": 1},
            {"version": "6", "address": "fd00:1::5/64", "gateway": "fd00:1::1", "interface": 1},
            {"version": "4", "address": "192.0.2.10/32"}
        ],
        "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}, {"dst": "fd00:2::/64"}],
        "dns": {
            "nameservers": ["10.1.0.1", "fd00:1::1"],
            "domain": "example.local",
            "search": ["svc.cluster.local"],
            "options": ["ndots:5"]
        }
    })
}

fn v1_0_0() -> Value {
    json!({
        "cniVersion": "1.0.0",
        "interfaces": [
            {"name": "veth1a2b", "mac": "aa:bb:cc:00:00:01"},
            {"name": "eth0", "mac": "aa:bb:cc:00:00:02", "sandbox": "/var/run/netns/blue"}
        ],
        "ips": [
            {"address": "10.1.0.5/16", "gateway": "10.1.0.1", "interface": 1},
            {"address": "fd00:1::5/64", "gateway": "fd00:1::1", "interface": 1},
            {"address": "192.0.2.10/32"}
        ],
        "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}, {"dst": "fd00:2::/64"}],
        "dns": {
            "nameservers": ["10.1.0.1", "fd00:1::1"],
            "domain": "example.local",
            "search": ["svc.cluster.local"],
            "options": ["ndots:5"]
        }
    })
}

fn v1_1_0() -> Value {
    json!({
        "cniVersion": "1.1.0",
        "interfaces": [
            {"name": "veth1a2b", "mac": "aa:bb:cc:00:00:01", "mtu": 1500},
            {
                "name": "eth0",
                "mac": "aa:bb:cc:00:00:02",
                "mtu": 1500,
                "sandbox": "/var/run/netns/blue",
                "socketPath": "/run/vhost/sock0",
                "pciID": "0000:3b:00.1"
            }
        ],
        "ips": [
            {"address": "10.1.0.5/16", "gateway": "10.1.0.1", "interface": 1},
            {"address": "fd00:1::5/64", "gateway": "fd00:1::1", "interface": 1},
            {"address": "192.0.2.10/32"}
        ],
        "routes": [
            {"dst": "0.0.0.0/0", "gw": "10.1.0.1", "mtu": 1400, "advmss": 1360, "priority": 100, "table": 254, "scope": 0},
            {"dst": "fd00:2::/64"}
        ],
        "dns": {
            "nameservers": ["10.1.0.1", "fd00:1::1"],
            "domain": "example.local",
            "search": ["svc.cluster.local"],
            "options": ["ndots:5"]
        }
    })
}

/// The 1.1.0 form of a result that came from an older version: no 1.1.0-only fields.
fn v1_1_0_from_older() -> Value {
    let mut v = v1_0_0();
    v["cniVersion"] = json!("1.1.0");
    v
}

fn literal(v: CniVersion) -> Value {
    match v {
        CniVersion::V0_3_0 => v0_3_0(),
        CniVersion::V0_3_1 => v0_3_1(),
        CniVersion::V0_4_0 => v0_4_0(),
        CniVersion::V1_0_0 => v1_0_0(),
        CniVersion::V1_1_0 => v1_1_0(),
    }
}

#[test]
fn renders_each_version_literally() {
    for v in CniVersion::SUPPORTED {
        assert_eq!(sample().to_json(v), literal(v), "rendering {v}");
    }
}

#[test]
fn reads_each_version_literally() {
    for v in CniVersion::SUPPORTED {
        assert_eq!(CniResult::from_json(&literal(v)).unwrap(), sample().restricted_to(v), "reading {v}");
    }
    let bytes = v1_1_0().to_string();
    assert_eq!(CniResult::from_slice(bytes.as_bytes()).unwrap(), sample());
}

#[test]
fn converts_between_every_version_pair() {
    for from in CniVersion::SUPPORTED {
        for to in CniVersion::SUPPORTED {
            let got = CniResult::from_json(&literal(from)).unwrap().to_json(to);
            let want =
                if from < CniVersion::V1_1_0 && to == CniVersion::V1_1_0 { v1_1_0_from_older() } else { literal(to) };
            assert_eq!(got, want, "{from} -> {to}");
        }
    }
}

#[test]
fn empty_result_is_just_the_version() {
    assert_eq!(CniResult::default().to_json(CniVersion::V1_0_0), json!({"cniVersion": "1.0.0"}));
    assert_eq!(CniResult::from_json(&json!({"cniVersion": "1.0.0", "dns": {}})).unwrap(), CniResult::default());
    assert_eq!(CniResult::from_json(&json!({})).unwrap(), CniResult::default());
}

#[test]
fn ipam_result_is_abbreviated() {
    let ipam = sample().to_ipam();
    let json = ipam.to_json(CniVersion::V0_4_0);
    assert_eq!(
        json,
        json!({
            "cniVersion": "0.4.0",
            "ips": [
                {"version": "4", "address": "10.1.0.5/16", "gateway": "10.1.0.1"},
                {"version": "6", "address": "fd00:1::5/64", "gateway": "fd00:1::1"},
                {"version": "4", "address": "192.0.2.10/32"}
            ],
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}, {"dst": "fd00:2::/64"}],
            "dns": {
                "nameservers": ["10.1.0.1", "fd00:1::1"],
                "domain": "example.local",
                "search": ["svc.cluster.local"],
                "options": ["ndots:5"]
            }
        })
    );
    let back = IpamResult::from_json(&json).unwrap();
    assert_eq!(back, sample().restricted_to(CniVersion::V0_4_0).to_ipam());
    // A full result read as an IPAM result loses its interfaces.
    let from_full = IpamResult::from_slice(v1_1_0().to_string().as_bytes()).unwrap();
    assert!(from_full.ips.iter().all(|ip| ip.interface.is_none()));
}

#[test]
fn rejects_inconsistent_results() {
    let cases = [
        (json!({"ips": [{"version": "6", "address": "10.0.0.1/24"}]}), "ips[0].version", ErrorCode::DECODING_FAILURE),
        (json!({"ips": [{"version": "5", "address": "10.0.0.1/24"}]}), "ips[0].version", ErrorCode::DECODING_FAILURE),
        (json!({"ips": [{"address": "10.0.0.1/24", "interface": 0}]}), "ips[0].interface", ErrorCode::DECODING_FAILURE),
        (json!({"ips": [{"address": "10.0.0.300/24"}]}), "ips[0].address", ErrorCode::DECODING_FAILURE),
        (json!({"routes": [{"dst": "0.0.0.0/0", "gw": "x"}]}), "routes[0].gw", ErrorCode::DECODING_FAILURE),
        (json!({"routes": [{"dst": "0.0.0.0/0", "table": -1}]}), "routes[0].table", ErrorCode::DECODING_FAILURE),
        (json!({"cniVersion": "0.2.0", "ip4": {"ip": "10.0.0.1/24"}}), "cniVersion", ErrorCode::INCOMPATIBLE_VERSION),
        (json!([]), "", ErrorCode::DECODING_FAILURE),
    ];
    for (input, path, code) in cases {
        let e = CniResult::from_json(&input).unwrap_err();
        assert_eq!((e.path.as_str(), e.code), (path, code), "{input}: {e}");
    }
    // A version key in a 1.0.0+ result is tolerated when consistent.
    let tolerated = json!({"cniVersion": "1.1.0", "ips": [{"version": "6", "address": "fd00::1/64"}]});
    assert_eq!(CniResult::from_json(&tolerated).unwrap().ips.len(), 1);
    assert!(CniResult::from_slice(b"not json").is_err());
}

//! Property tests: decoders never panic, results survive every version's JSON, merges stay valid.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;
use serde_json::Value;

use crate::cni::{
    CniArgs, CniError, CniResult, CniVersion, ConfFile, DanmConf, Dns, Interface, IpConfig, IpamResult, NetConf,
    NetConfList, Route, valid_attachments,
};

const KEYS: &[&str] = &[
    "cniVersion",
    "cniVersions",
    "name",
    "type",
    "plugins",
    "ipam",
    "dns",
    "prevResult",
    "runtimeConfig",
    "args",
    "capabilities",
    "disableCheck",
    "disableGC",
    "loadOnlyInlinedPlugins",
    "interfaces",
    "ips",
    "routes",
    "address",
    "gateway",
    "interface",
    "version",
    "dst",
    "gw",
    "mtu",
    "table",
    "nameservers",
    "kubeconfig",
    "datastore",
    "path",
    "cniDir",
    "namingScheme",
    "timeoutSeconds",
    "logLevel",
    "hostname",
    "kubeletSocket",
    "code",
    "msg",
    "cni.dev/valid-attachments",
    "cni.dev/attachments",
    "containerID",
    "ifname",
];

const WORDS: &[&str] = &[
    "danm",
    "local",
    "legacy",
    "debug",
    "0.3.1",
    "1.0.0",
    "1.1.0",
    "0.2.0",
    "10.0.0.1/24",
    "fd00::1/64",
    "10.0.0.1",
    "4",
    "6",
    "true",
    "/etc/cni/net.d",
    "",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-z0-9./: ]{0,12}".prop_map(Value::from),
        prop::sample::select(WORDS).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop_oneof![prop::sample::select(KEYS).prop_map(str::to_owned), "[a-z]{1,4}"];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..8).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn ip_net() -> impl Strategy<Value = IpNet> {
    prop_oneof![
        (any::<Ipv4Addr>(), 0u8..=32).prop_map(|(a, p)| IpNet::V4(Ipv4Net::new(a, p).unwrap())),
        (any::<Ipv6Addr>(), 0u8..=128).prop_map(|(a, p)| IpNet::V6(Ipv6Net::new(a, p).unwrap())),
    ]
}

fn text() -> impl Strategy<Value = String> {
    "[ -~]{0,12}"
}

fn interface() -> impl Strategy<Value = Interface> {
    let opt_text = || prop::option::of(text());
    ("[a-z0-9]{1,15}", opt_text(), prop::option::of(any::<u32>()), opt_text(), opt_text(), opt_text()).prop_map(
        |(name, mac, mtu, sandbox, socket_path, pci_id)| Interface { name, mac, mtu, sandbox, socket_path, pci_id },
    )
}

fn route() -> impl Strategy<Value = Route> {
    let n = || prop::option::of(any::<u32>());
    (ip_net(), prop::option::of(any::<IpAddr>()), n(), n(), n(), n(), n()).prop_map(
        |(dst, gw, mtu, advmss, priority, table, scope)| Route { dst, gw, mtu, advmss, priority, table, scope },
    )
}

fn dns() -> impl Strategy<Value = Dns> {
    let list = || prop::collection::vec(text(), 0..3);
    (list(), prop::option::of(text()), list(), list()).prop_map(|(nameservers, domain, search, options)| Dns {
        nameservers,
        domain,
        search,
        options,
    })
}

fn result() -> impl Strategy<Value = CniResult> {
    let ips = prop::collection::vec((ip_net(), prop::option::of(any::<IpAddr>()), prop::option::of(0usize..8)), 0..5);
    (prop::collection::vec(interface(), 0..4), ips, prop::collection::vec(route(), 0..4), dns()).prop_map(
        |(interfaces, ips, routes, dns)| {
            let n = interfaces.len();
            let ips = ips
                .into_iter()
                .map(|(address, gateway, i)| IpConfig { address, gateway, interface: i.and_then(|i| i.checked_rem(n)) })
                .collect();
            CniResult { interfaces, ips, routes, dns }
        },
    )
}

fn args_pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(("[A-Za-z0-9_]{1,10}", "[A-Za-z0-9_./=:-]{0,10}"), 0..6)
}

proptest! {
    #[test]
    fn decoders_never_panic_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = NetConf::from_slice(&bytes);
        let _ = NetConfList::from_slice(&bytes);
        let _ = ConfFile::from_slice(&bytes);
        let _ = DanmConf::from_slice(&bytes);
        let _ = CniResult::from_slice(&bytes);
        let _ = IpamResult::from_slice(&bytes);
        let _ = CniError::from_slice(&bytes);
        let _ = CniArgs::parse(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn decoders_never_panic_on_strings(s in "\\PC{0,64}") {
        let _ = NetConf::from_slice(s.as_bytes());
        let _ = NetConfList::from_slice(s.as_bytes());
        let _ = DanmConf::from_slice(s.as_bytes());
        let _ = CniResult::from_slice(s.as_bytes());
        let _ = CniArgs::parse(&s);
    }

    #[test]
    fn decoders_never_panic_on_json(v in json_value()) {
        let bytes = v.to_string();
        let _ = ConfFile::from_slice(bytes.as_bytes());
        let _ = DanmConf::from_value(&v);
        let _ = CniResult::from_json(&v);
        let _ = IpamResult::from_json(&v);
        let _ = CniError::from_slice(bytes.as_bytes());
        if let Ok(conf) = NetConf::from_value(&v) {
            let _ = conf.prev_result();
            let _ = conf.valid_attachments();
            let _ = conf.version();
            let _ = conf.negotiated_version();
            prop_assert_eq!(NetConf::from_value(&conf.to_value()), Ok(conf));
        }
        if let Ok(list) = NetConfList::from_value(&v) {
            for i in 0..=list.plugins.len() {
                let _ = list.plugin_conf(i, CniVersion::V1_1_0, None, None);
            }
        }
        if let Value::Object(m) = &v {
            let _ = valid_attachments(m);
        }
    }

    #[test]
    fn cni_args_round_trip(pairs in args_pairs()) {
        let text = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(";");
        let args = CniArgs::parse(&text).unwrap();
        for (k, _) in &pairs {
            let last = pairs.iter().rev().find(|(k2, _)| k2 == k).map(|(_, v)| v.as_str());
            prop_assert_eq!(args.get(k), last);
        }
        prop_assert_eq!(CniArgs::parse(&args.to_string()), Ok(args));
    }

    #[test]
    fn results_round_trip_through_every_version(r in result()) {
        for v in CniVersion::SUPPORTED {
            let json = r.to_json(v);
            prop_assert_eq!(json.get("cniVersion").and_then(Value::as_str), Some(v.as_str()));
            let want = r.clone().restricted_to(v);
            prop_assert_eq!(CniResult::from_json(&json), Ok(want.clone()));
            prop_assert_eq!(CniResult::from_slice(json.to_string().as_bytes()), Ok(want.clone()));
            let ipam = r.to_ipam();
            prop_assert_eq!(IpamResult::from_json(&ipam.to_json(v)), Ok(want.to_ipam()));
        }
    }

    #[test]
    fn merged_results_stay_valid(parts in prop::collection::vec(result(), 0..4)) {
        let total: usize = parts.iter().map(|p| p.interfaces.len()).sum();
        let merged = CniResult::merge(parts.clone());
        prop_assert_eq!(merged.interfaces.len(), total);
        prop_assert_eq!(merged.ips.len(), parts.iter().map(|p| p.ips.len()).sum::<usize>());
        prop_assert!(merged.ips.iter().all(|ip| ip.interface.is_none_or(|i| i < total)));
        prop_assert_eq!(CniResult::from_json(&merged.to_json(CniVersion::V1_1_0)), Ok(merged));
    }
}

//! Property tests: the parsers never panic, and accepted annotations survive writing and re-reading.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use danm_core::ipam::IpRequest;
use danm_core::manifest::decode_manifests;
use danm_core::model::NetworkKind;
use danm_core::pod::{InterfaceRequest, NetworkRef, interfaces_to_annotation, parse_interfaces};
use danm_core::service::service_selection;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;

const KEY: &str = "danm.k8s.io/interfaces";

/// Strings that look like annotation, selector or manifest text often enough to reach deep code paths.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\\[\\]{}\":, a-z0-9./-]{0,80}",
        r#"\[\{"(network|tenantNetwork|clusterNetwork|ip|ip6|proutes|x)":("[a-z0-9.:/]{0,12}"|\{"[0-9./]{0,12}":"[0-9.:]{0,12}"\}|null|1)\}\]"#,
        "(apiVersion: (v1|danm.k8s.io/v1)\n|kind: (Pod|Service|DanmNet|List)\n|metadata:\n  name: x\n|spec:\n  [A-Za-z]{1,8}: [a-z0-9]{0,4}\n|---\n|- |items:\n){0,8}",
    ]
}

fn ip_request(v4: bool) -> impl Strategy<Value = Option<IpRequest>> {
    let addr = if v4 {
        any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))).boxed()
    } else {
        any::<u128>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))).boxed()
    };
    prop_oneof![
        Just(None),
        Just(Some(IpRequest::Dynamic)),
        Just(Some(IpRequest::None)),
        addr.prop_map(|a| Some(IpRequest::Static(a))),
    ]
}

fn routes(v4: bool) -> impl Strategy<Value = BTreeMap<IpNet, IpAddr>> {
    let entry = if v4 {
        (any::<u32>(), 0u8..=32, any::<u32>())
            .prop_filter_map("valid prefix", |(n, len, gw)| {
                let net = Ipv4Net::new(Ipv4Addr::from(n), len).ok()?;
                Some((IpNet::V4(net), IpAddr::V4(Ipv4Addr::from(gw))))
            })
            .boxed()
    } else {
        (any::<u128>(), 0u8..=128, any::<u128>())
            .prop_filter_map("valid prefix", |(n, len, gw)| {
                let net = Ipv6Net::new(Ipv6Addr::from(n), len).ok()?;
                Some((IpNet::V6(net), IpAddr::V6(Ipv6Addr::from(gw))))
            })
            .boxed()
    };
    prop::collection::vec(entry, 0..4).prop_map(|v| v.into_iter().map(|(n, gw)| (n.trunc(), gw)).collect())
}

fn request() -> impl Strategy<Value = InterfaceRequest> {
    let kind = prop::sample::select(NetworkKind::ALL.to_vec());
    (kind, "[a-z0-9.\"\\\\ -]{1,20}", ip_request(true), ip_request(false), routes(true), routes(false)).prop_map(
        |(kind, name, ip, ip6, proutes, proutes6)| InterfaceRequest {
            network: NetworkRef::new(kind, name),
            ip,
            ip6,
            proutes,
            proutes6,
        },
    )
}

proptest! {
    #[test]
    fn annotation_parser_never_panics(s in text()) {
        if let Ok(list) = parse_interfaces(KEY, &s) {
            let again = parse_interfaces(KEY, &interfaces_to_annotation(&list));
            prop_assert_eq!(again, Ok(list));
        }
    }

    #[test]
    fn written_requests_read_back_equal(list in prop::collection::vec(request(), 0..6)) {
        let text = interfaces_to_annotation(&list);
        prop_assert_eq!(parse_interfaces(KEY, &text), Ok(list));
    }

    #[test]
    fn service_parser_never_panics(selector in text(), network in text(), tolerate in text()) {
        let annotations: BTreeMap<String, String> = [
            ("danm.k8s.io/selector".to_owned(), selector),
            ("danm.k8s.io/network".to_owned(), network),
            ("service.alpha.kubernetes.io/tolerate-unready-endpoints".to_owned(), tolerate),
        ]
        .into();
        if let Ok(Some(sel)) = service_selection(&annotations) {
            prop_assert!(!sel.selector.is_empty() && !sel.networks.is_empty());
            prop_assert!(sel.matches(&sel.selector));
        }
    }

    #[test]
    fn manifest_decoder_never_panics(s in text()) {
        if let Ok(manifests) = decode_manifests(&s) {
            let json = serde_json::to_string(&manifests).unwrap();
            prop_assert_eq!(decode_manifests(&json).unwrap(), manifests);
        }
    }
}

//! The interfaces annotation: accepted forms, and errors that name the field.

use std::collections::BTreeMap;

use danm_core::ipam::IpRequest;
use danm_core::model::NetworkKind;
use danm_core::pod::{
    AnnotationError, INTERFACES_ANNOTATION, INTERFACES_ANNOTATION_ALT, InterfaceRequest, MAX_INTERFACES, NetworkRef,
    interfaces_from_annotations, interfaces_to_annotation, parse_interfaces,
};

const KEY: &str = INTERFACES_ANNOTATION;

fn parse(value: &str) -> Result<Vec<InterfaceRequest>, AnnotationError> {
    parse_interfaces(KEY, value)
}

fn err(value: &str) -> String {
    match parse(value) {
        Ok(v) => panic!("accepted {value}: {v:?}"),
        Err(e) => e.to_string(),
    }
}

fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[test]
fn absent_empty_and_null() {
    assert_eq!(interfaces_from_annotations(&annotations(&[("other", "x")])), Ok(None));
    assert_eq!(interfaces_from_annotations(&annotations(&[(KEY, "[]")])), Ok(Some(vec![])));
    assert_eq!(interfaces_from_annotations(&annotations(&[(KEY, " null ")])), Ok(Some(vec![])));
    assert!(parse("").is_err());
}

#[test]
fn selectors_map_to_kinds() {
    let list = parse(r#"[{"network":"a"},{"tenantNetwork":"b"},{"clusterNetwork":"c"}]"#).unwrap();
    let kinds: Vec<NetworkKind> = list.iter().map(|i| i.network.kind).collect();
    assert_eq!(kinds, NetworkKind::ALL);
    assert_eq!(list[2].network, NetworkRef::new(NetworkKind::ClusterNetwork, "c"));
}

#[test]
fn go_compatible_leniency() {
    // Keys match case-insensitively; null and "" count as absent.
    let list = parse(r#"[{"Network":"a","IP":"dynamic","ip6":null,"tenantNetwork":"","proutes":null}]"#).unwrap();
    assert_eq!(list[0].network.name, "a");
    assert_eq!((list[0].ip, list[0].ip6), (Some(IpRequest::Dynamic), None));
    assert_eq!(parse(r#"[{"network":"a","ip":""}]"#).unwrap()[0].ip, None);
}

#[test]
fn both_keys_must_agree() {
    let same = annotations(&[(KEY, r#"[{"network":"a"}]"#), (INTERFACES_ANNOTATION_ALT, r#"[{"network":"a"}]"#)]);
    assert_eq!(interfaces_from_annotations(&same).unwrap().unwrap().len(), 1);
    let alt = annotations(&[(INTERFACES_ANNOTATION_ALT, r#"[{"ip":"x"}]"#)]);
    assert!(interfaces_from_annotations(&alt).unwrap_err().to_string().starts_with("danm.io/interfaces[0]"));
    let differ = annotations(&[(KEY, "[]"), (INTERFACES_ANNOTATION_ALT, r#"[{"network":"a"}]"#)]);
    let msg = interfaces_from_annotations(&differ).unwrap_err().to_string();
    assert!(msg.contains(INTERFACES_ANNOTATION) && msg.contains(INTERFACES_ANNOTATION_ALT), "{msg}");
}

#[test]
fn malformed_json_names_the_path() {
    assert!(err(r#"[{"network":"a"},{"network":"b","ip":5}]"#).starts_with("danm.k8s.io/interfaces[1].ip: malformed"));
    assert!(
        err(r#"[{"network":"a","proutes":{"10.0.0.0/8":1}}]"#)
            .starts_with(r#"danm.k8s.io/interfaces[0].proutes["10.0.0.0/8"]: malformed"#)
    );
    assert!(err(r#"{"network":"a"}"#).starts_with("danm.k8s.io/interfaces: malformed"));
    assert!(err(r#"[{"network":"a"}] trailing"#).starts_with("danm.k8s.io/interfaces: malformed"));
    assert!(err(r#"[{"network":"a""#).contains("malformed JSON"));
    assert!(err(r#"[7]"#).starts_with("danm.k8s.io/interfaces[0]: malformed"));
}

#[test]
fn selector_errors() {
    assert_eq!(
        err(r#"[{"network":"a"},{"ip":"dynamic"}]"#),
        "danm.k8s.io/interfaces[1]: names no network; set one of `network`, `tenantNetwork` or `clusterNetwork`"
    );
    let two = parse(r#"[{"network":"a","clusterNetwork":"b"}]"#).unwrap_err();
    assert_eq!(
        two,
        AnnotationError::TwoSelectors { path: format!("{KEY}[0]"), first: "network", second: "clusterNetwork" }
    );
    assert_eq!(err(r#"[{"tenantNetwork":""}]"#), "danm.k8s.io/interfaces[0].tenantNetwork: the network name is empty");
    assert_eq!(err(r#"[{"network":"a","mtu":1500}]"#), "danm.k8s.io/interfaces[0]: unknown key `mtu`");
}

#[test]
fn ip_errors() {
    assert!(err(r#"[{"network":"a"},{"network":"a","ip":"Dynamic"}]"#).starts_with("danm.k8s.io/interfaces[1].ip: "));
    assert!(err(r#"[{"network":"a","ip6":"fd00::1/200"}]"#).starts_with("danm.k8s.io/interfaces[0].ip6: "));
    assert_eq!(
        err(r#"[{"network":"a","ip":"fd00::1"}]"#),
        "danm.k8s.io/interfaces[0].ip: `fd00::1` is not an IPv4 address"
    );
    assert_eq!(
        err(r#"[{"network":"a","ip6":"10.0.0.1/24"}]"#),
        "danm.k8s.io/interfaces[0].ip6: `10.0.0.1` is not an IPv6 address"
    );
    let ok = parse(r#"[{"network":"a","ip":"10.0.0.1/24","ip6":"none"}]"#).unwrap();
    assert_eq!((ok[0].ip, ok[0].ip6), (Some(IpRequest::Static("10.0.0.1".parse().unwrap())), Some(IpRequest::None)));
}

#[test]
fn route_errors_name_the_entry() {
    let cases = [
        (r#"{"proutes":{"10.0.0.0":"10.1.1.1"}}"#, r#"[0].proutes["10.0.0.0"]: destination `10.0.0.0` is not a CIDR"#),
        (r#"{"proutes":{"10.0.0.0/8":"gw"}}"#, r#"[0].proutes["10.0.0.0/8"]: gateway `gw` is not an IP address"#),
        (r#"{"proutes":{"fd00::/8":"fd00::1"}}"#, r#"[0].proutes["fd00::/8"]: `proutes` takes IPv4"#),
        (r#"{"proutes":{"10.0.0.0/8":"fd00::1"}}"#, r#"[0].proutes["10.0.0.0/8"]: `proutes` takes IPv4"#),
        (r#"{"proutes6":{"10.0.0.0/8":"10.0.0.1"}}"#, r#"[0].proutes6["10.0.0.0/8"]: `proutes6` takes IPv6"#),
    ];
    for (element, expected) in cases {
        let value = format!("[{}]", element.replacen('{', r#"{"network":"a","#, 1));
        let msg = err(&value);
        assert!(msg.starts_with(&format!("{KEY}{expected}")), "{value}: {msg}");
    }
    let ok =
        parse(r#"[{"network":"a","proutes":{"10.9.8.7/8":"10.0.0.1"},"proutes6":{"fd00::/8":"fd00::1"}}]"#).unwrap();
    assert_eq!(ok[0].proutes.keys().map(ToString::to_string).collect::<Vec<_>>(), ["10.0.0.0/8"]);
}

#[test]
fn at_most_64_interfaces() {
    let element = r#"{"network":"a","ip":"dynamic"}"#;
    let list = |n: usize| format!("[{}]", vec![element; n].join(","));
    assert_eq!(parse(&list(MAX_INTERFACES)).unwrap().len(), MAX_INTERFACES);
    assert_eq!(
        parse(&list(MAX_INTERFACES + 3)),
        Err(AnnotationError::TooMany { key: KEY.to_owned(), count: MAX_INTERFACES + 3, max: MAX_INTERFACES })
    );
}

#[test]
fn serialises_with_upstream_keys() {
    let list = parse(
        r#"[{"clusterNetwork":"c","ip":"dynamic","ip6":"fd00::5","proutes":{"10.0.0.0/8":"10.1.0.1"}},{"tenantNetwork":"t"}]"#,
    )
    .unwrap();
    let text = interfaces_to_annotation(&list);
    assert_eq!(
        text,
        r#"[{"clusterNetwork":"c","ip":"dynamic","ip6":"fd00::5","proutes":{"10.0.0.0/8":"10.1.0.1"}},{"tenantNetwork":"t"}]"#
    );
    assert_eq!(parse(&text).unwrap(), list);
}

#[test]
fn deep_nesting_is_an_error() {
    let deep = format!(r#"[{{"network":"a","x":{}{}}}]"#, "[".repeat(100_000), "]".repeat(100_000));
    let msg = err(&deep);
    assert!(msg.contains("malformed JSON") || msg.contains("unknown key"), "{msg}");
}

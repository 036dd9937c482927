//! Generic plugin configurations, configuration lists and request derivation.

use serde_json::{Map, json};

use crate::cni::{CniResult, CniVersion, ConfFile, ErrorCode, NetConf, NetConfList};

const BRIDGE: &str = r#"{
  "cniVersion": "1.0.0",
  "name": "dbnet",
  "type": "bridge",
  "bridge": "cni0",
  "ipam": {"type": "host-local", "subnet": "10.1.0.0/16", "gateway": "10.1.0.1"},
  "dns": {"nameservers": ["10.1.0.1"]},
  "args": {"labels": {"appVersion": "1.0"}},
  "runtimeConfig": {"mac": "aa:bb:cc:dd:ee:ff"},
  "capabilities": {"mac": true},
  "disableCheck": "TRUE",
  "prevResult": {"cniVersion": "1.0.0", "ips": [{"address": "10.1.0.5/16"}]}
}"#;

const LIST: &str = r#"{
  "cniVersion": "1.0.0",
  "cniVersions": ["0.3.1", "0.4.0", "1.0.0", "1.1.0"],
  "name": "dbnet",
  "disableGC": true,
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "ipam": {"type": "host-local", "subnet": "10.1.0.0/16"}},
    {"type": "tuning", "capabilities": {"mac": true}, "sysctl": {"net.core.somaxconn": "500"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}"#;

#[test]
fn plugin_config_keeps_every_key() {
    let c = NetConf::from_slice(BRIDGE.as_bytes()).unwrap();
    assert_eq!((c.name.as_str(), c.plugin_type.as_str(), c.cni_version.as_str()), ("dbnet", "bridge", "1.0.0"));
    assert_eq!(c.ipam.as_ref().and_then(|i| i.get("type")), Some(&json!("host-local")));
    assert_eq!(c.dns.as_ref().map(|d| d.nameservers.clone()), Some(vec!["10.1.0.1".to_owned()]));
    assert!(c.disable_check && !c.disable_gc);
    assert_eq!(c.capabilities.as_ref().and_then(|m| m.get("mac")), Some(&true));
    assert_eq!(c.extra.get("bridge"), Some(&json!("cni0")));
    assert_eq!(c.extra.len(), 1);
    assert_eq!(c.version(), Ok(CniVersion::V1_0_0));
    let prev = c.prev_result().unwrap().unwrap();
    assert_eq!(prev.ips.len(), 1);
    // Serialising gives back the input, modulo the spelling of disableCheck.
    let mut input: serde_json::Value = serde_json::from_str(BRIDGE).unwrap();
    input["disableCheck"] = json!(true);
    assert_eq!(c.to_value(), input);
    assert_eq!(serde_json::to_value(&c).unwrap(), input);
    assert_eq!(NetConf::from_value(&c.to_value()).unwrap(), c);
}

#[test]
fn plugin_config_errors_name_the_field() {
    let cases = [
        (json!({"name": "n"}), "type", ErrorCode::INVALID_NETWORK_CONFIG),
        (json!({"type": "bridge", "name": ""}), "name", ErrorCode::INVALID_NETWORK_CONFIG),
        (json!({"type": 5, "name": "n"}), "type", ErrorCode::DECODING_FAILURE),
        (
            json!({"type": "t", "name": "n", "dns": {"nameservers": "x"}}),
            "dns.nameservers",
            ErrorCode::DECODING_FAILURE,
        ),
        (json!({"type": "t", "name": "n", "disableCheck": "maybe"}), "disableCheck", ErrorCode::DECODING_FAILURE),
        (
            json!({"type": "t", "name": "n", "capabilities": {"mac": 1}}),
            "capabilities.mac",
            ErrorCode::DECODING_FAILURE,
        ),
        (json!("string"), "", ErrorCode::DECODING_FAILURE),
    ];
    for (input, path, code) in cases {
        let e = NetConf::from_value(&input).unwrap_err();
        assert_eq!((e.path.as_str(), e.code), (path, code), "{input}: {e}");
        assert!(e.to_string().starts_with("network config"), "{e}");
    }
    let e = NetConf::from_slice(b"{\"type\": \"t\", \"name\": \"n\"").unwrap_err();
    assert_eq!(e.code, ErrorCode::DECODING_FAILURE);

    let bad_prev = json!({"type": "t", "name": "n", "prevResult": {"ips": [{"address": "nope"}]}});
    let e = NetConf::from_value(&bad_prev).unwrap().prev_result().unwrap_err();
    assert_eq!(e.path, "prevResult.ips[0].address");

    let unsupported = NetConf::from_value(&json!({"type": "t", "name": "n", "cniVersion": "0.2.0"})).unwrap();
    assert_eq!(unsupported.version().unwrap_err().code, ErrorCode::INCOMPATIBLE_VERSION);
}

#[test]
fn version_selection_differs_for_plugins_and_runtimes() {
    let c = NetConf::from_value(&json!({
        "type": "t", "name": "n", "cniVersion": "1.0.0", "cniVersions": ["1.0.0", "1.1.0"]
    }))
    .unwrap();
    assert_eq!(c.version(), Ok(CniVersion::V1_0_0));
    assert_eq!(c.negotiated_version(), Ok(CniVersion::V1_1_0));
}

#[test]
fn conflist_parses_and_derives_plugin_requests() {
    let l = NetConfList::from_slice(LIST.as_bytes()).unwrap();
    assert_eq!((l.name.as_str(), l.plugins.len(), l.disable_gc, l.disable_check), ("dbnet", 3, true, false));
    let v = l.negotiated_version().unwrap();
    assert_eq!(v, CniVersion::V1_1_0);

    let first = l.plugin_conf(0, v, None, None).unwrap();
    assert_eq!(
        first.to_value(),
        json!({
            "cniVersion": "1.1.0", "name": "dbnet", "type": "bridge", "bridge": "cni0",
            "ipam": {"type": "host-local", "subnet": "10.1.0.0/16"}
        })
    );

    let prev = CniResult::from_json(&json!({"ips": [{"address": "10.1.0.5/16"}]})).unwrap();
    let mut caps = Map::new();
    caps.insert("mac".into(), json!("aa:bb:cc:dd:ee:ff"));
    caps.insert("portMappings".into(), json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]));
    let tuning = l.plugin_conf(1, CniVersion::V0_4_0, Some(&prev), Some(&caps)).unwrap();
    assert_eq!(
        tuning.to_value(),
        json!({
            "cniVersion": "0.4.0", "name": "dbnet", "type": "tuning",
            "sysctl": {"net.core.somaxconn": "500"},
            "runtimeConfig": {"mac": "aa:bb:cc:dd:ee:ff"},
            "prevResult": {"cniVersion": "0.4.0", "ips": [{"version": "4", "address": "10.1.0.5/16"}]}
        })
    );
    assert_eq!(tuning.prev_result().unwrap(), Some(prev));

    let e = l.plugin_conf(3, v, None, None).unwrap_err();
    assert_eq!((e.path.as_str(), e.code), ("plugins[3]", ErrorCode::INVALID_NETWORK_CONFIG));
}

#[test]
fn conflist_errors_name_the_field() {
    let cases = [
        (json!({"cniVersion": "1.0.0", "plugins": [{"type": "a"}]}), "name", ErrorCode::INVALID_NETWORK_CONFIG),
        (json!({"name": "n", "plugins": []}), "plugins", ErrorCode::INVALID_NETWORK_CONFIG),
        (
            json!({"name": "n", "loadOnlyInlinedPlugins": true}),
            "loadOnlyInlinedPlugins",
            ErrorCode::INVALID_NETWORK_CONFIG,
        ),
        (
            json!({"name": "n", "plugins": [{"type": "a"}, {"bridge": "x"}]}),
            "plugins[1].type",
            ErrorCode::INVALID_NETWORK_CONFIG,
        ),
        (json!({"name": "n", "plugins": [{"type": "a", "dns": "x"}]}), "plugins[0].dns", ErrorCode::DECODING_FAILURE),
        (json!({"name": "n", "plugins": [{"type": "a"}, 7]}), "plugins[1]", ErrorCode::DECODING_FAILURE),
        (json!({"name": "n", "plugins": {}}), "plugins", ErrorCode::DECODING_FAILURE),
    ];
    for (input, path, code) in cases {
        let e = NetConfList::from_value(&input).unwrap_err();
        assert_eq!((e.path.as_str(), e.code), (path, code), "{input}: {e}");
        assert!(e.to_string().starts_with("network config list"), "{e}");
    }
    // Without a plugins key the list is valid and empty (plugins come from elsewhere).
    assert!(NetConfList::from_value(&json!({"name": "n"})).unwrap().plugins.is_empty());
}

#[test]
fn conf_file_detects_either_form() {
    match ConfFile::from_slice(LIST.as_bytes()).unwrap() {
        ConfFile::List(l) => assert_eq!(l.plugins.len(), 3),
        ConfFile::Single(_) => panic!("a conflist parsed as a single config"),
    }
    let single = ConfFile::from_slice(BRIDGE.as_bytes()).unwrap();
    assert_eq!(single.name(), "dbnet");
    let list = single.into_list();
    assert_eq!((list.name.as_str(), list.cni_version.as_str(), list.plugins.len()), ("dbnet", "1.0.0", 1));
    let again = list.plugin_conf(0, CniVersion::V1_0_0, None, None).unwrap();
    assert_eq!(again.extra.get("bridge"), Some(&json!("cni0")));
    assert!(ConfFile::from_slice(b"[]").is_err());
    assert!(ConfFile::from_slice(b"").is_err());
}

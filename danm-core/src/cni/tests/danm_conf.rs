//! DANM's own plugin configuration.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::cni::{Backend, CniVersion, DanmConf, ErrorCode, LogLevel, NamingScheme};

fn base() -> Value {
    json!({"cniVersion": "0.3.1", "name": "meta_cni", "type": "danm", "kubeconfig": "/etc/cni/net.d/danm-kubeconfig"})
}

fn with(key: &str, value: Value) -> Value {
    let mut v = base();
    v[key] = value;
    v
}

fn without(key: &str) -> Value {
    let mut v = base();
    if let Some(m) = v.as_object_mut() {
        m.remove(key);
    }
    v
}

#[test]
fn minimal_config_gets_defaults() {
    let c = DanmConf::from_slice(base().to_string().as_bytes()).unwrap();
    assert_eq!(c.version, CniVersion::V0_3_1);
    assert_eq!((c.name.as_str(), c.plugin_type.as_str()), ("meta_cni", "danm"));
    assert_eq!(c.backend.kubeconfig(), Some(Path::new("/etc/cni/net.d/danm-kubeconfig")));
    assert_eq!(c.backend.datastore_path(), None);
    assert_eq!(c.cni_dir, Path::new("/etc/cni/net.d"));
    assert_eq!(c.naming_scheme, NamingScheme::Default);
    assert_eq!(c.timeout, Duration::from_secs(10));
    assert_eq!(c.pod_resources_socket(), Some(Path::new("/var/lib/kubelet/pod-resources/kubelet.sock")));
    assert_eq!((c.log_file, c.log_level, c.hostname, c.kubelet_socket), (None, None, None, None));
}

#[test]
fn full_config() {
    let c = DanmConf::from_value(&json!({
        "cniVersions": ["1.0.0", "1.1.0", "2.0.0"],
        "name": "meta_cni",
        "type": "danm",
        "datastore": {"type": "local"},
        "cniDir": "/opt/cni/conf",
        "namingScheme": "legacy",
        "timeoutSeconds": 2.5,
        "logFile": "/var/log/danm.log",
        "logLevel": "debug",
        "hostname": "worker-1",
        "kubeletSocket": "/run/kubelet/pr.sock",
        "runtimeConfig": {"mac": "x"},
        "args": {},
        "prevResult": {"cniVersion": "1.0.0"},
        "capabilities": {"mac": true},
        "cni.dev/valid-attachments": []
    }))
    .unwrap();
    assert_eq!(c.version, CniVersion::V1_1_0);
    assert_eq!(c.backend, Backend::LocalDatastore("/var/lib/danm/danm.db".into()));
    assert_eq!(c.cni_dir, Path::new("/opt/cni/conf"));
    assert_eq!(c.naming_scheme, NamingScheme::Legacy);
    assert_eq!(c.timeout, Duration::from_millis(2500));
    assert_eq!(c.log_file.as_deref(), Some(Path::new("/var/log/danm.log")));
    assert_eq!(c.log_level, Some(LogLevel::Debug));
    assert_eq!(c.hostname.as_deref(), Some("worker-1"));
    assert_eq!(c.pod_resources_socket(), Some(Path::new("/run/kubelet/pr.sock")));

    let explicit = with("datastore", json!({"type": "local", "path": "/tmp/d.db"}));
    let explicit = explicit.as_object().cloned().map(|mut m| {
        m.remove("kubeconfig");
        Value::Object(m)
    });
    let c = DanmConf::from_value(&explicit.unwrap()).unwrap();
    assert_eq!(c.backend.datastore_path(), Some(Path::new("/tmp/d.db")));
    assert_eq!(c.pod_resources_socket(), None, "the local store asks no kubelet unless told to");
    assert_eq!(DanmConf::from_value(&with("namingScheme", json!(""))).unwrap().naming_scheme, NamingScheme::Default);
    assert_eq!(DanmConf::from_value(&with("timeoutSeconds", json!(300))).unwrap().timeout, Duration::from_secs(300));
}

#[test]
fn rejections_name_the_field() {
    let mut no_backend = without("kubeconfig");
    let both = with("datastore", json!({"type": "local"}));
    let no_version = without("cniVersion");
    let cases = [
        (with("kubeConfig", json!("/x")), "kubeConfig", ErrorCode::INVALID_NETWORK_CONFIG),
        (with("namingScheme", json!("awesome")), "namingScheme", ErrorCode::INVALID_NETWORK_CONFIG),
        (with("timeoutSeconds", json!(0)), "timeoutSeconds", ErrorCode::INVALID_NETWORK_CONFIG),
        (with("timeoutSeconds", json!(301)), "timeoutSeconds", ErrorCode::INVALID_NETWORK_CONFIG),
        (with("timeoutSeconds", json!(-1)), "timeoutSeconds", ErrorCode::INVALID_NETWORK_CONFIG),
        (with("timeoutSeconds", json!("10")), "timeoutSeconds", ErrorCode::DECODING_FAILURE),
        (with("logLevel", json!("verbose")), "logLevel", ErrorCode::INVALID_NETWORK_CONFIG),
        (with("hostname", json!("")), "hostname", ErrorCode::INVALID_NETWORK_CONFIG),
        (with("cniDir", json!("")), "cniDir", ErrorCode::INVALID_NETWORK_CONFIG),
        (with("kubeletSocket", json!("")), "kubeletSocket", ErrorCode::INVALID_NETWORK_CONFIG),
        (with("kubeletSocket", json!(1)), "kubeletSocket", ErrorCode::DECODING_FAILURE),
        (with("cniDir", json!(3)), "cniDir", ErrorCode::DECODING_FAILURE),
        (with("cniVersion", json!("0.2.0")), "cniVersion", ErrorCode::INCOMPATIBLE_VERSION),
        (without("name"), "name", ErrorCode::INVALID_NETWORK_CONFIG),
        (without("type"), "type", ErrorCode::INVALID_NETWORK_CONFIG),
        (no_version.clone(), "cniVersion", ErrorCode::INVALID_NETWORK_CONFIG),
        (json!([1]), "", ErrorCode::DECODING_FAILURE),
    ];
    for (input, path, code) in cases {
        let e = DanmConf::from_value(&input).unwrap_err();
        assert_eq!((e.path.as_str(), e.code), (path, code), "{input}: {e}");
        assert!(e.to_string().starts_with("DANM config"), "{e}");
    }

    let mut versions_only = no_version;
    versions_only["cniVersions"] = json!(["0.1.0", "9.0.0"]);
    let e = DanmConf::from_value(&versions_only).unwrap_err();
    assert_eq!((e.path.as_str(), e.code), ("cniVersions", ErrorCode::INCOMPATIBLE_VERSION));

    for input in [both, no_backend.clone()] {
        let e = DanmConf::from_value(&input).unwrap_err();
        assert_eq!(e.code, ErrorCode::INVALID_NETWORK_CONFIG);
        assert!(e.reason.contains("`kubeconfig`") && e.reason.contains("`datastore`"), "{e}");
    }

    let datastore_cases = [
        (json!({"type": "local", "size": 1}), "datastore.size", ErrorCode::INVALID_NETWORK_CONFIG),
        (json!({"type": "etcd"}), "datastore.type", ErrorCode::INVALID_NETWORK_CONFIG),
        (json!({"path": "/x"}), "datastore.type", ErrorCode::INVALID_NETWORK_CONFIG),
        (json!({"type": "local", "path": ""}), "datastore.path", ErrorCode::INVALID_NETWORK_CONFIG),
        (json!({"type": "local", "path": 1}), "datastore.path", ErrorCode::DECODING_FAILURE),
        (json!("local"), "datastore", ErrorCode::DECODING_FAILURE),
    ];
    for (ds, path, code) in datastore_cases {
        no_backend["datastore"] = ds;
        let e = DanmConf::from_value(&no_backend).unwrap_err();
        assert_eq!((e.path.as_str(), e.code), (path, code), "{no_backend}: {e}");
    }
    assert!(DanmConf::from_slice(b"{").is_err());
}

//! Manifest decoding: document handling, accepted kinds and versions, and errors naming document and field.

use danm_core::manifest::{MAX_MANIFEST_BYTES, Manifest, ManifestError, decode_manifests};
use danm_core::model::{ContainerPort, PodRecord};

const NET: &str =
    "apiVersion: danm.k8s.io/v1\nkind: DanmNet\nmetadata:\n  name: n\n  namespace: ns\nspec:\n  NetworkID: n\n";

fn err(input: &str) -> ManifestError {
    match decode_manifests(input) {
        Ok(v) => panic!("accepted: {v:?}"),
        Err(e) => e,
    }
}

#[test]
fn empty_documents_are_skipped_but_counted() {
    assert_eq!(decode_manifests("").unwrap(), vec![]);
    assert_eq!(decode_manifests("# only a comment\n").unwrap(), vec![]);
    let input = format!("---\n---\n# nothing\n---\n{NET}---\nkind: Nope\napiVersion: v1\n");
    match err(&input) {
        ManifestError::UnknownKind { document, path, kind } => {
            assert_eq!((document, path.as_str(), kind.as_str()), (3, "kind", "Nope"));
        }
        other => panic!("{other:?}"),
    }
    let two = format!("{NET}---\n{}", NET.replace("name: n\n", "name: m\n"));
    let names: Vec<String> = decode_manifests(&two).unwrap().iter().map(|m| m.metadata().name.clone()).collect();
    assert_eq!(names, ["n", "m"]);
}

#[test]
fn api_versions_per_kind() {
    assert_eq!(decode_manifests(&NET.replace("danm.k8s.io", "danm.io")).unwrap()[0].kind(), "DanmNet");
    let e = err(&NET.replace("danm.k8s.io/v1", "danm.k8s.io/v2"));
    assert_eq!(
        e.to_string(),
        "document 0, field apiVersion: `danm.k8s.io/v2` is not an API version of kind `DanmNet` \
         (danm.k8s.io/v1 or danm.io/v1)"
    );
    let pod_with_danm_version = "apiVersion: danm.k8s.io/v1\nkind: Pod\nmetadata:\n  name: p\n";
    assert!(matches!(err(pod_with_danm_version), ManifestError::UnknownApiVersion { document: 0, .. }));
    assert!(matches!(err("kind: DanmNet\n"), ManifestError::MissingField { path, .. } if path == "apiVersion"));
    assert!(matches!(err("apiVersion: v1\nkind: 3\n"), ManifestError::MissingField { path, .. } if path == "kind"));
    let deploy = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n";
    assert!(err(deploy).to_string().starts_with("document 0, field kind: unknown kind `Deployment`"));
}

#[test]
fn decode_errors_name_document_and_field() {
    let bad_vlan = format!("{NET}  Options:\n    vlan: ten\n");
    let input = format!("{NET}---\n{bad_vlan}");
    match err(&input) {
        ManifestError::Decode { document, path, .. } => assert_eq!((document, path.as_str()), (1, "spec.Options.vlan")),
        other => panic!("{other:?}"),
    }
    let unknown = format!("{NET}  Options:\n    colour: red\n");
    let msg = err(&unknown).to_string();
    assert!(msg.starts_with("document 0, field spec.Options.colour: unknown field `colour`"), "{msg}");
    let label = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels:\n    danm.k8s.io/x: [1]\n";
    let msg = err(label).to_string();
    assert!(msg.starts_with(r#"document 0, field metadata.labels["danm.k8s.io/x"]: "#), "{msg}");
    match err("a: [\n") {
        ManifestError::Parse { document: 0, message } => assert!(message.contains("line"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(err("- 1\n"), ManifestError::NotAnObject { document: 0, path } if path == "[0]"));
    assert!(matches!(err("just text\n"), ManifestError::NotAnObject { document: 0, path } if path.is_empty()));
}

#[test]
fn json_forms() {
    let one = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}}"#;
    assert_eq!(decode_manifests(one).unwrap().len(), 1);
    let list = format!("[{one},{one}]");
    assert_eq!(decode_manifests(&list).unwrap().len(), 2);
    let kind_list = format!(r#"{{"apiVersion":"v1","kind":"List","items":[{one},{{"kind":"Pod"}}]}}"#);
    match err(&kind_list) {
        ManifestError::MissingField { document, path } => {
            assert_eq!((document, path.as_str()), (0, "items[1].apiVersion"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(decode_manifests(r#"{"apiVersion":"v1","kind":"List","items":[]}"#).unwrap(), vec![]);
    assert!(matches!(err(r#"{"kind":"List","items":{}}"#), ManifestError::Decode { path, .. } if path == "items"));
    assert!(matches!(err("{\"kind\":"), ManifestError::Parse { document: 0, .. }));
    let yaml_list = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: s\n";
    assert!(matches!(&decode_manifests(yaml_list).unwrap()[..], [Manifest::Service(s)] if s.metadata.name == "s"));
}

#[test]
fn pods_ignore_the_rest_of_the_object() {
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  volumes: 7\n  nodeName: w\nstatus:\n  \
               podIP: 1.2.3.4\n  conditions:\n  - type: Ready\n    status: 'True'\n    lastProbeTime: null\n";
    let [Manifest::Pod(p)] = &decode_manifests(pod).unwrap()[..] else { panic!("not one pod") };
    assert!(p.ready);
    assert_eq!(p.node_name.as_deref(), Some("w"));
    assert!(p.container_ports.is_empty());
}

#[test]
fn pods_keep_the_ports_of_their_containers_and_sidecars() {
    let pod = r#"
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  initContainers:
  - {name: setup, image: i, ports: [{name: ignored, containerPort: 1}]}
  - {name: proxy, image: i, restartPolicy: Always, ports: [{name: proxy, containerPort: 15001}]}
  containers:
  - {name: app, image: i, ports: [{name: http, containerPort: 8080}, {containerPort: 9090, protocol: UDP, hostPort: 9090}]}
  - {name: other, image: i}
"#;
    let [Manifest::Pod(p)] = &decode_manifests(pod).unwrap()[..] else { panic!("not one pod") };
    assert_eq!(
        p.container_ports,
        [
            ContainerPort::new("http", 8080, "TCP"),
            ContainerPort::new("", 9090, "UDP"),
            ContainerPort::new("proxy", 15001, "TCP")
        ],
        "containers first, then sidecars; plain init containers do not serve"
    );
    // Written out and read back, the record keeps its ports.
    let [Manifest::Pod(again)] =
        &decode_manifests(&serde_json::to_string(&Manifest::Pod(p.clone())).unwrap()).unwrap()[..]
    else {
        panic!("not one pod")
    };
    assert_eq!(again, p);
    let plain = PodRecord::default();
    assert!(
        !serde_json::to_string(&Manifest::Pod(plain)).unwrap().contains("containers"),
        "a record without ports writes none"
    );
}

#[test]
fn input_size_is_capped() {
    let big = " ".repeat(MAX_MANIFEST_BYTES + 1);
    assert_eq!(err(&big), ManifestError::TooLarge { size: MAX_MANIFEST_BYTES + 1, max: MAX_MANIFEST_BYTES });
}

#[test]
fn hostile_inputs_are_errors() {
    let deep_json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(matches!(err(&deep_json), ManifestError::Parse { .. }));
    let deep_yaml = format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(err(&deep_yaml), ManifestError::TooComplex { line: 1 });
    let deep_then_long = format!("b: {}\n{}", "[".repeat(300), "a,\n".repeat(400_000));
    assert!(matches!(err(&deep_then_long), ManifestError::TooComplex { line } if line > 100_000));
    // The budget is per document: many small bracketed documents are fine.
    let nested = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    let docs = format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  x: {nested}\n---\n").repeat(500);
    assert_eq!(decode_manifests(&docs).unwrap().len(), 500);
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 0..12 {
        let prev = if i == 0 { "a".to_owned() } else { format!("l{}", i - 1) };
        bomb.push_str(&format!(
            "l{i}: &l{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
        ));
    }
    assert!(matches!(err(&bomb), ManifestError::Parse { .. }));
}

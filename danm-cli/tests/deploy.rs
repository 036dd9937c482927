//! The manifests under deploy/: every kustomization names files that exist, every document is a
//! well-formed Kubernetes object, every workload runs as a ServiceAccount the bundle defines, and every
//! DANM binary a container runs exists and accepts the arguments the manifest gives it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_yaml::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// The documents of every file a kustomization at `dir` includes, recursively, with their file.
fn documents(dir: &Path, out: &mut Vec<(PathBuf, Value)>) {
    let path = dir.join("kustomization.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let kustomization: Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(kustomization["kind"].as_str(), Some("Kustomization"), "{}", path.display());
    let resources =
        kustomization["resources"].as_sequence().unwrap_or_else(|| panic!("{}: no resources", path.display()));
    for resource in resources {
        let target = dir.join(resource.as_str().unwrap());
        if target.is_dir() {
            documents(&target, out);
            continue;
        }
        let text = std::fs::read_to_string(&target).unwrap_or_else(|e| panic!("{}: {e}", target.display()));
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value = Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", target.display()));
            if !value.is_null() {
                out.push((target.clone(), value));
            }
        }
    }
}

fn bin(name: &str) -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_danmctl")).with_file_name(name)
}

#[test]
fn the_whole_bundle_is_consistent_and_every_command_is_accepted() {
    let mut docs = Vec::new();
    documents(&deploy_dir(), &mut docs);
    let mut kinds = BTreeSet::new();
    let mut accounts = BTreeSet::new();
    for (file, doc) in &docs {
        let (api_version, kind) = (doc["apiVersion"].as_str(), doc["kind"].as_str());
        assert!(api_version.is_some() && kind.is_some(), "{}: a document without apiVersion or kind", file.display());
        assert!(doc["metadata"]["name"].as_str().is_some_and(|n| !n.is_empty()), "{}: no name", file.display());
        kinds.insert(kind.unwrap().to_owned());
        if kind == Some("ServiceAccount") {
            accounts.insert(doc["metadata"]["name"].as_str().unwrap().to_owned());
        }
    }
    for kind in ["CustomResourceDefinition", "DaemonSet", "Deployment", "ClusterRole", "ClusterRoleBinding"] {
        assert!(kinds.contains(kind), "the bundle has no {kind}: {kinds:?}");
    }

    let mut ran = BTreeSet::new();
    for (file, doc) in &docs {
        if !matches!(doc["kind"].as_str(), Some("Deployment" | "DaemonSet")) {
            continue;
        }
        let spec = &doc["spec"]["template"]["spec"];
        let account = spec["serviceAccountName"].as_str().unwrap_or_else(|| panic!("{}: no account", file.display()));
        assert!(accounts.contains(account), "{}: ServiceAccount {account} is not in the bundle", file.display());
        for container in spec["containers"].as_sequence().unwrap() {
            let command: Vec<&str> =
                container["command"].as_sequence().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
            if command[0] == "/bin/sh" {
                continue;
            }
            let args: Vec<&str> =
                container["args"].as_sequence().into_iter().flatten().map(|a| a.as_str().unwrap()).collect();
            // `--help` after the manifest's arguments: clap rejects an unknown flag or a bad value before
            // it prints the help.
            let out = Command::new(bin(command[0])).args(&args).arg("--help").output().unwrap_or_else(|e| {
                panic!("{}: {} cannot run: {e}", file.display(), command[0]);
            });
            assert!(
                out.status.success(),
                "{}: `{} {}` is refused: {}",
                file.display(),
                command[0],
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
            ran.insert(command[0].to_owned());
        }
    }
    assert!(ran.contains("svcwatcher") && ran.contains("danmctl"), "{ran:?}");
}

#[test]
fn netwatcher_may_read_and_update_network_attachment_definitions_and_has_a_flag_to_leave_them_alone() {
    let mut docs = Vec::new();
    documents(&deploy_dir().join("netwatcher"), &mut docs);
    let role = docs
        .iter()
        .map(|(_, doc)| doc)
        .find(|doc| doc["kind"].as_str() == Some("ClusterRole"))
        .expect("netwatcher's ClusterRole");
    let strings = |v: &Value| -> Vec<String> {
        v.as_sequence().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_owned)).collect()
    };
    let rule = role["rules"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|r| strings(&r["apiGroups"]) == ["k8s.cni.cncf.io"])
        .expect("a rule for k8s.cni.cncf.io");
    assert_eq!(strings(&rule["resources"]), ["network-attachment-definitions"]);
    assert_eq!(strings(&rule["verbs"]), ["get", "list", "watch", "update"]);

    let out = Command::new(bin("netwatcher")).args(["--node-name", "n", "--no-nad", "--help"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--no-nad"));
}

//! Checks over every generated CRD.

use serde_json::Value;

use super::*;

/// Walks a schema and reports what Kubernetes would refuse in a structural schema.
fn structural_problems(path: &str, schema: &Value, out: &mut Vec<String>) {
    let Some(obj) = schema.as_object() else {
        out.push(format!("{path}: not an object"));
        return;
    };
    for banned in ["$ref", "definitions", "$defs", "patternProperties", "propertyNames", "$schema"] {
        if obj.contains_key(banned) {
            out.push(format!("{path}: has {banned}"));
        }
    }
    let preserve = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if !obj.contains_key("type") && !preserve {
        out.push(format!("{path}: no type"));
    }
    if obj.contains_key("properties") && obj.contains_key("additionalProperties") {
        out.push(format!("{path}: both properties and additionalProperties"));
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (name, sub) in props {
            structural_problems(&format!("{path}.{name}"), sub, out);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(sub) = obj.get(key).filter(|v| v.is_object()) {
            structural_problems(&format!("{path}[{key}]"), sub, out);
        }
    }
}

fn schema(crd: &CustomResourceDefinition) -> Value {
    serde_json::to_value(crd.spec.versions[0].schema.as_ref().unwrap().open_api_v3_schema.as_ref().unwrap()).unwrap()
}

#[test]
fn every_crd_is_structural_and_named_as_upstream() {
    let crds = all_crds();
    let names: Vec<_> = crds.iter().map(|c| (c.spec.names.kind.as_str(), c.spec.scope.as_str())).collect();
    assert_eq!(
        names,
        [
            ("DanmNet", "Namespaced"),
            ("TenantNetwork", "Namespaced"),
            ("ClusterNetwork", "Cluster"),
            ("TenantConfig", "Cluster"),
            ("DanmEp", "Namespaced"),
            ("DanmIpamBlock", "Cluster"),
            ("DanmIpamCursor", "Cluster"),
        ]
    );
    for crd in &crds {
        let kind = &crd.spec.names.kind;
        assert_eq!(crd.spec.group, "danm.k8s.io", "{kind}");
        assert_eq!(crd.metadata.name.as_deref(), Some(format!("{}.danm.k8s.io", crd.spec.names.plural).as_str()));
        assert_eq!(crd.spec.versions.len(), 1);
        assert_eq!(crd.spec.versions[0].name, "v1");
        assert_eq!(crd.spec.names.categories.as_deref(), Some(&["danm".to_owned()][..]), "{kind}");
        let mut problems = Vec::new();
        structural_problems(kind, &schema(crd), &mut problems);
        assert!(problems.is_empty(), "{problems:#?}");
        let columns = crd.spec.versions[0].additional_printer_columns.as_deref().unwrap_or_default();
        for c in columns {
            assert!(["string", "integer", "date"].contains(&c.type_.as_str()), "{kind} {}", c.name);
        }
    }
}

#[test]
fn network_schemas_check_upstream_ranges() {
    for crd in &all_crds()[..3] {
        let options = &schema(crd)["properties"]["spec"]["properties"]["Options"]["properties"];
        for (field, min, max) in [("vlan", 1.0, 4094.0), ("vxlan", 1.0, 16_777_214.0), ("rt_tables", 0.0, 255.0)] {
            assert_eq!(options[field]["minimum"].as_f64(), Some(min), "{} {field}", crd.spec.names.kind);
            assert_eq!(options[field]["maximum"].as_f64(), Some(max), "{} {field}", crd.spec.names.kind);
        }
        let spec = &schema(crd)["properties"]["spec"]["properties"];
        for field in ["NetworkID", "NetworkType", "AllowedTenants", "Options"] {
            assert!(spec.get(field).is_some(), "{field}");
        }
        assert!(options.get("allocation_pool_v6").is_some() && options.get("container_prefix").is_some());
        let columns: Vec<_> =
            crd.spec.versions[0].additional_printer_columns.iter().flatten().map(|c| c.json_path.as_str()).collect();
        for path in [".spec.NetworkType", ".spec.NetworkID", ".spec.Options.cidr", ".spec.Options.net6"] {
            assert!(columns.contains(&path), "{path}");
        }
    }
}

#[test]
fn schemas_carry_upstream_field_names() {
    let ep = schema(&DanmEp::crd());
    let iface = &ep["properties"]["spec"]["properties"]["Interface"]["properties"];
    for field in ["Name", "Address", "AddressIPv6", "MacAddress", "proutes", "proutes6", "DeviceID"] {
        assert!(iface.get(field).is_some(), "{field}");
    }
    let tc = schema(&TenantConfig::crd());
    let profile = &tc["properties"]["hostDevices"]["items"]["properties"];
    for field in ["name", "vniType", "vniRange", "alloc"] {
        assert!(profile.get(field).is_some(), "{field}");
    }
    assert_eq!(tc["properties"]["networkIds"]["additionalProperties"]["type"], "string");
    assert_eq!(tc["properties"]["allowedClusterNetworks"]["items"]["required"], serde_json::json!(["name"]));
    let block = schema(&DanmIpamBlock::crd());
    assert_eq!(
        block["properties"]["spec"]["properties"]["block"]["properties"]["last"]["maximum"].as_f64(),
        Some(63.0)
    );
}

#[test]
fn yaml_parses_back_into_the_same_crds() {
    let files = manifest::files().unwrap();
    assert_eq!(files.len(), all_crds().len());
    for (file, crd) in files.iter().zip(all_crds()) {
        assert!(file.yaml.starts_with("# Generated"));
        let parsed: CustomResourceDefinition = serde_yaml::from_str(&file.yaml).unwrap();
        assert_eq!(parsed, crd, "{}", file.file_name);
    }
    assert_eq!(manifest::all_yaml().unwrap().matches("\n---\n").count() + 1, files.len());
}

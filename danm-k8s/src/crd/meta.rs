//! Object metadata: danm-core's [`ObjectMeta`](model::ObjectMeta) and the Kubernetes one.

use danm_core::model;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::ConversionError;

/// The Kubernetes metadata of a danm-core object.
///
/// The fields danm-core names are copied; the ones it keeps verbatim in
/// [`other`](model::ObjectMeta::other) (`creationTimestamp`, `finalizers`, `ownerReferences`, ...) are
/// decoded into their Kubernetes types, and an error names the first one that does not decode. Keys the
/// Kubernetes `ObjectMeta` does not have are dropped, as the API server would drop them. An empty name
/// becomes no name.
pub fn to_kube(meta: &model::ObjectMeta) -> Result<ObjectMeta, ConversionError> {
    let mut out = ObjectMeta::default();
    for (key, value) in &meta.other {
        let one = serde_json::Map::from_iter([(key.clone(), value.clone())]);
        let decoded: ObjectMeta = serde_json::from_value(serde_json::Value::Object(one))
            .map_err(|e| ConversionError::invalid(format!("metadata.{key}"), e))?;
        merge_other(&mut out, decoded);
    }
    out.name = Some(meta.name.clone()).filter(|n| !n.is_empty());
    out.namespace.clone_from(&meta.namespace);
    out.uid.clone_from(&meta.uid);
    out.resource_version.clone_from(&meta.resource_version);
    out.labels = Some(meta.labels.clone()).filter(|l| !l.is_empty());
    out.annotations = Some(meta.annotations.clone()).filter(|a| !a.is_empty());
    Ok(out)
}

/// Takes over the fields of `from` that danm-core keeps in `other`, where they are set.
fn merge_other(into: &mut ObjectMeta, from: ObjectMeta) {
    let ObjectMeta {
        creation_timestamp,
        deletion_grace_period_seconds,
        deletion_timestamp,
        finalizers,
        generate_name,
        generation,
        managed_fields,
        owner_references,
        self_link,
        ..
    } = from;
    into.creation_timestamp = creation_timestamp.or(into.creation_timestamp.take());
    into.deletion_grace_period_seconds = deletion_grace_period_seconds.or(into.deletion_grace_period_seconds);
    into.deletion_timestamp = deletion_timestamp.or(into.deletion_timestamp.take());
    into.finalizers = finalizers.or(into.finalizers.take());
    into.generate_name = generate_name.or(into.generate_name.take());
    into.generation = generation.or(into.generation);
    into.managed_fields = managed_fields.or(into.managed_fields.take());
    into.owner_references = owner_references.or(into.owner_references.take());
    into.self_link = self_link.or(into.self_link.take());
}

/// The danm-core metadata of a Kubernetes object: the fields danm-core names are copied, every other
/// field that is set goes to [`other`](model::ObjectMeta::other) in its JSON form.
pub fn from_kube(meta: ObjectMeta) -> model::ObjectMeta {
    let mut rest = meta;
    let name = rest.name.take().unwrap_or_default();
    let namespace = rest.namespace.take();
    let uid = rest.uid.take();
    let resource_version = rest.resource_version.take();
    let labels = rest.labels.take().unwrap_or_default();
    let annotations = rest.annotations.take().unwrap_or_default();
    let other = match serde_json::to_value(rest) {
        Ok(serde_json::Value::Object(map)) => map,
        // ObjectMeta always serializes to a JSON object.
        _ => serde_json::Map::new(),
    };
    model::ObjectMeta { name, namespace, uid, resource_version, labels, annotations, other }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> model::ObjectMeta {
        let mut meta = model::ObjectMeta::new("internal", Some("blue"));
        meta.uid = Some("8d1c".into());
        meta.resource_version = Some("42".into());
        meta.labels.insert("app".into(), "web".into());
        meta.annotations.insert("note".into(), "x".into());
        let other = serde_json::json!({
            "creationTimestamp": "2024-01-02T03:04:05Z",
            "generation": 3,
            "finalizers": ["danm.k8s.io/cleanup"],
            "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u1"}],
        });
        meta.other = other.as_object().unwrap().clone();
        meta
    }

    #[test]
    fn metadata_round_trips_both_ways() {
        let meta = full();
        let kube = to_kube(&meta).unwrap();
        assert_eq!(kube.name.as_deref(), Some("internal"));
        assert_eq!(kube.generation, Some(3));
        assert_eq!(kube.finalizers.as_deref(), Some(&["danm.k8s.io/cleanup".to_owned()][..]));
        assert!(kube.creation_timestamp.is_some());
        assert_eq!(from_kube(kube.clone()), meta);
        assert_eq!(to_kube(&from_kube(kube.clone())).unwrap(), kube);
        assert_eq!(to_kube(&from_kube(ObjectMeta::default())).unwrap(), ObjectMeta::default());
    }

    #[test]
    fn bad_metadata_names_the_field() {
        let mut meta = full();
        meta.other.insert("creationTimestamp".into(), "yesterday".into());
        let err = to_kube(&meta).unwrap_err();
        assert!(matches!(&err, ConversionError::Invalid { field, .. } if field == "metadata.creationTimestamp"));
    }
}

//! Decoding manifest files: the DANM objects, Pods and Services a user applies with `danmctl`.
//!
//! Input is multi-document YAML (`---` separated), or JSON when the text starts with `{` or `[`: a single
//! object, a list of objects, or a `kind: List` object with `items` (a YAML document may be any of these
//! too). Decoding checks each object's `apiVersion` and `kind` and its DANM schema; it does not apply the
//! validation rules (module `validate`) nor resolve references between objects.
//!
//! Errors name the document (its 0-based position in the stream, empty documents included) and the field,
//! e.g. `document 2, field items[0].spec.Options.vlan`.

mod kube;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::fieldpath;
use crate::model::{API_GROUP_ALT, API_VERSION, DanmEp, Network, ObjectMeta, PodRecord, TenantConfig};
use crate::service::ServiceRecord;

use kube::{CORE_V1, KubePod, KubeService};

/// The largest input accepted, in bytes.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// The most work a YAML document may cost the scanner, in units of (bytes scanned × open flow collections).
///
/// The YAML scanner revisits every open flow collection (`[`, `{`) at each token, so its time grows with
/// the input's length times its flow depth. Before scanning, every `[` and `{` of a document is counted as
/// if it were still open: the sum, over the document's bytes, of the brackets seen before each byte bounds
/// that work from above. A document over this budget is refused; JSON input is not subject to it.
pub const MAX_YAML_FLOW_WORK: u64 = 1 << 28;

/// One object of a manifest.
#[derive(Debug, Clone, PartialEq)]
pub enum Manifest {
    /// A DanmNet, TenantNetwork or ClusterNetwork.
    Network(Network),
    /// A TenantConfig.
    TenantConfig(TenantConfig),
    /// A DanmEp.
    DanmEp(DanmEp),
    /// A core `v1` Pod, reduced to what DANM reads.
    Pod(PodRecord),
    /// A core `v1` Service, reduced to what DANM reads.
    Service(ServiceRecord),
}

impl Manifest {
    /// The object's kind, as written in `kind`.
    pub fn kind(&self) -> &str {
        match self {
            Self::Network(n) => n.kind.as_str(),
            Self::TenantConfig(_) => "TenantConfig",
            Self::DanmEp(_) => "DanmEp",
            Self::Pod(_) => "Pod",
            Self::Service(_) => "Service",
        }
    }

    /// The object's metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Self::Network(n) => &n.metadata,
            Self::TenantConfig(t) => &t.metadata,
            Self::DanmEp(e) => &e.metadata,
            Self::Pod(p) => &p.metadata,
            Self::Service(s) => &s.metadata,
        }
    }
}

impl Serialize for Manifest {
    /// Writes the object as a Kubernetes document that [`decode_manifests`] reads back to an equal value.
    /// Pods and Services are written with only the fields DANM reads.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Network(n) => n.serialize(s),
            Self::TenantConfig(t) => t.serialize(s),
            Self::DanmEp(e) => e.serialize(s),
            Self::Pod(p) => KubePod::from(p).serialize(s),
            Self::Service(v) => KubeService::from(v).serialize(s),
        }
    }
}

/// Why a manifest could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// The input is larger than [`MAX_MANIFEST_BYTES`].
    #[error("the manifest is {size} bytes, more than the {max} accepted")]
    TooLarge {
        /// The input's size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A YAML document holds too many `[`/`{` for its size (see [`MAX_YAML_FLOW_WORK`]).
    #[error(
        "line {line}: the YAML document holds too many `[` and `{{` for its size to be parsed in bounded time; \
         split it into several documents, use block style, or use JSON"
    )]
    TooComplex {
        /// The 1-based line where the budget ran out.
        line: usize,
    },
    /// A document is not well-formed YAML or JSON.
    #[error("document {document}: {message}")]
    Parse {
        /// The document's position.
        document: usize,
        /// What the parser reported, with the line and column.
        message: String,
    },
    /// A manifest entry is not an object.
    #[error("document {document}, at {}: expected an object", fieldpath::show(path))]
    NotAnObject {
        /// The document's position.
        document: usize,
        /// Where the entry is in the document, e.g. `items[3]`; empty for the document itself.
        path: String,
    },
    /// `apiVersion` or `kind` is missing or not a string.
    #[error("document {document}, field {path}: missing or not a string")]
    MissingField {
        /// The document's position.
        document: usize,
        /// The field.
        path: String,
    },
    /// The kind is not one this decoder knows.
    #[error(
        "document {document}, field {path}: unknown kind `{kind}` \
         (expected DanmNet, TenantNetwork, ClusterNetwork, TenantConfig, DanmEp, Pod or Service)"
    )]
    UnknownKind {
        /// The document's position.
        document: usize,
        /// The `kind` field.
        path: String,
        /// The kind found.
        kind: String,
    },
    /// The API version does not go with the kind.
    #[error("document {document}, field {path}: `{api_version}` is not an API version of kind `{kind}` ({expected})")]
    UnknownApiVersion {
        /// The document's position.
        document: usize,
        /// The `apiVersion` field.
        path: String,
        /// The API version found.
        api_version: String,
        /// The object's kind.
        kind: String,
        /// The accepted API versions.
        expected: String,
    },
    /// The object does not fit its kind's schema.
    #[error("document {document}, field {}: {message}", fieldpath::show(path))]
    Decode {
        /// The document's position.
        document: usize,
        /// The field, e.g. `spec.Options.vlan`.
        path: String,
        /// What the decoder reported.
        message: String,
    },
}

/// The API versions accepted for DANM kinds.
fn danm_api_versions() -> [String; 2] {
    [API_VERSION.to_owned(), format!("{API_GROUP_ALT}/v1")]
}

/// Decodes every object of a YAML or JSON manifest, in order. Empty documents are skipped.
pub fn decode_manifests(input: &str) -> Result<Vec<Manifest>, ManifestError> {
    if input.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError::TooLarge { size: input.len(), max: MAX_MANIFEST_BYTES });
    }
    let mut out = Vec::new();
    let start = input.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if start.starts_with('{') || start.starts_with('[') {
        let value: Value =
            serde_json::from_str(start).map_err(|e| ManifestError::Parse { document: 0, message: e.to_string() })?;
        collect(0, value, &mut out)?;
    } else {
        check_yaml_flow_work(input)?;
        for (document, de) in serde_yaml::Deserializer::from_str(input).enumerate() {
            let value =
                Value::deserialize(de).map_err(|e| ManifestError::Parse { document, message: e.to_string() })?;
            collect(document, value, &mut out)?;
        }
    }
    Ok(out)
}

/// Refuses YAML whose flow collections could make the scanner's work exceed [`MAX_YAML_FLOW_WORK`].
///
/// The count restarts at each `---` line: a document marker inside a flow collection is a syntax error at
/// which scanning stops, so the scanner's flow depth cannot carry across one.
fn check_yaml_flow_work(input: &str) -> Result<(), ManifestError> {
    let (mut open, mut work) = (0u64, 0u64);
    for (index, line) in input.split_inclusive('\n').enumerate() {
        if line.strip_prefix("---").is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n'])) {
            (open, work) = (0, 0);
        }
        for byte in line.bytes() {
            open += u64::from(byte == b'[' || byte == b'{');
            work = work.saturating_add(open);
        }
        if work > MAX_YAML_FLOW_WORK {
            return Err(ManifestError::TooComplex { line: index + 1 });
        }
    }
    Ok(())
}

/// Decodes the objects of one document: nothing, one object, a list, or a `kind: List`.
fn collect(document: usize, value: Value, out: &mut Vec<Manifest>) -> Result<(), ManifestError> {
    match value {
        Value::Null => Ok(()),
        Value::Array(items) => collect_items(document, "", items, out),
        Value::Object(mut map) if map.get("kind").and_then(Value::as_str) == Some("List") => {
            match map.remove("items") {
                None | Some(Value::Null) => Ok(()),
                Some(Value::Array(items)) => collect_items(document, "items", items, out),
                Some(_) => Err(ManifestError::Decode {
                    document,
                    path: "items".to_owned(),
                    message: "expected a list of objects".to_owned(),
                }),
            }
        }
        other => {
            out.push(decode_object(document, String::new(), other)?);
            Ok(())
        }
    }
}

fn collect_items(document: usize, at: &str, items: Vec<Value>, out: &mut Vec<Manifest>) -> Result<(), ManifestError> {
    for (index, item) in items.into_iter().enumerate() {
        let mut path = at.to_owned();
        fieldpath::push_index(&mut path, index);
        out.push(decode_object(document, path, item)?);
    }
    Ok(())
}

/// Decodes one object found at `at` in document `document`.
fn decode_object(document: usize, at: String, value: Value) -> Result<Manifest, ManifestError> {
    let Value::Object(map) = &value else { return Err(ManifestError::NotAnObject { document, path: at }) };
    let field = |name: &str| match map.get(name).and_then(Value::as_str) {
        Some(v) => Ok(v.to_owned()),
        None => Err(ManifestError::MissingField { document, path: fieldpath::with_key(&at, name) }),
    };
    let kind = field("kind")?;
    let api_version = field("apiVersion")?;
    let accepted: Vec<String> = match kind.as_str() {
        "DanmNet" | "TenantNetwork" | "ClusterNetwork" | "TenantConfig" | "DanmEp" => danm_api_versions().into(),
        "Pod" | "Service" => vec![CORE_V1.to_owned()],
        _ => return Err(ManifestError::UnknownKind { document, path: fieldpath::with_key(&at, "kind"), kind }),
    };
    if !accepted.contains(&api_version) {
        return Err(ManifestError::UnknownApiVersion {
            document,
            path: fieldpath::with_key(&at, "apiVersion"),
            api_version,
            kind,
            expected: accepted.join(" or "),
        });
    }
    Ok(match kind.as_str() {
        "TenantConfig" => Manifest::TenantConfig(typed(document, &at, value)?),
        "DanmEp" => Manifest::DanmEp(typed(document, &at, value)?),
        "Pod" => Manifest::Pod(typed::<KubePod>(document, &at, value)?.into()),
        "Service" => Manifest::Service(typed::<KubeService>(document, &at, value)?.into()),
        _ => Manifest::Network(typed(document, &at, value)?),
    })
}

/// Decodes `value` as a `T`, naming the field on failure.
fn typed<T: DeserializeOwned>(document: usize, at: &str, value: Value) -> Result<T, ManifestError> {
    serde_path_to_error::deserialize(value).map_err(|e| ManifestError::Decode {
        document,
        path: fieldpath::extend(at, e.path()),
        message: e.inner().to_string(),
    })
}

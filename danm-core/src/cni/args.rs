//! Per-invocation inputs besides the configuration: the `CNI_ARGS` variable and the list of valid
//! attachments a runtime passes with `GC`.
//!
//! This module parses strings and JSON it is given; reading the environment is the caller's job.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::{CniError, ErrorCode, ParseError, decode_value};
use super::netconf::NetConf;

/// The parsed `CNI_ARGS` variable: `K=V` pairs separated by `;`, in their original order.
///
/// An empty string is an empty set; empty segments (e.g. from a trailing `;`) are skipped; the value
/// runs to the end of the pair and may itself contain `=`. When a key repeats, the last value wins
/// and the key keeps its first position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniArgs {
    pairs: Vec<(String, String)>,
}

/// Why `CNI_ARGS` could not be parsed (CNI code 4, invalid environment variables).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CniArgsError {
    /// A pair has no `=`.
    #[error("CNI_ARGS: pair `{0}` has no `=`")]
    MissingEquals(String),
    /// A pair has an empty key.
    #[error("CNI_ARGS: pair `{0}` has an empty key")]
    EmptyKey(String),
}

impl From<CniArgsError> for CniError {
    fn from(e: CniArgsError) -> Self {
        CniError::new(ErrorCode::INVALID_ENVIRONMENT_VARIABLES, e.to_string())
    }
}

impl CniArgs {
    /// The pod namespace key set by Kubernetes runtimes.
    pub const K8S_POD_NAMESPACE: &'static str = "K8S_POD_NAMESPACE";
    /// The pod name key.
    pub const K8S_POD_NAME: &'static str = "K8S_POD_NAME";
    /// The pod UID key.
    pub const K8S_POD_UID: &'static str = "K8S_POD_UID";
    /// The pod sandbox (infra container) ID key.
    pub const K8S_POD_INFRA_CONTAINER_ID: &'static str = "K8S_POD_INFRA_CONTAINER_ID";
    /// The key telling plugins to ignore keys they do not know; this parser keeps every key anyway.
    pub const IGNORE_UNKNOWN: &'static str = "IgnoreUnknown";

    /// Parses a `CNI_ARGS` value.
    pub fn parse(s: &str) -> Result<Self, CniArgsError> {
        let mut args = Self::default();
        for pair in s.split(';').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').ok_or_else(|| CniArgsError::MissingEquals(pair.to_owned()))?;
            if k.is_empty() {
                return Err(CniArgsError::EmptyKey(pair.to_owned()));
            }
            args.insert(k, v);
        }
        Ok(args)
    }

    /// Sets `key` to `value`, keeping the key's position if it is already present.
    pub fn insert(&mut self, key: &str, value: &str) {
        match self.pairs.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value.to_owned(),
            None => self.pairs.push((key.to_owned(), value.to_owned())),
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The number of distinct keys.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// `K8S_POD_NAMESPACE`.
    pub fn pod_namespace(&self) -> Option<&str> {
        self.get(Self::K8S_POD_NAMESPACE)
    }

    /// `K8S_POD_NAME`.
    pub fn pod_name(&self) -> Option<&str> {
        self.get(Self::K8S_POD_NAME)
    }

    /// `K8S_POD_UID`.
    pub fn pod_uid(&self) -> Option<&str> {
        self.get(Self::K8S_POD_UID)
    }

    /// `K8S_POD_INFRA_CONTAINER_ID`.
    pub fn pod_infra_container_id(&self) -> Option<&str> {
        self.get(Self::K8S_POD_INFRA_CONTAINER_ID)
    }

    /// Whether `IgnoreUnknown` is set to a true value (`1`, `true`, any case).
    pub fn ignore_unknown(&self) -> bool {
        self.get(Self::IGNORE_UNKNOWN).is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
    }
}

impl FromStr for CniArgs {
    type Err = CniArgsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for CniArgs {
    /// The `K=V;K=V` form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, (k, v)) in self.pairs.iter().enumerate() {
            if n > 0 {
                f.write_str(";")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

/// One still-valid attachment listed in a `GC` request: `(CNI_CONTAINERID, CNI_IFNAME)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
pub struct Attachment {
    /// `containerID`: the container ID given on ADD.
    #[serde(rename = "containerID")]
    pub container_id: String,
    /// `ifname`: the interface name given on ADD.
    pub ifname: String,
}

/// The key under which a `GC` request lists the valid attachments.
pub const VALID_ATTACHMENTS_KEY: &str = "cni.dev/valid-attachments";
/// A misspelling of [`VALID_ATTACHMENTS_KEY`] some runtimes send; accepted when the proper key is absent.
pub const ATTACHMENTS_KEY_ALT: &str = "cni.dev/attachments";

/// Reads the valid attachments of a `GC` request from a configuration object.
///
/// `None` when neither key is present (not a GC request, or nothing was said: remove nothing);
/// `Some(vec![])` when the runtime listed no valid attachment. A malformed list is a decode error
/// (code 6) naming the key and the bad entry.
pub fn valid_attachments(conf: &Map<String, Value>) -> Result<Option<Vec<Attachment>>, ParseError> {
    let Some((key, raw)) =
        [VALID_ATTACHMENTS_KEY, ATTACHMENTS_KEY_ALT].into_iter().find_map(|k| conf.get(k).map(|v| (k, v)))
    else {
        return Ok(None);
    };
    decode_value::<Vec<Attachment>>(raw, "GC request").map(Some).map_err(|e| e.within("GC request", key))
}

impl NetConf {
    /// The valid attachments of a `GC` request (see [`valid_attachments`]).
    pub fn valid_attachments(&self) -> Result<Option<Vec<Attachment>>, ParseError> {
        valid_attachments(&self.extra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_kubernetes_args() {
        let a = CniArgs::parse(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;\
             K8S_POD_INFRA_CONTAINER_ID=abc123;K8S_POD_UID=0f1e-22",
        )
        .unwrap();
        assert_eq!(a.pod_namespace(), Some("default"));
        assert_eq!(a.pod_name(), Some("web-0"));
        assert_eq!(a.pod_uid(), Some("0f1e-22"));
        assert_eq!(a.pod_infra_container_id(), Some("abc123"));
        assert!(a.ignore_unknown());
        assert_eq!(a.len(), 5);
        let keys: Vec<&str> = a.iter().map(|(k, _)| k).collect();
        assert_eq!(keys[0], "IgnoreUnknown");
        assert_eq!(a.to_string().parse::<CniArgs>().unwrap(), a);
    }

    #[test]
    fn edge_cases() {
        assert!(CniArgs::parse("").unwrap().is_empty());
        assert_eq!(CniArgs::parse("A=1;;B=;").unwrap().get("B"), Some(""));
        assert_eq!(CniArgs::parse("A=x=y").unwrap().get("A"), Some("x=y"));
        let dup = CniArgs::parse("A=1;B=2;A=3").unwrap();
        assert_eq!((dup.get("A"), dup.to_string().as_str()), (Some("3"), "A=3;B=2"));
        assert!(!CniArgs::parse("IgnoreUnknown=0").unwrap().ignore_unknown());
        assert_eq!(CniArgs::parse("A=1;oops"), Err(CniArgsError::MissingEquals("oops".into())));
        assert_eq!(CniArgs::parse("=1"), Err(CniArgsError::EmptyKey("=1".into())));
        let e = CniError::from(CniArgsError::MissingEquals("oops".into()));
        assert_eq!(e.code, ErrorCode::INVALID_ENVIRONMENT_VARIABLES);
        assert!(e.msg.contains("oops"));
    }

    #[test]
    fn gc_attachments() {
        let conf = json!({
            "cniVersion": "1.1.0", "name": "n", "type": "danm",
            "cni.dev/valid-attachments": [
                {"containerID": "c1", "ifname": "eth0"},
                {"containerID": "c2", "ifname": "net1"}
            ]
        });
        let nc = NetConf::from_value(&conf).unwrap();
        let got = nc.valid_attachments().unwrap().unwrap();
        assert_eq!(got[1], Attachment { container_id: "c2".into(), ifname: "net1".into() });

        let alt = json!({"cni.dev/attachments": []});
        assert_eq!(valid_attachments(alt.as_object().unwrap()), Ok(Some(vec![])));
        assert_eq!(valid_attachments(&Map::new()), Ok(None));

        let bad = json!({"cni.dev/valid-attachments": [{"containerID": "c1"}]});
        let e = valid_attachments(bad.as_object().unwrap()).unwrap_err();
        assert_eq!(e.code, ErrorCode::DECODING_FAILURE);
        assert!(e.path.starts_with("cni.dev/valid-attachments[0]"), "{e}");
    }
}

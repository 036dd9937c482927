//! DANM's own plugin configuration: the object a runtime hands the `danm` meta-plugin on stdin.
//!
//! | key | meaning |
//! | --- | --- |
//! | `cniVersion` | protocol version of the request; required unless `cniVersions` is given |
//! | `cniVersions` | versions the configuration supports; used only when `cniVersion` is absent |
//! | `name` | network name (required) |
//! | `type` | plugin executable name, normally `danm` (required) |
//! | `kubeconfig` | path of the kubeconfig to reach the Kubernetes API |
//! | `datastore` | `{"type": "local", "path": "/var/lib/danm/danm.db"}`: a node-local store instead of the API |
//! | `cniDir` | directory of delegate CNI configurations (default `/etc/cni/net.d`) |
//! | `namingScheme` | `""` (default) or `"legacy"`: how interface names are derived |
//! | `timeoutSeconds` | time budget, a number in (0, 300] (default 10): of all attachments of an ADD together, and of each DEL, CHECK and GC |
//! | `logFile` | path of the log file (default: standard error) |
//! | `logLevel` | `error`, `warn`, `info`, `debug` or `trace` |
//! | `hostname` | node name to use instead of the machine's host name |
//! | `kubeletSocket` | the kubelet's PodResources socket, asked which devices a pod was given (default `/var/lib/kubelet/pod-resources/kubelet.sock` with `kubeconfig`; with `datastore`, only when given) |
//!
//! Exactly one of `kubeconfig` and `datastore` must be given. Inside `datastore`, `type` is required
//! and must be `local`; `path` defaults to `/var/lib/danm/danm.db`; no other key is allowed.
//! Keys a runtime injects (`runtimeConfig`, `args`, `prevResult`, `capabilities`, and any key
//! starting with `cni.dev/`) are accepted and ignored; any other key is rejected with code 7 so that
//! typos surface. This module only reads and checks the configuration; it does not act on it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::{ErrorCode, ParseError, decode_json, decode_object};
use super::version::{CniVersion, negotiate};
pub use crate::pod::NamingScheme;

const WHAT: &str = "DANM config";

/// Default of `cniDir`.
pub const DEFAULT_CNI_DIR: &str = "/etc/cni/net.d";
/// Default of `datastore.path`.
pub const DEFAULT_DATASTORE_PATH: &str = "/var/lib/danm/danm.db";
/// Default of `timeoutSeconds`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of `kubeletSocket` with `kubeconfig`: the kubelet's PodResources API.
pub const DEFAULT_KUBELET_SOCKET: &str = "/var/lib/kubelet/pod-resources/kubelet.sock";
/// Largest accepted `timeoutSeconds`.
pub const MAX_TIMEOUT_SECONDS: f64 = 300.0;

const KNOWN_KEYS: [&str; 13] = [
    "cniVersion",
    "cniVersions",
    "name",
    "type",
    "kubeconfig",
    "datastore",
    "cniDir",
    "namingScheme",
    "timeoutSeconds",
    "logFile",
    "logLevel",
    "hostname",
    "kubeletSocket",
];
const IGNORED_KEYS: [&str; 4] = ["runtimeConfig", "args", "prevResult", "capabilities"];

/// The validated configuration of the `danm` plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DanmConf {
    /// `cniVersion` as given (empty when absent).
    pub cni_version: String,
    /// `cniVersions` as given.
    pub cni_versions: Option<Vec<String>>,
    /// The protocol version to answer in: `cniVersion`, or the best of `cniVersions` without it.
    pub version: CniVersion,
    /// `name`.
    pub name: String,
    /// `type`.
    pub plugin_type: String,
    /// Where DANM objects are kept: `kubeconfig` or `datastore`.
    pub backend: Backend,
    /// `cniDir`.
    pub cni_dir: PathBuf,
    /// `namingScheme`.
    pub naming_scheme: NamingScheme,
    /// `timeoutSeconds` as a duration.
    pub timeout: Duration,
    /// `logFile`.
    pub log_file: Option<PathBuf>,
    /// `logLevel`.
    pub log_level: Option<LogLevel>,
    /// `hostname`.
    pub hostname: Option<String>,
    /// `kubeletSocket` as given; see [`DanmConf::pod_resources_socket`].
    pub kubelet_socket: Option<PathBuf>,
}

/// Where the plugin reads and writes DANM objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// The Kubernetes API, reached with the kubeconfig at this path (`kubeconfig`).
    Kubeconfig(PathBuf),
    /// A node-local store file at this path (`datastore` of type `local`).
    LocalDatastore(PathBuf),
}

/// The verbosity of the plugin's log (`logLevel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// `error`
    Error,
    /// `warn`
    Warn,
    /// `info`
    Info,
    /// `debug`
    Debug,
    /// `trace`
    Trace,
}

impl LogLevel {
    /// Every level, least verbose first.
    pub const ALL: [LogLevel; 5] = [Self::Error, Self::Warn, Self::Info, Self::Debug, Self::Trace];

    /// The configuration spelling, e.g. `"warn"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
            Self::Trace => "trace",
        }
    }
}

impl FromStr for LogLevel {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|l| l.as_str() == s).ok_or_else(|| {
            ParseError::invalid(WHAT, "logLevel", format!("`{s}` is not one of error, warn, info, debug, trace"))
        })
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Backend {
    /// The kubeconfig path, when the backend is the Kubernetes API.
    pub fn kubeconfig(&self) -> Option<&Path> {
        match self {
            Self::Kubeconfig(p) => Some(p),
            Self::LocalDatastore(_) => None,
        }
    }

    /// The store file, when the backend is a local datastore.
    pub fn datastore_path(&self) -> Option<&Path> {
        match self {
            Self::LocalDatastore(p) => Some(p),
            Self::Kubeconfig(_) => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    #[serde(default)]
    cni_version: Option<String>,
    #[serde(default)]
    cni_versions: Option<Vec<String>>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "type")]
    plugin_type: Option<String>,
    #[serde(default)]
    kubeconfig: Option<PathBuf>,
    #[serde(default)]
    datastore: Option<Map<String, Value>>,
    #[serde(default)]
    cni_dir: Option<PathBuf>,
    #[serde(default)]
    naming_scheme: Option<String>,
    #[serde(default)]
    timeout_seconds: Option<f64>,
    #[serde(default)]
    log_file: Option<PathBuf>,
    #[serde(default)]
    log_level: Option<String>,
    #[serde(default)]
    hostname: Option<String>,
    #[serde(default)]
    kubelet_socket: Option<PathBuf>,
}

#[derive(Deserialize)]
struct WireDatastore {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    path: Option<PathBuf>,
}

fn required(value: Option<String>, key: &str) -> Result<String, ParseError> {
    value.filter(|v| !v.is_empty()).ok_or_else(|| ParseError::invalid(WHAT, key, "is required and must not be empty"))
}

fn non_empty_path(value: Option<PathBuf>, key: &str) -> Result<Option<PathBuf>, ParseError> {
    match value {
        Some(p) if p.as_os_str().is_empty() => Err(ParseError::invalid(WHAT, key, "must not be empty")),
        other => Ok(other),
    }
}

impl DanmConf {
    /// Parses and validates the configuration. A wrongly-typed value is a decode error (code 6)
    /// naming its JSON path; an unknown key or an unacceptable value is an invalid config (code 7)
    /// naming the key; an unsupported `cniVersion` has code 1.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ParseError> {
        let value = decode_json(bytes, WHAT)?;
        Self::from_value(&value)
    }

    /// [`DanmConf::from_slice`] on an already-parsed JSON value.
    pub fn from_value(value: &Value) -> Result<Self, ParseError> {
        let Value::Object(map) = value else {
            return Err(ParseError::decode(WHAT, "", "expected a JSON object"));
        };
        if let Some(key) = map.keys().find(|k| {
            !KNOWN_KEYS.contains(&k.as_str()) && !IGNORED_KEYS.contains(&k.as_str()) && !k.starts_with("cni.dev/")
        }) {
            return Err(ParseError::invalid(WHAT, key.as_str(), "is not a DANM configuration key"));
        }
        let w: Wire = decode_object(value, WHAT)?;

        let plugin_type = required(w.plugin_type, "type")?;
        let name = required(w.name, "name")?;
        let cni_version = w.cni_version.unwrap_or_default();
        let version = Self::pick_version(&cni_version, w.cni_versions.as_deref())?;
        let backend = Self::backend(w.kubeconfig, w.datastore)?;
        let cni_dir = non_empty_path(w.cni_dir, "cniDir")?.unwrap_or_else(|| PathBuf::from(DEFAULT_CNI_DIR));
        let naming_scheme = match w.naming_scheme.as_deref() {
            None => NamingScheme::Default,
            Some(value) => value.parse().map_err(|e: crate::pod::NamingSchemeParseError| {
                ParseError::invalid(WHAT, "namingScheme", format!("`{}` is neither \"\" nor \"legacy\"", e.value))
            })?,
        };
        let timeout = match w.timeout_seconds {
            None => DEFAULT_TIMEOUT,
            Some(s) => Some(s)
                .filter(|s| *s > 0.0 && *s <= MAX_TIMEOUT_SECONDS)
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .ok_or_else(|| {
                    ParseError::invalid(WHAT, "timeoutSeconds", format!("must be > 0 and <= 300, got {s}"))
                })?,
        };
        let log_file = non_empty_path(w.log_file, "logFile")?;
        let log_level = w.log_level.as_deref().map(str::parse).transpose()?;
        let hostname = match w.hostname {
            Some(h) if h.is_empty() => return Err(ParseError::invalid(WHAT, "hostname", "must not be empty")),
            other => other,
        };
        let kubelet_socket = non_empty_path(w.kubelet_socket, "kubeletSocket")?;
        Ok(Self {
            cni_version,
            cni_versions: w.cni_versions,
            version,
            name,
            plugin_type,
            backend,
            cni_dir,
            naming_scheme,
            timeout,
            log_file,
            log_level,
            hostname,
            kubelet_socket,
        })
    }

    /// The kubelet PodResources socket to ask for a pod's devices: `kubeletSocket`, else
    /// [`DEFAULT_KUBELET_SOCKET`] on Kubernetes; `None` on a local datastore without `kubeletSocket`.
    pub fn pod_resources_socket(&self) -> Option<&Path> {
        match (&self.kubelet_socket, &self.backend) {
            (Some(path), _) => Some(path),
            (None, Backend::Kubeconfig(_)) => Some(Path::new(DEFAULT_KUBELET_SOCKET)),
            (None, Backend::LocalDatastore(_)) => None,
        }
    }

    fn pick_version(cni_version: &str, cni_versions: Option<&[String]>) -> Result<CniVersion, ParseError> {
        let version_error = |path: &str, e: super::CniError| ParseError {
            code: ErrorCode::INCOMPATIBLE_VERSION,
            what: WHAT,
            path: path.into(),
            reason: e.msg,
        };
        if !cni_version.is_empty() {
            cni_version.parse::<CniVersion>().map_err(|e| version_error("cniVersion", e.into()))
        } else if let Some(list) = cni_versions {
            negotiate("", Some(list)).map_err(|e| version_error("cniVersions", e))
        } else {
            Err(ParseError::invalid(WHAT, "cniVersion", "is required (or give `cniVersions`)"))
        }
    }

    fn backend(kubeconfig: Option<PathBuf>, datastore: Option<Map<String, Value>>) -> Result<Backend, ParseError> {
        match (non_empty_path(kubeconfig, "kubeconfig")?, datastore) {
            (Some(k), None) => Ok(Backend::Kubeconfig(k)),
            (None, Some(d)) => Self::datastore(d),
            (Some(_), Some(_)) => {
                Err(ParseError::invalid(WHAT, "", "`kubeconfig` and `datastore` are exclusive: give exactly one"))
            }
            (None, None) => Err(ParseError::invalid(WHAT, "", "one of `kubeconfig` and `datastore` must be given")),
        }
    }

    fn datastore(d: Map<String, Value>) -> Result<Backend, ParseError> {
        if let Some(key) = d.keys().find(|k| *k != "type" && *k != "path") {
            return Err(ParseError::invalid(WHAT, format!("datastore.{key}"), "is not a datastore key (type, path)"));
        }
        let w: WireDatastore = decode_object(&Value::Object(d), WHAT).map_err(|e| e.within(WHAT, "datastore"))?;
        match w.kind.as_deref() {
            Some("local") => {}
            Some(other) => {
                let reason = format!("`{other}` is not a supported datastore type (only `local`)");
                return Err(ParseError::invalid(WHAT, "datastore.type", reason));
            }
            None => return Err(ParseError::invalid(WHAT, "datastore.type", "is required (only `local`)")),
        }
        let path = non_empty_path(w.path, "datastore.path")?.unwrap_or_else(|| PathBuf::from(DEFAULT_DATASTORE_PATH));
        Ok(Backend::LocalDatastore(path))
    }
}

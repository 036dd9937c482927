//! Generic CNI network configurations: the plugin configuration a plugin reads on stdin
//! ([`NetConf`]), the configuration list a runtime loads from disk ([`NetConfList`]), and the
//! derivation of one plugin's request configuration from a list.
//!
//! Plugin-specific keys are kept untouched in [`NetConf::extra`]; interpreting them (for instance
//! DANM's own keys, see the sibling `danm_conf` module) is not this module's business.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use super::error::{CniError, ParseError, decode_json, decode_object, decode_slice};
use super::result::{CniResult, Dns};
use super::result_json::dns_json;
use super::version::{CniVersion, negotiate};

const CONF: &str = "network config";
const LIST: &str = "network config list";

/// A plugin configuration: what a runtime hands a plugin on stdin.
///
/// Read it with [`NetConf::from_slice`] or [`NetConf::from_value`], which also validate it; plain
/// serde deserialisation skips the validation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetConf {
    /// `cniVersion`: the protocol version of the request (empty when absent).
    #[serde(default)]
    pub cni_version: String,
    /// `cniVersions`: every version the configuration supports, for runtime-side negotiation.
    #[serde(default)]
    pub cni_versions: Option<Vec<String>>,
    /// `name`: the network name.
    #[serde(default)]
    pub name: String,
    /// `type`: the plugin executable's file name.
    #[serde(default, rename = "type")]
    pub plugin_type: String,
    /// `ipam`: the IPAM section, kept as raw JSON for the IPAM plugin.
    #[serde(default)]
    pub ipam: Option<Value>,
    /// `dns`: DNS settings of the network.
    #[serde(default)]
    pub dns: Option<Dns>,
    /// `prevResult`: the previous plugin's result, as raw JSON; see [`NetConf::prev_result`].
    #[serde(default)]
    pub prev_result: Option<Value>,
    /// `runtimeConfig`: capability arguments inserted by the runtime.
    #[serde(default)]
    pub runtime_config: Option<Map<String, Value>>,
    /// `args`: additional arguments from the runtime, to be ignored when not understood.
    #[serde(default)]
    pub args: Option<Map<String, Value>>,
    /// `capabilities`: the capabilities the plugin configuration declares.
    #[serde(default)]
    pub capabilities: Option<BTreeMap<String, bool>>,
    /// `disableCheck`: the runtime must not call CHECK (a boolean or `"true"`/`"false"`).
    #[serde(default, deserialize_with = "flexible_bool")]
    pub disable_check: bool,
    /// `disableGC`: the runtime must not call GC (a boolean or `"true"`/`"false"`).
    #[serde(default, rename = "disableGC", deserialize_with = "flexible_bool")]
    pub disable_gc: bool,
    /// Every other key (plugin-specific ones, `cni.dev/...` ones), unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl NetConf {
    /// Parses and validates a plugin configuration. A wrongly-typed field is a decode error (code 6)
    /// naming its JSON path; a missing or empty `type` or `name` is an invalid config (code 7).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ParseError> {
        decode_slice::<NetConf>(bytes, CONF).and_then(NetConf::validated)
    }

    /// [`NetConf::from_slice`] on an already-parsed JSON value.
    pub fn from_value(value: &Value) -> Result<Self, ParseError> {
        decode_object::<NetConf>(value, CONF).and_then(NetConf::validated)
    }

    fn validated(self) -> Result<Self, ParseError> {
        if self.plugin_type.is_empty() {
            return Err(ParseError::invalid(CONF, "type", "is required and must not be empty"));
        }
        if self.name.is_empty() {
            return Err(ParseError::invalid(CONF, "name", "is required and must not be empty"));
        }
        Ok(self)
    }

    /// The protocol version of this request: `cniVersion`, which the runtime sets to the version it
    /// selected. A plugin answers in this version; `cniVersions` is only for runtimes (see
    /// [`NetConf::negotiated_version`]). Code 1 when unsupported.
    pub fn version(&self) -> Result<CniVersion, CniError> {
        self.cni_version.parse::<CniVersion>().map_err(CniError::from)
    }

    /// The version a runtime would select for this configuration from `cniVersion` and `cniVersions`
    /// (see [`negotiate`]).
    pub fn negotiated_version(&self) -> Result<CniVersion, CniError> {
        negotiate(&self.cni_version, self.cni_versions.as_deref())
    }

    /// Parses `prevResult`, if present, as a result of any supported version.
    pub fn prev_result(&self) -> Result<Option<CniResult>, ParseError> {
        let Some(raw) = &self.prev_result else { return Ok(None) };
        CniResult::from_json(raw).map(Some).map_err(|e| e.within(CONF, "prevResult"))
    }

    /// The configuration as a JSON object: [`NetConf::extra`] plus the well-known keys that are set.
    pub fn to_value(&self) -> Value {
        let mut m = self.extra.clone();
        let mut put = |k: &str, v: Value| {
            m.insert(k.to_owned(), v);
        };
        put("cniVersion", Value::from(self.cni_version.as_str()));
        if let Some(vs) = &self.cni_versions {
            put("cniVersions", vs.iter().map(|v| Value::from(v.as_str())).collect());
        }
        put("name", Value::from(self.name.as_str()));
        put("type", Value::from(self.plugin_type.as_str()));
        if let Some(ipam) = &self.ipam {
            put("ipam", ipam.clone());
        }
        if let Some(dns) = &self.dns {
            put("dns", dns_json(dns));
        }
        if let Some(prev) = &self.prev_result {
            put("prevResult", prev.clone());
        }
        if let Some(rc) = &self.runtime_config {
            put("runtimeConfig", Value::Object(rc.clone()));
        }
        if let Some(args) = &self.args {
            put("args", Value::Object(args.clone()));
        }
        if let Some(caps) = &self.capabilities {
            put("capabilities", caps.iter().map(|(k, v)| (k.clone(), Value::Bool(*v))).collect());
        }
        if self.disable_check {
            put("disableCheck", Value::Bool(true));
        }
        if self.disable_gc {
            put("disableGC", Value::Bool(true));
        }
        Value::Object(m)
    }
}

impl Serialize for NetConf {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

/// A network configuration list (a `.conflist`): a named chain of plugin configurations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetConfList {
    /// `cniVersion`: the version the list and its plugins conform to.
    pub cni_version: String,
    /// `cniVersions`: every version the list supports.
    pub cni_versions: Option<Vec<String>>,
    /// `name`: the network name, injected into every plugin's configuration.
    pub name: String,
    /// `disableCheck`: the runtime must not call CHECK for this network.
    pub disable_check: bool,
    /// `disableGC`: the runtime must not call GC for this network.
    pub disable_gc: bool,
    /// `loadOnlyInlinedPlugins`: ignore plugin configurations from other sources.
    pub load_only_inlined_plugins: bool,
    /// `plugins`: the plugin configuration objects, in execution order, unchanged. Empty when the
    /// list has no `plugins` key (its plugins then come from other sources).
    pub plugins: Vec<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireList {
    #[serde(default)]
    cni_version: String,
    #[serde(default)]
    cni_versions: Option<Vec<String>>,
    #[serde(default)]
    name: String,
    #[serde(default, deserialize_with = "flexible_bool")]
    disable_check: bool,
    #[serde(default, rename = "disableGC", deserialize_with = "flexible_bool")]
    disable_gc: bool,
    #[serde(default, deserialize_with = "flexible_bool")]
    load_only_inlined_plugins: bool,
    #[serde(default)]
    plugins: Option<Vec<Map<String, Value>>>,
}

impl NetConfList {
    /// Parses and validates a configuration list: `name` is required, `plugins` (when present) must
    /// be non-empty, `loadOnlyInlinedPlugins` requires `plugins`, and each plugin must be a valid
    /// plugin configuration once `name` and `cniVersion` are injected (errors name `plugins[i]...`).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ParseError> {
        decode_slice::<WireList>(bytes, LIST).and_then(Self::from_wire)
    }

    /// [`NetConfList::from_slice`] on an already-parsed JSON value.
    pub fn from_value(value: &Value) -> Result<Self, ParseError> {
        decode_object::<WireList>(value, LIST).and_then(Self::from_wire)
    }

    fn from_wire(w: WireList) -> Result<Self, ParseError> {
        if w.name.is_empty() {
            return Err(ParseError::invalid(LIST, "name", "is required and must not be empty"));
        }
        let plugins = match w.plugins {
            Some(p) if p.is_empty() => {
                return Err(ParseError::invalid(LIST, "plugins", "must list at least one plugin"));
            }
            Some(p) => p,
            None if w.load_only_inlined_plugins => {
                return Err(ParseError::invalid(
                    LIST,
                    "loadOnlyInlinedPlugins",
                    "is true but there is no `plugins` key",
                ));
            }
            None => Vec::new(),
        };
        let list = Self {
            cni_version: w.cni_version,
            cni_versions: w.cni_versions,
            name: w.name,
            disable_check: w.disable_check,
            disable_gc: w.disable_gc,
            load_only_inlined_plugins: w.load_only_inlined_plugins,
            plugins,
        };
        for (i, plugin) in list.plugins.iter().enumerate() {
            let conf = list.inject(plugin.clone(), list.cni_version.clone());
            NetConf::from_value(&Value::Object(conf)).map_err(|e| e.within(LIST, &format!("plugins[{i}]")))?;
        }
        Ok(list)
    }

    fn inject(&self, mut plugin: Map<String, Value>, version: String) -> Map<String, Value> {
        plugin.insert("name".into(), Value::from(self.name.as_str()));
        plugin.insert("cniVersion".into(), Value::from(version));
        plugin
    }

    /// The version a runtime selects for this list (see [`negotiate`]).
    pub fn negotiated_version(&self) -> Result<CniVersion, CniError> {
        negotiate(&self.cni_version, self.cni_versions.as_deref())
    }

    /// The request configuration a runtime hands plugin `index` of the list, per the specification:
    /// the plugin object with the list's `name` and the selected `version` as `cniVersion`, with
    /// `prevResult` when given (rendered in `version`), and with `capabilities` replaced by a
    /// `runtimeConfig` holding those `capability_args` the plugin declares (when `capability_args`
    /// is given and any match). All other keys pass through unaltered.
    pub fn plugin_conf(
        &self,
        index: usize,
        version: CniVersion,
        prev_result: Option<&CniResult>,
        capability_args: Option<&Map<String, Value>>,
    ) -> Result<NetConf, ParseError> {
        let Some(plugin) = self.plugins.get(index) else {
            let reason = format!("no such plugin (the list has {})", self.plugins.len());
            return Err(ParseError::invalid(LIST, format!("plugins[{index}]"), reason));
        };
        let mut conf = self.inject(plugin.clone(), version.as_str().to_owned());
        if let Some(prev) = prev_result {
            conf.insert("prevResult".into(), prev.to_json(version));
        }
        let caps = conf.remove("capabilities");
        if let Some(args) = capability_args {
            let declared = |k: &str| caps.as_ref().and_then(|c| c.get(k)).and_then(Value::as_bool).unwrap_or(false);
            let rc: Map<String, Value> =
                args.iter().filter(|(k, _)| declared(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
            if !rc.is_empty() {
                conf.insert("runtimeConfig".into(), Value::Object(rc));
            }
        }
        NetConf::from_value(&Value::Object(conf)).map_err(|e| e.within(LIST, &format!("plugins[{index}]")))
    }

    /// The list form of a single configuration: the configuration itself as the only plugin.
    pub fn from_conf(conf: &NetConf) -> Self {
        let plugin = match conf.to_value() {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        Self {
            cni_version: conf.cni_version.clone(),
            cni_versions: conf.cni_versions.clone(),
            name: conf.name.clone(),
            disable_check: conf.disable_check,
            disable_gc: conf.disable_gc,
            load_only_inlined_plugins: false,
            plugins: vec![plugin],
        }
    }
}

/// A configuration file's content: a single configuration (`.conf`) or a list (`.conflist`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfFile {
    /// A single plugin configuration (boxed: it is much larger than a list).
    Single(Box<NetConf>),
    /// A configuration list.
    List(NetConfList),
}

impl ConfFile {
    /// Parses either form; an object with a `plugins` key is a list.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ParseError> {
        let value = decode_json(bytes, CONF)?;
        match &value {
            Value::Object(m) if m.contains_key("plugins") => NetConfList::from_value(&value).map(Self::List),
            _ => NetConf::from_value(&value).map(|c| Self::Single(Box::new(c))),
        }
    }

    /// The network name.
    pub fn name(&self) -> &str {
        match self {
            Self::Single(c) => &c.name,
            Self::List(l) => &l.name,
        }
    }

    /// The content as a list (a single configuration becomes a one-plugin list).
    pub fn into_list(self) -> NetConfList {
        match self {
            Self::Single(c) => NetConfList::from_conf(&c),
            Self::List(l) => l,
        }
    }
}

/// Reads a boolean given either as a JSON boolean or as the string `"true"`/`"false"` (any case),
/// as configuration files in the wild do.
fn flexible_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a boolean or \"true\"/\"false\"")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            match v.to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
            }
        }
    }
    d.deserialize_any(V)
}

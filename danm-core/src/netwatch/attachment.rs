//! NetworkAttachmentDefinitions (Multus' `k8s.cni.cncf.io/v1` objects) as holders of host interfaces,
//! and the rewrite of their `master` that points upstream's macvlan and ipvlan plugins at the interface.
//!
//! A NetworkAttachmentDefinition's `spec.config` is a CNI configuration in a JSON string. One that is a
//! single plugin (not a list with `plugins`) and has `master` and a non-zero `vlan` or `vxlan` asks for a
//! host interface as a network does, with the config's `name` as NetworkID: `<name>.<vlan>` (or else
//! `vx_<name>`) on `master`, with the config's `mtu` if it has one. Any other configuration is not
//! netwatcher's business and [`Attachment::host_request`] says `None`; one that asks but with values
//! that cannot be carried out is `Some(Err)`, reported as a network with invalid attributes is.
//!
//! Once the interface is there, netwatcher rewrites `master` to the interface's name
//! ([`Attachment::rewrite`]), so that the plugins attach to it. The original `master` is recorded in the
//! [`HOST_DEVICE_ANNOTATION`] and the name written in the [`HOST_INTERFACE_ANNOTATION`], in the same
//! update: while `master` is the name netwatcher wrote (or the interface's own name), the parent is the
//! recorded device, so the interface is never made on itself, nor a VLAN on a VLAN after a change of the
//! VLAN id; a `master` changed by hand to anything else is the new parent. The rewrite is a function of
//! the object alone, so every node that makes it writes the same value.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::holder::HolderKey;
use crate::provision::{HostInterface, HostLinkKind};
use crate::validate;

/// The kind, as holders of its objects are recorded.
pub const KIND: &str = "NetworkAttachmentDefinition";
/// The annotation that keeps a NetworkAttachmentDefinition's original `master` once netwatcher has
/// rewritten it: the parent of its host interface.
pub const HOST_DEVICE_ANNOTATION: &str = "danm.k8s.io/host-device";
/// The annotation that keeps the host interface name netwatcher wrote into `master`.
pub const HOST_INTERFACE_ANNOTATION: &str = "danm.k8s.io/host-interface";

/// The largest VNI that fits VXLAN's 24 bits.
const MAX_VNI: i64 = (1 << 24) - 1;

/// A NetworkAttachmentDefinition as netwatcher reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attachment {
    /// The namespace.
    pub namespace: String,
    /// The object name.
    pub name: String,
    /// `spec.config`: the CNI configuration, a JSON document in a string.
    pub config: String,
    /// The object's annotations.
    pub annotations: BTreeMap<String, String>,
}

/// What netwatcher writes into a NetworkAttachmentDefinition so that its plugin attaches to the host
/// interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    /// The new `spec.config`: the old one with `master` set to the host interface, every other field
    /// kept in its order and with its value.
    pub config: String,
    /// The value of [`HOST_DEVICE_ANNOTATION`]: the parent of the host interface.
    pub host_device: String,
    /// The value of [`HOST_INTERFACE_ANNOTATION`]: the host interface.
    pub host_interface: String,
}

/// A JSON value that keeps the members of its objects in their order, so that a rewritten config
/// differs from the original in `master` alone.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Object(Vec<(String, Json)>),
    Array(Vec<Json>),
    Scalar(Value),
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Ordered;
        impl<'de> Visitor<'de> for Ordered {
            type Value = Json;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
                Ok(Json::Scalar(Value::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
                Ok(Json::Scalar(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
                Ok(Json::Scalar(v.into()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
                Ok(Json::Scalar(v.into()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Json, E> {
                Ok(Json::Scalar(v.into()))
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Scalar(Value::Null))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Json::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(Json::Object(members))
            }
        }
        deserializer.deserialize_any(Ordered)
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Object(members) => {
                let mut map = serializer.serialize_map(Some(members.len()))?;
                for (key, value) in members {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
            Self::Array(items) => items.serialize(serializer),
            Self::Scalar(value) => value.serialize(serializer),
        }
    }
}

/// The members of a config object, in their order.
#[derive(Debug, Clone, PartialEq)]
struct Members(Vec<(String, Json)>);

impl Members {
    fn parse(config: &str) -> Option<Self> {
        match serde_json::from_str(config).ok()? {
            Json::Object(members) => Some(Self(members)),
            _ => None,
        }
    }

    /// A member's value; `None` when absent or null. As Go's decoder, the last of duplicates counts.
    fn get(&self, key: &str) -> Option<Value> {
        let json = self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)?;
        Some(serde_json::to_value(json).ok()?).filter(|v| !v.is_null())
    }
}

/// A non-zero integer member; zero and absence are both "not set", as for upstream's decoder.
fn id(config: &Members, field: &str) -> Result<Option<i64>, String> {
    match config.get(field) {
        None => Ok(None),
        Some(v) => match v.as_i64() {
            Some(0) => Ok(None),
            Some(n) => Ok(Some(n)),
            None => Err(format!("spec.config {field} {v} is not an integer")),
        },
    }
}

impl Attachment {
    /// The holder key of this object: `NetworkAttachmentDefinition/<namespace>/<name>`.
    pub fn key(&self) -> HolderKey {
        HolderKey::Attachment { namespace: self.namespace.clone(), name: self.name.clone() }
    }

    fn members(&self) -> Option<Members> {
        Members::parse(&self.config)
    }

    /// The host interface this object asks for; `None` when it asks for none (a list of plugins, no
    /// `master`, no `vlan` or `vxlan`, a config that is not a JSON object), an error naming the field
    /// when what it asks for cannot be carried out.
    pub fn host_request(&self) -> Option<Result<HostInterface, String>> {
        let config = self.members()?;
        if config.get("plugins").is_some() {
            return None;
        }
        let master = config.get("master")?;
        let vlan = match id(&config, "vlan") {
            Ok(vlan) => vlan,
            Err(e) => return Some(Err(e)),
        };
        let vxlan = match vlan {
            Some(_) => None,
            None => match id(&config, "vxlan") {
                Ok(None) => return None,
                Ok(vxlan) => vxlan,
                Err(e) => return Some(Err(e)),
            },
        };
        Some(self.wanted(&config, &master, vlan, vxlan))
    }

    fn wanted(
        &self,
        config: &Members,
        master: &Value,
        vlan: Option<i64>,
        vxlan: Option<i64>,
    ) -> Result<HostInterface, String> {
        let Some(master) = master.as_str() else {
            return Err(format!("spec.config master {master} is not a string"));
        };
        let kind = match (vlan, vxlan) {
            (Some(v), _) => HostLinkKind::Vlan(
                u16::try_from(v)
                    .ok()
                    .filter(|v| (1..=4094).contains(v))
                    .ok_or_else(|| format!("spec.config vlan {v} is outside 1..=4094"))?,
            ),
            (None, Some(v)) => HostLinkKind::Vxlan(
                u32::try_from(v)
                    .ok()
                    .filter(|v| (1..=MAX_VNI).contains(&i64::from(*v)))
                    .ok_or_else(|| format!("spec.config vxlan {v} is outside 1..={MAX_VNI}"))?,
            ),
            (None, None) => unreachable!("host_request returns before"),
        };
        let name = config.get("name");
        let name = name.as_ref().and_then(Value::as_str).unwrap_or_default();
        if name.is_empty() {
            return Err("spec.config name is empty: it names the host interface".to_owned());
        }
        let interface = match kind {
            HostLinkKind::Vlan(v) => format!("{name}.{v}"),
            HostLinkKind::Vxlan(_) => format!("vx_{name}"),
        };
        if let Err(e) = validate::interface_name("spec.config name", &interface) {
            return Err(format!("host interface {}", e.message));
        }
        let mtu = match config.get("mtu") {
            None => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|m| u32::try_from(m).ok())
                    .filter(|m| *m > 0)
                    .ok_or_else(|| format!("spec.config mtu {v} is not a positive 32-bit integer"))?,
            ),
        };
        let written = self.annotations.get(HOST_INTERFACE_ANNOTATION);
        let parent = if master == interface || written.is_some_and(|w| w == master) {
            match self.annotations.get(HOST_DEVICE_ANNOTATION).filter(|d| !d.is_empty()) {
                Some(device) => device.clone(),
                None => {
                    return Err(format!(
                        "spec.config master {master:?} is a host interface and the annotation \
                         {HOST_DEVICE_ANNOTATION} does not record its parent"
                    ));
                }
            }
        } else {
            master.to_owned()
        };
        if parent.is_empty() {
            return Err("spec.config master is empty: a VLAN or VXLAN interface needs a parent".to_owned());
        }
        if parent == interface {
            return Err(format!("the host interface {interface} cannot be its own parent"));
        }
        Ok(HostInterface { name: interface, parent, kind, mtu })
    }

    /// What to write into the object so that `master` names its host interface; `None` when `master`
    /// names it already, or the object asks for no valid host interface.
    pub fn rewrite(&self) -> Option<Rewrite> {
        let host = self.host_request()?.ok()?;
        let mut config = self.members()?;
        if config.get("master").as_ref().and_then(Value::as_str) == Some(host.name.as_str()) {
            return None;
        }
        // Every `master` member is set, so that a decoder taking the first of duplicates reads it too.
        for (key, value) in &mut config.0 {
            if key == "master" {
                *value = Json::Scalar(Value::String(host.name.clone()));
            }
        }
        let config = serde_json::to_string(&Json::Object(config.0)).ok()?;
        Some(Rewrite { config, host_device: host.parent, host_interface: host.name })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nad(config: &str) -> Attachment {
        Attachment { namespace: "ns".into(), name: "n".into(), config: config.into(), annotations: BTreeMap::new() }
    }

    fn host(name: &str, parent: &str, kind: HostLinkKind, mtu: Option<u32>) -> HostInterface {
        HostInterface { name: name.into(), parent: parent.into(), kind, mtu }
    }

    #[test]
    fn a_single_plugin_with_master_and_vlan_or_vxlan_asks_for_a_host_interface() {
        let vlan = nad(r#"{"cniVersion":"0.3.1","name":"ext","type":"macvlan","master":"eth1","vlan":100}"#);
        assert_eq!(vlan.host_request(), Some(Ok(host("ext.100", "eth1", HostLinkKind::Vlan(100), None))));
        let vxlan = nad(r#"{"name":"ov","type":"ipvlan","master":"eth1","vxlan":42,"mtu":1450}"#);
        assert_eq!(vxlan.host_request(), Some(Ok(host("vx_ov", "eth1", HostLinkKind::Vxlan(42), Some(1450)))));
        // As for networks, vlan comes first when both are set.
        let both = nad(r#"{"name":"x","master":"eth1","vlan":7,"vxlan":42}"#);
        assert_eq!(both.host_request(), Some(Ok(host("x.7", "eth1", HostLinkKind::Vlan(7), None))));
        assert_eq!(vlan.key().to_string(), "NetworkAttachmentDefinition/ns/n");
    }

    #[test]
    fn other_configs_are_not_netwatchers_business() {
        for config in [
            "",
            "not json",
            "[1]",
            r#"{"name":"l","plugins":[{"type":"macvlan","master":"eth1","vlan":100}]}"#,
            r#"{"name":"b","type":"bridge","vlan":100}"#,
            r#"{"name":"m","type":"macvlan","master":"eth1"}"#,
            r#"{"name":"z","type":"macvlan","master":"eth1","vlan":0,"vxlan":null}"#,
        ] {
            assert_eq!(nad(config).host_request(), None, "{config}");
            assert_eq!(nad(config).rewrite(), None, "{config}");
        }
    }

    #[test]
    fn values_that_cannot_be_carried_out_are_invalid_naming_the_field() {
        for (config, field) in [
            (r#"{"name":"a","master":"eth1","vlan":5000}"#, "vlan"),
            (r#"{"name":"a","master":"eth1","vlan":"100"}"#, "vlan"),
            (r#"{"name":"a","master":"eth1","vxlan":16777216}"#, "vxlan"),
            (r#"{"name":"a","master":"eth1","vlan":-3}"#, "vlan"),
            (r#"{"master":"eth1","vlan":10}"#, "name"),
            (r#"{"name":"a-very-long-name","master":"eth1","vlan":10}"#, "name"),
            (r#"{"name":"a","master":7,"vlan":10}"#, "master"),
            (r#"{"name":"a","master":"","vlan":10}"#, "master"),
            (r#"{"name":"a","master":"eth1","vlan":10,"mtu":-1}"#, "mtu"),
            // The interface's own name without a recorded parent: never a VLAN on itself.
            (r#"{"name":"a","master":"a.10","vlan":10}"#, "host-device"),
        ] {
            let Some(Err(reason)) = nad(config).host_request() else { panic!("{config}") };
            assert!(reason.contains(field), "{config}: {reason}");
        }
    }

    #[test]
    fn the_rewrite_points_master_at_the_interface_and_keeps_everything_else() {
        let config = r#"{"cniVersion":"0.3.1","type":"macvlan","master":"eth1","name":"ext","vlan":100,"ipam":{"type":"host-local","ranges":[[{"subnet":"10.0.0.0/24"}]]},"zz":1.5}"#;
        let original = nad(config);
        let rewrite = original.rewrite().unwrap();
        assert_eq!(rewrite.config, config.replace(r#""master":"eth1""#, r#""master":"ext.100""#));
        assert_eq!((rewrite.host_device.as_str(), rewrite.host_interface.as_str()), ("eth1", "ext.100"));

        // Rewritten and annotated: the same interface on the original parent, and nothing to rewrite.
        let mut done = Attachment { config: rewrite.config.clone(), ..original.clone() };
        done.annotations.insert(HOST_DEVICE_ANNOTATION.into(), "eth1".into());
        done.annotations.insert(HOST_INTERFACE_ANNOTATION.into(), "ext.100".into());
        assert_eq!(done.host_request(), original.host_request());
        assert_eq!(done.rewrite(), None);

        // The VLAN id changed after the rewrite: the new interface is still on eth1, not on ext.100.
        let changed = Attachment { config: rewrite.config.replace(r#""vlan":100"#, r#""vlan":200"#), ..done.clone() };
        assert_eq!(changed.host_request(), Some(Ok(host("ext.200", "eth1", HostLinkKind::Vlan(200), None))));
        assert_eq!(changed.rewrite().unwrap().host_interface, "ext.200");

        // master set by hand to another device: that is the new parent.
        let moved = Attachment { config: rewrite.config.replace("ext.100", "eth2"), ..done };
        assert_eq!(moved.host_request(), Some(Ok(host("ext.100", "eth2", HostLinkKind::Vlan(100), None))));
        assert_eq!(moved.rewrite().unwrap().host_device, "eth2");
    }
}

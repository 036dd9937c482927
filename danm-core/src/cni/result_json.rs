//! The JSON forms of [`CniResult`] and [`IpamResult`] for every supported CNI version.
//!
//! Writing targets one version: before 1.0.0 each `ips` entry carries `"version": "4"|"6"`, before
//! 1.1.0 the 1.1.0-only interface and route fields are left out, and empty lists and an empty `dns`
//! are omitted. Reading accepts any supported version's shape; it does not keep the version.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::{ErrorCode, ParseError, decode_object, decode_slice};
use super::result::{CniResult, Dns, Interface, IpConfig, IpamResult, Route};
use super::version::CniVersion;

const WHAT: &str = "CNI result";

impl CniResult {
    /// The result as JSON of protocol `version`, with `cniVersion` set to it.
    pub fn to_json(&self, version: CniVersion) -> Value {
        render(&self.interfaces, &self.ips, &self.routes, &self.dns, version)
    }

    /// Reads a result of any supported version (e.g. a `prevResult` or a delegate's output).
    ///
    /// `cniVersion` is optional but, when present, must be a supported version (code 1 otherwise).
    /// An `ips[].version` key is accepted in every version and must agree with the address family;
    /// an `ips[].interface` index must point into `interfaces`. Other failures have code 6.
    pub fn from_json(value: &Value) -> Result<Self, ParseError> {
        decode_object::<WireResult>(value, WHAT).and_then(WireResult::into_result)
    }

    /// [`CniResult::from_json`] on raw bytes, such as a plugin's stdout.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ParseError> {
        decode_slice::<WireResult>(bytes, WHAT).and_then(WireResult::into_result)
    }
}

impl IpamResult {
    /// The abbreviated result as JSON of protocol `version`: no `interfaces`, no `ips[].interface`.
    pub fn to_json(&self, version: CniVersion) -> Value {
        let ips: Vec<IpConfig> = self.ips.iter().map(|ip| IpConfig { interface: None, ..ip.clone() }).collect();
        render(&[], &ips, &self.routes, &self.dns, version)
    }

    /// Reads an IPAM plugin's result; any `interfaces` and `ips[].interface` present are dropped.
    pub fn from_json(value: &Value) -> Result<Self, ParseError> {
        CniResult::from_json(value).map(|r| r.to_ipam())
    }

    /// [`IpamResult::from_json`] on raw bytes, such as an IPAM plugin's stdout.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ParseError> {
        CniResult::from_slice(bytes).map(|r| r.to_ipam())
    }
}

fn render(interfaces: &[Interface], ips: &[IpConfig], routes: &[Route], dns: &Dns, version: CniVersion) -> Value {
    let mut m = Map::new();
    m.insert("cniVersion".into(), Value::from(version.as_str()));
    if !interfaces.is_empty() {
        m.insert("interfaces".into(), interfaces.iter().map(|i| interface_json(i, version)).collect());
    }
    if !ips.is_empty() {
        m.insert("ips".into(), ips.iter().map(|i| ip_json(i, version)).collect());
    }
    if !routes.is_empty() {
        m.insert("routes".into(), routes.iter().map(|r| route_json(r, version)).collect());
    }
    if !dns.is_empty() {
        m.insert("dns".into(), dns_json(dns));
    }
    Value::Object(m)
}

fn put_str(m: &mut Map<String, Value>, key: &str, v: Option<&String>) {
    if let Some(v) = v {
        m.insert(key.into(), Value::from(v.as_str()));
    }
}

fn put_u32(m: &mut Map<String, Value>, key: &str, v: Option<u32>) {
    if let Some(v) = v {
        m.insert(key.into(), Value::from(v));
    }
}

fn put_list(m: &mut Map<String, Value>, key: &str, v: &[String]) {
    if !v.is_empty() {
        m.insert(key.into(), v.iter().map(|s| Value::from(s.as_str())).collect());
    }
}

fn interface_json(i: &Interface, version: CniVersion) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), Value::from(i.name.as_str()));
    put_str(&mut m, "mac", i.mac.as_ref());
    put_str(&mut m, "sandbox", i.sandbox.as_ref());
    if version.has_v1_1_fields() {
        put_u32(&mut m, "mtu", i.mtu);
        put_str(&mut m, "socketPath", i.socket_path.as_ref());
        put_str(&mut m, "pciID", i.pci_id.as_ref());
    }
    Value::Object(m)
}

fn ip_json(ip: &IpConfig, version: CniVersion) -> Value {
    let mut m = Map::new();
    if version.has_ip_version_field() {
        m.insert("version".into(), Value::from(if ip.address.addr().is_ipv4() { "4" } else { "6" }));
    }
    m.insert("address".into(), Value::from(ip.address.to_string()));
    if let Some(gw) = ip.gateway {
        m.insert("gateway".into(), Value::from(gw.to_string()));
    }
    if let Some(i) = ip.interface {
        m.insert("interface".into(), Value::from(i));
    }
    Value::Object(m)
}

fn route_json(r: &Route, version: CniVersion) -> Value {
    let mut m = Map::new();
    m.insert("dst".into(), Value::from(r.dst.to_string()));
    if let Some(gw) = r.gw {
        m.insert("gw".into(), Value::from(gw.to_string()));
    }
    if version.has_v1_1_fields() {
        put_u32(&mut m, "mtu", r.mtu);
        put_u32(&mut m, "advmss", r.advmss);
        put_u32(&mut m, "priority", r.priority);
        put_u32(&mut m, "table", r.table);
        put_u32(&mut m, "scope", r.scope);
    }
    Value::Object(m)
}

/// The JSON object of `d`, leaving out empty settings.
pub(super) fn dns_json(d: &Dns) -> Value {
    let mut m = Map::new();
    put_list(&mut m, "nameservers", &d.nameservers);
    put_str(&mut m, "domain", d.domain.as_ref());
    put_list(&mut m, "search", &d.search);
    put_list(&mut m, "options", &d.options);
    Value::Object(m)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireResult {
    #[serde(default)]
    cni_version: Option<String>,
    #[serde(default)]
    interfaces: Option<Vec<Interface>>,
    #[serde(default)]
    ips: Option<Vec<WireIp>>,
    #[serde(default)]
    routes: Option<Vec<Route>>,
    #[serde(default)]
    dns: Option<Dns>,
}

#[derive(Deserialize)]
struct WireIp {
    #[serde(default)]
    version: Option<String>,
    address: IpNet,
    #[serde(default)]
    gateway: Option<IpAddr>,
    #[serde(default)]
    interface: Option<usize>,
}

impl WireResult {
    fn into_result(self) -> Result<CniResult, ParseError> {
        if let Some(v) = &self.cni_version {
            v.parse::<CniVersion>().map_err(|e| ParseError {
                code: ErrorCode::INCOMPATIBLE_VERSION,
                what: WHAT,
                path: "cniVersion".into(),
                reason: e.to_string(),
            })?;
        }
        let interfaces = self.interfaces.unwrap_or_default();
        let mut ips = Vec::new();
        for (n, ip) in self.ips.unwrap_or_default().into_iter().enumerate() {
            if let Some(v) = &ip.version {
                let family = if ip.address.addr().is_ipv4() { "4" } else { "6" };
                if v != "4" && v != "6" {
                    return Err(ParseError::decode(WHAT, format!("ips[{n}].version"), format!("`{v}` is not 4 or 6")));
                }
                if v != family {
                    return Err(ParseError::decode(
                        WHAT,
                        format!("ips[{n}].version"),
                        format!("`{v}` contradicts address {} (IPv{family})", ip.address),
                    ));
                }
            }
            if let Some(i) = ip.interface
                && i >= interfaces.len()
            {
                return Err(ParseError::decode(
                    WHAT,
                    format!("ips[{n}].interface"),
                    format!("index {i} is out of range ({} interfaces)", interfaces.len()),
                ));
            }
            ips.push(IpConfig { address: ip.address, gateway: ip.gateway, interface: ip.interface });
        }
        Ok(CniResult { interfaces, ips, routes: self.routes.unwrap_or_default(), dns: self.dns.unwrap_or_default() })
    }
}

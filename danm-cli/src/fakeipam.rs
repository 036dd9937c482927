//! fakeipam: an IPAM plugin that allocates nothing and returns exactly the addresses its
//! configuration lists. DANM uses it to hand addresses from its own IPAM to delegated plugins.
//!
//! The plugin reads the `ipam` section of the network configuration on its stdin:
//!
//! ```json
//! {"type": "fakeipam",
//!  "ips": [{"ipcidr": "10.0.0.5/24", "version": 4, "gateway": "10.0.0.1"},
//!          {"ipcidr": "fd00::5/64", "version": 6}],
//!  "routes": [{"dst": "0.0.0.0/0", "gw": "10.0.0.1"}]}
//! ```
//!
//! `ADD` prints those addresses (and routes) as an IPAM result in the request's version; an empty
//! or missing `ips` list gives a result without addresses, which is how DANM delegates `none`.
//! `DEL`, `CHECK`, `STATUS` and `GC` succeed doing nothing.

use std::net::IpAddr;

use async_trait::async_trait;
use danm_core::cni::skel::{Plugin, Request};
use danm_core::cni::{CniError, CniResult, ErrorCode, IpConfig, IpamResult, Route};
use ipnet::IpNet;
use serde::Deserialize;

/// The `ipam` section fakeipam reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct FakeIpamConf {
    /// The addresses to return, in order.
    #[serde(default)]
    pub ips: Vec<FakeIp>,
    /// The routes to return.
    #[serde(default)]
    pub routes: Vec<Route>,
}

/// One address of a fakeipam configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FakeIp {
    /// `ipcidr`: the address with its subnet's prefix length.
    pub ipcidr: IpNet,
    /// `version`: 4 or 6, matching the address; optional.
    #[serde(default)]
    pub version: Option<u8>,
    /// `gateway`: the subnet's gateway; optional.
    #[serde(default)]
    pub gateway: Option<IpAddr>,
}

impl FakeIpamConf {
    /// Reads the `ipam` section of a request: code 7 when there is none or an entry's `version`
    /// contradicts its address, code 6 when it does not decode.
    pub fn from_request(req: &Request) -> Result<Self, CniError> {
        let Some(section) = &req.conf.ipam else {
            return Err(CniError::new(
                ErrorCode::INVALID_NETWORK_CONFIG,
                "fakeipam: the configuration has no `ipam` section",
            ));
        };
        let conf: FakeIpamConf = serde_json::from_value(section.clone()).map_err(|e| {
            CniError::new(ErrorCode::DECODING_FAILURE, "fakeipam: the `ipam` section does not decode")
                .with_details(e.to_string())
        })?;
        for (n, ip) in conf.ips.iter().enumerate() {
            let family = if ip.ipcidr.addr().is_ipv4() { 4 } else { 6 };
            if ip.version.is_some_and(|v| v != family) {
                let msg = format!("fakeipam: `ipam.ips[{n}].version` contradicts {} (IPv{family})", ip.ipcidr);
                return Err(CniError::new(ErrorCode::INVALID_NETWORK_CONFIG, msg));
            }
        }
        Ok(conf)
    }

    /// The IPAM result listing exactly these addresses and routes.
    pub fn result(&self) -> IpamResult {
        IpamResult {
            ips: self
                .ips
                .iter()
                .map(|ip| IpConfig { address: ip.ipcidr, gateway: ip.gateway, interface: None })
                .collect(),
            routes: self.routes.clone(),
            ..IpamResult::default()
        }
    }
}

/// The fakeipam plugin.
#[derive(Debug, Clone, Copy, Default)]
pub struct FakeIpam;

#[async_trait]
impl Plugin for FakeIpam {
    async fn add(&self, req: &Request) -> Result<CniResult, CniError> {
        Ok(FakeIpamConf::from_request(req)?.result().into())
    }

    async fn del(&self, _: &Request) -> Result<(), CniError> {
        Ok(())
    }

    async fn check(&self, _: &Request) -> Result<(), CniError> {
        Ok(())
    }

    async fn status(&self, _: &Request) -> Result<(), CniError> {
        Ok(())
    }

    async fn gc(&self, _: &Request) -> Result<(), CniError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use danm_core::cni::skel::{CNI_COMMAND, CNI_CONTAINERID, CNI_IFNAME, CNI_NETNS, Environment, dispatch};
    use serde_json::{Value, json};

    use super::*;

    fn add(version: &str, ipam: Option<Value>) -> (i32, Value) {
        let mut conf = json!({"cniVersion": version, "name": "n", "type": "bridge"});
        if let Some(ipam) = ipam {
            conf["ipam"] = ipam;
        }
        let env = Environment::new()
            .with_var(CNI_COMMAND, "ADD")
            .with_var(CNI_CONTAINERID, "c1")
            .with_var(CNI_NETNS, "/run/netns/p")
            .with_var(CNI_IFNAME, "eth0")
            .with_stdin(conf.to_string());
        let out = block_on(dispatch(&FakeIpam, &env));
        (out.exit_code, serde_json::from_slice(&out.stdout).unwrap())
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    }

    fn danm_ipam() -> Value {
        json!({"type": "fakeipam", "ips": [
            {"ipcidr": "10.0.0.5/24", "version": 4, "gateway": "10.0.0.1"},
            {"ipcidr": "fd00::5/64", "version": 6}
        ], "routes": [{"dst": "0.0.0.0/0", "gw": "10.0.0.1"}]})
    }

    #[test]
    fn add_prints_exactly_the_configured_addresses() {
        let (rc, out) = add("0.3.1", Some(danm_ipam()));
        assert_eq!(rc, 0);
        assert_eq!(
            out,
            json!({"cniVersion": "0.3.1",
                "ips": [{"version": "4", "address": "10.0.0.5/24", "gateway": "10.0.0.1"},
                        {"version": "6", "address": "fd00::5/64"}],
                "routes": [{"dst": "0.0.0.0/0", "gw": "10.0.0.1"}]})
        );
        let (_, out) =
            add("1.0.0", Some(json!({"type": "fakeipam", "ips": [{"ipcidr": "10.0.0.5/24", "version": 4}]})));
        assert_eq!(out, json!({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.5/24"}]}));
    }

    #[test]
    fn empty_list_gives_no_addresses() {
        assert_eq!(add("1.0.0", Some(json!({"type": "fakeipam", "ips": []}))), (0, json!({"cniVersion": "1.0.0"})));
        assert_eq!(add("0.4.0", Some(json!({"type": "fakeipam"}))), (0, json!({"cniVersion": "0.4.0"})));
    }

    #[test]
    fn bad_sections_fail_with_cni_codes() {
        for (ipam, code) in [
            (None, 7),
            (Some(json!({"type": "fakeipam", "ips": [{"ipcidr": "10.0.0.5"}]})), 6),
            (Some(json!({"type": "fakeipam", "ips": "x"})), 6),
            (Some(json!({"type": "fakeipam", "ips": [{"ipcidr": "10.0.0.5/24", "version": 6}]})), 7),
        ] {
            let (rc, out) = add("1.0.0", ipam.clone());
            assert_eq!((rc, out["code"].as_u64()), (1, Some(code)), "{ipam:?}: {out}");
        }
    }
}

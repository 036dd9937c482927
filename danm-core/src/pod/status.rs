//! The pod's `k8s.v1.cni.cncf.io/network-status` annotation, as the Network Plumbing Working Group
//! specifies it: one entry per interface DANM attached, which tools built for Multus read.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::cni::{CniResult, Dns};

/// The pod annotation holding a JSON list of [`NetworkStatus`] entries.
pub const NETWORK_STATUS_ANNOTATION: &str = "k8s.v1.cni.cncf.io/network-status";

/// One attached interface, as the `network-status` annotation lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkStatus {
    /// The network: `namespace/name` for namespaced networks, `name` for a ClusterNetwork.
    pub name: String,
    /// The interface name inside the pod.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interface: String,
    /// The addresses of the interface, without prefix lengths.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpAddr>,
    /// The hardware address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    /// Whether this is the pod's primary interface (`eth0`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
    /// The gateways of the interface's subnets. Older writers call this `default-route`; both are read.
    #[serde(default, alias = "default-route", skip_serializing_if = "Vec::is_empty")]
    pub gateway: Vec<IpAddr>,
    /// DNS settings the attachment returned.
    #[serde(default, skip_serializing_if = "dns_is_empty")]
    pub dns: Dns,
}

fn dns_is_empty(dns: &Dns) -> bool {
    *dns == Dns::default()
}

impl NetworkStatus {
    /// The entry for the interface `interface` of one attachment's CNI result on the network `network`.
    pub fn from_result(network: String, interface: &str, result: &CniResult, default: bool) -> Self {
        // The pod's side: a delegate may list host-side interfaces too.
        let own = result
            .interfaces
            .iter()
            .position(|i| i.name == interface)
            .or_else(|| result.interfaces.iter().position(|i| i.sandbox.is_some()));
        let ours = |ip: &&crate::cni::IpConfig| ip.interface.is_none() || ip.interface == own;
        let ips: Vec<_> = result.ips.iter().filter(ours).collect();
        let mut gateway: Vec<IpAddr> = Vec::new();
        for g in ips.iter().filter_map(|ip| ip.gateway) {
            if !gateway.contains(&g) {
                gateway.push(g);
            }
        }
        Self {
            name: network,
            interface: interface.to_owned(),
            ips: ips.iter().map(|ip| ip.address.addr()).collect(),
            mac: own.and_then(|i| result.interfaces[i].mac.clone()).unwrap_or_default(),
            default,
            gateway,
            dns: result.dns.clone(),
        }
    }
}

/// Reads the `network-status` annotation's value.
pub fn parse_network_status(value: &str) -> Result<Vec<NetworkStatus>, serde_json::Error> {
    serde_json::from_str(value)
}

/// Writes the `network-status` annotation's value.
pub fn network_status_to_annotation(entries: &[NetworkStatus]) -> String {
    serde_json::to_string(entries).expect("network status entries serialize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cni::{Interface, IpConfig};

    fn result() -> CniResult {
        CniResult {
            interfaces: vec![
                Interface { name: "veth1".into(), mac: Some("aa:aa:aa:aa:aa:aa".into()), ..Default::default() },
                Interface {
                    name: "ext0".into(),
                    mac: Some("02:00:00:00:00:01".into()),
                    sandbox: Some("/var/run/netns/p".into()),
                    ..Default::default()
                },
            ],
            ips: vec![
                IpConfig {
                    address: "10.0.0.5/24".parse().unwrap(),
                    gateway: Some("10.0.0.1".parse().unwrap()),
                    interface: Some(1),
                },
                IpConfig { address: "fd00::5/64".parse().unwrap(), gateway: None, interface: Some(1) },
                IpConfig { address: "192.168.9.9/24".parse().unwrap(), gateway: None, interface: Some(0) },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn an_entry_takes_the_pod_side_interface_and_its_addresses() {
        let s = NetworkStatus::from_result("ns/ext".into(), "ext0", &result(), false);
        assert_eq!(s.mac, "02:00:00:00:00:01");
        assert_eq!(s.ips, vec!["10.0.0.5".parse::<IpAddr>().unwrap(), "fd00::5".parse().unwrap()]);
        assert_eq!(s.gateway, vec!["10.0.0.1".parse::<IpAddr>().unwrap()]);
        let text = network_status_to_annotation(std::slice::from_ref(&s));
        assert_eq!(
            text,
            r#"[{"name":"ns/ext","interface":"ext0","ips":["10.0.0.5","fd00::5"],"mac":"02:00:00:00:00:01","gateway":["10.0.0.1"]}]"#
        );
        assert_eq!(parse_network_status(&text).unwrap(), vec![s]);
    }

    #[test]
    fn gateway_and_default_route_are_both_read() {
        for key in ["gateway", "default-route"] {
            let text = format!(r#"[{{"name":"a","interface":"eth0","default":true,"{key}":["10.1.0.1"]}}]"#);
            let parsed = parse_network_status(&text).unwrap();
            assert_eq!(parsed[0].gateway, vec!["10.1.0.1".parse::<IpAddr>().unwrap()], "{key}");
            assert!(parsed[0].default);
        }
        assert!(parse_network_status(r#"[{"interface":"eth0"}]"#).is_err(), "name is required");
    }
}

//! Delegate configurations: a static delegate's file with DANM's IPAM handed over through `fakeipam`,
//! and the configuration DANM generates for `sriov`.

use serde_json::{Map, Value, json};

use std::path::PathBuf;

use super::PodContext;
use crate::cni::{ConfFile, NetConf, NetConfList};
use crate::delegate::{CniCommand, Invocation};
use crate::ipam::Allocation;

/// The `ipam` section that hands DANM's addresses to a delegate: `fakeipam` echoes them.
pub fn fakeipam(allocation: &Allocation) -> Value {
    let ips: Vec<Value> = allocation
        .addresses()
        .map(|a| json!({"ipcidr": a.to_string(), "version": if a.addr().is_ipv4() { 4 } else { 6 }}))
        .collect();
    json!({"type": "fakeipam", "ips": ips})
}

/// A static delegate's configuration file as a list; with `ipam` replaced by [`fakeipam`] in every
/// plugin that has one (in the first plugin when none has) when DANM allocates.
pub fn static_list(bytes: &[u8], allocation: Option<&Allocation>) -> Result<NetConfList, String> {
    let mut list = ConfFile::from_slice(bytes).map_err(|e| e.to_string())?.into_list();
    if list.plugins.is_empty() {
        return Err("the configuration has no plugins".into());
    }
    if let Some(a) = allocation {
        let ipam = fakeipam(a);
        let mut replaced = false;
        for plugin in &mut list.plugins {
            if plugin.contains_key("ipam") {
                plugin.insert("ipam".into(), ipam.clone());
                replaced = true;
            }
        }
        if !replaced && let Some(first) = list.plugins.first_mut() {
            first.insert("ipam".into(), ipam);
        }
    }
    Ok(list)
}

/// Plugin types whose `master` names the host interface they sit on.
const MASTER_TYPES: [&str; 3] = ["macvlan", "ipvlan", "vlan"];
/// Plugin types that take the network's `mtu` (those above, and the bridge).
const MTU_TYPES: [&str; 4] = ["macvlan", "ipvlan", "vlan", "bridge"];

/// Gives a static delegate's plugins the network's host side, as the danm-cni line does: each plugin of
/// type macvlan, ipvlan or vlan gets `master` = `parent` (the network's VLAN/VXLAN host interface, else its
/// `host_device`) when the network names one, and those plugins and bridge ones get `mtu` = the network's
/// `mtu` when it sets one. What the file says is overwritten: the network is where an operator sets the
/// interface and MTU. Returns whether a `master` was set.
pub fn patch_static_list(list: &mut NetConfList, parent: Option<&str>, mtu: Option<i64>) -> bool {
    let mut mastered = false;
    for plugin in &mut list.plugins {
        let kind = plugin.get("type").and_then(Value::as_str).unwrap_or_default().to_owned();
        if let Some(parent) = parent.filter(|_| MASTER_TYPES.contains(&kind.as_str())) {
            plugin.insert("master".into(), json!(parent));
            mastered = true;
        }
        if let Some(mtu) = mtu.filter(|_| MTU_TYPES.contains(&kind.as_str())) {
            plugin.insert("mtu".into(), json!(mtu));
        }
    }
    mastered
}

/// The configuration DANM generates for an `sriov` attachment.
pub fn sriov_list(network_id: &str, device_id: &str, vlan: Option<i64>, allocation: &Allocation) -> NetConfList {
    let mut plugin = Map::new();
    plugin.insert("type".into(), json!("sriov"));
    plugin.insert("deviceID".into(), json!(device_id));
    if let Some(v) = vlan {
        plugin.insert("vlan".into(), json!(v));
    }
    plugin.insert("ipam".into(), fakeipam(allocation));
    NetConfList {
        cni_version: "0.3.1".into(),
        cni_versions: None,
        name: network_id.to_owned(),
        disable_check: false,
        disable_gc: false,
        load_only_inlined_plugins: false,
        plugins: vec![plugin],
    }
}

/// The run of one plugin configuration `conf` of a delegate list for the attachment `ifname` of `ctx`'s
/// container.
pub(super) fn invocation(
    conf: &NetConf,
    command: CniCommand,
    ctx: &PodContext,
    netns: Option<PathBuf>,
    ifname: &str,
) -> Invocation {
    Invocation {
        plugin: conf.plugin_type.clone(),
        command,
        container_id: ctx.container_id.clone(),
        netns,
        ifname: ifname.to_owned(),
        args: ctx.args.clone(),
        stdin: serde_json::to_vec(&conf.to_value()).unwrap_or_default(),
    }
}

/// A list as JSON, to keep in the DanmEp for DEL and CHECK.
pub fn list_to_value(list: &NetConfList) -> Value {
    let mut m = Map::new();
    m.insert("cniVersion".into(), json!(list.cni_version));
    m.insert("name".into(), json!(list.name));
    if list.disable_check {
        m.insert("disableCheck".into(), json!(true));
    }
    m.insert("plugins".into(), Value::Array(list.plugins.iter().cloned().map(Value::Object).collect()));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipam::Assignment;

    fn alloc() -> Allocation {
        Allocation {
            v4: Some(Assignment::Address { address: "10.0.0.5/24".parse().unwrap(), dynamic: true }),
            v6: Some(Assignment::None),
        }
    }

    #[test]
    fn static_configs_get_fakeipam() {
        let conf = br#"{"cniVersion":"0.4.0","name":"n","type":"bridge","bridge":"br0","ipam":{"type":"host-local"}}"#;
        let list = static_list(conf, Some(&alloc())).unwrap();
        assert_eq!(list.plugins[0]["ipam"], json!({"type":"fakeipam","ips":[{"ipcidr":"10.0.0.5/24","version":4}]}));
        let kept = static_list(conf, None).unwrap();
        assert_eq!(kept.plugins[0]["ipam"], json!({"type":"host-local"}));
        let chain =
            br#"{"cniVersion":"1.0.0","name":"c","plugins":[{"type":"macvlan","master":"x"},{"type":"tuning"}]}"#;
        let list = static_list(chain, Some(&alloc())).unwrap();
        assert!(list.plugins[0].contains_key("ipam") && !list.plugins[1].contains_key("ipam"));
        assert!(static_list(b"{", None).is_err());
        let back = NetConfList::from_value(&list_to_value(&list)).unwrap();
        assert_eq!(back.plugins, list.plugins);
    }

    #[test]
    fn static_configs_take_the_networks_master_and_mtu() {
        let chain = br#"{"cniVersion":"1.0.0","name":"c","plugins":[{"type":"macvlan","master":"eth9","mtu":9000},{"type":"tuning"}]}"#;
        let mut list = static_list(chain, None).unwrap();
        assert!(patch_static_list(&mut list, Some("ens3.200"), Some(1400)));
        assert_eq!((&list.plugins[0]["master"], &list.plugins[0]["mtu"]), (&json!("ens3.200"), &json!(1400)));
        assert!(!list.plugins[1].contains_key("master") && !list.plugins[1].contains_key("mtu"), "tuning untouched");
        // A network without host_device or mtu leaves the file as it is.
        let mut kept = static_list(chain, None).unwrap();
        assert!(!patch_static_list(&mut kept, None, None));
        assert_eq!((&kept.plugins[0]["master"], &kept.plugins[0]["mtu"]), (&json!("eth9"), &json!(9000)));
        // A bridge takes the MTU only; a plugin of another type neither.
        let bridge = br#"{"cniVersion":"0.4.0","name":"b","type":"bridge","bridge":"br0"}"#;
        let mut list = static_list(bridge, None).unwrap();
        assert!(!patch_static_list(&mut list, Some("ens3"), Some(1450)));
        assert_eq!(list.plugins[0].get("mtu"), Some(&json!(1450)));
        assert!(!list.plugins[0].contains_key("master"));
        let flannel = br#"{"cniVersion":"0.4.0","name":"f","type":"flannel"}"#;
        let mut list = static_list(flannel, None).unwrap();
        assert!(!patch_static_list(&mut list, Some("ens3"), Some(1450)));
        assert!(!list.plugins[0].contains_key("mtu") && !list.plugins[0].contains_key("master"));
    }
}

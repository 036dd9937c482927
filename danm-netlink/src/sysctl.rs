//! Per-interface sysctls, written under `/proc/sys/net` by a thread inside the pod's namespace.

use std::io;
use std::path::PathBuf;

use danm_core::provision::{Ipv6Mode, ProvisionError};

use crate::error::kernel;

/// The IPv6 sysctls upstream DANM sets on a pod interface, in the order it sets them.
pub(crate) fn ipv6_settings(mode: Ipv6Mode) -> &'static [(&'static str, &'static str)] {
    match mode {
        Ipv6Mode::Enabled => &[("disable_ipv6", "0"), ("autoconf", "0"), ("accept_ra", "0"), ("ndisc_notify", "1")],
        Ipv6Mode::Disabled => &[("disable_ipv6", "1")],
    }
}

/// Applies [`ipv6_settings`] to interface `ifname` of the calling thread's namespace. A kernel without
/// IPv6 has no such files: that is an error when IPv6 is wanted, and already the goal when it is not.
pub(crate) fn apply_ipv6(ifname: &str, mode: Ipv6Mode) -> Result<(), ProvisionError> {
    for (key, value) in ipv6_settings(mode) {
        match write("ipv6", ifname, key, value) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && mode == Ipv6Mode::Disabled => return Ok(()),
            Err(e) => return Err(kernel(format!("setting net.ipv6.conf.{ifname}.{key}={value}"), e)),
            Ok(()) => {}
        }
    }
    Ok(())
}

/// Writes `net.<family>.conf.<ifname>.<key>` in the calling thread's namespace.
pub(crate) fn write(family: &str, ifname: &str, key: &str, value: &str) -> io::Result<()> {
    let path: PathBuf = ["/proc/sys/net", family, "conf", ifname, key].iter().collect();
    std::fs::write(path, value)
}

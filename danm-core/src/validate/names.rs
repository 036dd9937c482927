//! Name checks: plugin names, kernel interface names, namespace names and device pool names.
//!
//! Each check takes the path of the field it is applied to, so that its error names that field.

use super::error::{ValidationError, Violation};

/// The longest kernel interface name, in bytes (`IFNAMSIZ` minus the terminating NUL).
pub const MAX_INTERFACE_NAME_LEN: usize = 15;

/// The longest Kubernetes namespace name (a DNS-1123 label).
const MAX_LABEL_LEN: usize = 63;

/// The longest DNS-1123 subdomain, the domain part of a device pool name.
const MAX_SUBDOMAIN_LEN: usize = 253;

/// Checks a plugin name: a `NetworkType` or a `NetworkID`, which name a CNI binary and a configuration file.
///
/// A plugin name is non-empty, made of ASCII letters, digits, `.`, `_` and `-` only, and is neither `.` nor
/// contains `..`, so it can never be a path, hold whitespace or control characters, or leave its directory.
pub fn plugin_name(field: &str, value: &str) -> Result<(), ValidationError> {
    let fail = |why: &str| {
        Err(ValidationError::new(
            field,
            Violation::InvalidPluginName,
            format!("{value:?} is not a valid plugin name: {why}"),
        ))
    };
    if value.is_empty() {
        return fail("it is empty");
    }
    if let Some(c) = value.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return fail(&format!("{c:?} is not allowed (only letters, digits, '.', '_' and '-' are)"));
    }
    if value == "." || value.contains("..") {
        return fail("it may not be \".\" or contain \"..\"");
    }
    Ok(())
}

/// Checks a kernel network interface name.
///
/// The kernel accepts names of 1 to 15 bytes that are not `.` or `..` and hold no `/`, `:`, whitespace or
/// NUL; control characters are refused as well.
pub fn interface_name(field: &str, value: &str) -> Result<(), ValidationError> {
    interface_name_reason(value).map_err(|why| {
        ValidationError::new(
            field,
            Violation::InvalidInterfaceName,
            format!("{value:?} is not a valid interface name: {why}"),
        )
    })
}

/// Why `value` is not a kernel interface name, if it is not.
pub(crate) fn interface_name_reason(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("it is empty".to_owned());
    }
    if value.len() > MAX_INTERFACE_NAME_LEN {
        return Err(format!("it is {} bytes long, the limit is {MAX_INTERFACE_NAME_LEN}", value.len()));
    }
    if value == "." || value == ".." {
        return Err("it may not be \".\" or \"..\"".to_owned());
    }
    if let Some(c) = value.chars().find(|&c| c == '/' || c == ':' || c.is_whitespace() || c.is_control()) {
        return Err(format!("{c:?} is not allowed"));
    }
    Ok(())
}

/// Checks a Kubernetes namespace name: a DNS-1123 label (1 to 63 lowercase letters, digits and `-`,
/// starting and ending with a letter or digit).
pub fn namespace_name(field: &str, value: &str) -> Result<(), ValidationError> {
    if is_dns1123_label(value) {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            Violation::InvalidNamespaceName,
            format!(
                "{value:?} is not a valid namespace name (1 to {MAX_LABEL_LEN} lowercase letters, digits and '-', \
                 starting and ending with a letter or digit)"
            ),
        ))
    }
}

/// Checks a device-plugin resource name such as `nokia.k8s.io/sriov_ens1f0`: a DNS-1123 subdomain, one `/`,
/// and a name of 1 to 63 letters, digits, `-`, `_` and `.` that starts and ends with a letter or digit.
pub fn device_pool_name(field: &str, value: &str) -> Result<(), ValidationError> {
    if is_device_pool_name(value) {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            Violation::InvalidDevicePoolName,
            format!(
                "{value:?} is not a valid device pool name (expected <domain>/<name>, e.g. nokia.k8s.io/sriov_ens1f0)"
            ),
        ))
    }
}

/// Whether `value` is a device-plugin resource name (see [`device_pool_name`]).
pub(crate) fn is_device_pool_name(value: &str) -> bool {
    let Some((domain, name)) = value.split_once('/') else {
        return false;
    };
    is_dns1123_subdomain(domain) && is_qualified_name_part(name)
}

fn is_dns1123_label(value: &str) -> bool {
    let bytes = value.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            bytes.len() <= MAX_LABEL_LEN && alnum(first) && alnum(last) && bytes.iter().all(|b| alnum(b) || *b == b'-')
        }
        _ => false,
    }
}

fn is_dns1123_subdomain(value: &str) -> bool {
    value.len() <= MAX_SUBDOMAIN_LEN && value.split('.').all(is_dns1123_label)
}

fn is_qualified_name_part(value: &str) -> bool {
    let bytes = value.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            bytes.len() <= MAX_LABEL_LEN
                && first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_names() {
        for ok in ["ipvlan", "sriov", "my-plugin_2.0", "A", "flannel"] {
            assert_eq!(plugin_name("f", ok), Ok(()), "{ok}");
        }
        for bad in ["", ".", "..", "a..b", "../bin/sh", "a/b", "/usr/bin/x", "a b", "a\tb", "a\u{0}b", "é"] {
            let err = plugin_name("spec.NetworkType", bad).unwrap_err();
            assert_eq!(err.field, "spec.NetworkType", "{bad:?}");
            assert_eq!(err.violation, Violation::InvalidPluginName, "{bad:?}");
        }
    }

    #[test]
    fn interface_names() {
        for ok in ["eth0", "ens1f0", "a", "123456789012345", "bond0.100", "vx_net1", "ümlaut"] {
            assert_eq!(interface_name("f", ok), Ok(()), "{ok}");
        }
        for bad in ["", ".", "..", "1234567890123456", "a/b", "a:b", "a b", "a\nb", "a\u{0}b", "a\u{7f}b"] {
            let err = interface_name("spec.Options.host_device", bad).unwrap_err();
            assert_eq!(err.field, "spec.Options.host_device", "{bad:?}");
            assert_eq!(err.violation, Violation::InvalidInterfaceName, "{bad:?}");
        }
        // 15 bytes is the limit in bytes, not characters.
        assert!(interface_name("f", "üüüüüüüü").is_err());
    }

    #[test]
    fn namespace_names() {
        for ok in ["default", "kube-system", "a", "0ab", &"a".repeat(63)] {
            assert_eq!(namespace_name("f", ok), Ok(()), "{ok}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", &"a".repeat(64)] {
            let err = namespace_name("spec.AllowedTenants[0]", bad).unwrap_err();
            assert_eq!(err.violation, Violation::InvalidNamespaceName, "{bad:?}");
            assert_eq!(err.field, "spec.AllowedTenants[0]");
        }
    }

    #[test]
    fn device_pool_names() {
        for ok in ["nokia.k8s.io/sriov_ens1f0", "intel.com/intel_sriov_netdevice", "a/B.c-d"] {
            assert_eq!(device_pool_name("f", ok), Ok(()), "{ok}");
        }
        for bad in ["", "sriov", "/x", "x/", "a/b/c", "Nokia.io/x", "a.io/_x", "a..io/x"] {
            let err = device_pool_name("spec.Options.device_pool", bad).unwrap_err();
            assert_eq!(err.violation, Violation::InvalidDevicePoolName, "{bad:?}");
            assert_eq!(err.field, "spec.Options.device_pool");
        }
    }
}

//! Turning netlink and system errors into [`ProvisionError`]s.

use danm_core::provision::ProvisionError;
use nix::errno::Errno;

/// A [`ProvisionError::Kernel`] for `operation`, caused by `source`.
pub(crate) fn kernel(
    operation: impl Into<String>,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> ProvisionError {
    ProvisionError::Kernel { operation: operation.into(), source: source.into() }
}

/// The errno a netlink request failed with, if it failed in the kernel.
pub(crate) fn errno(err: &rtnetlink::Error) -> Option<Errno> {
    match err {
        rtnetlink::Error::NetlinkError(msg) => msg.code.map(|code| Errno::from_raw(-code.get())),
        _ => None,
    }
}

/// Whether a netlink request failed because what it named is already gone.
pub(crate) fn is_gone(err: &rtnetlink::Error) -> bool {
    matches!(errno(err), Some(Errno::ENODEV | Errno::ENOENT | Errno::ESRCH | Errno::EADDRNOTAVAIL))
}

/// An [`ProvisionError::Invalid`] for interface `name`.
pub(crate) fn invalid(name: &str, reason: impl Into<String>) -> ProvisionError {
    ProvisionError::Invalid { name: name.to_owned(), reason: reason.into() }
}

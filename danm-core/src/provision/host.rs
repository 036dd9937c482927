//! The node's side of host interfaces: reading back the VLAN/VXLAN interfaces DANM manages, removing
//! one, and the recorded form of a holder.
//!
//! [`InterfaceProvisioner::ensure_host`](super::InterfaceProvisioner::ensure_host) and
//! [`release_host`](super::InterfaceProvisioner::release_host) change one interface for one holder;
//! [`HostInventory`] adds what a reconciler of a whole node needs on top: a view of every interface it
//! manages (so drift is seen) and a way to remove one whatever its holders say (so a changed interface
//! can be made again).

use std::collections::BTreeSet;

use async_trait::async_trait;

use super::{HostLinkKind, ProvisionError};

/// The longest holder recorded as itself; longer ones are recorded hashed (see [`holder_record`]).
pub const MAX_PLAIN_HOLDER: usize = 48;

/// How a holder is recorded on a host interface: the holder itself when it is short and plain (at most
/// [`MAX_PLAIN_HOLDER`] bytes of `[A-Za-z0-9._/@-]`), otherwise `#` and the 64-bit FNV-1a hash of it in
/// 16 lower-case hex digits.
///
/// Backends keep holders in this form (the netlink one in the interface's alias, which holds at most
/// 255 bytes), so a reconciler compares the holders it wants with what a backend reports through this
/// function. It is idempotent: a recorded form maps to itself, so a recorded holder can be handed back
/// to [`release_host`](super::InterfaceProvisioner::release_host).
pub fn holder_record(holder: &str) -> String {
    let plain = !holder.is_empty()
        && holder.len() <= MAX_PLAIN_HOLDER
        && holder.bytes().all(|b| b.is_ascii_alphanumeric() || b"._/@-".contains(&b));
    if plain || is_hashed(holder) { holder.to_owned() } else { format!("#{:016x}", fnv1a64(holder.as_bytes())) }
}

/// Whether `s` is already a hashed record: `#` and 16 lower-case hex digits.
fn is_hashed(s: &str) -> bool {
    s.len() == 17 && s.starts_with('#') && s.bytes().skip(1).all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// One DANM-managed host interface as the node has it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedHost {
    /// Its name.
    pub name: String,
    /// VLAN or VXLAN and the id; `None` when the interface of that name is now something else.
    pub kind: Option<HostLinkKind>,
    /// The name of the interface it sits on; `None` when there is none.
    pub parent: Option<String>,
    /// Its holders, in recorded form ([`holder_record`]).
    pub holders: BTreeSet<String>,
    /// Whether it is administratively up.
    pub up: bool,
    /// Its MTU.
    pub mtu: u32,
}

/// What a node has: the names of all its interfaces, and the host interfaces DANM manages among them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostScan {
    /// Every interface name of the host namespace (to tell whether a network's `host_device` is here).
    pub devices: BTreeSet<String>,
    /// The interfaces that carry DANM's holder record, whatever their holders.
    pub managed: Vec<ObservedHost>,
}

/// Reads and removes the host interfaces a backend manages; what a whole-node reconciler needs besides
/// [`InterfaceProvisioner`](super::InterfaceProvisioner)'s `ensure_host` and `release_host`.
///
/// - [`scan_hosts`](Self::scan_hosts) reports the node as it is; it changes nothing.
/// - [`remove_host`](Self::remove_host) removes a managed host interface, whatever its holders
///   ([`Removal::Always`]) or only while it records none ([`Removal::IfUnheld`]), deciding under the same
///   serialisation as `ensure_host`, so that a holder added since a scan keeps the interface. It is
///   idempotent (a missing interface is success, `false`) and never removes an interface the backend
///   does not manage (also `false`).
#[async_trait]
pub trait HostInventory: Send + Sync {
    /// The node's interfaces, and the managed host interfaces with their attributes and holders.
    async fn scan_hosts(&self) -> Result<HostScan, ProvisionError>;
    /// Removes managed host interface `name` as `when` allows; whether it was removed.
    async fn remove_host(&self, name: &str, when: Removal) -> Result<bool, ProvisionError>;
}

/// When [`HostInventory::remove_host`] removes an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Whatever its holders: to make it anew with other attributes.
    Always,
    /// Only while it records no holder: a holder added since the interface was last seen keeps it.
    IfUnheld,
}

macro_rules! forward_inventory {
    ($ty:ty) => {
        #[async_trait]
        impl<T: HostInventory + ?Sized> HostInventory for $ty {
            async fn scan_hosts(&self) -> Result<HostScan, ProvisionError> {
                (**self).scan_hosts().await
            }
            async fn remove_host(&self, name: &str, when: Removal) -> Result<bool, ProvisionError> {
                (**self).remove_host(name, when).await
            }
        }
    };
}

forward_inventory!(std::sync::Arc<T>);
forward_inventory!(&T);
forward_inventory!(Box<T>);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn plain_holders_are_kept_and_others_hashed() {
        assert_eq!(holder_record("DanmNet/default/external"), "DanmNet/default/external");
        assert_eq!(holder_record("net with, a comma"), format!("#{:016x}", fnv1a64(b"net with, a comma")));
        assert_eq!(holder_record(""), format!("#{:016x}", fnv1a64(b"")));
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(holder_record(&"x".repeat(49)).len(), 17);
        // Upper-case hex is not a record: it is hashed like any other holder with a '#'.
        assert_ne!(holder_record("#ABCDEF0123456789"), "#ABCDEF0123456789");
    }

    proptest! {
        #[test]
        fn recording_is_idempotent(holder in ".{0,80}") {
            let once = holder_record(&holder);
            prop_assert_eq!(holder_record(&once), once.clone());
            prop_assert!(once.len() <= MAX_PLAIN_HOLDER);
            prop_assert!(!once.contains(','));
        }
    }
}

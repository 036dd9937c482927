//! The users ("holders") of a host interface, kept in the interface's own alias (`IFLA_IFALIAS`).
//!
//! Why the alias: the record lives and dies with the interface, survives restarts of the process, needs
//! no state directory, and `ip link show` displays it. Its limit: the kernel keeps at most 255 bytes
//! there. So a holder is written in danm-core's recorded form ([`holder_record`]): as itself when it is
//! short and plain (at most 48 bytes of `[A-Za-z0-9._/@-]`), and otherwise as `#` and a 64-bit FNV-1a
//! hash in hex (17 bytes); either way at least 13 holders fit. A hash collision would merge two holders, so the interface would go with
//! the last of the two rather than with the last of all holders; with 64-bit hashes and a dozen holders
//! that is not a practical risk.

use std::collections::BTreeSet;

use danm_core::provision::holder_record;

/// What marks an alias as DANM's holder record.
pub(crate) const PREFIX: &str = "danm-holders:";
/// The longest alias the kernel stores (`IFALIASZ` less the terminating NUL).
pub(crate) const MAX_ALIAS: usize = 255;

/// What an interface's alias says about its holders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AliasState {
    /// No alias: nobody recorded a holder (an interface made by hand, or by upstream DANM).
    Free,
    /// DANM's holder record.
    Managed(Holders),
    /// Someone else's alias: the interface is not DANM's to record holders on or to remove.
    Foreign,
}

impl AliasState {
    /// Reads an interface's alias.
    pub(crate) fn parse(alias: Option<&str>) -> Self {
        match alias {
            None | Some("") => Self::Free,
            Some(alias) => match alias.strip_prefix(PREFIX) {
                Some(list) => {
                    Self::Managed(Holders(list.split(',').filter(|e| !e.is_empty()).map(str::to_owned).collect()))
                }
                None => Self::Foreign,
            },
        }
    }
}

/// A set of holders, in their recorded form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Holders(BTreeSet<String>);

impl Holders {
    /// Adds `holder`; whether it was new.
    pub(crate) fn insert(&mut self, holder: &str) -> bool {
        self.0.insert(holder_record(holder))
    }

    /// Removes `holder` (given as itself or in recorded form); whether it was there.
    pub(crate) fn remove(&mut self, holder: &str) -> bool {
        self.0.remove(&holder_record(holder))
    }

    /// The holders, in recorded form.
    pub(crate) fn into_records(self) -> BTreeSet<String> {
        self.0
    }

    /// Whether no holder is left.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many holders there are.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The alias recording these holders; `None` when it would not fit in [`MAX_ALIAS`] bytes.
    pub(crate) fn to_alias(&self) -> Option<String> {
        let alias = format!("{PREFIX}{}", self.0.iter().map(String::as_str).collect::<Vec<_>>().join(","));
        (alias.len() <= MAX_ALIAS).then_some(alias)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn aliases_are_told_apart() {
        assert_eq!(AliasState::parse(None), AliasState::Free);
        assert_eq!(AliasState::parse(Some("")), AliasState::Free);
        assert_eq!(AliasState::parse(Some("uplink to rack 4")), AliasState::Foreign);
        let AliasState::Managed(holders) = AliasState::parse(Some("danm-holders:a,b")) else { panic!() };
        assert_eq!(holders.len(), 2);
    }

    #[test]
    fn plain_holders_are_readable_and_others_hashed() {
        let mut holders = Holders::default();
        assert!(holders.insert("DanmNet/default/external"));
        assert!(holders.insert("net with, a comma"));
        assert!(!holders.insert("DanmNet/default/external"));
        let alias = holders.to_alias().unwrap();
        assert!(alias.starts_with("danm-holders:#"), "{alias}");
        assert!(alias.ends_with(",DanmNet/default/external"), "{alias}");
        // A recorded form names the same holder.
        assert!(holders.remove(&holder_record("net with, a comma")));
    }

    #[test]
    fn at_least_thirteen_holders_of_any_size_fit() {
        let mut holders = Holders::default();
        for i in 0..13 {
            holders.insert(&format!("ClusterNetwork/a-very-long-network-name-that-will-be-hashed-{i}"));
        }
        assert!(holders.to_alias().is_some());
        holders.insert("one-too-many-with-a-long-name-that-is-hashed-too-because-it-is-long");
        assert_eq!(holders.to_alias(), None);
    }

    proptest! {
        #[test]
        fn an_alias_reads_back_as_the_same_holders(names in prop::collection::btree_set(".{0,80}", 0..8)) {
            let mut holders = Holders::default();
            for name in &names {
                holders.insert(name);
            }
            if let Some(alias) = holders.to_alias() {
                prop_assert_eq!(AliasState::parse(Some(&alias)), AliasState::Managed(holders.clone()));
                for name in &names {
                    prop_assert!(holders.remove(name));
                }
                prop_assert!(holders.is_empty());
            }
        }
    }
}

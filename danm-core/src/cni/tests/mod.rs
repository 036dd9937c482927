//! Cross-module tests of the CNI types: version conversions of results, configuration parsing and
//! property tests.

mod danm_conf;
mod netconf;
mod props;
mod result_versions;
mod skel;

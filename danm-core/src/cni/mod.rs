//! The CNI protocol (specification 1.1.0, speaking versions 0.3.0 to 1.1.0): versions and their
//! negotiation, error objects, ADD results, network configurations, DANM's own configuration,
//! `CNI_ARGS` and the `GC` attachment list.
//!
//! Everything here is data and pure conversion: nothing reads the environment, stdin or files, and
//! nothing executes plugins; [`skel`] turns an already-collected plugin environment into a request
//! and a plugin's answer into the bytes to print. Results are held in one canonical shape
//! ([`CniResult`]) and rendered to, or read from, the JSON of any supported version.

mod args;
mod danm_conf;
mod error;
mod netconf;
mod result;
mod result_json;
pub mod skel;
mod version;

#[cfg(test)]
mod tests;

pub use args::{ATTACHMENTS_KEY_ALT, Attachment, CniArgs, CniArgsError, VALID_ATTACHMENTS_KEY, valid_attachments};
pub use danm_conf::{
    Backend, DEFAULT_CNI_DIR, DEFAULT_DATASTORE_PATH, DEFAULT_KUBELET_SOCKET, DEFAULT_TIMEOUT, DanmConf, LogLevel,
    MAX_TIMEOUT_SECONDS, NamingScheme,
};
pub use error::{CniError, ErrorCode, ParseError};
pub use netconf::{ConfFile, NetConf, NetConfList};
pub use result::{CniResult, Dns, Interface, IpConfig, IpamResult, Route};
pub use version::{CniVersion, UnsupportedVersion, VersionInfo, negotiate};

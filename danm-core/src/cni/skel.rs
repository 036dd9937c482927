//! The plugin side of the CNI protocol, without I/O: turning a plugin's environment variables and
//! stdin into a validated [`Request`], calling a [`Plugin`], and rendering what it returns as the
//! bytes to print and the exit code.
//!
//! The caller collects the `CNI_*` variables and stdin into an [`Environment`], runs [`dispatch`],
//! writes [`Output::stdout`] and exits with [`Output::exit_code`]. Reading the process environment,
//! stdin, and choosing an async runtime are not this module's business.
//!
//! The rules applied, per CNI specification 1.1.0:
//! - required variables per verb: `ADD`/`CHECK` need `CNI_COMMAND`, `CNI_CONTAINERID`, `CNI_NETNS`
//!   and `CNI_IFNAME`; `DEL` needs `CNI_COMMAND`, `CNI_CONTAINERID` and `CNI_IFNAME`; `GC`,
//!   `STATUS` and `VERSION` need only `CNI_COMMAND`. An empty variable counts as missing. Every
//!   missing or invalid variable is named in one error with code 4.
//! - `CNI_CONTAINERID` starts with an ASCII letter or digit followed by `[A-Za-z0-9_.-]`;
//!   `CNI_IFNAME` is at most 15 bytes, neither `.` nor `..`, without `/`, `:` or whitespace;
//!   `CNI_ARGS` is a valid `K=V;K=V` list. These three are read only by `ADD`, `CHECK` and `DEL`;
//!   `GC` and `STATUS` ignore them (and `CNI_NETNS`).
//! - every verb but `VERSION` reads its configuration from stdin: more than [`MAX_CONFIG_BYTES`]
//!   is code 7, content that does not decode is code 6, an unsupported `cniVersion` is code 1, and
//!   so is a version too old for the verb (`CHECK` needs 0.4.0, `STATUS` and `GC` need 1.1.0).
//!   A `GC` request's attachment list must decode too (code 6).
//! - `VERSION` is answered here, echoing the input's `cniVersion` when it is a supported one.

use std::collections::BTreeMap;
use std::path::PathBuf;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::args::CniArgs;
use super::error::{CniError, ErrorCode};
use super::netconf::NetConf;
use super::result::CniResult;
use super::version::{CniVersion, VersionInfo};
use crate::delegate::CniCommand;

/// The largest configuration accepted on stdin, in bytes (1 MiB).
pub const MAX_CONFIG_BYTES: usize = 1 << 20;
/// The longest interface name Linux accepts, in bytes (`IFNAMSIZ` less the terminating NUL).
pub const MAX_IFNAME_BYTES: usize = 15;

/// `CNI_COMMAND`: the verb.
pub const CNI_COMMAND: &str = "CNI_COMMAND";
/// `CNI_CONTAINERID`: the container (sandbox) ID.
pub const CNI_CONTAINERID: &str = "CNI_CONTAINERID";
/// `CNI_NETNS`: the path of the container's network namespace.
pub const CNI_NETNS: &str = "CNI_NETNS";
/// `CNI_IFNAME`: the interface name inside the container.
pub const CNI_IFNAME: &str = "CNI_IFNAME";
/// `CNI_ARGS`: extra `K=V;K=V` arguments.
pub const CNI_ARGS: &str = "CNI_ARGS";
/// `CNI_PATH`: the `:`-separated directories to search for plugin executables.
pub const CNI_PATH: &str = "CNI_PATH";

/// What a plugin process was given: its `CNI_*` environment variables and its stdin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    /// The environment variables (only the `CNI_*` ones matter).
    pub vars: BTreeMap<String, String>,
    /// Everything read from stdin (a reader should stop after [`MAX_CONFIG_BYTES`] + 1 bytes).
    pub stdin: Vec<u8>,
}

impl Environment {
    /// An environment with no variables and empty stdin.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same environment with variable `key` set to `value`.
    #[must_use]
    pub fn with_var(mut self, key: &str, value: &str) -> Self {
        self.vars.insert(key.to_owned(), value.to_owned());
        self
    }

    /// The same environment with `stdin` as its input.
    #[must_use]
    pub fn with_stdin(mut self, stdin: impl Into<Vec<u8>>) -> Self {
        self.stdin = stdin.into();
        self
    }

    /// The value of `key`; `None` when it is unset or empty.
    pub fn var(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }
}

/// A validated plugin request (any verb but `VERSION`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The verb.
    pub command: CniCommand,
    /// `CNI_CONTAINERID`; empty for `GC` and `STATUS`.
    pub container_id: String,
    /// `CNI_NETNS`; `None` when not given (always for `GC` and `STATUS`).
    pub netns: Option<PathBuf>,
    /// `CNI_IFNAME`; empty for `GC` and `STATUS`.
    pub ifname: String,
    /// `CNI_ARGS`; empty for `GC` and `STATUS`.
    pub args: CniArgs,
    /// `CNI_PATH`, split at `:`, empty entries dropped.
    pub path: Vec<PathBuf>,
    /// The raw configuration from stdin, as delegates must receive it.
    pub config: Vec<u8>,
    /// The decoded configuration.
    pub conf: NetConf,
    /// The protocol version of the request (its `cniVersion`): results and errors are printed in it.
    pub version: CniVersion,
}

/// What an environment asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `VERSION`: the answer to print.
    Version(VersionInfo),
    /// Any other verb: the request for the plugin.
    Plugin(Box<Request>),
}

impl Call {
    /// Validates an environment (see the module documentation for the rules).
    pub fn from_environment(env: &Environment) -> Result<Call, CniError> {
        let command = parse_command(env)?;
        if command == CniCommand::Version {
            return Ok(Call::Version(VersionInfo::ours(peek_version(env).map_or("", CniVersion::as_str))));
        }
        let ids = read_identity(env, command)?;
        if env.stdin.len() > MAX_CONFIG_BYTES {
            let msg = format!(
                "the configuration on stdin is {} bytes, more than the limit of {MAX_CONFIG_BYTES}",
                env.stdin.len()
            );
            return Err(CniError::new(ErrorCode::INVALID_NETWORK_CONFIG, msg));
        }
        let conf = NetConf::from_slice(&env.stdin)?;
        let version = conf.version()?;
        check_verb_version(command, version)?;
        if command == CniCommand::Gc {
            conf.valid_attachments()?;
        }
        let path = env.var(CNI_PATH).map(split_path).unwrap_or_default();
        Ok(Call::Plugin(Box::new(Request {
            command,
            container_id: ids.container_id,
            netns: ids.netns,
            ifname: ids.ifname,
            args: ids.args,
            path,
            config: env.stdin.clone(),
            conf,
            version,
        })))
    }
}

/// The version to print an error in: the input's `cniVersion` when it is a supported version and stdin
/// is within the limit, otherwise [`CniVersion::LATEST`].
pub fn reply_version(env: &Environment) -> CniVersion {
    peek_version(env).unwrap_or(CniVersion::LATEST)
}

fn peek_version(env: &Environment) -> Option<CniVersion> {
    if env.stdin.len() > MAX_CONFIG_BYTES {
        return None;
    }
    let value: Value = serde_json::from_slice(&env.stdin).ok()?;
    value.get("cniVersion")?.as_str()?.parse().ok()
}

fn parse_command(env: &Environment) -> Result<CniCommand, CniError> {
    let Some(raw) = env.var(CNI_COMMAND) else {
        return Err(env_error(&[CNI_COMMAND], format!("{CNI_COMMAND} is missing")));
    };
    CniCommand::parse(raw)
        .ok_or_else(|| env_error(&[CNI_COMMAND], format!("{CNI_COMMAND} `{}` is not a CNI verb", shown(raw))))
}

/// The per-attachment variables of a request.
struct Identity {
    container_id: String,
    netns: Option<PathBuf>,
    ifname: String,
    args: CniArgs,
}

fn read_identity(env: &Environment, command: CniCommand) -> Result<Identity, CniError> {
    let mut ids =
        Identity { container_id: String::new(), netns: None, ifname: String::new(), args: CniArgs::default() };
    if !matches!(command, CniCommand::Add | CniCommand::Check | CniCommand::Del) {
        return Ok(ids);
    }
    let mut bad: Vec<&str> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let mut fail = |var: &'static str, problem: String| {
        bad.push(var);
        problems.push(problem);
    };
    match env.var(CNI_CONTAINERID) {
        None => fail(CNI_CONTAINERID, format!("{CNI_CONTAINERID} is missing")),
        Some(id) => match container_id_problem(id) {
            Some(p) => fail(CNI_CONTAINERID, format!("{CNI_CONTAINERID} `{}` {p}", shown(id))),
            None => ids.container_id = id.to_owned(),
        },
    }
    match env.var(CNI_NETNS) {
        None if command != CniCommand::Del => fail(CNI_NETNS, format!("{CNI_NETNS} is missing")),
        None => {}
        Some(ns) => ids.netns = Some(PathBuf::from(ns)),
    }
    match env.var(CNI_IFNAME) {
        None => fail(CNI_IFNAME, format!("{CNI_IFNAME} is missing")),
        Some(name) => match ifname_problem(name) {
            Some(p) => fail(CNI_IFNAME, format!("{CNI_IFNAME} `{}` {p}", shown(name))),
            None => ids.ifname = name.to_owned(),
        },
    }
    match CniArgs::parse(env.var(CNI_ARGS).unwrap_or_default()) {
        Ok(args) => ids.args = args,
        Err(e) => fail(CNI_ARGS, shown(&e.to_string())),
    }
    if bad.is_empty() { Ok(ids) } else { Err(env_error(&bad, problems.join("; "))) }
}

/// Why `id` is not a valid `CNI_CONTAINERID`, if it is not.
pub fn container_id_problem(id: &str) -> Option<&'static str> {
    let mut bytes = id.bytes();
    match bytes.next() {
        None => Some("is empty"),
        Some(b) if !b.is_ascii_alphanumeric() => Some("must start with an ASCII letter or digit"),
        Some(_) if !bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) => {
            Some("may contain only ASCII letters, digits, `_`, `.` and `-`")
        }
        Some(_) => None,
    }
}

/// Why `name` is not a valid `CNI_IFNAME`, if it is not.
pub fn ifname_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name.len() > MAX_IFNAME_BYTES {
        Some("is longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("must not be `.` or `..`")
    } else if name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()) {
        Some("must not contain `/`, `:` or whitespace")
    } else {
        None
    }
}

fn check_verb_version(command: CniCommand, version: CniVersion) -> Result<(), CniError> {
    let needed = match command {
        CniCommand::Check => CniVersion::V0_4_0,
        CniCommand::Status | CniCommand::Gc => CniVersion::V1_1_0,
        _ => return Ok(()),
    };
    if version < needed {
        let msg = format!("CNI version {version} does not allow {command} (it needs {needed} or later)");
        return Err(CniError::new(ErrorCode::INCOMPATIBLE_VERSION, msg));
    }
    Ok(())
}

fn split_path(raw: &str) -> Vec<PathBuf> {
    raw.split(':').filter(|d| !d.is_empty()).map(PathBuf::from).collect()
}

fn env_error(vars: &[&str], details: String) -> CniError {
    let msg = format!("missing or invalid environment variables: {}", vars.join(", "));
    CniError::new(ErrorCode::INVALID_ENVIRONMENT_VARIABLES, msg).with_details(details)
}

/// `s` cut to 64 characters, for quoting untrusted values in messages.
fn shown(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

/// A CNI plugin: one method per verb but `VERSION`, which [`dispatch`] answers itself.
///
/// Each method receives a request validated by [`Call::from_environment`]. What the specification
/// asks of each: `add` creates the attachment and fails if it already exists; `del` undoes it and
/// must succeed when it is already gone (repeated `DEL`); `check` verifies it; `status` says whether
/// `add` could be served now (codes 50/51 when not); `gc` removes whatever is not listed in the
/// request's valid attachments and continues past errors.
#[async_trait]
pub trait Plugin: Send + Sync {
    /// `ADD`: the result is printed in the request's version.
    async fn add(&self, req: &Request) -> Result<CniResult, CniError>;
    /// `DEL`.
    async fn del(&self, req: &Request) -> Result<(), CniError>;
    /// `CHECK`.
    async fn check(&self, req: &Request) -> Result<(), CniError>;
    /// `STATUS`.
    async fn status(&self, req: &Request) -> Result<(), CniError>;
    /// `GC`.
    async fn gc(&self, req: &Request) -> Result<(), CniError>;
}

/// What a plugin process prints on stdout and its exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The bytes for stdout.
    pub stdout: Vec<u8>,
    /// The exit code: 0 on success, 1 on failure.
    pub exit_code: i32,
}

impl Output {
    /// Success, printing `stdout`.
    pub fn success(stdout: Vec<u8>) -> Self {
        Self { stdout, exit_code: 0 }
    }

    /// Failure, printing `error` as a CNI error object of `version`.
    pub fn failure(error: &CniError, version: CniVersion) -> Self {
        Self { stdout: error.to_json_string(version).into_bytes(), exit_code: 1 }
    }
}

fn version_json(info: &VersionInfo) -> Vec<u8> {
    json!({"cniVersion": info.cni_version, "supportedVersions": info.supported_versions}).to_string().into_bytes()
}

/// Runs one plugin invocation: validates `env`, answers `VERSION`, calls `plugin` for the other
/// verbs, and renders the outcome. `ADD` prints its result in the request's version; `DEL`, `CHECK`,
/// `STATUS` and `GC` print nothing on success; any error prints the CNI error object (in the
/// request's version, or [`reply_version`] when the request did not validate) and exits 1.
pub async fn dispatch<P: Plugin + ?Sized>(plugin: &P, env: &Environment) -> Output {
    let req = match Call::from_environment(env) {
        Ok(Call::Version(info)) => return Output::success(version_json(&info)),
        Ok(Call::Plugin(req)) => req,
        Err(e) => return Output::failure(&e, reply_version(env)),
    };
    let outcome = match req.command {
        CniCommand::Add => plugin.add(&req).await.map(|r| r.to_json(req.version).to_string().into_bytes()),
        CniCommand::Del => plugin.del(&req).await.map(|()| Vec::new()),
        CniCommand::Check => plugin.check(&req).await.map(|()| Vec::new()),
        CniCommand::Status => plugin.status(&req).await.map(|()| Vec::new()),
        CniCommand::Gc => plugin.gc(&req).await.map(|()| Vec::new()),
        CniCommand::Version => Ok(version_json(&VersionInfo::ours(req.version.as_str()))),
    };
    match outcome {
        Ok(stdout) => Output::success(stdout),
        Err(e) => Output::failure(&e, req.version),
    }
}

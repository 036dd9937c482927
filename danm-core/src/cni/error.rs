//! CNI errors: the error result a plugin prints on failure, its well-known codes, and the parse error
//! every decoder of this module returns.
//!
//! This module does not decide exit codes or where output goes; it only describes and (de)serialises
//! the error object `{"cniVersion": .., "code": N, "msg": .., "details": ..}`.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::version::CniVersion;

/// A CNI error code. Codes 0–99 are reserved for the specification; plugins use 100 and above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ErrorCode(u32);

impl ErrorCode {
    /// 1: the network configuration names a CNI version the plugin does not support.
    pub const INCOMPATIBLE_VERSION: ErrorCode = ErrorCode(1);
    /// 2: a field of the network configuration is not supported; the message names key and value.
    pub const UNSUPPORTED_FIELD: ErrorCode = ErrorCode(2);
    /// 3: the container is unknown or does not exist; the runtime need not clean it up.
    pub const UNKNOWN_CONTAINER: ErrorCode = ErrorCode(3);
    /// 4: a required environment variable (`CNI_COMMAND`, `CNI_ARGS`, ...) is missing or invalid;
    /// the message names the variables.
    pub const INVALID_ENVIRONMENT_VARIABLES: ErrorCode = ErrorCode(4);
    /// 5: an I/O failure, e.g. reading the configuration from stdin.
    pub const IO_FAILURE: ErrorCode = ErrorCode(5);
    /// 6: content could not be decoded, e.g. the configuration is not JSON of the expected shape.
    pub const DECODING_FAILURE: ErrorCode = ErrorCode(6);
    /// 7: the network configuration decoded but failed validation.
    pub const INVALID_NETWORK_CONFIG: ErrorCode = ErrorCode(7);
    /// 11: a transient condition; the runtime should retry later.
    pub const TRY_AGAIN_LATER: ErrorCode = ErrorCode(11);
    /// 50: the plugin cannot service `ADD` requests (a `STATUS` answer).
    pub const PLUGIN_NOT_AVAILABLE: ErrorCode = ErrorCode(50);
    /// 51: the plugin cannot service `ADD` requests and existing containers in the network may have
    /// limited connectivity (a `STATUS` answer).
    pub const PLUGIN_NOT_AVAILABLE_DEGRADED: ErrorCode = ErrorCode(51);
    /// The first code free for plugin-specific errors.
    pub const FIRST_PLUGIN_CODE: u32 = 100;

    /// A plugin-specific code; `None` when `n` is below 100, which would collide with the reserved range.
    pub const fn plugin(n: u32) -> Option<ErrorCode> {
        if n >= Self::FIRST_PLUGIN_CODE { Some(ErrorCode(n)) } else { None }
    }

    /// A code exactly as read from another plugin's output, reserved range included.
    pub const fn from_wire(n: u32) -> ErrorCode {
        ErrorCode(n)
    }

    /// The numeric value.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// Whether the code lies in the range reserved by the specification (0–99).
    pub const fn is_reserved(self) -> bool {
        self.0 < Self::FIRST_PLUGIN_CODE
    }

    /// The specification's description of a well-known code; `None` for others.
    pub const fn description(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "incompatible CNI version",
            2 => "unsupported field in network configuration",
            3 => "container unknown or does not exist",
            4 => "invalid necessary environment variables",
            5 => "I/O failure",
            6 => "failed to decode content",
            7 => "invalid network config",
            11 => "try again later",
            50 => "plugin not available",
            51 => "plugin not available, existing containers may have limited connectivity",
            _ => return None,
        })
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The error a CNI plugin reports: a code, a short message and optional longer details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniError {
    /// The error code.
    pub code: ErrorCode,
    /// A short message characterising the error.
    pub msg: String,
    /// A longer description; empty when there is none (then omitted on the wire).
    pub details: String,
}

impl CniError {
    /// An error with no details.
    pub fn new(code: ErrorCode, msg: impl Into<String>) -> Self {
        Self { code, msg: msg.into(), details: String::new() }
    }

    /// The same error with `details` set.
    #[must_use]
    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = details.into();
        self
    }

    /// The wire form for protocol version `version`; `details` is omitted when empty.
    pub fn to_json(&self, version: CniVersion) -> Value {
        let mut m = Map::new();
        m.insert("cniVersion".into(), Value::from(version.as_str()));
        m.insert("code".into(), Value::from(self.code.get()));
        m.insert("msg".into(), Value::from(self.msg.as_str()));
        if !self.details.is_empty() {
            m.insert("details".into(), Value::from(self.details.as_str()));
        }
        Value::Object(m)
    }

    /// [`CniError::to_json`] rendered as a compact JSON string.
    pub fn to_json_string(&self, version: CniVersion) -> String {
        self.to_json(version).to_string()
    }

    /// Parses the error object another plugin printed on stdout.
    ///
    /// `code` is required; `msg` and `details` default to empty and `cniVersion` is not checked
    /// (a failing delegate may not even agree on the version).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ParseError> {
        #[derive(Deserialize)]
        struct Wire {
            code: u32,
            #[serde(default)]
            msg: Option<String>,
            #[serde(default)]
            details: Option<String>,
        }
        let wire: Wire = decode_slice(bytes, "CNI error output")?;
        Ok(Self {
            code: ErrorCode::from_wire(wire.code),
            msg: wire.msg.unwrap_or_default(),
            details: wire.details.unwrap_or_default(),
        })
    }
}

impl fmt::Display for CniError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CNI error {}: {}", self.code, self.msg)?;
        if !self.details.is_empty() {
            write!(f, " ({})", self.details)?;
        }
        Ok(())
    }
}

impl std::error::Error for CniError {}

/// Why a configuration, result or error object could not be read.
///
/// `what` names the document (e.g. `network config`, `DANM config`, `CNI result`) and `path` the
/// offending field as a JSON path (empty when the document as a whole is at fault). `code` is the
/// CNI code the failure maps to: 6 when the content does not decode, 7 when a configuration decodes
/// but is invalid, 1 when its version is unsupported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {}{reason}", if path.is_empty() { String::new() } else { format!("`{path}`: ") })]
pub struct ParseError {
    /// The CNI code this failure maps to.
    pub code: ErrorCode,
    /// The kind of document being read.
    pub what: &'static str,
    /// The JSON path of the offending field, e.g. `plugins[1].type`; empty for the whole document.
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ParseError {
    /// A decoding failure (code 6).
    pub fn decode(what: &'static str, path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { code: ErrorCode::DECODING_FAILURE, what, path: path.into(), reason: reason.into() }
    }

    /// A validation failure of a configuration (code 7).
    pub fn invalid(what: &'static str, path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { code: ErrorCode::INVALID_NETWORK_CONFIG, what, path: path.into(), reason: reason.into() }
    }
}

impl ParseError {
    /// The same failure seen from an enclosing document `what`, with `prefix` (the path of the
    /// embedded part, e.g. `prevResult`) prepended to the path.
    pub(crate) fn within(self, what: &'static str, prefix: &str) -> Self {
        let path = match self.path.as_str() {
            "" => prefix.to_owned(),
            p if p.starts_with('[') => format!("{prefix}{p}"),
            p => format!("{prefix}.{p}"),
        };
        Self { what, path, ..self }
    }
}

impl From<ParseError> for CniError {
    fn from(e: ParseError) -> Self {
        CniError::new(e.code, e.to_string())
    }
}

/// Turns a `serde_path_to_error` failure into a decode [`ParseError`] naming the JSON path.
pub(crate) fn path_error(what: &'static str, e: serde_path_to_error::Error<serde_json::Error>) -> ParseError {
    let path = e.path().to_string();
    let path = if path == "." { String::new() } else { path };
    ParseError::decode(what, path, e.into_inner().to_string())
}

/// Parses `bytes` as one JSON document (syntax only).
pub(crate) fn decode_json(bytes: &[u8], what: &'static str) -> Result<Value, ParseError> {
    serde_json::from_slice(bytes).map_err(|e| ParseError::decode(what, "", e.to_string()))
}

/// Decodes an already-parsed JSON value into `T`, naming the path of the first bad field on failure.
pub(crate) fn decode_value<T: serde::de::DeserializeOwned>(value: &Value, what: &'static str) -> Result<T, ParseError> {
    serde_path_to_error::deserialize(value).map_err(|e| path_error(what, e))
}

/// [`decode_value`] for documents that must be JSON objects (serde would also accept arrays for structs).
pub(crate) fn decode_object<T: serde::de::DeserializeOwned>(
    value: &Value,
    what: &'static str,
) -> Result<T, ParseError> {
    if !value.is_object() {
        return Err(ParseError::decode(what, "", "expected a JSON object"));
    }
    decode_value(value, what)
}

/// Parses `bytes` as a JSON object and decodes it into `T`, naming the path of the first bad field.
pub(crate) fn decode_slice<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &'static str) -> Result<T, ParseError> {
    decode_object(&decode_json(bytes, what)?, what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wire_format_omits_empty_details() {
        let e = CniError::new(ErrorCode::INVALID_NETWORK_CONFIG, "Invalid Configuration");
        assert_eq!(
            e.to_json(CniVersion::V1_1_0),
            json!({"cniVersion": "1.1.0", "code": 7, "msg": "Invalid Configuration"})
        );
        let e = e.with_details("Network 192.168.0.0/31 too small to allocate from.");
        assert_eq!(
            e.to_json(CniVersion::V0_4_0),
            json!({
                "cniVersion": "0.4.0",
                "code": 7,
                "msg": "Invalid Configuration",
                "details": "Network 192.168.0.0/31 too small to allocate from."
            })
        );
        let s = e.to_json_string(CniVersion::V1_0_0);
        assert!(s.starts_with('{') && s.contains("\"code\":7"));
    }

    #[test]
    fn parses_delegate_output() {
        let e = CniError::from_slice(br#"{"cniVersion":"1.0.0","code":11,"msg":"busy","details":"later"}"#).unwrap();
        assert_eq!(e, CniError::new(ErrorCode::TRY_AGAIN_LATER, "busy").with_details("later"));
        let e = CniError::from_slice(br#"{"code":123}"#).unwrap();
        assert_eq!((e.code.get(), e.msg.as_str()), (123, ""));
        let bad = CniError::from_slice(br#"{"code":"x"}"#).unwrap_err();
        assert_eq!((bad.code, bad.path.as_str()), (ErrorCode::DECODING_FAILURE, "code"));
        assert!(CniError::from_slice(b"{}").is_err());
        assert!(CniError::from_slice(br#"{"code":1} trailing"#).is_err());
    }

    #[test]
    fn codes() {
        assert_eq!(ErrorCode::plugin(99), None);
        assert_eq!(ErrorCode::plugin(100).map(ErrorCode::get), Some(100));
        assert!(ErrorCode::DECODING_FAILURE.is_reserved());
        assert!(ErrorCode::plugin(150).is_some_and(|c| !c.is_reserved() && c.description().is_none()));
        for (code, n) in [
            (ErrorCode::INCOMPATIBLE_VERSION, 1),
            (ErrorCode::UNSUPPORTED_FIELD, 2),
            (ErrorCode::UNKNOWN_CONTAINER, 3),
            (ErrorCode::INVALID_ENVIRONMENT_VARIABLES, 4),
            (ErrorCode::IO_FAILURE, 5),
            (ErrorCode::DECODING_FAILURE, 6),
            (ErrorCode::INVALID_NETWORK_CONFIG, 7),
            (ErrorCode::TRY_AGAIN_LATER, 11),
            (ErrorCode::PLUGIN_NOT_AVAILABLE, 50),
            (ErrorCode::PLUGIN_NOT_AVAILABLE_DEGRADED, 51),
        ] {
            assert_eq!(code.get(), n);
            assert!(code.description().is_some());
        }
    }

    #[test]
    fn display_and_conversion() {
        let e = CniError::new(ErrorCode::IO_FAILURE, "cannot read stdin").with_details("EOF");
        assert_eq!(e.to_string(), "CNI error 5: cannot read stdin (EOF)");
        let p = ParseError::invalid("DANM config", "namingScheme", "must be \"\" or \"legacy\"");
        assert_eq!(p.to_string(), "DANM config: `namingScheme`: must be \"\" or \"legacy\"");
        let c = CniError::from(p);
        assert_eq!(c.code, ErrorCode::INVALID_NETWORK_CONFIG);
        assert!(c.msg.contains("namingScheme"));
        let whole = ParseError::decode("CNI result", "", "expected value");
        assert_eq!(whole.to_string(), "CNI result: expected value");
    }
}

//! Field paths in error messages: `danm.k8s.io/interfaces[1].ip`, `spec.Options.cidr`,
//! `proutes["10.0.0.0/8"]`.
//!
//! A path is built as a string: identifier-like keys are appended as `.key`, any other key (one holding a
//! dot, a slash, a quote, ...) as `["key"]` with Rust string escaping, and sequence positions as `[i]`.
//! This module only renders paths; it decides nothing.

use std::fmt::Write as _;

use serde_path_to_error::{Path, Segment};

/// Whether `key` can be shown after a dot without ambiguity.
fn is_plain(key: &str) -> bool {
    let mut chars = key.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Appends the map key or struct field `key` to `out`.
pub(crate) fn push_key(out: &mut String, key: &str) {
    if is_plain(key) {
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(key);
    } else {
        // Writing to a String cannot fail.
        let _ = write!(out, "[{key:?}]");
    }
}

/// Appends the sequence position `index` to `out`.
pub(crate) fn push_index(out: &mut String, index: usize) {
    let _ = write!(out, "[{index}]");
}

/// `prefix` followed by the key `key`.
pub(crate) fn with_key(prefix: &str, key: &str) -> String {
    let mut out = prefix.to_owned();
    push_key(&mut out, key);
    out
}

/// `prefix` followed by every segment of a path that `serde_path_to_error` recorded.
pub(crate) fn extend(prefix: &str, path: &Path) -> String {
    let mut out = prefix.to_owned();
    for segment in path {
        match segment {
            Segment::Seq { index } => push_index(&mut out, *index),
            Segment::Map { key } => push_key(&mut out, key),
            Segment::Enum { variant } => push_key(&mut out, variant),
            Segment::Unknown => push_key(&mut out, "?"),
        }
    }
    out
}

/// How a path is shown in a message: the path itself, or `(root)` when it is empty.
pub(crate) fn show(path: &str) -> &str {
    if path.is_empty() { "(root)" } else { path }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_plain_and_quoted_keys() {
        let mut p = String::from("danm.k8s.io/interfaces");
        push_index(&mut p, 1);
        push_key(&mut p, "proutes");
        push_key(&mut p, "10.0.0.0/8");
        assert_eq!(p, r#"danm.k8s.io/interfaces[1].proutes["10.0.0.0/8"]"#);
        assert_eq!(with_key("", "spec"), "spec");
        assert_eq!(with_key("spec", "allocation_pool_v6"), "spec.allocation_pool_v6");
        assert_eq!(with_key("", "a\"b"), r#"["a\"b"]"#);
        assert_eq!(with_key("x", "9lives"), r#"x["9lives"]"#);
        assert_eq!(show(""), "(root)");
    }
}

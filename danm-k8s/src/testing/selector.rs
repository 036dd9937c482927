//! Label and field selectors, parsed from their query-string form and matched against JSON objects.

use serde_json::Value;

/// One requirement of a label selector.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Requirement {
    /// `key=value` or `key==value`.
    Equals(String, String),
    /// `key!=value` (also true when the label is absent).
    NotEquals(String, String),
    /// `key in (a,b)`.
    In(String, Vec<String>),
    /// `key notin (a,b)` (also true when the label is absent).
    NotIn(String, Vec<String>),
    /// `key`.
    Exists(String),
    /// `!key`.
    DoesNotExist(String),
    /// `key>n` (the label is an integer greater than n).
    GreaterThan(String, i64),
    /// `key<n` (the label is an integer less than n).
    LessThan(String, i64),
}

/// A label selector: every requirement must hold. The empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LabelSelector(Vec<Requirement>);

impl LabelSelector {
    /// Parses the `labelSelector` grammar of `k8s.io/apimachinery/pkg/labels`.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        split_top_level(text)?.into_iter().map(parse_requirement).collect::<Result<_, _>>().map(Self)
    }

    /// Whether the labels of `object` satisfy every requirement.
    pub(crate) fn matches(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels");
        let label = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        self.0.iter().all(|requirement| match requirement {
            Requirement::Equals(key, value) => label(key) == Some(value.as_str()),
            Requirement::NotEquals(key, value) => label(key) != Some(value.as_str()),
            Requirement::In(key, values) => label(key).is_some_and(|l| values.iter().any(|v| v == l)),
            Requirement::NotIn(key, values) => !label(key).is_some_and(|l| values.iter().any(|v| v == l)),
            Requirement::Exists(key) => label(key).is_some(),
            Requirement::DoesNotExist(key) => label(key).is_none(),
            Requirement::GreaterThan(key, n) => label(key).and_then(|l| l.parse::<i64>().ok()).is_some_and(|l| l > *n),
            Requirement::LessThan(key, n) => label(key).and_then(|l| l.parse::<i64>().ok()).is_some_and(|l| l < *n),
        })
    }
}

/// Splits on the commas that are not inside a `( ... )` value set.
fn split_top_level(text: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0_u32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.checked_sub(1).ok_or_else(|| format!("unbalanced ')' in {text:?}"))?,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!("unbalanced '(' in {text:?}"));
    }
    parts.push(&text[start..]);
    Ok(parts)
}

fn parse_requirement(text: &str) -> Result<Requirement, String> {
    let text = text.trim();
    if let Some(key) = text.strip_prefix('!') {
        return Ok(Requirement::DoesNotExist(key_of(key.trim())?));
    }
    let key_end = text.find(|c: char| c.is_whitespace() || "=!<>(".contains(c)).unwrap_or(text.len());
    let key = key_of(&text[..key_end])?;
    let rest = text[key_end..].trim_start();
    let requirement = if rest.is_empty() {
        Requirement::Exists(key)
    } else if let Some(value) = rest.strip_prefix("==").or_else(|| rest.strip_prefix('=')) {
        Requirement::Equals(key, value_of(value)?)
    } else if let Some(value) = rest.strip_prefix("!=") {
        Requirement::NotEquals(key, value_of(value)?)
    } else if let Some(value) = rest.strip_prefix('>') {
        Requirement::GreaterThan(key, integer_of(value)?)
    } else if let Some(value) = rest.strip_prefix('<') {
        Requirement::LessThan(key, integer_of(value)?)
    } else if let Some(set) = operator_word(rest, "notin") {
        Requirement::NotIn(key, set_of(set)?)
    } else if let Some(set) = operator_word(rest, "in") {
        Requirement::In(key, set_of(set)?)
    } else {
        return Err(format!("unable to parse requirement {text:?}"));
    };
    Ok(requirement)
}

/// `rest` without the leading operator `word`, if `word` is followed by a space or `(`.
fn operator_word<'a>(rest: &'a str, word: &str) -> Option<&'a str> {
    rest.strip_prefix(word).filter(|after| after.starts_with(|c: char| c.is_whitespace() || c == '('))
}

fn key_of(key: &str) -> Result<String, String> {
    if key.is_empty() || key.contains(|c: char| c.is_whitespace() || "=!<>(),".contains(c)) {
        return Err(format!("invalid label key {key:?}"));
    }
    Ok(key.to_owned())
}

fn value_of(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.contains(|c: char| c.is_whitespace() || "=!<>(),".contains(c)) {
        return Err(format!("invalid label value {value:?}"));
    }
    Ok(value.to_owned())
}

fn integer_of(value: &str) -> Result<i64, String> {
    value.trim().parse().map_err(|_| format!("{value:?} is not an integer"))
}

fn set_of(set: &str) -> Result<Vec<String>, String> {
    let inner = set
        .trim()
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("expected a value set in parentheses, got {set:?}"))?;
    inner.split(',').map(value_of).collect()
}

/// A field selector: `path=value`, `path==value` or `path!=value`, comma-separated, every one must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parses a `fieldSelector`; `path` is any dotted path of the object, e.g. `metadata.name` or `spec.nodeName`.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let term = |term: &str| {
            let (path, equal, value) = if let Some((path, value)) = term.split_once("!=") {
                (path, false, value)
            } else if let Some((path, value)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (path, true, value)
            } else {
                return Err(format!("invalid field selector term {term:?}"));
            };
            let path = path.trim();
            if path.is_empty() {
                return Err(format!("invalid field selector term {term:?}"));
            }
            Ok((path.to_owned(), equal, value.trim().to_owned()))
        };
        text.split(',').map(term).collect::<Result<_, _>>().map(Self)
    }

    /// Whether `object` satisfies every term; a missing field reads as the empty string.
    pub(crate) fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(path, equal, value)| (field(object, path) == *value) == *equal)
    }
}

/// Which objects a list or watch sees: its namespace (if any) and its label and field selectors.
#[derive(Clone, Debug, Default)]
pub(crate) struct Filter {
    /// Only objects in this namespace; `None` for all.
    pub(crate) namespace: Option<String>,
    /// The `labelSelector`.
    pub(crate) labels: LabelSelector,
    /// The `fieldSelector`.
    pub(crate) fields: FieldSelector,
}

impl Filter {
    /// Whether `object` is seen.
    pub(crate) fn matches(&self, object: &Value) -> bool {
        let in_namespace = self
            .namespace
            .as_deref()
            .is_none_or(|ns| object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("") == ns);
        in_namespace && self.labels.matches(object) && self.fields.matches(object)
    }
}

/// The value at dotted `path` as a string: strings as they are, numbers and booleans printed, else empty.
fn field(object: &Value, path: &str) -> String {
    match path.split('.').try_fold(object, |v, segment| v.get(segment)) {
        Some(Value::String(s)) => s.clone(),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn labelled(labels: Value) -> Value {
        json!({ "metadata": { "name": "o", "labels": labels }, "spec": { "replicas": 3, "node": "n1" } })
    }

    fn select(selector: &str, labels: Value) -> bool {
        LabelSelector::parse(selector).unwrap().matches(&labelled(labels))
    }

    #[test]
    fn equality_forms() {
        assert!(select("tier=web", json!({"tier": "web"})));
        assert!(select("tier==web", json!({"tier": "web"})));
        assert!(!select("tier=web", json!({"tier": "db"})));
        assert!(select("tier!=web", json!({"tier": "db"})));
        assert!(select("tier!=web", json!({})));
        assert!(select("tier=", json!({"tier": ""})));
    }

    #[test]
    fn set_forms() {
        assert!(select("tier in (web,db)", json!({"tier": "db"})));
        assert!(select("tier in ( web , db )", json!({"tier": "web"})));
        assert!(select("tier in(web)", json!({"tier": "web"})));
        assert!(!select("tier in (web,db)", json!({})));
        assert!(select("tier notin (web,db)", json!({"tier": "cache"})));
        assert!(select("tier notin (web,db)", json!({})));
        assert!(!select("tier notin (web,db)", json!({"tier": "web"})));
    }

    #[test]
    fn existence_numbers_and_combinations() {
        assert!(select("danm.k8s.io/net", json!({"danm.k8s.io/net": "x"})));
        assert!(select("!tier", json!({"app": "x"})));
        assert!(!select("!tier", json!({"tier": "x"})));
        assert!(select("gen>2,gen<4", json!({"gen": "3"})));
        assert!(select("app=a,tier in (web,db),!legacy", json!({"app": "a", "tier": "db"})));
        assert!(!select("app=a,tier in (web,db),!legacy", json!({"app": "a", "tier": "db", "legacy": "y"})));
        assert!(select("", json!({})));
    }

    #[test]
    fn rejects_malformed_selectors() {
        for bad in ["tier in web", "tier in (web", "tier)", "=web", "tier=a b", "tier>x", "a,,b"] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn field_selectors() {
        let object = labelled(json!({}));
        let select = |s: &str| FieldSelector::parse(s).unwrap().matches(&object);
        assert!(select("metadata.name=o"));
        assert!(select("metadata.name==o,spec.node!=n2"));
        assert!(select("spec.replicas=3"));
        assert!(select("metadata.namespace="));
        assert!(!select("metadata.name!=o"));
        assert!(FieldSelector::parse("metadata.name").is_err());
    }
}

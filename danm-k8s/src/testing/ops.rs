//! The write verbs and their API-server semantics: system metadata, resourceVersion preconditions, the
//! status subresource, generation, no-op writes and finalizers.

use serde_json::{Map, Value, json};

use super::error::ApiError;
use super::patch::PatchBody;
use super::resource::ResourceType;
use super::state::{ChangeKind, State};

/// Which part of an object a write may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    /// The main resource: everything except `.status` when the kind has a status subresource.
    Main,
    /// The `status` subresource: only `.status`.
    Status,
    /// Everything, `.status` included (direct seeding, not a client request).
    Whole,
}

/// Metadata the server owns: kept from the stored object whatever a write sends.
const SYSTEM_FIELDS: [&str; 5] =
    ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"];

fn text<'a>(object: &'a Value, pointer: &str) -> Option<&'a str> {
    object.pointer(pointer).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn metadata(object: &mut Value) -> &mut Map<String, Value> {
    if !object["metadata"].is_object() {
        object["metadata"] = json!({});
    }
    match &mut object["metadata"] {
        Value::Object(map) => map,
        _ => unreachable!("metadata was just made an object"),
    }
}

fn now() -> Value {
    json!(k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// Everything but `metadata` and `status`: a change here bumps `metadata.generation`.
fn spec_of(object: &Value) -> Map<String, Value> {
    let mut rest = object.as_object().cloned().unwrap_or_default();
    rest.remove("metadata");
    rest.remove("status");
    rest
}

/// `target` with `.status` taken from `source` (removed when `source` has none).
fn with_status_of(mut target: Value, source: &Value) -> Value {
    if let Some(map) = target.as_object_mut() {
        match source.get("status") {
            Some(status) => map.insert("status".to_owned(), status.clone()),
            None => map.remove("status"),
        };
    }
    target
}

impl State {
    /// POST: stores a new object with uid, creationTimestamp, generation 1 and a new resourceVersion.
    /// A client's `.status` is dropped when the kind has a status subresource.
    pub(crate) fn create(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        mut object: Value,
        from_client: bool,
    ) -> Result<Value, ApiError> {
        self.check_identity(rt, namespace, None, &mut object)?;
        if text(&object, "/metadata/name").is_none() {
            let Some(prefix) = text(&object, "/metadata/generateName").map(str::to_owned) else {
                return Err(ApiError::invalid(
                    rt,
                    "",
                    "metadata.name: Required value: name or generateName is required",
                ));
            };
            let suffix = format!("{:05x}", self.serial() % 0x10_0000);
            metadata(&mut object).insert("name".to_owned(), json!(prefix + &suffix));
        }
        let name = text(&object, "/metadata/name").unwrap_or_default().to_owned();
        if self.get(rt, namespace, &name).is_some() {
            return Err(ApiError::already_exists(rt, &name));
        }
        if from_client && rt.has_status_subresource() {
            object.as_object_mut().map(|o| o.remove("status"));
        }
        let uid = format!("00000000-0000-4000-8000-{:012x}", self.serial());
        let rv = self.bump();
        let meta = metadata(&mut object);
        meta.remove("deletionTimestamp");
        meta.remove("deletionGracePeriodSeconds");
        meta.insert("uid".to_owned(), json!(uid));
        meta.insert("creationTimestamp".to_owned(), now());
        meta.insert("generation".to_owned(), json!(1));
        meta.insert("resourceVersion".to_owned(), json!(rv.to_string()));
        self.commit(rt, ChangeKind::Added, object.clone(), None);
        Ok(object)
    }

    /// PUT of the main resource or its status; 404 when missing, 409 when `metadata.resourceVersion` is stale.
    pub(crate) fn update(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        object: Value,
        part: Part,
    ) -> Result<Value, ApiError> {
        let current = self.get(rt, namespace, name).cloned().ok_or_else(|| ApiError::not_found(rt, name))?;
        self.write(rt, namespace, name, current, object, part)
    }

    /// PATCH of the main resource or its status. An apply of a missing object creates it (`true` returned).
    pub(crate) fn patch(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        patch: &PatchBody,
        part: Part,
    ) -> Result<(Value, bool), ApiError> {
        let Some(current) = self.get(rt, namespace, name).cloned() else {
            return match patch.applied_object() {
                Some(object) if part == Part::Main => {
                    let mut object = object.clone();
                    metadata(&mut object).entry("name").or_insert_with(|| json!(name));
                    self.check_identity(rt, namespace, Some(name), &mut object)?;
                    self.create(rt, namespace, object, true).map(|created| (created, true))
                }
                _ => Err(ApiError::not_found(rt, name)),
            };
        };
        let patched = patch.apply_to(current.clone()).map_err(|e| ApiError::invalid(rt, name, e))?;
        self.write(rt, namespace, name, current, patched, part).map(|written| (written, false))
    }

    /// The common end of PUT and PATCH: identity and precondition checks, status subresource rules, system
    /// metadata, generation, and the commit (skipped when nothing changed; a deletion when the last
    /// finalizer of a deleting object goes).
    fn write(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        current: Value,
        mut object: Value,
        part: Part,
    ) -> Result<Value, ApiError> {
        self.check_identity(rt, namespace, Some(name), &mut object)?;
        let current_rv = text(&current, "/metadata/resourceVersion").unwrap_or("");
        if text(&object, "/metadata/resourceVersion").is_some_and(|rv| rv != current_rv) {
            return Err(ApiError::conflict(rt, name));
        }
        let mut object = match part {
            Part::Status => with_status_of(current.clone(), &object),
            Part::Main if rt.has_status_subresource() => with_status_of(object, &current),
            Part::Main | Part::Whole => object,
        };
        let meta = metadata(&mut object);
        for field in SYSTEM_FIELDS.into_iter().chain(["resourceVersion"]) {
            match current["metadata"].get(field) {
                Some(value) => meta.insert(field.to_owned(), value.clone()),
                None => meta.remove(field),
            };
        }
        if object == current {
            return Ok(current);
        }
        if spec_of(&object) != spec_of(&current) {
            let generation = current["metadata"]["generation"].as_i64().unwrap_or(0);
            metadata(&mut object).insert("generation".to_owned(), json!(generation + 1));
        }
        let rv = self.bump();
        metadata(&mut object).insert("resourceVersion".to_owned(), json!(rv.to_string()));
        let finalizers_left = object["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty());
        let deleting = object["metadata"].get("deletionTimestamp").is_some();
        let kind = if deleting && !finalizers_left { ChangeKind::Deleted } else { ChangeKind::Modified };
        self.commit(rt, kind, object.clone(), Some(current));
        Ok(object)
    }

    /// DELETE: 409 on a failed `preconditions` check; an object with finalizers only gets a
    /// `deletionTimestamp`; others are removed at once.
    pub(crate) fn delete(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        options: &Value,
    ) -> Result<Value, ApiError> {
        let current = self.get(rt, namespace, name).cloned().ok_or_else(|| ApiError::not_found(rt, name))?;
        for (field, what, hint) in
            [("resourceVersion", "ResourceVersion", "modified"), ("uid", "UID", "deleted and then recreated")]
        {
            let wanted = options.pointer(&format!("/preconditions/{field}")).and_then(Value::as_str);
            let actual = text(&current, &format!("/metadata/{field}")).unwrap_or("");
            if let Some(wanted) = wanted.filter(|w| *w != actual) {
                let message = format!(
                    "The {what} in the precondition ({wanted}) does not match the {what} in record ({actual}). \
                     The object might have been {hint}."
                );
                return Err(ApiError::precondition_failed(rt, name, message));
            }
        }
        let has_finalizers = current["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty());
        if !has_finalizers {
            return Ok(self.remove_now(rt, current));
        }
        if current["metadata"].get("deletionTimestamp").is_some() {
            return Ok(current);
        }
        let mut marked = current.clone();
        let rv = self.bump();
        let meta = metadata(&mut marked);
        meta.insert("deletionTimestamp".to_owned(), now());
        meta.insert("deletionGracePeriodSeconds".to_owned(), json!(0));
        meta.insert("resourceVersion".to_owned(), json!(rv.to_string()));
        self.commit(rt, ChangeKind::Modified, marked.clone(), Some(current));
        Ok(marked)
    }

    /// Removes `current` now, finalizers or not; returns its last state at the deletion's resourceVersion.
    pub(crate) fn remove_now(&mut self, rt: &ResourceType, current: Value) -> Value {
        let mut last = current.clone();
        let rv = self.bump();
        metadata(&mut last).insert("resourceVersion".to_owned(), json!(rv.to_string()));
        self.commit(rt, ChangeKind::Deleted, last.clone(), Some(current));
        last
    }

    /// Creates or overwrites an object directly (no precondition, `.status` kept as given).
    pub(crate) fn upsert(&mut self, rt: &ResourceType, mut object: Value) -> Result<Value, ApiError> {
        let default_namespace = if rt.is_namespaced() { "default" } else { "" };
        let namespace = text(&object, "/metadata/namespace").unwrap_or(default_namespace).to_owned();
        let Some(name) = text(&object, "/metadata/name").map(str::to_owned) else {
            return self.create(rt, &namespace, object, false);
        };
        match self.get(rt, &namespace, &name).cloned() {
            None => self.create(rt, &namespace, object, false),
            Some(current) => {
                metadata(&mut object).remove("resourceVersion");
                self.write(rt, &namespace, &name, current, object, Part::Whole)
            }
        }
    }

    /// Checks the body's kind, name and namespace against the request and fills in what is missing.
    fn check_identity(
        &self,
        rt: &ResourceType,
        namespace: &str,
        name: Option<&str>,
        object: &mut Value,
    ) -> Result<(), ApiError> {
        let Some(map) = object.as_object_mut() else {
            return Err(ApiError::bad_request("the request body is not a JSON object"));
        };
        for (field, expected) in [("apiVersion", rt.api_version()), ("kind", rt.kind().to_owned())] {
            match map.get(field).and_then(Value::as_str) {
                Some(given) if !given.is_empty() && given != expected => {
                    return Err(ApiError::bad_request(format!(
                        "{field} {given:?} does not match the request ({expected})"
                    )));
                }
                _ => map.insert(field.to_owned(), json!(expected)),
            };
        }
        let meta = metadata(object);
        if let Some(given) = name {
            match meta.get("name").and_then(Value::as_str) {
                Some(body) if body != given => {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({body}) does not match the name on the URL ({given})"
                    )));
                }
                _ => meta.insert("name".to_owned(), json!(given)),
            };
        }
        if !rt.is_namespaced() {
            meta.remove("namespace");
            return Ok(());
        }
        match meta.get("namespace").and_then(Value::as_str) {
            Some(body) if !body.is_empty() && body != namespace => Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            )),
            _ => {
                meta.insert("namespace".to_owned(), json!(namespace));
                Ok(())
            }
        }
    }
}

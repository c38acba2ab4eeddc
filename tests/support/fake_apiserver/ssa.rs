//! Server-side apply and JSON merge patch over `serde_json::Value` objects,
//! with field ownership recorded in `metadata.managedFields` in the API's
//! `FieldsV1` form.
//!
//! NOTE: lists are owned as a whole (atomic), whereas the real API tracks
//! list items with merge keys (such as a container's `name`) one by one. A
//! conflict inside a list is still a 409, but it names the list, not the
//! item's field.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

/// A field path such as `["spec", "schedule"]`.
pub type FieldPath = Vec<String>;

/// The fields one manager owns.
pub type FieldSet = BTreeSet<FieldPath>;

/// One entry of `metadata.managedFields`.
#[derive(Debug, Clone)]
pub struct ManagedEntry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub fields: FieldSet,
}

/// A field that another manager owns with a different value.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub manager: String,
    pub api_version: String,
    pub field: FieldPath,
}

/// Metadata fields that the server sets and no manager owns.
const SERVER_METADATA: [&str; 8] =
    ["name", "namespace", "managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "selfLink"];

/// Returns the fields that `object` sets: every scalar, list and empty map,
/// without `apiVersion`, `kind`, `status` and server-set metadata.
pub fn fields_of(object: &Value) -> FieldSet {
    let mut fields = FieldSet::new();
    let Some(map) = object.as_object() else {
        return fields;
    };

    for (key, value) in map {
        match key.as_str() {
            "apiVersion" | "kind" | "status" => {}
            "metadata" => {
                if let Some(metadata) = value.as_object() {
                    for (meta_key, meta_value) in metadata {
                        if !SERVER_METADATA.contains(&meta_key.as_str()) {
                            collect(meta_value, vec!["metadata".to_owned(), meta_key.clone()], &mut fields);
                        }
                    }
                }
            }
            _ => collect(value, vec![key.clone()], &mut fields),
        }
    }
    fields
}

fn collect(value: &Value, path: FieldPath, fields: &mut FieldSet) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                let mut child_path = path.clone();
                child_path.push(key.clone());
                collect(child, child_path, fields);
            }
        }
        _ => {
            fields.insert(path);
        }
    }
}

/// Encodes `fields` as a `FieldsV1` tree: `{"f:spec": {"f:schedule": {}}}`.
pub fn to_fields_v1(fields: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in fields {
        let mut node = &mut root;
        for segment in path {
            node = node
                .entry(format!("f:{segment}"))
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("FieldsV1 nodes are objects");
        }
    }
    Value::Object(root)
}

/// Decodes a `FieldsV1` tree. A list item key (`k:`, `v:`, `i:`) or a `.`
/// marks its parent as owned whole, in line with the atomic lists above.
pub fn from_fields_v1(tree: &Value) -> FieldSet {
    let mut fields = FieldSet::new();
    decode(tree, Vec::new(), &mut fields);
    fields
}

fn decode(node: &Value, path: FieldPath, fields: &mut FieldSet) {
    let Some(map) = node.as_object() else {
        return;
    };
    if map.is_empty() {
        if !path.is_empty() {
            fields.insert(path);
        }
        return;
    }

    for (key, child) in map {
        if let Some(name) = key.strip_prefix("f:") {
            let mut child_path = path.clone();
            child_path.push(name.to_owned());
            decode(child, child_path, fields);
        } else if !path.is_empty() {
            fields.insert(path.clone());
        }
    }
}

/// Reads `metadata.managedFields` of `object`.
pub fn managed_entries(object: &Value) -> Vec<ManagedEntry> {
    let Some(entries) = object.pointer("/metadata/managedFields").and_then(Value::as_array) else {
        return Vec::new();
    };

    entries
        .iter()
        .map(|entry| ManagedEntry {
            manager: text(entry, "manager"),
            operation: text(entry, "operation"),
            api_version: text(entry, "apiVersion"),
            time: text(entry, "time"),
            fields: entry.get("fieldsV1").map(from_fields_v1).unwrap_or_default(),
        })
        .collect()
}

fn text(value: &Value, key: &str) -> String {
    value.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// Writes `entries` to `metadata.managedFields`, dropping entries that own
/// nothing, as the API server does.
pub fn set_managed_entries(object: &mut Value, entries: &[ManagedEntry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|entry| !entry.fields.is_empty())
        .map(|entry| {
            json!({
                "manager": entry.manager,
                "operation": entry.operation,
                "apiVersion": entry.api_version,
                "time": entry.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&entry.fields),
            })
        })
        .collect();
    object["metadata"]["managedFields"] = Value::Array(list);
}

/// Returns the value at `path`, or `None`.
pub fn get_path<'a>(object: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(object, |node, segment| node.get(segment))
}

fn remove_path(object: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let parent = parents.iter().try_fold(&mut *object, |node, segment| node.get_mut(segment));
    if let Some(Value::Object(map)) = parent {
        map.remove(last);
    }
}

fn overlaps(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Merges `patch` into `target`: maps recursively, everything else replaced.
fn deep_merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(target_map), Value::Object(patch_map)) => {
            for (key, value) in patch_map {
                match target_map.get_mut(key) {
                    Some(existing) if existing.is_object() && value.is_object() => deep_merge(existing, value),
                    _ => {
                        target_map.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}

/// Applies `applied` for `manager` on top of `live` (absent for a create),
/// with the rules of server-side apply:
///
/// - a field that another manager owns with a different value is a
///   conflict, unless `force` moves its ownership to `manager`;
/// - a field that both set to the same value becomes shared;
/// - a field that `manager` applied before and no longer applies is removed,
///   unless another manager also owns it.
///
/// Returns the new object with its `managedFields`, or the conflicts.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value, Vec<Conflict>> {
    let api_version = applied.get("apiVersion").and_then(Value::as_str).unwrap_or_default().to_owned();
    let new_fields = fields_of(applied);
    let mut object = live.cloned().unwrap_or_else(|| json!({}));
    let mut entries = managed_entries(&object);
    let is_own = |entry: &ManagedEntry| entry.manager == manager && entry.operation == "Apply";

    let mut conflicts = Vec::new();
    for entry in entries.iter().filter(|entry| !is_own(entry)) {
        for owned in &entry.fields {
            let touched = new_fields.iter().any(|path| overlaps(path, owned));
            if touched && get_path(&object, owned) != get_path(applied, owned) {
                conflicts.push(Conflict {
                    manager: entry.manager.clone(),
                    api_version: entry.api_version.clone(),
                    field: owned.clone(),
                });
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    for conflict in &conflicts {
        for entry in entries.iter_mut().filter(|entry| entry.manager == conflict.manager) {
            entry.fields.remove(&conflict.field);
        }
    }

    let previous = entries.iter().find(|entry| is_own(entry)).map(|entry| entry.fields.clone()).unwrap_or_default();
    for dropped in previous.difference(&new_fields) {
        let shared = entries
            .iter()
            .filter(|entry| !is_own(entry))
            .any(|entry| entry.fields.iter().any(|owned| overlaps(owned, dropped)));
        if !shared {
            remove_path(&mut object, dropped);
        }
    }

    let mut desired = applied.clone();
    if let Some(map) = desired.as_object_mut() {
        map.remove("status");
    }
    deep_merge(&mut object, &desired);

    entries.retain(|entry| !is_own(entry));
    entries.push(ManagedEntry {
        manager: manager.to_owned(),
        operation: "Apply".to_owned(),
        api_version,
        time: now.to_owned(),
        fields: new_fields,
    });
    set_managed_entries(&mut object, &entries);
    Ok(object)
}

/// Applies a JSON merge patch (RFC 7386) as an `Update` by `manager`. An
/// update never conflicts: it takes the fields it sets from other managers.
pub fn merge_patch(live: &Value, patch: &Value, manager: &str, api_version: &str, now: &str) -> Value {
    let mut object = live.clone();
    merge_rfc7386(&mut object, patch);

    let touched = fields_of(patch);
    let mut entries = managed_entries(&object);
    for entry in &mut entries {
        entry.fields.retain(|owned| !touched.iter().any(|path| overlaps(path, owned)));
    }

    let set: FieldSet = touched.into_iter().filter(|path| get_path(&object, path).is_some()).collect();
    match entries.iter_mut().find(|entry| entry.manager == manager && entry.operation == "Update") {
        Some(entry) => {
            entry.fields.extend(set);
            entry.time = now.to_owned();
        }
        None => entries.push(ManagedEntry {
            manager: manager.to_owned(),
            operation: "Update".to_owned(),
            api_version: api_version.to_owned(),
            time: now.to_owned(),
            fields: set,
        }),
    }
    set_managed_entries(&mut object, &entries);
    object
}

fn merge_rfc7386(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let target_map = target.as_object_mut().expect("made an object above");
    for (key, value) in patch_map {
        if value.is_null() {
            target_map.remove(key);
        } else {
            merge_rfc7386(target_map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// Formats a field path the way the API server's conflict messages do:
/// `.spec.schedule`.
pub fn dotted(path: &[String]) -> String {
    path.iter().map(|segment| format!(".{segment}")).collect()
}

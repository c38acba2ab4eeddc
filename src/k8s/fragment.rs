//! Merging the `[kubernetes]` fragments of kuul.toml into the generated
//! CronJob.
//!
//! Both fragments are applied as JSON merge patches (RFC 7386): an object
//! merges into an object key by key, and any other value, arrays included,
//! replaces what was there. TOML has no `null`, so a fragment cannot delete
//! a field. The result must still be a valid CronJob: a field that the
//! `batch/v1` types do not have is an error, not silently dropped.

use k8s_openapi::api::batch::v1::CronJob;
use serde_json::{Map, Value};

use super::Diagnostic as Problem;
use crate::spec::Spec;

/// The JSON pointer of the job's container in the CronJob.
const CONTAINER_POINTER: &str = "/spec/jobTemplate/spec/template/spec/containers/0";

/// Merges the fragments of `spec` into `cronjob` and returns the result.
pub fn apply(cronjob: CronJob, spec: &Spec) -> Result<CronJob, Vec<Problem>> {
    let fragments = &spec.kubernetes;
    if fragments.cronjob.is_none() && fragments.container.is_none() {
        return Ok(cronjob);
    }

    let mut merged = serde_json::to_value(&cronjob).expect("a CronJob serializes");
    if let Some(fragment) = &fragments.cronjob {
        merge_patch(&mut merged, &Value::Object(fragment.clone()));
    }
    if let Some(fragment) = &fragments.container
        && let Some(container) = merged.pointer_mut(CONTAINER_POINTER)
    {
        merge_patch(container, &Value::Object(fragment.clone()));
    }

    let typed: CronJob = serde_json::from_value(merged.clone()).map_err(|error| {
        vec![Problem::new(
            "kubernetes",
            format!("the merged CronJob is not a valid `batch/v1` CronJob: {error}"),
            "check the type of each value in `[kubernetes.cronjob]` and `[kubernetes.container]` against the Kubernetes API reference",
        )]
    })?;

    let round_trip = serde_json::to_value(&typed).expect("a CronJob serializes");
    let mut unknown = Vec::new();
    find_unknown_fields(&merged, &round_trip, &mut String::new(), &mut unknown);
    if !unknown.is_empty() {
        return Err(unknown.iter().map(|pointer| unknown_field_problem(pointer)).collect());
    }

    Ok(typed)
}

/// Applies `patch` to `target` as RFC 7386 describes.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_fields) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }

    let target_fields = target.as_object_mut().expect("target was just made an object");
    for (key, value) in patch_fields {
        if value.is_null() {
            target_fields.remove(key);
        } else {
            merge_patch(target_fields.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// Collects the JSON pointers of values in `merged` that the typed
/// round trip dropped, which are fields the API types do not have.
fn find_unknown_fields(merged: &Value, round_trip: &Value, pointer: &mut String, unknown: &mut Vec<String>) {
    match (merged, round_trip) {
        (Value::Object(merged_fields), Value::Object(kept_fields)) => {
            for (key, value) in merged_fields {
                let length = pointer.len();
                pointer.push('/');
                pointer.push_str(key);
                match kept_fields.get(key) {
                    Some(kept) => find_unknown_fields(value, kept, pointer, unknown),
                    None if !value.is_null() => unknown.push(pointer.clone()),
                    None => {}
                }
                pointer.truncate(length);
            }
        }
        (Value::Array(merged_items), Value::Array(kept_items)) => {
            for (index, (value, kept)) in merged_items.iter().zip(kept_items).enumerate() {
                let length = pointer.len();
                pointer.push_str(&format!("/{index}"));
                find_unknown_fields(value, kept, pointer, unknown);
                pointer.truncate(length);
            }
        }
        _ => {}
    }
}

/// Names the kuul.toml key of an unknown field: under the container's
/// pointer it came from `[kubernetes.container]`, elsewhere from
/// `[kubernetes.cronjob]`.
fn unknown_field_problem(pointer: &str) -> Problem {
    let (table, rest) = match pointer.strip_prefix(CONTAINER_POINTER) {
        Some(rest) => ("kubernetes.container", rest),
        None => ("kubernetes.cronjob", pointer),
    };
    let field = rest.trim_start_matches('/').replace('/', ".");
    let name = field.rsplit('.').next().unwrap_or(&field).to_owned();

    Problem::new(
        format!("{table}.{field}"),
        format!("unknown field `{name}` in the CronJob"),
        "check the spelling and nesting against the Kubernetes API reference, where field names are camelCase",
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_patch_merges_objects() {
        let mut target = json!({"a": {"b": 1, "c": 2}, "d": 3});
        merge_patch(&mut target, &json!({"a": {"b": 10, "e": 5}}));
        assert_eq!(target, json!({"a": {"b": 10, "c": 2, "e": 5}, "d": 3}));
    }

    #[test]
    fn merge_patch_replaces_arrays() {
        let mut target = json!({"list": [1, 2, 3]});
        merge_patch(&mut target, &json!({"list": [4]}));
        assert_eq!(target, json!({"list": [4]}));
    }

    #[test]
    fn merge_patch_null_removes() {
        let mut target = json!({"a": 1, "b": 2});
        merge_patch(&mut target, &json!({"a": null}));
        assert_eq!(target, json!({"b": 2}));
    }

    #[test]
    fn merge_patch_object_replaces_scalar() {
        let mut target = json!({"a": 1});
        merge_patch(&mut target, &json!({"a": {"b": 2}}));
        assert_eq!(target, json!({"a": {"b": 2}}));
    }

    #[test]
    fn unknown_field_problem_names_container_key() {
        let problem = unknown_field_problem(&format!("{CONTAINER_POINTER}/envFrom/0/secretRefs"));
        assert_eq!(problem.key, "kubernetes.container.envFrom.0.secretRefs");
        assert!(problem.message.contains("`secretRefs`"), "{}", problem.message);
    }

    #[test]
    fn unknown_field_problem_names_cronjob_key() {
        let problem = unknown_field_problem("/spec/jobTemplate/spec/podFailurePolcy");
        assert_eq!(problem.key, "kubernetes.cronjob.spec.jobTemplate.spec.podFailurePolcy");
    }
}

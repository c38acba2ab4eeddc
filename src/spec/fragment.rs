//! Checks of the `[kubernetes]` fragments that can be made before the
//! manifest exists: a fragment must not set a field that kuul.toml has its
//! own key for, or a field that kuul controls, such as the pinned image.
//! `k8s::fragment` merges the fragments and validates the result.

use serde_json::{Map, Value};

use super::Spec;
use super::locate::KeyPath;
use super::validate::Findings;
use crate::k8s::manifest::{MANAGED_BY_LABEL, NAME_LABEL};

/// How toml hands a TOML date or time to a `serde_json::Value`.
const TOML_DATETIME_KEY: &str = "$__toml_private_datetime";

/// What to do instead of setting a field in a fragment.
enum Instead {
    /// Set this kuul.toml key.
    Key(&'static str),
    /// The field cannot be set, for the reason given.
    Fixed(&'static str),
}

/// CronJob fields, as `/`-free dotted paths, that `[kubernetes.cronjob]`
/// must not set.
const CRONJOB_FIELDS: &[(&str, Instead)] = &[
    ("apiVersion", Instead::Fixed("kuul writes `batch/v1`")),
    ("kind", Instead::Fixed("kuul writes a `CronJob`")),
    ("status", Instead::Fixed("the controller writes the status")),
    ("metadata.name", Instead::Key("job.name")),
    ("spec.schedule", Instead::Key("job.schedule")),
    ("spec.timeZone", Instead::Key("job.timezone")),
    ("spec.concurrencyPolicy", Instead::Key("job.concurrency_policy")),
    ("spec.startingDeadlineSeconds", Instead::Key("job.starting_deadline_seconds")),
    ("spec.successfulJobsHistoryLimit", Instead::Key("job.successful_jobs_history_limit")),
    ("spec.failedJobsHistoryLimit", Instead::Key("job.failed_jobs_history_limit")),
    ("spec.suspend", Instead::Key("job.suspend")),
    ("spec.jobTemplate.spec.backoffLimit", Instead::Key("job.backoff_limit")),
    ("spec.jobTemplate.spec.activeDeadlineSeconds", Instead::Key("job.active_deadline_seconds")),
    ("spec.jobTemplate.spec.ttlSecondsAfterFinished", Instead::Key("job.ttl_seconds_after_finished")),
    (
        "spec.jobTemplate.spec.selector",
        Instead::Fixed(
            "Kubernetes generates the selector of the Jobs a CronJob creates and rejects one in the template",
        ),
    ),
    (
        "spec.jobTemplate.spec.manualSelector",
        Instead::Fixed("Kubernetes generates the selector of the Jobs a CronJob creates"),
    ),
    ("spec.jobTemplate.spec.template.spec.restartPolicy", Instead::Key("job.restart_policy")),
    ("spec.jobTemplate.spec.template.spec.containers", Instead::Key("kubernetes.container")),
    ("spec.jobTemplate.spec.template.spec.nodeSelector", Instead::Key("placement.node_selector")),
    ("spec.jobTemplate.spec.template.spec.tolerations", Instead::Key("placement.tolerations")),
    ("spec.jobTemplate.spec.template.spec.imagePullSecrets", Instead::Key("image.pull_secrets")),
    ("spec.jobTemplate.spec.template.spec.affinity", Instead::Key("placement.affinity")),
];

/// The objects that carry kuul's two labels.
const LABELLED_OBJECTS: [&str; 3] =
    ["metadata", "spec.jobTemplate.metadata", "spec.jobTemplate.spec.template.metadata"];

/// Container fields that `[kubernetes.container]` must not set. `env` is
/// checked separately, because it is allowed when `job.env` is empty.
const CONTAINER_FIELDS: &[(&str, Instead)] = &[
    ("name", Instead::Key("job.name")),
    ("image", Instead::Fixed("kuul pins the image it built by digest")),
    ("command", Instead::Key("job.command")),
    ("workingDir", Instead::Key("image.workdir")),
    ("resources", Instead::Key("resources")),
];

pub(super) fn check_kubernetes(spec: &Spec, path: &KeyPath, findings: &mut Findings) {
    if let Some(cronjob) = &spec.kubernetes.cronjob {
        let cronjob_path = path.key("cronjob");
        check_dates(cronjob, &cronjob_path, findings);
        check_fields(cronjob, CRONJOB_FIELDS, &cronjob_path, findings);
        check_labels(cronjob, &cronjob_path, findings);
    }

    if let Some(container) = &spec.kubernetes.container {
        let container_path = path.key("container");
        check_dates(container, &container_path, findings);
        check_fields(container, CONTAINER_FIELDS, &container_path, findings);

        if container.contains_key("env") && !spec.job.env.is_empty() {
            findings.add(
                &container_path.key("env"),
                "environment variables are set in both `job.env` and `kubernetes.container.env`",
                "keep them in one place: `job.env` for plain values, or all of them in `kubernetes.container.env` when some come from a Secret (`valueFrom`)",
            );
        }
    }
}

fn check_fields(fragment: &Map<String, Value>, fields: &[(&str, Instead)], path: &KeyPath, findings: &mut Findings) {
    for (field, instead) in fields {
        if lookup(fragment, field).is_none() {
            continue;
        }

        let field_path = dotted(path, field);
        match instead {
            Instead::Key(key) => findings.add(
                &field_path,
                format!("`{field}` is set by kuul"),
                format!("remove it here and set `{key}` in kuul.toml"),
            ),
            Instead::Fixed(reason) => findings.add(
                &field_path,
                format!("`{field}` cannot be set in a fragment"),
                format!("remove it: {reason}"),
            ),
        }
    }
}

fn check_labels(fragment: &Map<String, Value>, path: &KeyPath, findings: &mut Findings) {
    for object in LABELLED_OBJECTS {
        let Some(Value::Object(labels)) = lookup(fragment, &format!("{object}.labels")) else {
            continue;
        };
        for label in [NAME_LABEL, MANAGED_BY_LABEL] {
            if labels.contains_key(label) {
                findings.add(
                    &dotted(path, object).key("labels").key(label),
                    format!("label `{label}` is set by kuul"),
                    "remove it: kubectl and k9s selectors find every run of the job by this label",
                );
            }
        }
    }
}

/// Rejects TOML dates and times, which have no JSON form.
fn check_dates(fragment: &Map<String, Value>, path: &KeyPath, findings: &mut Findings) {
    for (key, value) in fragment {
        let value_path = path.key(key);
        match value {
            Value::Object(object) if object.contains_key(TOML_DATETIME_KEY) => findings.add(
                &value_path,
                "TOML date or time in a Kubernetes fragment",
                "quote it as a string, such as `\"2026-01-01T00:00:00Z\"`",
            ),
            Value::Object(object) => check_dates(object, &value_path, findings),
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    if let Value::Object(object) = item {
                        check_dates(object, &value_path.index(index), findings);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Follows a dotted path of object keys.
fn lookup<'a>(fragment: &'a Map<String, Value>, dotted_path: &str) -> Option<&'a Value> {
    let mut parts = dotted_path.split('.');
    let mut value = fragment.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

fn dotted(path: &KeyPath, dotted_path: &str) -> KeyPath {
    dotted_path.split('.').fold(path.clone(), |path, part| path.key(part))
}

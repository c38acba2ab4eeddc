//! Checks of the final CronJob, after the `[kubernetes]` fragments are
//! merged: the API server's validation rules for the fields a fragment
//! can reach, and kuul's own invariants. A failed check is an error,
//! because the API server would reject the manifest or kuul's guarantees
//! would not hold.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::Diagnostic;
use crate::spec::names;
use crate::spec::quantity;
use crate::spec::{CONCURRENCY_POLICIES, MAX_JOB_NAME_LENGTH, RESTART_POLICIES};

/// The API server's limit on the total size of an object's annotation keys
/// and values, in bytes.
pub const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

/// The fragment key prefix of the pod spec.
const POD_KEY: &str = "kubernetes.cronjob.spec.jobTemplate.spec.template.spec";

/// Returns every rule the final `cronjob` breaks. `image` is the pinned
/// reference that the job's container must run.
///
/// NOTE: these are the API server's rules for metadata, the CronJob and Job
/// fields, the restart policy, resources, and volume and mount names. Other
/// pod fields that a fragment can set (volume sources, probes, environment
/// variable names) are only type-checked by the merge, so the API server
/// may still reject them.
pub fn errors(cronjob: &CronJob, image: &str) -> Vec<Diagnostic> {
    let mut errors = Vec::new();

    check_name(cronjob.metadata.name.as_deref().unwrap_or_default(), &mut errors);
    check_metadata(&cronjob.metadata, "kubernetes.cronjob.metadata", &mut errors);

    let Some(spec) = &cronjob.spec else {
        errors.push(Diagnostic::new(
            "kubernetes.cronjob",
            "the CronJob has no `spec`",
            "remove `spec` changes that replace it",
        ));
        return errors;
    };

    if let Some(policy) = &spec.concurrency_policy
        && !CONCURRENCY_POLICIES.contains(&policy.as_str())
    {
        errors.push(one_of("job.concurrency_policy", policy, &CONCURRENCY_POLICIES));
    }
    check_non_negative("job.starting_deadline_seconds", spec.starting_deadline_seconds, &mut errors);
    check_non_negative(
        "job.successful_jobs_history_limit",
        spec.successful_jobs_history_limit.map(i64::from),
        &mut errors,
    );
    check_non_negative("job.failed_jobs_history_limit", spec.failed_jobs_history_limit.map(i64::from), &mut errors);

    let template = &spec.job_template;
    if let Some(metadata) = &template.metadata {
        check_metadata(metadata, "kubernetes.cronjob.spec.jobTemplate.metadata", &mut errors);
    }
    let Some(job) = &template.spec else {
        errors.push(Diagnostic::new(
            "kubernetes.cronjob",
            "the Job template has no `spec`",
            "remove the change that replaces it",
        ));
        return errors;
    };

    if job.selector.is_some() || job.manual_selector == Some(true) {
        errors.push(Diagnostic::new(
            "kubernetes.cronjob.spec.jobTemplate.spec.selector",
            "the Job template sets a selector",
            "remove it: Kubernetes generates the selector of the Jobs a CronJob creates",
        ));
    }
    check_non_negative("job.backoff_limit", job.backoff_limit.map(i64::from), &mut errors);
    check_non_negative("job.active_deadline_seconds", job.active_deadline_seconds, &mut errors);
    check_non_negative("job.ttl_seconds_after_finished", job.ttl_seconds_after_finished.map(i64::from), &mut errors);
    check_non_negative(
        "kubernetes.cronjob.spec.jobTemplate.spec.parallelism",
        job.parallelism.map(i64::from),
        &mut errors,
    );
    check_non_negative(
        "kubernetes.cronjob.spec.jobTemplate.spec.completions",
        job.completions.map(i64::from),
        &mut errors,
    );

    if let Some(metadata) = &job.template.metadata {
        check_metadata(metadata, "kubernetes.cronjob.spec.jobTemplate.spec.template.metadata", &mut errors);
    }
    if let Some(pod) = &job.template.spec {
        check_pod(pod, image, &mut errors);
    }
    errors
}

fn check_name(name: &str, errors: &mut Vec<Diagnostic>) {
    if !names::is_dns1123_subdomain(name) || name.len() > MAX_JOB_NAME_LENGTH {
        errors.push(Diagnostic::new(
            "job.name",
            format!("invalid CronJob name `{name}`"),
            format!("use a DNS-1123 name of at most {MAX_JOB_NAME_LENGTH} characters"),
        ));
    }
}

/// Checks labels and annotations as the API server's object metadata
/// validation does.
fn check_metadata(metadata: &ObjectMeta, key: &str, errors: &mut Vec<Diagnostic>) {
    for (label, value) in metadata.labels.iter().flatten() {
        if let Err(reason) = names::check_label_key(label) {
            errors.push(Diagnostic::new(
                format!("{key}.labels"),
                format!("invalid label key `{label}`: it {reason}"),
                "use a key such as `example.com/team`",
            ));
        }
        if let Err(reason) = names::check_label_value(value) {
            errors.push(Diagnostic::new(
                format!("{key}.labels"),
                format!("invalid value `{value}` of label `{label}`: it {reason}"),
                "shorten the value or move it to an annotation",
            ));
        }
    }

    let annotations = metadata.annotations.clone().unwrap_or_default();
    for annotation in annotations.keys() {
        // The API server checks annotation keys in lowercase.
        if let Err(reason) = names::check_label_key(&annotation.to_ascii_lowercase()) {
            errors.push(Diagnostic::new(
                format!("{key}.annotations"),
                format!("invalid annotation key `{annotation}`: it {reason}"),
                "use a key such as `example.com/owner`",
            ));
        }
    }
    let total: usize = annotations.iter().map(|(name, value)| name.len() + value.len()).sum();
    if total > MAX_ANNOTATIONS_BYTES {
        errors.push(Diagnostic::new(
            format!("{key}.annotations"),
            format!("annotations are {total} bytes, more than the maximum of {MAX_ANNOTATIONS_BYTES}"),
            "keep large data in a ConfigMap",
        ));
    }
}

fn check_pod(pod: &core::PodSpec, image: &str, errors: &mut Vec<Diagnostic>) {
    if let Some(policy) = &pod.restart_policy
        && !RESTART_POLICIES.contains(&policy.as_str())
    {
        errors.push(one_of("job.restart_policy", policy, &RESTART_POLICIES));
    }

    match pod.containers.first() {
        Some(container) if container.image.as_deref() == Some(image) => {}
        _ => errors.push(Diagnostic::new(
            "kubernetes",
            format!("the job's container no longer runs the pinned image `{image}`"),
            "remove the fragment fields that replace the container or its image",
        )),
    }

    for (index, container) in pod.containers.iter().enumerate() {
        let key = if index == 0 { "resources".to_owned() } else { format!("{POD_KEY}.containers[{index}].resources") };
        check_container_resources(container, &key, errors);
    }
    for (index, container) in pod.init_containers.iter().flatten().enumerate() {
        check_container_resources(container, &format!("{POD_KEY}.initContainers[{index}].resources"), errors);
    }
    check_volumes(pod, errors);
}

/// Checks what the API server checks of volumes and mounts: volume names
/// are unique, each mount names a volume of the pod, and no two mounts of
/// a container share a path.
fn check_volumes(pod: &core::PodSpec, errors: &mut Vec<Diagnostic>) {
    let volumes: Vec<&str> = pod.volumes.iter().flatten().map(|volume| volume.name.as_str()).collect();
    for (index, name) in volumes.iter().enumerate() {
        if volumes[..index].contains(name) {
            errors.push(Diagnostic::new(
                format!("{POD_KEY}.volumes[{index}].name"),
                format!("volume name `{name}` is used twice"),
                "give each volume its own name",
            ));
        }
    }

    let containers = pod.containers.iter().enumerate().map(|(index, container)| {
        let key = if index == 0 { "kubernetes.container".to_owned() } else { format!("{POD_KEY}.containers[{index}]") };
        (key, container)
    });
    let init_containers = pod
        .init_containers
        .iter()
        .flatten()
        .enumerate()
        .map(|(index, container)| (format!("{POD_KEY}.initContainers[{index}]"), container));
    for (key, container) in containers.chain(init_containers) {
        let mounts = container.volume_mounts.iter().flatten().enumerate();
        let mut paths: Vec<&str> = Vec::new();
        for (index, mount) in mounts {
            if !volumes.contains(&mount.name.as_str()) {
                errors.push(Diagnostic::new(
                    format!("{key}.volumeMounts[{index}].name"),
                    format!("volume `{}` mounted at `{}` is not a volume of the pod", mount.name, mount.mount_path),
                    format!(
                        "add a volume named `{}` to `{POD_KEY}.volumes`; a fragment's `volumes` replaces kuul's whole list, so list the `tmp` emptyDir volume there too",
                        mount.name
                    ),
                ));
            }
            if paths.contains(&mount.mount_path.as_str()) {
                errors.push(Diagnostic::new(
                    format!("{key}.volumeMounts[{index}].mountPath"),
                    format!("`{}` is mounted twice in one container", mount.mount_path),
                    "mount each path once",
                ));
            }
            paths.push(&mount.mount_path);
        }
    }
}

/// Checks that every quantity parses, is not negative, and that no request
/// exceeds its limit.
fn check_container_resources(container: &core::Container, key: &str, errors: &mut Vec<Diagnostic>) {
    let Some(resources) = &container.resources else {
        return;
    };
    let parse_all = |list: &Option<BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
                     errors: &mut Vec<Diagnostic>| {
        let mut parsed = BTreeMap::new();
        for (resource, value) in list.iter().flatten() {
            match quantity::parse(&value.0) {
                Ok(quantity) if quantity.is_negative() => errors.push(Diagnostic::new(
                    key,
                    format!("negative quantity `{}` for `{resource}`", value.0),
                    "use zero or more",
                )),
                Ok(quantity) => {
                    parsed.insert(resource.clone(), quantity);
                }
                Err(error) => errors.push(Diagnostic::new(key, error.to_string(), error.hint())),
            }
        }
        parsed
    };

    let requests = parse_all(&resources.requests, errors);
    let limits = parse_all(&resources.limits, errors);
    for (resource, request) in &requests {
        if let Some(limit) = limits.get(resource)
            && request > limit
        {
            errors.push(Diagnostic::new(
                key,
                format!("{resource} request `{request}` is greater than the limit `{limit}`"),
                "lower the request or raise the limit, because Kubernetes rejects a request above its limit",
            ));
        }
    }
}

fn check_non_negative(key: &str, value: Option<i64>, errors: &mut Vec<Diagnostic>) {
    if let Some(value) = value
        && value < 0
    {
        errors.push(Diagnostic::new(
            key,
            format!("negative value `{value}`"),
            "use 0 or more, because Kubernetes rejects negative values",
        ));
    }
}

fn one_of(key: &str, value: &str, allowed: &[&str]) -> Diagnostic {
    let list = allowed.iter().map(|item| format!("`{item}`")).collect::<Vec<_>>().join(", ");
    Diagnostic::new(key, format!("invalid value `{value}`"), format!("use one of {list}"))
}

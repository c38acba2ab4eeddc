//! The CronJob manifest that runs a Kuul image, built from a valid [`Spec`].
//!
//! This module is pure: it builds k8s-openapi types and serializes them, with
//! no I/O. `docs/cronjob.md` explains each default it sets.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;

use super::defaults;
use crate::spec::{self, POOL_LABEL, Spec};

/// The label that names the job on the CronJob, its Jobs and their pods.
pub const NAME_LABEL: &str = "app.kubernetes.io/name";

/// The label that marks objects kuul created.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// The value of [`MANAGED_BY_LABEL`].
pub const MANAGER: &str = "kuul";

/// How many finished Jobs of each outcome the controller keeps by default.
pub const HISTORY_LIMIT: i32 = super::defaults::HISTORY_LIMIT;

/// How many times a failed run is retried by default, each retry in a new
/// pod.
pub const BACKOFF_LIMIT: i32 = super::defaults::BACKOFF_LIMIT;

/// The name of the emptyDir volume mounted at [`TMP_PATH`].
pub const TMP_VOLUME: &str = "tmp";

/// The writable scratch directory, needed because the root filesystem is
/// read-only.
pub const TMP_PATH: &str = "/tmp";

/// Builds the CronJob that runs `image` on the schedule in `spec`, with the
/// settings of [`defaults::job_settings`] and without the `[kubernetes]`
/// fragments; [`super::render`] merges and checks those.
///
/// `image` is the pinned reference `registry/repository:tag@sha256:…`, and
/// `command` is the argv with paths already resolved inside the image. The
/// CronJob has no namespace, so the kubeconfig context decides it.
pub fn cronjob(spec: &Spec, image: &str, command: &[String]) -> CronJob {
    let job = &spec.job;
    let labels = labels(&job.name);
    let settings = defaults::job_settings(spec);

    let job_template = JobTemplateSpec {
        metadata: Some(meta::ObjectMeta { labels: Some(labels.clone()), ..Default::default() }),
        spec: Some(JobSpec {
            backoff_limit: Some(settings.backoff_limit),
            active_deadline_seconds: Some(settings.active_deadline_seconds),
            ttl_seconds_after_finished: settings.ttl_seconds_after_finished,
            template: pod_template(spec, image, command, &labels, &settings.restart_policy),
            ..Default::default()
        }),
    };

    CronJob {
        metadata: meta::ObjectMeta { name: Some(job.name.clone()), labels: Some(labels), ..Default::default() },
        spec: Some(CronJobSpec {
            schedule: job.schedule.clone(),
            time_zone: Some(job.timezone.clone()),
            concurrency_policy: Some(settings.concurrency_policy),
            starting_deadline_seconds: Some(settings.starting_deadline_seconds),
            successful_jobs_history_limit: Some(settings.successful_jobs_history_limit),
            failed_jobs_history_limit: Some(settings.failed_jobs_history_limit),
            suspend: settings.suspend,
            job_template,
        }),
        status: None,
    }
}

/// Serializes `cronjob` as one YAML document that starts with
/// `apiVersion: batch/v1`.
///
/// Strings that a YAML 1.1 parser would read as another type (`yes`, `on`,
/// `0755`, `1e3`) are quoted, so Go-based tools such as kubectl read them back
/// as strings. Multi-line strings, such as a `sh -c` script, are written as
/// literal blocks, and long single-line strings stay on one line so an image
/// reference can be found with `grep`.
pub fn to_yaml(cronjob: &CronJob) -> String {
    let mut options = serde_saphyr::SerializerOptions::default();
    options.folded_wrap_chars = usize::MAX;

    serde_saphyr::to_string_with_options(cronjob, options).expect("a CronJob has only string map keys and serializes")
}

/// Serializes `cronjob` as pretty-printed JSON.
pub fn to_json(cronjob: &CronJob) -> String {
    serde_json::to_string_pretty(cronjob).expect("a CronJob has only string map keys and serializes")
}

fn labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(NAME_LABEL.to_owned(), name.to_owned()), (MANAGED_BY_LABEL.to_owned(), MANAGER.to_owned())])
}

fn pod_template(
    spec: &Spec,
    image: &str,
    command: &[String],
    labels: &BTreeMap<String, String>,
    restart_policy: &str,
) -> core::PodTemplateSpec {
    let user = image_user(&spec.image);
    let placement = &spec.placement;

    let pod = core::PodSpec {
        restart_policy: Some(restart_policy.to_owned()),
        automount_service_account_token: Some(false),
        security_context: Some(pod_security_context(user)),
        containers: vec![container(spec, image, command, user)],
        volumes: Some(vec![core::Volume {
            name: TMP_VOLUME.to_owned(),
            empty_dir: Some(core::EmptyDirVolumeSource::default()),
            ..Default::default()
        }]),
        node_selector: node_selector(placement),
        tolerations: tolerations(placement),
        affinity: placement.affinity.as_ref().map(affinity),
        image_pull_secrets: image_pull_secrets(&spec.image.pull_secrets),
        ..Default::default()
    };

    core::PodTemplateSpec {
        metadata: Some(meta::ObjectMeta { labels: Some(labels.clone()), ..Default::default() }),
        spec: Some(pod),
    }
}

fn container(spec: &Spec, image: &str, command: &[String], user: ImageUser) -> core::Container {
    let env: Vec<core::EnvVar> = spec
        .job
        .env
        .iter()
        .map(|(name, value)| core::EnvVar { name: name.clone(), value: Some(value.clone()), value_from: None })
        .collect();

    core::Container {
        name: spec.job.name.clone(),
        image: Some(image.to_owned()),
        command: Some(command.to_vec()),
        env: non_empty_vec(env),
        working_dir: Some(spec.image.workdir.clone()),
        resources: Some(resources(spec)),
        security_context: Some(container_security_context(user)),
        volume_mounts: Some(vec![core::VolumeMount {
            name: TMP_VOLUME.to_owned(),
            mount_path: TMP_PATH.to_owned(),
            ..Default::default()
        }]),
        ..Default::default()
    }
}

/// The user and group ids that the image runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ImageUser {
    uid: u32,
    gid: u32,
}

impl ImageUser {
    fn is_root(self) -> bool {
        self.uid == 0
    }
}

/// Returns the image user's ids, by the same rule the image config uses.
fn image_user(image: &spec::Image) -> ImageUser {
    let (uid, gid) = image.user_ids();
    ImageUser { uid, gid }
}

/// `image.pull_secrets` as the pod's `imagePullSecrets`, omitted when empty.
fn image_pull_secrets(names: &[String]) -> Option<Vec<core::LocalObjectReference>> {
    if names.is_empty() {
        return None;
    }
    Some(names.iter().map(|name| core::LocalObjectReference { name: name.clone() }).collect())
}

fn container_security_context(user: ImageUser) -> core::SecurityContext {
    core::SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(core::Capabilities { add: None, drop: Some(vec!["ALL".to_owned()]) }),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(!user.is_root()),
        run_as_user: Some(i64::from(user.uid)),
        run_as_group: Some(i64::from(user.gid)),
        seccomp_profile: Some(runtime_default_seccomp()),
        ..Default::default()
    }
}

fn pod_security_context(user: ImageUser) -> core::PodSecurityContext {
    core::PodSecurityContext {
        run_as_non_root: Some(!user.is_root()),
        seccomp_profile: Some(runtime_default_seccomp()),
        ..Default::default()
    }
}

fn runtime_default_seccomp() -> core::SeccompProfile {
    core::SeccompProfile { type_: "RuntimeDefault".to_owned(), localhost_profile: None }
}

/// Converts `[resources]`, with [`defaults::resources`] filling in each
/// value it leaves out, so the container always has CPU and memory requests
/// and limits.
fn resources(spec: &Spec) -> core::ResourceRequirements {
    let values = defaults::resources(spec);
    let list = |(cpu, memory): (String, String)| {
        BTreeMap::from([("cpu".to_owned(), Quantity(cpu)), ("memory".to_owned(), Quantity(memory))])
    };

    core::ResourceRequirements {
        requests: Some(list(values.requests)),
        limits: Some(list(values.limits)),
        claims: None,
    }
}

/// Merges `placement.node_selector` with the pool label. The pool wins when
/// both set [`POOL_LABEL`].
fn node_selector(placement: &spec::Placement) -> Option<BTreeMap<String, String>> {
    let mut selector = placement.node_selector.clone();
    if let Some(pool) = &placement.pool {
        selector.insert(POOL_LABEL.to_owned(), pool.clone());
    }
    non_empty_map(selector)
}

/// Lists the tolerations from `kuul.toml`, then the one for the pool's
/// `kuul.dev/pool=<pool>:NoSchedule` taint.
fn tolerations(placement: &spec::Placement) -> Option<Vec<core::Toleration>> {
    let mut tolerations: Vec<core::Toleration> = placement.tolerations.iter().map(toleration).collect();

    if let Some(pool) = &placement.pool {
        tolerations.push(core::Toleration {
            key: Some(POOL_LABEL.to_owned()),
            operator: Some("Equal".to_owned()),
            value: Some(pool.clone()),
            effect: Some("NoSchedule".to_owned()),
            toleration_seconds: None,
        });
    }

    non_empty_vec(tolerations)
}

fn toleration(toleration: &spec::Toleration) -> core::Toleration {
    core::Toleration {
        key: toleration.key.clone(),
        operator: toleration.operator.clone(),
        value: toleration.value.clone(),
        effect: toleration.effect.clone(),
        toleration_seconds: toleration.toleration_seconds,
    }
}

// The conversions below copy every field of the spec's affinity types. An
// empty list or map becomes `None`, so it is left out of the manifest.

fn affinity(affinity: &spec::Affinity) -> core::Affinity {
    core::Affinity {
        node_affinity: affinity.node_affinity.as_ref().map(node_affinity),
        pod_affinity: affinity.pod_affinity.as_ref().map(|pod| core::PodAffinity {
            required_during_scheduling_ignored_during_execution: pod_affinity_terms(
                &pod.required_during_scheduling_ignored_during_execution,
            ),
            preferred_during_scheduling_ignored_during_execution: weighted_pod_affinity_terms(
                &pod.preferred_during_scheduling_ignored_during_execution,
            ),
        }),
        pod_anti_affinity: affinity.pod_anti_affinity.as_ref().map(|pod| core::PodAntiAffinity {
            required_during_scheduling_ignored_during_execution: pod_affinity_terms(
                &pod.required_during_scheduling_ignored_during_execution,
            ),
            preferred_during_scheduling_ignored_during_execution: weighted_pod_affinity_terms(
                &pod.preferred_during_scheduling_ignored_during_execution,
            ),
        }),
    }
}

fn node_affinity(node: &spec::NodeAffinity) -> core::NodeAffinity {
    let required =
        node.required_during_scheduling_ignored_during_execution.as_ref().map(|selector| core::NodeSelector {
            node_selector_terms: selector.node_selector_terms.iter().map(node_selector_term).collect(),
        });

    let preferred = node
        .preferred_during_scheduling_ignored_during_execution
        .iter()
        .map(|term| core::PreferredSchedulingTerm {
            weight: term.weight,
            preference: node_selector_term(&term.preference),
        })
        .collect();

    core::NodeAffinity {
        required_during_scheduling_ignored_during_execution: required,
        preferred_during_scheduling_ignored_during_execution: non_empty_vec(preferred),
    }
}

fn node_selector_term(term: &spec::NodeSelectorTerm) -> core::NodeSelectorTerm {
    core::NodeSelectorTerm {
        match_expressions: node_selector_requirements(&term.match_expressions),
        match_fields: node_selector_requirements(&term.match_fields),
    }
}

fn node_selector_requirements(
    requirements: &[spec::NodeSelectorRequirement],
) -> Option<Vec<core::NodeSelectorRequirement>> {
    let converted = requirements
        .iter()
        .map(|requirement| core::NodeSelectorRequirement {
            key: requirement.key.clone(),
            operator: requirement.operator.clone(),
            values: non_empty_vec(requirement.values.clone()),
        })
        .collect();
    non_empty_vec(converted)
}

fn pod_affinity_terms(terms: &[spec::PodAffinityTerm]) -> Option<Vec<core::PodAffinityTerm>> {
    non_empty_vec(terms.iter().map(pod_affinity_term).collect())
}

fn weighted_pod_affinity_terms(terms: &[spec::WeightedPodAffinityTerm]) -> Option<Vec<core::WeightedPodAffinityTerm>> {
    let converted = terms
        .iter()
        .map(|term| core::WeightedPodAffinityTerm {
            weight: term.weight,
            pod_affinity_term: pod_affinity_term(&term.pod_affinity_term),
        })
        .collect();
    non_empty_vec(converted)
}

fn pod_affinity_term(term: &spec::PodAffinityTerm) -> core::PodAffinityTerm {
    core::PodAffinityTerm {
        label_selector: term.label_selector.as_ref().map(label_selector),
        namespace_selector: term.namespace_selector.as_ref().map(label_selector),
        namespaces: non_empty_vec(term.namespaces.clone()),
        topology_key: term.topology_key.clone(),
        match_label_keys: non_empty_vec(term.match_label_keys.clone()),
        mismatch_label_keys: non_empty_vec(term.mismatch_label_keys.clone()),
    }
}

fn label_selector(selector: &spec::LabelSelector) -> meta::LabelSelector {
    let expressions = selector
        .match_expressions
        .iter()
        .map(|requirement| meta::LabelSelectorRequirement {
            key: requirement.key.clone(),
            operator: requirement.operator.clone(),
            values: non_empty_vec(requirement.values.clone()),
        })
        .collect();

    meta::LabelSelector {
        match_labels: non_empty_map(selector.match_labels.clone()),
        match_expressions: non_empty_vec(expressions),
    }
}

fn non_empty_vec<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

fn non_empty_map<K, V>(map: BTreeMap<K, V>) -> Option<BTreeMap<K, V>> {
    (!map.is_empty()).then_some(map)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::{Value, json};

    use super::*;

    const IMAGE: &str = "127.0.0.1:5000/pg-backup:latest@sha256:0123456789abcdef";
    const POD: &str = "/spec/jobTemplate/spec/template/spec";
    const CONTAINER: &str = "/spec/jobTemplate/spec/template/spec/containers/0";

    fn parse_spec(extra: &str) -> Spec {
        let text = format!("[job]\nname = \"pg-backup\"\nschedule = \"0 3 * * *\"\ncommand = \"backup.sh\"\n{extra}");
        spec::parse(&text, Path::new("kuul.toml")).expect("test spec parses")
    }

    fn manifest_json(spec: &Spec) -> Value {
        let command = vec!["/job/backup.sh".to_owned(), "--all".to_owned()];
        serde_json::to_value(cronjob(spec, IMAGE, &command)).expect("CronJob serializes")
    }

    fn at<'a>(manifest: &'a Value, pointer: &str) -> &'a Value {
        manifest.pointer(pointer).unwrap_or_else(|| panic!("manifest has no `{pointer}`:\n{manifest:#}"))
    }

    #[test]
    fn labels_on_cronjob_job_and_pod() {
        let manifest = manifest_json(&parse_spec(""));
        let expected = json!({
            "app.kubernetes.io/name": "pg-backup",
            "app.kubernetes.io/managed-by": "kuul",
        });

        assert_eq!(at(&manifest, "/metadata/labels"), &expected);
        assert_eq!(at(&manifest, "/spec/jobTemplate/metadata/labels"), &expected);
        assert_eq!(at(&manifest, "/spec/jobTemplate/spec/template/metadata/labels"), &expected);
    }

    #[test]
    fn metadata_has_name_and_no_namespace() {
        let manifest = manifest_json(&parse_spec(""));

        assert_eq!(at(&manifest, "/metadata/name"), "pg-backup");
        assert_eq!(manifest.pointer("/metadata/namespace"), None);
    }

    #[test]
    fn cronjob_spec_scheduling_defaults() {
        let manifest = manifest_json(&parse_spec(""));

        assert_eq!(at(&manifest, "/spec/schedule"), "0 3 * * *");
        assert_eq!(at(&manifest, "/spec/timeZone"), "Etc/UTC");
        assert_eq!(at(&manifest, "/spec/concurrencyPolicy"), "Forbid");
        assert_eq!(at(&manifest, "/spec/successfulJobsHistoryLimit"), 3);
        assert_eq!(at(&manifest, "/spec/failedJobsHistoryLimit"), 3);
        assert_eq!(at(&manifest, "/spec/startingDeadlineSeconds"), 3600);
        assert_eq!(at(&manifest, "/spec/jobTemplate/spec/activeDeadlineSeconds"), 82800);
        assert_eq!(at(&manifest, "/spec/jobTemplate/spec/backoffLimit"), 2);
        assert_eq!(at(&manifest, &format!("{POD}/restartPolicy")), "Never");
        assert_eq!(manifest.pointer("/spec/suspend"), None);
        assert_eq!(manifest.pointer("/spec/jobTemplate/spec/ttlSecondsAfterFinished"), None);
    }

    #[test]
    fn cronjob_spec_explicit_settings() {
        let spec = parse_spec(
            "concurrency_policy = \"Replace\"\nstarting_deadline_seconds = 120\nactive_deadline_seconds = 900\n\
             backoff_limit = 0\nsuccessful_jobs_history_limit = 1\nfailed_jobs_history_limit = 5\n\
             restart_policy = \"OnFailure\"\nttl_seconds_after_finished = 600\nsuspend = true\n",
        );

        let manifest = manifest_json(&spec);

        assert_eq!(at(&manifest, "/spec/concurrencyPolicy"), "Replace");
        assert_eq!(at(&manifest, "/spec/startingDeadlineSeconds"), 120);
        assert_eq!(at(&manifest, "/spec/successfulJobsHistoryLimit"), 1);
        assert_eq!(at(&manifest, "/spec/failedJobsHistoryLimit"), 5);
        assert_eq!(at(&manifest, "/spec/suspend"), true);
        assert_eq!(at(&manifest, "/spec/jobTemplate/spec/activeDeadlineSeconds"), 900);
        assert_eq!(at(&manifest, "/spec/jobTemplate/spec/backoffLimit"), 0);
        assert_eq!(at(&manifest, "/spec/jobTemplate/spec/ttlSecondsAfterFinished"), 600);
        assert_eq!(at(&manifest, &format!("{POD}/restartPolicy")), "OnFailure");
    }

    #[test]
    fn timezone_from_spec_is_kept() {
        let spec = parse_spec("timezone = \"Europe/Berlin\"\n");

        let manifest = manifest_json(&spec);

        assert_eq!(at(&manifest, "/spec/timeZone"), "Europe/Berlin");
    }

    #[test]
    fn container_runs_image_command_and_workdir() {
        let spec = parse_spec("[image]\nworkdir = \"/srv/job\"\n");

        let manifest = manifest_json(&spec);

        assert_eq!(at(&manifest, &format!("{CONTAINER}/name")), "pg-backup");
        assert_eq!(at(&manifest, &format!("{CONTAINER}/image")), IMAGE);
        assert_eq!(at(&manifest, &format!("{CONTAINER}/command")), &json!(["/job/backup.sh", "--all"]));
        assert_eq!(at(&manifest, &format!("{CONTAINER}/workingDir")), "/srv/job");
        assert_eq!(at(&manifest, &format!("{POD}/containers")).as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn env_sorted_by_name() {
        let spec = parse_spec("[job.env]\nZONE = \"z\"\nALPHA = \"a\"\nMIDDLE = \"m\"\n");

        let manifest = manifest_json(&spec);

        let expected = json!([
            {"name": "ALPHA", "value": "a"},
            {"name": "MIDDLE", "value": "m"},
            {"name": "ZONE", "value": "z"},
        ]);
        assert_eq!(at(&manifest, &format!("{CONTAINER}/env")), &expected);
    }

    #[test]
    fn empty_env_and_placement_omitted() {
        let manifest = manifest_json(&parse_spec(""));

        assert_eq!(manifest.pointer(&format!("{CONTAINER}/env")), None);
        assert_eq!(manifest.pointer(&format!("{POD}/nodeSelector")), None);
        assert_eq!(manifest.pointer(&format!("{POD}/tolerations")), None);
        assert_eq!(manifest.pointer(&format!("{POD}/affinity")), None);
    }

    #[test]
    fn resources_copied_as_quantities() {
        let spec = parse_spec(
            "[resources]\nrequests = { cpu = \"250m\", memory = \"128Mi\" }\nlimits = { memory = \"1e9\" }\n",
        );

        let manifest = manifest_json(&spec);

        let expected = json!({
            "requests": {"cpu": "250m", "memory": "128Mi"},
            "limits": {"cpu": "500m", "memory": "1e9"},
        });
        assert_eq!(at(&manifest, &format!("{CONTAINER}/resources")), &expected);
    }

    #[test]
    fn resources_default_when_unset() {
        let manifest = manifest_json(&parse_spec(""));

        let expected = json!({
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        });
        assert_eq!(at(&manifest, &format!("{CONTAINER}/resources")), &expected);
    }

    #[test]
    fn security_context_for_nonroot_default() {
        let manifest = manifest_json(&parse_spec(""));

        let expected_container = json!({
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        });
        let expected_pod = json!({
            "runAsNonRoot": true,
            "seccompProfile": {"type": "RuntimeDefault"},
        });
        assert_eq!(at(&manifest, &format!("{CONTAINER}/securityContext")), &expected_container);
        assert_eq!(at(&manifest, &format!("{POD}/securityContext")), &expected_pod);
        assert_eq!(at(&manifest, &format!("{POD}/automountServiceAccountToken")), false);
    }

    #[test]
    fn security_context_for_root_user() {
        let spec = parse_spec("[image]\nuser = \"root\"\n");

        let manifest = manifest_json(&spec);

        assert_eq!(at(&manifest, &format!("{CONTAINER}/securityContext/runAsNonRoot")), false);
        assert_eq!(at(&manifest, &format!("{CONTAINER}/securityContext/runAsUser")), 0);
        assert_eq!(at(&manifest, &format!("{CONTAINER}/securityContext/runAsGroup")), 0);
        assert_eq!(at(&manifest, &format!("{POD}/securityContext/runAsNonRoot")), false);
        assert_eq!(at(&manifest, &format!("{CONTAINER}/securityContext/readOnlyRootFilesystem")), true);
    }

    #[test]
    fn image_user_forms_parse_to_ids() {
        let cases = [
            (None, ImageUser { uid: 65532, gid: 65532 }),
            (Some("nonroot"), ImageUser { uid: 65532, gid: 65532 }),
            (Some("root"), ImageUser { uid: 0, gid: 0 }),
            (Some("1000"), ImageUser { uid: 1000, gid: 1000 }),
            (Some("1000:2000"), ImageUser { uid: 1000, gid: 2000 }),
            (Some("0:1000"), ImageUser { uid: 0, gid: 1000 }),
        ];

        for (user, expected) in cases {
            let image = spec::Image { user: user.map(str::to_owned), ..Default::default() };
            assert_eq!(image_user(&image), expected, "image.user = {user:?}");
        }
    }

    #[test]
    fn tmp_volume_mounted_at_tmp() {
        let manifest = manifest_json(&parse_spec(""));

        assert_eq!(at(&manifest, &format!("{POD}/volumes")), &json!([{"name": "tmp", "emptyDir": {}}]));
        assert_eq!(at(&manifest, &format!("{CONTAINER}/volumeMounts")), &json!([{"name": "tmp", "mountPath": "/tmp"}]));
    }

    #[test]
    fn pool_adds_selector_and_toleration() {
        let spec = parse_spec("[placement]\npool = \"ops\"\n");

        let manifest = manifest_json(&spec);

        assert_eq!(at(&manifest, &format!("{POD}/nodeSelector")), &json!({"kuul.dev/pool": "ops"}));
        let expected = json!([
            {"key": "kuul.dev/pool", "operator": "Equal", "value": "ops", "effect": "NoSchedule"},
        ]);
        assert_eq!(at(&manifest, &format!("{POD}/tolerations")), &expected);
    }

    #[test]
    fn pool_merges_with_listed_placement() {
        let spec = parse_spec(
            "[placement]\npool = \"ops\"\nnode_selector = { \"disk\" = \"ssd\" }\n\
             [[placement.tolerations]]\nkey = \"dedicated\"\noperator = \"Exists\"\n\
             effect = \"NoExecute\"\ntolerationSeconds = 60\n",
        );

        let manifest = manifest_json(&spec);

        let expected_selector = json!({"disk": "ssd", "kuul.dev/pool": "ops"});
        let expected_tolerations = json!([
            {"key": "dedicated", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60},
            {"key": "kuul.dev/pool", "operator": "Equal", "value": "ops", "effect": "NoSchedule"},
        ]);
        assert_eq!(at(&manifest, &format!("{POD}/nodeSelector")), &expected_selector);
        assert_eq!(at(&manifest, &format!("{POD}/tolerations")), &expected_tolerations);
    }

    #[test]
    fn toleration_without_pool_copied_alone() {
        let spec = parse_spec("[[placement.tolerations]]\nkey = \"gpu\"\nvalue = \"a100\"\n");

        let manifest = manifest_json(&spec);

        assert_eq!(at(&manifest, &format!("{POD}/tolerations")), &json!([{"key": "gpu", "value": "a100"}]));
        assert_eq!(manifest.pointer(&format!("{POD}/nodeSelector")), None);
    }

    /// Builds an affinity in the API's JSON shape that sets every field of the
    /// spec's affinity types, each list and map with at least one entry.
    fn full_affinity_json() -> Value {
        let node_term = json!({
            "matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}],
            "matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["node-1"]}],
        });
        let pod_term = json!({
            "labelSelector": {
                "matchLabels": {"app": "db"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["backend"]}],
            },
            "namespaceSelector": {
                "matchLabels": {"team": "ops"},
                "matchExpressions": [{"key": "env", "operator": "Exists"}],
            },
            "namespaces": ["databases"],
            "topologyKey": "kubernetes.io/hostname",
            "matchLabelKeys": ["pod-template-hash"],
            "mismatchLabelKeys": ["tenant"],
        });
        let pod_affinity = json!({
            "requiredDuringSchedulingIgnoredDuringExecution": [pod_term],
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 50, "podAffinityTerm": pod_term},
            ],
        });

        json!({
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [node_term]},
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 10, "preference": node_term},
                ],
            },
            "podAffinity": pod_affinity,
            "podAntiAffinity": pod_affinity,
        })
    }

    #[test]
    fn affinity_round_trips_every_field() {
        let source = full_affinity_json();
        let parsed: spec::Affinity =
            serde_json::from_value(source.clone()).expect("affinity JSON matches the spec types");

        let converted = serde_json::to_value(affinity(&parsed)).expect("affinity serializes");

        assert_eq!(converted, source);
    }

    #[test]
    fn affinity_in_pod_spec() {
        let mut spec = parse_spec("");
        spec.placement.affinity =
            Some(serde_json::from_value(full_affinity_json()).expect("affinity JSON matches the spec types"));

        let manifest = manifest_json(&spec);

        assert_eq!(at(&manifest, &format!("{POD}/affinity")), &full_affinity_json());
    }

    #[test]
    fn affinity_empty_lists_omitted() {
        let parsed: spec::Affinity = serde_json::from_value(json!({
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "zone", "operator": "Exists", "values": []},
                ]}],
            }},
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 1, "podAffinityTerm": {"topologyKey": "zone", "labelSelector": {}}},
            ]},
        }))
        .expect("affinity JSON matches the spec types");

        let converted = serde_json::to_value(affinity(&parsed)).expect("affinity serializes");

        let expected = json!({
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "Exists"}]}],
            }},
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 1, "podAffinityTerm": {"topologyKey": "zone", "labelSelector": {}}},
            ]},
        });
        assert_eq!(converted, expected);
    }

    #[test]
    fn yaml_starts_with_api_version_and_kind() {
        let yaml = to_yaml(&cronjob(&parse_spec(""), IMAGE, &["/job/backup.sh".to_owned()]));

        assert!(yaml.starts_with("apiVersion: batch/v1\nkind: CronJob\n"), "YAML starts:\n{yaml}");
    }

    #[test]
    fn yaml_quotes_yaml11_lookalikes_in_env() {
        let spec = parse_spec("[job.env]\nENABLED = \"yes\"\nMODE = \"0755\"\nSWITCH = \"on\"\nCOUNT = \"1e3\"\n");

        let yaml = to_yaml(&cronjob(&spec, IMAGE, &["/job/backup.sh".to_owned()]));

        for value in ["yes", "0755", "on", "1e3"] {
            let double = format!("value: \"{value}\"\n");
            let single = format!("value: '{value}'\n");
            assert!(yaml.contains(&double) || yaml.contains(&single), "env value `{value}` is not quoted in:\n{yaml}");
        }
    }

    #[test]
    fn yaml_keeps_long_image_on_one_line() {
        let image = format!("127.0.0.1:5000/{}/pg-backup:v1@sha256:{}", "team".repeat(10), "ab".repeat(32));

        let yaml = to_yaml(&cronjob(&parse_spec(""), &image, &["/job/backup.sh".to_owned()]));

        assert!(yaml.contains(&format!("image: {image}\n")), "image is not on one line:\n{yaml}");
    }

    #[test]
    fn yaml_writes_multiline_argument_as_literal_block() {
        let command = ["/bin/sh".to_owned(), "-c".to_owned(), "set -eu\necho done\n".to_owned()];

        let yaml = to_yaml(&cronjob(&parse_spec(""), IMAGE, &command));

        assert!(yaml.contains("- |\n              set -eu\n              echo done\n"), "no literal block in:\n{yaml}");
    }

    #[test]
    fn json_has_api_version_and_kind() {
        let json_text = to_json(&cronjob(&parse_spec(""), IMAGE, &["/job/backup.sh".to_owned()]));
        let manifest: Value = serde_json::from_str(&json_text).expect("to_json returns JSON");

        assert_eq!(at(&manifest, "/apiVersion"), "batch/v1");
        assert_eq!(at(&manifest, "/kind"), "CronJob");
    }
}

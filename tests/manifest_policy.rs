//! The CronJob policy through the library's public API: errors that the API
//! server would raise after the `[kubernetes]` fragments are merged, and
//! the warnings about settings it accepts but that break periodic jobs.
//! Every warning must name the kuul.toml key to change, and every accepted
//! manifest must pass `kubernetes-validate --strict`.

mod support;

use std::path::Path;

use jiff::Timestamp;
use kuul::k8s::{Diagnostic, ManifestError, Rendered, render};
use serde_json::{Value, json};

const IMAGE: &str = "127.0.0.1:5000/job:v1@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// A fixed start for the daylight saving time search, so results do not
/// depend on the day the tests run.
const NOW: &str = "2026-01-01T00:00:00Z";

/// A job that produces no warnings. Each test adds or replaces keys.
const BASE: &str = r#"
[job]
name = "job"
schedule = "0 4 * * *"
command = "/job/run.sh"

[resources]
requests = { cpu = "100m", memory = "64Mi" }
limits = { cpu = "1", memory = "128Mi" }
"#;

fn spec(text: &str) -> kuul::spec::Spec {
    kuul::spec::parse(text, Path::new("kuul.toml")).unwrap_or_else(|error| panic!("spec rejected:\n{error}"))
}

/// Adds `job_keys` to `[job]` of [`BASE`] and appends `tables`.
fn with(job_keys: &str, tables: &str) -> String {
    BASE.replace("[job]\n", &format!("[job]\n{job_keys}\n")) + tables
}

fn try_render(text: &str) -> Result<Rendered, ManifestError> {
    let now: Timestamp = NOW.parse().expect("valid timestamp");
    render(&spec(text), IMAGE, &["/job/run.sh".to_owned()], now)
}

/// Renders `text`, which must be accepted, and checks the manifest with
/// `kubernetes-validate --strict`, as every manifest kuul emits must pass.
fn rendered(text: &str) -> Rendered {
    let rendered = try_render(text).unwrap_or_else(|error| panic!("manifest rejected:\n{error}"));
    support::kubernetes_validate(&kuul::k8s::to_yaml(&rendered.cronjob));
    rendered
}

fn warnings(text: &str) -> Vec<Diagnostic> {
    rendered(text).warnings
}

fn errors(text: &str) -> Vec<Diagnostic> {
    match try_render(text) {
        Ok(rendered) => panic!("manifest accepted with warnings {:#?}", rendered.warnings),
        Err(error) => error.errors,
    }
}

fn manifest(text: &str) -> Value {
    serde_json::to_value(rendered(text).cronjob).expect("CronJob serializes")
}

/// Asserts that exactly one diagnostic has `key`, and that its message
/// contains `text`.
fn assert_one(diagnostics: &[Diagnostic], key: &str, text: &str) {
    let matching: Vec<&Diagnostic> = diagnostics.iter().filter(|diagnostic| diagnostic.key == key).collect();
    assert_eq!(matching.len(), 1, "expected one diagnostic for `{key}` in {diagnostics:#?}");
    assert!(matching[0].message.contains(text), "message for `{key}` lacks `{text}`: {}", matching[0].message);
}

/// Returns the problems `kuul::spec::parse` reports, as `key: message`.
fn spec_problems(text: &str) -> Vec<String> {
    match kuul::spec::parse(text, Path::new("kuul.toml")) {
        Ok(_) => panic!("spec accepted:\n{text}"),
        Err(kuul::spec::SpecError::Invalid { problems, .. }) => problems
            .into_iter()
            .map(|problem| format!("{}: {} (hint: {})", problem.key, problem.message, problem.hint.unwrap_or_default()))
            .collect(),
        Err(error) => panic!("unexpected error: {error}"),
    }
}

fn assert_spec_problem(text: &str, key: &str, expected: &str) {
    let problems = spec_problems(text);
    let found = problems.iter().any(|problem| problem.starts_with(&format!("{key}: ")) && problem.contains(expected));
    assert!(found, "no problem for `{key}` containing `{expected}` in {problems:#?}");
}

#[test]
fn base_job_has_no_warnings() {
    assert_eq!(warnings(BASE), []);
}

#[test]
fn settings_keys_reach_the_manifest() {
    let manifest = manifest(&with(
        "concurrency_policy = \"Replace\"\nstarting_deadline_seconds = 60\nactive_deadline_seconds = 3000\n\
         backoff_limit = 1\nsuccessful_jobs_history_limit = 2\nfailed_jobs_history_limit = 4\n\
         restart_policy = \"OnFailure\"\nttl_seconds_after_finished = 86400",
        "",
    ));

    assert_eq!(manifest.pointer("/spec/concurrencyPolicy"), Some(&json!("Replace")));
    assert_eq!(manifest.pointer("/spec/startingDeadlineSeconds"), Some(&json!(60)));
    assert_eq!(manifest.pointer("/spec/successfulJobsHistoryLimit"), Some(&json!(2)));
    assert_eq!(manifest.pointer("/spec/failedJobsHistoryLimit"), Some(&json!(4)));
    assert_eq!(manifest.pointer("/spec/jobTemplate/spec/activeDeadlineSeconds"), Some(&json!(3000)));
    assert_eq!(manifest.pointer("/spec/jobTemplate/spec/backoffLimit"), Some(&json!(1)));
    assert_eq!(manifest.pointer("/spec/jobTemplate/spec/ttlSecondsAfterFinished"), Some(&json!(86400)));
    assert_eq!(manifest.pointer("/spec/jobTemplate/spec/template/spec/restartPolicy"), Some(&json!("OnFailure")));
}

// Validation of the new keys, as the API server does it.

#[test]
fn concurrency_policy_case_sensitive() {
    assert_spec_problem(&with("concurrency_policy = \"forbid\"", ""), "job.concurrency_policy", "use `Forbid`");
}

#[test]
fn concurrency_policy_unknown_value() {
    assert_spec_problem(&with("concurrency_policy = \"Queue\"", ""), "job.concurrency_policy", "`Queue`");
}

#[test]
fn restart_policy_always_rejected() {
    assert_spec_problem(&with("restart_policy = \"Always\"", ""), "job.restart_policy", "`Always` is not allowed");
}

#[test]
fn negative_limits_rejected() {
    for key in [
        "starting_deadline_seconds",
        "backoff_limit",
        "successful_jobs_history_limit",
        "failed_jobs_history_limit",
        "ttl_seconds_after_finished",
    ] {
        assert_spec_problem(&with(&format!("{key} = -1"), ""), &format!("job.{key}"), "negative value `-1`");
    }
}

#[test]
fn active_deadline_zero_rejected() {
    assert_spec_problem(&with("active_deadline_seconds = 0", ""), "job.active_deadline_seconds", "below 1 second");
}

#[test]
fn schedule_tz_anywhere_rejected() {
    let text = BASE.replace("schedule = \"0 4 * * *\"", "schedule = \"0 4 * * * TZ=UTC\"");
    assert_spec_problem(&text, "job.schedule", "time zone in schedule");
}

// Fragments: what they may not set, checked before the merge.

#[test]
fn fragment_modelled_field_names_key() {
    let text = with("", "[kubernetes.cronjob.spec]\nconcurrencyPolicy = \"Allow\"\n");
    assert_spec_problem(&text, "kubernetes.cronjob.spec.concurrencyPolicy", "job.concurrency_policy");
}

#[test]
fn fragment_selector_rejected() {
    let text = with("", "[kubernetes.cronjob.spec.jobTemplate.spec.selector]\nmatchLabels = { a = \"b\" }\n");
    assert_spec_problem(&text, "kubernetes.cronjob.spec.jobTemplate.spec.selector", "cannot be set");
}

#[test]
fn fragment_containers_rejected() {
    let text = with("", "[[kubernetes.cronjob.spec.jobTemplate.spec.template.spec.containers]]\nname = \"x\"\n");
    assert_spec_problem(
        &text,
        "kubernetes.cronjob.spec.jobTemplate.spec.template.spec.containers",
        "kubernetes.container",
    );
}

#[test]
fn fragment_image_rejected() {
    let text = with("", "[kubernetes.container]\nimage = \"busybox:latest\"\n");
    assert_spec_problem(&text, "kubernetes.container.image", "pins the image");
}

#[test]
fn fragment_kuul_label_rejected() {
    let text = with("", "[kubernetes.cronjob.metadata.labels]\n\"app.kubernetes.io/name\" = \"other\"\n");
    assert_spec_problem(
        &text,
        "kubernetes.cronjob.metadata.labels.\"app.kubernetes.io/name\"",
        "label `app.kubernetes.io/name` is set by kuul",
    );
}

#[test]
fn fragment_toml_date_rejected() {
    let text = with("", "[kubernetes.cronjob.metadata.annotations]\nsince = 2026-01-01\n");
    assert_spec_problem(&text, "kubernetes.cronjob.metadata.annotations.since", "TOML date");
}

#[test]
fn fragment_env_conflicts_with_job_env() {
    let text = with("", "[job.env]\nA = \"1\"\n[kubernetes.container]\nenv = [{ name = \"B\", value = \"2\" }]\n");
    assert_spec_problem(&text, "kubernetes.container.env", "both `job.env`");
}

// Fragments: merged, then checked.

#[test]
fn fragment_merges_into_container() {
    let text = with("", "[kubernetes.container]\nenvFrom = [{ secretRef = { name = \"db\" } }]\n");

    let manifest = manifest(&text);

    let container = manifest.pointer("/spec/jobTemplate/spec/template/spec/containers/0").expect("container");
    assert_eq!(container.pointer("/envFrom/0/secretRef/name"), Some(&json!("db")));
    assert_eq!(container.pointer("/image"), Some(&json!(IMAGE)));
    assert_eq!(container.pointer("/securityContext/readOnlyRootFilesystem"), Some(&json!(true)));
}

#[test]
fn fragment_merges_labels_and_keeps_kuul_labels() {
    let text = with(
        "",
        "[kubernetes.cronjob.metadata]\nlabels = { team = \"ops\" }\nannotations = { owner = \"ops@example.com\" }\n",
    );

    let manifest = manifest(&text);

    assert_eq!(manifest.pointer("/metadata/labels/team"), Some(&json!("ops")));
    assert_eq!(manifest.pointer("/metadata/labels/app.kubernetes.io~1managed-by"), Some(&json!("kuul")));
    assert_eq!(manifest.pointer("/metadata/annotations/owner"), Some(&json!("ops@example.com")));
}

#[test]
fn fragment_unknown_field_rejected() {
    let text = with("", "[kubernetes.cronjob.spec.jobTemplate.spec]\npodFailurePolcy = { rules = [] }\n");
    assert_one(
        &errors(&text),
        "kubernetes.cronjob.spec.jobTemplate.spec.podFailurePolcy",
        "unknown field `podFailurePolcy`",
    );
}

#[test]
fn fragment_unknown_container_field_rejected() {
    let text = with("", "[kubernetes.container]\nenvFromm = []\n");
    assert_one(&errors(&text), "kubernetes.container.envFromm", "unknown field");
}

#[test]
fn fragment_wrong_type_rejected() {
    let text = with("", "[kubernetes.cronjob.spec.jobTemplate.spec]\nparallelism = \"two\"\n");
    assert_one(&errors(&text), "kubernetes", "not a valid `batch/v1` CronJob");
}

#[test]
fn fragment_negative_parallelism_rejected() {
    let text = with("", "[kubernetes.cronjob.spec.jobTemplate.spec]\nparallelism = -1\n");
    assert_one(&errors(&text), "kubernetes.cronjob.spec.jobTemplate.spec.parallelism", "negative value `-1`");
}

#[test]
fn fragment_invalid_label_rejected() {
    let text = with("", "[kubernetes.cronjob.metadata.labels]\n\"bad key!\" = \"x\"\n");
    assert_one(&errors(&text), "kubernetes.cronjob.metadata.labels", "invalid label key `bad key!`");
}

#[test]
fn fragment_invalid_label_value_rejected() {
    let text = with("", "[kubernetes.cronjob.spec.jobTemplate.metadata.labels]\nteam = \"-ops\"\n");
    assert_one(&errors(&text), "kubernetes.cronjob.spec.jobTemplate.metadata.labels", "invalid value `-ops`");
}

#[test]
fn fragment_annotations_too_large_rejected() {
    let value = "x".repeat(300 * 1024);
    let text = with("", &format!("[kubernetes.cronjob.metadata.annotations]\nbig = \"{value}\"\n"));
    assert_one(&errors(&text), "kubernetes.cronjob.metadata.annotations", "more than the maximum of 262144");
}

#[test]
fn fragment_init_container_request_above_limit() {
    let text = with(
        "",
        "[[kubernetes.cronjob.spec.jobTemplate.spec.template.spec.initContainers]]\n\
         name = \"wait\"\nimage = \"127.0.0.1:5000/wait@sha256:00\"\n\
         resources = { requests = { cpu = \"2\" }, limits = { cpu = \"1\" } }\n",
    );
    let key = "kubernetes.cronjob.spec.jobTemplate.spec.template.spec.initContainers[0].resources";
    assert_one(&errors(&text), key, "cpu request `2` is greater than the limit `1`");
}

// Warnings: accepted by the API server, wrong in production.

#[test]
fn warn_starting_deadline_below_controller_delay() {
    assert_one(
        &warnings(&with("starting_deadline_seconds = 5", "")),
        "job.starting_deadline_seconds",
        "may never start",
    );
}

#[test]
fn warn_starting_deadline_covers_many_runs() {
    let text = with("starting_deadline_seconds = 7200", "").replace("0 4 * * *", "* * * * *");
    assert_one(&warnings(&text), "job.starting_deadline_seconds", "more than 100 runs");
}

#[test]
fn warn_allow_without_short_deadline() {
    let text = with("concurrency_policy = \"Allow\"\nactive_deadline_seconds = 90000", "");
    assert_one(&warnings(&text), "job.concurrency_policy", "runs pile up");
}

#[test]
fn warn_forbid_with_long_deadline() {
    let text = with("active_deadline_seconds = 86400", "");
    assert_one(&warnings(&text), "job.active_deadline_seconds", "one hung run blocks every later run");
}

#[test]
fn no_warning_for_replace_with_long_deadline() {
    assert_eq!(warnings(&with("concurrency_policy = \"Replace\"\nactive_deadline_seconds = 86400", "")), []);
}

#[test]
fn warn_schedule_in_dst_switch_hours() {
    let text = with("timezone = \"Europe/Berlin\"", "").replace("0 4 * * *", "30 2 * * *");
    let warnings = warnings(&text);

    assert_one(&warnings, "job.schedule", "on 2026-03-29 the clocks jump from 02:00 to 03:00, so 02:30 does not exist");
    assert_one(
        &warnings,
        "job.schedule",
        "on 2026-10-25 the clocks go back from 03:00 to 02:00, so 02:30 occurs twice",
    );
}

#[test]
fn no_dst_warning_outside_switch_hours() {
    assert_eq!(warnings(&with("timezone = \"Europe/Berlin\"", "")), []);
}

#[test]
fn warn_no_resources() {
    let text = BASE.split("[resources]").next().expect("BASE has a job table").to_owned();
    assert_one(&warnings(&text), "resources", "no resource requests or limits");
}

#[test]
fn warn_suspended() {
    assert_one(&warnings(&with("suspend = true", "")), "job.suspend", "starts no runs");
}

#[test]
fn warn_no_failed_history() {
    assert_one(&warnings(&with("failed_jobs_history_limit = 0", "")), "job.failed_jobs_history_limit", "logs are lost");
}

#[test]
fn warn_star_range_in_schedule() {
    let text = BASE.replace("0 4 * * *", "0 *-4 * * *");
    assert_one(&warnings(&text), "job.schedule", "means `*`");
}

#[test]
fn warn_init_container_mutable_tag_and_no_resources() {
    let text = with(
        "",
        "[[kubernetes.cronjob.spec.jobTemplate.spec.template.spec.initContainers]]\nname = \"wait\"\nimage = \"busybox:latest\"\n",
    );
    let warnings = warnings(&text);

    let keyed: Vec<&Diagnostic> = warnings.iter().filter(|warning| warning.key == "kubernetes.cronjob").collect();
    assert_eq!(keyed.len(), 2, "{warnings:#?}");
    assert!(keyed.iter().any(|warning| warning.message.contains("by tag without a digest")), "{warnings:#?}");
    assert!(keyed.iter().any(|warning| warning.message.contains("lacks a CPU or memory request")), "{warnings:#?}");
}

#[test]
fn warn_writable_root_filesystem() {
    let text = with("", "[kubernetes.container.securityContext]\nreadOnlyRootFilesystem = false\n");
    assert_one(&warnings(&text), "kubernetes.container.securityContext.readOnlyRootFilesystem", "restricted");
}

#[test]
fn warn_host_network() {
    let text = with("", "[kubernetes.cronjob.spec.jobTemplate.spec.template.spec]\nhostNetwork = true\n");
    assert_one(&warnings(&text), "kubernetes.cronjob.spec.jobTemplate.spec.template.spec.hostNetwork", "hostNetwork");
}

#[test]
fn warn_tmp_mount_replaced() {
    let text = with(
        "",
        "[kubernetes.container]\nvolumeMounts = [{ name = \"backup\", mountPath = \"/backup\" }]\n\
         [kubernetes.cronjob.spec.jobTemplate.spec.template.spec]\n\
         volumes = [{ name = \"backup\", persistentVolumeClaim = { claimName = \"backup\" } }]\n",
    );
    assert_one(&warnings(&text), "kubernetes.container.volumeMounts", "nothing is mounted at `/tmp`");
}

#[test]
fn mount_without_volume_rejected() {
    let text = with(
        "",
        "[kubernetes.container]\nvolumeMounts = [{ name = \"backup\", mountPath = \"/backup\" }, { name = \"tmp\", mountPath = \"/tmp\" }]\n\
         [kubernetes.cronjob.spec.jobTemplate.spec.template.spec]\n\
         volumes = [{ name = \"backup\", persistentVolumeClaim = { claimName = \"backup\" } }]\n",
    );
    assert_one(&errors(&text), "kubernetes.container.volumeMounts[1].name", "volume `tmp` mounted at `/tmp`");
}

#[test]
fn duplicate_volume_name_rejected() {
    let text = with(
        "",
        "[kubernetes.cronjob.spec.jobTemplate.spec.template.spec]\n\
         volumes = [{ name = \"tmp\", emptyDir = {} }, { name = \"tmp\", emptyDir = {} }]\n",
    );
    assert_one(
        &errors(&text),
        "kubernetes.cronjob.spec.jobTemplate.spec.template.spec.volumes[1].name",
        "volume name `tmp` is used twice",
    );
}

#[test]
fn declared_volumes_accepted() {
    let text = with(
        "",
        "[kubernetes.container]\nvolumeMounts = [{ name = \"backup\", mountPath = \"/backup\" }, { name = \"tmp\", mountPath = \"/tmp\" }]\n\
         [kubernetes.cronjob.spec.jobTemplate.spec.template.spec]\n\
         volumes = [{ name = \"backup\", persistentVolumeClaim = { claimName = \"backup\" } }, { name = \"tmp\", emptyDir = {} }]\n",
    );
    let rendered = rendered(&text);

    assert!(rendered.warnings.is_empty(), "{:#?}", rendered.warnings);
}

// Warnings that kuul's defaults prevent, checked on edited manifests.

fn warnings_for_edited(edit: impl FnOnce(&mut k8s_openapi::api::batch::v1::CronJobSpec)) -> Vec<Diagnostic> {
    let spec = spec(&BASE.replace("0 4 * * *", "*/5 * * * *"));
    let mut cronjob = kuul::k8s::cronjob(&spec, IMAGE, &["/job/run.sh".to_owned()]);
    edit(cronjob.spec.as_mut().expect("CronJob has a spec"));

    kuul::k8s::warnings::warnings(&cronjob, &spec, NOW.parse().expect("valid timestamp"))
}

#[test]
fn warn_missing_starting_deadline_on_frequent_schedule() {
    let warnings = warnings_for_edited(|spec| spec.starting_deadline_seconds = None);
    assert_one(&warnings, "job.starting_deadline_seconds", "too many missed start times");
}

#[test]
fn warn_forbid_without_active_deadline() {
    let warnings = warnings_for_edited(|spec| {
        spec.job_template.spec.as_mut().expect("Job template has a spec").active_deadline_seconds = None;
    });
    assert_one(&warnings, "job.active_deadline_seconds", "no active deadline");
}

#[test]
fn derived_defaults_have_no_timing_warnings() {
    for schedule in ["* * * * *", "*/5 * * * *", "0 * * * *", "0 4 * * *", "0 4 * * 1", "0 4 1 * *", "@every 90s"] {
        let text = BASE.replace("0 4 * * *", schedule);
        assert_eq!(warnings(&text), [], "`{schedule}`");
    }
}

//! Settings that the API server accepts but that make a periodic job
//! misbehave in production. Each warning names the kuul.toml key to change.
//! `docs/cronjob.md` lists them next to the errors.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1 as core;

use super::Diagnostic;
use super::manifest::TMP_PATH;
use crate::spec::Spec;
use crate::spec::schedule::{self, DstChange, DstChangeKind};

/// The CronJob controller notices a due run up to about this many seconds
/// late, so a shorter starting deadline can make it skip every run.
pub const CONTROLLER_DELAY_SECONDS: i64 = 10;

/// After this many missed runs the controller reports "too many missed
/// start times" (a `TooManyMissedTimes` event).
pub const MAX_MISSED_RUNS: i64 = 100;

/// A schedule at least this frequent needs a starting deadline.
pub const FREQUENT_INTERVAL: SignedDuration = SignedDuration::from_hours(1);

/// How far ahead to look for daylight saving time changes.
const DST_HORIZON: SignedDuration = SignedDuration::from_hours(366 * 24);

/// The fragment key prefixes of the container and the pod.
const CONTAINER_KEY: &str = "kubernetes.container";
const POD_KEY: &str = "kubernetes.cronjob.spec.jobTemplate.spec.template.spec";

/// Returns every warning for the final `cronjob` built from `spec`. `now`
/// is where the search for daylight saving time changes starts.
pub fn warnings(cronjob: &CronJob, spec: &Spec, now: Timestamp) -> Vec<Diagnostic> {
    let mut warnings = Vec::new();
    let Ok(schedule) = schedule::parse(&spec.job.schedule) else {
        return warnings;
    };
    let interval = schedule.min_interval();

    for warning in schedule.warnings() {
        if !warning.is_error() {
            warnings.push(Diagnostic::new("job.schedule", warning.to_string(), warning.hint()));
        }
    }
    check_dst(&schedule, spec, now, &mut warnings);

    let Some(cronjob_spec) = &cronjob.spec else {
        return warnings;
    };
    let job = cronjob_spec.job_template.spec.as_ref();
    let active_deadline = job.and_then(|job| job.active_deadline_seconds);

    check_starting_deadline(cronjob_spec.starting_deadline_seconds, interval, &mut warnings);
    check_overlap(
        cronjob_spec.concurrency_policy.as_deref().unwrap_or("Allow"),
        active_deadline,
        interval,
        &mut warnings,
    );

    if cronjob_spec.suspend == Some(true) {
        warnings.push(Diagnostic::new(
            "job.suspend",
            "the CronJob is suspended, so it starts no runs",
            "remove `suspend` or set it to `false` when the job should run",
        ));
    }
    if cronjob_spec.failed_jobs_history_limit == Some(0) {
        warnings.push(Diagnostic::new(
            "job.failed_jobs_history_limit",
            "failed runs are deleted at once, so their logs are lost",
            "keep at least 1 failed Job, such as `failed_jobs_history_limit = 3`",
        ));
    }

    if let Some(pod) = job.and_then(|job| job.template.spec.as_ref()) {
        check_resources(pod, spec, &mut warnings);
        check_images(pod, &mut warnings);
        check_security(pod, spec, &mut warnings);
    }
    warnings
}

fn check_starting_deadline(deadline: Option<i64>, interval: Option<SignedDuration>, warnings: &mut Vec<Diagnostic>) {
    let key = "job.starting_deadline_seconds";
    let Some(interval) = interval else {
        return;
    };

    match deadline {
        Some(seconds) if seconds < CONTROLLER_DELAY_SECONDS => warnings.push(Diagnostic::new(
            key,
            format!("starting deadline of {seconds} seconds is shorter than the controller's delay of up to {CONTROLLER_DELAY_SECONDS} seconds, so runs may never start"),
            format!("set at least `{CONTROLLER_DELAY_SECONDS}`, or remove the key to derive it from the schedule"),
        )),
        Some(seconds) if seconds / interval.as_secs().max(1) > MAX_MISSED_RUNS => warnings.push(Diagnostic::new(
            key,
            format!(
                "starting deadline of {seconds} seconds covers more than {MAX_MISSED_RUNS} runs, so after an outage the controller reports too many missed start times"
            ),
            "lower it below the schedule interval, or remove the key to derive it from the schedule",
        )),
        None if interval <= FREQUENT_INTERVAL => warnings.push(Diagnostic::new(
            key,
            "no starting deadline on a schedule that runs at least hourly: after an outage the controller counts every missed run and can give up with too many missed start times",
            "set a deadline shorter than the interval, or remove the key to let kuul derive it",
        )),
        _ => {}
    }
}

/// Warns when a run can still be active when the next one is due.
fn check_overlap(
    policy: &str,
    active_deadline: Option<i64>,
    interval: Option<SignedDuration>,
    warnings: &mut Vec<Diagnostic>,
) {
    let Some(interval) = interval else {
        return;
    };
    let interval_seconds = interval.as_secs();
    let outlives = active_deadline.is_none_or(|deadline| deadline >= interval_seconds);
    if !outlives {
        return;
    }

    let deadline_text = match active_deadline {
        Some(seconds) => format!("an active deadline of {seconds} seconds"),
        None => "no active deadline".to_owned(),
    };
    match policy {
        "Allow" => warnings.push(Diagnostic::new(
            "job.concurrency_policy",
            format!("concurrency policy `Allow` with {deadline_text} on a schedule that runs every {}: slow runs pile up", human_duration(interval)),
            "use `Forbid` (the default), or set `job.active_deadline_seconds` below the interval",
        )),
        "Forbid" => warnings.push(Diagnostic::new(
            "job.active_deadline_seconds",
            format!("concurrency policy `Forbid` with {deadline_text} on a schedule that runs every {}: one hung run blocks every later run", human_duration(interval)),
            format!("set it below {interval_seconds}, or remove the key to derive it from the schedule"),
        )),
        _ => {}
    }
}

fn check_dst(schedule: &schedule::Schedule, spec: &Spec, now: Timestamp, warnings: &mut Vec<Diagnostic>) {
    let until = now.checked_add(DST_HORIZON).unwrap_or(now);
    let Ok(changes) = schedule.dst_changes(&spec.job.timezone, now, until) else {
        return;
    };

    let skipped = changes.iter().find(|change| change.kind == DstChangeKind::Skipped);
    let repeated = changes.iter().find(|change| change.kind == DstChangeKind::Repeated);
    let effects: Vec<String> = [skipped, repeated].into_iter().flatten().map(describe_change).collect();
    if effects.is_empty() {
        return;
    }

    warnings.push(Diagnostic::new(
        "job.schedule",
        format!(
            "schedule `{}` in `{}` runs when the clocks change for daylight saving time: {}",
            spec.job.schedule,
            spec.job.timezone,
            effects.join(", and ")
        ),
        "move the run out of the hours when the clocks change (often 01:00 to 03:00), or set `job.timezone = \"Etc/UTC\"`",
    ));
}

fn describe_change(change: &DstChange) -> String {
    let date = change.wall_time.date();
    let time = change.wall_time.strftime("%H:%M");
    match change.kind {
        DstChangeKind::Skipped => format!(
            "on {date} the clocks jump from {} to {}, so {time} does not exist and that run is skipped",
            change.clock_from.strftime("%H:%M"),
            change.clock_to.strftime("%H:%M")
        ),
        DstChangeKind::Repeated => format!(
            "on {date} the clocks go back from {} to {}, so {time} occurs twice and the job runs twice",
            change.clock_from.strftime("%H:%M"),
            change.clock_to.strftime("%H:%M")
        ),
    }
}

/// Warns when a container lacks a CPU or memory request or limit: a
/// namespace with a ResourceQuota rejects such pods. kuul fills in
/// defaults, so this also warns when kuul.toml relies on them.
fn check_resources(pod: &core::PodSpec, spec: &Spec, warnings: &mut Vec<Diagnostic>) {
    if super::defaults::resources_unset(spec) {
        let (cpu_request, memory_request) = super::defaults::REQUESTS;
        let (cpu_limit, memory_limit) = super::defaults::LIMITS;
        warnings.push(Diagnostic::new(
            "resources",
            format!(
                "kuul.toml sets no resource requests or limits, so kuul's defaults apply: requests cpu `{cpu_request}` and memory `{memory_request}`, limits cpu `{cpu_limit}` and memory `{memory_limit}`"
            ),
            "set `[resources.requests]` and `[resources.limits]` to what the job needs, because a job above its memory limit is killed",
        ));
    }

    let containers = pod.containers.iter().chain(pod.init_containers.iter().flatten());
    for container in containers {
        let resources = container.resources.as_ref();
        let has = |list: Option<&std::collections::BTreeMap<String, _>>, name: &str| {
            list.is_some_and(|list| list.contains_key(name))
        };
        let requests = resources.and_then(|resources| resources.requests.as_ref());
        let limits = resources.and_then(|resources| resources.limits.as_ref());
        let complete = ["cpu", "memory"].iter().all(|name| has(requests, name) && has(limits, name));
        if !complete {
            warnings.push(Diagnostic::new(
                "kubernetes.cronjob",
                format!("container `{}` lacks a CPU or memory request or limit, so a namespace with a ResourceQuota rejects the pod", container.name),
                "set `resources.requests` and `resources.limits` for `cpu` and `memory` on every container",
            ));
        }
    }
}

/// Warns about images referenced by a tag alone, which can change under
/// the same name between runs.
fn check_images(pod: &core::PodSpec, warnings: &mut Vec<Diagnostic>) {
    let containers = pod.containers.iter().chain(pod.init_containers.iter().flatten());
    for container in containers {
        let image = container.image.as_deref().unwrap_or_default();
        if !image.contains("@sha256:") {
            warnings.push(Diagnostic::new(
                "kubernetes.cronjob",
                format!(
                    "container `{}` runs `{image}` by tag without a digest, so a push to the tag changes what runs",
                    container.name
                ),
                "pin the image as `REPOSITORY:TAG@sha256:DIGEST`",
            ));
        }
    }
}

/// Warns when a fragment weakened the restricted pod security settings
/// that kuul writes.
fn check_security(pod: &core::PodSpec, spec: &Spec, warnings: &mut Vec<Diagnostic>) {
    if let Some(container) = pod.containers.first() {
        let context = container.security_context.clone().unwrap_or_default();
        let key = |field: &str| format!("{CONTAINER_KEY}.securityContext.{field}");
        if context.read_only_root_filesystem != Some(true) {
            warnings.push(weakened(key("readOnlyRootFilesystem"), "the root filesystem is writable"));
        }
        if context.allow_privilege_escalation != Some(false) {
            warnings.push(weakened(key("allowPrivilegeEscalation"), "privilege escalation is allowed"));
        }
        if context.privileged == Some(true) {
            warnings.push(weakened(key("privileged"), "the container is privileged"));
        }
        if context
            .capabilities
            .as_ref()
            .and_then(|capabilities| capabilities.add.as_ref())
            .is_some_and(|add| !add.is_empty())
        {
            warnings.push(weakened(key("capabilities.add"), "the container adds Linux capabilities"));
        }
        if context.seccomp_profile.as_ref().is_some_and(|profile| profile.type_ == "Unconfined") {
            warnings.push(weakened(key("seccompProfile"), "the container runs without a seccomp filter"));
        }
        if context.run_as_non_root == Some(false) && spec.image.user_ids().0 != 0 {
            warnings.push(weakened(key("runAsNonRoot"), "the container may run as root"));
        }

        let mounts_tmp = container.volume_mounts.iter().flatten().any(|mount| mount.mount_path == TMP_PATH);
        if !mounts_tmp {
            warnings.push(Diagnostic::new(
                format!("{CONTAINER_KEY}.volumeMounts"),
                format!("nothing is mounted at `{TMP_PATH}`, so with the read-only root filesystem the job cannot write temporary files"),
                format!("keep the `tmp` emptyDir volume and its mount at `{TMP_PATH}` when replacing `volumes` or `volumeMounts`"),
            ));
        }
    }

    for (field, enabled) in [("hostNetwork", pod.host_network), ("hostPID", pod.host_pid), ("hostIPC", pod.host_ipc)] {
        if enabled == Some(true) {
            warnings.push(weakened(format!("{POD_KEY}.{field}"), &format!("`{field}` is enabled")));
        }
    }
}

fn weakened(key: String, weakness: &str) -> Diagnostic {
    Diagnostic::new(
        key,
        format!("{weakness}, so the pod no longer meets the Pod Security Standards `restricted` profile"),
        "remove the setting unless the job needs it, because namespaces that enforce `restricted` reject the pod",
    )
}

/// Formats a duration in the largest whole unit, such as `5 minutes`.
fn human_duration(duration: SignedDuration) -> String {
    let seconds = duration.as_secs();
    let (value, unit) = if seconds % 86400 == 0 {
        (seconds / 86400, "day")
    } else if seconds % 3600 == 0 {
        (seconds / 3600, "hour")
    } else if seconds % 60 == 0 {
        (seconds / 60, "minute")
    } else {
        (seconds, "second")
    };
    if value == 1 { unit.to_owned() } else { format!("{value} {unit}s") }
}

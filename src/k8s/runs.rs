//! Summaries of CronJob runs (Jobs) and the reasons runs fail, computed from
//! the Job and its pods. Pure: the objects are fetched elsewhere.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use serde::Serialize;

/// The annotation that marks a Job started by hand from a CronJob, as
/// `kubectl create job --from=cronjob/NAME` sets it.
pub const MANUAL_ANNOTATION: &str = "cronjob.kubernetes.io/instantiate";

/// The label the API server puts on a Job's pods to select them.
pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";

/// The state of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RunResult {
    /// No pod of the run has started yet.
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl std::fmt::Display for RunResult {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            RunResult::Pending => "Pending",
            RunResult::Running => "Running",
            RunResult::Succeeded => "Succeeded",
            RunResult::Failed => "Failed",
        })
    }
}

/// One run of a CronJob.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    /// The Job name.
    pub name: String,
    pub start: Option<Timestamp>,
    /// When the run succeeded or failed.
    pub end: Option<Timestamp>,
    /// From start to end, or to now while the run goes on, in whole seconds.
    pub duration_seconds: Option<i64>,
    pub result: RunResult,
    /// Why the run failed or waits: `OOMKilled`, `DeadlineExceeded`,
    /// `BackoffLimitExceeded`, `ImagePullBackOff`, `Unschedulable` and the
    /// like, most specific first.
    pub reasons: Vec<String>,
    /// The message of the first reason that has one, such as the
    /// scheduler's explanation for an unschedulable pod.
    pub message: Option<String>,
    /// Whether the run was started by hand rather than by the schedule.
    pub manual: bool,
}

/// Returns the Jobs that `cronjob` owns, newest first.
pub fn owned_jobs<'a>(cronjob: &CronJob, jobs: &'a [Job]) -> Vec<&'a Job> {
    let Some(uid) = cronjob.metadata.uid.as_deref() else {
        return Vec::new();
    };

    let mut owned: Vec<&Job> = jobs
        .iter()
        .filter(|job| job.metadata.owner_references.iter().flatten().any(|owner| owner.uid == uid))
        .collect();
    owned.sort_by_key(|job| std::cmp::Reverse((created(job), job.metadata.name.clone())));
    owned
}

/// Returns the pods of `job`: those with its controller uid label, oldest
/// first.
pub fn pods_of<'a>(job: &Job, pods: &'a [Pod]) -> Vec<&'a Pod> {
    let Some(uid) = job.metadata.uid.as_deref() else {
        return Vec::new();
    };

    let mut owned: Vec<&Pod> = pods
        .iter()
        .filter(|pod| {
            pod.metadata.labels.as_ref().and_then(|labels| labels.get(CONTROLLER_UID_LABEL)).map(String::as_str)
                == Some(uid)
        })
        .collect();
    owned.sort_by_key(|pod| (pod.metadata.creation_timestamp.as_ref().map(|time| time.0), pod.metadata.name.clone()));
    owned
}

fn created(job: &Job) -> Option<Timestamp> {
    job.metadata.creation_timestamp.as_ref().map(|time| time.0)
}

/// Summarizes `job` from its status conditions and its `pods`; `now` ends
/// the duration of a run that goes on.
pub fn summarize(job: &Job, pods: &[&Pod], now: Timestamp) -> RunSummary {
    let status = job.status.clone().unwrap_or_default();
    let conditions = status.conditions.unwrap_or_default();
    let condition =
        |kind: &str| conditions.iter().find(|condition| condition.type_ == kind && condition.status == "True");

    let start = status.start_time.map(|time| time.0);
    let mut reasons = Vec::new();
    let mut message = None;
    let mut add = |reason: &str, text: Option<&str>| {
        if !reason.is_empty() && !reasons.iter().any(|known| known == reason) {
            reasons.push(reason.to_owned());
        }
        if message.is_none() {
            message = text.filter(|text| !text.is_empty()).map(str::to_owned);
        }
    };

    for pod in pods {
        for (reason, text) in pod_reasons(pod) {
            add(&reason, text.as_deref());
        }
    }

    let (result, end) = if let Some(complete) = condition("Complete") {
        let end =
            status.completion_time.map(|time| time.0).or(complete.last_transition_time.as_ref().map(|time| time.0));
        (RunResult::Succeeded, end)
    } else if let Some(failed) = condition("Failed") {
        add(failed.reason.as_deref().unwrap_or(""), failed.message.as_deref());
        (RunResult::Failed, failed.last_transition_time.as_ref().map(|time| time.0))
    } else if pods.iter().any(|pod| phase(pod) == "Running") {
        (RunResult::Running, None)
    } else if !pods.is_empty() && pods.iter().all(|pod| matches!(phase(pod), "Succeeded" | "Failed")) {
        // The pods ended but the Job controller has not set a condition yet.
        (RunResult::Running, None)
    } else {
        (RunResult::Pending, None)
    };

    let duration_seconds =
        start.map(|start| end.unwrap_or(now).duration_since(start)).map(|duration: SignedDuration| duration.as_secs());
    RunSummary {
        name: job.metadata.name.clone().unwrap_or_default(),
        start,
        end,
        duration_seconds,
        result,
        reasons,
        message,
        manual: job.metadata.annotations.as_ref().and_then(|annotations| annotations.get(MANUAL_ANNOTATION)).is_some(),
    }
}

fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|status| status.phase.as_deref()).unwrap_or("Pending")
}

/// Returns the failure and waiting reasons of one pod, each with its
/// message: a container killed for memory (`OOMKilled`, now or before a
/// restart), an image that cannot be pulled, or a pod the scheduler cannot
/// place (`Unschedulable`).
fn pod_reasons(pod: &Pod) -> Vec<(String, Option<String>)> {
    let mut reasons = Vec::new();
    let Some(status) = &pod.status else {
        return reasons;
    };

    for container in status.container_statuses.iter().flatten() {
        let terminated = [container.state.as_ref(), container.last_state.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|state| state.terminated.as_ref());
        for terminated in terminated {
            if terminated.reason.as_deref() == Some("OOMKilled") {
                reasons
                    .push(("OOMKilled".to_owned(), Some(format!("container `{}` ran out of memory", container.name))));
            }
        }

        let waiting = container.state.as_ref().and_then(|state| state.waiting.as_ref());
        if let Some(waiting) = waiting
            && let Some(reason) = waiting.reason.as_deref()
            && matches!(reason, "ImagePullBackOff" | "ErrImagePull" | "InvalidImageName" | "CreateContainerConfigError")
        {
            reasons.push((reason.to_owned(), waiting.message.clone()));
        }
    }

    let unschedulable = status.conditions.iter().flatten().find(|condition| {
        condition.type_ == "PodScheduled"
            && condition.status == "False"
            && condition.reason.as_deref() == Some("Unschedulable")
    });
    if let Some(condition) = unschedulable {
        reasons.push(("Unschedulable".to_owned(), condition.message.clone()));
    }
    reasons
}

/// Returns the reasons of a run as one phrase, such as
/// `OOMKilled, BackoffLimitExceeded`, or `-` when there are none.
pub fn reasons_text(summary: &RunSummary) -> String {
    if summary.reasons.is_empty() { "-".to_owned() } else { summary.reasons.join(", ") }
}

/// Formats whole seconds the way kubectl shows ages: `45s`, `3m05s`,
/// `2h03m`, `4d05h`.
pub fn format_duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    let (days, hours, minutes, rest) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60, seconds % 60);
    if days > 0 {
        format!("{days}d{hours:02}h")
    } else if hours > 0 {
        format!("{hours}h{minutes:02}m")
    } else if minutes > 0 {
        format!("{minutes}m{rest:02}s")
    } else {
        format!("{rest}s")
    }
}

/// Formats `time` in UTC to the minute, such as `2026-12-04 02:30Z`.
pub fn format_time(time: Option<Timestamp>) -> String {
    match time {
        Some(time) => time.strftime("%Y-%m-%d %H:%MZ").to_string(),
        None => "-".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: &str = "2026-12-04T12:00:00Z";

    fn now() -> Timestamp {
        NOW.parse().unwrap()
    }

    fn job(status: serde_json::Value) -> Job {
        serde_json::from_value(json!({
            "metadata": {"name": "backup-29000000", "uid": "job-uid"},
            "status": status,
        }))
        .unwrap()
    }

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "backup-29000000-abcde", "labels": {CONTROLLER_UID_LABEL: "job-uid"}},
            "status": status,
        }))
        .unwrap()
    }

    fn failed(reason: &str) -> serde_json::Value {
        json!({
            "startTime": "2026-12-04T02:30:00Z",
            "failed": 3,
            "conditions": [{"type": "Failed", "status": "True", "reason": reason,
                            "message": "details", "lastTransitionTime": "2026-12-04T02:32:05Z"}],
        })
    }

    #[test]
    fn summarize_complete_job_succeeds() {
        let job = job(json!({
            "startTime": "2026-12-04T02:30:00Z",
            "completionTime": "2026-12-04T02:31:05Z",
            "conditions": [{"type": "Complete", "status": "True"}],
        }));

        let summary = summarize(&job, &[], now());

        assert_eq!(summary.result, RunResult::Succeeded);
        assert_eq!(summary.duration_seconds, Some(65));
        assert!(summary.reasons.is_empty());
    }

    #[test]
    fn summarize_deadline_exceeded() {
        let summary = summarize(&job(failed("DeadlineExceeded")), &[], now());

        assert_eq!(summary.result, RunResult::Failed);
        assert_eq!(summary.reasons, ["DeadlineExceeded"]);
        assert_eq!(summary.duration_seconds, Some(125));
    }

    #[test]
    fn summarize_puts_oom_before_backoff() {
        let oom = pod(json!({
            "phase": "Failed",
            "containerStatuses": [{"name": "job", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                                   "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}],
        }));

        let summary = summarize(&job(failed("BackoffLimitExceeded")), &[&oom], now());

        assert_eq!(summary.reasons, ["OOMKilled", "BackoffLimitExceeded"]);
        assert_eq!(summary.message.as_deref(), Some("container `job` ran out of memory"));
    }

    #[test]
    fn summarize_oom_before_restart() {
        let restarted = pod(json!({
            "phase": "Running",
            "containerStatuses": [{"name": "job", "image": "x", "imageID": "", "ready": true, "restartCount": 1,
                                   "state": {"running": {}},
                                   "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}],
        }));
        let job = job(json!({"startTime": "2026-12-04T11:59:00Z", "active": 1}));

        let summary = summarize(&job, &[&restarted], now());

        assert_eq!(summary.result, RunResult::Running);
        assert_eq!(summary.reasons, ["OOMKilled"]);
        assert_eq!(summary.duration_seconds, Some(60));
    }

    #[test]
    fn summarize_image_pull_backoff_is_pending() {
        let waiting = pod(json!({
            "phase": "Pending",
            "containerStatuses": [{"name": "job", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                                   "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}}],
        }));
        let job = job(json!({"startTime": "2026-12-04T11:59:00Z", "active": 1}));

        let summary = summarize(&job, &[&waiting], now());

        assert_eq!(summary.result, RunResult::Pending);
        assert_eq!(summary.reasons, ["ImagePullBackOff"]);
        assert_eq!(summary.message.as_deref(), Some("Back-off pulling image"));
    }

    #[test]
    fn summarize_unschedulable_pod_is_pending() {
        let unschedulable = pod(json!({
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                            "message": "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."}],
        }));
        let job = job(json!({"startTime": "2026-12-04T11:59:00Z", "active": 1}));

        let summary = summarize(&job, &[&unschedulable], now());

        assert_eq!(summary.result, RunResult::Pending);
        assert_eq!(summary.reasons, ["Unschedulable"]);
        assert!(summary.message.unwrap().starts_with("0/3 nodes are available"));
    }

    #[test]
    fn summarize_marks_manual_runs() {
        let mut job = job(json!({}));
        job.metadata.annotations = Some([(MANUAL_ANNOTATION.to_owned(), "manual".to_owned())].into());

        assert!(summarize(&job, &[], now()).manual);
    }

    #[test]
    fn owned_jobs_filters_and_sorts_newest_first() {
        let cronjob: CronJob =
            serde_json::from_value(json!({"metadata": {"name": "backup", "uid": "cron-uid"}})).unwrap();
        let make = |name: &str, owner: &str, created: &str| -> Job {
            serde_json::from_value(json!({"metadata": {
                "name": name, "creationTimestamp": created,
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "x", "uid": owner}],
            }}))
            .unwrap()
        };
        let jobs = [
            make("old", "cron-uid", "2026-12-02T02:30:00Z"),
            make("other", "other-uid", "2026-12-04T02:30:00Z"),
            make("new", "cron-uid", "2026-12-03T02:30:00Z"),
        ];

        let names: Vec<&str> =
            owned_jobs(&cronjob, &jobs).iter().map(|job| job.metadata.name.as_deref().unwrap()).collect();

        assert_eq!(names, ["new", "old"]);
    }

    #[test]
    fn format_duration_uses_two_units() {
        assert_eq!(format_duration(45), "45s");
        assert_eq!(format_duration(185), "3m05s");
        assert_eq!(format_duration(7380), "2h03m");
        assert_eq!(format_duration(363_600), "4d05h");
    }
}

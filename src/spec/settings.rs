//! Validation of the CronJob and Job settings in `[job]`, with the rules of
//! the Kubernetes API server for `batch/v1`.

use super::Job;
use super::locate::KeyPath;
use super::validate::Findings;

/// The values the API server accepts for `concurrencyPolicy`.
pub const CONCURRENCY_POLICIES: [&str; 3] = ["Allow", "Forbid", "Replace"];

/// The values the API server accepts for a Job's pod `restartPolicy`.
pub const RESTART_POLICIES: [&str; 2] = ["Never", "OnFailure"];

pub(super) fn check_job_settings(job: &Job, path: &KeyPath, findings: &mut Findings) {
    if let Some(policy) = &job.concurrency_policy {
        check_one_of(policy, &CONCURRENCY_POLICIES, &path.key("concurrency_policy"), findings);
    }

    if let Some(policy) = &job.restart_policy {
        let key = path.key("restart_policy");
        if policy == "Always" {
            findings.add(
                &key,
                "restart policy `Always` is not allowed for a Job",
                "use `Never` (each retry in a new pod) or `OnFailure` (retries in the same pod)",
            );
        } else {
            check_one_of(policy, &RESTART_POLICIES, &key, findings);
        }
    }

    let non_negative = [
        ("starting_deadline_seconds", job.starting_deadline_seconds),
        ("backoff_limit", job.backoff_limit.map(i64::from)),
        ("successful_jobs_history_limit", job.successful_jobs_history_limit.map(i64::from)),
        ("failed_jobs_history_limit", job.failed_jobs_history_limit.map(i64::from)),
        ("ttl_seconds_after_finished", job.ttl_seconds_after_finished.map(i64::from)),
    ];
    for (key, value) in non_negative {
        if let Some(value) = value
            && value < 0
        {
            findings.add(
                &path.key(key),
                format!("negative value `{value}`"),
                "use 0 or more, because Kubernetes rejects negative values",
            );
        }
    }

    // Kubernetes accepts 0, but then every run fails at once with
    // `DeadlineExceeded`.
    if let Some(seconds) = job.active_deadline_seconds
        && seconds < 1
    {
        findings.add(
            &path.key("active_deadline_seconds"),
            format!("active deadline `{seconds}` is below 1 second, so every run fails at once"),
            "set the seconds a run may take, retries included, such as `3600`",
        );
    }
}

/// Adds a finding unless `value` is one of `allowed`, which are
/// case-sensitive as in the API.
fn check_one_of(value: &str, allowed: &[&str], path: &KeyPath, findings: &mut Findings) {
    if allowed.contains(&value) {
        return;
    }

    let list = allowed.iter().map(|item| format!("`{item}`")).collect::<Vec<_>>().join(", ");
    let hint = match allowed.iter().find(|item| item.eq_ignore_ascii_case(value)) {
        Some(spelled) => format!("values are case-sensitive: use `{spelled}`"),
        None => format!("use one of {list}"),
    };
    findings.add(path, format!("invalid value `{value}`"), hint);
}

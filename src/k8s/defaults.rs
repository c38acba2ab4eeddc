//! The CronJob and Job settings kuul writes, from kuul.toml or, where it is
//! silent, from defaults derived from the schedule. `docs/cronjob.md`
//! documents each rule.

use std::cmp::Ordering;

use jiff::SignedDuration;

use crate::spec::quantity;
use crate::spec::{ResourceList, Spec, schedule};

/// The default `concurrencyPolicy`: a run is skipped while the previous one
/// is still active.
pub const CONCURRENCY_POLICY: &str = "Forbid";

/// The default pod `restartPolicy`: each retry runs in a new pod.
pub const RESTART_POLICY: &str = "Never";

/// How many finished Jobs of each outcome the controller keeps.
pub const HISTORY_LIMIT: i32 = 3;

/// How many times a failed run is retried.
pub const BACKOFF_LIMIT: i32 = 2;

/// The smallest derived starting deadline. The controller may notice a due
/// run up to about 10 seconds late, so a shorter deadline can skip it.
pub const MIN_STARTING_DEADLINE_SECONDS: i64 = 10;

/// The largest derived starting deadline: a run that could not start within
/// an hour of its time is skipped.
pub const MAX_STARTING_DEADLINE_SECONDS: i64 = 3600;

/// The requests and limits used for each value that `[resources]` leaves
/// out, as `(cpu, memory)`.
pub const REQUESTS: (&str, &str) = ("50m", "64Mi");
pub const LIMITS: (&str, &str) = ("500m", "256Mi");

/// The settings of one CronJob, every default filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSettings {
    pub concurrency_policy: String,
    pub starting_deadline_seconds: i64,
    pub active_deadline_seconds: i64,
    pub backoff_limit: i32,
    pub successful_jobs_history_limit: i32,
    pub failed_jobs_history_limit: i32,
    pub restart_policy: String,
    /// `None` unless kuul.toml sets it, so finished Jobs are deleted only
    /// by the history limits.
    pub ttl_seconds_after_finished: Option<i32>,
    /// `None` unless kuul.toml sets it, so that re-applying the manifest
    /// keeps a `kubectl patch` that suspended the CronJob.
    pub suspend: Option<bool>,
}

/// CPU and memory requests and limits as quantity strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceValues {
    pub requests: (String, String),
    pub limits: (String, String),
}

/// Returns the settings for `spec`, with each value kuul.toml leaves out
/// derived from the schedule's shortest interval.
pub fn job_settings(spec: &Spec) -> JobSettings {
    let job = &spec.job;
    let interval = schedule::parse(&job.schedule).ok().and_then(|schedule| schedule.min_interval());
    let starting_deadline = job.starting_deadline_seconds.unwrap_or_else(|| starting_deadline_for(interval));
    let active_deadline =
        job.active_deadline_seconds.unwrap_or_else(|| active_deadline_for(interval, starting_deadline));

    JobSettings {
        concurrency_policy: job.concurrency_policy.clone().unwrap_or_else(|| CONCURRENCY_POLICY.to_owned()),
        starting_deadline_seconds: starting_deadline,
        active_deadline_seconds: active_deadline,
        backoff_limit: job.backoff_limit.unwrap_or(BACKOFF_LIMIT),
        successful_jobs_history_limit: job.successful_jobs_history_limit.unwrap_or(HISTORY_LIMIT),
        failed_jobs_history_limit: job.failed_jobs_history_limit.unwrap_or(HISTORY_LIMIT),
        restart_policy: job.restart_policy.clone().unwrap_or_else(|| RESTART_POLICY.to_owned()),
        ttl_seconds_after_finished: job.ttl_seconds_after_finished,
        suspend: job.suspend,
    }
}

/// Returns half the shortest interval between runs, kept between
/// [`MIN_STARTING_DEADLINE_SECONDS`] and [`MAX_STARTING_DEADLINE_SECONDS`].
/// A late run then starts closer to its own time than to the next one.
pub fn starting_deadline_for(interval: Option<SignedDuration>) -> i64 {
    let Some(interval) = interval else {
        return MAX_STARTING_DEADLINE_SECONDS;
    };
    (interval.as_secs() / 2).clamp(MIN_STARTING_DEADLINE_SECONDS, MAX_STARTING_DEADLINE_SECONDS)
}

/// Returns the shortest interval minus the starting deadline, so a run that
/// starts as late as allowed still ends before the next run is due. When
/// that is less than half the interval, returns half the interval, at least
/// 1 second.
pub fn active_deadline_for(interval: Option<SignedDuration>, starting_deadline: i64) -> i64 {
    let Some(interval) = interval else {
        return MAX_STARTING_DEADLINE_SECONDS;
    };
    let seconds = interval.as_secs();
    let remaining = seconds - starting_deadline;
    if remaining >= seconds / 2 { remaining } else { (seconds / 2).max(1) }
}

/// Returns the requests and limits for `spec`, filling in each missing
/// value. A filled-in request is never above the limit, and a filled-in
/// limit never below the request, so the pair stays valid.
pub fn resources(spec: &Spec) -> ResourceValues {
    let requests = &spec.resources.requests;
    let limits = &spec.resources.limits;

    let (cpu_request, cpu_limit) = fill_pair(requests.cpu.as_deref(), limits.cpu.as_deref(), REQUESTS.0, LIMITS.0);
    let (memory_request, memory_limit) =
        fill_pair(requests.memory.as_deref(), limits.memory.as_deref(), REQUESTS.1, LIMITS.1);

    ResourceValues { requests: (cpu_request, memory_request), limits: (cpu_limit, memory_limit) }
}

/// Returns whether `[resources]` sets none of the four values.
pub fn resources_unset(spec: &Spec) -> bool {
    let empty = |list: &ResourceList| list.cpu.is_none() && list.memory.is_none();
    empty(&spec.resources.requests) && empty(&spec.resources.limits)
}

fn fill_pair(
    request: Option<&str>,
    limit: Option<&str>,
    default_request: &str,
    default_limit: &str,
) -> (String, String) {
    let request = request.map(str::to_owned).unwrap_or_else(|| smaller(default_request, limit));
    let limit = limit.map(str::to_owned).unwrap_or_else(|| larger(default_limit, &request));
    (request, limit)
}

/// Returns `default` or, when it is smaller, `other`.
fn smaller(default: &str, other: Option<&str>) -> String {
    match other {
        Some(other) if compare(other, default) == Ordering::Less => other.to_owned(),
        _ => default.to_owned(),
    }
}

/// Returns `default` or, when it is larger, `other`.
fn larger(default: &str, other: &str) -> String {
    if compare(other, default) == Ordering::Greater { other.to_owned() } else { default.to_owned() }
}

/// Compares two quantities exactly. Invalid ones, which validation has
/// already rejected, compare equal so the default is kept.
fn compare(left: &str, right: &str) -> Ordering {
    match (quantity::parse(left), quantity::parse(right)) {
        (Ok(left), Ok(right)) => left.cmp(&right),
        _ => Ordering::Equal,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn spec(job_keys: &str, extra: &str) -> Spec {
        let text = format!("[job]\nname = \"j\"\ncommand = \"run.sh\"\n{job_keys}\n{extra}");
        crate::spec::parse(&text, Path::new("kuul.toml")).expect("test spec parses")
    }

    fn deadlines(schedule: &str) -> (i64, i64) {
        let settings = job_settings(&spec(&format!("schedule = \"{schedule}\""), ""));
        (settings.starting_deadline_seconds, settings.active_deadline_seconds)
    }

    #[test]
    fn deadlines_derived_from_interval() {
        let cases = [
            ("* * * * *", (30, 30)),
            ("*/5 * * * *", (150, 150)),
            ("0 * * * *", (1800, 1800)),
            ("0 */6 * * *", (3600, 18000)),
            ("30 2 * * *", (3600, 82800)),
            ("0 0 * * 0", (3600, 601200)),
            ("@every 10s", (10, 5)),
            ("@every 1s", (10, 1)),
        ];

        for (schedule, expected) in cases {
            assert_eq!(deadlines(schedule), expected, "`{schedule}`");
        }
    }

    #[test]
    fn explicit_settings_win() {
        let settings = job_settings(&spec(
            "schedule = \"@daily\"\nconcurrency_policy = \"Replace\"\nstarting_deadline_seconds = 60\n\
             active_deadline_seconds = 600\nbackoff_limit = 0\nsuccessful_jobs_history_limit = 1\n\
             failed_jobs_history_limit = 5\nrestart_policy = \"OnFailure\"\nttl_seconds_after_finished = 86400\n\
             suspend = true",
            "",
        ));

        let expected = JobSettings {
            concurrency_policy: "Replace".to_owned(),
            starting_deadline_seconds: 60,
            active_deadline_seconds: 600,
            backoff_limit: 0,
            successful_jobs_history_limit: 1,
            failed_jobs_history_limit: 5,
            restart_policy: "OnFailure".to_owned(),
            ttl_seconds_after_finished: Some(86400),
            suspend: Some(true),
        };
        assert_eq!(settings, expected);
    }

    #[test]
    fn explicit_starting_deadline_shapes_active_deadline() {
        let settings = job_settings(&spec("schedule = \"0 * * * *\"\nstarting_deadline_seconds = 600", ""));
        assert_eq!(settings.active_deadline_seconds, 3000);
    }

    fn resource_values(extra: &str) -> ResourceValues {
        resources(&spec("schedule = \"@daily\"", extra))
    }

    #[test]
    fn resources_default_when_unset() {
        let values = resource_values("");
        assert_eq!(values.requests, ("50m".to_owned(), "64Mi".to_owned()));
        assert_eq!(values.limits, ("500m".to_owned(), "256Mi".to_owned()));
    }

    #[test]
    fn resources_default_request_below_small_limit() {
        let values = resource_values("[resources.limits]\ncpu = \"20m\"\nmemory = \"32Mi\"\n");
        assert_eq!(values.requests, ("20m".to_owned(), "32Mi".to_owned()));
    }

    #[test]
    fn resources_default_limit_above_large_request() {
        let values = resource_values("[resources.requests]\ncpu = \"2\"\nmemory = \"1Gi\"\n");
        assert_eq!(values.limits, ("2".to_owned(), "1Gi".to_owned()));
    }

    #[test]
    fn resources_explicit_values_kept() {
        let values = resource_values("[resources.requests]\nmemory = \"100Mi\"\n[resources.limits]\ncpu = \"1\"\n");
        assert_eq!(values.requests, ("50m".to_owned(), "100Mi".to_owned()));
        assert_eq!(values.limits, ("1".to_owned(), "256Mi".to_owned()));
    }

    #[test]
    fn resources_unset_only_without_values() {
        assert!(resources_unset(&spec("schedule = \"@daily\"", "")));
        assert!(!resources_unset(&spec("schedule = \"@daily\"", "[resources.limits]\nmemory = \"1Gi\"\n")));
    }
}

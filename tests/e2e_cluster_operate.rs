//! End-to-end tests of `kuul status`, `runs`, `logs`, `run`, `suspend` and
//! `resume` against fake API servers, with snapshots of the tables.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::cluster_env::{
    ClusterEnv, IMAGE, cronjob, failed, failure, job, pod, succeeded, success, validate_sent_objects,
};
use support::fake_apiserver::{RunOutcome, RunScript};

/// The daily schedule of every seeded CronJob, so the next run changes only
/// once a day.
const DAILY: &str = "0 6 * * *";

/// Returns the next run of [`DAILY`] after now as `kuul status` prints it.
fn next_daily_run() -> String {
    let schedule = kuul::spec::schedule::parse(DAILY).unwrap();
    let next = schedule.next_runs("Etc/UTC", jiff::Timestamp::now(), 1).unwrap();
    next[0].timestamp().strftime("%Y-%m-%d %H:%MZ").to_string()
}

/// Runs kuul and replaces the next run time with `[next run]`, computed
/// before and after the run so a day boundary in between does not matter.
fn with_next_run_redacted(command: &mut assert_cmd::Command) -> String {
    let before = next_daily_run();
    let (stdout, _) = success(command);
    let after = next_daily_run();
    stdout.replace(&before, "[next run]").replace(&after, "[next run]")
}

/// Seeds a CronJob `backup` whose last run succeeded, a suspended `report`
/// whose last run ran out of memory, and an unmanaged CronJob.
fn seed_prod(env: &ClusterEnv) {
    let server = env.server(0);
    server.insert(cronjob(
        "ops",
        "backup",
        DAILY,
        false,
        json!({"lastScheduleTime": "2026-12-04T06:00:00Z", "lastSuccessfulTime": "2026-12-04T06:01:05Z"}),
    ));
    server.insert(job(
        "ops",
        "backup",
        "backup-29412360",
        "2026-12-03T06:00:00Z",
        false,
        succeeded("2026-12-03T06:00:01Z", "2026-12-03T06:00:59Z"),
    ));
    server.insert(job(
        "ops",
        "backup",
        "backup-29413800",
        "2026-12-04T06:00:00Z",
        false,
        succeeded("2026-12-04T06:00:01Z", "2026-12-04T06:01:05Z"),
    ));

    server.insert(cronjob("ops", "report", DAILY, true, json!({"lastScheduleTime": "2026-12-04T06:00:00Z"})));
    server.insert(job(
        "ops",
        "report",
        "report-29413800",
        "2026-12-04T06:00:00Z",
        false,
        failed("2026-12-04T06:00:02Z", "2026-12-04T06:03:10Z", "BackoffLimitExceeded"),
    ));
    server.insert(pod(
        "ops",
        "report-29413800",
        "report-29413800-x7k2p",
        "2026-12-04T06:00:02Z",
        "Failed",
        json!({"state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}),
    ));

    let mut unmanaged = cronjob("ops", "handmade", DAILY, false, json!({}));
    unmanaged["metadata"]["labels"] = json!({"app": "handmade"});
    server.insert(unmanaged);
}

/// Seeds a CronJob `smoke` in `default` that never ran.
fn seed_lab(env: &ClusterEnv) {
    env.server(1).insert(cronjob("default", "smoke", DAILY, false, json!({})));
}

#[test]
fn status_table_across_two_contexts() {
    let env = ClusterEnv::new(&["prod", "lab"]);
    seed_prod(&env);
    seed_lab(&env);

    let stdout = with_next_run_redacted(env.kuul().args(["status", "-A", "--context", "prod", "--context", "lab"]));

    insta::assert_snapshot!(stdout);
}

#[test]
fn status_uses_context_namespace() {
    let env = ClusterEnv::new(&["prod", "lab"]);
    seed_prod(&env);

    let (stdout, _) = success(env.kuul().args(["status"]));

    assert_eq!(stdout, "", "the current context `prod` has no namespace, so `default` is listed");
}

#[test]
fn status_json_lists_fields() {
    let env = ClusterEnv::new(&["prod"]);
    seed_prod(&env);

    let (stdout, _) = success(env.kuul().args(["status", "-n", "ops", "-o", "json"]));
    let rows: Value = serde_json::from_str(&stdout).expect("JSON output");

    assert_eq!(rows.as_array().map(Vec::len), Some(2));
    assert_eq!(rows[0]["name"], "backup");
    assert_eq!(rows[0]["context"], "prod");
    assert_eq!(rows[0]["time_zone"], "Etc/UTC");
    assert_eq!(rows[0]["last_success"], "2026-12-04T06:01:05Z");
    assert_eq!(rows[0]["last_run"]["result"], "Succeeded");
    assert_eq!(rows[0]["last_run"]["duration_seconds"], 64);
    assert_eq!(rows[1]["suspended"], true);
    assert_eq!(rows[1]["next_run"], Value::Null);
    assert_eq!(rows[1]["last_run"]["reasons"], json!(["OOMKilled", "BackoffLimitExceeded"]));
}

#[test]
fn status_yaml_output_parses() {
    let env = ClusterEnv::new(&["prod"]);
    seed_prod(&env);

    let (stdout, _) = success(env.kuul().args(["status", "-n", "ops", "-o", "yaml"]));
    let rows = support::parse_yaml(&stdout);

    assert_eq!(rows.as_array().map(Vec::len), Some(2), "{stdout}");
    assert_eq!(rows[1]["name"], "report", "{stdout}");
}

#[test]
fn status_fail_on_stale_detects_old_success() {
    let env = ClusterEnv::new(&["prod"]);
    let two_hours_ago = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(2)).to_string();
    env.server(0).insert(cronjob("ops", "backup", DAILY, false, json!({"lastSuccessfulTime": two_hours_ago})));

    let (_, stderr) = failure(env.kuul().args(["status", "-n", "ops", "--fail-on-stale", "1h"]));
    success(env.kuul().args(["status", "-n", "ops", "--fail-on-stale", "3h"]));

    assert!(stderr.contains("1 CronJobs have not succeeded within 1h00m: `ops/backup` in context `prod`"), "{stderr}");
}

#[test]
fn status_fail_on_stale_skips_suspended() {
    let env = ClusterEnv::new(&["prod"]);
    env.server(0).insert(cronjob("ops", "report", DAILY, true, json!({})));

    success(env.kuul().args(["status", "-n", "ops", "--fail-on-stale", "1h"]));
}

#[test]
fn status_unreachable_context_fails_after_others() {
    let env = ClusterEnv::new(&["prod", "lab"]);
    seed_prod(&env);
    env.server(1).require_token("another-token");

    let (stdout, stderr) = failure(env.kuul().args(["status", "-A", "--context", "prod", "--context", "lab"]));

    assert!(stdout.contains("backup"), "{stdout}");
    assert!(stderr.contains("failed to read the status of 1 contexts: `lab`"), "{stderr}");
}

#[test]
fn runs_table_lists_results_and_reasons() {
    let env = ClusterEnv::new(&["prod"]);
    seed_prod(&env);
    let server = env.server(0);
    server.insert(job(
        "ops",
        "backup",
        "backup-29412900",
        "2026-12-03T15:00:00Z",
        true,
        failed("2026-12-03T15:00:01Z", "2026-12-03T15:10:01Z", "DeadlineExceeded"),
    ));

    let (stdout, _) = success(env.kuul().args(["runs", "backup", "-n", "ops"]));

    insta::assert_snapshot!(stdout);
}

#[test]
fn runs_explain_oom_kill() {
    let env = ClusterEnv::new(&["prod"]);
    seed_prod(&env);

    let (stdout, _) = success(env.kuul().args(["runs", "report", "-n", "ops"]));

    insta::assert_snapshot!(stdout);
}

#[test]
fn runs_report_pending_reasons() {
    let env = ClusterEnv::new(&["prod"]);
    let server = env.server(0);
    server.insert(cronjob("ops", "sync", DAILY, false, json!({})));
    server.insert(job(
        "ops",
        "sync",
        "sync-1",
        "2026-12-04T06:00:00Z",
        false,
        json!({"startTime": "2026-12-04T06:00:01Z", "active": 1}),
    ));
    server.insert(pod(
        "ops",
        "sync-1",
        "sync-1-aaaaa",
        "2026-12-04T06:00:01Z",
        "Pending",
        json!({"state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}}),
    ));
    server.insert(job(
        "ops",
        "sync",
        "sync-2",
        "2026-12-04T07:00:00Z",
        false,
        json!({"startTime": "2026-12-04T07:00:01Z", "active": 1}),
    ));
    let mut unschedulable = pod("ops", "sync-2", "sync-2-bbbbb", "2026-12-04T07:00:01Z", "Pending", json!({}));
    unschedulable["status"] = json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
        "reason": "Unschedulable", "message": "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."}]});
    server.insert(unschedulable);

    let (stdout, _) = success(env.kuul().args(["runs", "sync", "-n", "ops", "-o", "json"]));
    let runs: Value = serde_json::from_str(&stdout).unwrap();

    assert_eq!(runs[0]["name"], "sync-2");
    assert_eq!(runs[0]["result"], "Pending");
    assert_eq!(runs[0]["reasons"], json!(["Unschedulable"]));
    assert_eq!(runs[1]["reasons"], json!(["ImagePullBackOff"]));
    assert_eq!(runs[1]["message"], "Back-off pulling image");
}

#[test]
fn runs_of_missing_cronjob_fails_with_hint() {
    let env = ClusterEnv::new(&["prod"]);

    let (_, stderr) = failure(env.kuul().args(["runs", "absent", "-n", "ops"]));

    assert!(stderr.contains("cronjobs.batch \"absent\" not found (404)"), "{stderr}");
    assert!(stderr.contains("hint: `kuul status --all-namespaces` lists the CronJobs kuul manages"), "{stderr}");
}

/// Seeds `backup` with two runs whose pods printed `older` and `newer`.
fn seed_logs(env: &ClusterEnv) {
    seed_prod(env);
    let server = env.server(0);
    server.insert(pod(
        "ops",
        "backup-29412360",
        "backup-29412360-aaaaa",
        "2026-12-03T06:00:01Z",
        "Succeeded",
        json!({"state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}),
    ));
    server.insert(pod(
        "ops",
        "backup-29413800",
        "backup-29413800-bbbbb",
        "2026-12-04T06:00:01Z",
        "Succeeded",
        json!({"state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}),
    ));
    server.set_logs("ops", "backup-29412360-aaaaa", "job", "older\n", None);
    server.set_logs("ops", "backup-29413800-bbbbb", "job", "newer\n", None);
}

#[test]
fn logs_print_newest_run() {
    let env = ClusterEnv::new(&["prod"]);
    seed_logs(&env);

    let (stdout, _) = success(env.kuul().args(["logs", "backup", "-n", "ops"]));

    assert_eq!(stdout, "newer\n");
}

#[test]
fn logs_run_flag_selects_run() {
    let env = ClusterEnv::new(&["prod"]);
    seed_logs(&env);

    let (stdout, _) = success(env.kuul().args(["logs", "backup", "-n", "ops", "--run", "backup-29412360"]));

    assert_eq!(stdout, "older\n");
}

#[test]
fn logs_reject_run_of_other_cronjob() {
    let env = ClusterEnv::new(&["prod"]);
    seed_logs(&env);

    let (_, stderr) = failure(env.kuul().args(["logs", "backup", "-n", "ops", "--run", "report-29413800"]));

    assert!(stderr.contains("Job `ops/report-29413800` is not a run of CronJob `backup`"), "{stderr}");
}

#[test]
fn logs_include_previous_container() {
    let env = ClusterEnv::new(&["prod"]);
    seed_prod(&env);
    let server = env.server(0);
    server.insert(pod(
        "ops",
        "backup-29413800",
        "backup-29413800-ccccc",
        "2026-12-04T06:00:01Z",
        "Running",
        json!({"restartCount": 1, "state": {"running": {}},
               "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}),
    ));
    server.set_logs("ops", "backup-29413800-ccccc", "job", "second try\n", Some("first try\n"));

    let (stdout, stderr) = success(env.kuul().args(["logs", "backup", "-n", "ops"]));

    assert_eq!(stdout, "first try\nsecond try\n");
    assert!(stderr.contains("--- container `job` before its last restart (1 restarts) ---"), "{stderr}");
}

#[test]
fn logs_warn_for_waiting_container() {
    let env = ClusterEnv::new(&["prod"]);
    seed_prod(&env);
    env.server(0).insert(pod(
        "ops",
        "backup-29413800",
        "backup-29413800-ddddd",
        "2026-12-04T06:00:01Z",
        "Pending",
        json!({"state": {"waiting": {"reason": "ImagePullBackOff"}}}),
    ));

    let (stdout, stderr) = success(env.kuul().args(["logs", "backup", "-n", "ops"]));

    assert_eq!(stdout, "");
    assert!(stderr.contains("is waiting to start: ImagePullBackOff"), "{stderr}");
}

#[test]
fn logs_follow_ended_pod_prints_all() {
    let env = ClusterEnv::new(&["prod"]);
    seed_logs(&env);

    let (stdout, _) = success(env.kuul().args(["logs", "backup", "-n", "ops", "--follow"]));

    assert_eq!(stdout, "newer\n");
    let follow = env.server(0).requests().into_iter().find(|request| request.path.ends_with("/log")).unwrap();
    assert_eq!(follow.query.get("follow").map(String::as_str), Some("true"));
}

#[test]
fn run_creates_manual_job() {
    let env = ClusterEnv::new(&["prod"]);
    seed_prod(&env);

    let (stdout, stderr) = success(env.kuul().args(["run", "backup", "-n", "ops"]));

    let name = stdout.trim();
    let job = env.server(0).object("Job", "ops", name).expect("Job created");
    assert!(name.starts_with("backup-manual-"), "{name}");
    assert!(stderr.contains(&format!("started Job `ops/{name}`")), "{stderr}");
    assert_eq!(job.pointer("/metadata/annotations/cronjob.kubernetes.io~1instantiate"), Some(&json!("manual")));
    assert_eq!(job.pointer("/metadata/ownerReferences/0/uid"), Some(&json!("uid-ops-backup")));
    assert_eq!(job.pointer("/metadata/ownerReferences/0/controller"), Some(&json!(true)));
    assert_eq!(job.pointer("/spec/template/spec/containers/0/image"), Some(&json!(IMAGE)));
    assert_eq!(validate_sent_objects(env.server(0)), 1);
}

#[test]
fn run_wait_streams_logs_and_succeeds() {
    let env = ClusterEnv::new(&["prod"]);
    seed_prod(&env);
    env.server(0).on_job_created(RunScript {
        logs: "dumping database\ndone\n".to_owned(),
        outcome: RunOutcome::Succeeded,
        duration: Duration::from_millis(1500),
    });

    let (stdout, stderr) = success(env.kuul().args(["run", "backup", "-n", "ops", "--wait"]));

    assert_eq!(stdout, "dumping database\ndone\n");
    assert!(stderr.contains("succeeded in"), "{stderr}");
}

#[test]
fn run_wait_fails_with_reason() {
    let env = ClusterEnv::new(&["prod"]);
    seed_prod(&env);
    env.server(0).on_job_created(RunScript {
        logs: "allocating\n".to_owned(),
        outcome: RunOutcome::Failed { exit_code: 137, reason: "OOMKilled".to_owned() },
        duration: Duration::from_millis(500),
    });

    let (stdout, stderr) = failure(env.kuul().args(["run", "backup", "-n", "ops", "--wait"]));

    assert_eq!(stdout, "allocating\n");
    assert!(stderr.contains("failed after"), "{stderr}");
    assert!(stderr.contains("OOMKilled, BackoffLimitExceeded"), "{stderr}");
}

#[test]
fn run_wait_times_out() {
    let env = ClusterEnv::new(&["prod"]);
    seed_prod(&env);
    env.server(0).on_job_created(RunScript {
        logs: "slow\n".to_owned(),
        outcome: RunOutcome::Succeeded,
        duration: Duration::from_secs(30),
    });

    let (_, stderr) = failure(env.kuul().args(["run", "backup", "-n", "ops", "--wait", "--timeout", "2s"]));

    assert!(stderr.contains("timed out after 2s waiting for run"), "{stderr}");
}

#[test]
fn run_of_missing_cronjob_creates_nothing() {
    let env = ClusterEnv::new(&["prod"]);

    failure(env.kuul().args(["run", "absent", "-n", "ops"]));

    assert!(env.server(0).objects("Job").is_empty());
}

#[test]
fn suspend_and_resume_toggle_flag() {
    let env = ClusterEnv::new(&["prod"]);
    seed_prod(&env);

    let (_, stderr) = success(env.kuul().args(["suspend", "backup", "-n", "ops"]));
    let suspended = env.server(0).object("CronJob", "ops", "backup").unwrap();
    success(env.kuul().args(["resume", "backup", "-n", "ops"]));
    let resumed = env.server(0).object("CronJob", "ops", "backup").unwrap();

    assert!(stderr.contains("context `prod`: CronJob `ops/backup` suspended"), "{stderr}");
    assert_eq!(suspended.pointer("/spec/suspend"), Some(&json!(true)));
    assert_eq!(resumed.pointer("/spec/suspend"), Some(&json!(false)));
    let patches: Vec<_> = env.server(0).requests().into_iter().filter(|request| request.method == "PATCH").collect();
    assert_eq!(patches[0].content_type.as_deref(), Some("application/merge-patch+json"));
    assert_eq!(patches[0].query.get("fieldManager").map(String::as_str), Some("kuul"));
    assert_eq!(patches[0].body, Some(json!({"spec": {"suspend": true}})));
    assert_eq!(patches[1].body, Some(json!({"spec": {"suspend": false}})));
}

#[test]
fn deploy_keeps_suspended_flag() {
    let env = ClusterEnv::new(&["prod"]);
    let job_dir = env.job_dir("backup", "[deploy]\nnamespace = \"ops\"\n");
    success(env.kuul().arg("deploy").arg(&job_dir).args(["--image", IMAGE]));
    success(env.kuul().args(["suspend", "backup", "-n", "ops"]));

    success(env.kuul().arg("deploy").arg(&job_dir).args(["--image", IMAGE]));

    let cronjob = env.server(0).object("CronJob", "ops", "backup").unwrap();
    assert_eq!(cronjob.pointer("/spec/suspend"), Some(&json!(true)));
}

#[test]
fn suspend_missing_cronjob_fails() {
    let env = ClusterEnv::new(&["prod"]);

    let (_, stderr) = failure(env.kuul().args(["suspend", "absent", "-n", "ops"]));

    assert!(stderr.contains("failed to suspend CronJob `ops/absent`"), "{stderr}");
}

#[test]
fn status_uses_namespace_of_context() {
    let env = ClusterEnv::new(&["prod"]);
    seed_prod(&env);
    let kubeconfig = std::fs::read_to_string(&env.kubeconfig).unwrap();
    let with_namespace = kubeconfig.replace("    user: prod\n", "    user: prod\n    namespace: ops\n");
    assert_ne!(kubeconfig, with_namespace, "the kubeconfig should name user `prod` in its context");
    std::fs::write(&env.kubeconfig, with_namespace).unwrap();

    let (stdout, _) = success(env.kuul().args(["status", "-o", "json"]));
    let rows: Value = serde_json::from_str(&stdout).unwrap();

    assert_eq!(rows.as_array().map(Vec::len), Some(2), "{stdout}");
    assert_eq!(rows[0]["namespace"], "ops");
}

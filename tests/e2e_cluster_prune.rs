//! End-to-end tests of `kuul prune` against a fake API server.

mod support;

use serde_json::json;
use support::cluster_env::{ClusterEnv, cronjob, job, namespace, pod, succeeded, success};

/// Seeds a declared `backup`, an undeclared `old` with a run and its pod, an
/// unmanaged `handmade` in `ops`, and an undeclared `stray` in `batch`.
fn seed(env: &ClusterEnv) {
    let server = env.server(0);
    server.insert(namespace("batch"));
    server.insert(cronjob("ops", "backup", "@daily", false, json!({})));
    server.insert(cronjob("ops", "old", "@daily", false, json!({})));
    server.insert(job(
        "ops",
        "old",
        "old-1",
        "2026-12-01T00:00:00Z",
        false,
        succeeded("2026-12-01T00:00:01Z", "2026-12-01T00:00:09Z"),
    ));
    server.insert(pod("ops", "old-1", "old-1-aaaaa", "2026-12-01T00:00:01Z", "Succeeded", json!({})));
    let mut handmade = cronjob("ops", "handmade", "@daily", false, json!({}));
    handmade["metadata"]["labels"] = json!({"app": "handmade"});
    server.insert(handmade);
    server.insert(cronjob("batch", "stray", "@daily", false, json!({})));
}

fn cronjob_names(env: &ClusterEnv) -> Vec<String> {
    let cronjobs = env.server(0).objects("CronJob");
    cronjobs.iter().map(|object| object["metadata"]["name"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn prune_without_confirm_only_lists() {
    let env = ClusterEnv::new(&["prod"]);
    seed(&env);
    let backup = env.job_dir("backup", "[deploy]\nnamespace = \"ops\"\n");

    let (_, stderr) = success(env.kuul().arg("prune").arg(&backup));

    assert!(stderr.contains("context `prod`: would delete CronJob `ops/old`"), "{stderr}");
    assert!(!stderr.contains("handmade"), "{stderr}");
    assert!(!stderr.contains("stray"), "{stderr}");
    assert!(stderr.contains("hint: rerun with `--confirm`"), "{stderr}");
    assert_eq!(cronjob_names(&env).len(), 4);
    assert!(env.server(0).requests().iter().all(|request| request.method == "GET"));
}

#[test]
fn prune_confirm_deletes_cronjob_and_runs() {
    let env = ClusterEnv::new(&["prod"]);
    seed(&env);
    let backup = env.job_dir("backup", "[deploy]\nnamespace = \"ops\"\n");

    let (_, stderr) = success(env.kuul().arg("prune").arg(&backup).arg("--confirm"));

    assert!(stderr.contains("context `prod`: deleted CronJob `ops/old`"), "{stderr}");
    assert_eq!(cronjob_names(&env), ["stray", "backup", "handmade"]);
    assert!(env.server(0).objects("Job").is_empty(), "the run of `old` is deleted with it");
    assert!(env.server(0).objects("Pod").is_empty(), "the pod of `old` is deleted with its Job");
}

#[test]
fn prune_all_namespaces_finds_stray() {
    let env = ClusterEnv::new(&["prod"]);
    seed(&env);
    let backup = env.job_dir("backup", "[deploy]\nnamespace = \"ops\"\n");

    let (_, stderr) = success(env.kuul().arg("prune").arg(&backup).arg("-A"));

    assert!(stderr.contains("would delete CronJob `batch/stray`"), "{stderr}");
    assert!(stderr.contains("would delete CronJob `ops/old`"), "{stderr}");
}

#[test]
fn prune_with_nothing_to_delete_says_so() {
    let env = ClusterEnv::new(&["prod"]);
    env.server(0).insert(cronjob("ops", "backup", "@daily", false, json!({})));
    let backup = env.job_dir("backup", "[deploy]\nnamespace = \"ops\"\n");

    let (_, stderr) = success(env.kuul().arg("prune").arg(&backup).arg("--confirm"));

    assert!(stderr.contains("no kuul-managed CronJobs to delete"), "{stderr}");
    assert_eq!(cronjob_names(&env), ["backup"]);
}

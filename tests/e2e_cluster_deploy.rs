//! End-to-end tests of `kuul deploy`, `kuul diff` and `kuul publish
//! --deploy` against fake API servers.

mod support;

use serde_json::json;
use support::cluster_env::{ClusterEnv, IMAGE, failure, node, success, validate_sent_objects, write_script};

fn deploy(env: &ClusterEnv, job_dir: &std::path::Path) -> assert_cmd::Command {
    let mut command = env.kuul();
    command.arg("deploy").arg(job_dir).args(["--image", IMAGE]);
    command
}

fn manager_names(object: &serde_json::Value) -> Vec<String> {
    let entries = object.pointer("/metadata/managedFields").and_then(|value| value.as_array()).cloned();
    entries.unwrap_or_default().iter().filter_map(|entry| entry["manager"].as_str().map(str::to_owned)).collect()
}

#[test]
fn deploy_creates_cronjob_with_kuul_manager() {
    let env = ClusterEnv::new(&["prod"]);
    let job = env.job_dir("backup", "[deploy]\nnamespace = \"ops\"\n");

    let (_, stderr) = success(&mut deploy(&env, &job));

    let cronjob = env.server(0).object("CronJob", "ops", "backup").expect("CronJob applied");
    assert!(stderr.contains("context `prod`: CronJob `ops/backup` created"), "{stderr}");
    assert_eq!(manager_names(&cronjob), ["kuul"]);
    assert_eq!(cronjob.pointer("/spec/timeZone"), Some(&json!("Europe/Berlin")));
    assert_eq!(validate_sent_objects(env.server(0)), 1);
}

#[test]
fn deploy_twice_reports_unchanged() {
    let env = ClusterEnv::new(&["prod"]);
    let job = env.job_dir("backup", "");
    success(&mut deploy(&env, &job));

    let (_, stderr) = success(&mut deploy(&env, &job));

    assert!(stderr.contains("CronJob `default/backup` unchanged"), "{stderr}");
}

#[test]
fn deploy_namespace_flag_overrides_table() {
    let env = ClusterEnv::new(&["prod"]);
    env.server(0).insert(support::cluster_env::namespace("batch"));
    let job = env.job_dir("backup", "[deploy]\nnamespace = \"ops\"\n");

    success(deploy(&env, &job).args(["--namespace", "batch"]));

    assert!(env.server(0).object("CronJob", "batch", "backup").is_some());
    assert!(env.server(0).object("CronJob", "ops", "backup").is_none());
}

#[test]
fn deploy_dry_run_stores_nothing() {
    let env = ClusterEnv::new(&["prod"]);
    let job = env.job_dir("backup", "");

    let (_, stderr) = success(deploy(&env, &job).arg("--dry-run"));

    assert!(stderr.contains("created (server dry run)"), "{stderr}");
    assert!(env.server(0).object("CronJob", "default", "backup").is_none());
    let apply = env.server(0).requests().into_iter().find(|request| request.method == "PATCH").expect("apply request");
    assert_eq!(apply.query.get("dryRun").map(String::as_str), Some("All"));
    assert_eq!(apply.query.get("fieldManager").map(String::as_str), Some("kuul"));
}

#[test]
fn deploy_conflict_needs_force() {
    let env = ClusterEnv::new(&["prod"]);
    let job = env.job_dir("backup", "");
    success(&mut deploy(&env, &job));
    let mut edited = env.server(0).object("CronJob", "default", "backup").unwrap();
    edited["spec"]["schedule"] = json!("0 5 * * *");
    edited["metadata"]["managedFields"]
        .as_array_mut()
        .unwrap()
        .push(json!({"manager": "kubectl-edit", "operation": "Update", "apiVersion": "batch/v1",
                     "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:schedule": {}}}}));
    env.server(0).insert(edited);

    let (_, stderr) = failure(&mut deploy(&env, &job));
    success(deploy(&env, &job).arg("--force-conflicts"));

    assert!(stderr.contains("`.spec.schedule` (manager `kubectl-edit`)"), "{stderr}");
    assert!(stderr.contains("hint: keep the other manager's values, or rerun with `--force-conflicts`"), "{stderr}");
    let cronjob = env.server(0).object("CronJob", "default", "backup").unwrap();
    assert_eq!(cronjob.pointer("/spec/schedule"), Some(&json!("30 2 * * *")));
}

#[test]
fn deploy_missing_namespace_fails() {
    let env = ClusterEnv::new(&["prod"]);
    let job = env.job_dir("backup", "[deploy]\nnamespace = \"absent\"\n");

    let (_, stderr) = failure(&mut deploy(&env, &job));

    assert!(stderr.contains("namespace `absent` not found"), "{stderr}");
    assert!(stderr.contains("hint: create it with `kubectl create namespace absent`"), "{stderr}");
    assert!(env.server(0).requests().iter().all(|request| request.method == "GET"));
}

#[test]
fn deploy_warns_when_no_node_matches() {
    let env = ClusterEnv::new(&["prod"]);
    let job = env.job_dir("backup", "[placement]\npool = \"ops\"\n");

    let (_, stderr) = success(&mut deploy(&env, &job));

    assert!(stderr.contains("warning: context `prod`: no Ready node can run the job"), "{stderr}");
    assert!(stderr.contains("node `node-1`: no label `kuul.dev/pool=ops` (nodeSelector)"), "{stderr}");
    assert!(stderr.contains("labels on Ready nodes: `kubernetes.io/os=linux` (1 node)"), "{stderr}");
    assert!(env.server(0).object("CronJob", "default", "backup").is_some());
}

#[test]
fn deploy_strict_fails_when_no_node_matches() {
    let env = ClusterEnv::new(&["prod"]);
    let job = env.job_dir("backup", "[placement]\npool = \"ops\"\n");

    let (_, stderr) = failure(deploy(&env, &job).arg("--strict"));

    assert!(stderr.contains("preflight check failed for CronJob `default/backup`"), "{stderr}");
    assert!(env.server(0).object("CronJob", "default", "backup").is_none());
}

#[test]
fn deploy_accepts_tainted_pool_node() {
    let env = ClusterEnv::new(&["prod"]);
    env.server(0).insert(node("pool-1", &[("kuul.dev/pool", "ops")], &[("kuul.dev/pool", "ops", "NoSchedule")], true));
    let job = env.job_dir("backup", "[placement]\npool = \"ops\"\n");

    let (_, stderr) = success(deploy(&env, &job).arg("--strict"));

    assert!(!stderr.contains("warning"), "{stderr}");
}

#[test]
fn deploy_skips_forbidden_node_check() {
    let env = ClusterEnv::new(&["prod"]);
    env.server(0).forbid("GET", "nodes");
    let job = env.job_dir("backup", "[placement]\npool = \"ops\"\n");

    let (_, stderr) = success(deploy(&env, &job).arg("--strict"));

    assert!(
        stderr.contains("warning: context `prod`: check skipped: failed to list nodes: nodes is forbidden"),
        "{stderr}"
    );
    assert!(stderr.contains("(403)"), "{stderr}");
    assert!(env.server(0).object("CronJob", "default", "backup").is_some());
}

#[test]
fn deploy_forbidden_apply_fails_with_hint() {
    let env = ClusterEnv::new(&["prod"]);
    env.server(0).forbid("PATCH", "cronjobs");
    let job = env.job_dir("backup", "");

    let (_, stderr) = failure(&mut deploy(&env, &job));

    assert!(stderr.contains("hint: ask for permission to apply CronJob `default/backup`"), "{stderr}");
}

#[test]
fn deploy_table_targets_both_contexts() {
    let env = ClusterEnv::new(&["prod", "lab"]);
    let job = env.job_dir("backup", "[deploy]\ncontexts = [\"prod\", \"lab\"]\nnamespace = \"ops\"\n");

    let (_, stderr) = success(&mut deploy(&env, &job));

    assert!(stderr.contains("context `prod`: CronJob `ops/backup` created"), "{stderr}");
    assert!(stderr.contains("context `lab`: CronJob `ops/backup` created"), "{stderr}");
    assert!(env.server(0).object("CronJob", "ops", "backup").is_some());
    assert!(env.server(1).object("CronJob", "ops", "backup").is_some());
    assert_eq!(validate_sent_objects(env.server(0)), 1);
    assert_eq!(validate_sent_objects(env.server(1)), 1);
}

#[test]
fn deploy_context_flag_replaces_table() {
    let env = ClusterEnv::new(&["prod", "lab"]);
    let job = env.job_dir("backup", "[deploy]\ncontexts = [\"prod\"]\n");

    success(deploy(&env, &job).args(["--context", "lab"]));

    assert!(env.server(0).object("CronJob", "default", "backup").is_none());
    assert!(env.server(1).object("CronJob", "default", "backup").is_some());
}

#[test]
fn deploy_unknown_context_lists_known() {
    let env = ClusterEnv::new(&["prod", "lab"]);
    let job = env.job_dir("backup", "");

    let (_, stderr) = failure(deploy(&env, &job).args(["--context", "staging"]));

    assert!(stderr.contains("context `staging` not found in the kubeconfig; it has `lab`, `prod`"), "{stderr}");
}

#[test]
fn deploy_rejected_token_gives_hint() {
    let env = ClusterEnv::new(&["prod"]);
    env.server(0).require_token("another-token");
    let job = env.job_dir("backup", "");

    let (_, stderr) = failure(&mut deploy(&env, &job));

    assert!(stderr.contains("Unauthorized (401)"), "{stderr}");
    assert!(stderr.contains("hint: the API server rejected the credentials of context `prod`"), "{stderr}");
    assert!(!stderr.contains(support::cluster_env::TOKEN), "{stderr}");
}

#[test]
fn deploy_authenticates_with_exec_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("credential-plugin");
    write_script(
        &plugin,
        "#!/bin/sh\necho '{\"apiVersion\": \"client.authentication.k8s.io/v1\", \"kind\": \"ExecCredential\", \"status\": {\"token\": \"exec-token\"}}'\n",
    );
    let user = format!(
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {}\n      interactiveMode: Never",
        plugin.display()
    );
    let env = ClusterEnv::with_user(&["prod"], &user);
    env.server(0).require_token("exec-token");
    let job = env.job_dir("backup", "");

    success(&mut deploy(&env, &job));

    assert!(env.server(0).object("CronJob", "default", "backup").is_some());
}

#[test]
fn deploy_failed_exec_plugin_hides_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("credential-plugin");
    write_script(&plugin, "#!/bin/sh\necho secret-on-stdout\necho 'login expired' >&2\nexit 3\n");
    let user = format!(
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {}\n      interactiveMode: Never",
        plugin.display()
    );
    let env = ClusterEnv::with_user(&["prod"], &user);
    let job = env.job_dir("backup", "");

    let (_, stderr) = failure(&mut deploy(&env, &job));

    assert!(stderr.contains("login expired"), "{stderr}");
    assert!(!stderr.contains("secret-on-stdout"), "{stderr}");
}

#[test]
fn diff_shows_changed_schedule() {
    let env = ClusterEnv::new(&["prod"]);
    let job = env.job_dir("backup", "");
    success(&mut deploy(&env, &job));
    let toml = std::fs::read_to_string(job.join("kuul.toml")).unwrap().replace("30 2 * * *", "45 3 * * *");
    std::fs::write(job.join("kuul.toml"), toml).unwrap();

    let output = env.kuul().arg("diff").arg(&job).args(["--image", IMAGE, "--exit-code"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);

    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("-  schedule: 30 2 * * *"), "{stdout}");
    assert!(stdout.contains("+  schedule: 45 3 * * *"), "{stdout}");
    let stored = env.server(0).object("CronJob", "default", "backup").unwrap();
    assert_eq!(stored.pointer("/spec/schedule"), Some(&json!("30 2 * * *")));
}

#[test]
fn diff_without_changes_prints_nothing() {
    let env = ClusterEnv::new(&["prod"]);
    let job = env.job_dir("backup", "");
    success(&mut deploy(&env, &job));

    let (stdout, stderr) = success(env.kuul().arg("diff").arg(&job).args(["--image", IMAGE, "--exit-code"]));

    assert_eq!(stdout, "");
    assert!(stderr.contains("CronJob `default/backup`: no changes"), "{stderr}");
}

#[test]
fn publish_context_without_deploy_fails() {
    let env = ClusterEnv::new(&["prod"]);
    let job = env.job_dir("backup", "");

    let (_, stderr) =
        failure(env.kuul().arg("publish").arg(&job).args(["--registry", "127.0.0.1:1/ops", "--context", "prod"]));

    assert!(stderr.contains("`--context` applies only to deploys"), "{stderr}");
}

#[test]
fn publish_deploy_applies_pushed_image() {
    let registry = support::Registry::start();
    let env = ClusterEnv::new(&["prod"]);
    let job_dir = support::copy_example("hello", env.dir.path());

    let (stdout, stderr) = success(env.kuul().arg("publish").arg(&job_dir).args([
        "--registry",
        &format!("{}/e2e", registry.host_port()),
        "--deploy",
        "--namespace",
        "ops",
    ]));

    let printed = support::container_image(&support::parse_yaml(&stdout));
    let cronjob = env.server(0).object("CronJob", "ops", "hello").expect("CronJob applied");
    let applied = cronjob.pointer("/spec/jobTemplate/spec/template/spec/containers/0/image");
    assert_eq!(applied, Some(&json!(printed)));
    assert!(stderr.contains("context `prod`: CronJob `ops/hello` created"), "{stderr}");
    assert_eq!(validate_sent_objects(env.server(0)), 1);
}

#[tokio::test]
async fn preflight_reports_missing_pull_secret() {
    let env = ClusterEnv::new(&["prod"]);
    env.server(0)
        .insert(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "present", "namespace": "ops"}}));
    let mut config = kube::Config::new(env.server(0).url().parse().unwrap());
    config.auth_info.token = Some(support::cluster_env::TOKEN.to_owned().into());
    let cluster = kuul::k8s::cluster::Cluster {
        context: "prod".to_owned(),
        client: kube::Client::try_from(config).unwrap(),
        default_namespace: "ops".to_owned(),
    };
    let mut cronjob: k8s_openapi::api::batch::v1::CronJob =
        serde_json::from_value(support::cluster_env::cronjob("ops", "backup", "@daily", false, json!({}))).unwrap();
    let pod = cronjob.spec.as_mut().unwrap().job_template.spec.as_mut().unwrap().template.spec.as_mut().unwrap();
    pod.image_pull_secrets = Some(
        ["present", "absent"]
            .map(|name| k8s_openapi::api::core::v1::LocalObjectReference { name: name.to_owned() })
            .to_vec(),
    );

    let findings = kuul::k8s::preflight::check(&cluster, "ops", &cronjob, false).await.unwrap();

    assert_eq!(findings.errors.len(), 1, "{findings:?}");
    assert!(findings.errors[0].starts_with("image pull secret `absent` not found in namespace `ops`"), "{findings:?}");
}

#[test]
fn deploy_missing_pull_secret_stops() {
    let env = ClusterEnv::new(&["prod"]);
    let job = env.job_dir("backup", "[image]\npull_secrets = [\"registry-credentials\"]\n");

    let (_, stderr) = failure(&mut deploy(&env, &job));

    assert!(stderr.contains("image pull secret `registry-credentials` not found in namespace `default`"), "{stderr}");
    assert!(env.server(0).object("CronJob", "default", "backup").is_none());
}

#[test]
fn deploy_sets_existing_pull_secret() {
    let env = ClusterEnv::new(&["prod"]);
    env.server(0).insert(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "registry-credentials", "namespace": "default"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": "e30="},
    }));
    let job = env.job_dir("backup", "[image]\npull_secrets = [\"registry-credentials\"]\n");

    success(&mut deploy(&env, &job));

    let cronjob = env.server(0).object("CronJob", "default", "backup").expect("CronJob applied");
    assert_eq!(
        cronjob.pointer("/spec/jobTemplate/spec/template/spec/imagePullSecrets"),
        Some(&json!([{"name": "registry-credentials"}]))
    );
    assert_eq!(validate_sent_objects(env.server(0)), 1);
}

//! A test environment for the cluster commands: fake API servers, a
//! kubeconfig with one context per server, and a job directory. Every
//! kubeconfig entry points at a fake on 127.0.0.1.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::fake_apiserver::{FakeApiServer, kubeconfig};

/// The bearer token in the kubeconfig's users.
pub const TOKEN: &str = "test-token";

/// A pinned image reference for CronJobs under test; nothing pulls it.
pub const IMAGE: &str =
    "127.0.0.1:5000/backup:latest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

pub struct ClusterEnv {
    pub dir: tempfile::TempDir,
    pub servers: Vec<FakeApiServer>,
    pub kubeconfig: PathBuf,
}

impl ClusterEnv {
    /// Starts one fake per context, each with a namespace `ops` and one
    /// Ready node and each requiring [`TOKEN`], and writes a kubeconfig
    /// whose users send it. The first context is the current one.
    pub fn new(contexts: &[&str]) -> ClusterEnv {
        let user = format!("    token: {TOKEN}");
        let env = ClusterEnv::with_user(contexts, &user);
        for server in &env.servers {
            server.require_token(TOKEN);
        }
        env
    }

    /// Like [`ClusterEnv::new`], with `user` as the YAML of each user entry.
    pub fn with_user(contexts: &[&str], user: &str) -> ClusterEnv {
        let dir = tempfile::tempdir().expect("temporary directory");
        let servers: Vec<FakeApiServer> = contexts.iter().map(|_| FakeApiServer::start()).collect();
        for server in &servers {
            server.insert(namespace("ops"));
            server.insert(node("node-1", &[("kubernetes.io/os", "linux")], &[], true));
        }

        let pairs: Vec<(&str, &str)> =
            contexts.iter().zip(&servers).map(|(context, server)| (*context, server.url())).collect();
        let kubeconfig_path = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig_path, kubeconfig(&pairs, user)).expect("write kubeconfig");

        ClusterEnv { dir, servers, kubeconfig: kubeconfig_path }
    }

    /// Returns the fake of the `index`th context.
    pub fn server(&self, index: usize) -> &FakeApiServer {
        &self.servers[index]
    }

    /// Returns a `kuul` command that reads only this environment's
    /// kubeconfig: `KUBECONFIG` is set and `HOME` is the temporary
    /// directory.
    pub fn kuul(&self) -> assert_cmd::Command {
        let mut command = super::kuul();
        command.env("KUBECONFIG", &self.kubeconfig).env("HOME", self.dir.path()).env_remove("KUUL_LOG");
        command
    }

    /// Writes a job directory named `name` with a shell script and a
    /// kuul.toml of the `[job]` table plus `extra`, and returns its path.
    pub fn job_dir(&self, name: &str, extra: &str) -> PathBuf {
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir).expect("create job directory");
        std::fs::write(dir.join("run.sh"), "#!/bin/sh\necho hello\n").expect("write run.sh");
        let toml = format!(
            "[job]\nname = \"{name}\"\nschedule = \"30 2 * * *\"\ntimezone = \"Europe/Berlin\"\ncommand = \"run.sh\"\n\n{extra}"
        );
        std::fs::write(dir.join("kuul.toml"), toml).expect("write kuul.toml");
        dir
    }
}

/// Runs `command` and returns its stdout and stderr, asserting that it
/// exited with status 0.
pub fn success(command: &mut assert_cmd::Command) -> (String, String) {
    let output = command.output().expect("start kuul");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "kuul failed with {}\nstdout:\n{stdout}\nstderr:\n{stderr}", output.status);
    (stdout, stderr)
}

/// Runs `command` and returns its stdout and stderr, asserting that it
/// failed.
pub fn failure(command: &mut assert_cmd::Command) -> (String, String) {
    let output = command.output().expect("start kuul");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "kuul should have failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    (stdout, stderr)
}

/// Validates every whole object kuul sent to `server` with
/// `kubernetes-validate --strict`, and returns how many there were.
pub fn validate_sent_objects(server: &FakeApiServer) -> usize {
    let objects = server.sent_objects();
    for object in &objects {
        super::kubernetes_validate(&serde_json::to_string_pretty(object).expect("serialize"));
    }
    objects.len()
}

pub fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

/// Returns a node with `labels`, `taints` as (key, value, effect), and a Ready
/// condition.
pub fn node(name: &str, labels: &[(&str, &str)], taints: &[(&str, &str, &str)], ready: bool) -> Value {
    let labels: serde_json::Map<String, Value> =
        labels.iter().map(|(key, value)| (key.to_string(), json!(value))).collect();
    let taints: Vec<Value> =
        taints.iter().map(|(key, value, effect)| json!({"key": key, "value": value, "effect": effect})).collect();
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": {"taints": taints},
        "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
    })
}

/// Writes an executable script at `path`.
pub fn write_script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;

    std::fs::write(path, text).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("make script executable");
}

/// Returns a kuul-managed CronJob as the API server stores it, with `status` as its
/// status (`lastScheduleTime`, `lastSuccessfulTime`, `active`).
pub fn cronjob(namespace: &str, name: &str, schedule: &str, suspend: bool, status: Value) -> Value {
    json!({
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": format!("uid-{namespace}-{name}"),
            "creationTimestamp": "2026-11-01T00:00:00Z",
            "labels": {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "kuul"},
        },
        "spec": {
            "schedule": schedule,
            "timeZone": "Etc/UTC",
            "suspend": suspend,
            "jobTemplate": {
                "metadata": {"labels": {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "kuul"}},
                "spec": {"backoffLimit": 0, "template": {
                    "metadata": {"labels": {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "kuul"}},
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "job", "image": IMAGE}],
                    },
                }},
            },
        },
        "status": status,
    })
}

/// Returns a Job of the CronJob `owner` with `status`. With `manual`, it
/// has the annotation of a run started by hand.
pub fn job(namespace: &str, owner: &str, name: &str, created: &str, manual: bool, status: Value) -> Value {
    let annotations = if manual { json!({"cronjob.kubernetes.io/instantiate": "manual"}) } else { json!({}) };
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": format!("uid-{name}"),
            "creationTimestamp": created,
            "annotations": annotations,
            "labels": {"app.kubernetes.io/name": owner},
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": owner,
                                 "uid": format!("uid-{namespace}-{owner}"), "controller": true}],
        },
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "job", "image": IMAGE}]}}},
        "status": status,
    })
}

/// Returns the status of a Job that succeeded between `start` and `end`.
pub fn succeeded(start: &str, end: &str) -> Value {
    json!({
        "startTime": start, "completionTime": end, "succeeded": 1,
        "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": end}],
    })
}

/// Returns the status of a Job that failed at `end` with `reason`, with
/// the message the Job controller writes for that reason.
pub fn failed(start: &str, end: &str, reason: &str) -> Value {
    let message = match reason {
        "DeadlineExceeded" => "Job was active longer than specified deadline",
        _ => "Job has reached the specified backoff limit",
    };
    json!({
        "startTime": start, "failed": 1,
        "conditions": [{"type": "Failed", "status": "True", "reason": reason,
                        "message": message, "lastTransitionTime": end}],
    })
}

/// Returns a pod of the Job `job` in `phase`, with one container `job` whose status
/// is `container` merged over a default status.
pub fn pod(namespace: &str, job: &str, name: &str, created: &str, phase: &str, container: Value) -> Value {
    let mut status = json!({"name": "job", "image": IMAGE, "imageID": "", "ready": false, "restartCount": 0});
    for (key, value) in container.as_object().expect("container status is an object") {
        status[key] = value.clone();
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "creationTimestamp": created,
            "labels": {"batch.kubernetes.io/controller-uid": format!("uid-{job}"), "batch.kubernetes.io/job-name": job},
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job, "uid": format!("uid-{job}"),
                                 "controller": true}],
        },
        "spec": {"restartPolicy": "Never", "containers": [{"name": "job", "image": IMAGE}]},
        "status": {"phase": phase, "containerStatuses": [status]},
    })
}

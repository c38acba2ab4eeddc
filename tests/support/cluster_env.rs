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

/// A node with `labels`, `taints` as (key, value, effect), and a Ready
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

//! End-to-end tests of `kuul publish` against a docker-registry that
//! requires htpasswd basic auth, with credentials from a Docker config.

mod support;

use std::path::Path;

use base64::Engine;
use support::{Registry, copy_example};

/// Writes `dir/config.json` with an `auths` entry for `registry` in the
/// form `docker login` writes: `auth` is base64 of `user:password`.
fn write_docker_config(dir: &Path, registry: &str, username: &str, password: &str) {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    let config = serde_json::json!({ "auths": { registry: { "auth": auth } } });
    std::fs::write(dir.join("config.json"), config.to_string()).expect("write config.json");
}

fn publish_with_config(job_dir: &Path, registry: &Registry, docker_config: &Path) -> std::process::Output {
    support::kuul()
        .arg("publish")
        .arg(job_dir)
        .args(["--registry", &format!("{}/kuul", registry.host_port())])
        .env("DOCKER_CONFIG", docker_config)
        .output()
        .expect("start kuul publish")
}

#[test]
fn publish_with_right_password() {
    let registry = Registry::start_with_htpasswd("ops", "right-password");
    let work = tempfile::tempdir().expect("temporary directory");
    let job_dir = copy_example("hello", work.path());
    write_docker_config(work.path(), &registry.host_port(), "ops", "right-password");

    let output = publish_with_config(&job_dir, &registry, work.path());
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(output.status.success(), "stderr:\n{stderr}");
    assert!(stderr.contains(&format!("pushed {}/kuul/hello:latest@sha256:", registry.host_port())), "{stderr}");
    assert!(!stderr.contains("right-password"), "the password leaked:\n{stderr}");
}

#[test]
fn publish_with_wrong_password() {
    let registry = Registry::start_with_htpasswd("ops", "right-password");
    let work = tempfile::tempdir().expect("temporary directory");
    let job_dir = copy_example("hello", work.path());
    write_docker_config(work.path(), &registry.host_port(), "ops", "wrong-password");

    let output = publish_with_config(&job_dir, &registry, work.path());
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains(&format!("`docker login {}`", registry.host_port())), "{stderr}");
    assert!(!stderr.contains("wrong-password"), "the password leaked:\n{stderr}");
    assert!(output.stdout.is_empty(), "no manifest on stdout");
}

#[test]
fn publish_without_credentials_rejected() {
    let registry = Registry::start_with_htpasswd("ops", "right-password");
    let work = tempfile::tempdir().expect("temporary directory");
    let job_dir = copy_example("hello", work.path());

    let output = publish_with_config(&job_dir, &registry, work.path());
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains("401") || stderr.contains("unauthorized"), "{stderr}");
    assert!(stderr.contains("hint: "), "{stderr}");
}

//! End-to-end tests of `kuul manifest` and of the manifest options of
//! `kuul publish`: `--manifest FILE`, `-o json`, and the errors for a bad
//! image reference or an unreachable registry.

mod support;

use support::{Registry, copy_example, free_port, kubernetes_validate, parse_json_stdout, parse_yaml};

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[test]
fn manifest_pins_given_image() {
    let work = tempfile::tempdir().expect("temporary directory");
    let job_dir = copy_example("pg-backup", work.path());
    let image = format!("registry.internal:5000/ops/pg-backup:v3@{DIGEST}");

    let output = support::kuul().arg("manifest").arg(&job_dir).args(["--image", &image]).output().expect("start kuul");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();

    assert!(output.status.success(), "stderr:\n{}", String::from_utf8_lossy(&output.stderr));
    let cronjob = parse_yaml(&stdout);
    assert_eq!(support::container_image(&cronjob), image);
    assert_eq!(cronjob["metadata"]["name"], "pg-backup");
    assert_eq!(
        cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"][0],
        "/job/backup.sh"
    );
    kubernetes_validate(&stdout);
}

#[test]
fn manifest_json_matches_yaml() {
    let work = tempfile::tempdir().expect("temporary directory");
    let job_dir = copy_example("hello", work.path());
    let image = format!("127.0.0.1:5000/kuul/hello:latest@{DIGEST}");

    let yaml = support::kuul().arg("manifest").arg(&job_dir).args(["--image", &image]).output().expect("start kuul");
    let json = support::kuul()
        .arg("manifest")
        .arg(&job_dir)
        .args(["--image", &image, "-o", "json"])
        .output()
        .expect("start kuul");

    let from_yaml = parse_yaml(&String::from_utf8_lossy(&yaml.stdout));
    let from_json = parse_json_stdout("kuul manifest -o json", &json);
    assert_eq!(from_yaml, from_json);
}

#[test]
fn manifest_rejects_unpinned_image() {
    let work = tempfile::tempdir().expect("temporary directory");
    let job_dir = copy_example("hello", work.path());

    let output = support::kuul()
        .arg("manifest")
        .arg(&job_dir)
        .args(["--image", "127.0.0.1:5000/kuul/hello:latest"])
        .output()
        .expect("start kuul");
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains("invalid `--image` `127.0.0.1:5000/kuul/hello:latest`"), "{stderr}");
    assert!(stderr.contains("@sha256:"), "{stderr}");
    assert!(output.stdout.is_empty(), "no manifest on stdout");
}

#[test]
fn publish_writes_manifest_file() {
    let registry = Registry::start();
    let work = tempfile::tempdir().expect("temporary directory");
    let job_dir = copy_example("hello", work.path());
    let manifest = work.path().join("cronjob.yaml");

    let output = support::kuul()
        .arg("publish")
        .arg(&job_dir)
        .args(["--registry", &format!("{}/kuul", registry.host_port())])
        .arg("--manifest")
        .arg(&manifest)
        .output()
        .expect("start kuul publish");

    assert!(output.status.success(), "stderr:\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.stdout.is_empty(), "stdout:\n{}", String::from_utf8_lossy(&output.stdout));
    let written = std::fs::read_to_string(&manifest).expect("read the manifest file");
    let image = support::container_image(&parse_yaml(&written));
    assert!(image.starts_with(&format!("{}/kuul/hello:latest@sha256:", registry.host_port())), "{image}");
    kubernetes_validate(&written);
}

#[test]
fn publish_json_reports_push() {
    let registry = Registry::start();
    let work = tempfile::tempdir().expect("temporary directory");
    let job_dir = copy_example("hello", work.path());

    let output = support::kuul()
        .arg("publish")
        .arg(&job_dir)
        .args(["--registry", &format!("{}/kuul", registry.host_port()), "-o", "json"])
        .output()
        .expect("start kuul publish");
    let summary = parse_json_stdout("kuul publish -o json", &output);

    let digest = summary["digest"].as_str().unwrap_or_default();
    assert!(support::is_sha256_digest(digest), "{summary:#}");
    assert_eq!(summary["image"], format!("{}/kuul/hello:latest@{digest}", registry.host_port()));
    assert!(summary["bytes_uploaded"].as_u64().unwrap_or(0) > 0, "{summary:#}");
    assert_eq!(summary["blobs_skipped"], 0, "{summary:#}");
    assert_eq!(summary["cronjob"]["kind"], "CronJob", "{summary:#}");
}

#[test]
fn publish_unreachable_registry_explains() {
    let work = tempfile::tempdir().expect("temporary directory");
    let job_dir = copy_example("hello", work.path());
    let registry = format!("127.0.0.1:{}", free_port());

    let output = support::kuul()
        .arg("publish")
        .arg(&job_dir)
        .args(["--registry", &format!("{registry}/kuul")])
        .output()
        .expect("start kuul publish");
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains(&format!("`{registry}`")), "{stderr}");
    assert!(stderr.contains("kuul/hello"), "{stderr}");
    assert!(stderr.contains("hint: "), "{stderr}");
    assert!(output.stdout.is_empty(), "no manifest on stdout");
}

#[test]
fn publish_registry_without_host_rejected() {
    let work = tempfile::tempdir().expect("temporary directory");
    let job_dir = copy_example("hello", work.path());

    let output =
        support::kuul().arg("publish").arg(&job_dir).args(["--registry", "kuul"]).output().expect("start kuul publish");
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains("`kuul`"), "{stderr}");
    assert!(stderr.contains("hint: "), "{stderr}");
}

#[test]
fn publish_to_web_server_rejected() {
    let work = tempfile::tempdir().expect("temporary directory");
    let job_dir = copy_example("hello", work.path());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let address = listener.local_addr().expect("local address").to_string();

    // A web server that returns 404 for every request, as a server on the
    // wrong port would. It serves at most 20 connections, then stops.
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming().take(20) {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });

    let output = support::kuul()
        .arg("publish")
        .arg(&job_dir)
        .args(["--registry", &format!("{address}/kuul")])
        .output()
        .expect("start kuul publish");
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains(&format!("`{address}` is not an OCI registry: `GET /v2/` returned 404")), "{stderr}");
    assert!(stderr.contains("hint: check the host and port in `--registry`"), "{stderr}");
}

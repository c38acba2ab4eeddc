//! Pushes hand-written OCI layouts to a real `docker-registry` on loopback
//! and reads them back with `skopeo`.

mod support;

use std::path::Path;
use std::sync::Mutex;

use kuul::image::BuiltImage;
use kuul::registry::{PushOptions, RegistryError, Target, push};
use kuul::report::Reporter;
use support::layout::write_layout;
use support::{Registry, free_port, run_tool};

/// Records reporter events as `uploaded <digest>`, `skipped <digest>` and
/// `warning <message>` lines.
#[derive(Default)]
struct RecordingReporter {
    events: Mutex<Vec<String>>,
}

impl RecordingReporter {
    fn events_starting(&self, prefix: &str) -> Vec<String> {
        let events = self.events.lock().unwrap();
        events.iter().filter(|event| event.starts_with(prefix)).cloned().collect()
    }
}

impl Reporter for RecordingReporter {
    fn blob_uploaded(&self, digest: &str, _bytes: u64) {
        self.events.lock().unwrap().push(format!("uploaded {digest}"));
    }

    fn blob_skipped(&self, digest: &str, _bytes: u64) {
        self.events.lock().unwrap().push(format!("skipped {digest}"));
    }

    fn warning(&self, message: &str) {
        self.events.lock().unwrap().push(format!("warning {message}"));
    }
}

/// Options that read credentials from `docker_config_dir` only, never from
/// the user's own Docker config.
fn options_with_config(docker_config_dir: &Path) -> PushOptions {
    PushOptions {
        insecure_registries: Vec::new(),
        docker_config_dir: Some(docker_config_dir.to_path_buf()),
        mount_from: None,
    }
}

fn write_docker_config(dir: &Path, registry: &str, username: &str, password: &str) {
    let config = serde_json::json!({ "auths": { registry: { "username": username, "password": password } } });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
}

fn blob_total(image: &BuiltImage) -> u64 {
    image.config.size + image.layers.iter().map(|layer| layer.descriptor.size).sum::<u64>()
}

#[tokio::test]
async fn first_push_uploads_every_blob() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let image = write_layout(&work.path().join("layout"), "first");
    let target = Target::from_prefix(&format!("{}/kuul", registry.host_port()), "backup", "latest").unwrap();
    let reporter = RecordingReporter::default();

    let outcome =
        push(&work.path().join("layout"), &image, &target, &options_with_config(work.path()), &reporter).await.unwrap();

    assert_eq!(outcome.digest, image.manifest.digest);
    assert_eq!(outcome.reference, format!("{}/kuul/backup:latest@{}", registry.host_port(), image.manifest.digest));
    assert_eq!(outcome.blobs_uploaded, 3);
    assert_eq!(outcome.blobs_skipped, 0);
    assert_eq!(outcome.bytes_uploaded, blob_total(&image));
    assert_eq!(reporter.events_starting("uploaded").len(), 3);
}

#[tokio::test]
async fn skopeo_sees_pushed_digest() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let image = write_layout(&layout, "skopeo");
    let target = Target::from_prefix(&format!("{}/kuul", registry.host_port()), "backup", "v1").unwrap();

    let outcome =
        push(&layout, &image, &target, &options_with_config(work.path()), &RecordingReporter::default()).await.unwrap();

    let image_url = format!("docker://{}/kuul/backup:v1", registry.host_port());
    let inspect = run_tool("skopeo", &["inspect", "--tls-verify=false", &image_url]);
    let inspected: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(inspected["Digest"], outcome.digest);
    let layer_digests: Vec<&str> = image.layers.iter().map(|layer| layer.descriptor.digest.as_str()).collect();
    assert_eq!(inspected["Layers"], serde_json::json!(layer_digests));
}

#[tokio::test]
async fn skopeo_copies_pushed_image() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let image = write_layout(&layout, "copy");
    let target = Target::from_prefix(&registry.host_port(), "backup", "latest").unwrap();
    push(&layout, &image, &target, &options_with_config(work.path()), &RecordingReporter::default()).await.unwrap();

    // skopeo checks every blob against its digest while it copies.
    let copy = work.path().join("copy");
    let source = format!("docker://{}/backup:latest", registry.host_port());
    let destination = format!("oci:{}:latest", copy.display());
    run_tool("skopeo", &["copy", "--src-tls-verify=false", &source, &destination]);

    let copied_index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(copy.join("index.json")).unwrap()).unwrap();
    assert_eq!(copied_index["manifests"][0]["digest"], image.manifest.digest);
}

#[tokio::test]
async fn second_push_skips_every_blob() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let image = write_layout(&layout, "again");
    let target = Target::from_prefix(&format!("{}/kuul", registry.host_port()), "backup", "latest").unwrap();
    let options = options_with_config(work.path());
    push(&layout, &image, &target, &options, &RecordingReporter::default()).await.unwrap();
    let reporter = RecordingReporter::default();

    let outcome = push(&layout, &image, &target, &options, &reporter).await.unwrap();

    assert_eq!(outcome.bytes_uploaded, 0);
    assert_eq!(outcome.blobs_uploaded, 0);
    assert_eq!(outcome.blobs_skipped, 3);
    assert_eq!(outcome.digest, image.manifest.digest);
    assert_eq!(reporter.events_starting("skipped").len(), 3);
    assert!(reporter.events_starting("uploaded").is_empty());
}

#[tokio::test]
async fn changed_job_uploads_one_layer() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let target = Target::from_prefix(&format!("{}/kuul", registry.host_port()), "backup", "latest").unwrap();
    let options = options_with_config(work.path());
    let first = write_layout(&work.path().join("first"), "one");
    push(&work.path().join("first"), &first, &target, &options, &RecordingReporter::default()).await.unwrap();
    let second = write_layout(&work.path().join("second"), "two");

    let outcome =
        push(&work.path().join("second"), &second, &target, &options, &RecordingReporter::default()).await.unwrap();

    // The job-files layer and the config change, but the system-files layer
    // stays the same.
    assert_eq!(outcome.blobs_uploaded, 2);
    assert_eq!(outcome.blobs_skipped, 1);
    assert_eq!(outcome.bytes_uploaded, second.layers[1].descriptor.size + second.config.size);
}

#[tokio::test]
async fn closed_port_reports_connection_refused() {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let image = write_layout(&layout, "refused");
    let address = format!("127.0.0.1:{}", free_port());
    let target = Target::from_prefix(&address, "backup", "latest").unwrap();

    let error = push(&layout, &image, &target, &options_with_config(work.path()), &RecordingReporter::default())
        .await
        .unwrap_err();

    assert!(matches!(error, RegistryError::ConnectionRefused { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains(&format!("nothing is listening at `{address}`")), "{message}");
    assert!(message.contains("is the registry running?"), "{message}");
}

#[tokio::test]
async fn htpasswd_registry_accepts_right_password() {
    let registry = Registry::start_with_htpasswd("kuul", "right-password");
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let image = write_layout(&layout, "auth");
    write_docker_config(work.path(), &registry.host_port(), "kuul", "right-password");
    let target = Target::from_prefix(&format!("{}/kuul", registry.host_port()), "backup", "latest").unwrap();

    let outcome =
        push(&layout, &image, &target, &options_with_config(work.path()), &RecordingReporter::default()).await.unwrap();

    assert_eq!(outcome.digest, image.manifest.digest);
    let image_url = format!("docker://{}/kuul/backup:latest", registry.host_port());
    let inspect = run_tool("skopeo", &["inspect", "--tls-verify=false", "--creds", "kuul:right-password", &image_url]);
    let inspected: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(inspected["Digest"], outcome.digest);
}

#[tokio::test]
async fn htpasswd_registry_rejects_wrong_password() {
    let registry = Registry::start_with_htpasswd("kuul", "right-password");
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let image = write_layout(&layout, "wrong");
    write_docker_config(work.path(), &registry.host_port(), "kuul", "wrong-password");
    let target = Target::from_prefix(&format!("{}/kuul", registry.host_port()), "backup", "latest").unwrap();

    let error = push(&layout, &image, &target, &options_with_config(work.path()), &RecordingReporter::default())
        .await
        .unwrap_err();

    assert!(matches!(error, RegistryError::Unauthorized { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains("401 Unauthorized"), "{message}");
    assert!(message.contains(&format!("`docker login {}`", registry.host_port())), "{message}");
    assert!(!message.contains("wrong-password"), "{message}");
}

#[tokio::test]
async fn htpasswd_registry_rejects_anonymous_push() {
    let registry = Registry::start_with_htpasswd("kuul", "right-password");
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let image = write_layout(&layout, "anonymous");
    let target = Target::from_prefix(&format!("{}/kuul", registry.host_port()), "backup", "latest").unwrap();

    let error = push(&layout, &image, &target, &options_with_config(work.path()), &RecordingReporter::default())
        .await
        .unwrap_err();

    assert!(matches!(error, RegistryError::CredentialsMissing { .. }), "{error}");
    assert!(error.to_string().contains("has none for it"), "{error}");
}

//! End-to-end tests of the hello example: `kuul publish` to a real
//! registry, then pull, unpack and run the image with skopeo, umoci and runc.

mod support;

use support::{Registry, copy_example, publish, pull_and_unpack, runc_run, uploaded_bytes};

#[test]
fn hello_publish_emits_valid_pinned_cronjob() {
    let registry = Registry::start();
    let work = tempfile::tempdir().expect("temporary directory");
    let job_dir = copy_example("hello", work.path());

    let published = publish(&job_dir, &format!("{}/e2e", registry.host_port()));
    support::kubernetes_validate(&published.manifest);

    let repository = format!("{}/e2e/hello:latest@", registry.host_port());
    let digest = published
        .image
        .strip_prefix(&repository)
        .unwrap_or_else(|| panic!("image `{}` does not start with `{repository}`", published.image));
    assert!(support::is_sha256_digest(digest), "image `{}` is not pinned to a sha256 digest", published.image);

    let cronjob = support::parse_yaml(&published.manifest);
    assert_eq!(cronjob["kind"], "CronJob");
    assert_eq!(cronjob["metadata"]["name"], "hello");
    assert_eq!(cronjob["metadata"]["labels"]["app.kubernetes.io/managed-by"], "kuul");

    let pushed = format!("pushed {}/e2e/hello:latest@{digest}", registry.host_port());
    assert!(published.stderr.contains(&pushed), "stderr lacks `{pushed}`:\n{}", published.stderr);
}

#[test]
fn hello_image_runs_under_runc() {
    support::require_root();
    let registry = Registry::start();
    let work = tempfile::tempdir().expect("temporary directory");
    let job_dir = copy_example("hello", work.path());

    let published = publish(&job_dir, &format!("{}/e2e", registry.host_port()));
    let bundle = pull_and_unpack(&published.image, work.path());
    let output = runc_run(&bundle, &[], &[], &[], false);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(
        output.status.success(),
        "the hello image exited with {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert!(stdout.contains("Hello from kuul\n"), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("uid=65532\n"), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("date: "), "stdout:\n{stdout}\nstderr:\n{stderr}");
}

#[test]
fn hello_second_publish_uploads_nothing() {
    let registry = Registry::start();
    let work = tempfile::tempdir().expect("temporary directory");
    let job_dir = copy_example("hello", work.path());
    let prefix = format!("{}/e2e", registry.host_port());

    let first = publish(&job_dir, &prefix);
    let second = publish(&job_dir, &prefix);

    let first_bytes =
        uploaded_bytes(&first.stderr).unwrap_or_else(|| panic!("no `uploaded N bytes` in stderr:\n{}", first.stderr));
    assert!(first_bytes > 0, "the first publish uploaded 0 bytes:\n{}", first.stderr);
    assert_eq!(uploaded_bytes(&second.stderr), Some(0), "the second publish uploaded data again:\n{}", second.stderr);
    assert_eq!(second.image, first.image, "the same job published twice gave two images");
}

#[test]
fn publish_reads_registry_from_environment() {
    let registry = Registry::start();
    let work = tempfile::tempdir().expect("temporary directory");
    let job_dir = copy_example("hello", work.path());

    let output = support::kuul()
        .arg("publish")
        .arg(&job_dir)
        .env("KUUL_REGISTRY", format!("{}/from-env", registry.host_port()))
        .output()
        .expect("start kuul publish");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(output.status.success(), "kuul publish failed with {}\nstderr:\n{stderr}", output.status);
    let image = support::container_image(&support::parse_yaml(&stdout));
    let expected = format!("{}/from-env/hello:latest@sha256:", registry.host_port());
    assert!(image.starts_with(&expected), "image `{image}` does not start with `{expected}`");
}

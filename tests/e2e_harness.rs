//! Checks of the test harness itself, independent of kuul, so that a failing
//! end-to-end test points at kuul rather than at the setup. The image here
//! is assembled with umoci from the host's busybox.

mod support;

use std::path::Path;
use std::process::Command;

use support::{LAYOUT_TAG, Postgres, Registry, run_checked};

#[test]
fn registry_answers_on_loopback() {
    let registry = Registry::start();

    assert!(registry.host_port().starts_with("127.0.0.1:"), "host_port is `{}`", registry.host_port());
}

#[test]
fn postgres_runs_sql_in_database() {
    let postgres = Postgres::start("harness");

    postgres.psql("CREATE TABLE item (name text)");
    postgres.psql("INSERT INTO item VALUES ('first'), ('second')");
    let names = postgres.psql("SELECT name FROM item ORDER BY name");

    assert_eq!(names, "first\nsecond\n");
    assert_eq!(postgres.psql("SELECT current_database()"), "harness\n");
}

#[test]
fn runc_runs_pulled_busybox_image() {
    support::require_root();
    let registry = Registry::start();
    let work = tempfile::tempdir().expect("temporary directory");

    let source_layout = work.path().join("source");
    build_busybox_layout(&source_layout, &work.path().join("scratch-bundle"));
    let reference = format!("{}/harness/busybox", registry.host_port());
    push_layout(&source_layout, &format!("{reference}:latest"));
    let digest = inspect_digest(&format!("{reference}:latest"));

    let layout = work.path().join("pulled");
    support::skopeo_copy_to_layout(&format!("{reference}:latest@{digest}"), &layout);
    let bundle = work.path().join("bundle");
    support::umoci_unpack(&layout, LAYOUT_TAG, &bundle);

    let shared = work.path().join("shared");
    std::fs::create_dir(&shared).expect("create shared directory");
    std::os::unix::fs::chown(&shared, Some(65532), Some(65532)).expect("chown shared directory");

    // Debian's busybox shell does not run applets by name without links, so
    // the script calls them through busybox.
    let script = "busybox id -u; echo \"$GREETING\"; \
                  busybox touch /tmp/scratch && echo tmp-writable; \
                  busybox touch /root-file 2>/dev/null || echo root-read-only; \
                  echo from-container > /shared/file";
    let output = support::runc_run(
        &bundle,
        &["/bin/busybox", "sh", "-c", script],
        &["GREETING=hello harness"],
        &[(shared.as_path(), "/shared")],
        false,
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(output.status.success(), "runc run failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}", output.status);
    assert!(stdout.contains("65532\n"), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("hello harness\n"), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("tmp-writable\n"), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("root-read-only\n"), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(
        std::fs::read_to_string(shared.join("file")).expect("file written through the bind mount"),
        "from-container\n"
    );
}

/// Builds an OCI layout holding one image: the host's busybox with the
/// libraries `ldd` lists, `/tmp`, and user 65532.
fn build_busybox_layout(layout: &Path, bundle: &Path) {
    let image = format!("{}:{LAYOUT_TAG}", layout.display());
    run_checked("umoci init", Command::new("umoci").args(["init", "--layout"]).arg(layout));
    run_checked("umoci new", Command::new("umoci").args(["new", "--image", &image]));
    run_checked("umoci unpack", Command::new("umoci").args(["unpack", "--image", &image]).arg(bundle));

    let rootfs = bundle.join("rootfs");
    for program in ["/usr/bin/busybox".to_owned()].into_iter().chain(shared_libraries("/usr/bin/busybox")) {
        let target = rootfs.join(program.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().expect("parent directory")).expect("create directory");
        std::fs::copy(&program, &target).unwrap_or_else(|error| panic!("copy `{program}`: {error}"));
    }
    std::fs::create_dir_all(rootfs.join("bin")).expect("create /bin");
    std::os::unix::fs::symlink("../usr/bin/busybox", rootfs.join("bin/busybox")).expect("link /bin/busybox");
    std::fs::create_dir_all(rootfs.join("tmp")).expect("create /tmp");

    run_checked("umoci repack", Command::new("umoci").args(["repack", "--image", &image]).arg(bundle));
    run_checked(
        "umoci config",
        Command::new("umoci").args(["config", "--image", &image, "--config.user", "65532:65532"]),
    );
}

/// Returns the absolute paths of the shared libraries and the dynamic
/// loader that `ldd` lists for `program`.
fn shared_libraries(program: &str) -> Vec<String> {
    let output = run_checked("ldd", Command::new("ldd").arg(program));
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .filter(|word| word.starts_with('/'))
        .map(str::to_owned)
        .collect()
}

fn push_layout(layout: &Path, reference: &str) {
    run_checked(
        "skopeo copy to the registry",
        Command::new("skopeo")
            .args(["copy", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:{LAYOUT_TAG}", layout.display()))
            .arg(format!("docker://{reference}")),
    );
}

fn inspect_digest(reference: &str) -> String {
    let output = run_checked(
        "skopeo inspect",
        Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
            .arg(format!("docker://{reference}")),
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

const MINIMAL_CRONJOB: &str = "\
apiVersion: batch/v1
kind: CronJob
metadata:
  name: harness
spec:
  schedule: \"0 3 * * *\"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: harness
              image: 127.0.0.1:5000/harness:latest
";

#[test]
fn kubernetes_validate_accepts_cronjob() {
    support::kubernetes_validate(MINIMAL_CRONJOB);
}

#[test]
#[should_panic(expected = "kubernetes-validate --strict rejected the manifest")]
fn kubernetes_validate_rejects_unknown_field() {
    let manifest = MINIMAL_CRONJOB.replace("  schedule:", "  schedul: \"0 3 * * *\"\n  schedule:");

    support::kubernetes_validate(&manifest);
}

#[test]
fn parse_yaml_finds_container_image() {
    let cronjob = support::parse_yaml(MINIMAL_CRONJOB);

    assert_eq!(support::container_image(&cronjob), "127.0.0.1:5000/harness:latest");
}

#[test]
fn uploaded_bytes_reads_count() {
    let stderr = "pushed 127.0.0.1:5000/e2e/hello:latest@sha256:00\nuploaded 1234 bytes in 3 blobs\n";

    assert_eq!(support::uploaded_bytes(stderr), Some(1234));
    assert_eq!(support::uploaded_bytes("uploaded 0 bytes"), Some(0));
    assert_eq!(support::uploaded_bytes("nothing uploaded"), None);
}

#[test]
fn digest_after_at_needs_64_hex_digits() {
    let digest = format!("sha256:{}", "ab".repeat(32));

    assert_eq!(support::digest_after_at(&format!("pushed x:latest@{digest}\n")), Some(digest.clone()));
    assert_eq!(support::digest_after_at("x@sha256:abc"), None);
    assert!(support::is_sha256_digest(&digest));
    assert!(!support::is_sha256_digest(&digest.to_uppercase()));
}

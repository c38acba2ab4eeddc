//! End-to-end tests of `kuul init`: each template scaffolds a job that
//! validates and builds, and the shell template's image runs under runc.

mod support;

use std::path::Path;

use support::{LAYOUT_TAG, build_json, runc_run, umoci_unpack};

#[test]
fn init_shell_job_builds_and_runs() {
    support::require_root();
    let work = tempfile::tempdir().expect("temporary directory");
    let job_dir = work.path().join("nightly-report");

    init(&job_dir, "shell", &[]);
    let kuul_toml = std::fs::read_to_string(job_dir.join("kuul.toml")).expect("read kuul.toml");
    assert!(kuul_toml.contains("name = \"nightly-report\""), "the job is not named after its directory:\n{kuul_toml}");
    assert!(!kuul_toml.contains("{{"), "kuul.toml has an unfilled placeholder:\n{kuul_toml}");

    let layout = work.path().join("layout");
    let summary = build_json(&job_dir, &layout, &[]);
    assert_eq!(summary["tag"], "latest", "{summary:#}");

    let bundle = work.path().join("bundle");
    umoci_unpack(&layout, summary["tag"].as_str().unwrap_or(LAYOUT_TAG), &bundle);
    let output = runc_run(&bundle, &[], &[], &[], false);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(
        output.status.success(),
        "the scaffolded job exited with {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert!(stdout.contains("Hello from nightly-report\n"), "stdout:\n{stdout}\nstderr:\n{stderr}");
}

#[test]
fn init_name_option_overrides_directory() {
    let work = tempfile::tempdir().expect("temporary directory");
    let job_dir = work.path().join("scratch");

    init(&job_dir, "shell", &["--name", "weekly-cleanup"]);

    let kuul_toml = std::fs::read_to_string(job_dir.join("kuul.toml")).expect("read kuul.toml");
    assert!(kuul_toml.contains("name = \"weekly-cleanup\""), "kuul.toml:\n{kuul_toml}");
}

#[test]
fn init_pg_backup_job_checks_and_builds() {
    let work = tempfile::tempdir().expect("temporary directory");
    let job_dir = work.path().join("orders-backup");

    init(&job_dir, "pg-backup", &[]);

    let script = job_dir.join("backup.sh");
    assert!(is_executable(&script), "backup.sh is not executable");

    support::kuul().arg("check").arg(&job_dir).assert().success();

    let summary = build_json(&job_dir, &work.path().join("layout"), &[]);
    assert!(support::is_sha256_digest(summary["digest"].as_str().unwrap_or_default()), "{summary:#}");
}

#[test]
fn init_rejects_unknown_template() {
    let work = tempfile::tempdir().expect("temporary directory");

    let output = support::kuul()
        .arg("init")
        .arg(work.path().join("job"))
        .args(["--template", "no-such-template"])
        .output()
        .expect("start kuul init");
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains("no-such-template"), "stderr:\n{stderr}");
}

/// Runs `kuul init JOB_DIR --template TEMPLATE` with `extra` arguments and
/// asserts that it exits with status 0.
fn init(job_dir: &Path, template: &str, extra: &[&str]) {
    support::kuul().arg("init").arg(job_dir).args(["--template", template]).args(extra).assert().success();
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;

    match std::fs::metadata(path) {
        Ok(metadata) => metadata.permissions().mode() & 0o111 != 0,
        Err(_) => false,
    }
}

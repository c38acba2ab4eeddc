//! `kuul manifest` prints the policy warnings on stderr, keeps stdout for the
//! manifest, and exits non-zero when the merged manifest is invalid.

mod support;

const IMAGE: &str =
    "127.0.0.1:5000/hello:latest@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn hello_with(edit: impl FnOnce(&str) -> String) -> (tempfile::TempDir, std::path::PathBuf) {
    let work = tempfile::tempdir().expect("temporary directory");
    let job_dir = support::copy_example("hello", work.path());
    let kuul_toml = std::fs::read_to_string(job_dir.join("kuul.toml")).expect("read kuul.toml");
    std::fs::write(job_dir.join("kuul.toml"), edit(&kuul_toml)).expect("write kuul.toml");
    (work, job_dir)
}

#[test]
fn manifest_prints_warning_on_stderr() {
    let (_work, job_dir) = hello_with(|text| text.replace("[job]\n", "[job]\nsuspend = true\n"));

    let output = support::kuul().arg("manifest").arg(&job_dir).args(["--image", IMAGE]).output().expect("start kuul");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(output.status.success(), "stderr:\n{stderr}");
    let text = std::fs::read_to_string(job_dir.join("kuul.toml")).unwrap();
    let line = text.lines().position(|line| line == "suspend = true").unwrap() + 1;
    let expected = format!("warning: {}:{line}: `job.suspend`: ", job_dir.join("kuul.toml").display());
    assert!(stderr.contains(&expected), "stderr:\n{stderr}");
    assert!(stdout.starts_with("apiVersion: batch/v1\n"), "stdout:\n{stdout}");
    assert!(stdout.contains("suspend: true\n"), "stdout:\n{stdout}");
    support::kubernetes_validate(&stdout);
}

#[test]
fn manifest_fails_on_fragment_error() {
    let (_work, job_dir) =
        hello_with(|text| format!("{text}\n[kubernetes.cronjob.spec.jobTemplate.spec]\nparallelism = -1\n"));

    let output = support::kuul().arg("manifest").arg(&job_dir).args(["--image", IMAGE]).output().expect("start kuul");
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(output.stdout.is_empty(), "stdout is not empty");
    assert!(
        stderr.contains("`kubernetes.cronjob.spec.jobTemplate.spec.parallelism`: negative value `-1`"),
        "stderr:\n{stderr}"
    );
}

//! End-to-end tests of `kuul check` on the example jobs, and of the error
//! format that every command shares.

mod support;

use std::path::PathBuf;

fn example(name: &str) -> PathBuf {
    support::repo_root().join("images").join(name)
}

/// Runs `kuul check` with `args` and returns its stdout, asserting success.
fn check(args: &[&str], job_dir: &std::path::Path) -> String {
    let output = support::kuul().arg("check").arg(job_dir).args(args).output().expect("start kuul check");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(output.status.success(), "kuul check failed with {}\nstdout:\n{stdout}\nstderr:\n{stderr}", output.status);
    stdout
}

#[test]
fn check_prints_five_runs_with_zone() {
    let stdout = check(&[], &example("hello"));
    let lines: Vec<&str> = stdout.lines().filter(|line| !line.trim().is_empty()).collect();

    assert_eq!(lines.len(), 5, "stdout:\n{stdout}");
    for line in &lines {
        assert!(line.contains("Etc/UTC"), "line without the zone: `{line}`");
    }
}

#[test]
fn check_runs_option_sets_count() {
    let stdout = check(&["--runs", "3"], &example("pg-backup"));
    let lines: Vec<&str> = stdout.lines().filter(|line| !line.trim().is_empty()).collect();

    assert_eq!(lines.len(), 3, "stdout:\n{stdout}");
    for line in &lines {
        assert!(line.contains("Europe/Berlin"), "line without the zone: `{line}`");
    }
}

#[test]
fn check_rejects_invalid_schedule() {
    let work = tempfile::tempdir().expect("temporary directory");
    let job_dir = support::copy_example("hello", work.path());
    let kuul_toml = std::fs::read_to_string(job_dir.join("kuul.toml")).expect("read kuul.toml");
    let broken = kuul_toml.replace("schedule = \"*/30 * * * *\"", "schedule = \"61 * * * *\"");
    assert_ne!(broken, kuul_toml, "the hello schedule changed; update this test");
    std::fs::write(job_dir.join("kuul.toml"), broken).expect("write kuul.toml");

    let output = support::kuul().arg("check").arg(&job_dir).output().expect("start kuul check");
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.starts_with("error: "), "stderr:\n{stderr}");
    assert!(stderr.contains("job.schedule"), "stderr:\n{stderr}");
    assert!(stderr.contains("61 * * * *"), "stderr:\n{stderr}");
    assert!(stderr.contains("hint: "), "stderr:\n{stderr}");
}

#[test]
fn check_reports_missing_kuul_toml() {
    let work = tempfile::tempdir().expect("temporary directory");

    let output = support::kuul().arg("check").arg(work.path()).output().expect("start kuul check");
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.starts_with("error: "), "stderr:\n{stderr}");
    assert!(stderr.contains("kuul.toml"), "stderr:\n{stderr}");
    assert!(stderr.contains("hint: "), "stderr:\n{stderr}");
}

/// Copies the `hello` example into a temporary directory and applies
/// `edit` to its kuul.toml.
fn edited_hello(edit: impl FnOnce(&str) -> String) -> (tempfile::TempDir, PathBuf) {
    let work = tempfile::tempdir().expect("temporary directory");
    let job_dir = support::copy_example("hello", work.path());
    let kuul_toml = std::fs::read_to_string(job_dir.join("kuul.toml")).expect("read kuul.toml");
    let edited = edit(&kuul_toml);
    assert_ne!(edited, kuul_toml, "the edit changed nothing; update this test");
    std::fs::write(job_dir.join("kuul.toml"), edited).expect("write kuul.toml");
    (work, job_dir)
}

/// `hello` with a daily 02:30 schedule in Berlin, where the clocks change
/// at that hour.
fn hello_in_switch_hours() -> (tempfile::TempDir, PathBuf) {
    edited_hello(|text| {
        text.replace("schedule = \"*/30 * * * *\"", "schedule = \"30 2 * * *\"")
            .replace("timezone = \"Etc/UTC\"", "timezone = \"Europe/Berlin\"")
    })
}

fn run_check(job_dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let output = support::kuul().arg("check").arg(job_dir).args(args).output().expect("start kuul check");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn check_prints_warning_with_key() {
    let (_work, job_dir) = hello_in_switch_hours();

    let (code, _, stderr) = run_check(&job_dir, &[]);

    assert_eq!(code, Some(0), "stderr:\n{stderr}");
    let text = std::fs::read_to_string(job_dir.join("kuul.toml")).unwrap();
    let line = text.lines().position(|line| line.starts_with("schedule =")).unwrap() + 1;
    let expected = format!("warning: {}:{line}: `job.schedule`: ", job_dir.join("kuul.toml").display());
    assert!(stderr.contains(&expected), "stderr:\n{stderr}");
    assert!(stderr.contains("  hint: "), "stderr:\n{stderr}");
    assert!(stderr.contains("valid, 1 warning"), "stderr:\n{stderr}");
}

#[test]
fn check_strict_fails_on_warning() {
    let (_work, job_dir) = hello_in_switch_hours();

    let (code, _, stderr) = run_check(&job_dir, &["--strict"]);

    assert_eq!(code, Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains("error: 1 warning and `--strict` is set"), "stderr:\n{stderr}");
}

#[test]
fn check_strict_passes_without_warnings() {
    let (code, _, stderr) = run_check(&example("hello"), &["--strict"]);

    assert_eq!(code, Some(0), "stderr:\n{stderr}");
    assert!(!stderr.contains("warning:"), "stderr:\n{stderr}");
}

#[test]
fn check_marks_both_runs_in_fold() {
    let (_work, job_dir) = hello_in_switch_hours();

    let (code, stdout, stderr) = run_check(&job_dir, &["--from", "2026-10-24T12:00:00Z", "--runs", "3"]);

    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(code, Some(0), "stderr:\n{stderr}");
    assert_eq!(lines.len(), 3, "stdout:\n{stdout}");
    assert!(lines[0].starts_with("2026-10-25 02:30:00 +02:00 Europe/Berlin  (first of two runs"), "stdout:\n{stdout}");
    assert!(lines[1].starts_with("2026-10-25 02:30:00 +01:00 Europe/Berlin  (second of two runs"), "stdout:\n{stdout}");
    assert_eq!(lines[2], "2026-10-26 02:30:00 +01:00 Europe/Berlin", "stdout:\n{stdout}");
}

#[test]
fn check_reports_skipped_local_time() {
    let (_work, job_dir) = hello_in_switch_hours();

    let (code, stdout, stderr) = run_check(&job_dir, &["--from", "2026-03-28T12:00:00Z", "--runs", "1"]);

    assert_eq!(code, Some(0), "stderr:\n{stderr}");
    assert_eq!(stdout, "2026-03-30 02:30:00 +02:00 Europe/Berlin\n");
    assert!(
        stderr.contains(
            "skipped: 2026-03-29 02:30 does not exist in Europe/Berlin, because the clocks jump from 02:00 to 03:00"
        ),
        "stderr:\n{stderr}"
    );
}

#[test]
fn check_rejects_fragment_unknown_field() {
    let (_work, job_dir) = edited_hello(|text| format!("{text}\n[kubernetes.container]\nenvFromm = []\n"));

    let (code, _, stderr) = run_check(&job_dir, &[]);

    assert_eq!(code, Some(1), "stderr:\n{stderr}");
    assert!(stderr.starts_with("error: invalid CronJob manifest"), "stderr:\n{stderr}");
    assert!(stderr.contains("`kubernetes.container.envFromm`: unknown field"), "stderr:\n{stderr}");
}

#[test]
fn check_rejects_invalid_policy_value() {
    let (_work, job_dir) = edited_hello(|text| text.replace("[job]\n", "[job]\nconcurrency_policy = \"forbid\"\n"));

    let (code, _, stderr) = run_check(&job_dir, &[]);

    assert_eq!(code, Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains("`job.concurrency_policy`: invalid value `forbid`"), "stderr:\n{stderr}");
    assert!(stderr.contains("hint: values are case-sensitive: use `Forbid`"), "stderr:\n{stderr}");
}

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

//! Snapshots of the CronJob manifests of every example under `images/`, every
//! template under `templates/`, and a job that sets every policy key and
//! both `[kubernetes]` fragments. Each manifest must also pass
//! `kubernetes-validate --strict`. After an intended change, review the new
//! manifests and accept them with `INSTA_UPDATE=always cargo test --test
//! manifest_snapshots` (or `cargo insta review`).

mod support;

use std::path::Path;

use jiff::Timestamp;

const IMAGE: &str = "127.0.0.1:5000/example:v1@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// A fixed start for the daylight saving time search, so the warnings do
/// not depend on the day the tests run.
const NOW: &str = "2026-01-01T00:00:00Z";

/// The job name that `kuul init` would fill into a template.
const TEMPLATE_NAME: &str = "example-job";

/// Renders the job in `dir` (relative to the repository root) and returns
/// the YAML manifest and its warnings, one per line.
fn render_job_dir(dir: &str) -> (String, String) {
    let job_dir = support::repo_root().join(dir);
    let text = std::fs::read_to_string(job_dir.join("kuul.toml")).expect("read kuul.toml");
    render_text(&text.replace("{{name}}", TEMPLATE_NAME), &job_dir)
}

fn render_text(text: &str, job_dir: &Path) -> (String, String) {
    let spec = kuul::spec::parse(text, &job_dir.join("kuul.toml")).unwrap_or_else(|error| panic!("{error}"));
    let command = kuul::build::container_command(&spec, job_dir);
    let now: Timestamp = NOW.parse().expect("valid timestamp");

    let rendered = kuul::k8s::render(&spec, IMAGE, &command, now).unwrap_or_else(|error| panic!("{error}"));

    let warnings: Vec<String> = rendered.warnings.iter().map(ToString::to_string).collect();
    (kuul::k8s::to_yaml(&rendered.cronjob), warnings.join("\n"))
}

fn check(name: &str, dir: &str) {
    let (yaml, warnings) = render_job_dir(dir);

    insta::assert_snapshot!(format!("{name}_manifest"), yaml);
    insta::assert_snapshot!(format!("{name}_warnings"), warnings);
    support::kubernetes_validate(&yaml);
}

#[test]
fn hello_example_manifest() {
    check("images_hello", "images/hello");
}

#[test]
fn pg_backup_example_manifest() {
    check("images_pg_backup", "images/pg-backup");
}

#[test]
fn shell_template_manifest() {
    check("templates_shell", "templates/shell");
}

#[test]
fn pg_backup_template_manifest() {
    check("templates_pg_backup", "templates/pg-backup");
}

/// Every example and template directory is covered by a test above.
#[test]
fn every_job_dir_has_snapshot() {
    let covered = ["images/hello", "images/pg-backup", "templates/shell", "templates/pg-backup"];
    for parent in ["images", "templates"] {
        let entries = std::fs::read_dir(support::repo_root().join(parent)).expect("read job directories");
        for entry in entries {
            let entry = entry.expect("directory entry");
            if entry.path().join("kuul.toml").is_file() {
                let dir = format!("{parent}/{}", entry.file_name().to_string_lossy());
                assert!(covered.contains(&dir.as_str()), "`{dir}` has no manifest snapshot test");
            }
        }
    }
}

const EVERY_KEY: &str = r#"
[job]
name = "nightly-report"
schedule = "0 6 * * MON-FRI"
timezone = "America/New_York"
command = ["/job/report.sh", "--all"]
concurrency_policy = "Replace"
starting_deadline_seconds = 600
active_deadline_seconds = 7200
backoff_limit = 4
successful_jobs_history_limit = 5
failed_jobs_history_limit = 10
restart_policy = "OnFailure"
ttl_seconds_after_finished = 604800

[image]
pull_secrets = ["registry-credentials"]

[resources.requests]
memory = "200Mi"

[resources.limits]
cpu = "2"

[kubernetes.cronjob.metadata]
labels = { "example.com/team" = "ops" }
annotations = { "example.com/owner" = "ops@example.com" }

[kubernetes.cronjob.spec.jobTemplate.spec]
podFailurePolicy = { rules = [{ action = "FailJob", onExitCodes = { operator = "In", values = [42] } }] }

[kubernetes.cronjob.spec.jobTemplate.spec.template.spec]
serviceAccountName = "report"
automountServiceAccountToken = true
priorityClassName = "batch-low"

[kubernetes.container]
envFrom = [{ secretRef = { name = "report-db" } }]
env = [
  { name = "PGPASSWORD", valueFrom = { secretKeyRef = { name = "report-db", key = "password" } } },
  { name = "LOG_LEVEL", value = "info" },
]
"#;

#[test]
fn every_key_and_fragment_manifest() {
    let work = tempfile::tempdir().expect("temporary directory");
    let (yaml, warnings) = render_text(EVERY_KEY, work.path());

    insta::assert_snapshot!("every_key_manifest", yaml);
    insta::assert_snapshot!("every_key_warnings", warnings);
    support::kubernetes_validate(&yaml);
}

//! Checks generated CronJob manifests against the official Kubernetes schemas
//! with `kubernetes-validate --strict`, and checks that a YAML 1.1 parser
//! (PyYAML, as used by `kubernetes-validate`) reads the YAML back as the JSON.

use std::io::{ErrorKind, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use kuul::k8s::{cronjob, to_json, to_yaml};
use serde_json::Value;

/// The schema version to validate against. It matches k8s-openapi's `v1_33`
/// feature, the oldest API version kuul supports.
const KUBERNETES_VERSION: &str = "1.33";

const IMAGE: &str = "127.0.0.1:5000/pg-backup:v1@sha256:\
                     9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

const MINIMAL: &str = r#"
[job]
name = "pg-backup"
schedule = "0 3 * * *"
command = "backup.sh"
"#;

const WITH_RESOURCES: &str = r#"
[job]
name = "pg-backup"
schedule = "*/15 * * * *"
timezone = "Europe/Berlin"
command = ["backup.sh", "--all"]

[job.env]
PGHOST = "127.0.0.1"
COMPRESS = "yes"
UMASK = "0755"

[resources]
requests = { cpu = "250m", memory = "128Mi" }
limits = { cpu = "1", memory = "1e9" }
"#;

const WITH_PLACEMENT: &str = r#"
[job]
name = "smoke-test"
schedule = "@hourly"
command = "smoke.sh"

[placement]
pool = "ops"
node_selector = { "kubernetes.io/arch" = "amd64" }

[[placement.tolerations]]
key = "dedicated"
operator = "Exists"
effect = "NoExecute"
tolerationSeconds = 300

[placement.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution]
nodeSelectorTerms = [
  { matchExpressions = [{ key = "zone", operator = "In", values = ["a", "b"] }],
    matchFields = [{ key = "metadata.name", operator = "NotIn", values = ["node-1"] }] },
]

[[placement.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution]]
weight = 10
preference = { matchExpressions = [{ key = "disk", operator = "In", values = ["ssd"] }] }

[[placement.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution]]
topologyKey = "topology.kubernetes.io/zone"
labelSelector = { matchLabels = { app = "postgres" } }
namespaces = ["databases"]

[[placement.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution]]
weight = 100

[placement.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution.podAffinityTerm]
topologyKey = "kubernetes.io/hostname"
labelSelector = { matchExpressions = [{ key = "app.kubernetes.io/name", operator = "In", values = ["smoke-test"] }] }
namespaceSelector = { matchLabels = { team = "ops" } }
matchLabelKeys = ["pod-template-hash"]
mismatchLabelKeys = ["tenant"]
"#;

const WITH_ROOT_USER: &str = r#"
[job]
name = "node-check"
schedule = "30 2 * * 1-5"
command = "check.sh"

[image]
user = "root"
workdir = "/opt/check"
"#;

fn build_cronjob(toml: &str) -> k8s_openapi::api::batch::v1::CronJob {
    let spec = kuul::spec::parse(toml, Path::new("kuul.toml")).expect("test spec parses");
    let command = vec![
        "/bin/sh".to_owned(),
        "-c".to_owned(),
        "set -eu\n/job/run.sh \"$@\"\n".to_owned(),
        "a long argument with spaces that is longer than eighty characters, long enough that a YAML writer could fold it"
            .to_owned(),
    ];
    cronjob(&spec, IMAGE, &command)
}

fn missing_tool(tool: &str) -> ! {
    panic!("`{tool}` was not found on PATH\nhint: run `scripts/setup-test-env` to install the test components")
}

/// Runs `kubernetes-validate --strict` on `yaml` written to a temporary file.
fn run_validator(yaml: &str) -> Output {
    let dir = tempfile::tempdir().expect("create temp dir");
    let path = dir.path().join("cronjob.yaml");
    std::fs::write(&path, yaml).expect("write manifest");

    let output = Command::new("kubernetes-validate")
        .args(["--strict", "--kubernetes-version", KUBERNETES_VERSION])
        .arg(&path)
        .output();

    match output {
        Ok(output) => output,
        Err(error) if error.kind() == ErrorKind::NotFound => missing_tool("kubernetes-validate"),
        Err(error) => panic!("failed to run `kubernetes-validate`: {error}"),
    }
}

fn describe(output: &Output) -> String {
    format!(
        "exit status: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn assert_valid(toml: &str) {
    let yaml = to_yaml(&build_cronjob(toml));

    let output = run_validator(&yaml);

    assert!(output.status.success(), "manifest rejected:\n{}\nmanifest:\n{yaml}", describe(&output));
}

#[test]
fn minimal_spec_passes_schema() {
    assert_valid(MINIMAL);
}

#[test]
fn spec_with_resources_passes_schema() {
    assert_valid(WITH_RESOURCES);
}

#[test]
fn spec_with_placement_passes_schema() {
    assert_valid(WITH_PLACEMENT);
}

#[test]
fn spec_with_root_user_passes_schema() {
    assert_valid(WITH_ROOT_USER);
}

#[test]
fn unknown_field_fails_schema() {
    let mut manifest: Value = serde_json::from_str(&to_json(&build_cronjob(MINIMAL))).expect("to_json returns JSON");
    let container = manifest
        .pointer_mut("/spec/jobTemplate/spec/template/spec/containers/0")
        .and_then(Value::as_object_mut)
        .expect("manifest has a container");
    container.insert("restartPolicyTypo".to_owned(), Value::from("Never"));
    let yaml = serde_saphyr::to_string(&manifest).expect("manifest serializes");

    let output = run_validator(&yaml);

    let report = describe(&output);
    assert!(!output.status.success(), "broken manifest accepted:\n{report}");
    assert!(report.contains("restartPolicyTypo"), "report does not name the field:\n{report}");
}

/// Parses `yaml` with PyYAML's safe loader and returns it as JSON.
fn read_with_pyyaml(yaml: &str) -> Value {
    let script = "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)";
    let child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) if error.kind() == ErrorKind::NotFound => missing_tool("python3"),
        Err(error) => panic!("failed to run `python3`: {error}"),
    };

    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin.write_all(yaml.as_bytes()).expect("write YAML to python3");
    drop(stdin);
    let output = child.wait_with_output().expect("wait for python3");

    assert!(
        output.status.success(),
        "PyYAML failed to read the manifest\nhint: run `scripts/setup-test-env` to install kubernetes-validate and PyYAML\n{}",
        describe(&output)
    );
    serde_json::from_slice(&output.stdout).expect("python3 prints JSON")
}

#[test]
fn yaml11_parser_reads_yaml_as_json() {
    for toml in [MINIMAL, WITH_RESOURCES, WITH_PLACEMENT, WITH_ROOT_USER] {
        let cronjob = build_cronjob(toml);
        let expected: Value = serde_json::from_str(&to_json(&cronjob)).expect("to_json returns JSON");

        let read_back = read_with_pyyaml(&to_yaml(&cronjob));

        assert_eq!(read_back, expected, "YAML for spec:\n{toml}");
    }
}

//! Steps that several end-to-end tests share: copy an example job, run
//! `kuul build` and `kuul publish`, and turn a pushed image into a runc
//! bundle.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{LAYOUT_TAG, copy_dir, kuul, repo_root, skopeo_copy_to_layout, umoci_unpack};

/// The result of a successful `kuul publish`.
pub struct Published {
    /// The CronJob manifest that kuul printed on stdout.
    pub manifest: String,
    /// kuul's progress and summary lines from stderr.
    pub stderr: String,
    /// The container image reference in the manifest.
    pub image: String,
}

/// Copies `images/<name>` from the repository into `parent/<name>` and
/// returns the copy, so that kuul's output (`.kuul/`) never lands in the
/// repository.
pub fn copy_example(name: &str, parent: &Path) -> PathBuf {
    let copy = parent.join(name);
    copy_dir(&repo_root().join("images").join(name), &copy);
    copy
}

/// Runs `kuul publish JOB_DIR --registry REGISTRY`, asserts that it exits
/// with status 0, and returns the manifest and the image it names.
pub fn publish(job_dir: &Path, registry: &str) -> Published {
    let output =
        kuul().arg("publish").arg(job_dir).args(["--registry", registry]).output().expect("start kuul publish");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();

    assert!(
        output.status.success(),
        "kuul publish failed with {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );

    let image = container_image(&parse_yaml(&stdout));
    Published { manifest: stdout, stderr, image }
}

/// Runs `kuul build JOB_DIR --layout LAYOUT -o json` with `env` added to
/// kuul's environment, asserts that it exits with status 0, and returns the
/// parsed JSON summary.
pub fn build_json(job_dir: &Path, layout: &Path, env: &[(&str, &str)]) -> Value {
    let mut command = kuul();
    command.arg("build").arg(job_dir).arg("--layout").arg(layout).args(["-o", "json"]);
    for (name, value) in env {
        command.env(name, value);
    }

    let output = command.output().expect("start kuul build");
    parse_json_stdout("kuul build", &output)
}

/// Parses the JSON that a successful command printed on stdout, panicking
/// with both streams when the command failed or printed something else.
pub fn parse_json_stdout(step: &str, output: &std::process::Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(output.status.success(), "{step} failed with {}\nstdout:\n{stdout}\nstderr:\n{stderr}", output.status);

    serde_json::from_str(&stdout).unwrap_or_else(|error| {
        panic!("{step} printed invalid JSON on stdout: {error}\nstdout:\n{stdout}\nstderr:\n{stderr}")
    })
}

/// Parses a YAML document into a JSON value, panicking with the text when
/// it is not valid YAML.
pub fn parse_yaml(yaml: &str) -> Value {
    serde_saphyr::from_str(yaml).unwrap_or_else(|error| panic!("invalid YAML: {error}\n{yaml}"))
}

/// Returns the image of the first container in a CronJob manifest.
pub fn container_image(cronjob: &Value) -> String {
    let image = &cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"];
    image.as_str().unwrap_or_else(|| panic!("no container image in the CronJob manifest:\n{cronjob:#}")).to_owned()
}

/// Returns N from the first `uploaded N bytes` in `stderr`, or `None`.
pub fn uploaded_bytes(stderr: &str) -> Option<u64> {
    stderr.lines().find_map(|line| {
        let rest = line.strip_prefix("uploaded ")?;
        let (number, rest) = rest.split_once(' ')?;
        if !rest.starts_with("bytes") {
            return None;
        }
        number.parse().ok()
    })
}

/// Pulls `image` from a plain-HTTP registry into `work/layout` with skopeo
/// and unpacks it with umoci into `work/bundle`, which is returned.
pub fn pull_and_unpack(image: &str, work: &Path) -> PathBuf {
    let layout = work.join("layout");
    skopeo_copy_to_layout(image, &layout);

    let bundle = work.join("bundle");
    umoci_unpack(&layout, LAYOUT_TAG, &bundle);
    bundle
}

//! End-to-end tests of multi-platform builds: `--platform` with two
//! platforms writes an OCI image index that skopeo reads, `publish` pushes
//! it to a real `docker-registry`, and sources that cannot supply a platform
//! are rejected.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::registry_client::get_manifest;
use support::{Registry, kuul, parse_json_stdout, run_checked};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const TWO_PLATFORMS: &str = "linux/amd64,linux/arm64";

/// Writes a scratch job whose files all come from its directory: the
/// script's `#!` interpreter is another job file, so no source depends on
/// the build machine.
fn write_scratch_job(parent: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;

    let dir = parent.join("multi");
    std::fs::create_dir_all(&dir).expect("create the job directory");
    std::fs::write(
        dir.join("kuul.toml"),
        "[job]\nname = \"multi\"\nschedule = \"0 3 * * *\"\ncommand = [\"run.sh\"]\n",
    )
    .expect("write kuul.toml");
    std::fs::write(dir.join("run.sh"), "#!/job/interp\necho multi\n").expect("write run.sh");
    std::fs::write(dir.join("interp"), "not a real interpreter\n").expect("write interp");
    for file in ["run.sh", "interp"] {
        std::fs::set_permissions(dir.join(file), std::fs::Permissions::from_mode(0o755)).expect("set the mode");
    }
    dir
}

/// Runs `kuul build JOB_DIR --layout LAYOUT --platform PLATFORMS -o json`
/// and returns the JSON summary.
fn build_platforms(job_dir: &Path, layout: &Path, platforms: &str) -> Value {
    let output = kuul()
        .arg("build")
        .arg(job_dir)
        .arg("--layout")
        .arg(layout)
        .args(["--platform", platforms, "-o", "json"])
        .output()
        .expect("start kuul build");
    parse_json_stdout("kuul build --platform", &output)
}

/// Runs skopeo with `args` and parses its JSON output.
fn skopeo_json(args: &[&str]) -> Value {
    support::require("skopeo");
    let output = run_checked(&format!("skopeo {}", args.join(" ")), Command::new("skopeo").args(args));
    serde_json::from_slice(&output.stdout).expect("skopeo prints JSON")
}

fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes)))
}

/// Returns the `os/architecture` of every entry in an index.
fn index_platforms(index: &Value) -> Vec<String> {
    index["manifests"]
        .as_array()
        .expect("the index lists manifests")
        .iter()
        .map(|entry| {
            let platform = &entry["platform"];
            format!("{}/{}", platform["os"].as_str().unwrap(), platform["architecture"].as_str().unwrap())
        })
        .collect()
}

#[test]
fn two_platforms_give_index_in_layout() {
    let work = tempfile::tempdir().expect("temporary directory");
    let job_dir = write_scratch_job(work.path());
    let layout = work.path().join("layout");

    let summary = build_platforms(&job_dir, &layout, TWO_PLATFORMS);

    let image = format!("oci:{}:latest", layout.display());
    let raw = skopeo_json(&["inspect", "--raw", &image]);
    assert_eq!(raw["mediaType"], OCI_INDEX, "index: {raw:#}");
    assert_eq!(index_platforms(&raw), ["linux/amd64", "linux/arm64"], "index: {raw:#}");
    assert_eq!(raw["manifests"][0]["mediaType"], OCI_MANIFEST, "index: {raw:#}");
    let index_hex = summary["digest"].as_str().unwrap().trim_start_matches("sha256:");
    let index_bytes =
        std::fs::read(layout.join("blobs/sha256").join(index_hex)).expect("the summary's digest names the index blob");
    assert_eq!(serde_json::from_slice::<Value>(&index_bytes).unwrap(), raw);
    assert_eq!(summary["platforms"][1]["platform"], "linux/arm64", "summary: {summary:#}");
    assert!(summary["layers"].is_null(), "summary: {summary:#}");

    // skopeo's `Digest` is the index digest here, so the layers show which
    // manifest it chose.
    let arm = skopeo_json(&["inspect", "--override-arch", "arm64", &image]);
    assert_eq!(arm["Architecture"], "arm64", "arm64 image: {arm:#}");
    assert_eq!(arm["Layers"], layout_layers(&layout, &raw["manifests"][1]), "arm64 image: {arm:#}");
    let amd = skopeo_json(&["inspect", "--override-arch", "amd64", &image]);
    assert_eq!(amd["Architecture"], "amd64", "amd64 image: {amd:#}");
    assert_eq!(amd["Layers"], layout_layers(&layout, &raw["manifests"][0]), "amd64 image: {amd:#}");
    assert_ne!(amd["Layers"], arm["Layers"], "both platforms got the same layers");
    let summary_arm_layers: Value =
        summary["platforms"][1]["layers"].as_array().unwrap().iter().map(|layer| layer["digest"].clone()).collect();
    assert_eq!(summary_arm_layers, arm["Layers"], "summary: {summary:#}");
}

/// Returns the layer digests of the manifest that `entry` (an index entry)
/// names in the layout.
fn layout_layers(layout: &Path, entry: &Value) -> Value {
    let hex = entry["digest"].as_str().expect("the entry has a digest").trim_start_matches("sha256:");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(hex)).expect("read the manifest"))
            .expect("the manifest is JSON");
    manifest_layers(&manifest)
}

fn manifest_layers(manifest: &Value) -> Value {
    manifest["layers"]
        .as_array()
        .expect("the manifest lists layers")
        .iter()
        .map(|layer| layer["digest"].clone())
        .collect()
}

#[test]
fn two_platform_builds_are_reproducible() {
    let work = tempfile::tempdir().expect("temporary directory");
    let job_dir = write_scratch_job(work.path());

    let first = build_platforms(&job_dir, &work.path().join("first"), TWO_PLATFORMS);
    let second = build_platforms(&job_dir, &work.path().join("second"), TWO_PLATFORMS);

    assert_eq!(first["digest"], second["digest"], "first: {first:#}\nsecond: {second:#}");
}

#[test]
fn one_platform_flag_gives_plain_manifest() {
    let work = tempfile::tempdir().expect("temporary directory");
    let job_dir = write_scratch_job(work.path());
    let layout = work.path().join("layout");

    let summary = build_platforms(&job_dir, &layout, "linux/arm64");

    let image = format!("oci:{}:latest", layout.display());
    let raw = skopeo_json(&["inspect", "--raw", &image]);
    assert_eq!(raw["mediaType"], OCI_MANIFEST, "manifest: {raw:#}");
    let inspected = skopeo_json(&["inspect", &image]);
    assert_eq!(inspected["Architecture"], "arm64", "image: {inspected:#}");
    assert_eq!(inspected["Digest"], summary["digest"], "image: {inspected:#}");
    assert!(summary["platforms"].is_null(), "summary: {summary:#}");
}

#[test]
fn publish_pushes_index_to_registry() {
    let registry = Registry::start();
    let work = tempfile::tempdir().expect("temporary directory");
    let job_dir = write_scratch_job(work.path());
    let host = registry.host_port();

    let output = kuul()
        .arg("publish")
        .arg(&job_dir)
        .args(["--registry", &format!("{host}/e2e"), "--platform", TWO_PLATFORMS, "--extra-tag", "v2"])
        .output()
        .expect("start kuul publish");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "kuul publish failed\nstdout:\n{stdout}\nstderr:\n{stderr}");

    let index_bytes = get_manifest(&host, "e2e/multi", "latest", OCI_INDEX);
    let index: Value = serde_json::from_slice(&index_bytes).expect("the registry returns JSON");
    let pinned = support::container_image(&support::parse_yaml(&stdout));
    assert_eq!(pinned, format!("{host}/e2e/multi:latest@{}", sha256_digest(&index_bytes)));
    assert_eq!(index["mediaType"], OCI_INDEX, "index: {index:#}");
    assert_eq!(index_platforms(&index), ["linux/amd64", "linux/arm64"], "index: {index:#}");
    assert_eq!(get_manifest(&host, "e2e/multi", "v2", OCI_INDEX), index_bytes, "the extra tag names another index");

    let reference = format!("docker://{host}/e2e/multi:latest");
    let arm = skopeo_json(&["inspect", "--tls-verify=false", "--override-arch", "arm64", &reference]);
    assert_eq!(arm["Architecture"], "arm64", "arm64 image: {arm:#}");
    let arm_digest = index["manifests"][1]["digest"].as_str().expect("the index names the arm64 manifest");
    let arm_manifest = get_manifest(&host, "e2e/multi", arm_digest, OCI_MANIFEST);
    assert_eq!(sha256_digest(&arm_manifest), arm_digest);
    let arm_manifest: Value = serde_json::from_slice(&arm_manifest).expect("the registry returns JSON");
    assert_eq!(arm["Layers"], manifest_layers(&arm_manifest), "arm64 image: {arm:#}");
}

#[test]
fn host_binaries_rejected_for_other_platform() {
    let work = tempfile::tempdir().expect("temporary directory");
    let job_dir = write_scratch_job(work.path());
    let toml = std::fs::read_to_string(job_dir.join("kuul.toml")).unwrap();
    std::fs::write(job_dir.join("kuul.toml"), format!("{toml}\n[image]\nbinaries = [\"busybox\"]\n")).unwrap();

    let output =
        kuul().arg("build").arg(&job_dir).args(["--platform", TWO_PLATFORMS]).output().expect("start kuul build");
    let stderr = String::from_utf8_lossy(&output.stderr);

    let foreign = if std::env::consts::ARCH == "aarch64" { "linux/amd64" } else { "linux/arm64" };
    assert!(!output.status.success(), "the build succeeded:\n{stderr}");
    assert!(
        stderr.contains(&format!("`image.binaries` cannot be built for platform `{foreign}`")),
        "stderr:\n{stderr}"
    );
    assert!(stderr.contains("host binaries exist only for the build machine's platform"), "stderr:\n{stderr}");
    assert!(
        stderr.contains("hint: install the programs from Debian packages in `image.packages`"),
        "stderr:\n{stderr}"
    );
    assert!(!job_dir.join(".kuul").exists(), "a rejected build wrote a layout");
}

#[test]
fn tarball_rejects_two_platforms() {
    let work = tempfile::tempdir().expect("temporary directory");
    let job_dir = write_scratch_job(work.path());

    let output = kuul()
        .arg("build")
        .arg(&job_dir)
        .args(["--platform", TWO_PLATFORMS, "--tarball"])
        .arg(work.path().join("image.tar"))
        .output()
        .expect("start kuul build");
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success(), "the build succeeded:\n{stderr}");
    assert!(stderr.contains("`--tarball` takes a single-platform image"), "stderr:\n{stderr}");
    assert!(!work.path().join("image.tar").exists(), "an archive was written");
}

#[test]
fn invalid_platform_rejected() {
    let work = tempfile::tempdir().expect("temporary directory");
    let job_dir = write_scratch_job(work.path());

    let output = kuul().arg("build").arg(&job_dir).args(["--platform", "linux"]).output().expect("start kuul build");
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success(), "the build succeeded:\n{stderr}");
    assert!(stderr.contains("invalid platform `linux`"), "stderr:\n{stderr}");
}

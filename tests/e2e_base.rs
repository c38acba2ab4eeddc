//! End-to-end tests of base images: kuul builds on images pulled from a real
//! `docker-registry`, keeps the base's layer blobs byte-identical, and the
//! result runs under runc.

mod support;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::registry_client::{get_manifest, push_blob, push_manifest};
use support::{Registry, copy_example, publish, run_checked, runc_run, umoci_unpack};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_GZIP_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Publishes the hello example (busybox with `/bin/sh` and `/bin/id`) as
/// `e2e/hello:latest` and returns its reference without the digest.
fn publish_base(registry: &Registry, work: &Path) -> String {
    let base_dir = copy_example("hello", work);
    publish(&base_dir, &format!("{}/e2e", registry.host_port()));
    format!("{}/e2e/hello:latest", registry.host_port())
}

/// Writes a job that runs a shell script from the base, with no binaries of
/// its own.
fn derived_job(work: &Path, base: &str) -> PathBuf {
    let dir = work.join("derived");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("kuul.toml"),
        format!(
            "[job]\nname = \"derived\"\nschedule = \"*/30 * * * *\"\ncommand = [\"run.sh\"]\n\n\
             [image]\nbase = \"{base}\"\nfiles = [\"run.sh\"]\n"
        ),
    )
    .unwrap();
    let script = dir.join("run.sh");
    std::fs::write(&script, "#!/bin/sh\necho derived on base\nid -u\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    dir
}

/// Runs `kuul build` with its own cache and returns the output, unchecked.
fn build(job_dir: &Path, cache: &Path) -> std::process::Output {
    support::kuul().arg("build").arg(job_dir).env("KUUL_CACHE_DIR", cache).output().expect("start kuul build")
}

fn build_ok(job_dir: &Path, cache: &Path) {
    let output = build(job_dir, cache);
    assert!(
        output.status.success(),
        "kuul build failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Returns the digest of the hello base's manifest in the registry.
fn hello_digest(registry: &Registry) -> String {
    let manifest = get_manifest(&registry.host_port(), "e2e/hello", "latest", OCI_MANIFEST);
    format!("sha256:{}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(manifest)))
}

/// Reads the manifest or index tagged `latest` in the job's default layout.
fn built_manifest(job_dir: &Path) -> Value {
    let layout = job_dir.join(".kuul/oci");
    let index: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_owned();
    serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(digest)).unwrap()).unwrap()
}

fn layer_digests(manifest: &Value) -> Vec<String> {
    manifest["layers"].as_array().unwrap().iter().map(|layer| layer["digest"].as_str().unwrap().to_owned()).collect()
}

/// Unpacks the job's layout with umoci and runs it with runc.
fn run_built(job_dir: &Path, work: &Path) -> String {
    let bundle = work.join("bundle");
    umoci_unpack(&job_dir.join(".kuul/oci"), "latest", &bundle);
    let output = runc_run(&bundle, &[], &[], &[], false);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "the image failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn kuul_built_base_runs_under_runc() {
    support::require_root();
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let base = publish_base(&registry, work.path());
    let job_dir = derived_job(work.path(), &base);

    build_ok(&job_dir, &work.path().join("cache"));
    let stdout = run_built(&job_dir, work.path());

    assert!(stdout.contains("derived on base\n"), "stdout:\n{stdout}");
    assert!(stdout.contains("65532\n"), "stdout:\n{stdout}");
}

#[test]
fn kuul_built_base_layers_kept() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let base = publish_base(&registry, work.path());
    let job_dir = derived_job(work.path(), &base);
    let base_manifest: Value =
        serde_json::from_slice(&get_manifest(&registry.host_port(), "e2e/hello", "latest", OCI_MANIFEST)).unwrap();
    let base_digest = hello_digest(&registry);

    build_ok(&job_dir, &work.path().join("cache"));
    let manifest = built_manifest(&job_dir);

    let base_layers = layer_digests(&base_manifest);
    let layers = layer_digests(&manifest);
    assert_eq!(layers[..base_layers.len()], base_layers[..]);
    assert!(layers.len() > base_layers.len(), "no layer added on top: {layers:?}");
    assert_eq!(manifest["annotations"]["org.opencontainers.image.base.name"], base.as_str());
    assert_eq!(manifest["annotations"]["org.opencontainers.image.base.digest"], base_digest.as_str());
}

#[test]
fn docker_v2s2_base_converted_and_runs() {
    support::require_root();
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let base = publish_base(&registry, work.path());
    let v2s2 = format!("{}/e2e/hello-v2s2:1", registry.host_port());
    run_checked(
        "skopeo copy --format v2s2",
        std::process::Command::new("skopeo").args([
            "copy",
            "--format",
            "v2s2",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &format!("docker://{base}"),
            &format!("docker://{v2s2}"),
        ]),
    );
    let docker_manifest: Value = serde_json::from_slice(&get_manifest(
        &registry.host_port(),
        "e2e/hello-v2s2",
        "1",
        "application/vnd.docker.distribution.manifest.v2+json",
    ))
    .unwrap();
    let job_dir = derived_job(work.path(), &v2s2);

    build_ok(&job_dir, &work.path().join("cache"));
    let manifest = built_manifest(&job_dir);

    assert_eq!(docker_manifest["mediaType"], "application/vnd.docker.distribution.manifest.v2+json");
    assert_eq!(manifest["mediaType"], OCI_MANIFEST);
    assert_eq!(manifest["config"]["mediaType"], "application/vnd.oci.image.config.v1+json");
    for layer in manifest["layers"].as_array().unwrap() {
        assert_eq!(layer["mediaType"], OCI_GZIP_LAYER, "{layer}");
    }
    let base_layers = layer_digests(&docker_manifest);
    assert_eq!(layer_digests(&manifest)[..base_layers.len()], base_layers[..]);
    let stdout = run_built(&job_dir, work.path());
    assert!(stdout.contains("derived on base\n"), "stdout:\n{stdout}");
}

/// Pushes an index to `e2e/multi:TAG` holding the hello base as the build
/// machine's platform (when `with_host` is set), a copy of it labelled
/// `linux/arm64/v8`, and a buildkit-style attestation manifest for
/// `unknown/unknown`. Returns the index digest.
fn push_index(registry: &Registry, tag: &str, with_host: bool) -> String {
    let host = registry.host_port();
    let repository = "e2e/multi";
    let manifest_bytes = get_manifest(&host, "e2e/hello", "latest", OCI_MANIFEST);
    let manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();

    // Every blob of the base is copied into the new repository.
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let config_bytes = blob(registry, config_digest);
    push_blob(&host, repository, &config_bytes);
    for digest in layer_digests(&manifest) {
        push_blob(&host, repository, &blob(registry, &digest));
    }
    let host_digest = push_manifest(&host, repository, "host", OCI_MANIFEST, &manifest_bytes);

    let mut arm_config: Value = serde_json::from_slice(&config_bytes).unwrap();
    arm_config["architecture"] = json!("arm64");
    arm_config["variant"] = json!("v8");
    let arm_config = serde_json::to_vec(&arm_config).unwrap();
    let arm_config_digest = push_blob(&host, repository, &arm_config);
    let mut arm_manifest = manifest.clone();
    arm_manifest["config"]["digest"] = json!(arm_config_digest);
    arm_manifest["config"]["size"] = json!(arm_config.len());
    let arm_manifest = serde_json::to_vec(&arm_manifest).unwrap();
    let arm_digest = push_manifest(&host, repository, "arm", OCI_MANIFEST, &arm_manifest);

    let statement = br#"{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://spdx.dev/Document"}"#;
    let statement_digest = push_blob(&host, repository, statement);
    let empty_config = b"{}";
    let empty_digest = push_blob(&host, repository, empty_config);
    let attestation = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": empty_digest, "size": 2},
        "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": statement_digest, "size": statement.len()}],
    }))
    .unwrap();
    let attestation_digest = push_manifest(&host, repository, "attestation", OCI_MANIFEST, &attestation);

    let host_architecture = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let mut entries = vec![
        json!({"mediaType": OCI_MANIFEST, "digest": attestation_digest, "size": attestation.len(),
               "platform": {"os": "unknown", "architecture": "unknown"},
               "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                               "vnd.docker.reference.digest": host_digest}}),
        json!({"mediaType": OCI_MANIFEST, "digest": arm_digest, "size": arm_manifest.len(),
               "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}),
    ];
    if with_host {
        entries.push(json!({"mediaType": OCI_MANIFEST, "digest": host_digest, "size": manifest_bytes.len(),
                            "platform": {"os": "linux", "architecture": host_architecture}}));
    }
    let index = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})).unwrap();
    push_manifest(&host, repository, tag, OCI_INDEX, &index)
}

/// Reads a blob from the registry's storage directory.
fn blob(registry: &Registry, digest: &str) -> Vec<u8> {
    let hex = digest.trim_start_matches("sha256:");
    let path = registry.storage_dir().join("docker/registry/v2/blobs/sha256").join(&hex[..2]).join(hex).join("data");
    std::fs::read(&path).unwrap_or_else(|error| panic!("read blob `{}`: {error}", path.display()))
}

#[test]
fn index_base_picks_build_platform() {
    support::require_root();
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    publish_base(&registry, work.path());
    let index_digest = push_index(&registry, "1", true);
    let hello_layers = layer_digests(
        &serde_json::from_slice(&get_manifest(&registry.host_port(), "e2e/hello", "latest", OCI_MANIFEST)).unwrap(),
    );
    let reference = format!("{}/e2e/multi:1", registry.host_port());
    let job_dir = derived_job(work.path(), &reference);

    build_ok(&job_dir, &work.path().join("cache"));
    let manifest = built_manifest(&job_dir);

    assert_eq!(layer_digests(&manifest)[..hello_layers.len()], hello_layers[..]);
    assert_eq!(manifest["annotations"]["org.opencontainers.image.base.digest"], index_digest.as_str());
    assert_eq!(read_lock(&job_dir)["base"]["digest"].as_str(), Some(index_digest.as_str()));
    let stdout = run_built(&job_dir, work.path());
    assert!(stdout.contains("derived on base\n"), "stdout:\n{stdout}");
}

#[test]
fn index_base_builds_two_platforms() {
    support::require_root();
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    publish_base(&registry, work.path());
    let index_digest = push_index(&registry, "1", true);
    let host = registry.host_port();
    let job_dir = derived_job(work.path(), &format!("{host}/e2e/multi:1"));
    let host_platform = format!("linux/{}", kuul::build::host_architecture());
    let other_platform = if host_platform == "linux/arm64" { "linux/amd64" } else { "linux/arm64" };

    let output = support::kuul()
        .arg("publish")
        .arg(&job_dir)
        .args(["--registry", &format!("{host}/e2e"), "--platform", &format!("{host_platform},{other_platform}")])
        .env("KUUL_CACHE_DIR", work.path().join("cache"))
        .output()
        .expect("start kuul publish");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "kuul publish failed\n{}", String::from_utf8_lossy(&output.stderr));

    let index: Value = serde_json::from_slice(&get_manifest(&host, "e2e/derived", "latest", OCI_INDEX)).unwrap();
    let architectures: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(architectures.len(), 2, "index: {index:#}");
    assert_eq!(format!("linux/{}", architectures[1]), other_platform, "index: {index:#}");
    assert_eq!(read_lock(&job_dir)["base"]["digest"].as_str(), Some(index_digest.as_str()));
    let image = support::container_image(&support::parse_yaml(&stdout));
    std::fs::create_dir(work.path().join("pulled")).unwrap();
    let bundle = support::pull_and_unpack(&image, &work.path().join("pulled"));
    let run = runc_run(&bundle, &[], &[], &[], false);
    let run_stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "the image failed\n{run_stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    assert!(run_stdout.contains("derived on base\n"), "stdout:\n{run_stdout}");
}

#[test]
fn two_platforms_share_one_base_pin() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    publish_base(&registry, work.path());
    let index_digest = push_index(&registry, "1", true);
    let host = registry.host_port();
    let base = format!("{host}/e2e/multi:1");
    let job_dir = derived_job(work.path(), &base);
    let host_platform = format!("linux/{}", kuul::build::host_architecture());
    let other_platform = if host_platform == "linux/arm64" { "linux/amd64" } else { "linux/arm64" };
    let platforms = format!("{host_platform},{other_platform}");
    let cache = work.path().join("cache");
    let build_two = |locked: bool| {
        let mut command = support::kuul();
        command.arg("build").arg(&job_dir).args(["--platform", &platforms]).env("KUUL_CACHE_DIR", &cache);
        if locked {
            command.arg("--locked");
        }
        command.output().expect("start kuul build")
    };

    let first = build_two(false);
    assert!(first.status.success(), "kuul build failed:\n{}", String::from_utf8_lossy(&first.stderr));
    let lock = read_lock(&job_dir);
    let locked = build_two(true);

    assert_eq!(lock["base"]["reference"].as_str(), Some(base.as_str()), "{lock}");
    assert_eq!(lock["base"]["digest"].as_str(), Some(index_digest.as_str()), "{lock}");
    assert!(locked.status.success(), "kuul build --locked failed:\n{}", String::from_utf8_lossy(&locked.stderr));
    let layout = job_dir.join(".kuul/oci");
    let index = built_manifest(&job_dir);
    for entry in index["manifests"].as_array().expect("the layout's tag names an index") {
        let manifest: Value = serde_json::from_slice(&layout_blob(&layout, entry["digest"].as_str().unwrap())).unwrap();
        let base_digest = &manifest["annotations"]["org.opencontainers.image.base.digest"];
        assert_eq!(base_digest, index_digest.as_str(), "manifest: {manifest:#}");
    }
}

fn layout_blob(layout: &Path, digest: &str) -> Vec<u8> {
    std::fs::read(layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))).expect("read a layout blob")
}

#[test]
fn index_without_build_platform_fails() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    publish_base(&registry, work.path());
    push_index(&registry, "arm-only", false);
    let job_dir = derived_job(work.path(), &format!("{}/e2e/multi:arm-only", registry.host_port()));

    let output = build(&job_dir, &work.path().join("cache"));
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success(), "the build succeeded:\n{stderr}");
    assert!(stderr.contains("has no manifest for platform `linux/"), "stderr:\n{stderr}");
    assert!(stderr.contains("linux/arm64/v8"), "stderr:\n{stderr}");
    assert!(!stderr.contains("unknown/unknown"), "stderr:\n{stderr}");
}

#[test]
fn single_platform_base_rejects_other_platform() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let base = publish_base(&registry, work.path());
    let job_dir = derived_job(work.path(), &base);
    let host = kuul::build::host_architecture();
    let other = if host == "arm64" { "amd64" } else { "arm64" };
    let layout = work.path().join("oci");

    let output = support::kuul()
        .arg("build")
        .arg(&job_dir)
        .arg("--layout")
        .arg(&layout)
        .args(["--platform", &format!("linux/{host},linux/{other}")])
        .env("KUUL_CACHE_DIR", work.path().join("cache"))
        .output()
        .expect("start kuul build");
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success(), "the build succeeded:\n{stderr}");
    let expected = format!("single-platform image for `linux/{host}`, not `linux/{other}`");
    assert!(stderr.contains(&expected), "stderr:\n{stderr}");
    assert!(!layout.exists(), "the failed build left its layout behind");
}

/// Builds a job on `base` (a path below the registry, such as
/// `e2e/hello:13`), which must fail, and returns the full reference and
/// kuul's stderr.
fn build_on_missing_base(registry: &Registry, work: &Path, base: &str) -> (String, String) {
    let missing = format!("{}/{base}", registry.host_port());
    let job_dir = derived_job(work, &missing);

    let output = build(&job_dir, &work.join("cache"));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "the build succeeded:\n{stderr}");
    (missing, stderr)
}

#[test]
fn missing_base_tag_named() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    publish_base(&registry, work.path());

    let (missing, stderr) = build_on_missing_base(&registry, work.path(), "e2e/hello:13");

    assert!(stderr.contains(&format!("base image `{missing}` not found")), "stderr:\n{stderr}");
    assert!(stderr.contains("hint: check the repository and the tag in `image.base`"), "stderr:\n{stderr}");
}

#[test]
fn missing_base_repository_named() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();

    let (missing, stderr) = build_on_missing_base(&registry, work.path(), "e2e/nothing:1");

    assert!(stderr.contains(&format!("base image `{missing}` not found")), "stderr:\n{stderr}");
}

#[test]
fn base_by_digest_pins_manifest() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let base = publish_base(&registry, work.path());
    let digest = hello_digest(&registry);
    let job_dir = derived_job(work.path(), &format!("{base}@{digest}"));

    build_ok(&job_dir, &work.path().join("cache"));
    let manifest = built_manifest(&job_dir);

    assert_eq!(manifest["annotations"]["org.opencontainers.image.base.digest"], digest.as_str());
}

#[test]
fn publish_mounts_base_layers() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let base = publish_base(&registry, work.path());
    let base_layers = layer_digests(
        &serde_json::from_slice(&get_manifest(&registry.host_port(), "e2e/hello", "latest", OCI_MANIFEST)).unwrap(),
    );
    let job_dir = derived_job(work.path(), &base);

    let output = support::kuul()
        .arg("publish")
        .arg(&job_dir)
        .args(["--registry", &format!("{}/e2e", registry.host_port()), "-o", "json"])
        .env("KUUL_CACHE_DIR", work.path().join("cache"))
        .output()
        .expect("start kuul publish");
    let summary = support::parse_json_stdout("kuul publish", &output);

    assert_eq!(summary["blobs_mounted"], base_layers.len(), "{summary}");
    let pushed: Value =
        serde_json::from_slice(&get_manifest(&registry.host_port(), "e2e/derived", "latest", OCI_MANIFEST)).unwrap();
    assert_eq!(layer_digests(&pushed)[..base_layers.len()], base_layers[..]);
}

/// Moves `e2e/hello:latest` to a copy of its manifest with an extra
/// annotation, which has the same layers and a new digest. Returns the new
/// digest.
fn move_hello_tag(registry: &Registry) -> String {
    let host = registry.host_port();
    let mut manifest: Value =
        serde_json::from_slice(&get_manifest(&host, "e2e/hello", "latest", OCI_MANIFEST)).unwrap();
    manifest["annotations"]["org.example.rebuilt"] = json!("1");
    let bytes = serde_json::to_vec(&manifest).unwrap();
    push_manifest(&host, "e2e/hello", "latest", OCI_MANIFEST, &bytes)
}

/// Reads `kuul.lock` of the job as TOML.
fn read_lock(job_dir: &Path) -> toml::Table {
    let text = std::fs::read_to_string(job_dir.join("kuul.lock")).expect("read kuul.lock");
    text.parse().unwrap_or_else(|error| panic!("kuul.lock is not TOML: {error}\n{text}"))
}

fn locked_build(job_dir: &Path, cache: &Path) -> std::process::Output {
    support::kuul()
        .arg("build")
        .arg("--locked")
        .arg(job_dir)
        .env("KUUL_CACHE_DIR", cache)
        .output()
        .expect("start kuul build")
}

#[test]
fn build_writes_base_pin() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let base = publish_base(&registry, work.path());
    let job_dir = derived_job(work.path(), &base);

    build_ok(&job_dir, &work.path().join("cache"));
    let lock = read_lock(&job_dir);

    assert_eq!(lock["base"]["reference"].as_str(), Some(base.as_str()), "{lock}");
    assert_eq!(lock["base"]["digest"].as_str(), Some(hello_digest(&registry).as_str()), "{lock}");
    assert!(lock.get("request").is_none(), "{lock}");
}

#[test]
fn build_uses_pinned_base_digest() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let base = publish_base(&registry, work.path());
    let pinned = hello_digest(&registry);
    let job_dir = derived_job(work.path(), &base);
    build_ok(&job_dir, &work.path().join("cache"));

    let moved = move_hello_tag(&registry);
    build_ok(&job_dir, &work.path().join("cache"));
    let manifest = built_manifest(&job_dir);

    assert_ne!(moved, pinned);
    assert_eq!(manifest["annotations"]["org.opencontainers.image.base.digest"], pinned.as_str());
    assert_eq!(manifest["annotations"]["org.opencontainers.image.base.name"], base.as_str());
    assert_eq!(read_lock(&job_dir)["base"]["digest"].as_str(), Some(pinned.as_str()));
}

#[test]
fn locked_build_rejects_moved_tag() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let base = publish_base(&registry, work.path());
    let pinned = hello_digest(&registry);
    let job_dir = derived_job(work.path(), &base);
    build_ok(&job_dir, &work.path().join("cache"));
    let lock_before = std::fs::read(job_dir.join("kuul.lock")).unwrap();

    let moved = move_hello_tag(&registry);
    let output = locked_build(&job_dir, &work.path().join("cache"));
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success(), "the build succeeded:\n{stderr}");
    assert!(stderr.contains(&format!("base image tag `{base}` now points to `{moved}`")), "stderr:\n{stderr}");
    assert!(stderr.contains(&format!("pins `{pinned}`")), "stderr:\n{stderr}");
    assert!(stderr.contains(&format!("hint: run `kuul lock {}`", job_dir.display())), "stderr:\n{stderr}");
    assert_eq!(std::fs::read(job_dir.join("kuul.lock")).unwrap(), lock_before);
}

#[test]
fn locked_build_accepts_unmoved_tag() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let base = publish_base(&registry, work.path());
    let job_dir = derived_job(work.path(), &base);
    build_ok(&job_dir, &work.path().join("cache"));

    let output = locked_build(&job_dir, &work.path().join("cache"));

    assert!(output.status.success(), "kuul build --locked failed:\n{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn locked_build_without_lock_fails() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let base = publish_base(&registry, work.path());
    let job_dir = derived_job(work.path(), &base);

    let output = locked_build(&job_dir, &work.path().join("cache"));
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success(), "the build succeeded:\n{stderr}");
    assert!(stderr.contains("kuul.lock` is missing"), "stderr:\n{stderr}");
}

#[test]
fn kuul_lock_refreshes_base_pin() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let base = publish_base(&registry, work.path());
    let job_dir = derived_job(work.path(), &base);
    build_ok(&job_dir, &work.path().join("cache"));
    let moved = move_hello_tag(&registry);

    let output = support::kuul().arg("lock").arg(&job_dir).output().expect("start kuul lock");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "kuul lock failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let relocked = locked_build(&job_dir, &work.path().join("cache"));
    let manifest = built_manifest(&job_dir);

    assert_eq!(stdout, format!("base {base} {moved}\n"));
    assert_eq!(read_lock(&job_dir)["base"]["digest"].as_str(), Some(moved.as_str()));
    assert!(relocked.status.success(), "kuul build --locked failed:\n{}", String::from_utf8_lossy(&relocked.stderr));
    assert_eq!(manifest["annotations"]["org.opencontainers.image.base.digest"], moved.as_str());
}

#[test]
fn base_by_digest_writes_no_lock() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let base = publish_base(&registry, work.path());
    let job_dir = derived_job(work.path(), &format!("{base}@{}", hello_digest(&registry)));

    build_ok(&job_dir, &work.path().join("cache"));

    assert!(!job_dir.join("kuul.lock").exists());
}

/// Builds the derived job on a base whose registry has the non-loopback
/// name `kuul-registry.test`, reached through a relay, with credentials
/// for that name in the Docker config. Returns the build output and what
/// kuul sent.
fn build_through_relay(insecure: &[&str]) -> (std::process::Output, String) {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    publish_base(&registry, work.path());
    let relay = support::relay::Relay::start(&registry.host_port());
    let port = registry.host_port().rsplit(':').next().unwrap().to_owned();
    let remote = format!("kuul-registry.test:{port}");
    let job_dir = derived_job(work.path(), &format!("{remote}/e2e/hello:latest"));
    let docker_config = work.path().join("docker");
    std::fs::create_dir_all(&docker_config).unwrap();
    let auths = json!({"auths": {remote.clone(): {"username": "kuul", "password": "relay-secret"}}});
    std::fs::write(docker_config.join("config.json"), auths.to_string()).unwrap();

    let mut command = support::kuul();
    command.arg("build").arg(&job_dir);
    for entry in insecure {
        command.args(["--insecure-registry", entry]);
    }
    let output = command
        .env("KUUL_CACHE_DIR", work.path().join("cache"))
        .env("DOCKER_CONFIG", &docker_config)
        .env("HTTP_PROXY", relay.url())
        .env("HTTPS_PROXY", relay.url())
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .output()
        .expect("start kuul build");
    (output, relay.sent())
}

#[test]
fn insecure_registry_reaches_base_pull() {
    let (output, sent) = build_through_relay(&["kuul-registry.test"]);
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(output.status.success(), "kuul build failed:\n{stderr}");
    assert!(sent.contains("GET http://kuul-registry.test:"), "sent:\n{sent}");
    assert!(stderr.contains("credentials for `kuul-registry.test:"), "stderr:\n{stderr}");
    assert!(!sent.to_ascii_lowercase().contains("authorization:"), "sent:\n{sent}");
    assert!(!stderr.contains("relay-secret"), "stderr:\n{stderr}");
}

#[test]
fn remote_base_registry_needs_https() {
    let (output, sent) = build_through_relay(&[]);
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success(), "the build succeeded:\n{stderr}");
    assert!(sent.starts_with("CONNECT kuul-registry.test:"), "sent:\n{sent}");
    assert!(!sent.contains("GET http://"), "sent:\n{sent}");
}

/// Pushes `e2e/bare:1`, a base with one uncompressed layer that contains the
/// host's dynamically linked `/bin/true` as `/usr/bin/true` and nothing
/// else, so its loader is missing. Returns the reference.
fn push_base_without_loader(registry: &Registry) -> String {
    let host = registry.host_port();
    let program = std::fs::read("/bin/true").expect("read /bin/true");
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o755);
    header.set_size(program.len() as u64);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_cksum();
    builder.append_data(&mut header, "usr/bin/true", program.as_slice()).unwrap();
    let layer = builder.into_inner().unwrap();
    let layer_digest = push_blob(&host, "e2e/bare", &layer);

    let host_architecture = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let config = serde_json::to_vec(&json!({
        "os": "linux",
        "architecture": host_architecture,
        "config": {"Env": ["PATH=/usr/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    }))
    .unwrap();
    let config_digest = push_blob(&host, "e2e/bare", &config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
    }))
    .unwrap();
    push_manifest(&host, "e2e/bare", "1", OCI_MANIFEST, &manifest);
    format!("{host}/e2e/bare:1")
}

/// Writes a job whose command is `command`, taken from the base, with no
/// files of its own.
fn base_command_job(work: &Path, base: &str, command: &str) -> PathBuf {
    let dir = work.join("base-command");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("kuul.toml"),
        format!(
            "[job]\nname = \"base-command\"\nschedule = \"*/30 * * * *\"\ncommand = {command}\n\n\
             [image]\nbase = \"{base}\"\n"
        ),
    )
    .unwrap();
    dir
}

#[test]
fn base_program_without_loader_fails() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let base = push_base_without_loader(&registry);
    let program = std::fs::read("/bin/true").unwrap();
    let loader =
        goblin::elf::Elf::parse(&program).unwrap().interpreter.expect("/bin/true is dynamically linked").to_owned();
    let job_dir = base_command_job(work.path(), &base, "[\"true\"]");

    let output = build(&job_dir, &work.path().join("cache"));
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success(), "the build succeeded:\n{stderr}");
    assert!(
        stderr.contains(&format!("interpreter `{loader}` of command `/usr/bin/true` is not in the image")),
        "stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("hint: the program comes from the base image, which lacks its loader"),
        "stderr:\n{stderr}"
    );
}

#[test]
fn base_program_with_loader_builds() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let base = publish_base(&registry, work.path());
    let job_dir = base_command_job(work.path(), &base, "[\"busybox\", \"true\"]");

    build_ok(&job_dir, &work.path().join("cache"));
}

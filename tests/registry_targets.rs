//! `kuul publish` with several registries and tags: one build, the same
//! manifest digest under every reference.

mod support;

use sha2::{Digest, Sha256};
use support::registry_client::get_manifest;
use support::{Registry, copy_example};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn manifest_digest(registry: &Registry, tag: &str) -> String {
    let manifest = get_manifest(&registry.host_port(), "e2e/hello", tag, OCI_MANIFEST);
    format!("sha256:{}", hex::encode(Sha256::digest(manifest)))
}

#[test]
fn publish_pushes_every_registry_and_tag() {
    let first = Registry::start();
    let second = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let job_dir = copy_example("hello", work.path());

    let output = support::kuul()
        .arg("publish")
        .arg(&job_dir)
        .args(["--registry", &format!("{}/e2e", first.host_port())])
        .args(["--extra-registry", &format!("{}/e2e", second.host_port())])
        .args(["--extra-tag", "v1", "-o", "json"])
        .output()
        .expect("start kuul publish");
    let summary = support::parse_json_stdout("kuul publish", &output);
    let digest = summary["digest"].as_str().unwrap().to_owned();

    assert_eq!(manifest_digest(&first, "latest"), digest);
    assert_eq!(manifest_digest(&first, "v1"), digest);
    assert_eq!(manifest_digest(&second, "latest"), digest);
    assert_eq!(manifest_digest(&second, "v1"), digest);
    assert_eq!(summary["also_pushed"].as_array().unwrap().len(), 3, "{summary}");
    assert!(summary["image"].as_str().unwrap().starts_with(&first.host_port()), "{summary}");
    // Only the first push to the second registry uploads the blobs.
    let uploads: Vec<u64> = summary["extra_uploads"]
        .as_array()
        .expect("upload counts of the extra pushes")
        .iter()
        .map(|upload| upload["bytes_uploaded"].as_u64().unwrap())
        .collect();
    assert_eq!(uploads.iter().filter(|bytes| **bytes > 0).count(), 1, "{summary}");
    assert_eq!(uploads.iter().sum::<u64>(), summary["bytes_uploaded"].as_u64().unwrap(), "{summary}");
    // A second tag in a repository that has the image only tags it.
    let extra_tag = &summary["extra_uploads"][0];
    assert!(extra_tag["image"].as_str().unwrap().starts_with(&format!("{}/e2e/hello:v1@", first.host_port())));
    assert_eq!(extra_tag["blobs_skipped"], 0, "{summary}");
}

#[test]
fn publish_rejects_invalid_extra_tag() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let job_dir = copy_example("hello", work.path());

    let output = support::kuul()
        .arg("publish")
        .arg(&job_dir)
        .args(["--registry", &format!("{}/e2e", registry.host_port())])
        .arg("--extra-tag=bad tag")
        .output()
        .expect("start kuul publish");
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success(), "publish succeeded:\n{stderr}");
    assert!(stderr.contains("invalid tag `bad tag`"), "stderr:\n{stderr}");
    assert!(!stderr.contains("building"), "the build ran before the check:\n{stderr}");
}

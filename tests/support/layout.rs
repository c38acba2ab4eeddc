//! Small OCI image layouts written by hand, for tests of the registry
//! client that must not depend on kuul's own image builder.

use std::io::Write;
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use kuul::image::{BuiltImage, BuiltLayer, Descriptor};
use sha2::{Digest, Sha256};

/// Writes `content` as a blob of the layout and returns its descriptor.
pub fn write_blob(layout: &Path, media_type: &str, content: &[u8]) -> Descriptor {
    let hex = hex::encode(Sha256::digest(content));
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(blobs.join(&hex), content).unwrap();

    Descriptor { media_type: media_type.to_string(), digest: format!("sha256:{hex}"), size: content.len() as u64 }
}

/// Builds a gzip tar layer containing `files` (path, content) with fixed
/// metadata, and returns it with its diff ID.
fn gzip_layer(files: &[(&str, &[u8])]) -> (Vec<u8>, String) {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o755);
        header.set_mtime(0);
        header.set_cksum();
        builder.append_data(&mut header, path, *content).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let diff_id = format!("sha256:{}", hex::encode(Sha256::digest(&tar)));

    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(&tar).unwrap();
    (encoder.finish().unwrap(), diff_id)
}

/// Writes an OCI image layout with two gzip layers, a config and a
/// manifest, and returns the description a build would return.
///
/// `marker` goes into the job file so that images from different calls have
/// different digests.
pub fn write_layout(layout: &Path, marker: &str) -> BuiltImage {
    std::fs::create_dir_all(layout).unwrap();
    std::fs::write(layout.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();

    let script = format!("#!/bin/sh\necho {marker}\n");
    let layer_specs: [&[(&str, &[u8])]; 2] = [
        &[("etc/passwd", b"nonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n")],
        &[("job/run.sh", script.as_bytes())],
    ];
    let layers: Vec<BuiltLayer> = layer_specs
        .iter()
        .zip(["system files", "job files"])
        .map(|(files, description)| {
            let (gzip, diff_id) = gzip_layer(files);
            BuiltLayer {
                descriptor: write_blob(layout, "application/vnd.oci.image.layer.v1.tar+gzip", &gzip),
                diff_id,
                description: description.to_string(),
                entries: files.len(),
            }
        })
        .collect();

    let diff_ids: Vec<&str> = layers.iter().map(|layer| layer.diff_id.as_str()).collect();
    let config_json = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Entrypoint": ["/job/run.sh"], "User": "65532:65532" },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    });
    let config = write_blob(layout, "application/vnd.oci.image.config.v1+json", config_json.to_string().as_bytes());

    let layer_json: Vec<serde_json::Value> = layers.iter().map(|layer| descriptor_json(&layer.descriptor)).collect();
    let manifest_json = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor_json(&config),
        "layers": layer_json,
    });
    let manifest =
        write_blob(layout, "application/vnd.oci.image.manifest.v1+json", manifest_json.to_string().as_bytes());

    let index = serde_json::json!({ "schemaVersion": 2, "manifests": [descriptor_json(&manifest)] });
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();

    BuiltImage { manifest, config, layers }
}

fn descriptor_json(descriptor: &Descriptor) -> serde_json::Value {
    serde_json::json!({
        "mediaType": descriptor.media_type,
        "digest": descriptor.digest,
        "size": descriptor.size,
    })
}

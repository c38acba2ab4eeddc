//! `docker load` archives.
//!
//! The tar contains both a Docker `manifest.json` and an OCI `oci-layout`
//! plus `index.json` over one shared `blobs/sha256/` directory, the layout
//! that `docker save` writes since Docker 25. So `docker load`, `podman load`
//! and any reader of `oci-archive:` can read the same file.
//!
//! NOTE: the tests read these archives with skopeo (`docker-archive:` and
//! `oci-archive:`) and `podman load`. `docker load` has not been run on them,
//! because the test machines have no Docker daemon.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use serde_json::json;
use tar::{EntryType, Header};

use super::json::to_canonical_json;
use super::layout::{Layout, REF_NAME_ANNOTATION, create_temp_file};
use super::{BuiltImage, ImageError, MANIFEST_MEDIA_TYPE};

/// Annotation with the full image name, which containerd and Docker read on
/// import.
const IMAGE_NAME_ANNOTATION: &str = "io.containerd.image.name";

/// Writes `image` from `layout` as a Docker and OCI archive at `out`, naming
/// it `repo_tag` (such as `registry.example/backup:1.2`).
///
/// Blobs stream from the layout. Every tar entry has mtime 0, owner 0:0 and
/// mode 0644 (0755 for directories), in path order, so the same image and
/// name give the same bytes. The file appears at `out` only when complete.
pub fn write_docker_archive(layout: &Layout, image: &BuiltImage, repo_tag: &str, out: &Path) -> Result<(), ImageError> {
    let directory = match out.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let (temp_path, file) = create_temp_file(directory)?;

    let result = write_archive(layout, image, repo_tag, file, out).and_then(|()| {
        fs::rename(&temp_path, out).map_err(|source| ImageError::Write { path: out.to_path_buf(), source })
    });
    if result.is_err() {
        let _ = fs::remove_file(&temp_path);
    }
    result
}

fn write_archive(
    layout: &Layout,
    image: &BuiltImage,
    repo_tag: &str,
    file: File,
    out: &Path,
) -> Result<(), ImageError> {
    let write_error = |source| ImageError::Write { path: out.to_path_buf(), source };
    let files =
        metadata_files(image, repo_tag).map_err(|source| ImageError::Json { path: out.to_path_buf(), source })?;

    // Sorted by name: `blobs/...` comes before `index.json`, `manifest.json`
    // and `oci-layout`.
    let mut blobs: Vec<&str> = std::iter::once(image.manifest.digest.as_str())
        .chain(std::iter::once(image.config.digest.as_str()))
        .chain(image.layers.iter().map(|layer| layer.descriptor.digest.as_str()))
        .collect();
    blobs.sort_unstable();
    blobs.dedup();

    let mut builder = tar::Builder::new(BufWriter::new(file));
    append_directory(&mut builder, "blobs/").map_err(write_error)?;
    append_directory(&mut builder, "blobs/sha256/").map_err(write_error)?;
    for digest in blobs {
        append_blob(&mut builder, layout, digest, out)?;
    }
    for (name, content) in &files {
        append_file(&mut builder, name, content.len() as u64, content.as_slice()).map_err(write_error)?;
    }

    let buffered = builder.into_inner().map_err(write_error)?;
    let file = buffered.into_inner().map_err(|error| write_error(error.into_error()))?;
    file.sync_all().map_err(write_error)
}

/// Returns `index.json`, `manifest.json` and `oci-layout`, keyed by name.
fn metadata_files(image: &BuiltImage, repo_tag: &str) -> serde_json::Result<BTreeMap<&'static str, Vec<u8>>> {
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": MANIFEST_MEDIA_TYPE,
            "digest": image.manifest.digest,
            "size": image.manifest.size,
            "annotations": {
                IMAGE_NAME_ANNOTATION: repo_tag,
                REF_NAME_ANNOTATION: tag_of(repo_tag),
            },
        }],
    });
    let docker_manifest = json!([{
        "Config": blob_name(&image.config.digest),
        "RepoTags": [repo_tag],
        "Layers": image.layers.iter().map(|layer| blob_name(&layer.descriptor.digest)).collect::<Vec<_>>(),
    }]);
    let oci_layout = json!({ "imageLayoutVersion": "1.0.0" });

    Ok(BTreeMap::from([
        ("index.json", to_canonical_json(&index)?),
        ("manifest.json", to_canonical_json(&docker_manifest)?),
        ("oci-layout", to_canonical_json(&oci_layout)?),
    ]))
}

/// Returns the tag of `repository:tag`, or the whole reference when it has
/// none. A `:` before the last `/` belongs to a registry port.
fn tag_of(repo_tag: &str) -> &str {
    let name_start = repo_tag.rfind('/').map_or(0, |slash| slash + 1);
    match repo_tag[name_start..].rfind(':') {
        Some(colon) => &repo_tag[name_start + colon + 1..],
        None => repo_tag,
    }
}

fn blob_name(digest: &str) -> String {
    format!("blobs/{}", digest.replacen(':', "/", 1))
}

fn append_blob<W: Write>(
    builder: &mut tar::Builder<W>,
    layout: &Layout,
    digest: &str,
    out: &Path,
) -> Result<(), ImageError> {
    let path = layout.blob_path(digest);
    let blob = layout.open_blob(digest)?;
    let size = blob.metadata().map_err(|source| ImageError::Read { path: path.clone(), source })?.len();

    // `take` stops at the size in the header even if the blob grows meanwhile.
    let mut reader = io::Read::take(blob, size);
    append_file(builder, &blob_name(digest), size, &mut reader)
        .map_err(|source| ImageError::Write { path: out.to_path_buf(), source })
}

fn append_directory<W: Write>(builder: &mut tar::Builder<W>, name: &str) -> io::Result<()> {
    let mut header = fixed_header(EntryType::Directory, 0o755, 0);
    builder.append_data(&mut header, name, io::empty())
}

fn append_file<W: Write>(builder: &mut tar::Builder<W>, name: &str, size: u64, data: impl io::Read) -> io::Result<()> {
    let mut header = fixed_header(EntryType::Regular, 0o644, size);
    builder.append_data(&mut header, name, data)
}

fn fixed_header(entry_type: EntryType, mode: u32, size: u64) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(entry_type);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_of_splits_repository_and_tag() {
        assert_eq!(tag_of("backup:1.2"), "1.2");
        assert_eq!(tag_of("localhost:5000/ops/backup:latest"), "latest");
        assert_eq!(tag_of("localhost:5000/ops/backup"), "localhost:5000/ops/backup");
    }
}

//! Reading a base image's layers into an [`ImageTree`], so that the checks
//! on kuul's own layers see the base's files.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use super::BaseError;
use super::manifest::{OCI_LAYER_TAR, OCI_LAYER_ZSTD};
use crate::image::tree::ImageTree;
use crate::image::{LAYER_MEDIA_TYPE, elf};
use crate::sources::{Content, Entry, EntryKind};

/// Prefix of a whiteout file, which deletes its namesake in lower layers.
const WHITEOUT_PREFIX: &str = ".wh.";

/// Name of an opaque whiteout, which hides every lower-layer entry of its
/// directory.
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

/// Bytes kept of an executable file that is not ELF: enough for a `#!`
/// line.
const HEAD_BYTES: u64 = 512;

/// Maximum bytes kept of an ELF executable to reach its interpreter path.
/// Linkers put the path within the first few KiB.
const MAX_ELF_PREFIX: u64 = 64 * 1024;

/// Files whose full content is kept, because kuul merges its users into them.
pub const MERGED_FILES: [&str; 2] = ["/etc/passwd", "/etc/group"];

/// The changes of one layer. Its whiteouts apply to the layers below, then
/// its entries are added.
#[derive(Debug, Default)]
struct LayerChanges {
    removed: Vec<String>,
    opaque: Vec<String>,
    entries: Vec<Entry>,
}

/// Applies the layer blob at `path` to `tree` and returns the number of
/// entries it holds.
///
/// Regular files are recorded with their real size. Their content is kept
/// only for [`MERGED_FILES`] and as a prefix of executables, long enough
/// for a `#!` line or the ELF interpreter path, so memory stays small. Device files and FIFOs are skipped, because
/// no check reads them.
pub fn apply_layer(tree: &mut ImageTree, path: &Path, media_type: &str, digest: &str) -> Result<usize, BaseError> {
    let file = File::open(path).map_err(|source| BaseError::Io { path: path.to_path_buf(), source })?;
    let reader: Box<dyn Read> = match media_type {
        LAYER_MEDIA_TYPE => Box::new(flate2::read::GzDecoder::new(BufReader::new(file))),
        OCI_LAYER_ZSTD => {
            Box::new(zstd::Decoder::new(file).map_err(|source| BaseError::Io { path: path.to_path_buf(), source })?)
        }
        OCI_LAYER_TAR => Box::new(BufReader::new(file)),
        other => return Err(BaseError::UnsupportedMediaType { media_type: other.to_owned(), what: "layer" }),
    };

    let changes = read_changes(reader, digest)?;
    let count = changes.entries.len();

    for directory in &changes.opaque {
        tree.clear_directory(directory);
    }
    for removed in &changes.removed {
        tree.remove(removed);
    }
    for entry in changes.entries {
        tree.insert_base_entry(entry);
    }
    Ok(count)
}

fn read_changes(reader: impl Read, digest: &str) -> Result<LayerChanges, BaseError> {
    let invalid = |reason: String| BaseError::InvalidLayer { digest: digest.to_owned(), reason };
    let mut archive = tar::Archive::new(reader);
    let mut changes = LayerChanges::default();

    for item in archive.entries().map_err(|error| invalid(error.to_string()))? {
        let mut item = item.map_err(|error| invalid(error.to_string()))?;
        let raw_path = item.path().map_err(|error| invalid(error.to_string()))?.to_string_lossy().into_owned();
        let Some(path) = normalize(&raw_path) else {
            return Err(invalid(format!("entry `{raw_path}` has a `..` component or an empty name")));
        };
        if path == "/" {
            continue;
        }

        let (parent, name) = path.rsplit_once('/').unwrap_or(("", &path));
        let parent = if parent.is_empty() { "/" } else { parent };
        if name == OPAQUE_WHITEOUT {
            changes.opaque.push(parent.to_owned());
            continue;
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            changes.removed.push(format!("{}/{hidden}", parent.trim_end_matches('/')));
            continue;
        }

        let header = item.header();
        let mode = header.mode().map_err(|error| invalid(error.to_string()))? & 0o7777;
        let uid = header.uid().map_err(|error| invalid(error.to_string()))? as u32;
        let gid = header.gid().map_err(|error| invalid(error.to_string()))? as u32;
        let entry_type = header.entry_type();

        let kind = if entry_type.is_dir() {
            EntryKind::Directory
        } else if entry_type.is_symlink() {
            let target = item.link_name().map_err(|error| invalid(error.to_string()))?.unwrap_or_default();
            EntryKind::Symlink { target: target.to_string_lossy().into_owned() }
        } else if entry_type.is_hard_link() {
            let target = item.link_name().map_err(|error| invalid(error.to_string()))?.unwrap_or_default();
            let target = normalize(&target.to_string_lossy())
                .ok_or_else(|| invalid(format!("hard link `{raw_path}` has an invalid target")))?;
            EntryKind::Hardlink { target }
        } else if entry_type.is_file() || entry_type == tar::EntryType::Continuous {
            let size = item.size();
            let mut bytes = Vec::new();
            if MERGED_FILES.contains(&path.as_str()) {
                item.read_to_end(&mut bytes).map_err(|error| invalid(error.to_string()))?;
            } else if mode & 0o111 != 0 {
                bytes = read_executable_prefix(&mut item, size).map_err(|error| invalid(error.to_string()))?;
            }
            EntryKind::File { content: Content::Inline(bytes), size }
        } else {
            continue;
        };

        changes.entries.push(Entry { path, kind, mode, uid, gid });
    }
    Ok(changes)
}

/// Reads the start of an executable of `size` bytes: 512 bytes, and for an
/// ELF file up to the length that [`elf::interpreter_prefix_len`] returns.
fn read_executable_prefix(reader: &mut impl Read, size: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader.take(HEAD_BYTES.min(size)).read_to_end(&mut bytes)?;

    while let Some(needed) = elf::interpreter_prefix_len(&bytes) {
        let needed = needed.min(size);
        let have = bytes.len() as u64;
        // NOTE: an interpreter path beyond `MAX_ELF_PREFIX` is not read, so
        // the build does not check that program's loader.
        if needed <= have || needed > MAX_ELF_PREFIX {
            break;
        }
        reader.take(needed - have).read_to_end(&mut bytes)?;
        if bytes.len() as u64 == have {
            break;
        }
    }
    Ok(bytes)
}

/// Turns a tar path (`./usr/bin`, `usr/bin/`, `/usr/bin`) into the
/// absolute form kuul uses (`/usr/bin`). Returns `None` for a path with a
/// `..` component.
fn normalize(raw: &str) -> Option<String> {
    let mut components = Vec::new();
    for component in raw.split('/') {
        match component {
            "" | "." => {}
            ".." => return None,
            other => components.push(other),
        }
    }
    Some(format!("/{}", components.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes an uncompressed tar layer with the given entries: directories
    /// end with `/`, everything else is an empty 0644 file.
    fn layer(dir: &Path, name: &str, paths: &[&str]) -> std::path::PathBuf {
        let path = dir.join(name);
        let mut builder = tar::Builder::new(File::create(&path).unwrap());
        for item in paths {
            let mut header = tar::Header::new_gnu();
            if item.ends_with('/') {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
            } else {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
            }
            header.set_size(0);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            header.set_cksum();
            builder.append_data(&mut header, item, std::io::empty()).unwrap();
        }
        builder.finish().unwrap();
        path
    }

    fn tree_of(layers: &[&[&str]]) -> ImageTree {
        let dir = tempfile::tempdir().unwrap();
        let mut tree = ImageTree::new();
        for (index, paths) in layers.iter().enumerate() {
            let path = layer(dir.path(), &format!("layer{index}"), paths);
            apply_layer(&mut tree, &path, OCI_LAYER_TAR, "sha256:test").unwrap();
        }
        tree
    }

    /// Writes an uncompressed tar layer holding one 0755 file.
    fn executable_layer(dir: &Path, path: &str, content: &[u8]) -> std::path::PathBuf {
        let layer_path = dir.join("executable");
        let mut builder = tar::Builder::new(File::create(&layer_path).unwrap());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o755);
        header.set_size(content.len() as u64);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_cksum();
        builder.append_data(&mut header, path, content).unwrap();
        builder.finish().unwrap();
        layer_path
    }

    fn inline_content(tree: &ImageTree, path: &str) -> Vec<u8> {
        match &tree.entry(path).unwrap().kind {
            EntryKind::File { content: Content::Inline(bytes), .. } => bytes.clone(),
            other => panic!("expected an inline file, found {other:?}"),
        }
    }

    #[test]
    fn elf_prefix_reaches_far_interpreter() {
        let dir = tempfile::tempdir().unwrap();
        let program = elf::tests::elf_with_interpreter("/lib/ld-musl-x86_64.so.1", 8192, 100_000);
        let layer_path = executable_layer(dir.path(), "bin/tool", &program);
        let mut tree = ImageTree::new();

        apply_layer(&mut tree, &layer_path, OCI_LAYER_TAR, "sha256:test").unwrap();
        let prefix = inline_content(&tree, "/bin/tool");

        assert_eq!(elf::interpreter(&prefix).as_deref(), Some("/lib/ld-musl-x86_64.so.1"));
        assert_eq!(prefix.len(), 8192 + "/lib/ld-musl-x86_64.so.1".len() + 1);
    }

    #[test]
    fn elf_prefix_capped() {
        let dir = tempfile::tempdir().unwrap();
        let program = elf::tests::elf_with_interpreter("/lib/ld.so", 100_000, 10);
        let layer_path = executable_layer(dir.path(), "bin/tool", &program);
        let mut tree = ImageTree::new();

        apply_layer(&mut tree, &layer_path, OCI_LAYER_TAR, "sha256:test").unwrap();
        let prefix = inline_content(&tree, "/bin/tool");

        assert_eq!(prefix.len() as u64, HEAD_BYTES);
        assert_eq!(elf::interpreter(&prefix), None);
    }

    #[test]
    fn script_prefix_is_512_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let script = format!("#!/bin/sh\n{}", "echo padding\n".repeat(100));
        let layer_path = executable_layer(dir.path(), "bin/job.sh", script.as_bytes());
        let mut tree = ImageTree::new();

        apply_layer(&mut tree, &layer_path, OCI_LAYER_TAR, "sha256:test").unwrap();

        assert_eq!(inline_content(&tree, "/bin/job.sh"), script.as_bytes()[..512]);
    }

    #[test]
    fn whiteout_removes_lower_file() {
        let tree = tree_of(&[&["etc/", "etc/motd", "etc/hosts"], &["etc/.wh.motd"]]);
        assert!(tree.entry("/etc/motd").is_none());
        assert!(tree.entry("/etc/hosts").is_some());
    }

    #[test]
    fn whiteout_removes_lower_directory_tree() {
        let tree = tree_of(&[&["opt/", "opt/app/", "opt/app/run"], &[".wh.opt"]]);
        assert!(tree.entry("/opt").is_none());
        assert!(tree.entry("/opt/app/run").is_none());
    }

    #[test]
    fn opaque_whiteout_keeps_same_layer_entries() {
        let tree = tree_of(&[&["etc/", "etc/old"], &["etc/", "etc/.wh..wh..opq", "etc/new"]]);
        assert!(tree.entry("/etc/old").is_none());
        assert!(tree.entry("/etc/new").is_some());
        assert!(tree.entry("/etc").is_some());
    }

    #[test]
    fn file_replacing_directory_drops_contents() {
        let tree = tree_of(&[&["data/", "data/a"], &["data"]]);
        assert!(tree.entry("/data/a").is_none());
        assert!(matches!(tree.entry("/data").unwrap().kind, EntryKind::File { .. }));
    }

    #[test]
    fn dot_dot_path_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad");
        let mut data = Vec::new();
        {
            let mut builder = tar::Builder::new(&mut data);
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(0);
            // `set_path` refuses `..`, so the name is written into the raw header.
            header.as_gnu_mut().unwrap().name[..9].copy_from_slice(b"../escape");
            header.set_cksum();
            builder.append(&header, std::io::empty()).unwrap();
            builder.finish().unwrap();
        }
        std::fs::write(&path, data).unwrap();

        let result = apply_layer(&mut ImageTree::new(), &path, OCI_LAYER_TAR, "sha256:test");
        assert!(matches!(result, Err(BaseError::InvalidLayer { .. })), "{result:?}");
    }
}

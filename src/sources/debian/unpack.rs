//! Unpacking `.deb` files: the ar container, the control member (for the
//! dpkg status record) and the data member, whose regular files are staged
//! in the cache by content hash so that layers stream them from disk.

use std::io::{BufReader, Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::DebianError;
use super::fetch::Cache;

/// One filesystem object of a package, as stored in the cache's entry list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageEntry {
    /// Absolute, normalized path such as `/usr/bin/busybox`.
    pub path: String,
    pub kind: PackageEntryKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageEntryKind {
    Directory,
    /// A regular file staged in the cache as `files/SHA256`.
    File {
        sha256: String,
        size: u64,
    },
    Symlink {
        target: String,
    },
    /// A hard link to another path of the same package.
    Hardlink {
        target: String,
    },
}

/// A package's unpacked contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unpacked {
    /// The `control` file of the control member.
    pub control: String,
    /// The `md5sums` file, when the package has one.
    pub md5sums: Option<String>,
    /// The `postinst` script, read for `update-alternatives` calls.
    pub postinst: Option<String>,
    pub entries: Vec<PackageEntry>,
}

/// Returns the contents of the verified `.deb` with digest `sha256`,
/// unpacking it into the cache unless an earlier build did.
pub fn unpack_cached(cache: &Cache, sha256: &str, package: &str) -> Result<Unpacked, DebianError> {
    let manifest_path = cache.manifest_path(sha256);
    if let Ok(text) = std::fs::read_to_string(&manifest_path)
        && let Ok(unpacked) = serde_json::from_str(&text)
    {
        return Ok(unpacked);
    }

    let unpacked = unpack(cache, &cache.deb_path(sha256), package)?;

    // The entry list is written last and atomically, so it only exists once
    // every file it names is in the cache.
    let staging = cache.temporary_file()?;
    serde_json::to_writer(staging.as_file(), &unpacked)
        .map_err(|error| DebianError::Io { path: staging.path().to_owned(), source: std::io::Error::other(error) })?;
    staging.persist(&manifest_path).map_err(|error| DebianError::Io { path: manifest_path, source: error.error })?;
    Ok(unpacked)
}

/// Reads the `.deb` at `path`: `debian-binary`, then `control.tar.*`,
/// then `data.tar.*`, as dpkg-deb(1) orders them.
pub fn unpack(cache: &Cache, path: &Path, package: &str) -> Result<Unpacked, DebianError> {
    let invalid = |reason: String| DebianError::InvalidDeb { package: package.to_owned(), reason };
    let file = std::fs::File::open(path).map_err(|source| DebianError::Io { path: path.to_owned(), source })?;
    let mut archive = ar::Archive::new(BufReader::new(file));

    let mut control = None;
    let mut entries = None;
    while let Some(member) = archive.next_entry() {
        let member = member.map_err(|error| invalid(format!("bad ar archive: {error}")))?;
        let name = String::from_utf8_lossy(member.header().identifier()).trim_end_matches('/').to_owned();

        if let Some(compression) = name.strip_prefix("control.tar") {
            let reader = decompressor(compression, member).map_err(|reason| invalid(format!("`{name}`: {reason}")))?;
            control = Some(read_control(reader).map_err(|error| invalid(format!("`{name}`: {error}")))?);
        } else if let Some(compression) = name.strip_prefix("data.tar") {
            let reader = decompressor(compression, member).map_err(|reason| invalid(format!("`{name}`: {reason}")))?;
            entries = Some(read_data(cache, reader, package)?);
        }
    }

    let (control, md5sums, postinst) = control.ok_or_else(|| invalid("no `control.tar` member".to_owned()))?;
    let entries = entries.ok_or_else(|| invalid("no `data.tar` member".to_owned()))?;
    Ok(Unpacked { control, md5sums, postinst, entries })
}

/// Wraps a member in the decompressor that its name suffix names.
fn decompressor<'a>(suffix: &str, member: impl Read + 'a) -> Result<Box<dyn Read + 'a>, String> {
    match suffix {
        "" => Ok(Box::new(member)),
        ".gz" => Ok(Box::new(flate2::read::GzDecoder::new(member))),
        ".xz" => Ok(Box::new(lzma_rust2::XzReader::new(member, true))),
        ".zst" => zstd::Decoder::new(member)
            .map(|decoder| Box::new(decoder) as Box<dyn Read>)
            .map_err(|error| error.to_string()),
        other => Err(format!("unsupported compression `{other}`")),
    }
}

type ControlFiles = (String, Option<String>, Option<String>);

fn read_control(reader: impl Read) -> std::io::Result<ControlFiles> {
    let mut archive = tar::Archive::new(reader);
    let (mut control, mut md5sums, mut postinst) = (None, None, None);

    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().trim_start_matches("./").to_owned();
        let slot = match path.as_str() {
            "control" => &mut control,
            "md5sums" => &mut md5sums,
            "postinst" => &mut postinst,
            _ => continue,
        };
        let mut text = String::new();
        entry.read_to_string(&mut text)?;
        *slot = Some(text);
    }

    let control = control.ok_or_else(|| std::io::Error::other("no `control` file"))?;
    Ok((control, md5sums, postinst))
}

/// Reads the data member, staging regular files in the cache. Rejects
/// paths and links that leave the root, and entry types other than
/// directories, regular files, symlinks and hard links.
fn read_data(cache: &Cache, reader: impl Read, package: &str) -> Result<Vec<PackageEntry>, DebianError> {
    let invalid = |reason: String| DebianError::InvalidDeb { package: package.to_owned(), reason };
    let mut archive = tar::Archive::new(reader);
    let mut entries = Vec::new();

    for entry in archive.entries().map_err(|error| invalid(format!("bad data member: {error}")))? {
        let mut entry = entry.map_err(|error| invalid(format!("bad data member: {error}")))?;
        let raw_path = String::from_utf8(entry.path_bytes().into_owned())
            .map_err(|_| invalid("a path in the data member is not UTF-8".to_owned()))?;
        let Some(path) = normalize(&raw_path).map_err(|_| traversal(package, &raw_path))? else {
            continue;
        };

        let header = entry.header();
        let mode = header.mode().map_err(|error| invalid(format!("`{path}`: {error}")))? & 0o7777;
        let uid = header.uid().map_err(|error| invalid(format!("`{path}`: {error}")))? as u32;
        let gid = header.gid().map_err(|error| invalid(format!("`{path}`: {error}")))? as u32;
        let entry_type = header.entry_type();

        let kind = if entry_type.is_dir() {
            PackageEntryKind::Directory
        } else if entry_type.is_symlink() {
            let target = link_target(&entry).ok_or_else(|| invalid(format!("symlink `{path}` has no target")))?;
            if escapes_root(&path, &target) {
                return Err(traversal(package, &format!("{path} -> {target}")));
            }
            PackageEntryKind::Symlink { target }
        } else if entry_type.is_hard_link() {
            let target = link_target(&entry).ok_or_else(|| invalid(format!("hard link `{path}` has no target")))?;
            let Ok(Some(target)) = normalize(&target) else {
                return Err(traversal(package, &format!("{path} => {target}")));
            };
            PackageEntryKind::Hardlink { target }
        } else if entry_type.is_file() || entry_type == tar::EntryType::Continuous {
            let (sha256, size) =
                stage_file(cache, &mut entry).map_err(|error| invalid(format!("`{path}`: {error}")))?;
            PackageEntryKind::File { sha256, size }
        } else {
            return Err(invalid(format!("`{path}` has the unsupported tar entry type {entry_type:?}")));
        };

        entries.push(PackageEntry { path, kind, mode, uid, gid });
    }
    Ok(entries)
}

fn traversal(package: &str, path: &str) -> DebianError {
    DebianError::PathTraversal { package: package.to_owned(), path: path.to_owned() }
}

fn link_target<R: Read>(entry: &tar::Entry<R>) -> Option<String> {
    let bytes = entry.link_name_bytes()?;
    let target = String::from_utf8(bytes.into_owned()).ok()?;
    (!target.is_empty()).then_some(target)
}

/// A path with a `..` component, which could lead outside the image root.
#[derive(Debug, PartialEq, Eq)]
pub struct LeavesRoot;

/// Turns a tar path such as `./usr/bin/x` into `/usr/bin/x`. Returns
/// `Ok(None)` for the root itself.
pub fn normalize(raw: &str) -> Result<Option<String>, LeavesRoot> {
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(LeavesRoot),
            part => parts.push(part),
        }
    }
    if parts.is_empty() { Ok(None) } else { Ok(Some(format!("/{}", parts.join("/")))) }
}

/// Reports whether a relative symlink target climbs above `/` from the
/// link's directory. Absolute targets stay inside the image by definition.
pub fn escapes_root(link: &str, target: &str) -> bool {
    if target.starts_with('/') {
        return false;
    }

    let mut depth = link.matches('/').count() as i64 - 1;
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

/// Copies one file into the cache under its SHA256, through a temporary
/// file, and returns the digest and size.
fn stage_file(cache: &Cache, reader: &mut impl Read) -> Result<(String, u64), DebianError> {
    let staging = cache.temporary_file()?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buffer = vec![0u8; 64 * 1024];
    let mut file = staging.as_file();

    loop {
        let count =
            reader.read(&mut buffer).map_err(|source| DebianError::Io { path: staging.path().to_owned(), source })?;
        if count == 0 {
            break;
        }
        hasher.update(&buffer[..count]);
        file.write_all(&buffer[..count])
            .map_err(|source| DebianError::Io { path: staging.path().to_owned(), source })?;
        size += count as u64;
    }

    let sha256 = hex::encode(hasher.finalize());
    let destination = cache.file_path(&sha256);
    if !destination.exists() {
        staging.persist(&destination).map_err(|error| DebianError::Io { path: destination, source: error.error })?;
    }
    Ok((sha256, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a data tar with a directory, a setuid file, a symlink and a
    /// hard link.
    fn data_tar() -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let new_header = || {
            let mut header = tar::Header::new_gnu();
            header.set_uid(0);
            header.set_gid(0);
            header.set_mode(0o777);
            header.set_mtime(0);
            header
        };

        let mut header = new_header();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        builder.append_data(&mut header, "./usr/bin/", std::io::empty()).unwrap();

        let mut header = new_header();
        header.set_mode(0o4755);
        header.set_size(5);
        builder.append_data(&mut header, "./usr/bin/tool", &b"hello"[..]).unwrap();

        let mut header = new_header();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        builder.append_link(&mut header, "./usr/bin/alias", "tool").unwrap();

        let mut header = new_header();
        header.set_entry_type(tar::EntryType::Link);
        header.set_size(0);
        builder.append_link(&mut header, "./usr/bin/tool2", "./usr/bin/tool").unwrap();

        builder.into_inner().unwrap()
    }

    fn control_tar() -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let control = b"Package: tool\nVersion: 1\nArchitecture: all\n";
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_size(control.len() as u64);
        builder.append_data(&mut header, "./control", &control[..]).unwrap();
        builder.into_inner().unwrap()
    }

    /// Writes a .deb whose data member is compressed by `compress` and
    /// named `data.tar{suffix}`.
    fn write_deb(dir: &Path, suffix: &str, compress: impl Fn(&[u8]) -> Vec<u8>) -> std::path::PathBuf {
        let path = dir.join(format!("tool{suffix}.deb"));
        let mut builder = ar::Builder::new(std::fs::File::create(&path).unwrap());
        let members: [(String, Vec<u8>); 3] = [
            ("debian-binary".to_owned(), b"2.0\n".to_vec()),
            ("control.tar".to_owned(), control_tar()),
            (format!("data.tar{suffix}"), compress(&data_tar())),
        ];
        for (name, bytes) in members {
            let header = ar::Header::new(name.into_bytes(), bytes.len() as u64);
            builder.append(&header, bytes.as_slice()).unwrap();
        }
        path
    }

    fn unpack_with(suffix: &str, compress: impl Fn(&[u8]) -> Vec<u8>) -> Unpacked {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(&dir.path().join("cache")).unwrap();
        let deb = write_deb(dir.path(), suffix, compress);
        unpack(&cache, &deb, "tool").unwrap()
    }

    #[test]
    fn deb_entries_keep_kinds_and_modes() {
        let unpacked = unpack_with("", <[u8]>::to_vec);
        let find = |path: &str| unpacked.entries.iter().find(|entry| entry.path == path).unwrap().clone();

        assert!(unpacked.control.starts_with("Package: tool"));
        assert_eq!(find("/usr/bin").kind, PackageEntryKind::Directory);
        assert_eq!(find("/usr/bin/tool").mode, 0o4755);
        assert_eq!(find("/usr/bin/tool").kind, PackageEntryKind::File { sha256: sha256_of(b"hello"), size: 5 });
        assert_eq!(find("/usr/bin/alias").kind, PackageEntryKind::Symlink { target: "tool".to_owned() });
        assert_eq!(find("/usr/bin/tool2").kind, PackageEntryKind::Hardlink { target: "/usr/bin/tool".to_owned() });
    }

    #[test]
    fn deb_data_member_compressions() {
        let zstd = |bytes: &[u8]| zstd::encode_all(bytes, 3).unwrap();
        let gzip = |bytes: &[u8]| {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(bytes).unwrap();
            encoder.finish().unwrap()
        };
        let xz = |bytes: &[u8]| {
            let mut writer = lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::default()).unwrap();
            writer.write_all(bytes).unwrap();
            writer.finish().unwrap()
        };

        assert_eq!(unpack_with(".zst", zstd).entries.len(), 4);
        assert_eq!(unpack_with(".gz", gzip).entries.len(), 4);
        assert_eq!(unpack_with(".xz", xz).entries.len(), 4);
    }

    #[test]
    fn staged_file_content_in_cache() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(&dir.path().join("cache")).unwrap();
        let deb = write_deb(dir.path(), "", <[u8]>::to_vec);
        unpack(&cache, &deb, "tool").unwrap();

        assert_eq!(std::fs::read(cache.file_path(&sha256_of(b"hello"))).unwrap(), b"hello");
    }

    fn sha256_of(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    #[test]
    fn normalize_strips_dot_prefix() {
        assert_eq!(normalize("./usr/bin/x"), Ok(Some("/usr/bin/x".to_owned())));
        assert_eq!(normalize("./"), Ok(None));
        assert_eq!(normalize("usr//lib/"), Ok(Some("/usr/lib".to_owned())));
    }

    #[test]
    fn normalize_rejects_parent_components() {
        assert_eq!(normalize("./usr/../../etc/passwd"), Err(LeavesRoot));
    }

    #[test]
    fn relative_link_inside_root_accepted() {
        assert!(!escapes_root("/usr/bin/pg_dump", "../share/postgresql-common/pg_wrapper"));
        assert!(!escapes_root("/usr/lib/x", "/etc/alternatives/x"));
    }

    #[test]
    fn relative_link_above_root_rejected() {
        assert!(escapes_root("/usr/bin/evil", "../../../etc/shadow"));
        assert!(escapes_root("/evil", ".."));
    }
}

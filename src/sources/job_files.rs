//! Job files from the job directory, placed under the image workdir.
//!
//! Every entry is owned by root, files are 0644 (0755 when any execute bit
//! is set on the host) and directories 0755, whatever the host's owners and
//! umask. A job that runs as a non-root user therefore cannot change its own
//! code.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{Content, Entry, EntryKind, SourceError};

/// Names at the top of the job directory that a directory walk skips:
/// kuul's own inputs. Hidden names (`.kuul`, `.git`, `.env`) are skipped at
/// every depth, see [`is_hidden`].
const EXCLUDED_TOP_LEVEL: &[&str] = &["kuul.toml", "kuul.lock"];

/// Checks whether a directory walk skips `name`: hidden files and
/// directories, such as kuul's `.kuul` output, `.git` and a `.env` with
/// secrets, are packed only when `image.files` lists them by path.
fn is_hidden(name: &str) -> bool {
    name.starts_with('.')
}

/// The number of symlinks followed in one path before giving up, as Linux
/// does (`MAXSYMLINKS`).
const MAX_SYMLINK_HOPS: usize = 40;

/// Collects the job files as entries under `workdir`, sorted by path.
///
/// With `files` absent, everything in `job_dir` is collected except
/// [`EXCLUDED_TOP_LEVEL`] and hidden names. Otherwise each listed path,
/// relative to `job_dir`, is collected, directories recursively without
/// their hidden names. Symlinks are kept when
/// their target stays inside `job_dir`, and the files they point to are
/// collected too.
///
/// `_uid` and `_gid` are the job's user and group. They are unused because
/// job files are owned by root and read-only to the job.
pub fn collect(
    job_dir: &Path,
    files: Option<&[String]>,
    workdir: &str,
    _uid: u32,
    _gid: u32,
) -> Result<Vec<Entry>, SourceError> {
    let workdir = normalize_workdir(workdir)?;
    fs::metadata(job_dir).map_err(|source| SourceError::io(job_dir, source))?;
    let mut collector = Collector { job_dir, workdir: &workdir, entries: BTreeMap::new(), visited: HashSet::new() };

    match files {
        None => collector.add_node(&[])?,
        Some(files) => {
            for file in files {
                collector.add_listed(file)?;
            }
        }
    }

    if workdir != "/" {
        collector.entries.insert(workdir.clone(), Entry::directory(workdir.clone()));
    }

    Ok(collector.entries.into_values().collect())
}

/// Returns `workdir` without a trailing or repeated `/`, or an error when
/// it is relative or contains `.` or `..`.
fn normalize_workdir(workdir: &str) -> Result<String, SourceError> {
    let invalid = || SourceError::InvalidWorkdir { workdir: workdir.to_string() };
    if !workdir.starts_with('/') {
        return Err(invalid());
    }

    let components: Vec<&str> = workdir.split('/').filter(|component| !component.is_empty()).collect();
    if components.iter().any(|component| *component == "." || *component == "..") {
        return Err(invalid());
    }

    Ok(format!("/{}", components.join("/")))
}

/// A path inside the job directory, as its components. The empty list is
/// the job directory itself.
type RelPath = Vec<String>;

/// The start of a path resolution, named in error messages.
enum Origin<'a> {
    /// A path listed in `image.files`.
    Listed(&'a str),
    /// A symlink at this path with this target.
    Link { path: String, target: String },
}

struct Collector<'a> {
    job_dir: &'a Path,
    workdir: &'a str,
    entries: BTreeMap<String, Entry>,
    /// Paths already collected, so a symlink to a directory that is also
    /// collected directly, or a symlink cycle, adds nothing twice.
    visited: HashSet<RelPath>,
}

impl Collector<'_> {
    /// Adds a path from `image.files`, following symlinks on the way.
    fn add_listed(&mut self, listed: &str) -> Result<(), SourceError> {
        if listed.starts_with('/') {
            return Err(SourceError::OutsideJobDir { path: listed.to_string(), target: listed.to_string() });
        }

        let Some(resolved) = self.resolve(Vec::new(), listed, Origin::Listed(listed))? else {
            return Err(SourceError::JobFileNotFound { path: listed.to_string() });
        };

        self.add_node(&resolved)
    }

    /// Adds the file, directory (recursively) or symlink at `rel`.
    fn add_node(&mut self, rel: &[String]) -> Result<(), SourceError> {
        if !self.visited.insert(rel.to_vec()) {
            return Ok(());
        }

        // The job directory itself may be reached through a symlink, so only
        // paths below it are read without following links.
        let host_path = self.host_path(rel);
        let metadata = if rel.is_empty() { fs::metadata(&host_path) } else { fs::symlink_metadata(&host_path) };
        let metadata = metadata.map_err(|source| SourceError::io(&host_path, source))?;
        let file_type = metadata.file_type();

        if file_type.is_symlink() {
            return self.add_symlink(rel);
        }

        if file_type.is_dir() {
            if !rel.is_empty() {
                let path = self.image_path(rel);
                self.entries.insert(path.clone(), Entry::directory(path));
            }
            return self.add_children(rel);
        }

        if file_type.is_file() {
            let mode = if metadata.permissions().mode() & 0o111 != 0 { 0o755 } else { 0o644 };
            let path = self.image_path(rel);
            let entry = Entry {
                path: path.clone(),
                kind: EntryKind::File { content: Content::Host(host_path), size: metadata.len() },
                mode,
                uid: 0,
                gid: 0,
            };
            self.entries.insert(path, entry);
            return Ok(());
        }

        let kind = if file_type.is_socket() {
            "socket"
        } else if file_type.is_fifo() {
            "FIFO"
        } else if file_type.is_block_device() {
            "block device"
        } else {
            "character device"
        };
        Err(SourceError::UnsupportedFileType { path: self.display_path(rel), kind })
    }

    /// Adds every child of the directory `rel` in name order, except hidden
    /// names and, at the top of the job directory, [`EXCLUDED_TOP_LEVEL`].
    fn add_children(&mut self, rel: &[String]) -> Result<(), SourceError> {
        let host_path = self.host_path(rel);
        let mut children = Vec::new();
        for child in fs::read_dir(&host_path).map_err(|source| SourceError::io(&host_path, source))? {
            let child = child.map_err(|source| SourceError::io(&host_path, source))?;
            let name = child.file_name();
            let Some(name) = name.to_str() else {
                return Err(SourceError::NonUtf8Path { path: child.path().to_string_lossy().into_owned() });
            };
            children.push(name.to_string());
        }
        children.sort();

        for name in children {
            if is_hidden(&name) || rel.is_empty() && EXCLUDED_TOP_LEVEL.contains(&name.as_str()) {
                continue;
            }

            let mut child = rel.to_vec();
            child.push(name);
            self.add_node(&child)?;
        }

        Ok(())
    }

    /// Adds the symlink at `rel` with its target unchanged, then whatever
    /// the target resolves to, so the link does not dangle in the image.
    fn add_symlink(&mut self, rel: &[String]) -> Result<(), SourceError> {
        let target = self.read_link(rel)?;
        let parent = rel[..rel.len() - 1].to_vec();
        let link_path = self.image_path(rel);
        self.entries.insert(link_path.clone(), Entry::symlink(link_path, target.clone()));

        let origin = Origin::Link { path: self.display_path(rel), target: target.clone() };

        if let Some(resolved) = self.resolve(parent, &target, origin)? {
            self.add_node(&resolved)?;
        }

        Ok(())
    }

    /// Resolves `path` relative to the directory `start`, following every
    /// symlink on the way and adding each one as an entry. Returns `None`
    /// when a component does not exist: a dangling symlink is kept, and a
    /// missing listed path is reported by the caller.
    fn resolve(&mut self, start: RelPath, path: &str, origin: Origin) -> Result<Option<RelPath>, SourceError> {
        let mut resolved = start;
        let mut remaining: Vec<String> = components(path).rev().map(str::to_string).collect();
        let mut last_link = origin;
        let mut hops = 0;

        while let Some(component) = remaining.pop() {
            if component == "." {
                continue;
            }
            if component == ".." {
                if resolved.pop().is_none() {
                    return Err(outside_error(&last_link));
                }
                continue;
            }

            resolved.push(component);
            let host_path = self.host_path(&resolved);
            let metadata = match fs::symlink_metadata(&host_path) {
                Ok(metadata) => metadata,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(source) => return Err(SourceError::io(&host_path, source)),
            };
            if !metadata.file_type().is_symlink() {
                continue;
            }

            hops += 1;
            if hops > MAX_SYMLINK_HOPS {
                return Err(SourceError::SymlinkLoop { path: self.display_path(&resolved) });
            }

            let target = self.read_link(&resolved)?;
            let link_path = self.image_path(&resolved);
            self.entries.insert(link_path.clone(), Entry::symlink(link_path, target.clone()));

            last_link = Origin::Link { path: self.display_path(&resolved), target: target.clone() };
            resolved.pop();
            remaining.extend(components(&target).rev().map(str::to_string));
        }

        Ok(Some(resolved))
    }

    /// Reads the target of the symlink at `rel`, rejecting absolute and
    /// non-UTF-8 targets.
    fn read_link(&self, rel: &[String]) -> Result<String, SourceError> {
        let host_path = self.host_path(rel);
        let target = fs::read_link(&host_path).map_err(|source| SourceError::io(&host_path, source))?;
        let Some(target) = target.to_str() else {
            return Err(SourceError::NonUtf8Path { path: target.to_string_lossy().into_owned() });
        };

        if target.starts_with('/') {
            return Err(SourceError::AbsoluteSymlink { path: self.display_path(rel), target: target.to_string() });
        }
        Ok(target.to_string())
    }

    fn host_path(&self, rel: &[String]) -> PathBuf {
        rel.iter().fold(self.job_dir.to_path_buf(), |path, component| path.join(component))
    }

    /// Returns the path inside the image, `<workdir>/<rel>`.
    fn image_path(&self, rel: &[String]) -> String {
        if self.workdir == "/" { format!("/{}", rel.join("/")) } else { format!("{}/{}", self.workdir, rel.join("/")) }
    }

    /// Returns the path relative to the job directory, as users write it in
    /// `image.files`.
    fn display_path(&self, rel: &[String]) -> String {
        rel.join("/")
    }
}

fn outside_error(origin: &Origin) -> SourceError {
    match origin {
        Origin::Listed(path) => SourceError::OutsideJobDir { path: path.to_string(), target: path.to_string() },
        Origin::Link { path, target } => SourceError::OutsideJobDir { path: path.clone(), target: target.clone() },
    }
}

fn components(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/').filter(|component| !component.is_empty())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;
    use std::os::unix::net::UnixListener;

    use super::*;

    fn job_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("kuul.toml"), "[job]\n").unwrap();
        fs::write(dir.path().join("kuul.lock"), "").unwrap();
        fs::create_dir(dir.path().join(".kuul")).unwrap();
        fs::write(dir.path().join(".kuul/layer.tar"), "").unwrap();
        fs::create_dir(dir.path().join(".git")).unwrap();
        fs::write(dir.path().join(".git/HEAD"), "").unwrap();
        fs::write(dir.path().join("run.sh"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(dir.path().join("run.sh"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::create_dir(dir.path().join("sql")).unwrap();
        fs::set_permissions(dir.path().join("sql"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::write(dir.path().join("sql/schema.sql"), "select 1;\n").unwrap();
        fs::set_permissions(dir.path().join("sql/schema.sql"), fs::Permissions::from_mode(0o600)).unwrap();
        dir
    }

    fn collect_all(dir: &Path) -> Result<Vec<Entry>, SourceError> {
        collect(dir, None, "/job", 65532, 65532)
    }

    fn collect_listed(dir: &Path, files: &[&str]) -> Result<Vec<Entry>, SourceError> {
        let files: Vec<String> = files.iter().map(|file| file.to_string()).collect();
        collect(dir, Some(&files), "/job", 65532, 65532)
    }

    fn paths(entries: &[Entry]) -> Vec<&str> {
        entries.iter().map(|entry| entry.path.as_str()).collect()
    }

    fn find<'a>(entries: &'a [Entry], path: &str) -> &'a Entry {
        entries
            .iter()
            .find(|entry| entry.path == path)
            .unwrap_or_else(|| panic!("no entry `{path}` in {:#?}", paths(entries)))
    }

    #[test]
    fn collect_all_skips_kuul_and_git() {
        let dir = job_dir();

        let entries = collect_all(dir.path()).unwrap();

        assert_eq!(paths(&entries), ["/job", "/job/run.sh", "/job/sql", "/job/sql/schema.sql"]);
    }

    #[test]
    fn modes_ignore_host_permissions() {
        let dir = job_dir();

        let entries = collect_all(dir.path()).unwrap();

        assert_eq!(find(&entries, "/job").mode, 0o755);
        assert_eq!(find(&entries, "/job/run.sh").mode, 0o755);
        assert_eq!(find(&entries, "/job/sql").mode, 0o755);
        assert_eq!(find(&entries, "/job/sql/schema.sql").mode, 0o644);
    }

    #[test]
    fn entries_owned_by_root() {
        let dir = job_dir();

        let entries = collect_all(dir.path()).unwrap();

        for entry in &entries {
            assert_eq!((entry.uid, entry.gid), (0, 0), "`{}`", entry.path);
        }
    }

    #[test]
    fn file_entry_reads_host_file() {
        let dir = job_dir();

        let entries = collect_all(dir.path()).unwrap();

        let expected = EntryKind::File { content: Content::Host(dir.path().join("sql/schema.sql")), size: 10 };
        assert_eq!(find(&entries, "/job/sql/schema.sql").kind, expected);
    }

    #[test]
    fn listed_directory_is_recursive() {
        let dir = job_dir();

        let entries = collect_listed(dir.path(), &["sql"]).unwrap();

        assert_eq!(paths(&entries), ["/job", "/job/sql", "/job/sql/schema.sql"]);
    }

    #[test]
    fn listed_file_may_be_kuul_toml() {
        let dir = job_dir();

        let entries = collect_listed(dir.path(), &["kuul.toml", "./run.sh"]).unwrap();

        assert_eq!(paths(&entries), ["/job", "/job/kuul.toml", "/job/run.sh"]);
    }

    #[test]
    fn listed_missing_path_names_it() {
        let dir = job_dir();

        let error = collect_listed(dir.path(), &["missing.sh"]).unwrap_err();
        let message = error.to_string();

        assert!(message.contains("`missing.sh`"), "{message}");
        assert!(message.contains("hint: paths in `image.files`"), "{message}");
    }

    #[test]
    fn listed_parent_path_rejected() {
        let dir = job_dir();

        let error = collect_listed(dir.path(), &["../x"]).unwrap_err();

        assert!(matches!(error, SourceError::OutsideJobDir { ref path, .. } if path == "../x"), "{error}");
    }

    #[test]
    fn listed_absolute_path_rejected() {
        let dir = job_dir();

        let error = collect_listed(dir.path(), &["/etc/passwd"]).unwrap_err();

        assert!(matches!(error, SourceError::OutsideJobDir { .. }), "{error}");
    }

    #[test]
    fn inside_symlink_kept() {
        let dir = job_dir();
        symlink("sql/schema.sql", dir.path().join("schema.sql")).unwrap();

        let entries = collect_all(dir.path()).unwrap();

        let expected = EntryKind::Symlink { target: "sql/schema.sql".to_string() };
        assert_eq!(find(&entries, "/job/schema.sql").kind, expected);
        assert_eq!(find(&entries, "/job/schema.sql").mode, 0o777);
    }

    #[test]
    fn listed_symlink_brings_target() {
        let dir = job_dir();
        symlink("sql/schema.sql", dir.path().join("schema.sql")).unwrap();

        let entries = collect_listed(dir.path(), &["schema.sql"]).unwrap();

        assert_eq!(paths(&entries), ["/job", "/job/schema.sql", "/job/sql/schema.sql"]);
    }

    #[test]
    fn listed_path_through_symlinked_dir() {
        let dir = job_dir();
        symlink("sql", dir.path().join("queries")).unwrap();

        let entries = collect_listed(dir.path(), &["queries/schema.sql"]).unwrap();

        assert_eq!(paths(&entries), ["/job", "/job/queries", "/job/sql/schema.sql"]);
    }

    #[test]
    fn escaping_symlink_rejected() {
        let dir = job_dir();
        symlink("../../etc/passwd", dir.path().join("sql/passwd")).unwrap();

        let error = collect_all(dir.path()).unwrap_err();

        let expected_path = "sql/passwd".to_string();
        let expected_target = "../../etc/passwd".to_string();
        assert!(
            matches!(error, SourceError::OutsideJobDir { ref path, ref target } if *path == expected_path && *target == expected_target),
            "{error}"
        );
    }

    #[test]
    fn absolute_symlink_rejected() {
        let dir = job_dir();
        symlink("/etc/passwd", dir.path().join("passwd")).unwrap();

        let error = collect_all(dir.path()).unwrap_err();
        let message = error.to_string();

        assert!(message.contains("`passwd`"), "{message}");
        assert!(message.contains("`/etc/passwd`"), "{message}");
    }

    #[test]
    fn escaping_symlink_chain_rejected() {
        let dir = job_dir();
        symlink("b", dir.path().join("a")).unwrap();
        symlink("sql/../..", dir.path().join("b")).unwrap();

        let error = collect_listed(dir.path(), &["a"]).unwrap_err();

        assert!(matches!(error, SourceError::OutsideJobDir { ref path, .. } if path == "b"), "{error}");
    }

    #[test]
    fn symlink_cycle_rejected() {
        let dir = job_dir();
        symlink("loop2", dir.path().join("loop1")).unwrap();
        symlink("loop1", dir.path().join("loop2")).unwrap();

        let error = collect_all(dir.path()).unwrap_err();

        assert!(matches!(error, SourceError::SymlinkLoop { .. }), "{error}");
    }

    #[test]
    fn symlink_to_job_dir_terminates() {
        let dir = job_dir();
        symlink(".", dir.path().join("self")).unwrap();

        let entries = collect_all(dir.path()).unwrap();

        assert_eq!(find(&entries, "/job/self").kind, EntryKind::Symlink { target: ".".to_string() });
    }

    #[test]
    fn socket_rejected_with_path() {
        let dir = job_dir();
        let _listener = UnixListener::bind(dir.path().join("sql/agent.sock")).unwrap();

        let error = collect_all(dir.path()).unwrap_err();
        let message = error.to_string();

        assert!(message.contains("`sql/agent.sock` is a socket"), "{message}");
    }

    #[test]
    fn fifo_rejected_with_path() {
        let dir = job_dir();
        let status = std::process::Command::new("mkfifo").arg(dir.path().join("pipe")).status().unwrap();
        assert!(status.success(), "mkfifo failed");

        let error = collect_all(dir.path()).unwrap_err();
        let message = error.to_string();

        assert!(message.contains("`pipe` is a FIFO"), "{message}");
    }

    #[test]
    fn non_utf8_name_rejected() {
        use std::os::unix::ffi::OsStrExt;

        let dir = job_dir();
        fs::write(dir.path().join(std::ffi::OsStr::from_bytes(b"bad\xffname")), "").unwrap();

        let error = collect_all(dir.path()).unwrap_err();

        assert!(matches!(error, SourceError::NonUtf8Path { ref path } if path.contains("bad\u{fffd}name")), "{error}");
    }

    #[test]
    fn hard_links_become_separate_files() {
        let dir = job_dir();
        fs::hard_link(dir.path().join("run.sh"), dir.path().join("again.sh")).unwrap();

        let entries = collect_all(dir.path()).unwrap();

        assert!(matches!(find(&entries, "/job/again.sh").kind, EntryKind::File { .. }));
        assert!(matches!(find(&entries, "/job/run.sh").kind, EntryKind::File { .. }));
    }

    #[test]
    fn workdir_trailing_slash_normalized() {
        let dir = job_dir();

        let entries = collect(dir.path(), None, "/srv/job/", 0, 0).unwrap();

        assert_eq!(entries[0].path, "/srv/job");
        assert_eq!(entries[1].path, "/srv/job/run.sh");
    }

    #[test]
    fn missing_job_dir_is_io_error() {
        let dir = job_dir();

        let error = collect(&dir.path().join("absent"), Some(&["run.sh".to_string()]), "/job", 0, 0).unwrap_err();

        assert!(matches!(error, SourceError::Io { .. }), "{error}");
    }

    #[test]
    fn relative_workdir_rejected() {
        let dir = job_dir();

        let error = collect(dir.path(), None, "job", 0, 0).unwrap_err();

        assert!(matches!(error, SourceError::InvalidWorkdir { .. }), "{error}");
    }

    #[test]
    fn hidden_files_skipped_unless_listed() {
        let dir = job_dir();
        fs::write(dir.path().join(".env"), "PGPASSWORD=secret\n").unwrap();
        fs::write(dir.path().join("sql/.notes"), "draft\n").unwrap();

        let walked: Vec<String> = collect_all(dir.path()).unwrap().into_iter().map(|entry| entry.path).collect();
        let listed: Vec<String> =
            collect_listed(dir.path(), &[".env", "sql"]).unwrap().into_iter().map(|entry| entry.path).collect();

        assert!(!walked.contains(&"/job/.env".to_owned()), "{walked:?}");
        assert!(!walked.contains(&"/job/sql/.notes".to_owned()), "{walked:?}");
        assert!(listed.contains(&"/job/.env".to_owned()), "{listed:?}");
        assert!(!listed.contains(&"/job/sql/.notes".to_owned()), "{listed:?}");
    }
}

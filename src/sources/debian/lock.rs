//! `kuul.lock`: the digest a base image tag resolved to and the resolved
//! package set, written beside kuul.toml, so that later builds use exactly
//! the same base and install exactly the same files.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::DebianError;

/// The file name of the lock, beside `kuul.toml`.
pub const LOCK_FILE: &str = "kuul.lock";

/// Bumped when the format changes incompatibly. The optional `[base]`
/// table and the optional `request` came later without a bump, because
/// every older lock file still reads the same.
const LOCK_VERSION: u32 = 1;

/// The contents of `kuul.lock`. A job without `image.packages` has no
/// `request` and no packages. A job whose base is `scratch` or pinned by
/// digest in kuul.toml has no `base`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<LockedBase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<LockRequest>,
    #[serde(default, rename = "package")]
    pub packages: Vec<LockedPackage>,
}

/// The digest that the tag in `image.base` resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedBase {
    /// `image.base` as written in kuul.toml.
    pub reference: String,
    /// The index digest for a multi-platform base, else the image manifest
    /// digest.
    pub digest: String,
}

/// The inputs that produced the lock. A build whose kuul.toml requests
/// something else resolves again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockRequest {
    pub packages: Vec<String>,
    pub suite: String,
    pub components: Vec<String>,
    pub architecture: String,
    /// The base image's installed packages as `name version`, sorted;
    /// empty without a base. A base with other packages resolves again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub installed: Vec<String>,
}

/// One resolved package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// Path of the `.deb` below the repository base.
    pub filename: String,
    pub size: u64,
    pub sha256: String,
}

impl Lock {
    pub fn new(request: LockRequest, mut packages: Vec<LockedPackage>) -> Lock {
        packages.sort_by(|a, b| a.name.cmp(&b.name));
        Lock { version: LOCK_VERSION, base: None, request: Some(request), packages }
    }

    /// Creates a lock that pins only the base image.
    pub fn base_only(base: LockedBase) -> Lock {
        Lock { version: LOCK_VERSION, base: Some(base), request: None, packages: Vec::new() }
    }

    /// Checks whether the lock pins nothing, so no file needs to exist.
    pub fn is_empty(&self) -> bool {
        self.base.is_none() && self.request.is_none() && self.packages.is_empty()
    }

    /// Reads the lock at `path`; `None` when there is none.
    pub fn read(path: &Path) -> Result<Option<Lock>, DebianError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(DebianError::Io { path: path.to_owned(), source }),
        };

        let lock: Lock = toml::from_str(&text)
            .map_err(|error| DebianError::InvalidLock { path: path.to_owned(), reason: error.message().to_owned() })?;
        if lock.version != LOCK_VERSION {
            return Err(DebianError::InvalidLock {
                path: path.to_owned(),
                reason: format!("unsupported version `{}`", lock.version),
            });
        }
        Ok(Some(lock))
    }

    /// Writes the lock to `path`, replacing the file atomically.
    pub fn write(&self, path: &Path) -> Result<(), DebianError> {
        let body = toml::to_string(self).expect("the lock serializes to TOML");
        let text = format!(
            "# Written by kuul; builds use exactly this base image digest and these packages.\n\
             # Run `kuul lock DIR` to update it.\n{body}"
        );

        let temporary = path.with_extension("lock.tmp");
        std::fs::write(&temporary, text).map_err(|source| DebianError::Io { path: temporary.clone(), source })?;
        std::fs::rename(&temporary, path).map_err(|source| DebianError::Io { path: path.to_owned(), source })
    }

    /// Removes the package part of the lock at `path`, keeping the base pin,
    /// and removes the file when nothing is left. A missing file is fine.
    pub fn remove_packages(path: &Path) -> Result<(), DebianError> {
        let Some(mut lock) = Lock::read(path)? else {
            return Ok(());
        };
        if lock.request.is_none() && lock.packages.is_empty() {
            return Ok(());
        }

        lock.request = None;
        lock.packages.clear();
        if lock.is_empty() {
            return std::fs::remove_file(path).map_err(|source| DebianError::Io { path: path.to_owned(), source });
        }
        lock.write(path)
    }

    /// Lists the package differences to `other` as `+ name version`,
    /// `- name version` lines, for the `--locked` error. The base pin is
    /// compared separately, by the build's base step.
    pub fn diff(&self, other: &Lock) -> Vec<String> {
        let mut lines = Vec::new();
        let installed = |lock: &Lock| lock.request.as_ref().map(|request| request.installed.clone());
        let without_installed =
            |lock: &Lock| lock.request.clone().map(|request| LockRequest { installed: Vec::new(), ..request });
        if without_installed(self) != without_installed(other) {
            lines.push("the request in kuul.toml changed".to_owned());
        }
        if installed(self) != installed(other) {
            lines.push("the packages installed in the base image changed".to_owned());
        }
        for package in &self.packages {
            if !other.packages.contains(package) {
                lines.push(format!("- {} {}", package.name, package.version));
            }
        }
        for package in &other.packages {
            if !self.packages.contains(package) {
                lines.push(format!("+ {} {}", package.name, package.version));
            }
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Lock {
        let request = LockRequest {
            packages: vec!["busybox".to_owned()],
            suite: "bookworm".to_owned(),
            components: vec!["main".to_owned()],
            architecture: "amd64".to_owned(),
            installed: Vec::new(),
        };
        let package = LockedPackage {
            name: "busybox".to_owned(),
            version: "1:1.35.0-4+b3".to_owned(),
            architecture: "amd64".to_owned(),
            filename: "pool/main/b/busybox/busybox_1.35.0-4+b3_amd64.deb".to_owned(),
            size: 452000,
            sha256: "ab".repeat(32),
        };
        Lock::new(request, vec![package])
    }

    #[test]
    fn lock_round_trips_through_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        sample().write(&path).unwrap();

        assert_eq!(Lock::read(&path).unwrap(), Some(sample()));
    }

    #[test]
    fn lock_without_base_table_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        let old_format = "version = 1\n\n[request]\npackages = [\"busybox\"]\nsuite = \"bookworm\"\n\
                          components = [\"main\"]\narchitecture = \"amd64\"\n";
        std::fs::write(&path, old_format).unwrap();

        let lock = Lock::read(&path).unwrap().unwrap();

        assert_eq!(lock.base, None);
        assert_eq!(lock.request, sample().request);
    }

    #[test]
    fn base_only_lock_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        let base = LockedBase {
            reference: "127.0.0.1:5000/ops/base:12".to_owned(),
            digest: format!("sha256:{}", "c".repeat(64)),
        };
        Lock::base_only(base.clone()).write(&path).unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        let lock = Lock::read(&path).unwrap().unwrap();

        assert!(text.contains("[base]"), "{text}");
        assert!(!text.contains("[request]"), "{text}");
        assert_eq!(lock.base, Some(base));
        assert_eq!(lock.request, None);
    }

    #[test]
    fn remove_packages_keeps_base() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        let base = LockedBase {
            reference: "127.0.0.1:5000/ops/base:12".to_owned(),
            digest: format!("sha256:{}", "c".repeat(64)),
        };
        let mut lock = sample();
        lock.base = Some(base.clone());
        lock.write(&path).unwrap();

        Lock::remove_packages(&path).unwrap();

        assert_eq!(Lock::read(&path).unwrap(), Some(Lock::base_only(base)));
    }

    #[test]
    fn remove_packages_deletes_package_only_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        sample().write(&path).unwrap();

        Lock::remove_packages(&path).unwrap();

        assert!(!path.exists());
    }

    #[test]
    fn missing_lock_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();

        assert_eq!(Lock::read(&dir.path().join(LOCK_FILE)).unwrap(), None);
    }

    #[test]
    fn diff_lists_changed_versions() {
        let old = sample();
        let mut new = sample();
        new.packages[0].version = "1:1.36.1-1".to_owned();

        assert_eq!(old.diff(&new), ["- busybox 1:1.35.0-4+b3", "+ busybox 1:1.36.1-1"]);
    }

    #[test]
    fn diff_of_equal_locks_is_empty() {
        assert!(sample().diff(&sample()).is_empty());
    }
}

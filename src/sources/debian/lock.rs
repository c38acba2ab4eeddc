//! `kuul.lock`: the digest a base image tag resolved to and, for each
//! architecture built, the resolved package set, written beside kuul.toml,
//! so that later builds use exactly the same base and install exactly the
//! same files.
//!
//! Version 2 of the file has one `[[architecture]]` table per Debian
//! architecture, so a multi-platform build locks every platform's
//! packages. Version 1 had a single `[request]` table with its
//! `[[package]]` list, and it still reads as one architecture.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::DebianError;

/// The file name of the lock, beside `kuul.toml`.
pub const LOCK_FILE: &str = "kuul.lock";

/// The version kuul writes.
const LOCK_VERSION: u32 = 2;

/// The contents of `kuul.lock`. A job without `image.packages` has no
/// package sets. A job whose base is `scratch` or pinned by digest in
/// kuul.toml has no `base`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lock {
    pub base: Option<LockedBase>,
    /// One set per Debian architecture, sorted by architecture.
    pub sets: Vec<PackageSet>,
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

/// The packages resolved for one architecture and the request they were
/// resolved for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageSet {
    pub request: LockRequest,
    /// Sorted by name.
    pub packages: Vec<LockedPackage>,
}

/// The inputs that produced a package set. A build whose kuul.toml
/// requests something else resolves again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockRequest {
    pub packages: Vec<String>,
    pub suite: String,
    pub components: Vec<String>,
    /// The Debian architecture.
    pub architecture: String,
    /// The base image's installed packages as `name version`, sorted;
    /// empty without a base. A base with other packages resolves again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub installed: Vec<String>,
}

impl LockRequest {
    /// Checks whether `other` requests the same packages from the same
    /// suite and components, whatever its architecture and base.
    pub fn same_packages(&self, other: &LockRequest) -> bool {
        self.packages == other.packages && self.suite == other.suite && self.components == other.components
    }
}

/// One resolved package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPackage {
    pub name: String,
    pub version: String,
    /// The package's own architecture: the set's, or `all`.
    pub architecture: String,
    /// Path of the `.deb` below the repository base.
    pub filename: String,
    pub size: u64,
    pub sha256: String,
}

impl PackageSet {
    pub fn new(request: LockRequest, mut packages: Vec<LockedPackage>) -> PackageSet {
        packages.sort_by(|a, b| a.name.cmp(&b.name));
        PackageSet { request, packages }
    }

    pub fn architecture(&self) -> &str {
        &self.request.architecture
    }

    /// Lists the differences to `other` as `+ name version`,
    /// `- name version` lines, for the `--locked` error.
    pub fn diff(&self, other: &PackageSet) -> Vec<String> {
        let mut lines = Vec::new();
        if !self.request.same_packages(&other.request) {
            lines.push("the request in kuul.toml changed".to_owned());
        }
        if self.request.installed != other.request.installed {
            lines.push("the packages installed in the base image changed".to_owned());
        }
        let same_version = |a: &LockedPackage, b: &LockedPackage| a.name == b.name && a.version == b.version;
        for package in &self.packages {
            if other.packages.contains(package) {
                continue;
            }
            if other.packages.iter().any(|changed| same_version(package, changed)) {
                lines.push(format!(
                    "~ {} {}: another file, size or SHA256 for the same version",
                    package.name, package.version
                ));
            } else {
                lines.push(format!("- {} {}", package.name, package.version));
            }
        }
        for package in &other.packages {
            let listed = self.packages.iter().any(|old| same_version(old, package));
            if !self.packages.contains(package) && !listed {
                lines.push(format!("+ {} {}", package.name, package.version));
            }
        }
        lines
    }
}

impl Lock {
    /// Creates a lock with the packages of one architecture.
    pub fn new(request: LockRequest, packages: Vec<LockedPackage>) -> Lock {
        Lock { base: None, sets: vec![PackageSet::new(request, packages)] }
    }

    /// Creates a lock that pins only the base image.
    pub fn base_only(base: LockedBase) -> Lock {
        Lock { base: Some(base), sets: Vec::new() }
    }

    /// Checks whether the lock pins nothing, so no file needs to exist.
    pub fn is_empty(&self) -> bool {
        self.base.is_none() && self.sets.is_empty()
    }

    /// Returns the package set of the Debian `architecture`.
    pub fn set(&self, architecture: &str) -> Option<&PackageSet> {
        self.sets.iter().find(|set| set.architecture() == architecture)
    }

    /// Adds `set`, replacing the set of its architecture.
    pub fn put_set(&mut self, set: PackageSet) {
        self.sets.retain(|existing| existing.architecture() != set.architecture());
        self.sets.push(set);
        self.sets.sort_by(|a, b| a.architecture().cmp(b.architecture()));
    }

    /// Drops the sets resolved for other packages, suite or components than
    /// `request`. kuul.toml no longer requests them, and a build of their
    /// architecture would resolve again anyway.
    pub fn retain_current(&mut self, request: &LockRequest) {
        self.sets.retain(|set| set.request.same_packages(request));
    }

    /// Reads the lock at `path`; `None` when there is none.
    pub fn read(path: &Path) -> Result<Option<Lock>, DebianError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(DebianError::Io { path: path.to_owned(), source }),
        };
        let invalid = |reason: String| DebianError::InvalidLock { path: path.to_owned(), reason };

        let table: toml::Table = toml::from_str(&text).map_err(|error| invalid(located(&text, &error)))?;
        let message = |error: toml::de::Error| error.message().to_owned();
        let lock = match table.get("version").and_then(toml::Value::as_integer) {
            Some(1) => table.try_into::<LockFileV1>().map(Lock::from).map_err(message),
            Some(2) => table.try_into::<LockFile>().map_err(message).and_then(Lock::try_from),
            Some(other) if other > i64::from(LOCK_VERSION) => {
                Err(format!("version `{other}` was written by a newer kuul"))
            }
            Some(other) => Err(format!("unsupported version `{other}`")),
            None => Err("missing integer `version`".to_owned()),
        };
        lock.map(Some).map_err(invalid)
    }

    /// Writes the lock to `path`, replacing the file atomically.
    pub fn write(&self, path: &Path) -> Result<(), DebianError> {
        let body = toml::to_string(&LockFile::from(self)).expect("the lock serializes to TOML");
        let text = format!(
            "# Written by kuul; builds use exactly this base image digest and these packages.\n\
             # Run `kuul lock DIR` to update it.\n{body}"
        );

        let temporary = path.with_extension("lock.tmp");
        std::fs::write(&temporary, text).map_err(|source| DebianError::Io { path: temporary.clone(), source })?;
        std::fs::rename(&temporary, path).map_err(|source| DebianError::Io { path: path.to_owned(), source })
    }

    /// Removes the package sets of the lock at `path`, keeping the base
    /// pin, and removes the file when nothing is left. A missing file is
    /// fine.
    pub fn remove_packages(path: &Path) -> Result<(), DebianError> {
        let Some(mut lock) = Lock::read(path)? else {
            return Ok(());
        };
        if lock.sets.is_empty() {
            return Ok(());
        }

        lock.sets.clear();
        if lock.is_empty() {
            return std::fs::remove_file(path).map_err(|source| DebianError::Io { path: path.to_owned(), source });
        }
        lock.write(path)
    }
}

/// Returns a TOML error's message with the line and column it starts at.
fn located(text: &str, error: &toml::de::Error) -> String {
    let Some(span) = error.span() else {
        return error.message().to_owned();
    };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |newline| newline + 1) + 1;
    format!("line {line}, column {column}: {}", error.message())
}

/// `kuul.lock` version 2 as stored.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LockFile {
    version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    base: Option<LockedBase>,
    #[serde(default, rename = "architecture", skip_serializing_if = "Vec::is_empty")]
    architectures: Vec<ArchitectureTable>,
}

/// One `[[architecture]]` table: the request's fields, then the packages.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArchitectureTable {
    name: String,
    suite: String,
    components: Vec<String>,
    packages: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    installed: Vec<String>,
    #[serde(default, rename = "package", skip_serializing_if = "Vec::is_empty")]
    resolved: Vec<LockedPackage>,
}

/// `kuul.lock` version 1 as stored: one architecture at most.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LockFileV1 {
    #[allow(dead_code, reason = "read to choose the format")]
    version: u32,
    #[serde(default)]
    base: Option<LockedBase>,
    #[serde(default)]
    request: Option<LockRequest>,
    #[serde(default, rename = "package")]
    packages: Vec<LockedPackage>,
}

impl From<LockFileV1> for Lock {
    fn from(file: LockFileV1) -> Lock {
        let sets = file.request.map(|request| PackageSet::new(request, file.packages)).into_iter().collect();
        Lock { base: file.base, sets }
    }
}

impl TryFrom<LockFile> for Lock {
    type Error = String;

    fn try_from(file: LockFile) -> Result<Lock, String> {
        let mut lock = Lock { base: file.base, sets: Vec::new() };
        for table in file.architectures {
            if lock.set(&table.name).is_some() {
                return Err(format!("architecture `{}` is listed twice", table.name));
            }
            let request = LockRequest {
                packages: table.packages,
                suite: table.suite,
                components: table.components,
                architecture: table.name,
                installed: table.installed,
            };
            lock.put_set(PackageSet::new(request, table.resolved));
        }
        Ok(lock)
    }
}

impl From<&Lock> for LockFile {
    fn from(lock: &Lock) -> LockFile {
        let architectures = lock
            .sets
            .iter()
            .map(|set| ArchitectureTable {
                name: set.request.architecture.clone(),
                suite: set.request.suite.clone(),
                components: set.request.components.clone(),
                packages: set.request.packages.clone(),
                installed: set.request.installed.clone(),
                resolved: set.packages.clone(),
            })
            .collect();
        LockFile { version: LOCK_VERSION, base: lock.base.clone(), architectures }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(architecture: &str) -> LockRequest {
        LockRequest {
            packages: vec!["busybox".to_owned()],
            suite: "bookworm".to_owned(),
            components: vec!["main".to_owned()],
            architecture: architecture.to_owned(),
            installed: Vec::new(),
        }
    }

    fn busybox(architecture: &str) -> LockedPackage {
        LockedPackage {
            name: "busybox".to_owned(),
            version: "1:1.35.0-4+b3".to_owned(),
            architecture: architecture.to_owned(),
            filename: format!("pool/main/b/busybox/busybox_1.35.0-4+b3_{architecture}.deb"),
            size: 452000,
            sha256: "ab".repeat(32),
        }
    }

    fn sample() -> Lock {
        Lock::new(request("amd64"), vec![busybox("amd64")])
    }

    fn two_architectures() -> Lock {
        let mut lock = sample();
        lock.put_set(PackageSet::new(request("arm64"), vec![busybox("arm64")]));
        lock
    }

    fn pin() -> LockedBase {
        LockedBase { reference: "127.0.0.1:5000/ops/base:12".to_owned(), digest: format!("sha256:{}", "c".repeat(64)) }
    }

    fn write_text(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn lock_round_trips_through_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        sample().write(&path).unwrap();

        assert_eq!(Lock::read(&path).unwrap(), Some(sample()));
    }

    #[test]
    fn two_architectures_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        two_architectures().write(&path).unwrap();

        let text = std::fs::read_to_string(&path).unwrap();

        assert_eq!(text.matches("[[architecture]]").count(), 2, "{text}");
        assert_eq!(Lock::read(&path).unwrap(), Some(two_architectures()));
    }

    #[test]
    fn written_lock_has_version_two() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        sample().write(&path).unwrap();

        let table: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();

        assert_eq!(table["version"].as_integer(), Some(2));
    }

    #[test]
    fn version_one_reads_as_one_architecture() {
        let (_dir, path) = write_text(&format!(
            "version = 1\n\n[request]\npackages = [\"busybox\"]\nsuite = \"bookworm\"\n\
             components = [\"main\"]\narchitecture = \"amd64\"\n\n[[package]]\nname = \"busybox\"\n\
             version = \"1:1.35.0-4+b3\"\narchitecture = \"amd64\"\n\
             filename = \"pool/main/b/busybox/busybox_1.35.0-4+b3_amd64.deb\"\nsize = 452000\n\
             sha256 = \"{}\"\n",
            "ab".repeat(32)
        ));

        assert_eq!(Lock::read(&path).unwrap(), Some(sample()));
    }

    #[test]
    fn version_one_without_base_table_reads() {
        let (_dir, path) = write_text(
            "version = 1\n\n[request]\npackages = [\"busybox\"]\nsuite = \"bookworm\"\n\
             components = [\"main\"]\narchitecture = \"amd64\"\n",
        );

        let lock = Lock::read(&path).unwrap().unwrap();

        assert_eq!(lock.base, None);
        assert_eq!(lock.sets[0].request, request("amd64"));
    }

    #[test]
    fn version_one_base_only_reads() {
        let (_dir, path) = write_text(&format!(
            "version = 1\n\n[base]\nreference = \"{}\"\ndigest = \"{}\"\n",
            pin().reference,
            pin().digest
        ));

        assert_eq!(Lock::read(&path).unwrap(), Some(Lock::base_only(pin())));
    }

    #[test]
    fn unknown_version_is_rejected() {
        let (_dir, path) = write_text("version = 3\n");

        let error = Lock::read(&path).unwrap_err().to_string();

        assert!(error.contains("version `3` was written by a newer kuul"), "{error}");
    }

    #[test]
    fn repeated_architecture_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        sample().write(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let table = &text[text.find("[[architecture]]").unwrap()..];
        std::fs::write(&path, format!("{text}\n{table}")).unwrap();

        let error = Lock::read(&path).unwrap_err().to_string();

        assert!(error.contains("architecture `amd64` is listed twice"), "{error}");
    }

    #[test]
    fn base_only_lock_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        Lock::base_only(pin()).write(&path).unwrap();

        let text = std::fs::read_to_string(&path).unwrap();

        assert!(text.contains("[base]"), "{text}");
        assert!(!text.contains("[[architecture]]"), "{text}");
        assert_eq!(Lock::read(&path).unwrap(), Some(Lock::base_only(pin())));
    }

    #[test]
    fn put_set_replaces_same_architecture() {
        let mut lock = two_architectures();
        let mut newer = busybox("amd64");
        newer.version = "1:1.36.1-1".to_owned();

        lock.put_set(PackageSet::new(request("amd64"), vec![newer.clone()]));

        assert_eq!(lock.sets.len(), 2);
        assert_eq!(lock.set("amd64").unwrap().packages, [newer]);
    }

    #[test]
    fn retain_current_drops_other_requests() {
        let mut lock = two_architectures();
        let mut changed = request("amd64");
        changed.packages.push("curl".to_owned());

        lock.retain_current(&changed);

        assert!(lock.sets.is_empty(), "{lock:?}");
    }

    #[test]
    fn retain_current_keeps_other_architectures() {
        let mut lock = two_architectures();

        lock.retain_current(&request("riscv64"));

        assert_eq!(lock, two_architectures());
    }

    #[test]
    fn remove_packages_keeps_base() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        let mut lock = two_architectures();
        lock.base = Some(pin());
        lock.write(&path).unwrap();

        Lock::remove_packages(&path).unwrap();

        assert_eq!(Lock::read(&path).unwrap(), Some(Lock::base_only(pin())));
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
        let old = sample().sets.remove(0);
        let mut new = old.clone();
        new.packages[0].version = "1:1.36.1-1".to_owned();

        assert_eq!(old.diff(&new), ["- busybox 1:1.35.0-4+b3", "+ busybox 1:1.36.1-1"]);
    }

    #[test]
    fn diff_names_changed_base_packages() {
        let old = sample().sets.remove(0);
        let mut new = old.clone();
        new.request.installed = vec!["libc6 2.36-9".to_owned()];

        assert_eq!(old.diff(&new), ["the packages installed in the base image changed"]);
    }

    #[test]
    fn diff_of_equal_sets_is_empty() {
        let set = sample().sets.remove(0);

        assert!(set.diff(&set).is_empty());
    }

    #[test]
    fn syntax_error_names_line() {
        let (_dir, path) = write_text("version = 2\n\n[[architecture]]\nname = \"amd64\n");

        let error = Lock::read(&path).unwrap_err().to_string();

        assert!(error.contains("line 4, column"), "{error}");
    }

    #[test]
    fn diff_names_changed_file_of_same_version() {
        let old = sample().sets.remove(0);
        let mut new = old.clone();
        new.packages[0].sha256 = "cd".repeat(32);

        assert_eq!(old.diff(&new), ["~ busybox 1:1.35.0-4+b3: another file, size or SHA256 for the same version"]);
    }
}

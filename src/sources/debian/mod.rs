//! Debian packages as image contents. The repository is found and its
//! `Release` signature checked. The Packages indexes are verified against
//! it and parsed, and the dependency closure is resolved and locked in
//! `kuul.lock`. The `.deb` files are downloaded into a shared
//! content-addressed cache and checked against their SHA256, and their
//! data members become layer entries. No maintainer script runs;
//! [`standins`] produces the files those scripts would.

pub mod apt_sources;
pub mod control;
pub mod fetch;
pub mod index;
pub mod installed;
pub mod lock;
pub mod release;
pub mod resolve;
pub mod standins;
pub mod unpack;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use apt_sources::AptSourcePaths;
use fetch::{Cache, Download, DownloadStats, Fetcher};
use lock::{Lock, LockRequest, LockedPackage, PackageSet};
use unpack::{PackageEntryKind, Unpacked};

use super::{Content, Entry, EntryKind};
use crate::report::Reporter;
use crate::spec::debian::Debian;

/// Settings of a build that do not come from kuul.toml.
#[derive(Debug, Clone)]
pub struct DebianOptions {
    /// A mirror URL that overrides kuul.toml and the apt sources; the CLI
    /// fills it from `KUUL_DEBIAN_MIRROR`.
    pub mirror_override: Option<String>,
    /// The directory of the download and unpack cache.
    pub cache_dir: PathBuf,
    /// The apt source lists searched when no mirror is configured.
    pub apt_sources: AptSourcePaths,
    pub lock_mode: LockMode,
    /// The build's platforms as `--platform` takes them, for the hint of a
    /// lock that lacks an architecture; `None` outside a build.
    pub platforms: Option<String>,
}

impl Default for DebianOptions {
    fn default() -> Self {
        DebianOptions {
            mirror_override: None,
            cache_dir: Cache::default_root(),
            apt_sources: AptSourcePaths::default(),
            lock_mode: LockMode::Update,
            platforms: None,
        }
    }
}

/// The way a build treats `kuul.lock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Use the lock when it was made for the same request; otherwise
    /// resolve again and rewrite it.
    Update,
    /// Resolve again and fail unless the result equals the lock (`--locked`).
    Locked,
}

/// An error from finding, verifying, resolving or unpacking packages.
#[derive(Debug, thiserror::Error)]
pub enum DebianError {
    #[error("failed to access `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "no Debian mirror configured for suite `{suite}` with components `{components}`\nhint: set `debian.mirror` in kuul.toml or the `KUUL_DEBIAN_MIRROR` environment variable, or add a matching `deb` entry to {searched}"
    )]
    NoMirror { suite: String, components: String, searched: String },

    #[error("failed to fetch `{url}`: {reason}\nhint: check that the mirror is reachable and serves this suite")]
    Fetch { url: String, reason: String },

    #[error(
        "repository has no `InRelease` or `Release` file under `{url}`\nhint: check `debian.suite` and the mirror URL"
    )]
    NoRelease { url: String },

    #[error(
        "repository `Release` file `{url}` is not signed\nhint: sign the repository, or set `debian.trusted = true` to accept it without a signature"
    )]
    Unsigned { url: String },

    #[error(
        "invalid signature on `{url}`: {reason}\n  keyring: `{}`\nhint: set `debian.keyring` to the keyring that signs this repository; `debian.trusted = true` skips the check",
        keyring.display()
    )]
    BadSignature { url: String, keyring: PathBuf, reason: String },

    #[error("failed to read keyring `{}`: {reason}\nhint: point `debian.keyring` at an OpenPGP keyring file", path.display())]
    Keyring { path: PathBuf, reason: String },

    #[error(
        "no Packages index for architecture `{architecture}` under `{url}` (the Release file lists architectures `{available}`)\nhint: build for a platform whose architecture the repository has (`--platform`, or `debian.architecture` in kuul.toml), and check `debian.components`"
    )]
    NoIndex { url: String, architecture: String, available: String },

    #[error(
        "repository `Release` file `{url}` expired at {valid_until}\nhint: the mirror serves an outdated copy of the repository; use an up-to-date mirror, or set `debian.check_valid_until = false` for an archive snapshot"
    )]
    ReleaseExpired { url: String, valid_until: String },

    #[error("invalid index `{url}`: {reason}")]
    InvalidIndex { url: String, reason: String },

    #[error(
        "checksum mismatch for {what}\n  expected: {expected}\n  actual:   {actual}\nhint: the mirror may be in the middle of an update, or the file was altered; try again later or use another mirror"
    )]
    ChecksumMismatch { what: String, expected: String, actual: String },

    #[error(
        "checksum mismatch for {what}\n  expected: {expected} (from kuul.lock or the Packages index)\n  actual:   {actual}\nhint: the mirror may be in the middle of an update, or the file was altered; try again later or use another mirror. When the mirror rebuilt the package, `kuul lock` records the file that its signed index lists now"
    )]
    PackageChecksumMismatch { what: String, expected: String, actual: String },

    #[error(transparent)]
    Resolve(Box<resolve::ResolveError>),

    #[error("invalid `{}`: {reason}\nhint: run `kuul lock {}` to write a new one", path.display(), job_dir(path).display())]
    InvalidLock { path: PathBuf, reason: String },

    #[error(
        "`{}` is missing\nhint: run `kuul lock {}` and commit the file, or build without `--locked`",
        path.display(),
        job_dir(path).display()
    )]
    LockMissing { path: PathBuf },

    #[error(
        "`{}` is out of date:\n  {}\nhint: run `kuul lock {}` to update it, or build without `--locked`",
        path.display(),
        changes.join("\n  "),
        job_dir(path).display()
    )]
    LockOutdated { path: PathBuf, changes: Vec<String> },

    #[error(
        "`{}` locks no packages for architecture `{architecture}`\nhint: run `kuul lock {} --platform {platforms}` with every platform the job is built for, or build without `--locked`",
        path.display(),
        job_dir(path).display()
    )]
    LockLacksArchitecture { path: PathBuf, architecture: String, platforms: String },

    #[error("invalid package file for `{package}`: {reason}")]
    InvalidDeb { package: String, reason: String },

    #[error(
        "package `{package}` contains `{path}`, which leads outside the image root\nhint: the package is broken or malicious; do not install it"
    )]
    PathTraversal { package: String, path: String },

    #[error(
        "packages `{first}` and `{second}` both contain `{path}` with different contents\nhint: remove one of them from `image.packages`, or the package that pulls it in"
    )]
    FileConflict { path: String, first: String, second: String },
}

/// Returns the job directory of a `kuul.lock` path, for the commands in
/// hints.
fn job_dir(lock_path: &Path) -> &Path {
    match lock_path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

impl From<resolve::ResolveError> for DebianError {
    fn from(error: resolve::ResolveError) -> Self {
        DebianError::Resolve(Box::new(error))
    }
}

/// The packages layer of an image.
#[derive(Debug)]
pub struct PackageLayer {
    pub entries: Vec<Entry>,
    /// Variables the stand-ins need, such as `SSL_CERT_FILE`.
    pub env: Vec<(String, String)>,
    pub packages: Vec<LockedPackage>,
    pub downloads: DownloadStats,
}

/// Resolves, downloads and unpacks `packages` for the job in `job_dir`.
///
/// `installed` are the packages of the base image (see [`installed`]),
/// which satisfy dependencies and are not installed again. `image_links`
/// are the paths that are symlinks in the layers below (`/bin`, `/lib`,
/// `/var/run`, ...): a package's directory entry at such a path is dropped,
/// so its contents land where the link points.
pub fn collect(
    packages: &[String],
    config: &Debian,
    job_dir: &Path,
    options: &DebianOptions,
    installed: &[index::Package],
    image_links: &BTreeSet<String>,
    reporter: &dyn Reporter,
) -> Result<PackageLayer, DebianError> {
    let architecture = architecture(config);
    let cache = Cache::open(&options.cache_dir)?;
    let mut repository = Repository::new(config, options, &architecture);

    reporter.step("resolve Debian packages");
    let lock = locked_packages(packages, config, job_dir, options, &architecture, installed, &mut repository)?;
    for package in already_installed(packages, installed) {
        reporter.step(&format!("skip Debian package {package}: already installed in the base image"));
    }

    let downloads: Vec<Download> = lock
        .packages
        .iter()
        .map(|package| Download { path: package.filename.clone(), sha256: package.sha256.clone(), size: package.size })
        .collect();
    let missing = downloads.iter().filter(|download| !cache.deb_path(&download.sha256).exists()).count();
    let mut stats = DownloadStats { cached: downloads.len(), ..Default::default() };
    if missing > 0 {
        reporter.step(&format!("download {missing} of {} Debian packages", downloads.len()));
        stats = repository.fetcher()?.download_all(&downloads, &cache, reporter)?;
    }

    reporter.step(&format!("unpack {} Debian packages", lock.packages.len()));
    let unpacked = unpack_all(&cache, &lock.packages)?;

    let mut entries = layer_entries(&cache, &unpacked, image_links)?;
    let stand_ins = standins::build(&cache, &unpacked, &architecture)?;
    entries.extend(stand_ins.entries);

    Ok(PackageLayer { entries, env: stand_ins.env, packages: lock.packages, downloads: stats })
}

/// An architecture that `kuul lock` resolves packages for.
#[derive(Debug, Clone)]
pub struct LockTarget {
    /// The Debian architecture.
    pub architecture: String,
    /// The packages installed in the platform's base image; empty on
    /// `scratch`.
    pub installed: Vec<index::Package>,
}

/// Resolves the packages again for each of `targets` and writes
/// `kuul.lock` with exactly those architectures, keeping its base pin
/// (`kuul lock`).
pub fn refresh_lock(
    packages: &[String],
    config: &Debian,
    job_dir: &Path,
    options: &DebianOptions,
    targets: &[LockTarget],
) -> Result<Lock, DebianError> {
    let lock_path = job_dir.join(lock::LOCK_FILE);
    let mut lock = Lock { base: Lock::read(&lock_path)?.and_then(|existing| existing.base), sets: Vec::new() };

    for target in targets {
        let mut repository = Repository::new(config, options, &target.architecture);
        let request = lock_request(packages, config, &target.architecture, &target.installed);
        let resolved = repository.resolve(packages, &target.installed)?;
        lock.put_set(PackageSet::new(request, resolved));
    }

    lock.write(&lock_path)?;
    Ok(lock)
}

/// Returns the requested names that a package in `installed` has or
/// provides, as `name (installed version)`.
fn already_installed(packages: &[String], installed: &[index::Package]) -> Vec<String> {
    packages
        .iter()
        .filter_map(|name| {
            let package = installed.iter().find(|package| {
                &package.name == name || package.provides.iter().flatten().any(|provided| &provided.name == name)
            })?;
            Some(format!("`{name}` ({} {})", package.name, package.version))
        })
        .collect()
}

/// Returns the Debian architecture to install: `debian.architecture`, else
/// the build machine's.
pub fn architecture(config: &Debian) -> String {
    config.architecture.clone().unwrap_or_else(|| debian_architecture(crate::build::host_architecture()).to_owned())
}

/// Maps an OCI (GOARCH) architecture name to Debian's.
pub fn debian_architecture(oci: &str) -> &str {
    match oci {
        "386" => "i386",
        "arm" => "armhf",
        "ppc64le" => "ppc64el",
        "mips64le" => "mips64el",
        other => other,
    }
}

/// Maps a Debian architecture name to the OCI (GOARCH) one.
pub fn oci_architecture(debian: &str) -> &str {
    match debian {
        "i386" => "386",
        "armhf" | "armel" => "arm",
        "ppc64el" => "ppc64le",
        "mips64el" => "mips64le",
        other => other,
    }
}

/// Applies the lock mode to the packages of `architecture`: returns the
/// set to build from, resolving and writing `kuul.lock` when needed. The
/// sets of other architectures stay as they are unless kuul.toml no longer
/// requests them.
fn locked_packages(
    packages: &[String],
    config: &Debian,
    job_dir: &Path,
    options: &DebianOptions,
    architecture: &str,
    installed: &[index::Package],
    repository: &mut Repository,
) -> Result<PackageSet, DebianError> {
    let lock_path = job_dir.join(lock::LOCK_FILE);
    let request = lock_request(packages, config, architecture, installed);
    let existing = Lock::read(&lock_path)?;
    let existing_set = existing.as_ref().and_then(|lock| lock.set(architecture)).cloned();

    match (options.lock_mode, existing, existing_set) {
        (LockMode::Update, _, Some(set)) if set.request == request => Ok(set),
        (LockMode::Locked, None, _) => Err(DebianError::LockMissing { path: lock_path }),
        (LockMode::Locked, Some(_), None) => Err(DebianError::LockLacksArchitecture {
            path: lock_path,
            architecture: architecture.to_owned(),
            platforms: options.platforms.clone().unwrap_or_else(|| "PLATFORMS".to_owned()),
        }),
        (LockMode::Locked, Some(_), Some(set)) => {
            let fresh = PackageSet::new(request, repository.resolve(packages, installed)?);
            let changes = set.diff(&fresh);
            if changes.is_empty() { Ok(set) } else { Err(DebianError::LockOutdated { path: lock_path, changes }) }
        }
        (LockMode::Update, existing, _) => {
            // The base pin belongs to the build's base step, so it is kept.
            let fresh = PackageSet::new(request.clone(), repository.resolve(packages, installed)?);
            let mut lock = existing.unwrap_or_default();
            lock.retain_current(&request);
            lock.put_set(fresh.clone());
            lock.write(&lock_path)?;
            Ok(fresh)
        }
    }
}

fn lock_request(packages: &[String], config: &Debian, architecture: &str, installed: &[index::Package]) -> LockRequest {
    LockRequest {
        packages: packages.to_vec(),
        suite: config.suite.clone(),
        components: config.components.clone(),
        architecture: architecture.to_owned(),
        installed: installed.iter().map(|package| format!("{} {}", package.name, package.version)).collect(),
    }
}

/// The repository, opened on first use so that a build from a lock with
/// every package cached needs no mirror at all.
struct Repository<'a> {
    config: &'a Debian,
    options: &'a DebianOptions,
    architecture: String,
    fetcher: Option<Fetcher>,
    keyring: Option<PathBuf>,
}

impl<'a> Repository<'a> {
    fn new(config: &'a Debian, options: &'a DebianOptions, architecture: &str) -> Repository<'a> {
        Repository { config, options, architecture: architecture.to_owned(), fetcher: None, keyring: None }
    }

    fn fetcher(&mut self) -> Result<&Fetcher, DebianError> {
        if self.fetcher.is_none() {
            let (mirror, signed_by) = self.mirror()?;
            self.keyring = Some(release::keyring_path(self.config.keyring.as_deref(), signed_by.as_deref()));
            self.fetcher = Some(Fetcher::new(&mirror)?);
        }
        Ok(self.fetcher.as_ref().expect("set above"))
    }

    /// Returns the mirror URL and the apt source's `Signed-By` keyring: from
    /// the override, else kuul.toml, else the first matching apt source.
    fn mirror(&self) -> Result<(String, Option<PathBuf>), DebianError> {
        if let Some(mirror) = self.options.mirror_override.clone().or_else(|| self.config.mirror.clone()) {
            return Ok((mirror, None));
        }

        let sources = apt_sources::read(&self.options.apt_sources);
        let found = apt_sources::find(&sources, &self.config.suite, &self.config.components, &self.architecture);
        match found {
            Some(source) => Ok((source.uri.clone(), source.signed_by.clone())),
            None => Err(DebianError::NoMirror {
                suite: self.config.suite.clone(),
                components: self.config.components.join(" "),
                searched: format!(
                    "`{}` or `{}`",
                    self.options.apt_sources.list_file.display(),
                    self.options.apt_sources.list_dir.display()
                ),
            }),
        }
    }

    /// Fetches and verifies the indexes and resolves `packages` on top of
    /// `installed`.
    fn resolve(
        &mut self,
        packages: &[String],
        installed: &[index::Package],
    ) -> Result<Vec<LockedPackage>, DebianError> {
        let trusted = self.config.trusted;
        let suite = self.config.suite.clone();
        let components = self.config.components.clone();
        let architecture = self.architecture.clone();
        self.fetcher()?;
        let keyring = self.keyring.clone().expect("set by fetcher()");
        let fetcher = self.fetcher.as_ref().expect("opened by fetcher()");

        let trust = if trusted { release::Trust::Trusted } else { release::Trust::Keyring(&keyring) };
        let release = release::fetch(fetcher, &suite, &trust, self.config.check_valid_until)?;
        let texts = index::fetch_indexes(fetcher, &suite, &release, &components, &architecture)?;

        let mut all = Vec::new();
        let mut invalid = Vec::new();
        for text in &texts {
            index::parse_packages(text, &mut all, &mut invalid);
        }
        if let Some(reason) = invalid.first() {
            tracing::warn!("skipped {} invalid stanzas in the Packages index, the first: {reason}", invalid.len());
        }

        let universe = resolve::Universe::new(&all, &architecture);
        let resolution = resolve::resolve(&universe, installed, packages)?;
        Ok(resolution.chosen.into_iter().map(|index| locked(universe.package(index))).collect())
    }
}

fn locked(package: &index::Package) -> LockedPackage {
    LockedPackage {
        name: package.name.clone(),
        version: package.version.to_string(),
        architecture: package.architecture.clone(),
        filename: package.filename.clone(),
        size: package.size,
        sha256: package.sha256.clone(),
    }
}

/// Unpacks every package, two at a time, since xz decompression is the
/// slow part. Returns `(name, contents)` sorted by name.
fn unpack_all(cache: &Cache, packages: &[LockedPackage]) -> Result<Vec<(String, Unpacked)>, DebianError> {
    let workers = std::thread::available_parallelism().map(usize::from).unwrap_or(1).clamp(1, 4);
    let chunk_size = packages.len().div_ceil(workers).max(1);

    let results: Vec<Result<Vec<(String, Unpacked)>, DebianError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = packages
            .chunks(chunk_size)
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|package| {
                            Ok((package.name.clone(), unpack::unpack_cached(cache, &package.sha256, &package.name)?))
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().expect("unpack thread panicked")).collect()
    });

    let mut unpacked = Vec::with_capacity(packages.len());
    for result in results {
        unpacked.extend(result?);
    }
    unpacked.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(unpacked)
}

/// Turns the packages' entries into layer entries. Directories shared by
/// several packages are kept once (the first package's), identical files
/// are merged, and a directory at one of `image_links` is dropped.
fn layer_entries(
    cache: &Cache,
    packages: &[(String, Unpacked)],
    image_links: &BTreeSet<String>,
) -> Result<Vec<Entry>, DebianError> {
    let mut by_path: BTreeMap<String, (String, Entry)> = BTreeMap::new();

    for (name, unpacked) in packages {
        for package_entry in &unpacked.entries {
            let is_directory = matches!(package_entry.kind, PackageEntryKind::Directory);
            if is_directory && image_links.contains(&package_entry.path) {
                continue;
            }

            let entry = to_entry(cache, package_entry);
            match by_path.get(&entry.path) {
                None => {
                    by_path.insert(entry.path.clone(), (name.clone(), entry));
                }
                Some((_, existing))
                    if existing == &entry || (is_directory && existing.kind == EntryKind::Directory) => {}
                Some((first, _)) => {
                    return Err(DebianError::FileConflict {
                        path: entry.path.clone(),
                        first: first.clone(),
                        second: name.clone(),
                    });
                }
            }
        }
    }
    Ok(by_path.into_values().map(|(_, entry)| entry).collect())
}

fn to_entry(cache: &Cache, entry: &unpack::PackageEntry) -> Entry {
    let kind = match &entry.kind {
        PackageEntryKind::Directory => EntryKind::Directory,
        PackageEntryKind::File { sha256, size } => {
            EntryKind::File { content: Content::Host(cache.file_path(sha256)), size: *size }
        }
        PackageEntryKind::Symlink { target } => EntryKind::Symlink { target: target.clone() },
        PackageEntryKind::Hardlink { target } => EntryKind::Hardlink { target: target.clone() },
    };
    Entry { path: entry.path.clone(), kind, mode: entry.mode, uid: entry.uid, gid: entry.gid }
}

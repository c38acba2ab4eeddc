//! The build pipeline: `kuul.toml` to layers to an image in an OCI layout.
//!
//! Layers are ordered slowest-changing first, so that editing a script
//! changes only the last layer: system files, then host binaries and links,
//! then job files.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};

pub mod base_pin;
mod base_step;
pub mod platforms;

use crate::image::base::manifest::Platform;
use crate::image::index::{BuiltIndex, PlatformImage};
use crate::image::layout::Layout;
use crate::image::tree::ImageTree;
use crate::image::{self, BuiltImage, ImageSettings};
use crate::report::Reporter;
use crate::sources::{self, Content, Entry, EntryKind, LayerContent};
use crate::spec::{self, Spec};

/// The `PATH` every image starts with; directories of host binaries outside
/// it are appended.
pub const BASE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The file in a job directory that describes the job.
pub const SPEC_FILE: &str = "kuul.toml";

/// The default OCI layout directory, relative to the job directory.
pub const DEFAULT_LAYOUT: &str = ".kuul/oci";

/// Inputs of a build besides the job directory.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The OCI layout directory; [`DEFAULT_LAYOUT`] under the job directory
    /// when `None`.
    pub layout_dir: Option<PathBuf>,
    /// Creation time and file mtime in seconds since the Unix epoch.
    pub created: i64,
    /// The build machine's `PATH`, searched for bare binary names.
    pub search_path: OsString,
    /// Mirror override, cache and lock handling for `image.packages`; the
    /// lock mode applies to the base image pin too.
    pub debian: sources::debian::DebianOptions,
    /// Platforms to build, from `--platform`. Empty means the one platform
    /// that `debian.architecture` or the build machine implies.
    pub platforms: Vec<Platform>,
    /// Registries besides loopback ones that the base image is pulled from
    /// over plain HTTP (`--insecure-registry`).
    pub insecure_registries: Vec<String>,
}

/// A finished build.
#[derive(Debug)]
pub struct Build {
    pub spec: Spec,
    pub layout: Layout,
    /// The image, or in a multi-platform build the first platform's image.
    pub image: BuiltImage,
    /// The tag the image carries in the layout and in the registry.
    pub tag: String,
    /// The container command; see [`container_command`].
    pub command: Vec<String>,
    /// The Debian packages installed from `image.packages`, with their
    /// download counts; `None` when the job lists no packages. In a
    /// multi-platform build, the first platform's.
    pub packages: Option<PackagesSummary>,
    /// The packages of each platform in a multi-platform build, in the
    /// order of the index; empty for one platform.
    pub platform_packages: Vec<Option<PackagesSummary>>,
    /// The base image's repository and layer digests, for blob mounts when
    /// the image is pushed to the base's registry; `None` for `scratch`.
    pub base_blobs: Option<crate::registry::MountSource>,
    /// The image index of a multi-platform build; `None` for one platform.
    pub index: Option<BuiltIndex>,
}

impl Build {
    /// Returns the digest that the tag names: the index's in a
    /// multi-platform build, else the image manifest's.
    pub fn digest(&self) -> &str {
        match &self.index {
            Some(index) => &index.descriptor.digest,
            None => &self.image.manifest.digest,
        }
    }
}

/// The packages a build installed and the download counts for them.
#[derive(Debug, Clone)]
pub struct PackagesSummary {
    pub packages: Vec<sources::debian::lock::LockedPackage>,
    pub downloads: sources::debian::fetch::DownloadStats,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    #[error(transparent)]
    Source(#[from] sources::SourceError),
    #[error(transparent)]
    Tree(#[from] image::tree::TreeError),
    #[error(transparent)]
    Image(#[from] image::ImageError),
    #[error(transparent)]
    Base(#[from] image::base::BaseError),
    #[error(transparent)]
    Pull(#[from] crate::registry::pull::PullError),
    #[error(transparent)]
    Platform(#[from] platforms::PlatformError),
    #[error(transparent)]
    BasePin(#[from] base_pin::BasePinError),
    #[error("{message}\nhint: {hint}")]
    Command { message: String, hint: String },
}

/// Builds the job in `job_dir` into an OCI layout and tags it there.
///
/// One platform gives one image manifest, tagged as it is. Several give one
/// image per platform and an image index over them, and the tag names the
/// index. A failed build removes the layout directory when it created it,
/// so a half-built layout never looks like a result.
pub fn build(job_dir: &Path, options: &BuildOptions, reporter: &dyn Reporter) -> Result<Build, BuildError> {
    let layout_dir = options.layout_dir.clone().unwrap_or_else(|| job_dir.join(DEFAULT_LAYOUT));
    // The outermost directory the build may create, such as `JOB/.kuul`.
    let created = layout_dir.ancestors().take_while(|dir| !dir.as_os_str().is_empty() && !dir.exists()).last();
    let created = created.map(Path::to_path_buf);

    let result = build_into(job_dir, &layout_dir, options, reporter);
    if result.is_err()
        && let Some(created) = &created
        && let Err(error) = std::fs::remove_dir_all(created)
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("failed to remove the unfinished layout `{}`: {error}", created.display());
    }
    result
}

fn build_into(
    job_dir: &Path,
    layout_dir: &Path,
    options: &BuildOptions,
    reporter: &dyn Reporter,
) -> Result<Build, BuildError> {
    let spec = spec::load(&job_dir.join(SPEC_FILE))?;
    let platforms = platforms::resolve(&spec, &options.platforms, &image_architecture(&spec))?;
    let tag = spec.tag().to_owned();
    let mut options = options.clone();
    options.debian.platforms = Some(platforms.iter().map(Platform::to_string).collect::<Vec<_>>().join(","));
    let options = &options;

    if let [platform] = platforms.as_slice() {
        let built = build_platform(&spec, job_dir, options, platform, layout_dir, reporter)?;
        built.layout.tag(&built.image, &tag)?;
        remove_unreferenced(&built.layout, reporter)?;
        return Ok(Build {
            spec,
            layout: built.layout,
            image: built.image,
            tag,
            command: built.command,
            packages: built.packages,
            base_blobs: built.base_blobs,
            index: None,
            platform_packages: Vec::new(),
        });
    }

    let mut images = Vec::with_capacity(platforms.len());
    let mut builds = Vec::with_capacity(platforms.len());
    for platform in &platforms {
        reporter.step(&format!("platform {platform}"));
        let built = build_platform(&spec, job_dir, options, platform, layout_dir, reporter)?;
        images.push(PlatformImage { platform: platform.clone(), image: built.image.clone() });
        builds.push(built);
    }

    let platform_packages = builds.iter().map(|built| built.packages.clone()).collect();
    let first = builds.remove(0);
    let index_descriptor = image::index::write_index(&first.layout, &images)?;
    first.layout.tag_descriptor(&index_descriptor, &tag)?;
    remove_unreferenced(&first.layout, reporter)?;

    let base_blobs = merge_mount_sources(first.base_blobs, builds.into_iter().map(|built| built.base_blobs));
    Ok(Build {
        spec,
        layout: first.layout,
        image: first.image,
        tag,
        command: first.command,
        packages: first.packages,
        base_blobs,
        index: Some(BuiltIndex { descriptor: index_descriptor, images }),
        platform_packages,
    })
}

/// Removes the blobs of earlier builds that no tag in the layout uses any
/// more, so a layout that is built into again and again does not grow.
fn remove_unreferenced(layout: &Layout, reporter: &dyn Reporter) -> Result<(), BuildError> {
    let removed = layout.remove_unreferenced_blobs()?;
    if removed > 0 {
        reporter.step(&format!("remove {removed} blobs that no tag in the layout uses"));
    }
    Ok(())
}

/// One platform's image, written into the layout but not tagged.
struct PlatformBuild {
    layout: Layout,
    image: BuiltImage,
    command: Vec<String>,
    packages: Option<PackagesSummary>,
    base_blobs: Option<crate::registry::MountSource>,
}

/// Builds the image for `platform`: pulls its base, collects the files and
/// packages of its architecture, and checks the command and its interpreter.
fn build_platform(
    spec: &Spec,
    job_dir: &Path,
    options: &BuildOptions,
    platform: &Platform,
    layout_dir: &Path,
    reporter: &dyn Reporter,
) -> Result<PlatformBuild, BuildError> {
    let (uid, gid) = spec.image.user_ids();
    let architecture = platform.architecture.as_str();
    let spec = &spec_for_platform(spec, platform);

    let base = base_step::pull_and_import(spec, job_dir, options, platform, layout_dir, reporter)?;

    reporter.step("collect files");
    let mut layers = collect_layers(spec, job_dir, options, uid, gid, architecture)?;
    if let Some(base) = &base {
        layers[0].entries = image::base::system::entries_on_base(&base.tree, uid, gid, architecture);
    }
    let base_tree = base.as_ref().map(|base| &base.tree);
    let (package_env, packages) = add_package_layer(spec, job_dir, options, base_tree, &mut layers, reporter)?;

    let mut tree = base.as_ref().map(|base| base.tree.clone()).unwrap_or_else(ImageTree::new);
    let mut normalized = Vec::with_capacity(layers.len());
    for layer in layers {
        let layer = tree.add_layer(layer)?;
        // On a base, the system files or the packages can add nothing, and
        // an empty layer would only be a blob to push and pull.
        if !layer.entries.is_empty() {
            normalized.push(layer);
        }
    }

    let mut path_var = image_path_var(&spec.image.binaries, &options.search_path);
    if let Some(base) = &base {
        path_var = image::base::config::merge_path(&base.config.env, &path_var);
    }
    let program = resolve_program(spec, &tree, &path_var)?;
    let program_from_base = base.as_ref().is_some_and(|base| {
        base.tree.resolve(&program).map(|(_, entry)| entry) == tree.resolve(&program).map(|(_, entry)| entry)
    });
    check_interpreter(&tree, &program, &path_var, program_from_base, !spec.image.packages.is_empty())?;
    let command = container_command(spec, job_dir);

    let mut settings = image_settings(spec, &command, &path_var, uid, gid, options.created, architecture);
    settings.variant = platform.variant.clone();
    settings.env.extend(package_env);
    if let Some(base) = &base {
        base_step::merge_settings(&mut settings, base);
    }
    let layout = Layout::open_or_create(layout_dir)?;
    let cache_dir = &options.debian.cache_dir;
    let layer_cache = image::layer_cache::LayerCache::new(cache_dir, vec![cache_dir.join("files")]);
    let image = image::build_on_base(&layout, base.as_ref(), &normalized, &settings, Some(&layer_cache), reporter)?;

    let base_blobs = base.as_ref().map(base_step::mount_source).transpose()?;
    Ok(PlatformBuild { layout, image, command, packages, base_blobs })
}

/// Returns `spec` with `debian.architecture` set as
/// [`platforms::package_architecture`] gives it when the job installs
/// packages, so they are resolved for the platform being built.
fn spec_for_platform(spec: &Spec, platform: &Platform) -> Spec {
    let mut spec = spec.clone();
    if !spec.image.packages.is_empty() {
        spec.debian.architecture = Some(platforms::package_architecture(&spec, platform));
    }
    spec
}

/// Combines the base layers of every platform into one mount source. All
/// platforms pull the same base reference, so they share its repository.
fn merge_mount_sources(
    first: Option<crate::registry::MountSource>,
    rest: impl Iterator<Item = Option<crate::registry::MountSource>>,
) -> Option<crate::registry::MountSource> {
    let mut merged = first?;
    for source in rest.flatten() {
        for digest in source.digests {
            if !merged.digests.contains(&digest) {
                merged.digests.push(digest);
            }
        }
    }
    Some(merged)
}

/// Returns the image's architecture: `debian.architecture` (in OCI terms)
/// when the job installs packages and sets it, else the build machine's.
pub fn image_architecture(spec: &Spec) -> String {
    match &spec.debian.architecture {
        Some(architecture) if !spec.image.packages.is_empty() => {
            sources::debian::oci_architecture(architecture).to_owned()
        }
        _ => host_architecture().to_owned(),
    }
}

/// Inserts the Debian packages layer right after the system files, so it
/// comes before the faster-changing host binaries and job files. Returns
/// the `NAME=value` variables its stand-ins need and a summary.
///
/// On a base image, the packages that the base's dpkg database lists count
/// as installed, and the base's symlinks are kept.
fn add_package_layer(
    spec: &Spec,
    job_dir: &Path,
    options: &BuildOptions,
    base_tree: Option<&ImageTree>,
    layers: &mut Vec<LayerContent>,
    reporter: &dyn Reporter,
) -> Result<(Vec<String>, Option<PackagesSummary>), BuildError> {
    if spec.image.packages.is_empty() {
        return Ok((Vec::new(), None));
    }

    // The system files layer comes first and, without a base, makes
    // `/bin`, `/lib`, ... symlinks into `/usr`. A base brings its own.
    let base_entries = base_tree.into_iter().flat_map(ImageTree::entries);
    let image_links: BTreeSet<String> = layers[0]
        .entries
        .iter()
        .chain(base_entries)
        .filter(|entry| matches!(entry.kind, EntryKind::Symlink { .. }))
        .map(|entry| entry.path.clone())
        .collect();

    let installed = match base_tree {
        Some(tree) => base_packages(tree),
        None => Vec::new(),
    };
    let layer = sources::debian::collect(
        &spec.image.packages,
        &spec.debian,
        job_dir,
        &options.debian,
        &installed,
        &image_links,
        reporter,
    )
    .map_err(sources::SourceError::from)?;

    layers.insert(1, LayerContent { description: "Debian packages".to_owned(), entries: layer.entries });
    let env = layer.env.into_iter().map(|(name, value)| format!("{name}={value}")).collect();
    Ok((env, Some(PackagesSummary { packages: layer.packages, downloads: layer.downloads })))
}

/// Pulls the base image `reference` for `platform` and returns the packages
/// its dpkg database lists, for `kuul lock`, which resolves packages on
/// top of them without building.
pub fn base_installed_packages(
    reference: &crate::registry::BaseReference,
    platform: &Platform,
    pull_options: &crate::registry::pull::PullOptions,
    runtime: &tokio::runtime::Runtime,
    reporter: &dyn Reporter,
) -> Result<Vec<sources::debian::index::Package>, BuildError> {
    let pulled = runtime.block_on(crate::registry::pull::pull_base(reference, platform, pull_options, reporter))?;
    let tree = image::base::read_filesystem(&pulled)?;
    Ok(base_packages(&tree))
}

/// Reads the packages installed in a base image, warning about stanzas of
/// its dpkg database that cannot be parsed.
fn base_packages(tree: &ImageTree) -> Vec<sources::debian::index::Package> {
    let (installed, invalid) = sources::debian::installed::from_tree(tree);
    if let Some(reason) = invalid.first() {
        tracing::warn!(
            "skipped {} invalid stanzas in the base image's dpkg database, the first: {reason}",
            invalid.len()
        );
    }
    installed
}

fn collect_layers(
    spec: &Spec,
    job_dir: &Path,
    options: &BuildOptions,
    uid: u32,
    gid: u32,
    architecture: &str,
) -> Result<Vec<LayerContent>, BuildError> {
    let mut layers = vec![LayerContent {
        description: "system files".to_owned(),
        entries: sources::system_files::collect(uid, gid, architecture),
    }];

    let mut binaries = sources::host_binaries::collect(&spec.image.binaries, &options.search_path)?;
    binaries.extend(spec.image.symlinks.iter().map(|(link, target)| Entry::symlink(link.clone(), target.clone())));
    if !binaries.is_empty() {
        layers.push(LayerContent { description: "host binaries".to_owned(), entries: binaries });
    }

    let job_files = sources::job_files::collect(job_dir, spec.image.files.as_deref(), &spec.image.workdir, uid, gid)?;
    layers.push(LayerContent { description: "job files".to_owned(), entries: job_files });
    Ok(layers)
}

/// Builds the image's `PATH`: [`BASE_PATH`] plus the directory of every host
/// binary that is not already on it, in the order the binaries are listed.
fn image_path_var(binaries: &[String], search_path: &OsString) -> String {
    let mut directories: Vec<String> = BASE_PATH.split(':').map(str::to_owned).collect();
    for binary in binaries {
        let located = if binary.starts_with('/') {
            Some(PathBuf::from(binary))
        } else {
            std::env::split_paths(search_path).map(|dir| dir.join(binary)).find(|path| path.is_file())
        };
        let Some(parent) = located.as_deref().and_then(Path::parent).and_then(Path::to_str) else {
            continue;
        };
        let parent = parent.to_owned();
        if !directories.contains(&parent) && !is_merged_alias(&parent, &directories) {
            directories.push(parent);
        }
    }
    directories.join(":")
}

/// Checks whether `dir` is `/bin` or `/sbin` and its `/usr` twin is already
/// listed. The image's merged-/usr symlinks make them the same directory.
fn is_merged_alias(dir: &str, directories: &[String]) -> bool {
    ["/bin", "/sbin"].contains(&dir) && directories.contains(&format!("/usr{dir}"))
}

/// Returns `job.command` as the container runs it. A relative program path
/// (`./run.sh`, `bin/run`) or the name of a job file becomes absolute under
/// the workdir. Any other bare name is kept, and the runtime finds it on the
/// image's `PATH`.
pub fn container_command(spec: &Spec, job_dir: &Path) -> Vec<String> {
    let mut argv = spec.job.command.argv();
    let program = &argv[0];
    if !program.starts_with('/') && (program.contains('/') || job_dir.join(program).is_file()) {
        argv[0] = workdir_path(spec, program);
    }
    argv
}

fn workdir_path(spec: &Spec, relative: &str) -> String {
    let workdir = spec.image.workdir.trim_end_matches('/');
    format!("{workdir}/{}", relative.trim_start_matches("./"))
}

/// Resolves `job.command[0]` to an absolute path inside the image, as the
/// container runtime will: see [`container_command`], then a bare name is
/// looked up on the image's `PATH` the way `execvp` does.
fn resolve_program(spec: &Spec, tree: &ImageTree, path_var: &str) -> Result<String, BuildError> {
    let program = spec.job.command.argv().swap_remove(0);
    let in_workdir = workdir_path(spec, &program);

    let resolved = if program.starts_with('/') {
        Some(program.clone())
    } else if program.contains('/') || tree.contains(&in_workdir) {
        Some(in_workdir)
    } else {
        path_var.split(':').map(|dir| format!("{dir}/{program}")).find(|path| tree.contains(path))
    };

    let Some(resolved) = resolved.filter(|path| tree.contains(path)) else {
        if program.contains(char::is_whitespace) {
            return Err(BuildError::Command {
                message: format!("command `{program}` from `job.command` is not in the image"),
                hint: "`job.command` runs no shell, so give the program and each argument as separate items, \
                       such as `[\"job.sh\", \"--verbose\"]`"
                    .to_owned(),
            });
        }
        let hint = if spec.image.packages.is_empty() {
            format!(
                "list the script in `image.files` (it is placed under `{}`), or add the program to `image.binaries`",
                spec.image.workdir
            )
        } else {
            format!(
                "list the script in `image.files` (it is placed under `{}`), add a package that installs the program to `image.packages`, or link the name to a program in `[image.symlinks]`; Debian's busybox package installs no `sh`, so a shell needs `\"/bin/sh\" = \"busybox\"`",
                spec.image.workdir
            )
        };
        return Err(BuildError::Command {
            message: format!("command `{program}` from `job.command` is not in the image"),
            hint,
        });
    };

    let (_, entry) = tree.resolve(&resolved).expect("contains() checked the path");
    if entry.mode & 0o111 == 0 {
        return Err(BuildError::Command {
            message: format!("command `{resolved}` is not executable"),
            hint: "run `chmod +x` on the script in the job directory".to_owned(),
        });
    }
    Ok(resolved)
}

/// Checks that the program's interpreter exists in the image: the `#!` line
/// of a script (including `#!/usr/bin/env NAME`) or the ELF interpreter of a
/// dynamically linked program. A missing interpreter would otherwise only
/// show up when the CronJob runs, as `exec format error` or `no such file`.
/// `from_base` marks a program that is the base image's own file, which
/// changes only the hint.
fn check_interpreter(
    tree: &ImageTree,
    program: &str,
    path_var: &str,
    from_base: bool,
    has_packages: bool,
) -> Result<(), BuildError> {
    let (resolved, entry) = tree.resolve(program).expect("resolve_program() checked the path");
    // Base layers may store a program as a hard link to another path.
    let entry = match &entry.kind {
        EntryKind::Hardlink { target } => tree.entry(target).unwrap_or(entry),
        _ => entry,
    };
    let head = read_head(entry).map_err(|error| BuildError::Command {
        message: format!("failed to read command `{resolved}`: {error}"),
        hint: "check that the file is readable".to_owned(),
    })?;

    if let Some(line) = head.strip_prefix(b"#!") {
        let line = line.split(|&b| b == b'\n').next().unwrap_or_default();
        let line = String::from_utf8_lossy(line);
        let mut words = line.split_whitespace();
        let interpreter = words.next().unwrap_or_default().to_owned();
        if interpreter.is_empty() {
            return Err(missing_interpreter(
                program,
                "(empty)",
                "write an interpreter after `#!`, such as `#!/bin/sh`",
            ));
        }
        if !tree.contains(&interpreter) {
            return Err(missing_interpreter(program, &interpreter, &interpreter_hint(&interpreter, has_packages)));
        }
        if interpreter.rsplit('/').next() == Some("env") {
            let name = words.find(|word| !word.starts_with('-')).unwrap_or_default();
            let found = name.contains('/') && tree.contains(name)
                || path_var.split(':').any(|dir| tree.contains(&format!("{dir}/{name}")));
            if name.is_empty() || !found {
                return Err(missing_interpreter(
                    program,
                    &format!("{interpreter} {name}"),
                    &format!("`{name}` must be on the image PATH `{path_var}`; add it to `image.binaries`"),
                ));
            }
        }
        return Ok(());
    }

    if head.starts_with(b"\x7fELF")
        && let Some(interpreter) = elf_interpreter(entry)
        && !tree.contains(&interpreter)
    {
        let hint = if from_base {
            format!(
                "the program comes from the base image, which lacks its loader; use a base image that contains \
                 `{interpreter}`, or add the program to `image.binaries` so kuul copies its loader and libraries"
            )
        } else {
            "add the program to `image.binaries` so kuul copies its loader and libraries".to_owned()
        };
        return Err(missing_interpreter(program, &interpreter, &hint));
    }
    Ok(())
}

fn missing_interpreter(program: &str, interpreter: &str, hint: &str) -> BuildError {
    BuildError::Command {
        message: format!("interpreter `{interpreter}` of command `{program}` is not in the image"),
        hint: hint.to_owned(),
    }
}

/// Suggests how to add a missing interpreter: from Debian packages when
/// the job installs any, else from the build machine.
fn interpreter_hint(interpreter: &str, has_packages: bool) -> String {
    let name = interpreter.rsplit('/').next().unwrap_or(interpreter);
    if has_packages {
        return match name {
            "sh" | "ash" | "env" => format!(
                "add `busybox` to `image.packages` and `\"{interpreter}\" = \"busybox\"` to `[image.symlinks]`, because Debian's busybox package installs no `{name}` link"
            ),
            _ => format!(
                "add the package that installs `{interpreter}` to `image.packages`, or change the `#!` line to a program the image has"
            ),
        };
    }
    match name {
        "env" => format!(
            "add `busybox` to `image.binaries` and `\"{interpreter}\" = \"busybox\"` to `[image.symlinks]`; \
             the program that `env` starts must be in the image too"
        ),
        "sh" | "ash" => format!(
            "add `busybox` to `image.binaries` and `\"{interpreter}\" = \"busybox\"` to `[image.symlinks]`, or add `dash` to `image.binaries`"
        ),
        _ => format!("add `{name}` to `image.binaries`, or change the `#!` line to a program the image has"),
    }
}

/// Reads the first bytes of a file entry: enough for a `#!` line.
fn read_head(entry: &Entry) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    match &entry.kind {
        EntryKind::File { content: Content::Inline(bytes), .. } => {
            head.extend_from_slice(&bytes[..bytes.len().min(512)]);
        }
        EntryKind::File { content: Content::Host(path), .. } => {
            std::fs::File::open(path)?.take(512).read_to_end(&mut head)?;
        }
        _ => {}
    }
    Ok(head)
}

/// Returns the ELF interpreter of a file entry. A base image's executable
/// is kept as a prefix that reaches the interpreter path, which
/// [`image::elf::interpreter`] reads like a whole file.
fn elf_interpreter(entry: &Entry) -> Option<String> {
    let EntryKind::File { content, .. } = &entry.kind else {
        return None;
    };
    match content {
        Content::Inline(bytes) => image::elf::interpreter(bytes),
        Content::Host(path) => image::elf::interpreter(&std::fs::read(path).ok()?),
    }
}

fn image_settings(
    spec: &Spec,
    command: &[String],
    path_var: &str,
    uid: u32,
    gid: u32,
    created: i64,
    architecture: &str,
) -> ImageSettings {
    let mut env = vec![format!("PATH={path_var}")];
    let home = match uid {
        0 => "/root",
        spec::NONROOT_ID => "/home/nonroot",
        _ => sources::system_files::JOB_HOME,
    };
    env.push(format!("HOME={home}"));

    let mut labels = spec.image.labels.clone();
    labels.insert("dev.kuul.job".to_owned(), spec.job.name.clone());

    let created_text = jiff::Timestamp::from_second(created)
        .map(|timestamp| timestamp.to_string())
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned());
    let mut annotations = std::collections::BTreeMap::new();
    annotations.insert("org.opencontainers.image.title".to_owned(), spec.job.name.clone());
    annotations.insert("org.opencontainers.image.created".to_owned(), created_text);

    ImageSettings {
        entrypoint: command.to_vec(),
        env,
        user: format!("{uid}:{gid}"),
        workdir: spec.image.workdir.clone(),
        labels,
        annotations,
        created,
        architecture: architecture.to_owned(),
        variant: None,
        os: "linux".to_owned(),
    }
}

/// Returns the build machine's architecture in the names OCI uses (GOARCH).
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

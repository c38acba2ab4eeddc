//! `kuul lock`: resolve the base image tag and `image.packages` again and
//! rewrite kuul.lock.

use anyhow::Context;

use super::StderrReporter;
use crate::build::{SPEC_FILE, base_pin, platforms};
use crate::cli::LockArgs;
use crate::image::base::manifest::Platform;
use crate::registry::BaseReference;
use crate::registry::pull::PullOptions;
use crate::sources::debian::fetch::Cache;
use crate::sources::debian::lock::{LOCK_FILE, Lock, LockedBase};
use crate::sources::debian::{self, DebianError, DebianOptions, LockTarget};
use crate::spec::Spec;

pub fn run(args: LockArgs) -> anyhow::Result<()> {
    let job_dir = &args.job_dir;
    let spec = crate::spec::load(&job_dir.join(SPEC_FILE))?;
    let base = match spec.image.base.as_str() {
        "scratch" => None,
        text => Some(crate::registry::parse_base(text)?),
    };
    let base_needs_pin = base.as_ref().is_some_and(base_pin::needs_pin);
    let hint = match &base {
        Some(_) => {
            "a base image given with `@sha256:` is pinned already; kuul.lock is for Debian packages in `image.packages` and base images named by tag"
        }
        None => {
            "kuul.lock is for Debian packages in `image.packages` and base images named by tag; a `scratch` job with neither needs no lock"
        }
    };
    anyhow::ensure!(
        base_needs_pin || !spec.image.packages.is_empty(),
        "`{}` names no base image tag and lists no `image.packages`, so there is nothing to lock\nhint: {hint}",
        job_dir.join(SPEC_FILE).display()
    );
    let lock_path = job_dir.join(LOCK_FILE);
    let existing = read_or_discard(&lock_path)?;
    // Checked before any registry request, so a mistyped flag fails at once.
    let platforms = lock_platforms(&spec, &args.platform, &existing)?;

    let cache_dir = args.cache_dir.clone().unwrap_or_else(Cache::default_root);
    let pull_options = PullOptions {
        insecure_registries: args.insecure_registries.clone(),
        cache_dir: cache_dir.clone(),
        ..PullOptions::default()
    };
    let pin = base_pin::refresh(&spec.image.base, base.as_ref(), job_dir, &pull_options, &StderrReporter)
        .with_context(|| format!("failed to lock the base image of `{}`", job_dir.display()))?;
    if let Some(pin) = &pin {
        println!("base {} {}", pin.reference, pin.digest);
    }

    if spec.image.packages.is_empty() {
        Lock::remove_packages(&lock_path)?;
        eprintln!("wrote {} (base image only)", lock_path.display());
        return Ok(());
    }

    let base = base.map(|reference| pinned(reference, pin.as_ref()));
    let targets = lock_targets(&spec, base.as_ref(), &platforms, &pull_options)
        .with_context(|| format!("failed to read the packages of the base image of `{}`", job_dir.display()))?;

    let options = DebianOptions { mirror_override: args.debian_mirror.clone(), cache_dir, ..Default::default() };
    let lock = debian::refresh_lock(&spec.image.packages, &spec.debian, job_dir, &options, &targets)
        .with_context(|| format!("failed to lock the packages of `{}`", job_dir.display()))?;

    for set in &lock.sets {
        for package in &set.packages {
            println!("{} {} {}", package.name, package.version, package.architecture);
        }
    }
    let counts: Vec<String> =
        lock.sets.iter().map(|set| format!("{} packages for {}", set.packages.len(), set.architecture())).collect();
    eprintln!("wrote {} ({})", lock_path.display(), counts.join(", "));
    let dropped: Vec<&str> = existing
        .iter()
        .flat_map(|existing| &existing.sets)
        .map(|set| set.architecture())
        .filter(|architecture| lock.set(architecture).is_none())
        .collect();
    if !dropped.is_empty() {
        eprintln!(
            "removed the packages of {} from the lock, because the platforms locked now do not include them",
            dropped.iter().map(|architecture| format!("`{architecture}`")).collect::<Vec<_>>().join(", ")
        );
    }
    Ok(())
}

/// Reads kuul.lock. A lock that cannot be read is removed with a warning,
/// because `kuul lock` writes a new one anyway and is the way to repair it.
fn read_or_discard(lock_path: &std::path::Path) -> anyhow::Result<Option<Lock>> {
    match Lock::read(lock_path) {
        Err(DebianError::InvalidLock { reason, .. }) => {
            eprintln!("warning: replacing `{}`, which cannot be read: {reason}", lock_path.display());
            std::fs::remove_file(lock_path).with_context(|| format!("failed to remove `{}`", lock_path.display()))?;
            Ok(None)
        }
        other => Ok(other?),
    }
}

/// Returns the platforms whose packages `kuul lock` resolves. These are the
/// platforms of `--platform`, else the architectures that kuul.lock already
/// contains (so a lock made for several platforms stays complete), else the
/// one platform that a build without `--platform` makes.
fn lock_platforms(spec: &Spec, requested: &Option<String>, existing: &Option<Lock>) -> anyhow::Result<Vec<Platform>> {
    if let Some(text) = requested {
        let requested = platforms::parse(text)?;
        return Ok(platforms::resolve(spec, &requested, &crate::build::image_architecture(spec))?);
    }

    let locked: Vec<Platform> =
        existing.iter().flat_map(|lock| &lock.sets).map(|set| platforms::debian_platform(set.architecture())).collect();
    if spec.debian.architecture.is_none() && !locked.is_empty() {
        return Ok(platforms::resolve(spec, &locked, &crate::build::image_architecture(spec))?);
    }
    Ok(platforms::resolve(spec, &[], &crate::build::image_architecture(spec))?)
}

/// Returns the base reference to read installed packages from: the digest
/// just pinned for a tag, else the reference as kuul.toml gives it.
fn pinned(reference: BaseReference, pin: Option<&LockedBase>) -> BaseReference {
    match pin {
        Some(pin) => BaseReference { digest: Some(pin.digest.clone()), ..reference },
        None => reference,
    }
}

/// Returns each platform's Debian architecture with the packages its base
/// image has installed.
fn lock_targets(
    spec: &Spec,
    base: Option<&BaseReference>,
    platforms: &[Platform],
    pull_options: &PullOptions,
) -> anyhow::Result<Vec<LockTarget>> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut targets = Vec::with_capacity(platforms.len());
    for platform in platforms {
        let architecture = platforms::package_architecture(spec, platform);
        let installed = match base {
            Some(reference) => {
                crate::build::base_installed_packages(reference, platform, pull_options, &runtime, &StderrReporter)?
            }
            None => Vec::new(),
        };
        targets.push(LockTarget { architecture, installed });
    }
    Ok(targets)
}

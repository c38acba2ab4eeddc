//! `kuul lock`: resolve the base image tag and `image.packages` again and
//! rewrite kuul.lock.

use anyhow::Context;

use super::StderrReporter;
use crate::build::{SPEC_FILE, base_pin};
use crate::cli::LockArgs;
use crate::registry::pull::PullOptions;
use crate::sources::debian::lock::{LOCK_FILE, Lock};
use crate::sources::debian::{self, DebianOptions};

pub fn run(args: LockArgs) -> anyhow::Result<()> {
    let job_dir = &args.job_dir;
    let spec = crate::spec::load(&job_dir.join(SPEC_FILE))?;
    let base = match spec.image.base.as_str() {
        "scratch" => None,
        text => Some(crate::registry::parse_base(text)?),
    };
    let base_needs_pin = base.as_ref().is_some_and(base_pin::needs_pin);
    anyhow::ensure!(
        base_needs_pin || !spec.image.packages.is_empty(),
        "`{}` names no base image tag and lists no `image.packages`, so there is nothing to lock\n\
         hint: a base image given with `@sha256:` is pinned already; add Debian packages to `image.packages` to lock them",
        job_dir.join(SPEC_FILE).display()
    );

    let pull_options = PullOptions { insecure_registries: args.insecure_registries.clone(), ..PullOptions::default() };
    let pin = base_pin::refresh(&spec.image.base, base.as_ref(), job_dir, &pull_options, &StderrReporter)
        .with_context(|| format!("failed to lock the base image of `{}`", job_dir.display()))?;
    if let Some(pin) = &pin {
        println!("base {} {}", pin.reference, pin.digest);
    }

    let lock_path = job_dir.join(LOCK_FILE);
    if spec.image.packages.is_empty() {
        Lock::remove_packages(&lock_path)?;
        eprintln!("wrote {} (base image only)", lock_path.display());
        return Ok(());
    }

    let options = DebianOptions { mirror_override: args.debian_mirror.clone(), ..Default::default() };
    let lock = debian::refresh_lock(&spec.image.packages, &spec.debian, job_dir, &options)
        .with_context(|| format!("failed to lock the packages of `{}`", job_dir.display()))?;

    for package in &lock.packages {
        println!("{} {} {}", package.name, package.version, package.architecture);
    }
    eprintln!("wrote {} ({} packages)", lock_path.display(), lock.packages.len());
    Ok(())
}

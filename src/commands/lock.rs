//! `kuul lock`: resolve `image.packages` again and rewrite kuul.lock.

use anyhow::Context;

use crate::build::SPEC_FILE;
use crate::cli::LockArgs;
use crate::sources::debian::{self, DebianOptions};

pub fn run(args: LockArgs) -> anyhow::Result<()> {
    let job_dir = &args.job_dir;
    let spec = crate::spec::load(&job_dir.join(SPEC_FILE))?;
    anyhow::ensure!(
        !spec.image.packages.is_empty(),
        "`{}` lists no `image.packages`, so there is nothing to lock\nhint: add Debian packages to `image.packages`",
        job_dir.join(SPEC_FILE).display()
    );

    let options = DebianOptions { mirror_override: args.debian_mirror.clone(), ..Default::default() };
    let lock = debian::refresh_lock(&spec.image.packages, &spec.debian, job_dir, &options)
        .with_context(|| format!("failed to lock the packages of `{}`", job_dir.display()))?;

    for package in &lock.packages {
        println!("{} {} {}", package.name, package.version, package.architecture);
    }
    eprintln!("wrote {} ({} packages)", job_dir.join(debian::lock::LOCK_FILE).display(), lock.packages.len());
    Ok(())
}

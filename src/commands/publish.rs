//! `kuul publish`: build, push, and print the CronJob.

use anyhow::Context;
use serde_json::json;

use super::diagnostics::{render_checked, render_with_warnings};
use super::{StderrReporter, build_options, human_bytes};
use crate::cli::{ManifestFormat, PublishArgs};
use crate::registry::{PushOptions, PushOutcome, RegistryError, Target, push, push_index, push_tag};

pub fn run(args: PublishArgs) -> anyhow::Result<()> {
    check_deploy_flags(&args)?;
    let options = build_options(&args.build)?;
    let job_dir = &args.build.job_dir;

    // Check the destination before the build, so a typo in `--registry`
    // fails at once.
    let spec = crate::spec::load(&job_dir.join(crate::build::SPEC_FILE))?;
    let target = Target::from_prefix(&args.registry, spec.repository(), spec.tag())?;
    let extra_targets = extra_targets(&args, spec.repository(), spec.tag())?;

    eprintln!("building {}", job_dir.display());
    let build = crate::build::build(job_dir, &options, &StderrReporter)
        .with_context(|| format!("failed to build `{}`", job_dir.display()))?;

    // Check the manifest before pushing, so a fragment error does not leave
    // a pushed image without a CronJob.
    let pending_image = target.pinned(build.digest());
    render_checked(&build.spec, job_dir, &pending_image, &build.command, jiff::Timestamp::now())?;

    eprintln!("pushing to {target}");
    let push_options = PushOptions {
        insecure_registries: args.build.insecure_registries.clone(),
        mount_from: build.base_blobs.clone(),
        ..Default::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let outcome = runtime
        .block_on(push_build(&build, &target, &push_options))
        .with_context(|| format!("failed to push `{}` to `{target}`", job_dir.display()))?;
    report_push(&outcome);
    let extra_outcomes =
        runtime.block_on(push_extra_targets(job_dir, &build, &target, &extra_targets, &push_options))?;
    let also_pushed: Vec<&String> = extra_outcomes.iter().map(|outcome| &outcome.reference).collect();

    let cronjob = render_with_warnings(&build.spec, job_dir, &outcome.reference, &build.command)?.cronjob;
    let rendered = match args.output {
        ManifestFormat::Yaml => crate::k8s::manifest::to_yaml(&cronjob),
        ManifestFormat::Json => {
            let summary = json!({
                "image": outcome.reference,
                "digest": outcome.digest,
                "bytes_uploaded": outcome.bytes_uploaded,
                "blobs_uploaded": outcome.blobs_uploaded,
                "blobs_skipped": outcome.blobs_skipped,
                "blobs_mounted": outcome.blobs_mounted,
                "also_pushed": also_pushed,
                "extra_uploads": extra_outcomes.iter().map(|outcome| json!({
                    "image": outcome.reference,
                    "bytes_uploaded": outcome.bytes_uploaded,
                    "blobs_uploaded": outcome.blobs_uploaded,
                    "blobs_skipped": outcome.blobs_skipped,
                    "blobs_mounted": outcome.blobs_mounted,
                })).collect::<Vec<_>>(),
                "cronjob": serde_json::to_value(&cronjob)?,
            });
            format!("{}\n", serde_json::to_string_pretty(&summary)?)
        }
    };

    match &args.manifest {
        Some(path) => {
            std::fs::write(path, crate::k8s::manifest::to_yaml(&cronjob))
                .with_context(|| format!("failed to write the manifest `{}`", path.display()))?;
            eprintln!("wrote {}", path.display());
            if args.output == ManifestFormat::Json {
                print!("{rendered}");
            }
        }
        None => print!("{rendered}"),
    }

    if args.deploy {
        runtime.block_on(super::deploy::deploy(&build.spec, &cronjob, &args.apply))?;
    }
    Ok(())
}

/// Builds a target for each `--extra-registry` and `--extra-tag`
/// combination besides the main one, so a typo fails before the build.
fn extra_targets(args: &PublishArgs, repository: &str, tag: &str) -> anyhow::Result<Vec<Target>> {
    let prefixes: Vec<&String> = std::iter::once(&args.registry).chain(&args.extra_registries).collect();
    let tags: Vec<&str> = std::iter::once(tag).chain(args.extra_tags.iter().map(String::as_str)).collect();

    let mut targets = Vec::new();
    for (index, prefix) in prefixes.iter().enumerate() {
        for (tag_index, tag) in tags.iter().enumerate() {
            if index == 0 && tag_index == 0 {
                continue;
            }
            let target = Target::from_prefix(prefix, repository, tag)?;
            if !targets.contains(&target) {
                targets.push(target);
            }
        }
    }
    Ok(targets)
}

/// Prints the pushed reference and the transfer counts of one push.
fn report_push(outcome: &PushOutcome) {
    eprintln!("pushed {}", outcome.reference);
    eprintln!(
        "uploaded {} bytes ({}) in {} blobs, {} blobs already present, {} mounted",
        outcome.bytes_uploaded,
        human_bytes(outcome.bytes_uploaded),
        outcome.blobs_uploaded,
        outcome.blobs_skipped,
        outcome.blobs_mounted,
    );
}

/// Pushes the same manifest bytes to every extra target and returns each
/// push's outcome. Each push compares the digest that the registry reports
/// in the manifest's `Location` with the built one, so every reference
/// names the same image.
async fn push_extra_targets(
    job_dir: &std::path::Path,
    build: &crate::build::Build,
    first: &Target,
    targets: &[Target],
    options: &PushOptions,
) -> anyhow::Result<Vec<PushOutcome>> {
    let mut outcomes = Vec::new();
    let mut pushed = vec![(first.registry(), first.repository())];
    for target in targets {
        eprintln!("pushing to {target}");
        let outcome = if pushed.contains(&(target.registry(), target.repository())) {
            // The repository has every blob and manifest already.
            push_tag(build.layout.dir(), top_descriptor(build), target, options, &StderrReporter).await
        } else {
            push_build(build, target, options).await
        };
        let outcome = outcome.with_context(|| format!("failed to push `{}` to `{target}`", job_dir.display()))?;
        pushed.push((target.registry(), target.repository()));
        report_push(&outcome);
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// Returns the descriptor the tag names: the index of a multi-platform
/// build, else the image manifest.
fn top_descriptor(build: &crate::build::Build) -> &crate::image::Descriptor {
    match &build.index {
        Some(index) => &index.descriptor,
        None => &build.image.manifest,
    }
}

/// Pushes the build's image, or its index and every platform's image.
async fn push_build(
    build: &crate::build::Build,
    target: &Target,
    options: &PushOptions,
) -> Result<PushOutcome, RegistryError> {
    match &build.index {
        Some(index) => push_index(build.layout.dir(), index, target, options, &StderrReporter).await,
        None => push(build.layout.dir(), &build.image, target, options, &StderrReporter).await,
    }
}

/// Rejects the cluster options of `--deploy` when `--deploy` is absent, so a
/// forgotten flag does not silently skip the deploy.
fn check_deploy_flags(args: &PublishArgs) -> anyhow::Result<()> {
    let apply = &args.apply;
    let flag = if !apply.cluster.contexts.is_empty() {
        Some("--context")
    } else if apply.cluster.namespace.is_some() {
        Some("--namespace")
    } else if apply.dry_run {
        Some("--dry-run")
    } else if apply.strict {
        Some("--strict")
    } else if apply.force_conflicts {
        Some("--force-conflicts")
    } else {
        None
    };

    match flag {
        Some(flag) if !args.deploy => {
            anyhow::bail!("`{flag}` applies only to deploys\nhint: add `--deploy` to apply the CronJob after the push")
        }
        _ => Ok(()),
    }
}

//! `kuul publish`: build, push, and print the CronJob.

use anyhow::Context;
use serde_json::json;

use super::diagnostics::render_with_warnings;
use super::{StderrReporter, build_options, human_bytes};
use crate::cli::{ManifestFormat, PublishArgs};
use crate::registry::{PushOptions, Target, push};

pub fn run(args: PublishArgs) -> anyhow::Result<()> {
    let options = build_options(&args.build)?;
    let job_dir = &args.build.job_dir;

    // Check the destination before the build, so a typo in `--registry`
    // fails at once.
    let spec = crate::spec::load(&job_dir.join(crate::build::SPEC_FILE))?;
    let target = Target::from_prefix(&args.registry, spec.repository(), spec.tag())?;

    eprintln!("building {}", job_dir.display());
    let build = crate::build::build(job_dir, &options, &StderrReporter)
        .with_context(|| format!("failed to build `{}`", job_dir.display()))?;

    // Check the manifest before pushing, so a fragment error does not leave
    // a pushed image without a CronJob.
    let pending_image = target.pinned(&build.image.manifest.digest);
    crate::k8s::render(&build.spec, &pending_image, &build.command, jiff::Timestamp::now())?;

    eprintln!("pushing to {target}");
    let push_options = PushOptions { insecure_registries: args.insecure_registries.clone(), ..Default::default() };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let outcome = runtime.block_on(push(build.layout.dir(), &build.image, &target, &push_options, &StderrReporter))?;

    eprintln!("pushed {}", outcome.reference);
    eprintln!(
        "uploaded {} bytes ({}) in {} blobs, {} blobs already present",
        outcome.bytes_uploaded,
        human_bytes(outcome.bytes_uploaded),
        outcome.blobs_uploaded,
        outcome.blobs_skipped,
    );

    let cronjob = render_with_warnings(&build.spec, &outcome.reference, &build.command)?.cronjob;
    let rendered = match args.output {
        ManifestFormat::Yaml => crate::k8s::manifest::to_yaml(&cronjob),
        ManifestFormat::Json => {
            let summary = json!({
                "image": outcome.reference,
                "digest": outcome.digest,
                "bytes_uploaded": outcome.bytes_uploaded,
                "blobs_uploaded": outcome.blobs_uploaded,
                "blobs_skipped": outcome.blobs_skipped,
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
    Ok(())
}

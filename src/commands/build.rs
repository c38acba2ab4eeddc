//! `kuul build`: build the image into an OCI layout.

use anyhow::Context;
use serde_json::json;

use super::diagnostics::render_with_warnings;
use super::{StderrReporter, build_options, human_bytes, short_digest};
use crate::build::{Build, PackagesSummary};
use crate::cli::{BuildArgs, SummaryFormat};
use crate::image::index::BuiltIndex;

pub fn run(args: BuildArgs) -> anyhow::Result<()> {
    let options = build_options(&args.build)?;
    let job_dir = &args.build.job_dir;
    eprintln!("building {}", job_dir.display());
    let build = crate::build::build(job_dir, &options, &StderrReporter)
        .with_context(|| format!("failed to build `{}`", job_dir.display()))?;

    // The CronJob is written by `publish`, but its errors and warnings are
    // known now.
    let pending_image = format!("{}:{}@{}", build.spec.repository(), build.tag, build.digest());
    render_with_warnings(&build.spec, job_dir, &pending_image, &build.command)?;

    if let Some(tarball) = &args.tarball {
        // NOTE: a Docker archive names one image per tag, so it cannot carry
        // an index; the OCI layout has every platform.
        anyhow::ensure!(
            build.index.is_none(),
            "`--tarball` takes a single-platform image, but this build has several platforms\nhint: build one platform with `--platform` for the archive, or use the OCI layout `{}`",
            build.layout.dir().display()
        );
        let repo_tag = format!("{}:{}", build.spec.repository(), build.tag);
        crate::image::archive::write_docker_archive(&build.layout, &build.image, &repo_tag, tarball)
            .with_context(|| format!("failed to write the image archive `{}`", tarball.display()))?;
        eprintln!("wrote {} ({repo_tag})", tarball.display());
    }

    match args.output {
        SummaryFormat::Text => print!("{}", text_summary(&build)),
        SummaryFormat::Json => {
            println!("{}", serde_json::to_string_pretty(&json_summary(&build, args.tarball.as_deref()))?)
        }
    }
    Ok(())
}

fn text_summary(build: &Build) -> String {
    if let Some(index) = &build.index {
        return index_text_summary(build, index);
    }

    let image = &build.image;
    let mut out = format!(
        "built {}:{} in {}\ndigest  {}\nsize    {} ({} bytes)\nlayers  {}\n",
        build.spec.repository(),
        build.tag,
        build.layout.dir().display(),
        image.manifest.digest,
        human_bytes(image.total_size()),
        image.total_size(),
        image.layers.len(),
    );
    for layer in &image.layers {
        out.push_str(&format!(
            "  {}  {:>10}  {} ({} {})\n",
            short_digest(&layer.descriptor.digest),
            human_bytes(layer.descriptor.size),
            layer.description,
            layer.entries,
            if layer.entries == 1 { "entry" } else { "entries" },
        ));
    }
    if let Some(summary) = &build.packages {
        out.push_str(&format!(
            "packages {} ({} downloaded, {} cached)\n",
            summary.packages.len(),
            summary.downloads.downloaded,
            summary.downloads.cached,
        ));
    }
    out
}

/// Summarizes a multi-platform build: the index, then one line per
/// platform. Layers shared between platforms count once in the size.
fn index_text_summary(build: &Build, index: &BuiltIndex) -> String {
    let mut out = format!(
        "built {}:{} in {}\ndigest  {} (index)\nsize    {} ({} bytes)\n",
        build.spec.repository(),
        build.tag,
        build.layout.dir().display(),
        index.descriptor.digest,
        human_bytes(index.total_size()),
        index.total_size(),
    );
    for (entry, packages) in index.images.iter().zip(&build.platform_packages) {
        out.push_str(&format!(
            "  {}  {}  {:>10}  {} layers",
            entry.platform,
            short_digest(&entry.image.manifest.digest),
            human_bytes(entry.image.total_size()),
            entry.image.layers.len(),
        ));
        if let Some(summary) = packages {
            out.push_str(&format!(", {} packages", summary.packages.len()));
        }
        out.push('\n');
    }
    out
}

fn json_summary(build: &Build, tarball: Option<&std::path::Path>) -> serde_json::Value {
    let layers = json_layers(&build.image);
    let platforms = build.index.as_ref().map(|index| {
        index
            .images
            .iter()
            .zip(&build.platform_packages)
            .map(|(entry, packages)| {
                json!({
                    "platform": entry.platform.to_string(),
                    "digest": entry.image.manifest.digest,
                    "size": entry.image.total_size(),
                    "layers": json_layers(&entry.image),
                    "packages": packages.as_ref().map(json_packages),
                })
            })
            .collect::<Vec<_>>()
    });
    // A multi-platform build lists its layers and packages per platform.
    let (size, layers, packages) = match &build.index {
        Some(index) => (index.total_size(), serde_json::Value::Null, serde_json::Value::Null),
        None => (build.image.total_size(), layers, json!(build.packages.as_ref().map(json_packages))),
    };
    json!({
        "digest": build.digest(),
        "platforms": platforms,
        "size": size,
        "layout": build.layout.dir(),
        "tag": build.tag,
        "tarball": tarball,
        "layers": layers,
        "packages": packages,
    })
}

fn json_packages(summary: &PackagesSummary) -> serde_json::Value {
    json!({
        "installed": summary.packages.iter().map(|package| json!({
            "name": package.name,
            "version": package.version,
            "architecture": package.architecture,
        })).collect::<Vec<_>>(),
        "downloaded": summary.downloads.downloaded,
        "downloaded_bytes": summary.downloads.bytes,
        "cached": summary.downloads.cached,
    })
}

fn json_layers(image: &crate::image::BuiltImage) -> serde_json::Value {
    image
        .layers
        .iter()
        .map(|layer| {
            json!({
                "digest": layer.descriptor.digest,
                "size": layer.descriptor.size,
                "description": layer.description,
                "entries": layer.entries,
            })
        })
        .collect()
}

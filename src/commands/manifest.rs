//! `kuul manifest`: the CronJob for an image pushed by other means.

use anyhow::Context;

use super::diagnostics::render_with_warnings;
use crate::build::{SPEC_FILE, container_command};
use crate::cli::{ManifestArgs, ManifestFormat};
use crate::k8s::manifest::{to_json, to_yaml};

pub fn run(args: ManifestArgs) -> anyhow::Result<()> {
    let spec = crate::spec::load(&args.job_dir.join(SPEC_FILE))?;
    crate::registry::parse_pinned(&args.image).with_context(|| format!("invalid `--image` `{}`", args.image))?;

    let command = container_command(&spec, &args.job_dir);
    let cronjob = render_with_warnings(&spec, &args.job_dir, &args.image, &command)?.cronjob;
    match args.output {
        ManifestFormat::Yaml => print!("{}", to_yaml(&cronjob)),
        ManifestFormat::Json => print!("{}", to_json(&cronjob)),
    }
    Ok(())
}

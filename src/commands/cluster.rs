//! Helpers shared by the commands that talk to clusters.

use std::path::Path;

use anyhow::Context;
use k8s_openapi::api::batch::v1::CronJob;

use crate::build::{SPEC_FILE, container_command};
use crate::spec::Spec;

/// Returns a runtime for one command's cluster requests.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("failed to start the async runtime")
}

/// Loads the job at `job_dir` and builds its CronJob for the pinned `image`.
pub fn job_cronjob(job_dir: &Path, image: &str) -> anyhow::Result<(Spec, CronJob)> {
    let spec = crate::spec::load(&job_dir.join(SPEC_FILE))?;
    crate::registry::parse_pinned(image).with_context(|| format!("invalid `--image` `{image}`"))?;

    let command = container_command(&spec, job_dir);
    let cronjob = crate::k8s::manifest::cronjob(&spec, image, &command);
    Ok((spec, cronjob))
}

/// Returns the contexts a command that reads kuul.toml targets: `--context`
/// when given, else `[deploy] contexts` (empty means the current context).
pub fn target_contexts(flags: &[String], spec: &Spec) -> Vec<String> {
    if flags.is_empty() { spec.deploy.contexts.clone() } else { flags.to_vec() }
}

/// Returns the name of `cronjob`, which the manifest always sets.
pub fn cronjob_name(cronjob: &CronJob) -> &str {
    cronjob.metadata.name.as_deref().unwrap_or_default()
}

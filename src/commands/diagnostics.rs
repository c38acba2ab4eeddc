//! Rendering the final CronJob for a command and printing its warnings.

use super::StderrReporter;
use crate::k8s::{Diagnostic, Rendered};
use crate::report::Reporter;
use crate::spec::Spec;

/// Builds, merges and checks the CronJob for `spec`, and prints each
/// warning to stderr. A manifest error is returned as the command's error.
pub(crate) fn render_with_warnings(spec: &Spec, image: &str, command: &[String]) -> anyhow::Result<Rendered> {
    let rendered = crate::k8s::render(spec, image, command, jiff::Timestamp::now())?;
    print_warnings(&rendered.warnings);
    Ok(rendered)
}

/// Prints each warning as `warning: `key`: message` with its hint.
pub(crate) fn print_warnings(warnings: &[Diagnostic]) {
    for warning in warnings {
        StderrReporter.warning(&warning.to_string());
    }
}

/// Returns a pinned reference for checks that run before anything is
/// pushed. It names no real registry, and nothing contacts it.
pub(crate) fn placeholder_image(spec: &Spec) -> String {
    let repository = spec.image.repository.clone().unwrap_or_else(|| spec.job.name.clone());
    let tag = spec.image.tag.clone().unwrap_or_else(|| "latest".to_owned());
    format!("localhost/{repository}:{tag}@sha256:{}", "0".repeat(64))
}

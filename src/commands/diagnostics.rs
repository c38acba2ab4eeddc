//! Rendering the final CronJob for a command and printing its warnings,
//! each with the kuul.toml line that sets its key.

use std::path::Path;

use super::StderrReporter;
use crate::build::SPEC_FILE;
use crate::k8s::{Diagnostic, Rendered};
use crate::report::Reporter;
use crate::spec::Spec;
use crate::spec::locate::{Document, KeyPath};

/// Builds, merges and checks the CronJob for the job in `job_dir`, and
/// prints each warning to stderr. A manifest error is returned as the
/// command's error.
pub(crate) fn render_with_warnings(
    spec: &Spec,
    job_dir: &Path,
    image: &str,
    command: &[String],
) -> anyhow::Result<Rendered> {
    let rendered = render_checked(spec, job_dir, image, command, jiff::Timestamp::now())?;
    print_warnings(&rendered.warnings, job_dir);
    Ok(rendered)
}

/// Builds, merges and checks the CronJob like [`crate::k8s::render`], and
/// returns a manifest error with the kuul.toml line of each problem.
pub(crate) fn render_checked(
    spec: &Spec,
    job_dir: &Path,
    image: &str,
    command: &[String],
    now: jiff::Timestamp,
) -> anyhow::Result<Rendered> {
    crate::k8s::render(spec, image, command, now).map_err(|error| {
        let mut message = String::from("invalid CronJob manifest");
        for diagnostic in located(&error.errors, job_dir) {
            message.push('\n');
            message.push_str(&diagnostic);
        }
        anyhow::anyhow!(message)
    })
}

/// Prints each warning as `warning: FILE:LINE: `key`: message` with its
/// hint.
pub(crate) fn print_warnings(warnings: &[Diagnostic], job_dir: &Path) {
    for warning in located(warnings, job_dir) {
        StderrReporter.warning(&warning);
    }
}

/// Formats each diagnostic as `FILE:LINE: `key`: message` and its hint.
/// The line is where kuul.toml sets the key, or else the nearest table of
/// it; without either, only the file is named.
fn located(diagnostics: &[Diagnostic], job_dir: &Path) -> Vec<String> {
    if diagnostics.is_empty() {
        return Vec::new();
    }
    let path = job_dir.join(SPEC_FILE);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let document = Document::parse(&text);

    let locate = |diagnostic: &Diagnostic| {
        let line = KeyPath::parse(&diagnostic.key).and_then(|key| document.line_of(&key));
        match line {
            Some(line) => format!("{}:{line}: {diagnostic}", path.display()),
            None => format!("{}: {diagnostic}", path.display()),
        }
    };
    diagnostics.iter().map(locate).collect()
}

/// Returns a pinned reference for checks that run before anything is
/// pushed. It names no real registry, and nothing contacts it.
pub(crate) fn placeholder_image(spec: &Spec) -> String {
    let repository = spec.image.repository.clone().unwrap_or_else(|| spec.job.name.clone());
    let tag = spec.image.tag.clone().unwrap_or_else(|| "latest".to_owned());
    format!("localhost/{repository}:{tag}@sha256:{}", "0".repeat(64))
}

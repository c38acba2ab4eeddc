//! The Kubernetes side. Pure: the CronJob manifest, its defaults, the
//! `[kubernetes]` fragments, and the checks of the final manifest. Through
//! kube's client: apply, preflight checks, status, runs, logs, run-now,
//! suspend, resume and prune.

pub mod apply;
pub mod checks;
pub mod cluster;
pub mod defaults;
pub mod fragment;
pub mod manifest;
pub mod operate;
pub mod preflight;
pub mod prune;
pub mod runs;
pub mod status;
pub mod warnings;

use std::fmt;

use k8s_openapi::api::batch::v1::CronJob;

pub use manifest::{cronjob, to_json, to_yaml};

use crate::spec::Spec;

/// An error or warning about the manifest, naming the kuul.toml key to
/// change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Dotted kuul.toml key, such as `job.active_deadline_seconds`.
    pub key: String,
    /// The problem, naming the bad value in backticks.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

impl Diagnostic {
    pub fn new(key: impl Into<String>, message: impl Into<String>, hint: impl Into<String>) -> Diagnostic {
        Diagnostic { key: key.into(), message: message.into(), hint: hint.into() }
    }
}

/// The key, the message, and the hint on a second line.
impl fmt::Display for Diagnostic {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "`{}`: {}\n  hint: {}", self.key, self.message, self.hint)
    }
}

/// A manifest that the API server would reject, or that breaks kuul's own
/// guarantees, after the `[kubernetes]` fragments are merged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render_errors(.errors))]
pub struct ManifestError {
    pub errors: Vec<Diagnostic>,
}

fn render_errors(errors: &[Diagnostic]) -> String {
    let mut out = String::from("invalid CronJob manifest");
    for error in errors {
        out.push_str(&format!("\n{error}"));
    }
    out
}

/// The final CronJob and the warnings about it.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub cronjob: CronJob,
    pub warnings: Vec<Diagnostic>,
}

/// Builds the CronJob for a valid `spec`, merges the `[kubernetes]`
/// fragments, checks the result, and lists the warnings.
///
/// `image` is the pinned reference and `command` the resolved argv, as for
/// [`cronjob`]. `now` is where the search for daylight saving time changes
/// starts.
pub fn render(spec: &Spec, image: &str, command: &[String], now: jiff::Timestamp) -> Result<Rendered, ManifestError> {
    let generated = cronjob(spec, image, command);

    let merged = fragment::apply(generated, spec).map_err(|errors| ManifestError { errors })?;

    let errors = checks::errors(&merged, image);
    if !errors.is_empty() {
        return Err(ManifestError { errors });
    }

    let warnings = warnings::warnings(&merged, spec, now);
    Ok(Rendered { cronjob: merged, warnings })
}

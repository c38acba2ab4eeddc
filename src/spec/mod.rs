//! The `kuul.toml` model: parsing, validation and the grammars of its values.
//!
//! This module is pure: apart from reading the file in [`load`], it does no
//! I/O. Every table rejects unknown keys, and every validation error carries
//! the dotted key path so the renderer can point at the line in the file.

pub mod debian;
mod deploy;
mod fragment;
pub mod locate;
pub mod names;
mod placement;
pub mod quantity;
pub mod schedule;
mod settings;
mod validate;

#[cfg(test)]
mod tests;

pub use settings::{CONCURRENCY_POLICIES, RESTART_POLICIES};
pub use validate::MAX_JOB_NAME_LENGTH;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The user and group id that images run as unless `image.user` sets
/// another. Distroless images use the same id for their `nonroot` user.
pub const NONROOT_ID: u32 = 65532;

/// The time zone used when `job.timezone` is not set.
pub const DEFAULT_TIMEZONE: &str = "Etc/UTC";

/// The directory inside the image that contains the job files.
pub const DEFAULT_WORKDIR: &str = "/job";

/// The node label that `placement.pool` selects on, and the key of the
/// matching toleration.
pub const POOL_LABEL: &str = "kuul.dev/pool";

/// A parsed `kuul.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub job: Job,
    #[serde(default)]
    pub image: Image,
    #[serde(default)]
    pub resources: Resources,
    #[serde(default)]
    pub placement: Placement,
    #[serde(default)]
    pub kubernetes: Kubernetes,
    #[serde(default)]
    pub debian: debian::Debian,
    #[serde(default)]
    pub deploy: Deploy,
}

impl Spec {
    /// Returns the repository name below the registry prefix:
    /// `image.repository`, or the job name when it is absent.
    pub fn repository(&self) -> &str {
        self.image.repository.as_deref().unwrap_or(&self.job.name)
    }

    /// Returns the image tag: `image.tag`, or `latest` when it is absent.
    pub fn tag(&self) -> &str {
        self.image.tag.as_deref().unwrap_or("latest")
    }
}

/// The `[job]` table: what runs and when.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// The CronJob name, a DNS-1123 label of at most 52 characters.
    pub name: String,
    /// A five-field cron expression or a macro such as `@daily`.
    pub schedule: String,
    /// An IANA time zone name; [`DEFAULT_TIMEZONE`] when absent.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// The program and its arguments. A string is one program path with no
    /// arguments; it is never split on spaces.
    pub command: Command,
    /// Environment variables for the container.
    #[serde(default)]
    pub env: BTreeMap<String, String>,

    // The CronJob and Job settings below keep their Kubernetes names in
    // snake_case. `None` means kuul's default; `k8s::defaults` derives it.
    /// `Allow`, `Forbid` or `Replace`.
    pub concurrency_policy: Option<String>,
    /// Seconds after the scheduled time during which a missed run may
    /// still start.
    pub starting_deadline_seconds: Option<i64>,
    /// Seconds a run (all its retries together) may take before Kubernetes
    /// stops it.
    pub active_deadline_seconds: Option<i64>,
    /// Retries of a failed run.
    pub backoff_limit: Option<i32>,
    pub successful_jobs_history_limit: Option<i32>,
    pub failed_jobs_history_limit: Option<i32>,
    /// `Never` or `OnFailure`.
    pub restart_policy: Option<String>,
    /// Seconds after a run finishes before Kubernetes deletes its Job; no
    /// deletion by age when absent.
    pub ttl_seconds_after_finished: Option<i32>,
    /// Whether the controller starts no new runs.
    pub suspend: Option<bool>,
}

/// `job.command`, written either as a single string or as an array.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Program(String),
    Argv(Vec<String>),
}

/// A hand-written visitor, because serde's untagged enums report only "did
/// not match any variant" and lose the position of the bad element.
impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CommandVisitor)
    }
}

struct CommandVisitor;

impl<'de> serde::de::Visitor<'de> for CommandVisitor {
    type Value = Command;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a program path or an array of strings")
    }

    fn visit_str<E: serde::de::Error>(self, program: &str) -> Result<Command, E> {
        Ok(Command::Program(program.to_owned()))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut items: A) -> Result<Command, A::Error> {
        let mut argv = Vec::new();
        while let Some(argument) = items.next_element::<String>()? {
            argv.push(argument);
        }
        Ok(Command::Argv(argv))
    }
}

impl Command {
    /// Returns the command as an argument vector.
    pub fn argv(&self) -> Vec<String> {
        match self {
            Command::Program(program) => vec![program.clone()],
            Command::Argv(argv) => argv.clone(),
        }
    }
}

/// The `[image]` table: what goes into the image.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Image {
    /// The base image: `scratch` (empty) or a registry reference
    /// `REGISTRY/REPOSITORY:TAG`, optionally with `@sha256:DIGEST`.
    #[serde(default = "default_base")]
    pub base: String,
    /// Job files and directories, relative to the job directory. When absent,
    /// every file in the job directory except `kuul.toml`, `kuul.lock` and
    /// the `.kuul` output directory.
    pub files: Option<Vec<String>>,
    /// Host programs to copy with their shared libraries. A bare name is
    /// searched on `PATH`.
    #[serde(default)]
    pub binaries: Vec<String>,
    /// Debian packages to install from the `[debian]` repository, with
    /// their dependencies.
    #[serde(default)]
    pub packages: Vec<String>,
    /// Symbolic links to create in the image, link path to target, such as
    /// `"/bin/sh" = "busybox"`.
    #[serde(default)]
    pub symlinks: BTreeMap<String, String>,
    /// `nonroot` (the default), `root`, a user id, or `UID:GID`.
    pub user: Option<String>,
    /// The working directory, where job files are placed.
    #[serde(default = "default_workdir")]
    pub workdir: String,
    /// Extra labels for the image config.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The repository name below the registry prefix; the job name when
    /// absent.
    pub repository: Option<String>,
    /// The tag to push; `latest` when absent. The CronJob always pins the
    /// digest as well.
    pub tag: Option<String>,
    /// Names of `kubernetes.io/dockerconfigjson` Secrets in the job's
    /// namespace that the kubelet uses to pull the image (the pod's
    /// `imagePullSecrets`).
    #[serde(default)]
    pub pull_secrets: Vec<String>,
}

impl Image {
    /// Returns the user and group id the image runs as: 65532:65532 for
    /// `nonroot` and when `user` is absent, 0:0 for `root`, the same number
    /// twice for a bare id, and both numbers of `UID:GID`.
    ///
    /// [`parse`] rejects other values. On an unvalidated `Image`, an invalid
    /// `user` also yields 65532:65532, so a mistake never runs as root.
    pub fn user_ids(&self) -> (u32, u32) {
        self.user.as_deref().and_then(names::parse_user).unwrap_or((NONROOT_ID, NONROOT_ID))
    }
}

impl Default for Image {
    fn default() -> Self {
        Image {
            base: default_base(),
            files: None,
            binaries: Vec::new(),
            packages: Vec::new(),
            symlinks: BTreeMap::new(),
            user: None,
            workdir: default_workdir(),
            labels: BTreeMap::new(),
            repository: None,
            tag: None,
            pull_secrets: Vec::new(),
        }
    }
}

/// The `[resources]` table, in Kubernetes' own shape.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default)]
    pub requests: ResourceList,
    #[serde(default)]
    pub limits: ResourceList,
}

/// CPU and memory quantities, such as `cpu = "250m"` and `memory = "128Mi"`.
/// A bare TOML number (`cpu = 2`, `cpu = 0.5`) is taken as its decimal text,
/// as Kubernetes takes a YAML number.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceList {
    #[serde(default, deserialize_with = "quantity_text")]
    pub cpu: Option<String>,
    #[serde(default, deserialize_with = "quantity_text")]
    pub memory: Option<String>,
}

/// Reads a quantity written as a string, an integer or a float. A float is
/// written back in Rust's shortest round-trip form, so `0.1` stays `0.1`.
fn quantity_text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Text(String),
        Integer(i64),
        Float(f64),
    }

    match Written::deserialize(deserializer) {
        Ok(Written::Text(text)) => Ok(Some(text)),
        Ok(Written::Integer(number)) => Ok(Some(number.to_string())),
        Ok(Written::Float(number)) if number.is_finite() => Ok(Some(number.to_string())),
        _ => Err(serde::de::Error::custom(
            "invalid quantity: expected a string such as \"250m\" or \"128Mi\", or a number",
        )),
    }
}

/// The `[kubernetes]` table: fragments merged into the generated manifest,
/// for fields that kuul.toml has no key for. Each is a table in the API's
/// camelCase shape, applied with JSON merge patch semantics.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kubernetes {
    /// Merged into the whole CronJob.
    pub cronjob: Option<serde_json::Map<String, serde_json::Value>>,
    /// Merged into the job's container.
    pub container: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The `[placement]` table: which nodes may run the job.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    /// Shorthand for a node pool: adds the node selector
    /// `kuul.dev/pool=<pool>` and a toleration for the taint
    /// `kuul.dev/pool=<pool>:NoSchedule`.
    pub pool: Option<String>,
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default)]
    pub tolerations: Vec<Toleration>,
    pub affinity: Option<Affinity>,
}

/// The `[deploy]` table: where `kuul deploy` and `kuul publish --deploy`
/// apply the CronJob.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    /// Kubeconfig contexts to apply to, in order. When empty, the
    /// kubeconfig's current context. `--context` replaces the list.
    #[serde(default)]
    pub contexts: Vec<String>,
    /// The namespace; when absent, the context's namespace. `--namespace`
    /// overrides it.
    pub namespace: Option<String>,
}

/// A Kubernetes toleration, with the API's camelCase field names.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Toleration {
    pub key: Option<String>,
    pub operator: Option<String>,
    pub value: Option<String>,
    pub effect: Option<String>,
    pub toleration_seconds: Option<i64>,
}

/// A Kubernetes affinity, with the API's camelCase field names.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Affinity {
    pub node_affinity: Option<NodeAffinity>,
    pub pod_affinity: Option<PodAffinity>,
    pub pod_anti_affinity: Option<PodAffinity>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeAffinity {
    pub required_during_scheduling_ignored_during_execution: Option<NodeSelector>,
    #[serde(default)]
    pub preferred_during_scheduling_ignored_during_execution: Vec<PreferredSchedulingTerm>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeSelector {
    pub node_selector_terms: Vec<NodeSelectorTerm>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeSelectorTerm {
    #[serde(default)]
    pub match_expressions: Vec<NodeSelectorRequirement>,
    #[serde(default)]
    pub match_fields: Vec<NodeSelectorRequirement>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeSelectorRequirement {
    pub key: String,
    pub operator: String,
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PreferredSchedulingTerm {
    pub weight: i32,
    pub preference: NodeSelectorTerm,
}

/// Used for both `podAffinity` and `podAntiAffinity`, which share a shape.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PodAffinity {
    #[serde(default)]
    pub required_during_scheduling_ignored_during_execution: Vec<PodAffinityTerm>,
    #[serde(default)]
    pub preferred_during_scheduling_ignored_during_execution: Vec<WeightedPodAffinityTerm>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PodAffinityTerm {
    pub label_selector: Option<LabelSelector>,
    pub namespace_selector: Option<LabelSelector>,
    #[serde(default)]
    pub namespaces: Vec<String>,
    pub topology_key: String,
    #[serde(default)]
    pub match_label_keys: Vec<String>,
    #[serde(default)]
    pub mismatch_label_keys: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WeightedPodAffinityTerm {
    pub weight: i32,
    pub pod_affinity_term: PodAffinityTerm,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabelSelectorRequirement {
    pub key: String,
    pub operator: String,
    #[serde(default)]
    pub values: Vec<String>,
}

fn default_timezone() -> String {
    DEFAULT_TIMEZONE.to_owned()
}

fn default_base() -> String {
    "scratch".to_owned()
}

fn default_workdir() -> String {
    DEFAULT_WORKDIR.to_owned()
}

/// A `kuul.toml` that could not be read, parsed or validated. The display
/// form names the file, and for each problem the line, the key, the bad value
/// and the fix.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{}", render_read_error(path, error))]
    Read { path: PathBuf, error: std::io::Error },
    #[error("{}", render_problems(path, problems))]
    Invalid { path: PathBuf, problems: Vec<Problem> },
}

/// One thing wrong with a `kuul.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// 1-based line of the offending key or value, when known.
    pub line: Option<usize>,
    /// Dotted key path, such as `job.schedule`; empty for syntax errors.
    pub key: String,
    /// What is wrong, naming the bad value in backticks.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

fn render_problems(path: &Path, problems: &[Problem]) -> String {
    let mut out = String::new();
    for (index, problem) in problems.iter().enumerate() {
        if index > 0 {
            out.push('\n');
        }
        out.push_str(&path.display().to_string());
        if let Some(line) = problem.line {
            out.push_str(&format!(":{line}"));
        }
        if problem.key.is_empty() {
            out.push_str(&format!(": {}", problem.message));
        } else {
            out.push_str(&format!(": `{}`: {}", problem.key, problem.message));
        }
        if let Some(hint) = &problem.hint {
            out.push_str(&format!("\n  hint: {hint}"));
        }
    }
    out
}

fn render_read_error(path: &Path, error: &std::io::Error) -> String {
    let mut out = format!("failed to read `{}`: {error}", path.display());
    if error.kind() == std::io::ErrorKind::NotFound {
        out.push_str("\nhint: a job directory needs a `kuul.toml`; `kuul init DIR` writes one");
    }
    out
}

/// Reads and validates the `kuul.toml` at `path`.
pub fn load(path: &Path) -> Result<Spec, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|error| SpecError::Read { path: path.to_owned(), error })?;
    parse(&text, path)
}

/// Parses and validates `text`; `path` is used only in error messages.
///
/// Syntax errors are all reported together. A type error or an unknown key
/// stops deserializing, so it is reported alone. Otherwise every
/// validation problem is reported, each with its line.
pub fn parse(text: &str, path: &Path) -> Result<Spec, SpecError> {
    let invalid = |problems| SpecError::Invalid { path: path.to_owned(), problems };

    let document = locate::Document::parse(text);
    let mut syntax_problems = syntax_problems(text, &document);
    if !syntax_problems.is_empty() {
        sort_by_line(&mut syntax_problems);
        return Err(invalid(syntax_problems));
    }

    let spec: Spec = toml::from_str(text).map_err(|error| invalid(vec![deserialize_problem(&error, &document)]))?;

    let mut problems: Vec<Problem> = validate::validate(&spec)
        .into_iter()
        .map(|finding| Problem {
            line: document.line_of(&finding.path),
            key: finding.path.to_string(),
            message: finding.message,
            hint: finding.hint,
        })
        .collect();
    if !problems.is_empty() {
        sort_by_line(&mut problems);
        return Err(invalid(problems));
    }

    Ok(spec)
}

/// Returns the key named by serde's "missing field `name`" message.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.strip_suffix('`')
}

/// Sorts problems in file order, keeping the check order within a line and
/// putting problems without a line last.
fn sort_by_line(problems: &mut [Problem]) {
    problems.sort_by_key(|problem| problem.line.unwrap_or(usize::MAX));
}

/// Returns every TOML syntax error, each with its line.
fn syntax_problems(text: &str, document: &locate::Document) -> Vec<Problem> {
    let (_, errors) = toml::de::DeTable::parse_recoverable(text);
    errors
        .iter()
        .map(|error| Problem {
            line: error.span().map(|span| document.line_of_offset(span.start)),
            key: String::new(),
            message: error.message().to_owned(),
            hint: None,
        })
        .collect()
}

/// Converts a serde error (unknown key, wrong type, missing key) to a
/// problem. toml's message already lists the valid keys for an unknown
/// key, and the span gives the line and the key path.
fn deserialize_problem(error: &toml::de::Error, document: &locate::Document) -> Problem {
    let span = error.span();
    let mut key = span.as_ref().map(|span| document.path_at(span.start).to_string()).unwrap_or_default();

    let message = error.message().to_owned();
    // `job` is the one required top-level table. toml reports its absence at
    // whatever table the file starts with, so that table is not the place.
    if missing_field(&message) == Some("job") {
        key.clear();
    }
    let hint = if message.starts_with("unknown field") {
        Some("remove the key or correct its spelling; the message lists the valid keys".to_owned())
    } else if let Some(field) = missing_field(&message) {
        if key.is_empty() {
            Some(format!("add a `[{field}]` table"))
        } else {
            Some(format!("add `{field}` to `[{key}]`"))
        }
    } else {
        None
    };

    Problem { line: span.map(|span| document.line_of_offset(span.start)), key, message, hint }
}

//! Command-line definitions. The doc comments here are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Package a periodic job into a slim OCI image and a Kubernetes CronJob.
///
/// A job is a directory with a script and a `kuul.toml`. Typical use:
/// `kuul check DIR`, `kuul build DIR`, `kuul publish DIR --registry HOST/PREFIX`.
#[derive(Debug, Parser)]
#[command(name = "kuul", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the job's image into an OCI image layout, with no registry.
    Build(BuildArgs),
    /// Build, push to a registry, and print the CronJob that runs the image.
    Publish(PublishArgs),
    /// Print the CronJob for an image that is already in a registry.
    Manifest(ManifestArgs),
    /// Validate kuul.toml and print the next run times.
    Check(CheckArgs),
    /// Write a new job directory from a template.
    Init(InitArgs),
    /// Resolve the base image tag and `image.packages` again and rewrite
    /// kuul.lock.
    Lock(LockArgs),
    /// Apply the CronJob for a pushed image to clusters, with server-side
    /// apply.
    Deploy(DeployArgs),
    /// Show what `kuul deploy` would change in the live CronJob.
    Diff(DiffArgs),
    /// Print one row per kuul-managed CronJob: schedule, last runs, next run.
    Status(StatusArgs),
    /// List a CronJob's recent runs with their result and failure reason.
    Runs(RunsArgs),
    /// Print the logs of a CronJob's latest run, or of a given run.
    Logs(LogsArgs),
    /// Start a run of a CronJob now, as `kubectl create job --from` does.
    Run(RunArgs),
    /// Suspend a CronJob: no new runs start until it is resumed.
    Suspend(SuspendArgs),
    /// Resume a suspended CronJob.
    Resume(SuspendArgs),
    /// Delete kuul-managed CronJobs that none of the given job directories
    /// declares.
    ///
    /// Without `--confirm`, kuul only lists them.
    Prune(PruneArgs),
}

/// Options shared by the commands that build an image.
#[derive(Debug, Args)]
pub struct BuildOptions {
    /// The job directory, holding kuul.toml (a path to the kuul.toml itself
    /// also works).
    #[arg(value_parser = parse_job_dir)]
    pub job_dir: PathBuf,

    /// The OCI image layout directory to write [default: JOB_DIR/.kuul/oci].
    #[arg(long, value_name = "DIR")]
    pub layout: Option<PathBuf>,

    /// The image creation time and every file's mtime, in seconds since the
    /// Unix epoch [default: 0, for reproducible builds].
    #[arg(long, env = "SOURCE_DATE_EPOCH", value_name = "SECONDS")]
    pub source_date_epoch: Option<i64>,

    /// Fail unless kuul.lock exists, the base image tag still points to the
    /// pinned digest, and resolving `image.packages` again gives exactly
    /// the locked packages.
    #[arg(long)]
    pub locked: bool,

    /// The Debian repository URL (`http://`, `https://` or `file://`) for
    /// `image.packages`; overrides `debian.mirror` and the apt sources.
    #[arg(long, env = "KUUL_DEBIAN_MIRROR", value_name = "URL")]
    pub debian_mirror: Option<String>,

    /// The download cache for Debian packages and base image layers,
    /// shared between jobs [default: $XDG_CACHE_HOME/kuul or ~/.cache/kuul].
    #[arg(long, env = "KUUL_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Platforms to build, comma-separated, such as `linux/amd64,linux/arm64`.
    /// Two or more give an image index with one manifest per platform
    /// [default: the build machine's, or `debian.architecture`].
    #[arg(long, env = "KUUL_PLATFORM", value_name = "OS/ARCH[/VARIANT],...")]
    pub platform: Option<String>,

    /// A registry reached over plain HTTP (loopback registries always are),
    /// for the base image pull and the push. Credentials go to it only when
    /// it is on loopback. Can be repeated.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registries: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// The job directory, holding kuul.toml; kuul.lock is written there.
    pub job_dir: PathBuf,

    /// The Debian repository URL; overrides `debian.mirror` and the apt
    /// sources.
    #[arg(long, env = "KUUL_DEBIAN_MIRROR", value_name = "URL")]
    pub debian_mirror: Option<String>,

    /// A registry reached over plain HTTP (loopback registries always are),
    /// for the base image pull. Credentials go to it only when it is on
    /// loopback. Can be repeated.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registries: Vec<String>,

    /// Platforms to lock packages for, comma-separated, such as
    /// `linux/amd64,linux/arm64` [default: the architectures kuul.lock
    /// holds, else the build machine's or `debian.architecture`].
    #[arg(long, env = "KUUL_PLATFORM", value_name = "OS/ARCH[/VARIANT],...")]
    pub platform: Option<String>,

    /// The download cache for Debian packages and base image layers,
    /// shared between jobs [default: $XDG_CACHE_HOME/kuul or ~/.cache/kuul].
    #[arg(long, env = "KUUL_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub build: BuildOptions,

    /// Also write an image archive that `docker load` and `podman load`
    /// accept (it is an OCI archive too).
    #[arg(long, value_name = "FILE")]
    pub tarball: Option<PathBuf>,

    /// Output format of the build summary on stdout.
    #[arg(short, long, value_enum, default_value_t = SummaryFormat::Text)]
    pub output: SummaryFormat,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    #[command(flatten)]
    pub build: BuildOptions,

    /// Registry and repository prefix to push to, such as
    /// `registry.example:5000/ops`; the image goes to PREFIX/NAME:TAG, where
    /// NAME is `image.repository` or the job name.
    #[arg(long, env = "KUUL_REGISTRY", value_name = "HOST[:PORT]/PREFIX")]
    pub registry: String,

    /// Another registry and repository prefix that receives the same image;
    /// the CronJob names the image under `--registry`. Can be repeated.
    #[arg(long = "extra-registry", value_name = "HOST[:PORT]/PREFIX")]
    pub extra_registries: Vec<String>,

    /// Another tag to push besides `image.tag`, to every registry. Can be
    /// repeated.
    #[arg(long = "extra-tag", value_name = "TAG")]
    pub extra_tags: Vec<String>,

    /// Write the CronJob manifest to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,

    /// Output format on stdout: the CronJob as YAML, or a JSON object with
    /// the pushed reference, the upload counts and the CronJob.
    #[arg(short, long, value_enum, default_value_t = ManifestFormat::Yaml)]
    pub output: ManifestFormat,

    /// Also apply the CronJob to the clusters of `--context` or of
    /// `[deploy] contexts`, as `kuul deploy` does.
    #[arg(long)]
    pub deploy: bool,

    #[command(flatten)]
    pub apply: ApplyFlags,
}

#[derive(Debug, Args)]
pub struct ManifestArgs {
    /// The job directory, holding kuul.toml (a path to the kuul.toml itself
    /// also works).
    #[arg(value_parser = parse_job_dir)]
    pub job_dir: PathBuf,

    /// The pushed image, pinned by digest: `HOST[:PORT]/REPO[:TAG]@sha256:HEX`.
    #[arg(long, value_name = "REF@DIGEST")]
    pub image: String,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = ManifestFormat::Yaml)]
    pub output: ManifestFormat,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The job directory, holding kuul.toml (a path to the kuul.toml itself
    /// also works).
    #[arg(value_parser = parse_job_dir)]
    pub job_dir: PathBuf,

    /// How many upcoming run times to print.
    #[arg(long, default_value_t = 5, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub runs: u16,

    /// Exit with status 1 when there are warnings, not only on errors, for
    /// CI.
    #[arg(long)]
    pub strict: bool,

    /// List the runs after this instant instead of now, such as
    /// `2027-03-27T00:00:00Z` to see a daylight saving time change.
    #[arg(long, value_name = "RFC3339")]
    pub from: Option<jiff::Timestamp>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The directory to create; it must not exist or be empty.
    pub dir: PathBuf,

    /// The scaffold to write.
    #[arg(long, default_value = "shell", value_name = "NAME")]
    pub template: String,

    /// The job name [default: the directory's name].
    #[arg(long)]
    pub name: Option<String>,
}

/// The clusters and namespace that a cluster command works on.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// A kubeconfig context to work on. Can be repeated [default: the
    /// contexts in `[deploy]` for commands that read kuul.toml, else the
    /// current context].
    #[arg(long = "context", value_name = "NAME")]
    pub contexts: Vec<String>,

    /// The namespace [default: `[deploy] namespace` for commands that read
    /// kuul.toml, else the context's namespace].
    #[arg(short, long, value_name = "NAME")]
    pub namespace: Option<String>,
}

/// Options of every command that applies a CronJob.
#[derive(Debug, Args)]
pub struct ApplyFlags {
    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// Send a server-side dry run: the API server validates and admits the
    /// CronJob but stores nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Fail, instead of warning, when no Ready node matches the job's node
    /// selector, affinity and tolerations.
    #[arg(long)]
    pub strict: bool,

    /// Take over fields that other field managers own, such as a schedule
    /// changed with `kubectl edit`.
    #[arg(long)]
    pub force_conflicts: bool,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The job directory, holding kuul.toml.
    pub job_dir: PathBuf,

    /// The pushed image, pinned by digest: `HOST[:PORT]/REPO[:TAG]@sha256:HEX`.
    #[arg(long, value_name = "REF@DIGEST")]
    pub image: String,

    #[command(flatten)]
    pub apply: ApplyFlags,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The job directory, holding kuul.toml.
    pub job_dir: PathBuf,

    /// The pushed image, pinned by digest: `HOST[:PORT]/REPO[:TAG]@sha256:HEX`.
    #[arg(long, value_name = "REF@DIGEST")]
    pub image: String,

    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// Compute the diff as if `--force-conflicts` were given to deploy.
    #[arg(long)]
    pub force_conflicts: bool,

    /// Exit with status 1 when there are differences, as `git diff
    /// --exit-code` does.
    #[arg(long)]
    pub exit_code: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// List CronJobs in every namespace.
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,

    /// Output format on stdout.
    #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
    pub output: ListFormat,

    /// Exit with status 1 when a CronJob that is not suspended has not
    /// succeeded within this window, such as `26h` or `1d12h` (units `s`,
    /// `m`, `h`, `d`).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub fail_on_stale: Option<jiff::SignedDuration>,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// The CronJob name.
    pub name: String,

    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// Output format on stdout.
    #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
    pub output: ListFormat,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The CronJob name.
    pub name: String,

    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// The run (Job name) to show [default: the newest run].
    #[arg(long, value_name = "JOB")]
    pub run: Option<String>,

    /// Keep printing the newest pod's log as it grows, until its container
    /// ends.
    #[arg(short, long)]
    pub follow: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The CronJob name.
    pub name: String,

    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// Print the run's logs as it goes and exit with its result: 0 when it
    /// succeeds, 1 when it fails.
    #[arg(long)]
    pub wait: bool,

    /// With `--wait`, give up after this long, such as `10m` (units `s`,
    /// `m`, `h`, `d`) [default: no limit].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "wait")]
    pub timeout: Option<jiff::SignedDuration>,
}

#[derive(Debug, Args)]
pub struct SuspendArgs {
    /// The CronJob name.
    pub name: String,

    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// The job directories to keep, each holding kuul.toml. Their CronJobs
    /// are kept in the namespace each deploys to.
    #[arg(required = true, value_name = "JOB_DIR")]
    pub job_dirs: Vec<PathBuf>,

    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// Look for CronJobs to delete in every namespace [default: the
    /// namespaces the job directories deploy to].
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,

    /// Delete the CronJobs, with their Jobs and pods. Without it, kuul only
    /// lists what it would delete.
    #[arg(long)]
    pub confirm: bool,
}

/// Parses a duration written as whole numbers with units, such as `90s`,
/// `26h` or `1d12h`. A day is 24 hours.
pub fn parse_duration(text: &str) -> Result<jiff::SignedDuration, String> {
    let invalid = || format!("invalid duration `{text}`: write numbers with units `s`, `m`, `h` or `d`, such as `26h`");
    let mut seconds: i64 = 0;
    let mut digits = String::new();
    for character in text.trim().chars() {
        if character.is_ascii_digit() {
            digits.push(character);
            continue;
        }
        let unit: i64 = match character {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(invalid()),
        };
        let number: i64 = digits.parse().map_err(|_| invalid())?;
        seconds = number.checked_mul(unit).and_then(|part| seconds.checked_add(part)).ok_or_else(invalid)?;
        digits.clear();
    }
    if !digits.is_empty() || seconds == 0 {
        return Err(invalid());
    }
    Ok(jiff::SignedDuration::from_secs(seconds))
}

/// Output formats of the listing commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// Aligned columns for people.
    Table,
    Json,
    Yaml,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SummaryFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ManifestFormat {
    Yaml,
    Json,
}

/// Accepts a job directory, or the path of its `kuul.toml`, which is taken
/// to mean the directory that contains it.
fn parse_job_dir(value: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(value);
    if !path.is_file() {
        return Ok(path);
    }

    if path.file_name().is_some_and(|name| name == "kuul.toml") {
        let parent = path.parent().filter(|parent| !parent.as_os_str().is_empty());
        return Ok(parent.map_or_else(|| PathBuf::from("."), PathBuf::from));
    }
    Err(format!("`{value}` is a file, not a job directory; pass the directory that holds `kuul.toml`"))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn parse_duration_adds_units() {
        assert_eq!(parse_duration("1d12h").unwrap().as_secs(), 129_600);
        assert_eq!(parse_duration("90s").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("26h").unwrap().as_secs(), 93_600);
    }

    #[test]
    fn parse_duration_rejects_bad_text() {
        for text in ["", "12", "h", "5w", "0s", "1.5h", "-1h"] {
            assert!(parse_duration(text).is_err(), "`{text}` should be rejected");
        }
    }
}

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
    /// Resolve `image.packages` again and rewrite kuul.lock.
    Lock(LockArgs),
}

/// Options shared by the commands that build an image.
#[derive(Debug, Args)]
pub struct BuildOptions {
    /// The job directory, holding kuul.toml (a path to the kuul.toml itself
    /// also works).
    #[arg(value_parser = parse_job_dir)]
    pub job_dir: PathBuf,

    /// Where to write the OCI image layout [default: JOB_DIR/.kuul/oci].
    #[arg(long, value_name = "DIR")]
    pub layout: Option<PathBuf>,

    /// The image creation time and every file's mtime, in seconds since the
    /// Unix epoch [default: 0, for reproducible builds].
    #[arg(long, env = "SOURCE_DATE_EPOCH", value_name = "SECONDS")]
    pub source_date_epoch: Option<i64>,

    /// Fail unless kuul.lock exists and resolving `image.packages` again
    /// gives exactly the locked packages.
    #[arg(long)]
    pub locked: bool,

    /// The Debian repository URL (`http://`, `https://` or `file://`) for
    /// `image.packages`; overrides `debian.mirror` and the apt sources.
    #[arg(long, env = "KUUL_DEBIAN_MIRROR", value_name = "URL")]
    pub debian_mirror: Option<String>,

    /// The download cache for Debian packages, shared between jobs
    /// [default: $XDG_CACHE_HOME/kuul or ~/.cache/kuul].
    #[arg(long, env = "KUUL_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// The job directory, holding kuul.toml; kuul.lock is written there.
    pub job_dir: PathBuf,

    /// The Debian repository URL; overrides `debian.mirror` and the apt
    /// sources.
    #[arg(long, env = "KUUL_DEBIAN_MIRROR", value_name = "URL")]
    pub debian_mirror: Option<String>,
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

    /// A registry reached over plain HTTP (loopback registries always are).
    /// Credentials are never sent to it. Can be repeated.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registries: Vec<String>,

    /// Write the CronJob manifest to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,

    /// Output format on stdout: the CronJob as YAML, or a JSON object with
    /// the pushed reference, the upload counts and the CronJob.
    #[arg(short, long, value_enum, default_value_t = ManifestFormat::Yaml)]
    pub output: ManifestFormat,
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
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub runs: usize,

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
/// to mean the directory that holds it.
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

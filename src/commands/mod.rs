//! One module per CLI command. Each turns parsed arguments into calls on the
//! library and prints the result; progress goes to stderr through
//! [`StderrReporter`].

mod build;
mod check;
mod cluster;
mod deploy;
mod diagnostics;
mod diff;
mod init;
mod lock;
mod logs;
mod manifest;
mod prune;
mod publish;
mod run;
mod runs;
mod status;
mod suspend;
mod table;

use crate::cli::{Cli, Command};
use crate::report::Reporter;

/// Runs the command that `cli` names.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Build(args) => build::run(args),
        Command::Publish(args) => publish::run(args),
        Command::Manifest(args) => manifest::run(args),
        Command::Check(args) => check::run(args),
        Command::Init(args) => init::run(args),
        Command::Lock(args) => lock::run(args),
        Command::Deploy(args) => deploy::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Status(args) => status::run(args),
        Command::Runs(args) => runs::run(args),
        Command::Logs(args) => logs::run(args),
        Command::Run(args) => run::run(args),
        Command::Suspend(args) => suspend::run(args, true),
        Command::Resume(args) => suspend::run(args, false),
        Command::Prune(args) => prune::run(args),
    }
}

/// Sends library log events (such as registry retries) to stderr. The
/// `KUUL_LOG` variable takes a `tracing` filter such as `debug`; the default
/// shows warnings and errors.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KUUL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .with_target(false)
        .init();
}

/// Prints an error and its causes to stderr, once, as `error: …` followed
/// by any `hint: …` lines the messages carry.
pub fn print_error(error: &anyhow::Error) {
    eprintln!("error: {}", error_text(error));
}

/// Joins an error and its causes with `: `, leaving out a cause whose text
/// the message already contains, as it does when an error's message embeds
/// its source.
fn error_text(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

/// Writes progress to stderr as plain lines, one per event, so the output
/// reads the same on a terminal and in CI logs.
pub struct StderrReporter;

impl Reporter for StderrReporter {
    fn step(&self, message: &str) {
        eprintln!("  {message}");
    }

    fn blob_uploaded(&self, digest: &str, bytes: u64) {
        eprintln!("  uploaded {} ({})", short_digest(digest), human_bytes(bytes));
    }

    fn blob_skipped(&self, digest: &str, bytes: u64) {
        eprintln!("  exists   {} ({})", short_digest(digest), human_bytes(bytes));
    }

    fn warning(&self, message: &str) {
        eprintln!("warning: {message}");
    }

    fn transfer_started(&self, label: &str, total_bytes: u64) {
        if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            return;
        }
        let bar = indicatif::ProgressBar::new(total_bytes);
        let style = indicatif::ProgressStyle::with_template("  {msg} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec}")
            .expect("the template is valid");
        bar.set_style(style);
        bar.set_message(label.to_owned());
        *TRANSFER_BAR.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(bar);
    }

    fn transfer_progressed(&self, bytes: u64) {
        if let Some(bar) = TRANSFER_BAR.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref() {
            bar.inc(bytes);
        }
    }

    fn transfer_finished(&self) {
        if let Some(bar) = TRANSFER_BAR.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
            bar.finish_and_clear();
        }
    }
}

/// The progress bar of the transfer that runs now, drawn only when stderr
/// is a terminal. CI logs get the plain step lines instead.
static TRANSFER_BAR: std::sync::Mutex<Option<indicatif::ProgressBar>> = std::sync::Mutex::new(None);

/// Shortens a `sha256:` digest to its first 12 hex digits, as `docker images` does.
pub(crate) fn short_digest(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

/// Formats a byte count in binary units with one decimal, such as `1.5 MiB`.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// Builds the options shared by `build` and `publish` from the arguments.
pub(crate) fn build_options(options: &crate::cli::BuildOptions) -> anyhow::Result<crate::build::BuildOptions> {
    let created = options.source_date_epoch.unwrap_or(0);
    anyhow::ensure!(
        jiff::Timestamp::from_second(created).is_ok(),
        "invalid `SOURCE_DATE_EPOCH` `{created}`: out of range\nhint: give seconds since 1970-01-01 UTC"
    );
    Ok(crate::build::BuildOptions {
        layout_dir: options.layout.clone(),
        created,
        search_path: std::env::var_os("PATH").unwrap_or_default(),
        debian: debian_options(options),
        platforms: match &options.platform {
            Some(text) => crate::build::platforms::parse(text)?,
            None => Vec::new(),
        },
        insecure_registries: options.insecure_registries.clone(),
    })
}

/// Builds the Debian package options shared by `build` and `publish`.
fn debian_options(options: &crate::cli::BuildOptions) -> crate::sources::debian::DebianOptions {
    use crate::sources::debian::{DebianOptions, LockMode};

    let mut debian = DebianOptions { mirror_override: options.debian_mirror.clone(), ..Default::default() };
    if let Some(cache_dir) = &options.cache_dir {
        debian.cache_dir = cache_dir.clone();
    }
    if options.locked {
        debian.lock_mode = LockMode::Locked;
    }
    debian
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_skips_repeated_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let error = anyhow::Error::new(crate::sources::debian::DebianError::Io { path: "/x".into(), source: io })
            .context("failed to build `job`");

        assert_eq!(error_text(&error), "failed to build `job`: failed to access `/x`: no such file");
    }

    #[test]
    fn error_text_keeps_new_cause() {
        let error = anyhow::anyhow!("connection refused").context("failed to push `job`");

        assert_eq!(error_text(&error), "failed to push `job`: connection refused");
    }

    #[test]
    fn human_bytes_uses_binary_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
    }

    #[test]
    fn short_digest_keeps_twelve_hex_digits() {
        assert_eq!(short_digest("sha256:0123456789abcdef"), "0123456789ab");
    }
}

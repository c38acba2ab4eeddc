//! One module per CLI command.

use crate::cli::Cli;

/// Runs the command that `cli` names.
pub fn run(_cli: Cli) -> anyhow::Result<()> {
    Ok(())
}

/// Prints an error chain to stderr, once.
pub fn print_error(error: &anyhow::Error) {
    eprintln!("error: {error:#}");
}

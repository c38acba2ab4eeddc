//! Command-line definitions. Doc comments here are the help text.

use clap::Parser;

/// Package a periodic job into a slim OCI image and a Kubernetes CronJob.
#[derive(Debug, Parser)]
#[command(name = "kuul", version)]
pub struct Cli {}

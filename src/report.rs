//! Progress events that leave the library. Only the CLI layer turns them into
//! output, so library code never writes to the terminal itself.

/// Receives progress from long operations (building layers, pushing blobs).
///
/// Every method has an empty default, so a caller implements only what it
/// shows.
pub trait Reporter: Send + Sync {
    /// A named step starts, such as `layer job files` or `push manifest`.
    fn step(&self, _message: &str) {}

    /// A blob went up to the registry.
    fn blob_uploaded(&self, _digest: &str, _bytes: u64) {}

    /// The registry already had a blob, so it was not uploaded again.
    fn blob_skipped(&self, _digest: &str, _bytes: u64) {}

    /// Something the user should know about that does not stop the run.
    fn warning(&self, _message: &str) {}
}

/// A reporter that drops every event, for tests and library callers.
pub struct SilentReporter;

impl Reporter for SilentReporter {}

//! Progress events that leave the library. Only the CLI layer turns them into
//! output, so library code never writes to the terminal itself.

/// Receives progress from long operations (building layers, pushing blobs).
///
/// Every method has an empty default, so a caller implements only what it
/// shows.
pub trait Reporter: Send + Sync {
    /// Reports the start of a named step, such as `layer job files` or `push manifest`.
    fn step(&self, _message: &str) {}

    /// Reports a blob uploaded to the registry.
    fn blob_uploaded(&self, _digest: &str, _bytes: u64) {}

    /// Reports a blob the registry already had, so it was not uploaded again.
    fn blob_skipped(&self, _digest: &str, _bytes: u64) {}

    /// Something the user should know about that does not stop the run.
    fn warning(&self, _message: &str) {}

    /// Reports the start of a transfer of `total_bytes`, such as the downloads of a
    /// package set. At most one transfer runs at a time.
    fn transfer_started(&self, _label: &str, _total_bytes: u64) {}

    /// `bytes` more of the current transfer arrived.
    fn transfer_progressed(&self, _bytes: u64) {}

    /// Reports the end of the current transfer, whether it succeeded or not.
    fn transfer_finished(&self) {}
}

/// A reporter that drops every event, for tests and library callers.
pub struct SilentReporter;

impl Reporter for SilentReporter {}

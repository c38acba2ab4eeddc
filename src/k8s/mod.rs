//! The Kubernetes side: the CronJob manifest (pure), and the cluster
//! operations on it through kube's client: apply, preflight checks, status,
//! runs, logs, run-now, suspend and resume.

pub mod apply;
pub mod cluster;
pub mod manifest;
pub mod operate;
pub mod preflight;
pub mod prune;
pub mod runs;
pub mod status;

pub use manifest::{cronjob, to_json, to_yaml};

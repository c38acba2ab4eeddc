//! The Kubernetes side: the CronJob manifest.

pub mod apply;
pub mod cluster;
pub mod manifest;
pub mod preflight;

pub use manifest::{cronjob, to_json, to_yaml};

//! The Kubernetes side: the CronJob manifest.

pub mod cluster;
pub mod manifest;

pub use manifest::{cronjob, to_json, to_yaml};

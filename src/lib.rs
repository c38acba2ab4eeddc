//! kuul packages a periodic operations job into a slim OCI image and the
//! Kubernetes CronJob that runs it.
//!
//! The pipeline runs `kuul.toml` through these modules in order:
//! [`spec`] (parse and validate), [`sources`] (files for each layer),
//! [`image`] (layers, config, manifest, OCI layout), [`registry`] (push) and
//! [`k8s`] (the CronJob manifest). [`build`] wires the first three together,
//! and [`commands`] has one function per CLI command.

pub mod build;
pub mod cli;
pub mod commands;
pub mod image;
pub mod k8s;
pub mod registry;
pub mod report;
pub mod sources;
pub mod spec;

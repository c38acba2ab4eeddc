//! Talking to registries: image references, credentials from the Docker
//! config, the plain-HTTP policy, pulling base images and the push.

pub mod auth;
mod error;
#[cfg(test)]
mod fake_registry;
mod http;
pub mod pull;
pub mod push;
pub mod reference;
mod retry;
#[cfg(test)]
mod secrets_tests;
mod transport;

pub use auth::{Credential, docker_config_dir, resolve_credential};
pub use error::RegistryError;
pub use push::{MountSource, PushOptions, PushOutcome, push, push_index, push_tag};
pub use reference::{BaseReference, PinnedReference, Target, parse_base, parse_pinned};
pub use transport::{is_loopback, uses_plain_http};

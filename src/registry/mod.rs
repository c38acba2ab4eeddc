//! Pushing images from an OCI layout to a registry: image references,
//! credentials from the Docker config, the plain-HTTP policy and the push.

pub mod auth;
mod error;
pub mod push;
pub mod reference;
mod transport;

pub use auth::{Credential, docker_config_dir, resolve_credential};
pub use error::RegistryError;
pub use push::{PushOptions, PushOutcome, push};
pub use reference::{PinnedReference, Target, parse_pinned};
pub use transport::{is_loopback, uses_plain_http};

//! Pushing images from an OCI layout to a registry.

//! The build pipeline: `kuul.toml` to layers to an image in an OCI layout.

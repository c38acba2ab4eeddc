//! The OCI image layout on disk: `oci-layout`, `index.json`, `blobs/`.

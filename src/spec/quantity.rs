//! Kubernetes resource quantities (`250m`, `128Mi`, `1e3`), parsed exactly.

//! The Kubernetes side: the CronJob manifest.

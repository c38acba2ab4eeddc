//! Finding and deleting kuul-managed CronJobs that no job directory
//! declares any more.

use std::collections::BTreeSet;

use k8s_openapi::api::batch::v1::CronJob;
use kube::api::{DeleteParams, ListParams};

use super::cluster::{Cluster, ClusterError};
use super::manifest::{MANAGED_BY_LABEL, MANAGER};

/// Returns the kuul-managed CronJobs in `namespaces` (every namespace when
/// `None`) whose `(namespace, name)` is not in `keep`, sorted.
pub async fn candidates(
    cluster: &Cluster,
    namespaces: Option<&BTreeSet<String>>,
    keep: &BTreeSet<(String, String)>,
) -> Result<Vec<(String, String)>, ClusterError> {
    let managed = ListParams::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGER}"));

    let mut found = Vec::new();
    match namespaces {
        None => {
            let list = cluster.all::<CronJob>().list(&managed).await;
            found.extend(list.map_err(|error| cluster.error("list CronJobs in all namespaces", error))?.items);
        }
        Some(namespaces) => {
            for namespace in namespaces {
                let list = cluster.namespaced::<CronJob>(namespace).list(&managed).await;
                let action = format!("list CronJobs in namespace `{namespace}`");
                found.extend(list.map_err(|error| cluster.error(action, error))?.items);
            }
        }
    }

    let mut names: Vec<(String, String)> = found
        .into_iter()
        .map(|cronjob| (cronjob.metadata.namespace.unwrap_or_default(), cronjob.metadata.name.unwrap_or_default()))
        .filter(|key| !keep.contains(key))
        .collect();
    names.sort();
    Ok(names)
}

/// Deletes the CronJob with its Jobs and pods, which the garbage collector
/// removes in the background.
pub async fn delete_cronjob(cluster: &Cluster, namespace: &str, name: &str) -> Result<(), ClusterError> {
    cluster
        .namespaced::<CronJob>(namespace)
        .delete(name, &DeleteParams::background())
        .await
        .map_err(|error| cluster.error(format!("delete CronJob `{namespace}/{name}`"), error))?;
    Ok(())
}

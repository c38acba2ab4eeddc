//! Operations on one CronJob: its runs, a run started now, suspend and
//! resume, and pod logs.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{ListParams, LogParams, Patch, PatchParams, PostParams};

use super::apply::FIELD_MANAGER;
use super::cluster::{Cluster, ClusterError};
use super::runs::{CONTROLLER_UID_LABEL, MANUAL_ANNOTATION, owned_jobs, pods_of};

/// Longest Job name: a Job's name becomes a label value on its pods.
const MAX_JOB_NAME: usize = 63;

/// Returns the CronJob `namespace/name`.
pub async fn get_cronjob(cluster: &Cluster, namespace: &str, name: &str) -> Result<CronJob, ClusterError> {
    let api = cluster.namespaced::<CronJob>(namespace);
    let error = match api.get(name).await {
        Ok(cronjob) => return Ok(cronjob),
        Err(error) => cluster.error(format!("get CronJob `{namespace}/{name}`"), error),
    };

    match error {
        ClusterError::Request { context, action, code: Some(404), message, .. } => Err(ClusterError::Request {
            context,
            action,
            code: Some(404),
            message,
            hint: Some("`kuul status --all-namespaces` lists the CronJobs kuul manages".to_owned()),
        }),
        other => Err(other),
    }
}

/// A run of a CronJob with its pods, oldest pod first.
#[derive(Debug, Clone)]
pub struct Run {
    pub job: Job,
    pub pods: Vec<Pod>,
}

/// Returns the runs of `cronjob` that the cluster keeps, newest first.
pub async fn runs(cluster: &Cluster, cronjob: &CronJob) -> Result<Vec<Run>, ClusterError> {
    let namespace = cronjob.metadata.namespace.as_deref().unwrap_or("default");
    let name = cronjob.metadata.name.as_deref().unwrap_or_default();

    let jobs = cluster
        .namespaced::<Job>(namespace)
        .list(&ListParams::default())
        .await
        .map_err(|error| cluster.error(format!("list Jobs in namespace `{namespace}`"), error))?
        .items;
    let owned: Vec<Job> = owned_jobs(cronjob, &jobs).into_iter().cloned().collect();
    if owned.is_empty() {
        return Ok(Vec::new());
    }

    let uids: Vec<&str> = owned.iter().filter_map(|job| job.metadata.uid.as_deref()).collect();
    let selector = format!("{CONTROLLER_UID_LABEL} in ({})", uids.join(","));
    let pods = cluster
        .namespaced::<Pod>(namespace)
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|error| cluster.error(format!("list the pods of CronJob `{namespace}/{name}`"), error))?
        .items;

    Ok(owned
        .into_iter()
        .map(|job| {
            let job_pods = pods_of(&job, &pods).into_iter().cloned().collect();
            Run { job, pods: job_pods }
        })
        .collect())
}

/// Returns the pods of the Job `namespace/job`, oldest first.
pub async fn job_pods(cluster: &Cluster, job: &Job) -> Result<Vec<Pod>, ClusterError> {
    let namespace = job.metadata.namespace.as_deref().unwrap_or("default");
    let name = job.metadata.name.as_deref().unwrap_or_default();
    let uid = job.metadata.uid.as_deref().unwrap_or_default();

    let selector = format!("{CONTROLLER_UID_LABEL}={uid}");
    let pods = cluster
        .namespaced::<Pod>(namespace)
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|error| cluster.error(format!("list the pods of Job `{namespace}/{name}`"), error))?
        .items;
    Ok(pods_of(job, &pods).into_iter().cloned().collect())
}

/// Builds the Job that starts `cronjob` now, as `kubectl create job
/// --from=cronjob/NAME` does: the job template with the manual annotation
/// and a controller owner reference, so the CronJob's history limits and
/// tools such as k9s count the run. `suffix` makes the name unique.
pub fn manual_job(cronjob: &CronJob, suffix: &str) -> Job {
    let name = cronjob.metadata.name.clone().unwrap_or_default();
    let template = cronjob.spec.as_ref().map(|spec| spec.job_template.clone()).unwrap_or_default();
    let template_metadata = template.metadata.unwrap_or_default();

    let mut annotations = template_metadata.annotations.unwrap_or_default();
    annotations.insert(MANUAL_ANNOTATION.to_owned(), "manual".to_owned());

    let owner = OwnerReference {
        api_version: "batch/v1".to_owned(),
        kind: "CronJob".to_owned(),
        name: name.clone(),
        uid: cronjob.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };

    Job {
        metadata: ObjectMeta {
            name: Some(manual_job_name(&name, suffix)),
            namespace: cronjob.metadata.namespace.clone(),
            labels: template_metadata.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

/// Returns `NAME-manual-SUFFIX`, shortening `NAME` so the whole fits in 63
/// characters.
fn manual_job_name(cronjob: &str, suffix: &str) -> String {
    let tail = format!("-manual-{suffix}");
    let room = MAX_JOB_NAME.saturating_sub(tail.len());
    let head = cronjob[..cronjob.len().min(room)].trim_end_matches('-');
    format!("{head}{tail}")
}

/// Returns five lowercase letters and digits from the clock, to make manual
/// run names unique.
pub fn name_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut value = jiff::Timestamp::now().as_nanosecond().unsigned_abs();
    (0..5)
        .map(|_| {
            let character = ALPHABET[(value % ALPHABET.len() as u128) as usize] as char;
            value /= ALPHABET.len() as u128;
            character
        })
        .collect()
}

/// Creates the Job that starts `cronjob` now and returns it as stored.
pub async fn start_run(cluster: &Cluster, cronjob: &CronJob) -> Result<Job, ClusterError> {
    let job = manual_job(cronjob, &name_suffix());
    let namespace = job.metadata.namespace.clone().unwrap_or_else(|| "default".to_owned());
    let name = job.metadata.name.clone().unwrap_or_default();

    let params = PostParams { field_manager: Some(FIELD_MANAGER.to_owned()), ..Default::default() };
    cluster
        .namespaced::<Job>(&namespace)
        .create(&params, &job)
        .await
        .map_err(|error| cluster.error(format!("create Job `{namespace}/{name}`"), error))
}

/// Returns the Job `namespace/name`.
pub async fn get_job(cluster: &Cluster, namespace: &str, name: &str) -> Result<Job, ClusterError> {
    cluster
        .namespaced::<Job>(namespace)
        .get(name)
        .await
        .map_err(|error| cluster.error(format!("get Job `{namespace}/{name}`"), error))
}

/// Sets `spec.suspend` of the CronJob with a merge patch. The field manager
/// is `kuul` with an update operation, so the flag belongs to no apply and
/// a later `kuul deploy` keeps it.
pub async fn set_suspend(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    suspend: bool,
) -> Result<CronJob, ClusterError> {
    let patch = serde_json::json!({"spec": {"suspend": suspend}});
    let params = PatchParams { field_manager: Some(FIELD_MANAGER.to_owned()), ..Default::default() };
    let verb = if suspend { "suspend" } else { "resume" };

    cluster
        .namespaced::<CronJob>(namespace)
        .patch(name, &params, &Patch::Merge(&patch))
        .await
        .map_err(|error| cluster.error(format!("{verb} CronJob `{namespace}/{name}`"), error))
}

/// Returns the names of `pod`'s containers with their restart counts.
pub fn containers(pod: &Pod) -> Vec<(String, i32)> {
    let restarts: BTreeMap<&str, i32> = pod
        .status
        .as_ref()
        .and_then(|status| status.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .map(|status| (status.name.as_str(), status.restart_count))
        .collect();

    let spec_containers = pod.spec.as_ref().map(|spec| spec.containers.as_slice()).unwrap_or_default();
    spec_containers
        .iter()
        .map(|container| (container.name.clone(), restarts.get(container.name.as_str()).copied().unwrap_or(0)))
        .collect()
}

/// Returns the log of one container, or of its instance before the last
/// restart when `previous` is set.
pub async fn container_log(
    cluster: &Cluster,
    pod: &Pod,
    container: &str,
    previous: bool,
) -> Result<String, ClusterError> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let params = LogParams { container: Some(container.to_owned()), previous, ..Default::default() };

    cluster
        .namespaced::<Pod>(namespace)
        .logs(name, &params)
        .await
        .map_err(|error| cluster.error(format!("get the log of pod `{namespace}/{name}`"), error))
}

/// Copies the log of one container to `output` as it grows, until the
/// container ends.
pub async fn follow_log(
    cluster: &Cluster,
    pod: &Pod,
    container: &str,
    output: &mut (dyn std::io::Write + Send),
) -> Result<(), ClusterError> {
    use futures_util::AsyncReadExt;

    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let action = format!("follow the log of pod `{namespace}/{name}`");
    let params = LogParams { container: Some(container.to_owned()), follow: true, ..Default::default() };

    let stream = cluster
        .namespaced::<Pod>(namespace)
        .log_stream(name, &params)
        .await
        .map_err(|error| cluster.error(action.clone(), error))?;
    let mut stream = std::pin::pin!(stream);

    let mut buffer = vec![0u8; 8192];
    loop {
        let read = stream.read(&mut buffer).await.map_err(|error| ClusterError::Request {
            context: cluster.context.clone(),
            action: action.clone(),
            code: None,
            message: error.to_string(),
            hint: None,
        })?;
        if read == 0 {
            return Ok(());
        }
        let written = output.write_all(&buffer[..read]).and_then(|()| output.flush());
        if let Err(error) = written {
            // The reader went away, such as `kuul logs --follow | head`.
            tracing::debug!("stopped following the log of pod `{namespace}/{name}`: {error}");
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::batch::v1::{CronJobSpec, JobSpec, JobTemplateSpec};

    use super::*;

    fn cronjob(name: &str) -> CronJob {
        CronJob {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some("ops".to_owned()),
                uid: Some("uid-1".to_owned()),
                ..Default::default()
            },
            spec: Some(CronJobSpec {
                schedule: "@daily".to_owned(),
                job_template: JobTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(BTreeMap::from([("app.kubernetes.io/name".to_owned(), name.to_owned())])),
                        ..Default::default()
                    }),
                    spec: Some(JobSpec { backoff_limit: Some(2), ..Default::default() }),
                },
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn manual_job_has_annotation_and_controller() {
        let job = manual_job(&cronjob("backup"), "x2b4c");

        let owner = &job.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(job.metadata.name.as_deref(), Some("backup-manual-x2b4c"));
        assert_eq!(job.metadata.annotations.unwrap().get(MANUAL_ANNOTATION).map(String::as_str), Some("manual"));
        assert_eq!((owner.kind.as_str(), owner.uid.as_str(), owner.controller), ("CronJob", "uid-1", Some(true)));
        assert_eq!(job.metadata.labels.unwrap().get("app.kubernetes.io/name").map(String::as_str), Some("backup"));
        assert_eq!(job.spec.unwrap().backoff_limit, Some(2));
    }

    #[test]
    fn manual_job_name_fits_63_characters() {
        let long = "a".repeat(52);

        let name = manual_job_name(&long, "x2b4c");

        assert_eq!(name.len(), 63);
        assert!(name.ends_with("-manual-x2b4c"), "{name}");
    }

    #[test]
    fn manual_job_name_drops_trailing_dash() {
        let name = manual_job_name(&format!("{}-b", "a".repeat(49)), "x2b4c");

        assert_eq!(name, format!("{}-manual-x2b4c", "a".repeat(49)));
    }

    #[test]
    fn name_suffix_has_five_characters() {
        assert_eq!(name_suffix().len(), 5);
    }
}

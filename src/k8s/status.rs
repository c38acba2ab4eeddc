//! One status row per kuul-managed CronJob, and the requests that gather
//! the CronJobs, their Jobs and their pods.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use serde::Serialize;

use super::cluster::{Cluster, ClusterError};
use super::manifest::{MANAGED_BY_LABEL, MANAGER};
use super::runs::{CONTROLLER_UID_LABEL, RunSummary, owned_jobs, pods_of, summarize};

/// The state of one CronJob, as `kuul status` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusRow {
    pub context: String,
    pub namespace: String,
    pub name: String,
    pub schedule: String,
    pub time_zone: Option<String>,
    pub suspended: bool,
    /// Runs going on now.
    pub active: usize,
    pub last_schedule: Option<Timestamp>,
    pub last_success: Option<Timestamp>,
    /// The newest run the cluster still keeps, within the history limits.
    pub last_run: Option<RunSummary>,
    /// The next scheduled run, absent while suspended or when kuul cannot
    /// read the schedule.
    pub next_run: Option<Timestamp>,
    pub created: Option<Timestamp>,
}

impl StatusRow {
    /// Returns whether the job has not succeeded within `window` before
    /// `now`. A job that never succeeded is stale once it is older than the
    /// window. Suspended jobs are never stale, since they are paused on
    /// purpose.
    pub fn is_stale(&self, window: SignedDuration, now: Timestamp) -> bool {
        if self.suspended {
            return false;
        }
        let Ok(cutoff) = now.checked_sub(window) else {
            return false;
        };
        match (self.last_success, self.created) {
            (Some(success), _) => success < cutoff,
            (None, Some(created)) => created < cutoff,
            (None, None) => true,
        }
    }
}

/// The CronJobs, Jobs and pods of one listing.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub cronjobs: Vec<CronJob>,
    pub jobs: Vec<Job>,
    pub pods: Vec<Pod>,
}

/// Lists the kuul-managed CronJobs with their Jobs and pods, in `namespace`
/// or, when it is `None`, in every namespace.
pub async fn snapshot(cluster: &Cluster, namespace: Option<&str>) -> Result<Snapshot, ClusterError> {
    let scope = namespace.map(|namespace| format!(" in namespace `{namespace}`")).unwrap_or_default();
    let managed = ListParams::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGER}"));
    let cronjobs = list::<CronJob>(cluster, namespace, &managed, &format!("list CronJobs{scope}")).await?;
    if cronjobs.is_empty() {
        return Ok(Snapshot::default());
    }

    let jobs = list::<Job>(cluster, namespace, &ListParams::default(), &format!("list Jobs{scope}")).await?;
    let with_uid = ListParams::default().labels(CONTROLLER_UID_LABEL);
    let pods = list::<Pod>(cluster, namespace, &with_uid, &format!("list pods{scope}")).await?;
    Ok(Snapshot { cronjobs, jobs, pods })
}

async fn list<K>(
    cluster: &Cluster,
    namespace: Option<&str>,
    params: &ListParams,
    action: &str,
) -> Result<Vec<K>, ClusterError>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    <K as kube::Resource>::DynamicType: Default,
{
    let api = match namespace {
        Some(namespace) => cluster.namespaced::<K>(namespace),
        None => cluster.all::<K>(),
    };
    let list = api.list(params).await.map_err(|error| cluster.error(action, error))?;
    Ok(list.items)
}

/// Builds the rows of `snapshot`, sorted by namespace and name.
pub fn rows(context: &str, snapshot: &Snapshot, now: Timestamp) -> Vec<StatusRow> {
    let mut pods_by_job: HashMap<String, Vec<&Pod>> = HashMap::new();
    for job in &snapshot.jobs {
        if let Some(uid) = &job.metadata.uid {
            pods_by_job.insert(uid.clone(), pods_of(job, &snapshot.pods));
        }
    }

    let mut rows: Vec<StatusRow> = snapshot
        .cronjobs
        .iter()
        .map(|cronjob| {
            let last_job = owned_jobs(cronjob, &snapshot.jobs).into_iter().next();
            let last_run = last_job.map(|job| {
                let pods = job.metadata.uid.as_ref().and_then(|uid| pods_by_job.get(uid)).cloned().unwrap_or_default();
                summarize(job, &pods, now)
            });
            row(context, cronjob, last_run, now)
        })
        .collect();
    rows.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    rows
}

fn row(context: &str, cronjob: &CronJob, last_run: Option<RunSummary>, now: Timestamp) -> StatusRow {
    let spec = cronjob.spec.clone().unwrap_or_default();
    let status = cronjob.status.clone().unwrap_or_default();
    let suspended = spec.suspend.unwrap_or(false);

    let time_zone = spec.time_zone.clone();
    let next_run = if suspended { None } else { next_run(&spec.schedule, time_zone.as_deref(), now) };

    StatusRow {
        context: context.to_owned(),
        namespace: cronjob.metadata.namespace.clone().unwrap_or_default(),
        name: cronjob.metadata.name.clone().unwrap_or_default(),
        schedule: spec.schedule,
        time_zone,
        suspended,
        active: status.active.map(|active| active.len()).unwrap_or(0),
        last_schedule: status.last_schedule_time.map(|time| time.0),
        last_success: status.last_successful_time.map(|time| time.0),
        last_run,
        next_run,
        created: cronjob.metadata.creation_timestamp.as_ref().map(|time| time.0),
    }
}

/// Returns the first run after `now` by the schedule in the time zone (the
/// controller's zone, which kuul cannot see, is taken as UTC when unset).
fn next_run(schedule: &str, time_zone: Option<&str>, now: Timestamp) -> Option<Timestamp> {
    let parsed = crate::spec::schedule::parse(schedule).ok()?;
    let runs = parsed.next_runs(time_zone.unwrap_or("Etc/UTC"), now, 1).ok()?;
    runs.first().map(|run| run.timestamp())
}

//! `kuul run`: start a CronJob's run now and, with `--wait`, print its logs
//! and exit with its result.

use std::collections::BTreeSet;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;

use super::cluster::runtime;
use crate::cli::RunArgs;
use crate::k8s::cluster::{Cluster, connect};
use crate::k8s::operate::{containers, follow_log, get_cronjob, get_job, job_pods, start_run};
use crate::k8s::runs::{RunResult, format_duration, reasons_text, summarize};

/// How often `--wait` reads the Job's state.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Prints the new Job's name on stdout, or with `--wait` the run's logs.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let clusters = connect(&args.cluster.contexts).await?;
        anyhow::ensure!(
            clusters.len() == 1,
            "`kuul run` starts one run in one cluster, but {} contexts were given\nhint: pass one `--context`",
            clusters.len()
        );
        let cluster = &clusters[0];
        let namespace = args.cluster.namespace.clone().unwrap_or_else(|| cluster.default_namespace.clone());

        let cronjob = get_cronjob(cluster, &namespace, &args.name).await?;
        let job = start_run(cluster, &cronjob).await?;
        let job_name = job.metadata.name.clone().unwrap_or_default();
        eprintln!("context `{}`: started Job `{namespace}/{job_name}`", cluster.context);

        if !args.wait {
            println!("{job_name}");
            return Ok(());
        }
        wait(cluster, &job, args.timeout).await
    })
}

/// Follows the logs of each pod of `job` in turn and returns when the Job
/// has succeeded (`Ok`) or failed (`Err`), or when `timeout` has passed.
async fn wait(cluster: &Cluster, job: &Job, timeout: Option<SignedDuration>) -> anyhow::Result<()> {
    let namespace = job.metadata.namespace.clone().unwrap_or_default();
    let name = job.metadata.name.clone().unwrap_or_default();
    let deadline = timeout.map(|timeout| tokio::time::Instant::now() + timeout.unsigned_abs());
    let mut followed = BTreeSet::new();
    let mut reported_reasons = Vec::new();

    loop {
        let current = get_job(cluster, &namespace, &name).await?;
        let pods = job_pods(cluster, &current).await?;

        for pod in pods.iter().filter(|pod| has_started(pod)) {
            let pod_name = pod.metadata.name.clone().unwrap_or_default();
            if followed.insert(pod_name.clone()) {
                if pods.len() > 1 || followed.len() > 1 {
                    eprintln!("==> pod `{pod_name}` <==");
                }
                follow_pod(cluster, pod, deadline).await?;
            }
        }

        let pod_refs: Vec<&Pod> = pods.iter().collect();
        let summary = summarize(&current, &pod_refs, Timestamp::now());
        let duration = summary.duration_seconds.map(format_duration).unwrap_or_else(|| "-".to_owned());
        match summary.result {
            RunResult::Succeeded => {
                eprintln!("run `{name}` succeeded in {duration}");
                return Ok(());
            }
            RunResult::Failed => {
                let reasons = reasons_text(&summary);
                let message = summary.message.map(|message| format!(" ({message})")).unwrap_or_default();
                anyhow::bail!(
                    "run `{name}` failed after {duration}: {reasons}{message}\nhint: `kuul logs {} --run {name}` prints its logs again",
                    owner_name(job)
                );
            }
            RunResult::Pending | RunResult::Running => {}
        }

        if summary.reasons != reported_reasons && !summary.reasons.is_empty() {
            let message = summary.message.clone().unwrap_or_default();
            eprintln!("warning: run `{name}` is waiting: {} {message}", summary.reasons.join(", "));
            reported_reasons = summary.reasons.clone();
        }

        if deadline.is_some_and(|deadline| tokio::time::Instant::now() >= deadline) {
            let limit = timeout.map(|timeout| format_duration(timeout.as_secs())).unwrap_or_default();
            anyhow::bail!(
                "timed out after {limit} waiting for run `{name}`, which is {}\nhint: the run goes on; `kuul runs {}` shows its result later",
                summary.result,
                owner_name(job)
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Returns whether a container of `pod` runs or has run, so it has a log.
fn has_started(pod: &Pod) -> bool {
    let statuses = pod.status.as_ref().and_then(|status| status.container_statuses.as_deref()).unwrap_or_default();
    statuses.iter().any(|status| {
        let state = status.state.clone().unwrap_or_default();
        state.running.is_some() || state.terminated.is_some()
    })
}

/// Follows every container log of `pod` to stdout, until the containers end
/// or `deadline` passes.
async fn follow_pod(cluster: &Cluster, pod: &Pod, deadline: Option<tokio::time::Instant>) -> anyhow::Result<()> {
    for (container, _) in containers(pod) {
        let mut stdout = std::io::stdout();
        let follow = follow_log(cluster, pod, &container, &mut stdout);
        match deadline {
            Some(deadline) => {
                // On timeout the caller reports it at its next check.
                if let Ok(result) = tokio::time::timeout_at(deadline, follow).await {
                    result?;
                }
            }
            None => follow.await?,
        }
    }
    Ok(())
}

/// Returns the name of the CronJob that owns `job`.
fn owner_name(job: &Job) -> String {
    let owners = job.metadata.owner_references.iter().flatten();
    owners.filter(|owner| owner.kind == "CronJob").map(|owner| owner.name.clone()).next().unwrap_or_default()
}

//! `kuul logs`: the logs of a CronJob's newest run, or of a given run.

use std::io::Write;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;

use super::cluster::runtime;
use crate::cli::LogsArgs;
use crate::k8s::cluster::{Cluster, ClusterError, connect};
use crate::k8s::operate::{container_log, containers, follow_log, get_cronjob, get_job, job_pods, runs};

/// Prints the logs on stdout. Headers that name pods and restarted
/// containers go to stderr, so stdout holds only what the job printed.
pub fn run(args: LogsArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let clusters = connect(&args.cluster.contexts).await?;
        anyhow::ensure!(
            clusters.len() == 1,
            "`kuul logs` reads one cluster, but {} contexts were given\nhint: pass one `--context`",
            clusters.len()
        );
        let cluster = &clusters[0];
        let namespace = args.cluster.namespace.clone().unwrap_or_else(|| cluster.default_namespace.clone());

        let job = select_run(cluster, &namespace, &args.name, args.run.as_deref()).await?;
        let job_name = job.metadata.name.clone().unwrap_or_default();
        let pods = job_pods(cluster, &job).await?;
        anyhow::ensure!(!pods.is_empty(), "run `{job_name}` has no pods; its pods may have been deleted");

        for (index, pod) in pods.iter().enumerate() {
            if pods.len() > 1 {
                eprintln!("==> pod `{}` <==", pod.metadata.name.as_deref().unwrap_or_default());
            }
            let follow = args.follow && index == pods.len() - 1;
            print_pod(cluster, pod, follow).await?;
        }
        anyhow::Ok(())
    })
}

/// Returns the Job `run`, checking that it belongs to the CronJob, or the
/// CronJob's newest run.
async fn select_run(cluster: &Cluster, namespace: &str, name: &str, run: Option<&str>) -> anyhow::Result<Job> {
    let cronjob = get_cronjob(cluster, namespace, name).await?;

    let Some(run) = run else {
        let newest = runs(cluster, &cronjob).await?.into_iter().next();
        let newest = newest.ok_or_else(|| {
            anyhow::anyhow!("CronJob `{namespace}/{name}` has no runs\nhint: `kuul run {name}` starts one now")
        })?;
        return Ok(newest.job);
    };

    let job = get_job(cluster, namespace, run).await?;
    let uid = cronjob.metadata.uid.as_deref().unwrap_or_default();
    let owned = job.metadata.owner_references.iter().flatten().any(|owner| owner.uid == uid);
    anyhow::ensure!(
        owned,
        "Job `{namespace}/{run}` is not a run of CronJob `{name}`\nhint: `kuul runs {name}` lists its runs"
    );
    Ok(job)
}

/// Prints each container's log, preceded by the log before its last
/// restart when it restarted.
async fn print_pod(cluster: &Cluster, pod: &Pod, follow: bool) -> anyhow::Result<()> {
    let pod_containers = containers(pod);
    let several = pod_containers.len() > 1;

    for (container, restarts) in pod_containers {
        if restarts > 0 {
            eprintln!("--- container `{container}` before its last restart ({restarts} restarts) ---");
            print_or_warn(container_log(cluster, pod, &container, true).await)?;
            eprintln!("--- container `{container}` now ---");
        } else if several {
            eprintln!("--- container `{container}` ---");
        }

        if follow {
            let mut stdout = std::io::stdout();
            follow_log(cluster, pod, &container, &mut stdout).await.or_else(warn_if_waiting)?;
        } else {
            print_or_warn(container_log(cluster, pod, &container, false).await)?;
        }
    }
    Ok(())
}

fn print_or_warn(log: Result<String, ClusterError>) -> anyhow::Result<()> {
    match log {
        Ok(text) => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            stdout.flush()?;
            Ok(())
        }
        Err(error) => Ok(warn_if_waiting(error)?),
    }
}

/// Turns the API server's 400 for a container that has not started (or
/// has no log before a restart) into a warning, since the run itself may
/// be fine.
fn warn_if_waiting(error: ClusterError) -> Result<(), ClusterError> {
    match &error {
        ClusterError::Request { code: Some(400), message, .. } => {
            eprintln!("warning: {message}");
            Ok(())
        }
        _ => Err(error),
    }
}

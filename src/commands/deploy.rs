//! `kuul deploy`: preflight checks and server-side apply of the CronJob,
//! also run by `kuul publish --deploy`.

use k8s_openapi::api::batch::v1::CronJob;

use super::cluster::{cronjob_name, job_cronjob, runtime, target_contexts};
use crate::cli::{ApplyFlags, DeployArgs};
use crate::k8s::apply::{ApplyOptions, apply};
use crate::k8s::cluster::{Cluster, connect, resolve_namespace};
use crate::k8s::preflight;
use crate::spec::Spec;

pub fn run(args: DeployArgs) -> anyhow::Result<()> {
    let (spec, cronjob) = job_cronjob(&args.job_dir, &args.image)?;
    runtime()?.block_on(deploy(&spec, &cronjob, &args.apply))
}

/// Checks and applies `cronjob` on every target context. A failure on one
/// context does not stop the others, and the command fails at the end if
/// any context failed.
pub async fn deploy(spec: &Spec, cronjob: &CronJob, flags: &ApplyFlags) -> anyhow::Result<()> {
    let contexts = target_contexts(&flags.cluster.contexts, spec);
    let clusters = connect(&contexts).await?;

    let mut failed = Vec::new();
    let mut last_error = None;
    for cluster in &clusters {
        let namespace =
            resolve_namespace(flags.cluster.namespace.as_deref(), spec.deploy.namespace.as_deref(), cluster);
        if let Err(error) = deploy_to(cluster, &namespace, cronjob, flags).await {
            if clusters.len() > 1 {
                super::print_error(&error);
            }
            failed.push(format!("`{}`", cluster.context));
            last_error = Some(error);
        }
    }

    match last_error {
        None => Ok(()),
        Some(error) if clusters.len() == 1 => Err(error),
        Some(_) => {
            anyhow::bail!("failed to deploy to {} of {} contexts: {}", failed.len(), clusters.len(), failed.join(", "))
        }
    }
}

async fn deploy_to(cluster: &Cluster, namespace: &str, cronjob: &CronJob, flags: &ApplyFlags) -> anyhow::Result<()> {
    let context = &cluster.context;
    let name = cronjob_name(cronjob);

    let findings = preflight::check(cluster, namespace, cronjob, flags.strict).await?;
    for warning in &findings.warnings {
        eprintln!("warning: context `{context}`: {warning}");
    }
    if !findings.errors.is_empty() {
        anyhow::bail!(
            "context `{context}`: preflight check failed for CronJob `{namespace}/{name}`: {}",
            findings.errors.join("\n")
        );
    }

    let options = ApplyOptions { dry_run: flags.dry_run, force: flags.force_conflicts };
    let applied = apply(cluster, namespace, cronjob, options).await?;

    let dry_run = if flags.dry_run { " (server dry run)" } else { "" };
    eprintln!("context `{context}`: CronJob `{namespace}/{name}` {}{dry_run}", applied.change);
    Ok(())
}

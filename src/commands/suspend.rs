//! `kuul suspend` and `kuul resume`: set a CronJob's `spec.suspend`.

use super::cluster::runtime;
use crate::cli::SuspendArgs;
use crate::k8s::cluster::connect;
use crate::k8s::operate::set_suspend;

/// Suspends (or, with `suspend` false, resumes) the CronJob on every
/// context given.
pub fn run(args: SuspendArgs, suspend: bool) -> anyhow::Result<()> {
    let state = if suspend { "suspended" } else { "resumed" };

    runtime()?.block_on(async {
        for cluster in connect(&args.cluster.contexts).await? {
            let namespace = args.cluster.namespace.clone().unwrap_or_else(|| cluster.default_namespace.clone());
            set_suspend(&cluster, &namespace, &args.name, suspend).await?;
            eprintln!("context `{}`: CronJob `{namespace}/{}` {state}", cluster.context, args.name);
        }
        anyhow::Ok(())
    })
}

//! `kuul diff`: the live CronJob against a server-side dry run of the new
//! one, as a unified diff.

use super::cluster::{cronjob_name, job_cronjob, runtime, target_contexts};
use crate::cli::DiffArgs;
use crate::k8s::apply::diff;
use crate::k8s::cluster::{connect, resolve_namespace};

/// Prints one diff per context on stdout, or a `no changes` line on stderr.
pub fn run(args: DiffArgs) -> anyhow::Result<()> {
    let (spec, cronjob) = job_cronjob(&args.job_dir, &args.image)?;
    let name = cronjob_name(&cronjob);

    let changed = runtime()?.block_on(async {
        let clusters = connect(&target_contexts(&args.cluster.contexts, &spec)).await?;
        let mut changed = false;
        for cluster in &clusters {
            let namespace =
                resolve_namespace(args.cluster.namespace.as_deref(), spec.deploy.namespace.as_deref(), cluster);
            match diff(cluster, &namespace, &cronjob, args.force_conflicts).await? {
                Some(text) => {
                    changed = true;
                    if clusters.len() > 1 {
                        println!("# context {}", cluster.context);
                    }
                    print!("{text}");
                }
                None => eprintln!("context `{}`: CronJob `{namespace}/{name}`: no changes", cluster.context),
            }
        }
        anyhow::Ok(changed)
    })?;

    if changed && args.exit_code {
        std::io::Write::flush(&mut std::io::stdout())?;
        std::process::exit(1);
    }
    Ok(())
}

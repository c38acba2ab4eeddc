//! `kuul prune`: delete kuul-managed CronJobs whose job directory is gone.

use std::collections::BTreeSet;

use crate::build::SPEC_FILE;
use crate::cli::PruneArgs;
use crate::k8s::cluster::{connect, resolve_namespace};
use crate::k8s::prune::{candidates, delete_cronjob};
use crate::spec::Spec;

/// Lists, or with `--confirm` deletes, on each context: `--context`, else
/// the `[deploy] contexts` of the job directories, else the current one.
pub fn run(args: PruneArgs) -> anyhow::Result<()> {
    let specs =
        args.job_dirs.iter().map(|dir| crate::spec::load(&dir.join(SPEC_FILE))).collect::<Result<Vec<Spec>, _>>()?;
    let contexts =
        if args.cluster.contexts.is_empty() { declared_contexts(&specs) } else { args.cluster.contexts.clone() };

    super::cluster::runtime()?.block_on(async {
        let mut found = 0;
        for cluster in connect(&contexts).await? {
            let keep: BTreeSet<(String, String)> = specs
                .iter()
                .map(|spec| {
                    let namespace = resolve_namespace(
                        args.cluster.namespace.as_deref(),
                        spec.deploy.namespace.as_deref(),
                        &cluster,
                    );
                    (namespace, spec.job.name.clone())
                })
                .collect();
            let namespaces: BTreeSet<String> = keep.iter().map(|(namespace, _)| namespace.clone()).collect();
            let scope = if args.all_namespaces { None } else { Some(&namespaces) };

            for (namespace, name) in candidates(&cluster, scope, &keep).await? {
                found += 1;
                if args.confirm {
                    delete_cronjob(&cluster, &namespace, &name).await?;
                    eprintln!("context `{}`: deleted CronJob `{namespace}/{name}`", cluster.context);
                } else {
                    eprintln!("context `{}`: would delete CronJob `{namespace}/{name}`", cluster.context);
                }
            }
        }

        if found == 0 {
            eprintln!("no kuul-managed CronJobs to delete");
        } else if !args.confirm {
            eprintln!("hint: rerun with `--confirm` to delete these CronJobs with their Jobs and pods");
        }
        anyhow::Ok(())
    })
}

/// Returns the `[deploy] contexts` of every spec, each once, in order.
fn declared_contexts(specs: &[Spec]) -> Vec<String> {
    let mut contexts: Vec<String> = Vec::new();
    for context in specs.iter().flat_map(|spec| &spec.deploy.contexts) {
        if !contexts.contains(context) {
            contexts.push(context.clone());
        }
    }
    contexts
}

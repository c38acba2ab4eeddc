//! `kuul runs`: the recent runs of one CronJob.

use jiff::Timestamp;
use serde::Serialize;

use super::cluster::runtime;
use super::table;
use crate::cli::{ListFormat, RunsArgs};
use crate::k8s::cluster::connect;
use crate::k8s::operate::{get_cronjob, runs};
use crate::k8s::runs::{RunSummary, format_duration, format_time, reasons_text, summarize};

const HEADER: [&str; 7] = ["CONTEXT", "RUN", "START", "DURATION", "RESULT", "REASON", "MESSAGE"];

/// A run with the context it ran in, for JSON and YAML output.
#[derive(Debug, Serialize)]
pub struct ContextRun {
    pub context: String,
    pub namespace: String,
    #[serde(flatten)]
    pub run: RunSummary,
}

pub fn run(args: RunsArgs) -> anyhow::Result<()> {
    let now = Timestamp::now();

    let all_runs = runtime()?.block_on(async {
        let clusters = connect(&args.cluster.contexts).await?;
        let mut all_runs = Vec::new();
        for cluster in &clusters {
            let namespace = args.cluster.namespace.clone().unwrap_or_else(|| cluster.default_namespace.clone());
            let cronjob = get_cronjob(cluster, &namespace, &args.name).await?;
            for run in runs(cluster, &cronjob).await? {
                let pods: Vec<_> = run.pods.iter().collect();
                all_runs.push(ContextRun {
                    context: cluster.context.clone(),
                    namespace: namespace.clone(),
                    run: summarize(&run.job, &pods, now),
                });
            }
        }
        anyhow::Ok(all_runs)
    })?;

    if all_runs.is_empty() && args.output == ListFormat::Table {
        eprintln!("CronJob `{}` has no runs\nhint: `kuul run {}` starts one now", args.name, args.name);
        return Ok(());
    }
    print!("{}", render(&all_runs, args.output)?);
    Ok(())
}

/// Renders `runs` in `format`.
pub fn render(runs: &[ContextRun], format: ListFormat) -> anyhow::Result<String> {
    Ok(match format {
        ListFormat::Json => format!("{}\n", serde_json::to_string_pretty(runs)?),
        ListFormat::Yaml => serde_saphyr::to_string(&runs)?,
        ListFormat::Table => table::render(&HEADER, &runs.iter().map(cells).collect::<Vec<_>>()),
    })
}

fn cells(entry: &ContextRun) -> Vec<String> {
    let run = &entry.run;
    let name = if run.manual { format!("{} (manual)", run.name) } else { run.name.clone() };
    vec![
        entry.context.clone(),
        name,
        format_time(run.start),
        run.duration_seconds.map(format_duration).unwrap_or_else(|| "-".to_owned()),
        run.result.to_string(),
        reasons_text(run),
        run.message.clone().unwrap_or_else(|| "-".to_owned()),
    ]
}

//! `kuul status`: one row per kuul-managed CronJob across contexts.

use jiff::Timestamp;

use super::cluster::runtime;
use super::table;
use crate::cli::{ListFormat, StatusArgs};
use crate::k8s::cluster::connect;
use crate::k8s::runs::{format_duration, format_time, reasons_text};
use crate::k8s::status::{StatusRow, rows, snapshot};

const HEADER: [&str; 12] = [
    "CONTEXT",
    "NAMESPACE",
    "NAME",
    "SCHEDULE",
    "TIME ZONE",
    "SUSPENDED",
    "ACTIVE",
    "LAST SCHEDULE",
    "LAST SUCCESS",
    "LAST RESULT",
    "DURATION",
    "NEXT RUN",
];

/// Prints the rows of every reachable context. A context that fails is
/// reported on stderr and makes the command fail after the others print.
pub fn run(args: StatusArgs) -> anyhow::Result<()> {
    let now = Timestamp::now();

    let (all_rows, failures) = runtime()?.block_on(async {
        let clusters = connect(&args.cluster.contexts).await?;
        let mut all_rows = Vec::new();
        let mut failures = Vec::new();
        for cluster in &clusters {
            let namespace = if args.all_namespaces {
                None
            } else {
                Some(args.cluster.namespace.clone().unwrap_or_else(|| cluster.default_namespace.clone()))
            };
            match snapshot(cluster, namespace.as_deref()).await {
                Ok(snapshot) => all_rows.extend(rows(&cluster.context, &snapshot, now)),
                Err(error) => {
                    super::print_error(&error.into());
                    failures.push(format!("`{}`", cluster.context));
                }
            }
        }
        anyhow::Ok((all_rows, failures))
    })?;

    print!("{}", render(&all_rows, args.output)?);

    if !failures.is_empty() {
        anyhow::bail!("failed to read the status of {} contexts: {}", failures.len(), failures.join(", "));
    }
    if let Some(window) = args.fail_on_stale {
        check_stale(&all_rows, window, now)?;
    }
    Ok(())
}

/// Renders `rows` in `format`.
pub fn render(rows: &[StatusRow], format: ListFormat) -> anyhow::Result<String> {
    Ok(match format {
        ListFormat::Json => format!("{}\n", serde_json::to_string_pretty(rows)?),
        ListFormat::Yaml => serde_saphyr::to_string(&rows)?,
        ListFormat::Table if rows.is_empty() => String::new(),
        ListFormat::Table => table::render(&HEADER, &rows.iter().map(cells).collect::<Vec<_>>()),
    })
}

fn cells(row: &StatusRow) -> Vec<String> {
    let (result, duration) = match &row.last_run {
        Some(run) if run.reasons.is_empty() => (run.result.to_string(), run.duration_seconds),
        Some(run) => (format!("{}: {}", run.result, reasons_text(run)), run.duration_seconds),
        None => ("-".to_owned(), None),
    };

    vec![
        row.context.clone(),
        row.namespace.clone(),
        row.name.clone(),
        row.schedule.clone(),
        row.time_zone.clone().unwrap_or_else(|| "-".to_owned()),
        if row.suspended { "yes" } else { "no" }.to_owned(),
        row.active.to_string(),
        format_time(row.last_schedule),
        format_time(row.last_success),
        result,
        duration.map(format_duration).unwrap_or_else(|| "-".to_owned()),
        format_time(row.next_run),
    ]
}

fn check_stale(rows: &[StatusRow], window: jiff::SignedDuration, now: Timestamp) -> anyhow::Result<()> {
    let stale: Vec<String> = rows
        .iter()
        .filter(|row| row.is_stale(window, now))
        .map(|row| {
            let last = match row.last_success {
                Some(time) => format!("last success {}", format_time(Some(time))),
                None => "never succeeded".to_owned(),
            };
            format!("`{}/{}` in context `{}` ({last})", row.namespace, row.name, row.context)
        })
        .collect();

    if stale.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "{} CronJobs have not succeeded within {}: {}\nhint: `kuul runs NAME` shows why their runs failed",
        stale.len(),
        format_duration(window.as_secs()),
        stale.join(", ")
    )
}

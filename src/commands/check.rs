//! `kuul check`: validate kuul.toml and the CronJob it gives, print the
//! warnings and the next runs.

use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{Timestamp, Zoned};

use super::diagnostics::{placeholder_image, print_warnings, render_checked};
use crate::build::{SPEC_FILE, container_command};
use crate::cli::CheckArgs;
use crate::spec::schedule::{DstChangeKind, Schedule};

/// Prints one upcoming run per line on stdout, in the job's time zone, with
/// a note on runs in a daylight saving fold. Warnings, the verdict, the
/// schedule and skipped local times go to stderr, so scripts can read the
/// runs alone.
pub fn run(args: CheckArgs) -> anyhow::Result<()> {
    let path = args.job_dir.join(SPEC_FILE);
    let spec = crate::spec::load(&path)?;
    let now = args.from.unwrap_or_else(Timestamp::now);

    let command = container_command(&spec, &args.job_dir);
    let rendered = render_checked(&spec, &args.job_dir, &placeholder_image(&spec), &command, now)?;
    print_warnings(&rendered.warnings, &args.job_dir);

    let schedule = crate::spec::schedule::parse(&spec.job.schedule)?;
    let runs = schedule.next_runs(&spec.job.timezone, now, usize::from(args.runs))?;

    match rendered.warnings.len() {
        0 => eprintln!("{}: valid", path.display()),
        count => eprintln!("{}: valid, {count} {}", path.display(), plural(count, "warning")),
    }
    let count = match runs.len() {
        1 => "next run".to_owned(),
        n => format!("next {n} runs"),
    };
    eprintln!("schedule `{}` in {}; {count}:", spec.job.schedule, spec.job.timezone);
    print_skipped(&schedule, &spec.job.timezone, now, runs.last())?;
    for run in &runs {
        match fold_note(run) {
            Some(note) => println!("{}  ({note})", format_run(run)),
            None => println!("{}", format_run(run)),
        }
    }

    if args.strict && !rendered.warnings.is_empty() {
        let count = rendered.warnings.len();
        anyhow::bail!(
            "{count} {} and `--strict` is set\nhint: fix the {} above, or run without `--strict`",
            plural(count, "warning"),
            plural(count, "warning")
        );
    }
    Ok(())
}

fn format_run(run: &Zoned) -> String {
    run.strftime("%Y-%m-%d %H:%M:%S %:z %Q").to_string()
}

/// Prints each scheduled local time up to the last listed run that does
/// not exist because the clocks jump forward. The controller skips it.
fn print_skipped(schedule: &Schedule, tz: &str, now: Timestamp, last: Option<&Zoned>) -> anyhow::Result<()> {
    let Some(last) = last else {
        return Ok(());
    };

    for change in schedule.dst_changes(tz, now, last.timestamp())? {
        if change.kind == DstChangeKind::Skipped {
            eprintln!(
                "  skipped: {} does not exist in {tz}, because the clocks jump from {} to {}",
                change.wall_time.strftime("%Y-%m-%d %H:%M"),
                change.clock_from.strftime("%H:%M"),
                change.clock_to.strftime("%H:%M"),
            );
        }
    }
    Ok(())
}

/// Describes a run whose local time occurs twice, because the clocks go
/// back. The controller runs at both occurrences.
fn fold_note(run: &Zoned) -> Option<String> {
    let time_zone: &TimeZone = run.time_zone();
    let ambiguous = time_zone.to_ambiguous_zoned(run.datetime());
    let AmbiguousOffset::Fold { before, after } = ambiguous.offset() else {
        return None;
    };

    let time = run.strftime("%H:%M");
    let pass = if run.offset() == before { "first" } else { "second" };
    Some(format!(
        "{pass} of two runs at {time}: the clocks go back, so {time} occurs at {} and again at {}",
        format_offset(before),
        format_offset(after)
    ))
}

/// Formats an offset as `+02:00`, as the run lines show it.
fn format_offset(offset: jiff::tz::Offset) -> String {
    let seconds = offset.seconds();
    let sign = if seconds < 0 { '-' } else { '+' };
    let minutes = seconds.unsigned_abs() / 60;
    format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
}

fn plural(count: usize, word: &str) -> String {
    if count == 1 { word.to_owned() } else { format!("{word}s") }
}

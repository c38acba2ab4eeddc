//! `kuul check`: validate kuul.toml and show the next runs.

use crate::build::SPEC_FILE;
use crate::cli::CheckArgs;

/// Prints one upcoming run per line on stdout, in the job's time zone; the
/// verdict and the schedule go to stderr so scripts can read the runs alone.
pub fn run(args: CheckArgs) -> anyhow::Result<()> {
    let path = args.job_dir.join(SPEC_FILE);
    let spec = crate::spec::load(&path)?;
    let schedule = crate::spec::schedule::parse(&spec.job.schedule)?;
    let runs = schedule.next_runs(&spec.job.timezone, jiff::Timestamp::now(), args.runs)?;

    eprintln!("{}: valid", path.display());
    eprintln!("schedule `{}` in {}; next {} runs:", spec.job.schedule, spec.job.timezone, runs.len());
    for run in runs {
        println!("{}", run.strftime("%Y-%m-%d %H:%M:%S %:z %Q"));
    }
    Ok(())
}

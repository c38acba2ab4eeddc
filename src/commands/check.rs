//! `kuul check`: validate kuul.toml and show the next runs.

use crate::build::SPEC_FILE;
use crate::cli::CheckArgs;
use crate::spec::schedule::Schedule;

pub fn run(args: CheckArgs) -> anyhow::Result<()> {
    let path = args.job_dir.join(SPEC_FILE);
    let spec = crate::spec::load(&path)?;
    let schedule = Schedule::parse(&spec.job.schedule)?;
    let runs = schedule.next_runs(&spec.job.timezone, jiff::Timestamp::now(), args.runs)?;

    println!("{}: valid", path.display());
    println!("schedule `{}` in {}; next {} runs:", spec.job.schedule, spec.job.timezone, runs.len());
    for run in runs {
        println!("  {}", run.strftime("%Y-%m-%d %H:%M:%S %:z %Q"));
    }
    Ok(())
}

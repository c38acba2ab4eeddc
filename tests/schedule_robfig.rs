//! Compares kuul's schedule parser and run times with robfig/cron v3, the
//! library that the Kubernetes API server and CronJob controller use. A
//! small Go program (`tests/robfig/main.go`) is built against Debian's
//! golang-github-robfig-cron-dev and computes the same results: whether the
//! schedule is accepted, and the next runs in a given time zone.
//! The run times cover daylight saving changes in zones with unusual rules.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use jiff::{SignedDuration, Timestamp};

/// Where Debian's golang-github-robfig-cron-dev installs the library, as a
/// `GOPATH`.
const DEBIAN_GOPATH: &str = "/usr/share/gocode";

/// Builds the reference program once per test run and returns its path.
fn reference_program() -> &'static Path {
    static PROGRAM: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, program) = PROGRAM.get_or_init(|| {
        support::require("go");
        support::require(&format!("{DEBIAN_GOPATH}/src/github.com/robfig/cron/spec.go"));

        let dir = tempfile::tempdir().expect("temporary directory");
        let program = dir.path().join("robfig-next");
        let source = support::repo_root().join("tests/robfig/main.go");

        // GOPATH mode finds the Debian package offline, and GOPROXY=off
        // keeps the build from reaching any module proxy.
        support::run_checked(
            "build the robfig/cron reference program",
            Command::new("go")
                .arg("build")
                .arg("-o")
                .arg(&program)
                .arg(&source)
                .env("GOPATH", DEBIAN_GOPATH)
                .env("GO111MODULE", "off")
                .env("GOPROXY", "off")
                .env("GOFLAGS", "")
                .env("GOCACHE", dir.path().join("cache")),
        );
        (dir, program)
    });
    program
}

/// One case: the schedule, the time zone, the start and how many runs.
struct Case {
    schedule: String,
    zone: String,
    start: Timestamp,
    count: usize,
}

impl Case {
    fn new(schedule: &str, zone: &str, start: Timestamp, count: usize) -> Case {
        Case { schedule: schedule.to_owned(), zone: zone.to_owned(), start, count }
    }
}

/// Returns the reference program's output line for each case.
fn robfig_results(cases: &[Case]) -> Vec<String> {
    let mut input = String::new();
    for case in cases {
        input.push_str(&format!("{}\t{}\t{}\t{}\n", case.schedule, case.zone, case.start, case.count));
    }

    let mut child = Command::new(reference_program())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the robfig/cron reference program");
    child.stdin.take().expect("stdin is piped").write_all(input.as_bytes()).expect("write cases");
    let output = child.wait_with_output().expect("wait for the reference program");

    assert!(output.status.success(), "reference program failed: {}", String::from_utf8_lossy(&output.stderr));
    let results: Vec<String> = String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned).collect();
    assert_eq!(results.len(), cases.len(), "one result per case");
    results
}

/// Returns kuul's result in the reference program's output format.
fn kuul_result(case: &Case) -> String {
    let Ok(schedule) = kuul::spec::schedule::parse(&case.schedule) else {
        return "rejected".to_owned();
    };
    let runs = schedule.next_runs(&case.zone, case.start, case.count).expect("known time zone");

    let mut result = "runs".to_owned();
    for run in runs {
        let text = run.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string();
        // Go's RFC 3339 format writes a zero offset as `Z`.
        let text = match text.strip_suffix("+00:00") {
            Some(local) => format!("{local}Z"),
            None => text,
        };
        result.push(' ');
        result.push_str(&text);
    }
    result
}

fn assert_same_results(cases: &[Case]) {
    let expected = robfig_results(cases);

    let mut mismatches = Vec::new();
    for (case, robfig) in cases.iter().zip(&expected) {
        let kuul = kuul_result(case);
        if &kuul != robfig {
            mismatches.push(format!(
                "`{}` in {} after {}:\n  robfig: {robfig}\n  kuul:   {kuul}",
                case.schedule, case.zone, case.start
            ));
        }
    }
    assert!(mismatches.is_empty(), "{} of {} cases differ:\n{}", mismatches.len(), cases.len(), mismatches.join("\n"));
}

/// Schedules accepted or rejected for different reasons, in the grammar's
/// corners.
const GRAMMAR: &[&str] = &[
    "* * * * *",
    "0 0 * * *",
    "*/15 * * * *",
    "0-30/10 * * * *",
    "5/15 * * * *",
    "0 9-17 * * 1-5",
    "0 0 1,15 * *",
    "0 0 * JAN,jul *",
    "0 0 * * MON-fri",
    "? ? ? ? ?",
    "0   0 * * *",
    "+5 * * * *",
    "*-5 * * * *",
    "?-3 * * * *",
    "*/60 * * * *",
    "0 0 * * */7",
    "0 0 1-31/2 * *",
    "0 0 30 2 *",
    "0 0 30 2 MON",
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
    "@every 1h30m",
    "@every 90s",
    "@every 1.5h",
    "@every 500ms",
    "@every 0s",
    "@every -1h",
    "@every 0",
    "",
    "   ",
    "* * * *",
    "0 * * * * *",
    "60 * * * *",
    "* 24 * * *",
    "* * 0 * *",
    "* * 32 * *",
    "* * * 13 *",
    "* * * 0 *",
    "* * * * 7",
    "* * * * 0-7",
    "* * L * *",
    "* * 15W * *",
    "* * * * 5L",
    "* * * * 1#2",
    "TZ=UTC 0 0 * * *",
    "CRON_TZ=Europe/Berlin 0 0 * * *",
    "0 0 * * * TZ=UTC",
    "*/0 * * * *",
    "*/x * * * *",
    "30-10 * * * *",
    "1-2-3 * * * *",
    "*/2/3 * * * *",
    "a * * * *",
    "-1 * * * *",
    "* * * JANUARY *",
    "* * * * MONDAY",
    ",* * * * *",
    "1,,2 * * * *",
    "0 0 * * ,",
    "5-/2 * * * *",
    "@reboot",
    "@Daily",
    "@daily ",
    " @daily",
    "@every",
    "@every 1",
    "@every 1d",
    "@every ",
    "@EVERY 1h",
];

#[test]
fn grammar_matches_robfig() {
    let start: Timestamp = "2026-01-01T00:00:00Z".parse().expect("valid timestamp");
    let cases: Vec<Case> = GRAMMAR.iter().map(|schedule| Case::new(schedule, "Etc/UTC", start, 3)).collect();

    assert_same_results(&cases);
}

/// Zones with daylight saving rules that stress the algorithm: the usual
/// 02:00 switches on both sides of UTC, a negative DST (Dublin), a
/// 30-minute switch (Lord Howe), a 45-minute offset (Chatham), and
/// switches at midnight (Santiago, Havana).
const ZONES: &[&str] = &[
    "Europe/Berlin",
    "America/New_York",
    "Europe/Dublin",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/Santiago",
    "America/Havana",
    "Asia/Kolkata",
];

const SCHEDULES: &[&str] = &[
    "30 2 * * *",
    "0 * * * *",
    "*/15 1-3 * * *",
    "0 0 * * *",
    "30 0 * * *",
    "59 1 * * *",
    "0 3 * * *",
    "30 1 * * 0",
    "0,30 2,3 * * *",
    "45 23 * * 6",
    "0 0 1 * *",
    "@every 1h",
];

#[test]
fn dst_runs_match_robfig() {
    let mut cases = Vec::new();
    let from: Timestamp = "2026-01-01T00:00:00Z".parse().expect("valid timestamp");
    let until: Timestamp = "2028-01-01T00:00:00Z".parse().expect("valid timestamp");

    for zone in ZONES {
        let time_zone = jiff::tz::db().get(zone).expect("known zone");
        let mut starts = vec![from];
        for transition in time_zone.following(from).take_while(|transition| transition.timestamp() < until) {
            starts.push(transition.timestamp() - SignedDuration::from_hours(26));
        }

        for start in starts {
            for schedule in SCHEDULES {
                cases.push(Case::new(schedule, zone, start, 40));
            }
        }
    }

    assert_same_results(&cases);
}

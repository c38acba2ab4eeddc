//! Calendar facts about a field schedule: its shortest interval and the run
//! times that daylight saving time changes skip or repeat.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::Fields;

const MINUTES_PER_DAY: i64 = 24 * 60;

/// Days in the Gregorian cycle of 400 years, after which weekdays and leap
/// years repeat, so every pattern of matching days occurs within it.
const GREGORIAN_CYCLE_DAYS: i64 = 146_097;

/// How a daylight saving time change affects one wall time of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DstChangeKind {
    /// The clock jumps over the wall time, so the controller skips the run.
    Skipped,
    /// The clock passes the wall time twice, so the controller runs twice.
    Repeated,
}

/// One wall time of a schedule that a daylight saving time change affects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DstChange {
    pub kind: DstChangeKind,
    /// The scheduled wall-clock time.
    pub wall_time: DateTime,
    /// The instant of the clock change.
    pub transition: Timestamp,
    /// The wall time just before the change, such as 02:00 when clocks
    /// jump to 03:00.
    pub clock_from: DateTime,
    /// The wall time the clock shows just after the change.
    pub clock_to: DateTime,
}

/// Returns the shortest wall-clock time between two consecutive matching
/// minutes, or `None` when no day matches.
pub(super) fn min_interval(fields: &Fields) -> Option<SignedDuration> {
    let minutes_of_day: Vec<i64> = (0..24_i64)
        .filter(|hour| fields.hour & 1 << hour != 0)
        .flat_map(|hour| {
            (0..60_i64).filter(|minute| fields.minute & 1 << minute != 0).map(move |minute| hour * 60 + minute)
        })
        .collect();
    let (first, last) = (*minutes_of_day.first()?, *minutes_of_day.last()?);

    let within_day = minutes_of_day.windows(2).map(|pair| pair[1] - pair[0]).min();
    let across_days = min_days_between_matches(fields)? * MINUTES_PER_DAY - last + first;

    let minutes = within_day.map_or(across_days, |within| within.min(across_days));
    Some(SignedDuration::from_mins(minutes))
}

/// Returns the fewest days between two consecutive matching days.
fn min_days_between_matches(fields: &Fields) -> Option<i64> {
    let mut date = Date::constant(2000, 1, 1);
    let mut previous: Option<i64> = None;
    let mut shortest: Option<i64> = None;

    // Two cycles, so the gap from the last match of the cycle to the first
    // match of the next one is counted too.
    for day in 0..2 * GREGORIAN_CYCLE_DAYS {
        if fields.matches_day(date) {
            if let Some(previous) = previous {
                let gap = day - previous;
                shortest = Some(shortest.map_or(gap, |shortest: i64| shortest.min(gap)));
                if gap == 1 {
                    break;
                }
            }
            previous = Some(day);
        }
        date = date.tomorrow().ok()?;
    }
    shortest
}

/// Lists the matching wall times in every gap and fold of `time_zone`
/// whose transition lies between `from` and `until`.
pub(super) fn dst_changes(fields: &Fields, time_zone: &TimeZone, from: Timestamp, until: Timestamp) -> Vec<DstChange> {
    let mut changes = Vec::new();

    for transition in time_zone.following(from) {
        let instant = transition.timestamp();
        if instant > until {
            break;
        }

        let before = time_zone.to_offset(instant - SignedDuration::from_secs(1));
        let after = transition.offset();
        if before == after {
            continue;
        }

        let clock_from = before.to_datetime(instant);
        let clock_to = after.to_datetime(instant);
        let (kind, start, end) = if after > before {
            (DstChangeKind::Skipped, clock_from, clock_to)
        } else {
            (DstChangeKind::Repeated, clock_to, clock_from)
        };

        let mut minute = start;
        while minute < end {
            if fields.matches_wall_time(minute) {
                changes.push(DstChange { kind, wall_time: minute, transition: instant, clock_from, clock_to });
            }
            let Ok(next) = minute.checked_add(SignedDuration::from_mins(1)) else {
                break;
            };
            minute = next;
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    fn interval_minutes(expr: &str) -> Option<i64> {
        parse(expr).unwrap().min_interval().map(|interval| interval.as_secs() / 60)
    }

    #[test]
    fn min_interval_cases() {
        let cases = [
            ("* * * * *", Some(1)),
            ("*/15 * * * *", Some(15)),
            ("0 * * * *", Some(60)),
            ("0,50 * * * *", Some(10)),
            ("30 2 * * *", Some(24 * 60)),
            ("0 9,17 * * *", Some(8 * 60)),
            ("0 23 * * *", Some(24 * 60)),
            ("0 9 * * 1-5", Some(24 * 60)),
            ("0 0 * * 0", Some(7 * 24 * 60)),
            ("0 0 1 * *", Some(28 * 24 * 60)),
            ("0 0 1 1 *", Some(365 * 24 * 60)),
            ("0 0 29 2 *", Some(4 * 365 * 24 * 60 + 24 * 60)),
            ("0 0 30 2 *", None),
        ];

        for (expr, expected) in cases {
            assert_eq!(interval_minutes(expr), expected, "`{expr}`");
        }
    }

    #[test]
    fn min_interval_every_is_duration() {
        assert_eq!(parse("@every 90s").unwrap().min_interval(), Some(SignedDuration::from_secs(90)));
    }

    fn changes(expr: &str, tz: &str, from: &str, until: &str) -> Vec<(DstChangeKind, String)> {
        parse(expr)
            .unwrap()
            .dst_changes(tz, from.parse().unwrap(), until.parse().unwrap())
            .unwrap()
            .into_iter()
            .map(|change| (change.kind, change.wall_time.strftime("%Y-%m-%d %H:%M").to_string()))
            .collect()
    }

    #[test]
    fn dst_changes_daily_in_berlin() {
        assert_eq!(
            changes("30 2 * * *", "Europe/Berlin", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"),
            [
                (DstChangeKind::Skipped, "2026-03-29 02:30".to_owned()),
                (DstChangeKind::Repeated, "2026-10-25 02:30".to_owned()),
            ]
        );
    }

    #[test]
    fn dst_changes_none_outside_switch_hours() {
        assert!(changes("30 4 * * *", "Europe/Berlin", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z").is_empty());
    }

    #[test]
    fn dst_changes_none_in_utc() {
        assert!(changes("30 2 * * *", "Etc/UTC", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z").is_empty());
    }

    #[test]
    fn dst_changes_weekday_misses_switch_day() {
        // Both 2026 switch days in Berlin are Sundays.
        assert!(changes("30 2 * * 1-5", "Europe/Berlin", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z").is_empty());
    }

    #[test]
    fn dst_changes_every_schedule_has_none() {
        assert!(changes("@every 1h", "Europe/Berlin", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z").is_empty());
    }
}

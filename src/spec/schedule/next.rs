//! The next run time, computed step by step as robfig/cron v3's
//! `SpecSchedule.Next` and `ConstantDelaySchedule.Next` do, because the
//! CronJob controller uses them. The port keeps robfig's quirks around
//! daylight saving time: hours and minutes advance in absolute time, and
//! resetting a field builds the wall time with Go's `time.Date` rules.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::Fields;

/// How many years past the start robfig/cron searches before it gives up.
const YEAR_LIMIT: i16 = 5;

/// Returns the next run of an `@every` schedule: `after` truncated to whole
/// seconds plus the delay.
pub(super) fn every(seconds: i64, after: Timestamp) -> Option<Timestamp> {
    let whole_seconds = after.as_second() - i64::from(after.subsec_nanosecond() < 0);
    Timestamp::from_second(whole_seconds.checked_add(seconds)?).ok()
}

/// Returns the first time strictly after `after` that matches `fields` in
/// `time_zone`, or `None` when none exists within [`YEAR_LIMIT`] years.
///
/// The steps and their order follow robfig/cron, including the `goto
/// WRAP` that restarts the month check whenever a field wraps around.
pub(super) fn fields(fields: &Fields, after: Timestamp, time_zone: &TimeZone) -> Option<Timestamp> {
    // Start at the next whole second.
    let mut t = floor_seconds(after, 1).checked_add(SignedDuration::from_secs(1)).ok()?;
    let mut added = false;
    let year_limit = time_zone.to_datetime(t).year().checked_add(YEAR_LIMIT)?;

    'wrap: loop {
        let mut wall = time_zone.to_datetime(t);
        if wall.year() > year_limit {
            return None;
        }

        while fields.month & 1 << wall.month() == 0 {
            if !added {
                added = true;
                t = go_date(time_zone, wall.year(), wall.month().into(), 1, 0, 0)?;
            }
            t = add_months_or_days(time_zone, t, 1, 0)?;
            wall = time_zone.to_datetime(t);
            if wall.month() == 1 {
                continue 'wrap;
            }
        }

        while !fields.matches_day(wall.date()) {
            if !added {
                added = true;
                t = go_date(time_zone, wall.year(), wall.month().into(), wall.day().into(), 0, 0)?;
            }
            t = add_months_or_days(time_zone, t, 0, 1)?;
            wall = time_zone.to_datetime(t);

            // Where midnight does not exist, the day starts at 01:00 or the
            // day before ends at 23:00: move back to the day's start.
            if wall.hour() != 0 {
                let hours = if wall.hour() > 12 { 24 - i64::from(wall.hour()) } else { -i64::from(wall.hour()) };
                t = t.checked_add(SignedDuration::from_hours(hours)).ok()?;
                wall = time_zone.to_datetime(t);
            }
            if wall.day() == 1 {
                continue 'wrap;
            }
        }

        while fields.hour & 1 << wall.hour() == 0 {
            if !added {
                added = true;
                t = go_date(time_zone, wall.year(), wall.month().into(), wall.day().into(), wall.hour().into(), 0)?;
            }
            t = t.checked_add(SignedDuration::from_hours(1)).ok()?;
            wall = time_zone.to_datetime(t);
            if wall.hour() == 0 {
                continue 'wrap;
            }
        }

        while fields.minute & 1 << wall.minute() == 0 {
            if !added {
                added = true;
                t = floor_seconds(t, 60);
            }
            t = t.checked_add(SignedDuration::from_mins(1)).ok()?;
            wall = time_zone.to_datetime(t);
            if wall.minute() == 0 {
                continue 'wrap;
            }
        }

        // The standard parser fixes the seconds field at 0.
        while wall.second() != 0 {
            added = true;
            t = t.checked_add(SignedDuration::from_secs(1)).ok()?;
            wall = time_zone.to_datetime(t);
            if wall.second() == 0 {
                continue 'wrap;
            }
        }

        return Some(t);
    }
}

/// Truncates to a multiple of `unit` seconds since the Unix epoch, as Go's
/// `Time.Truncate` does for whole seconds and minutes.
fn floor_seconds(timestamp: Timestamp, unit: i64) -> Timestamp {
    let mut seconds = timestamp.as_second();
    if timestamp.subsec_nanosecond() < 0 {
        seconds -= 1;
    }
    let floored = seconds - seconds.rem_euclid(unit);
    Timestamp::from_second(floored).unwrap_or(timestamp)
}

/// Go's `Time.AddDate(0, months, days)`: the same wall time with the month
/// and day moved and normalized, such as April 31 to May 1.
fn add_months_or_days(time_zone: &TimeZone, t: Timestamp, months: i64, days: i64) -> Option<Timestamp> {
    let wall = time_zone.to_datetime(t);
    let date = normalized_date(wall.year(), i64::from(wall.month()) + months, i64::from(wall.day()) + days)?;
    let wall = date.to_datetime(wall.time());
    resolve_like_go(time_zone, wall)
}

/// Go's `time.Date(year, month, day, hour, minute, 0, 0, loc)` with
/// normalization of out-of-range months and days.
fn go_date(time_zone: &TimeZone, year: i16, month: i64, day: i64, hour: i64, minute: i64) -> Option<Timestamp> {
    let date = normalized_date(year, month, day)?;
    let wall = date
        .to_datetime(jiff::civil::Time::midnight())
        .checked_add(SignedDuration::from_hours(hour))
        .ok()?
        .checked_add(SignedDuration::from_mins(minute))
        .ok()?;
    resolve_like_go(time_zone, wall)
}

fn normalized_date(year: i16, month: i64, day: i64) -> Option<Date> {
    let month_index = month - 1;
    let year = i64::from(year) + month_index.div_euclid(12);
    let month = month_index.rem_euclid(12) + 1;
    let first = Date::new(i16::try_from(year).ok()?, month as i8, 1).ok()?;
    first.checked_add(jiff::Span::new().days(day - 1)).ok()
}

/// Places a wall time in the zone the way Go's `time.Date` does. Go looks
/// up the offset at the wall time read as UTC, and keeps it if the
/// resulting instant lies in that offset's period. Otherwise it takes the
/// offset in effect at that instant. So a wall time in a gap or fold gets
/// one of the two offsets, and which one depends on the zone's side of UTC.
fn resolve_like_go(time_zone: &TimeZone, wall: DateTime) -> Option<Timestamp> {
    let as_utc = wall.to_zoned(TimeZone::UTC).ok()?.timestamp();
    let guess = time_zone.to_offset(as_utc);
    let instant = as_utc.checked_sub(SignedDuration::from_secs(guess.seconds().into())).ok()?;

    let offset = if time_zone.to_offset(instant) == guess { guess } else { time_zone.to_offset(instant) };
    as_utc.checked_sub(SignedDuration::from_secs(offset.seconds().into())).ok()
}

#[cfg(test)]
mod tests {
    use jiff::Zoned;

    use super::super::parse;

    /// Returns the next run after `after` as `YYYY-MM-DDTHH:MM:SS+HH:MM`.
    fn next(expr: &str, after: &str) -> String {
        let after: Zoned = after.parse().unwrap();
        let next = parse(expr).unwrap().next_after(&after).unwrap();
        next.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }

    #[test]
    fn next_fold_second_pass_in_berlin() {
        // From the first 02:30 (+02:00), robfig reaches 02:30 again in the
        // second pass (+01:00) by adding minutes in absolute time.
        assert_eq!(next("30 2 * * *", "2026-10-25T02:30:00+02:00[Europe/Berlin]"), "2026-10-25T02:30:00+01:00");
    }

    #[test]
    fn next_fold_second_pass_in_new_york() {
        assert_eq!(next("30 1 * * *", "2026-11-01T01:30:00-04:00[America/New_York]"), "2026-11-01T01:30:00-05:00");
    }

    #[test]
    fn next_gap_skipped_in_berlin() {
        assert_eq!(next("30 2 * * *", "2026-03-28T02:30:00+01:00[Europe/Berlin]"), "2026-03-30T02:30:00+02:00");
    }

    #[test]
    fn next_gap_every_fifteen_minutes() {
        assert_eq!(next("*/15 * * * *", "2026-03-29T01:45:00+01:00[Europe/Berlin]"), "2026-03-29T03:00:00+02:00");
    }

    #[test]
    fn next_hourly_runs_both_fold_hours() {
        assert_eq!(next("0 * * * *", "2026-10-25T02:00:00+02:00[Europe/Berlin]"), "2026-10-25T02:00:00+01:00");
    }

    #[test]
    fn next_after_missing_midnight() {
        // In America/Santiago, 2026-09-06 starts at 01:00 because clocks
        // jump from 00:00 to 01:00. robfig moves to the next matching day.
        assert_eq!(next("0 0 * * *", "2026-09-05T12:00:00-04:00[America/Santiago]"), "2026-09-07T00:00:00-03:00");
    }

    #[test]
    fn next_month_rollover() {
        assert_eq!(next("0 0 31 * *", "2026-04-01T00:00:00+00:00[Etc/UTC]"), "2026-05-31T00:00:00+00:00");
    }

    #[test]
    fn next_year_rollover() {
        assert_eq!(next("0 12 1 JAN *", "2026-06-01T00:00:00+00:00[Etc/UTC]"), "2027-01-01T12:00:00+00:00");
    }

    #[test]
    fn next_none_beyond_five_years() {
        let after: Zoned = "2026-01-01T00:00:00+00:00[Etc/UTC]".parse().unwrap();
        assert_eq!(parse("0 0 30 2 *").unwrap().next_after(&after), None);
    }
}

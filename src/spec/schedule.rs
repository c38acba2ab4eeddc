//! Cron schedules with the grammar of robfig/cron v3's standard parser,
//! which the Kubernetes CronJob controller uses.
//!
//! A schedule is five fields (minute, hour, day of month, month, day of
//! week) or a macro: `@yearly`, `@annually`, `@monthly`, `@weekly`,
//! `@daily`, `@midnight`, `@hourly` or `@every <duration>`. Each field is a
//! comma-separated list of `*`, `?`, `a`, `a-b`, `*/n`, `a-b/n` or `a/n`
//! (from `a` to the field's maximum). Months and weekdays also take
//! three-letter English names in any case. Quartz extensions (`L`, `W`,
//! `#`), weekday `7` and any `TZ` in the schedule are rejected, as
//! Kubernetes rejects them.
//!
//! [`parse`] accepts exactly what the API server accepts. A few accepted
//! forms are almost certainly mistakes; [`Schedule::warnings`] lists them.

mod calendar;
mod next;

pub use calendar::{DstChange, DstChangeKind};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, Zoned};

/// A parsed cron schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    kind: Kind,
    warnings: Vec<ScheduleWarning>,
}

/// A form that Kubernetes accepts but that does not do what it seems to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleWarning {
    /// robfig/cron reads `*-5` as `*` and ignores the rest.
    #[error("`{expr}` in the {field} field means `*`: Kubernetes ignores the part after `*`")]
    StarRange { field: &'static str, expr: String },
    /// robfig/cron raises an `@every` duration below one second to one
    /// second.
    #[error("`@every` duration `{text}` is below one second, so the job runs every second")]
    EverySubSecond { text: String },
    /// robfig/cron also raises a zero or negative duration to one second.
    #[error("`@every` duration `{text}` is not positive, so the job runs every second")]
    EveryNotPositive { text: String },
    /// robfig/cron drops empty list items, so a field of commas alone
    /// matches no value and the schedule never runs.
    #[error("the {field} field `{text}` lists no value, so the job never runs")]
    EmptyField { field: &'static str, text: String },
}

impl ScheduleWarning {
    /// Returns whether kuul rejects the form although Kubernetes accepts
    /// it: a zero or negative `@every`, or a field that lists no value.
    pub fn is_error(&self) -> bool {
        matches!(self, ScheduleWarning::EveryNotPositive { .. } | ScheduleWarning::EmptyField { .. })
    }

    /// Returns the fix to show on the `hint:` line.
    pub fn hint(&self) -> String {
        match self {
            ScheduleWarning::StarRange { .. } => "write `*` for every value, or a range such as `0-5`".to_owned(),
            ScheduleWarning::EverySubSecond { .. } | ScheduleWarning::EveryNotPositive { .. } => {
                "write a duration of at least one second, such as `@every 90s`".to_owned()
            }
            ScheduleWarning::EmptyField { .. } => "list at least one value, or write `*`".to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Fields(Fields),
    /// `@every`: whole seconds, at least 1.
    Every {
        seconds: i64,
    },
}

/// Bit sets of the allowed values: bit `n` is set when value `n` matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fields {
    minute: u64,
    hour: u64,
    day_of_month: u64,
    month: u64,
    day_of_week: u64,
    /// Whether the day-of-month field is `*` or `?` (with no step above 1).
    day_of_month_unrestricted: bool,
    /// Whether the day-of-week field is `*` or `?` (with no step above 1).
    day_of_week_unrestricted: bool,
}

/// A schedule that does not follow the grammar, or an unknown time zone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("empty schedule")]
    Empty,
    /// Kubernetes rejects any `TZ` in the schedule, such as a `TZ=` or
    /// `CRON_TZ=` prefix.
    #[error("time zone in schedule `{expr}`: Kubernetes rejects `TZ` and `CRON_TZ` in the schedule")]
    TimeZonePrefix { expr: String },
    #[error("expected 5 fields (minute, hour, day of month, month, day of week), found {found} in `{expr}`")]
    FieldCount { expr: String, found: usize },
    #[error("`{token}` in the {field} field is not supported by Kubernetes")]
    Unsupported { field: &'static str, token: String },
    #[error("invalid {field} value `{value}`")]
    InvalidValue { field: &'static str, value: String },
    #[error("{field} value `{value}` is outside {min}-{max}")]
    OutOfRange { field: &'static str, value: u64, min: u32, max: u32 },
    #[error("range `{range}` in the {field} field starts after it ends")]
    ReversedRange { field: &'static str, range: String },
    #[error("invalid step in `{expr}` in the {field} field: the step must be a positive number")]
    InvalidStep { field: &'static str, expr: String },
    #[error("invalid {field} expression `{expr}`: too many `-` or `/`")]
    Syntax { field: &'static str, expr: String },
    #[error("unknown macro `{name}`")]
    UnknownMacro { name: String },
    #[error("invalid `@every` duration `{text}`")]
    InvalidDuration { text: String },
    /// Not returned by [`parse`], which accepts such durations as
    /// Kubernetes does and reports [`ScheduleWarning::EveryNotPositive`].
    #[error("`@every` duration `{text}` is not positive")]
    NonPositiveDuration { text: String },
    #[error("unknown time zone `{name}`")]
    UnknownTimeZone { name: String },
}

impl ScheduleError {
    /// Returns the fix to show on the `hint:` line.
    pub fn hint(&self) -> Option<String> {
        let hint = match self {
            ScheduleError::Empty | ScheduleError::FieldCount { .. } => {
                "write five fields such as `30 2 * * *` (02:30 every day) or a macro such as `@daily`".to_owned()
            }
            ScheduleError::TimeZonePrefix { .. } => {
                "remove the time zone from the schedule and set `job.timezone` instead, such as `timezone = \"Europe/Berlin\"`".to_owned()
            }
            ScheduleError::Unsupported { .. } => {
                "Kubernetes has no `L`, `W` or `#`: list the days instead, such as `1-7` with a weekday".to_owned()
            }
            ScheduleError::InvalidValue { field, .. } | ScheduleError::Syntax { field, .. } => {
                format!("use {}", field_spec(field).description)
            }
            ScheduleError::OutOfRange { field, value, .. } => {
                if *field == DAY_OF_WEEK.name && *value == 7 {
                    "write Sunday as `0` or `SUN`; Kubernetes rejects `7`".to_owned()
                } else {
                    format!("use {}", field_spec(field).description)
                }
            }
            ScheduleError::ReversedRange { .. } => {
                "write ranges low to high; a range cannot wrap around, so split it into a list such as `22-23,0-2`".to_owned()
            }
            ScheduleError::InvalidStep { .. } => "write the step as a whole number of at least 1, such as `*/15`".to_owned(),
            ScheduleError::UnknownMacro { .. } => {
                "use one of `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly` or `@every <duration>`".to_owned()
            }
            ScheduleError::InvalidDuration { .. } | ScheduleError::NonPositiveDuration { .. } => {
                "write a positive Go duration such as `@every 90s` or `@every 1h30m` (units `ns`, `us`, `ms`, `s`, `m`, `h`)".to_owned()
            }
            ScheduleError::UnknownTimeZone { .. } => {
                "use an IANA time zone name such as `Europe/Berlin` or `Etc/UTC`".to_owned()
            }
        };
        Some(hint)
    }
}

/// The range, names and wording of one field.
struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names for the values `min..`, matched in any case.
    names: &'static [&'static str],
    description: &'static str,
}

const MINUTE: FieldSpec =
    FieldSpec { name: "minute", min: 0, max: 59, names: &[], description: "a minute from 0 to 59" };

const HOUR: FieldSpec = FieldSpec { name: "hour", min: 0, max: 23, names: &[], description: "an hour from 0 to 23" };

const DAY_OF_MONTH: FieldSpec =
    FieldSpec { name: "day-of-month", min: 1, max: 31, names: &[], description: "a day of month from 1 to 31" };

const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
    description: "a month from 1 to 12 or `JAN` to `DEC`",
};

const DAY_OF_WEEK: FieldSpec = FieldSpec {
    name: "day-of-week",
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    description: "a weekday from 0 (Sunday) to 6 or `SUN` to `SAT`",
};

fn field_spec(name: &str) -> &'static FieldSpec {
    [&MINUTE, &HOUR, &DAY_OF_MONTH, &MONTH, &DAY_OF_WEEK].into_iter().find(|spec| spec.name == name).unwrap_or(&MINUTE)
}

/// Parses a schedule as the Kubernetes API server does: with robfig/cron
/// v3's `ParseStandard`, after rejecting any `TZ` in the text.
///
/// Surrounding whitespace is an error for macros, as in robfig/cron, and
/// fields may be separated by any run of whitespace.
pub fn parse(expr: &str) -> Result<Schedule, ScheduleError> {
    if expr.trim().is_empty() {
        return Err(ScheduleError::Empty);
    }
    if expr.contains("TZ") {
        return Err(ScheduleError::TimeZonePrefix { expr: expr.to_owned() });
    }
    if expr.starts_with('@') {
        return parse_macro(expr);
    }

    let fields: Vec<&str> = expr.split_whitespace().collect();
    let [minute, hour, day_of_month, month, day_of_week] = fields[..] else {
        return Err(ScheduleError::FieldCount { expr: expr.to_owned(), found: fields.len() });
    };

    let mut warnings = Vec::new();
    let minute = parse_field(minute, &MINUTE, &mut warnings)?;
    let hour = parse_field(hour, &HOUR, &mut warnings)?;
    let day_of_month = parse_field(day_of_month, &DAY_OF_MONTH, &mut warnings)?;
    let month = parse_field(month, &MONTH, &mut warnings)?;
    let day_of_week = parse_field(day_of_week, &DAY_OF_WEEK, &mut warnings)?;

    let fields = Fields {
        minute: minute.bits,
        hour: hour.bits,
        day_of_month: day_of_month.bits,
        month: month.bits,
        day_of_week: day_of_week.bits,
        day_of_month_unrestricted: day_of_month.unrestricted,
        day_of_week_unrestricted: day_of_week.unrestricted,
    };
    Ok(Schedule { kind: Kind::Fields(fields), warnings })
}

fn parse_macro(expr: &str) -> Result<Schedule, ScheduleError> {
    if let Some(duration) = expr.strip_prefix("@every ") {
        let (seconds, warning) = parse_every_duration(duration)?;
        return Ok(Schedule { kind: Kind::Every { seconds }, warnings: warning.into_iter().collect() });
    }

    let equivalent = match expr {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ => {
            return Err(ScheduleError::UnknownMacro { name: expr.to_owned() });
        }
    };
    parse(equivalent)
}

/// One parsed field.
struct ParsedField {
    bits: u64,
    /// Whether the field is `*` or `?` without a step above 1, which
    /// matters for robfig's day-matching rule.
    unrestricted: bool,
}

fn parse_field(
    text: &str,
    spec: &FieldSpec,
    warnings: &mut Vec<ScheduleWarning>,
) -> Result<ParsedField, ScheduleError> {
    let mut field = ParsedField { bits: 0, unrestricted: false };

    // robfig/cron splits with `strings.FieldsFunc`, which drops empty items,
    // so `1,,2` is `1,2` and `,` is an empty list.
    for expr in text.split(',').filter(|expr| !expr.is_empty()) {
        let (range_bits, is_star) = parse_range(expr, spec, warnings)?;
        field.bits |= range_bits;
        field.unrestricted |= is_star;
    }

    if field.bits == 0 {
        warnings.push(ScheduleWarning::EmptyField { field: spec.name, text: text.to_owned() });
    }
    Ok(field)
}

fn parse_range(
    expr: &str,
    spec: &FieldSpec,
    warnings: &mut Vec<ScheduleWarning>,
) -> Result<(u64, bool), ScheduleError> {
    if expr.contains('#') {
        return Err(ScheduleError::Unsupported { field: spec.name, token: expr.to_owned() });
    }
    let syntax_error = || ScheduleError::Syntax { field: spec.name, expr: expr.to_owned() };

    let (range, step) = match expr.split_once('/') {
        None => (expr, None),
        Some((_, step)) if step.contains('/') => return Err(syntax_error()),
        Some((range, step)) => (range, Some(step)),
    };

    // robfig/cron reads `*-5` (and `*-x`) as `*` and drops the rest, so
    // Kubernetes accepts it. kuul accepts it too and warns.
    let low = range.split('-').next().unwrap_or(range);
    let is_star = low == "*" || low == "?";
    if is_star && low != range {
        warnings.push(ScheduleWarning::StarRange { field: spec.name, expr: expr.to_owned() });
    }
    let (start, end, single_value) = if is_star {
        (spec.min, spec.max, false)
    } else {
        match range.split_once('-') {
            None => {
                let value = parse_value(range, spec)?;
                (value, value, true)
            }
            Some((_, high)) if high.contains('-') => return Err(syntax_error()),
            Some((low, high)) => (parse_value(low, spec)?, parse_value(high, spec)?, false),
        }
    };

    let has_step = step.is_some();
    let step = match step {
        None => 1,
        Some(step) => {
            parse_step(step).ok_or_else(|| ScheduleError::InvalidStep { field: spec.name, expr: expr.to_owned() })?
        }
    };
    // `a/n` means from `a` to the maximum.
    let end = if single_value && has_step { spec.max } else { end };
    if start > end {
        return Err(ScheduleError::ReversedRange { field: spec.name, range: range.to_owned() });
    }

    let mut bits = 0_u64;
    let mut value = start;
    while value <= end {
        bits |= 1 << value;
        value = value.saturating_add(step);
    }
    // A step above 1 makes `*` a restriction, as in robfig/cron.
    Ok((bits, is_star && step == 1))
}

/// Parses a number or a name and checks it against the field's range.
fn parse_value(text: &str, spec: &FieldSpec) -> Result<u32, ScheduleError> {
    let named = spec.names.iter().position(|name| name.eq_ignore_ascii_case(text));
    if let Some(index) = named {
        return Ok(spec.min + index as u32);
    }

    let Some(value) = parse_unsigned(text) else {
        return Err(unsupported_or_invalid(text, spec));
    };
    if value < u64::from(spec.min) || value > u64::from(spec.max) {
        return Err(ScheduleError::OutOfRange { field: spec.name, value, min: spec.min, max: spec.max });
    }
    Ok(value as u32)
}

/// Quartz's `L` (last) and `W` (nearest weekday) get their own message,
/// because users copy them from other cron dialects.
fn unsupported_or_invalid(text: &str, spec: &FieldSpec) -> ScheduleError {
    let upper = text.to_ascii_uppercase();
    let without_digits = upper.trim_start_matches(|c: char| c.is_ascii_digit());
    if matches!(without_digits, "L" | "W" | "LW") {
        ScheduleError::Unsupported { field: spec.name, token: text.to_owned() }
    } else {
        ScheduleError::InvalidValue { field: spec.name, value: text.to_owned() }
    }
}

/// Parses a decimal number with an optional `+`, as Go's `strconv.Atoi`
/// does for the non-negative numbers robfig/cron accepts.
fn parse_unsigned(text: &str) -> Option<u64> {
    let digits = text.strip_prefix('+').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn parse_step(text: &str) -> Option<u32> {
    let step = parse_unsigned(text)?;
    if step == 0 {
        return None;
    }
    Some(u32::try_from(step).unwrap_or(u32::MAX))
}

/// Parses a Go duration (`1h30m`, `90s`, `1.5h`) into whole seconds.
///
/// robfig/cron raises durations below one second, zero and negative ones
/// included, to one second, and drops fractions of a second. This function
/// does the same and returns a warning for the raised ones.
fn parse_every_duration(text: &str) -> Result<(i64, Option<ScheduleWarning>), ScheduleError> {
    let invalid = || ScheduleError::InvalidDuration { text: text.to_owned() };

    let nanoseconds = parse_go_duration(text).ok_or_else(invalid)?;
    let warning = if nanoseconds <= 0 {
        Some(ScheduleWarning::EveryNotPositive { text: text.to_owned() })
    } else if nanoseconds < 1_000_000_000 {
        Some(ScheduleWarning::EverySubSecond { text: text.to_owned() })
    } else {
        None
    };

    let seconds = (nanoseconds / 1_000_000_000).max(1);
    let seconds = i64::try_from(seconds).map_err(|_| invalid())?;
    Ok((seconds, warning))
}

/// Parses Go's `time.ParseDuration` syntax into nanoseconds, or `None` when
/// the text is invalid or exceeds Go's range of about 292 years.
fn parse_go_duration(text: &str) -> Option<i128> {
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }

    let mut total: i128 = 0;
    while !rest.is_empty() {
        let integer_end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let integer = &rest[..integer_end];
        rest = &rest[integer_end..];

        let mut fraction = "";
        if let Some(after_point) = rest.strip_prefix('.') {
            let fraction_end = after_point.find(|c: char| !c.is_ascii_digit()).unwrap_or(after_point.len());
            fraction = &after_point[..fraction_end];
            rest = &after_point[fraction_end..];
        }
        if integer.is_empty() && fraction.is_empty() {
            return None;
        }

        let unit_end = rest.find(|c: char| c == '.' || c.is_ascii_digit()).unwrap_or(rest.len());
        let unit_nanoseconds: i128 = match &rest[..unit_end] {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        rest = &rest[unit_end..];

        let whole: i128 = if integer.is_empty() { 0 } else { integer.parse().ok()? };
        total = total.checked_add(whole.checked_mul(unit_nanoseconds)?)?;
        if !fraction.is_empty() {
            let digits = &fraction[..fraction.len().min(30)];
            let numerator: i128 = digits.parse().ok()?;
            let denominator = 10_i128.pow(digits.len() as u32);
            total = total.checked_add(numerator * unit_nanoseconds / denominator)?;
        }
        if total > i128::from(i64::MAX) {
            return None;
        }
    }

    Some(if negative { -total } else { total })
}

impl Schedule {
    /// Returns the forms in this schedule that Kubernetes accepts but that
    /// are almost certainly mistakes.
    pub fn warnings(&self) -> &[ScheduleWarning] {
        &self.warnings
    }

    /// Returns whether some calendar day matches the day and month fields.
    ///
    /// Kubernetes accepts schedules such as `0 0 30 2 *` (February 30) that
    /// never run, so [`parse`] accepts them too and the caller decides.
    pub fn has_matching_day(&self) -> bool {
        let Kind::Fields(fields) = &self.kind else {
            return true;
        };
        if fields.day_of_month_unrestricted || !fields.day_of_week_unrestricted {
            return true;
        }

        // Only the day of month applies: look for a month that has one of
        // the listed days. February can have 29 days.
        (1..=12).any(|month: u32| {
            let days_in_month = match month {
                2 => 29,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            let days = (1..=days_in_month).fold(0_u64, |bits, day| bits | 1 << day);
            fields.month & 1 << month != 0 && fields.day_of_month & days != 0
        })
    }

    /// Returns the first run strictly after `after`, in `after`'s time zone,
    /// or `None` when robfig/cron finds none within five years.
    ///
    /// This is the CronJob controller's computation: robfig/cron v3's
    /// `Next` in the CronJob's time zone. Around daylight saving time
    /// changes it has two effects. A wall time that does not exist because
    /// the clock jumps forward (a gap) is skipped. A wall time that occurs
    /// twice because the clock goes back (a fold) runs twice, once in each
    /// pass. `@every` schedules add the duration to `after`, truncated to
    /// whole seconds, and ignore the time zone.
    pub fn next_after(&self, after: &Zoned) -> Option<Zoned> {
        let time_zone = after.time_zone();
        let next = match &self.kind {
            Kind::Every { seconds } => next::every(*seconds, after.timestamp())?,
            Kind::Fields(fields) => next::fields(fields, after.timestamp(), time_zone)?,
        };
        Some(next.to_zoned(time_zone.clone()))
    }

    /// Returns the next `count` runs after `after` in the time zone `tz`.
    ///
    /// Each run follows the previous one by the rules of
    /// [`Schedule::next_after`]: a wall time in a daylight saving gap is
    /// skipped, and a wall time in a fold runs twice. The list is shorter
    /// than `count` only for schedules without a matching day (see
    /// [`Schedule::has_matching_day`]).
    pub fn next_runs(&self, tz: &str, after: Timestamp, count: usize) -> Result<Vec<Zoned>, ScheduleError> {
        let time_zone = load_time_zone(tz)?;

        let mut runs = Vec::with_capacity(count);
        let mut previous = after.to_zoned(time_zone);
        while runs.len() < count {
            let Some(next) = self.next_after(&previous) else {
                break;
            };
            runs.push(next.clone());
            previous = next;
        }
        Ok(runs)
    }

    /// Returns the shortest time between two consecutive runs on the wall
    /// clock, ignoring daylight saving time changes, or `None` for a
    /// schedule without a matching day.
    ///
    /// A fold can bring two runs of a daily schedule an hour apart. kuul
    /// derives its deadlines from this nominal interval instead and warns
    /// about folds separately (see [`Schedule::dst_changes`]).
    pub fn min_interval(&self) -> Option<SignedDuration> {
        match &self.kind {
            Kind::Every { seconds } => Some(SignedDuration::from_secs(*seconds)),
            Kind::Fields(fields) => calendar::min_interval(fields),
        }
    }

    /// Returns the wall times of this schedule that fall into a daylight
    /// saving change of `tz` between `from` and `until`: skipped ones (in a
    /// gap) and repeated ones (in a fold), in time order. `@every`
    /// schedules have none, because they ignore the wall clock.
    pub fn dst_changes(&self, tz: &str, from: Timestamp, until: Timestamp) -> Result<Vec<DstChange>, ScheduleError> {
        let time_zone = load_time_zone(tz)?;
        Ok(match &self.kind {
            Kind::Every { .. } => Vec::new(),
            Kind::Fields(fields) => calendar::dst_changes(fields, &time_zone, from, until),
        })
    }
}

fn load_time_zone(tz: &str) -> Result<TimeZone, ScheduleError> {
    jiff::tz::db().get(tz).map_err(|_| ScheduleError::UnknownTimeZone { name: tz.to_owned() })
}

impl Fields {
    /// robfig/cron's day rule: when both day fields are restricted, a day
    /// matches if either matches. Otherwise both must match, which leaves
    /// only the restricted one in effect. The month must match as well.
    fn matches_day(&self, date: Date) -> bool {
        if self.month & 1 << date.month() == 0 {
            return false;
        }

        let day_of_month = self.day_of_month & 1 << date.day() != 0;
        let day_of_week = self.day_of_week & 1 << date.weekday().to_sunday_zero_offset() != 0;
        if self.day_of_month_unrestricted || self.day_of_week_unrestricted {
            day_of_month && day_of_week
        } else {
            day_of_month || day_of_week
        }
    }

    /// Returns whether the wall-clock minute matches every field.
    fn matches_wall_time(&self, wall_time: jiff::civil::DateTime) -> bool {
        self.matches_day(wall_time.date())
            && self.hour & 1 << wall_time.hour() != 0
            && self.minute & 1 << wall_time.minute() != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Ok(())` for an accepted schedule, or the start of the expected
    /// error message.
    const CASES: &[(&str, Result<(), &str>)] = &[
        ("* * * * *", Ok(())),
        ("0 0 * * *", Ok(())),
        ("30 2 * * *", Ok(())),
        ("*/15 * * * *", Ok(())),
        ("0 */2 * * *", Ok(())),
        ("0-30/10 * * * *", Ok(())),
        ("5/15 * * * *", Ok(())),
        ("0 9-17 * * 1-5", Ok(())),
        ("0 0 1,15 * *", Ok(())),
        ("0 0 * JAN,jul *", Ok(())),
        ("0 0 * * MON-fri", Ok(())),
        ("0 0 * * sun", Ok(())),
        ("? ? ? ? ?", Ok(())),
        ("0 0 31 12 6", Ok(())),
        ("59 23 31 12 *", Ok(())),
        ("0  0\t* * *", Ok(())),
        ("+5 * * * *", Ok(())),
        ("0 0 30 2 *", Ok(())),
        ("@yearly", Ok(())),
        ("@annually", Ok(())),
        ("@monthly", Ok(())),
        ("@weekly", Ok(())),
        ("@daily", Ok(())),
        ("@midnight", Ok(())),
        ("@hourly", Ok(())),
        ("@every 1h30m", Ok(())),
        ("@every 90s", Ok(())),
        ("@every 1.5h", Ok(())),
        ("@every 500ms", Ok(())),
        ("@every 0s", Ok(())),
        ("@every -1h", Ok(())),
        ("@every 0", Ok(())),
        ("@every 1h30m10s", Ok(())),
        ("@every 10\u{b5}s", Ok(())),
        ("*-5 * * * *", Ok(())),
        ("0 0 ? * MON", Ok(())),
        ("0 0 1-31/2 * *", Ok(())),
        ("1,2,3-5,*/10 * * * *", Ok(())),
        ("*/60 * * * *", Ok(())),
        ("0 0 * * 1-5/2", Ok(())),
        ("0 0 * jan-DEC mOn", Ok(())),
        ("0 0 * * */7", Ok(())),
        ("0 0 1 * SUN-SAT", Ok(())),
        ("", Err("empty schedule")),
        ("   ", Err("empty schedule")),
        ("* * * *", Err("expected 5 fields")),
        ("0 * * * * *", Err("expected 5 fields")),
        ("60 * * * *", Err("minute value `60` is outside 0-59")),
        ("* 24 * * *", Err("hour value `24` is outside 0-23")),
        ("* * 0 * *", Err("day-of-month value `0` is outside 1-31")),
        ("* * 32 * *", Err("day-of-month value `32`")),
        ("* * * 13 *", Err("month value `13` is outside 1-12")),
        ("* * * 0 *", Err("month value `0`")),
        ("* * * * 7", Err("day-of-week value `7` is outside 0-6")),
        ("* * * * 0-7", Err("day-of-week value `7`")),
        ("* * L * *", Err("`L` in the day-of-month field is not supported")),
        ("* * 15W * *", Err("`15W` in the day-of-month field is not supported")),
        ("* * LW * *", Err("`LW` in the day-of-month field")),
        ("* * * * 5L", Err("`5L` in the day-of-week field")),
        ("* * * * 1#2", Err("`1#2` in the day-of-week field")),
        ("TZ=UTC 0 0 * * *", Err("time zone in schedule")),
        ("CRON_TZ=Europe/Berlin 0 0 * * *", Err("time zone in schedule")),
        ("0 0 * * * TZ=UTC", Err("time zone in schedule")),
        ("@daily TZ=UTC", Err("time zone in schedule")),
        ("tz=UTC 0 0 * * *", Err("expected 5 fields")),
        ("0 0 * * 7-7", Err("day-of-week value `7`")),
        ("0 0 * * 8", Err("day-of-week value `8`")),
        ("* * * * SUN#1", Err("`SUN#1` in the day-of-week field")),
        ("5-/2 * * * *", Err("invalid minute value ``")),
        ("0 0 * * * *", Err("expected 5 fields")),
        ("@EVERY 1h", Err("unknown macro")),
        ("@every 1h ", Err("invalid `@every` duration")),
        (" @daily", Err("expected 5 fields")),
        ("*/0 * * * *", Err("invalid step in `*/0`")),
        ("*/x * * * *", Err("invalid step")),
        ("30-10 * * * *", Err("range `30-10` in the minute field starts after it ends")),
        ("1-2-3 * * * *", Err("invalid minute expression `1-2-3`")),
        ("*/2/3 * * * *", Err("invalid minute expression")),
        ("a * * * *", Err("invalid minute value `a`")),
        ("-1 * * * *", Err("invalid minute value ``")),
        ("* * * JANUARY *", Err("invalid month value `JANUARY`")),
        ("* * * * MONDAY", Err("invalid day-of-week value")),
        (",* * * * *", Ok(())),
        ("1,,2 * * * *", Ok(())),
        (", * * * *", Ok(())),
        ("@reboot", Err("unknown macro `@reboot`")),
        ("@Daily", Err("unknown macro")),
        ("@daily ", Err("unknown macro")),
        ("@every", Err("unknown macro")),
        ("@every 1", Err("invalid `@every` duration `1`")),
        ("@every 1d", Err("invalid `@every` duration")),
        ("@every h", Err("invalid `@every` duration")),
        ("@every ", Err("invalid `@every` duration")),
    ];

    #[test]
    fn parse_table_of_cases() {
        for (expr, expected) in CASES {
            let result = parse(expr);
            match expected {
                Ok(()) => assert!(result.is_ok(), "`{expr}` should parse: {result:?}"),
                Err(start) => {
                    let message = match result {
                        Ok(_) => panic!("`{expr}` should be rejected"),
                        Err(error) => error.to_string(),
                    };
                    assert!(message.starts_with(start), "`{expr}`: message `{message}` should start with `{start}`");
                }
            }
        }
        assert!(CASES.len() >= 40);
    }

    #[test]
    fn parse_warnings_for_accepted_mistakes() {
        let cases = [
            ("*-5 * * * *", "`*-5` in the minute field means `*`"),
            ("0 ?-3 * * *", "`?-3` in the hour field means `*`"),
            ("@every 500ms", "`@every` duration `500ms` is below one second"),
            ("@every 0s", "`@every` duration `0s` is not positive"),
            ("@every -1h", "`@every` duration `-1h` is not positive"),
        ];

        for (expr, expected) in cases {
            let schedule = parse(expr).unwrap();
            let messages: Vec<String> = schedule.warnings().iter().map(ToString::to_string).collect();
            assert!(messages.iter().any(|message| message.starts_with(expected)), "`{expr}`: {messages:?}");
        }
    }

    #[test]
    fn parse_no_warnings_for_plain_schedule() {
        assert!(parse("*/5 1-3 * * MON").unwrap().warnings().is_empty());
    }

    #[test]
    fn every_non_positive_runs_every_second() {
        assert_eq!(parse("@every -1h").unwrap().min_interval(), Some(SignedDuration::from_secs(1)));
    }

    #[test]
    fn hint_for_weekday_seven() {
        let hint = parse("0 0 * * 7").unwrap_err().hint().unwrap();
        assert!(hint.contains("Sunday as `0`"), "hint: {hint}");
    }

    #[test]
    fn hint_for_time_zone_prefix() {
        let hint = parse("TZ=UTC * * * * *").unwrap_err().hint().unwrap();
        assert!(hint.contains("`job.timezone`"), "hint: {hint}");
    }

    #[test]
    fn parse_macro_equals_fields() {
        assert_eq!(parse("@weekly").unwrap(), parse("0 0 * * SUN").unwrap());
        assert_eq!(parse("@yearly").unwrap(), parse("0 0 1 JAN *").unwrap());
    }

    #[test]
    fn every_sub_second_rounds_up() {
        let one_second = Some(SignedDuration::from_secs(1));
        assert_eq!(parse("@every 500ms").unwrap().min_interval(), one_second);
        assert_eq!(parse("@every 1.9s").unwrap().min_interval(), one_second);
    }

    fn runs(expr: &str, tz: &str, after: &str, count: usize) -> Vec<String> {
        let after: Timestamp = after.parse().unwrap();
        parse(expr)
            .unwrap()
            .next_runs(tz, after, count)
            .unwrap()
            .iter()
            .map(|run| run.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string())
            .collect()
    }

    #[test]
    fn next_runs_daily_in_utc() {
        assert_eq!(
            runs("30 2 * * *", "Etc/UTC", "2026-01-01T03:00:00Z", 2),
            ["2026-01-02T02:30:00+00:00", "2026-01-03T02:30:00+00:00"]
        );
    }

    #[test]
    fn next_runs_strictly_after_start() {
        assert_eq!(runs("0 * * * *", "Etc/UTC", "2026-01-01T05:00:00Z", 1), ["2026-01-01T06:00:00+00:00"]);
    }

    #[test]
    fn next_runs_step_and_list() {
        assert_eq!(
            runs("5/20 8,20 * * *", "Etc/UTC", "2026-01-01T00:00:00Z", 4),
            [
                "2026-01-01T08:05:00+00:00",
                "2026-01-01T08:25:00+00:00",
                "2026-01-01T08:45:00+00:00",
                "2026-01-01T20:05:00+00:00",
            ]
        );
    }

    #[test]
    fn next_runs_either_day_field_matches() {
        // 2026-03-01 is a Sunday: the 13th (Friday) and Mondays both match.
        assert_eq!(
            runs("0 0 13 * MON", "Etc/UTC", "2026-03-01T00:00:00Z", 3),
            ["2026-03-02T00:00:00+00:00", "2026-03-09T00:00:00+00:00", "2026-03-13T00:00:00+00:00",]
        );
    }

    #[test]
    fn next_runs_weekday_only_when_day_star() {
        assert_eq!(
            runs("0 0 * * MON", "Etc/UTC", "2026-03-01T00:00:00Z", 2),
            ["2026-03-02T00:00:00+00:00", "2026-03-09T00:00:00+00:00"]
        );
    }

    #[test]
    fn next_runs_leap_day() {
        assert_eq!(
            runs("0 0 29 2 *", "Etc/UTC", "2026-01-01T00:00:00Z", 2),
            ["2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00"]
        );
    }

    #[test]
    fn next_runs_empty_for_february_thirtieth() {
        assert!(runs("0 0 30 2 *", "Etc/UTC", "2026-01-01T00:00:00Z", 1).is_empty());
    }

    #[test]
    fn next_runs_skip_dst_gap_in_berlin() {
        // On 2026-03-29 Berlin clocks jump from 02:00 to 03:00, so 02:30
        // does not exist that day.
        assert_eq!(
            runs("30 2 * * *", "Europe/Berlin", "2026-03-27T12:00:00Z", 3),
            ["2026-03-28T02:30:00+01:00", "2026-03-30T02:30:00+02:00", "2026-03-31T02:30:00+02:00",]
        );
    }

    #[test]
    fn next_runs_fold_twice_in_berlin() {
        // On 2026-10-25 Berlin clocks go back from 03:00 to 02:00, so the
        // hour from 02:00 occurs twice, and the controller runs in both
        // passes.
        assert_eq!(
            runs("0,30 2,3 * * *", "Europe/Berlin", "2026-10-25T00:00:00Z", 6),
            [
                "2026-10-25T02:30:00+02:00",
                "2026-10-25T02:00:00+01:00",
                "2026-10-25T02:30:00+01:00",
                "2026-10-25T03:00:00+01:00",
                "2026-10-25T03:30:00+01:00",
                "2026-10-26T02:00:00+01:00",
            ]
        );
    }

    #[test]
    fn next_after_inside_fold_second_pass() {
        // 02:15 in the second pass (+01:00): 02:30 follows in the same pass.
        let after: Zoned = "2026-10-25T02:15:00+01:00[Europe/Berlin]".parse().unwrap();
        let next = parse("30 2 * * *").unwrap().next_after(&after).unwrap();
        assert_eq!(next.to_string(), "2026-10-25T02:30:00+01:00[Europe/Berlin]");
    }

    #[test]
    fn next_runs_every_relative_to_start() {
        assert_eq!(
            runs("@every 1h30m", "Etc/UTC", "2026-01-01T00:10:20.5Z", 2),
            ["2026-01-01T01:40:20+00:00", "2026-01-01T03:10:20+00:00"]
        );
    }

    #[test]
    fn next_runs_unknown_time_zone() {
        let error = parse("@daily").unwrap().next_runs("Mars/Olympus", Timestamp::UNIX_EPOCH, 1).unwrap_err();
        assert_eq!(error.to_string(), "unknown time zone `Mars/Olympus`");
    }

    #[test]
    fn has_matching_day_false_for_february_thirtieth() {
        assert!(!parse("0 0 30 2 *").unwrap().has_matching_day());
    }

    #[test]
    fn has_matching_day_true_with_weekday() {
        assert!(parse("0 0 30 2 MON").unwrap().has_matching_day());
        assert!(parse("0 0 29 2 *").unwrap().has_matching_day());
    }
}

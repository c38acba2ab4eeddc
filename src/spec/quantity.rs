//! Kubernetes resource quantities (`250m`, `128Mi`, `1e3`), parsed exactly.
//!
//! The grammar is the one the Kubernetes API documents for `Quantity`, plus
//! the `n` and `u` suffixes that Kubernetes also accepts. kuul requires
//! digits on both sides of a decimal point and rejects `1.` and `.5`, which
//! the API documents as valid, so that values read unambiguously.
//!
//! ```text
//! quantity  = [ "+" | "-" ] digits [ "." digits ] suffix
//! suffix    = binary | decimal | exponent
//! binary    = "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei"
//! decimal   = "n" | "u" | "m" | "" | "k" | "M" | "G" | "T" | "P" | "E"
//! exponent  = ( "e" | "E" ) [ "+" | "-" ] digits
//! ```
//!
//! Every such value is a finite decimal fraction (a power of 1024 is an
//! integer), so a quantity is stored as `coefficient * 10^exponent` with an
//! `i128` coefficient and compared without rounding. Kubernetes itself caps
//! values at 2^63-1 and rounds up fractions it cannot store. kuul does not, so two
//! quantities that the API server would store as equal can compare unequal
//! here.

use std::cmp::Ordering;
use std::fmt;

/// The maximum number of significant digits, which keeps the coefficient
/// inside `i128` (about 1.7e38).
const MAX_SIGNIFICANT_DIGITS: usize = 38;

/// The maximum absolute decimal exponent. It keeps the exponent arithmetic
/// in range and is far beyond any real resource size.
const MAX_EXPONENT: i64 = 1_000_000;

/// A parsed quantity. Equality and ordering compare the exact values, so
/// `1Ki` equals `1024`. [`fmt::Display`] returns the text as written.
#[derive(Debug, Clone)]
pub struct Quantity {
    text: String,
    /// The value without trailing zeros, so each value has one representation.
    coefficient: i128,
    exponent: i64,
}

/// A quantity that does not follow the grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("empty quantity")]
    Empty,
    #[error("invalid quantity `{text}`: expected digits, with an optional `.` and more digits")]
    InvalidNumber { text: String },
    #[error("invalid quantity `{text}`: unknown suffix `{suffix}`")]
    UnknownSuffix { text: String, suffix: String },
    #[error(
        "invalid quantity `{text}`: more than {MAX_SIGNIFICANT_DIGITS} significant digits or an exponent beyond {MAX_EXPONENT}"
    )]
    OutOfRange { text: String },
}

impl QuantityError {
    /// Returns the fix to show on the `hint:` line.
    pub fn hint(&self) -> &'static str {
        match self {
            QuantityError::OutOfRange { .. } => "use a smaller value or a larger suffix",
            _ => {
                "write a number with an optional suffix, such as `250m`, `2`, `512Mi` or `1Gi` (suffixes are case-sensitive)"
            }
        }
    }
}

/// Parses a quantity such as `250m`, `1.5Gi` or `2e3`.
pub fn parse(text: &str) -> Result<Quantity, QuantityError> {
    if text.is_empty() {
        return Err(QuantityError::Empty);
    }

    let (negative, unsigned) = split_sign(text);
    let invalid_number = || QuantityError::InvalidNumber { text: text.to_owned() };

    let integer_digits = leading_digits(unsigned);
    if integer_digits.is_empty() {
        return Err(invalid_number());
    }
    let mut rest = &unsigned[integer_digits.len()..];

    let mut fraction_digits = "";
    if let Some(after_point) = rest.strip_prefix('.') {
        fraction_digits = leading_digits(after_point);
        if fraction_digits.is_empty() {
            return Err(invalid_number());
        }
        rest = &after_point[fraction_digits.len()..];
    }

    let suffix = parse_suffix(rest)
        .ok_or_else(|| QuantityError::UnknownSuffix { text: text.to_owned(), suffix: rest.to_owned() })?;

    let out_of_range = || QuantityError::OutOfRange { text: text.to_owned() };
    let (mut coefficient, mut exponent) = decimal_value(integer_digits, fraction_digits).ok_or_else(out_of_range)?;
    match suffix {
        Suffix::Decimal(power) => exponent += power,
        Suffix::Binary(power) => {
            let factor = 1024_i128.pow(power);
            coefficient = coefficient.checked_mul(factor).ok_or_else(out_of_range)?;
        }
    }
    if negative {
        coefficient = -coefficient;
    }
    if exponent.abs() > MAX_EXPONENT {
        return Err(out_of_range());
    }

    let (coefficient, exponent) = normalize(coefficient, exponent);
    Ok(Quantity { text: text.to_owned(), coefficient, exponent })
}

impl Quantity {
    /// Returns whether the value is below zero.
    pub fn is_negative(&self) -> bool {
        self.coefficient < 0
    }

    /// Returns the text as written in `kuul.toml`.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.text)
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        let by_sign = self.coefficient.signum().cmp(&other.coefficient.signum());
        if by_sign != Ordering::Equal || self.coefficient == 0 {
            return by_sign;
        }

        // Scale the value with the larger exponent down to the smaller
        // exponent. If that overflows, its magnitude exceeds any `i128`, so
        // the sign alone decides.
        let (larger, smaller, reversed) =
            if self.exponent >= other.exponent { (self, other, false) } else { (other, self, true) };
        let scaled = u32::try_from(larger.exponent - smaller.exponent)
            .ok()
            .and_then(|shift| 10_i128.checked_pow(shift))
            .and_then(|factor| larger.coefficient.checked_mul(factor));
        let ordering = match scaled {
            Some(scaled) => scaled.cmp(&smaller.coefficient),
            None if larger.coefficient > 0 => Ordering::Greater,
            None => Ordering::Less,
        };

        if reversed { ordering.reverse() } else { ordering }
    }
}

enum Suffix {
    /// A power of ten.
    Decimal(i64),
    /// A power of 1024.
    Binary(u32),
}

fn split_sign(text: &str) -> (bool, &str) {
    if let Some(rest) = text.strip_prefix('-') {
        (true, rest)
    } else if let Some(rest) = text.strip_prefix('+') {
        (false, rest)
    } else {
        (false, text)
    }
}

fn leading_digits(text: &str) -> &str {
    let end = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    &text[..end]
}

fn parse_suffix(suffix: &str) -> Option<Suffix> {
    let decimal = match suffix {
        "n" => Some(-9),
        "u" => Some(-6),
        "m" => Some(-3),
        "" => Some(0),
        "k" => Some(3),
        "M" => Some(6),
        "G" => Some(9),
        "T" => Some(12),
        "P" => Some(15),
        "E" => Some(18),
        _ => None,
    };
    if let Some(power) = decimal {
        return Some(Suffix::Decimal(power));
    }

    let binary = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"].iter().position(|candidate| *candidate == suffix);
    if let Some(index) = binary {
        return Some(Suffix::Binary(index as u32 + 1));
    }

    // A decimal exponent: `e` or `E`, an optional sign, then digits. `E`
    // alone is the exa suffix, handled above.
    let exponent = suffix.strip_prefix(['e', 'E'])?;
    let (negative, digits) = split_sign(exponent);
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let magnitude = digits.parse::<i64>().unwrap_or(i64::MAX).min(MAX_EXPONENT + 1);
    Some(Suffix::Decimal(if negative { -magnitude } else { magnitude }))
}

/// Converts `integer.fraction` to a coefficient and a power of ten, or
/// `None` when there are too many significant digits.
fn decimal_value(integer_digits: &str, fraction_digits: &str) -> Option<(i128, i64)> {
    let digits = format!("{integer_digits}{fraction_digits}");
    let significant = digits.trim_start_matches('0');
    let without_trailing_zeros = significant.trim_end_matches('0');
    if without_trailing_zeros.is_empty() {
        return Some((0, 0));
    }
    if without_trailing_zeros.len() > MAX_SIGNIFICANT_DIGITS {
        return None;
    }

    let trailing_zeros = (significant.len() - without_trailing_zeros.len()) as i64;
    let coefficient = without_trailing_zeros.parse::<i128>().ok()?;
    Some((coefficient, trailing_zeros - fraction_digits.len() as i64))
}

/// Removes trailing decimal zeros from the coefficient, so equal values have
/// equal fields.
fn normalize(mut coefficient: i128, mut exponent: i64) -> (i128, i64) {
    if coefficient == 0 {
        return (0, 0);
    }
    while coefficient % 10 == 0 {
        coefficient /= 10;
        exponent += 1;
    }
    (coefficient, exponent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn quantity(text: &str) -> Quantity {
        parse(text).unwrap_or_else(|error| panic!("`{text}` should parse: {error}"))
    }

    #[test]
    fn parse_accepts_valid_forms() {
        for text in [
            "0",
            "1",
            "+1",
            "-1",
            "250m",
            "0.5",
            "1.5Gi",
            "128Mi",
            "1Ki",
            "2Ti",
            "3Pi",
            "1Ei",
            "1n",
            "1u",
            "1k",
            "1M",
            "1G",
            "1T",
            "1P",
            "1E",
            "1e3",
            "1E3",
            "1e-2",
            "1E+2",
            "12345678901234567890",
            "007",
        ] {
            assert!(parse(text).is_ok(), "`{text}` should parse");
        }
    }

    #[test]
    fn parse_rejects_invalid_forms() {
        for text in [
            "", "Mi", "1.", ".", ".5", "1 Mi", "1mi", "1K", "1KI", "1e", "1e+", "1e1.5", "1.5.5", "--1", "+", "1Mi ",
            " 1", "1ki", "1b", "0x10", "1_000",
        ] {
            assert!(parse(text).is_err(), "`{text}` should be rejected");
        }
    }

    #[test]
    fn parse_rejects_empty_text() {
        assert_eq!(parse(""), Err(QuantityError::Empty));
    }

    #[test]
    fn parse_names_unknown_suffix() {
        let error = parse("1K").unwrap_err();
        assert_eq!(error.to_string(), "invalid quantity `1K`: unknown suffix `K`");
    }

    #[test]
    fn parse_rejects_too_many_digits() {
        let error = parse("123456789012345678901234567890123456789").unwrap_err();
        assert!(matches!(error, QuantityError::OutOfRange { .. }));
    }

    #[test]
    fn display_returns_input_text() {
        assert_eq!(quantity("1.50Gi").to_string(), "1.50Gi");
    }

    #[test]
    fn equal_values_in_different_units() {
        assert_eq!(quantity("1Ki"), quantity("1024"));
        assert_eq!(quantity("0.5"), quantity("500m"));
        assert_eq!(quantity("1e3"), quantity("1k"));
        assert_eq!(quantity("1.5Gi"), quantity("1536Mi"));
        assert_eq!(quantity("0"), quantity("-0m"));
    }

    #[test]
    fn ordering_of_close_large_values() {
        assert!(quantity("12345678901234567890") < quantity("12345678901234567891"));
        assert!(quantity("12345678901234567890e20") > quantity("12345678901234567889e20"));
    }

    #[test]
    fn ordering_across_units() {
        assert!(quantity("1Gi") > quantity("1G"));
        assert!(quantity("999m") < quantity("1"));
        assert!(quantity("1n") > quantity("0"));
        assert!(quantity("-1") < quantity("1n"));
        assert!(quantity("1e100") > quantity("99999999999999999999999999999999999999"));
        assert!(quantity("-1e100") < quantity("-1"));
    }

    #[test]
    fn is_negative_for_minus_sign() {
        assert!(quantity("-1m").is_negative());
        assert!(!quantity("-0").is_negative());
    }

    const SUFFIXES: [(&str, i64, u32); 16] = [
        ("n", -9, 0),
        ("u", -6, 0),
        ("m", -3, 0),
        ("", 0, 0),
        ("k", 3, 0),
        ("M", 6, 0),
        ("G", 9, 0),
        ("T", 12, 0),
        ("P", 15, 0),
        ("E", 18, 0),
        ("Ki", 0, 1),
        ("Mi", 0, 2),
        ("Gi", 0, 3),
        ("Ti", 0, 4),
        ("Pi", 0, 5),
        ("Ei", 0, 6),
    ];

    /// Writes `mantissa / 10^decimals` as `integer.fraction`.
    fn format_decimal(mantissa: u64, decimals: u32) -> String {
        let digits = format!("{mantissa:0>width$}", width = decimals as usize + 1);
        let (integer, fraction) = digits.split_at(digits.len() - decimals as usize);
        if fraction.is_empty() { integer.to_owned() } else { format!("{integer}.{fraction}") }
    }

    proptest! {
        #[test]
        fn suffix_round_trip(
            mantissa in 0u64..1_000_000_000_000,
            decimals in 0u32..7,
            suffix_index in 0usize..SUFFIXES.len(),
        ) {
            let (suffix, power_of_ten, power_of_1024) = SUFFIXES[suffix_index];
            let written = format!("{}{suffix}", format_decimal(mantissa, decimals));

            let scaled = i128::from(mantissa) * 1024_i128.pow(power_of_1024);
            let expected = format!("{scaled}e{}", power_of_ten - i64::from(decimals));

            prop_assert_eq!(quantity(&written), quantity(&expected));
        }

        #[test]
        fn ordering_matches_integers(left in any::<i64>(), right in any::<i64>()) {
            let ordering = quantity(&left.to_string()).cmp(&quantity(&right.to_string()));
            prop_assert_eq!(ordering, left.cmp(&right));
        }

        #[test]
        fn ordering_matches_scaled_integers(
            left in -1_000_000i64..1_000_000,
            right in -1_000_000_000i64..1_000_000_000,
        ) {
            let ordering = quantity(&format!("{left}Ki")).cmp(&quantity(&right.to_string()));
            prop_assert_eq!(ordering, (left * 1024).cmp(&right));
        }
    }
}

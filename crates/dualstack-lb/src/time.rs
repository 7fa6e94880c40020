//! Kubernetes timestamps (`metav1.Time`, `metav1.MicroTime`): RFC 3339 text to an instant.
//!
//! The decision core never reads the clock: `now` is an input. This module converts the
//! RFC 3339 text the API server prints (`2024-05-01T12:00:00Z`, `2024-05-01T12:00:00.123456Z`,
//! or with an offset such as `+02:00`) to microseconds since the Unix epoch, and back; and it
//! holds the one [`clock`] the adapters and the binary read that input from.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An instant, in microseconds since 1970-01-01T00:00:00Z (the precision of `MicroTime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Why a text is not an RFC 3339 timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("timestamp {value:?} is not RFC 3339 (like 2024-05-01T12:00:00Z): {why}")]
pub struct TimestampError {
    /// The text.
    pub value: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// Why the system clock cannot be an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    /// The clock reads earlier than the Unix epoch.
    #[error("the system clock is before 1970")]
    BeforeEpoch,
    /// More microseconds since the epoch than an `i64` holds.
    #[error("the system clock is out of range")]
    OutOfRange,
}

/// The current time as a decision input: the system clock, to the microsecond.
pub fn clock() -> Result<Timestamp, ClockError> {
    Timestamp::from_system_time(SystemTime::now())
}

const MICROS: i64 = 1_000_000;

impl Timestamp {
    /// The instant `micros` microseconds after the Unix epoch.
    pub const fn from_unix_micros(micros: i64) -> Timestamp {
        Timestamp(micros)
    }

    /// Microseconds since the Unix epoch.
    pub const fn unix_micros(self) -> i64 {
        self.0
    }

    /// The instant a [`SystemTime`] stands for.
    pub fn from_system_time(time: SystemTime) -> Result<Timestamp, ClockError> {
        let since = time
            .duration_since(UNIX_EPOCH)
            .map_err(|_| ClockError::BeforeEpoch)?;
        let micros = i64::try_from(since.as_micros()).map_err(|_| ClockError::OutOfRange)?;
        Ok(Timestamp(micros))
    }

    /// This instant plus a number of seconds (saturating).
    pub fn plus_seconds(self, seconds: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(seconds.saturating_mul(MICROS)))
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s).map_err(|why| TimestampError {
            value: s.to_string(),
            why,
        })
    }
}

fn digits(s: &[u8], from: usize, len: usize) -> Result<i64, &'static str> {
    let part = s.get(from..from + len).ok_or("too short")?;
    let mut value = 0i64;
    for &b in part {
        if !b.is_ascii_digit() {
            return Err("expected a digit");
        }
        value = value * 10 + i64::from(b - b'0');
    }
    Ok(value)
}

fn expect(s: &[u8], at: usize, what: &[u8]) -> Result<(), &'static str> {
    match s.get(at) {
        Some(b) if what.contains(b) => Ok(()),
        _ => Err("unexpected separator"),
    }
}

fn parse(text: &str) -> Result<Timestamp, &'static str> {
    let s = text.as_bytes();
    let year = digits(s, 0, 4)?;
    expect(s, 4, b"-")?;
    let month = digits(s, 5, 2)?;
    expect(s, 7, b"-")?;
    let day = digits(s, 8, 2)?;
    expect(s, 10, b"Tt ")?;
    let hour = digits(s, 11, 2)?;
    expect(s, 13, b":")?;
    let minute = digits(s, 14, 2)?;
    expect(s, 16, b":")?;
    let second = digits(s, 17, 2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err("no such date");
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err("no such time of day");
    }
    let mut at = 19;
    let mut micros = 0i64;
    if s.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while s.get(at).is_some_and(u8::is_ascii_digit) {
            if at - start < 6 {
                micros = micros * 10 + i64::from(s[at] - b'0');
            }
            at += 1;
        }
        let count = at - start;
        if count == 0 {
            return Err("empty fraction of a second");
        }
        for _ in count..6 {
            micros *= 10;
        }
    }
    let offset_seconds = match s.get(at) {
        Some(b'Z' | b'z') => {
            at += 1;
            0
        }
        Some(sign @ (b'+' | b'-')) => {
            let hours = digits(s, at + 1, 2)?;
            expect(s, at + 3, b":")?;
            let minutes = digits(s, at + 4, 2)?;
            if hours > 23 || minutes > 59 {
                return Err("no such offset");
            }
            at += 6;
            let offset = hours * 3600 + minutes * 60;
            if *sign == b'-' { -offset } else { offset }
        }
        _ => return Err("missing time zone (Z or +hh:mm)"),
    };
    if at != s.len() {
        return Err("trailing characters");
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second.min(59) - offset_seconds;
    Ok(Timestamp(seconds * MICROS + micros))
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC; the fraction is printed only when it is not zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.0.div_euclid(MICROS);
        let micros = self.0.rem_euclid(MICROS);
        let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
        let in_day = seconds.rem_euclid(86_400);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            in_day / 3600,
            in_day % 3600 / 60,
            in_day % 60
        )?;
        if micros != 0 {
            write!(f, ".{micros:06}")?;
        }
        f.write_str("Z")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_system_clock_is_read_to_the_microsecond() {
        use std::time::Duration;
        let at = |d: Duration| Timestamp::from_system_time(UNIX_EPOCH + d);
        assert_eq!(at(Duration::ZERO), Ok(Timestamp::from_unix_micros(0)));
        assert_eq!(
            at(Duration::new(1_714_564_800, 123_456_789)),
            Ok(Timestamp::from_unix_micros(1_714_564_800_123_456))
        );
        assert_eq!(
            Timestamp::from_system_time(UNIX_EPOCH - Duration::from_secs(1)),
            Err(ClockError::BeforeEpoch)
        );
        assert!(clock().is_ok_and(|now| now > "2024-01-01T00:00:00Z".parse().unwrap()));
    }

    #[test]
    fn parses_what_the_api_server_prints() {
        let cases = [
            ("1970-01-01T00:00:00Z", 0),
            ("2024-05-01T12:00:00Z", 1_714_564_800 * MICROS),
            (
                "2024-05-01T12:00:00.123456Z",
                1_714_564_800 * MICROS + 123_456,
            ),
            ("2024-05-01T12:00:00.5Z", 1_714_564_800 * MICROS + 500_000),
            (
                "2024-05-01T12:00:00.123456789Z",
                1_714_564_800 * MICROS + 123_456,
            ),
            ("2024-05-01T14:00:00+02:00", 1_714_564_800 * MICROS),
            ("2024-05-01T10:30:00-01:30", 1_714_564_800 * MICROS),
            ("2024-02-29T00:00:00Z", 1_709_164_800 * MICROS),
        ];
        for (text, micros) in cases {
            assert_eq!(
                text.parse::<Timestamp>().unwrap().unix_micros(),
                micros,
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_malformed_text_naming_the_value() {
        for bad in [
            "",
            "2024-05-01",
            "2024-05-01T12:00:00",
            "2024-13-01T12:00:00Z",
            "2023-02-29T12:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:00:00.Z",
            "2024-05-01T12:00:00Zjunk",
            "yesterday",
        ] {
            let err = bad.parse::<Timestamp>().unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    proptest! {
        #[test]
        fn display_and_parse_round_trip(micros in -62_135_596_800_000_000i64..253_402_300_799_000_000i64) {
            let t = Timestamp::from_unix_micros(micros);
            prop_assert_eq!(t.to_string().parse::<Timestamp>().unwrap(), t);
        }
    }
}

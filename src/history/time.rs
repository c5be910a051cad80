//! Time for the history: Unix milliseconds, UTC calendar days and hours, and
//! short human durations. Every function takes the time it works on as an
//! argument; nothing here reads the clock.

use std::time::{Duration, UNIX_EPOCH};

pub const SECOND_MS: u64 = 1_000;
pub const MINUTE_MS: u64 = 60_000;
pub const HOUR_MS: u64 = 3_600_000;
pub const DAY_MS: u64 = 86_400_000;

/// `ms` rounded down to a multiple of `unit`.
pub fn floor_to(ms: u64, unit: u64) -> u64 {
    ms - ms % unit
}

/// `ms` rounded up to a multiple of `unit`.
pub fn ceil_to(ms: u64, unit: u64) -> u64 {
    floor_to(ms + unit - 1, unit)
}

/// A `Duration` in whole milliseconds (saturating).
pub fn ms_of(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The hour of the day (0–23, UTC) of `ms`.
pub fn hour_of_day(ms: u64) -> u32 {
    ((ms % DAY_MS) / HOUR_MS) as u32
}

/// `YYYY-MM-DD` (UTC) of the day holding `ms`.
pub fn format_day(ms: u64) -> String {
    let (y, m, d) = civil_from_days((ms / DAY_MS) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Midnight UTC of `YYYY-MM-DD`, in Unix milliseconds.
pub fn parse_day(text: &str) -> Result<u64, String> {
    let bad = || format!("invalid day {text:?}: write it as YYYY-MM-DD");
    let parts: Vec<&str> = text.trim().split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let (y, m, d): (i64, u32, u32) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) || y < 1970 {
        return Err(bad());
    }
    Ok(days_from_civil(y, m, d) as u64 * DAY_MS)
}

/// RFC 3339 UTC with seconds, e.g. `2025-10-09T12:00:00Z`.
pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// A short human duration: `850ms`, `12.5s`, `4m 10s`, `3h 20m`, `2d 5h`.
pub fn short_duration(ms: u64) -> String {
    let s = ms / 1000;
    match ms {
        0..=999 => format!("{ms}ms"),
        1_000..=59_999 => {
            let tenths = ms / 100;
            if tenths.is_multiple_of(10) {
                format!("{}s", tenths / 10)
            } else {
                format!("{}.{}s", tenths / 10, tenths % 10)
            }
        }
        60_000..=3_599_999 => two(s / 60, "m", s % 60, "s"),
        3_600_000..=86_399_999 => two(s / 3600, "h", (s % 3600) / 60, "m"),
        _ => two(s / 86_400, "d", (s % 86_400) / 3600, "h"),
    }
}

/// `3h 20m`, or `3h` when the second part is zero.
fn two(a: u64, unit_a: &str, b: u64, unit_b: &str) -> String {
    if b == 0 {
        format!("{a}{unit_a}")
    } else {
        format!("{a}{unit_a} {b}{unit_b}")
    }
}

/// Parse a period written as a humantime duration (`24h`, `7d`, `90m`).
pub fn parse_period(text: &str) -> Result<u64, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("invalid duration {text:?}: {e} (write it like \"24h\" or \"7d\")"))?;
    match ms_of(d) {
        0 => Err(format!("{text:?} is an empty period")),
        ms => Ok(ms),
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip() {
        // 2025-10-09T00:00:00Z
        let day = 1_759_968_000_000;
        assert_eq!(format_day(day + 5 * HOUR_MS), "2025-10-09");
        assert_eq!(parse_day("2025-10-09"), Ok(day));
        assert_eq!(
            parse_day("2024-02-29").map(format_day),
            Ok("2024-02-29".into())
        );
        assert_eq!(format_day(0), "1970-01-01");
        assert!(parse_day("2025-02-29").is_err());
        assert!(parse_day("2025-13-01").is_err());
        assert!(parse_day("yesterday").is_err());
        for days in [0_i64, 59, 60, 365, 10_957, 20_000, 30_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn hours_and_rounding() {
        assert_eq!(hour_of_day(3 * DAY_MS + 13 * HOUR_MS + 59 * MINUTE_MS), 13);
        assert_eq!(floor_to(61_500, MINUTE_MS), 60_000);
        assert_eq!(ceil_to(60_000, MINUTE_MS), 60_000);
        assert_eq!(ceil_to(60_001, MINUTE_MS), 120_000);
        assert_eq!(rfc3339(1_759_968_000_000), "2025-10-09T00:00:00Z");
    }

    #[test]
    fn short_durations() {
        assert_eq!(short_duration(850), "850ms");
        assert_eq!(short_duration(12_000), "12s");
        assert_eq!(short_duration(12_540), "12.5s");
        assert_eq!(short_duration(250_000), "4m 10s");
        assert_eq!(short_duration(12_000_000), "3h 20m");
        assert_eq!(short_duration(190_800_000), "2d 5h");
        assert_eq!(short_duration(HOUR_MS), "1h");
        assert_eq!(short_duration(DAY_MS), "1d");
        assert_eq!(short_duration(15 * MINUTE_MS), "15m");
        assert_eq!(parse_period("24h"), Ok(DAY_MS));
        assert!(parse_period("0s").is_err());
    }
}

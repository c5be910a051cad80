//! The optional `history` and `reports` objects of `config/autonomy.json`: how
//! long incident history is kept, the thresholds of the pattern detectors, and
//! when the daily summary is written.
//!
//! Both objects may be left out; every key has a default (README "History,
//! reports and patterns"). Durations take the two usual forms (`window: "15m"`
//! or `window_seconds: 900`), and every problem names its key path.

use std::time::Duration;

use super::duration::DurationKey;
use super::raw::{Expecting, HumanDuration, Object, Seconds};
use super::validate::Problems;

/// `history`: retention and the pattern detectors' thresholds.
#[derive(Debug, Clone, PartialEq)]
pub struct HistorySettings {
    /// Days of history kept in `data/history.db`; older rows are deleted daily.
    pub history_days: u32,
    pub flapping: Flapping,
    pub latency_trend: LatencyTrend,
    pub time_of_day: TimeOfDay,
    pub correlated: Correlated,
}

/// A service that keeps failing and coming back: `min_restarts` automatic
/// restarts within `window`, each of which brought it back to `running`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Flapping {
    pub min_restarts: u32,
    pub window: Duration,
}

/// Health-check latency getting worse: the p95 of the last `recent` is more than
/// `increase_percent` % (and at least `min_increase_ms`) above the p95 of the
/// `baseline` before it, both windows holding at least `min_checks` passing checks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyTrend {
    pub recent: Duration,
    pub baseline: Duration,
    pub increase_percent: f64,
    pub min_increase_ms: f64,
    pub min_checks: u64,
}

/// Failures at the same hour of the day (UTC): incidents opened in one hour
/// on at least `min_days` different days within `lookback`, those days being at
/// least `min_share_percent` % of the days the service had an incident (so a
/// service failing often at random hours is not taken for a recurring one).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeOfDay {
    pub lookback: Duration,
    pub min_days: u32,
    pub min_share_percent: f64,
}

/// Two services failing together: incidents of both opened within `window` of
/// each other at least `min_occurrences` times within `lookback`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Correlated {
    pub window: Duration,
    pub min_occurrences: u32,
    pub lookback: Duration,
}

impl Default for HistorySettings {
    fn default() -> Self {
        HistorySettings {
            history_days: 30,
            flapping: Flapping {
                min_restarts: 3,
                window: Duration::from_secs(15 * 60),
            },
            latency_trend: LatencyTrend {
                recent: Duration::from_secs(3600),
                baseline: Duration::from_secs(24 * 3600),
                increase_percent: 50.0,
                min_increase_ms: 5.0,
                min_checks: 30,
            },
            time_of_day: TimeOfDay {
                lookback: Duration::from_secs(7 * 24 * 3600),
                min_days: 3,
                min_share_percent: 50.0,
            },
            correlated: Correlated {
                window: Duration::from_secs(10),
                min_occurrences: 3,
                lookback: Duration::from_secs(24 * 3600),
            },
        }
    }
}

/// `reports`: the daily summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportSettings {
    /// UTC time of day the summary of the previous (UTC) day is written;
    /// `None` (`"daily_at": "off"`) writes none.
    pub daily_at: Option<TimeOfDayUtc>,
}

impl Default for ReportSettings {
    fn default() -> Self {
        ReportSettings {
            daily_at: Some(TimeOfDayUtc { hour: 8, minute: 0 }),
        }
    }
}

/// `HH:MM`, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeOfDayUtc {
    pub hour: u8,
    pub minute: u8,
}

// ---- the serde shapes ----------------------------------------------------------

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHistory {
    pub history_days: Option<u32>,
    pub flapping: Option<Object<RawFlapping>>,
    pub latency_trend: Option<Object<RawLatencyTrend>>,
    pub time_of_day: Option<Object<RawTimeOfDay>>,
    pub correlated: Option<Object<RawCorrelated>>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFlapping {
    pub min_restarts: Option<u32>,
    pub window: Option<HumanDuration>,
    pub window_seconds: Option<Seconds>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLatencyTrend {
    pub recent: Option<HumanDuration>,
    pub recent_seconds: Option<Seconds>,
    pub baseline: Option<HumanDuration>,
    pub baseline_seconds: Option<Seconds>,
    pub increase_percent: Option<f64>,
    pub min_increase_ms: Option<f64>,
    pub min_checks: Option<u64>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTimeOfDay {
    pub lookback: Option<HumanDuration>,
    pub lookback_seconds: Option<Seconds>,
    pub min_days: Option<u32>,
    pub min_share_percent: Option<f64>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCorrelated {
    pub window: Option<HumanDuration>,
    pub window_seconds: Option<Seconds>,
    pub min_occurrences: Option<u32>,
    pub lookback: Option<HumanDuration>,
    pub lookback_seconds: Option<Seconds>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReports {
    pub daily_at: Option<String>,
}

impl Expecting for RawHistory {
    const WHAT: &'static str =
        "a history object (history_days, flapping, latency_trend, time_of_day, correlated)";
}
impl Expecting for RawFlapping {
    const WHAT: &'static str = "a flapping object (min_restarts, window)";
}
impl Expecting for RawLatencyTrend {
    const WHAT: &'static str = "a latency_trend object (recent, baseline, increase_percent, \
        min_increase_ms, min_checks)";
}
impl Expecting for RawTimeOfDay {
    const WHAT: &'static str = "a time_of_day object (lookback, min_days, min_share_percent)";
}
impl Expecting for RawCorrelated {
    const WHAT: &'static str = "a correlated object (window, min_occurrences, lookback)";
}
impl Expecting for RawReports {
    const WHAT: &'static str = "a reports object {\"daily_at\": \"08:00\"}";
}

// ---- validation ----------------------------------------------------------------

/// The settings of the two objects (defaults where absent); every bad value is
/// pushed to `problems` with its key path.
pub(crate) fn build(
    history: Option<Object<RawHistory>>,
    reports: Option<Object<RawReports>>,
    problems: &mut Problems,
) -> (HistorySettings, ReportSettings) {
    let raw = history.map(|h| h.0).unwrap_or_default();
    let d = HistorySettings::default();
    let history_days = at_least(
        raw.history_days,
        d.history_days,
        1,
        "history.history_days",
        problems,
    );

    let f = raw.flapping.map(|o| o.0).unwrap_or_default();
    let flapping = Flapping {
        min_restarts: at_least(
            f.min_restarts,
            d.flapping.min_restarts,
            2,
            "history.flapping.min_restarts",
            problems,
        ),
        window: positive(
            "history.flapping",
            "window",
            f.window.as_ref(),
            f.window_seconds,
            d.flapping.window,
            problems,
        ),
    };

    let l = raw.latency_trend.map(|o| o.0).unwrap_or_default();
    let at = "history.latency_trend";
    let latency_trend = LatencyTrend {
        recent: positive(
            at,
            "recent",
            l.recent.as_ref(),
            l.recent_seconds,
            d.latency_trend.recent,
            problems,
        ),
        baseline: positive(
            at,
            "baseline",
            l.baseline.as_ref(),
            l.baseline_seconds,
            d.latency_trend.baseline,
            problems,
        ),
        increase_percent: non_negative(
            l.increase_percent,
            d.latency_trend.increase_percent,
            "history.latency_trend.increase_percent",
            problems,
        ),
        min_increase_ms: non_negative(
            l.min_increase_ms,
            d.latency_trend.min_increase_ms,
            "history.latency_trend.min_increase_ms",
            problems,
        ),
        min_checks: l.min_checks.unwrap_or(d.latency_trend.min_checks).max(1),
    };

    let t = raw.time_of_day.map(|o| o.0).unwrap_or_default();
    let time_of_day = TimeOfDay {
        lookback: positive(
            "history.time_of_day",
            "lookback",
            t.lookback.as_ref(),
            t.lookback_seconds,
            d.time_of_day.lookback,
            problems,
        ),
        min_days: at_least(
            t.min_days,
            d.time_of_day.min_days,
            2,
            "history.time_of_day.min_days",
            problems,
        ),
        min_share_percent: non_negative(
            t.min_share_percent,
            d.time_of_day.min_share_percent,
            "history.time_of_day.min_share_percent",
            problems,
        ),
    };

    let c = raw.correlated.map(|o| o.0).unwrap_or_default();
    let at = "history.correlated";
    let correlated = Correlated {
        window: positive(
            at,
            "window",
            c.window.as_ref(),
            c.window_seconds,
            d.correlated.window,
            problems,
        ),
        min_occurrences: at_least(
            c.min_occurrences,
            d.correlated.min_occurrences,
            1,
            "history.correlated.min_occurrences",
            problems,
        ),
        lookback: positive(
            at,
            "lookback",
            c.lookback.as_ref(),
            c.lookback_seconds,
            d.correlated.lookback,
            problems,
        ),
    };

    let reports = match reports.and_then(|r| r.0.daily_at) {
        None => ReportSettings::default(),
        Some(text) => match parse_daily_at(&text) {
            Ok(daily_at) => ReportSettings { daily_at },
            Err(e) => {
                problems.push("reports.daily_at", e);
                ReportSettings::default()
            }
        },
    };

    (
        HistorySettings {
            history_days,
            flapping,
            latency_trend,
            time_of_day,
            correlated,
        },
        reports,
    )
}

/// `"08:00"` → 08:00 UTC; `"off"` → no daily summary.
pub(crate) fn parse_daily_at(text: &str) -> Result<Option<TimeOfDayUtc>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let bad =
        || format!("invalid time {text:?}: write it as \"HH:MM\" (UTC, 00:00 to 23:59) or \"off\"");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    let ok_digits = |s: &str| (1..=2).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    if !ok_digits(h) || m.len() != 2 || !ok_digits(m) {
        return Err(bad());
    }
    let (hour, minute): (u8, u8) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if hour > 23 || minute > 59 {
        return Err(bad());
    }
    Ok(Some(TimeOfDayUtc { hour, minute }))
}

fn at_least(value: Option<u32>, default: u32, min: u32, key: &str, problems: &mut Problems) -> u32 {
    match value {
        Some(v) if v < min => {
            problems.push(key, format!("must be at least {min}"));
            default
        }
        Some(v) => v,
        None => default,
    }
}

fn non_negative(value: Option<f64>, default: f64, key: &str, problems: &mut Problems) -> f64 {
    match value {
        Some(v) if !v.is_finite() || v < 0.0 => {
            problems.push(key, "must be a number, 0 or more");
            default
        }
        Some(v) => v,
        None => default,
    }
}

fn positive(
    at: &str,
    key: &str,
    human: Option<&HumanDuration>,
    seconds: Option<Seconds>,
    default: Duration,
    problems: &mut Problems,
) -> Duration {
    let key = DurationKey {
        at,
        key,
        human,
        seconds,
    };
    match key.resolve(problems) {
        Some(d) if d.is_zero() => {
            problems.push(&key.written_path(), "must be greater than zero");
            default
        }
        Some(d) => d,
        None => default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build_json(history: &str, reports: &str) -> (HistorySettings, ReportSettings, Vec<String>) {
        let h: Option<Object<RawHistory>> = serde_json::from_str(history).unwrap();
        let r: Option<Object<RawReports>> = serde_json::from_str(reports).unwrap();
        let mut problems = Problems::default();
        let (h, r) = build(h, r, &mut problems);
        (h, r, problems.lines())
    }

    #[test]
    fn absent_objects_give_the_defaults() {
        let (h, r, problems) = build_json("null", "null");
        assert!(problems.is_empty());
        assert_eq!(h, HistorySettings::default());
        assert_eq!(r.daily_at, Some(TimeOfDayUtc { hour: 8, minute: 0 }));
    }

    #[test]
    fn both_duration_forms_and_overrides() {
        let (h, r, problems) = build_json(
            r#"{"history_days": 7, "flapping": {"min_restarts": 5, "window": "10m"},
                "latency_trend": {"recent_seconds": 1800, "increase_percent": 20},
                "correlated": {"window_seconds": 2.5}}"#,
            r#"{"daily_at": "23:05"}"#,
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(h.history_days, 7);
        assert_eq!(h.flapping.min_restarts, 5);
        assert_eq!(h.flapping.window, Duration::from_secs(600));
        assert_eq!(h.latency_trend.recent, Duration::from_secs(1800));
        assert_eq!(h.latency_trend.increase_percent, 20.0);
        assert_eq!(h.correlated.window, Duration::from_millis(2500));
        assert_eq!(
            r.daily_at,
            Some(TimeOfDayUtc {
                hour: 23,
                minute: 5
            })
        );
    }

    #[test]
    fn bad_values_name_their_key_paths() {
        let (_, _, problems) = build_json(
            r#"{"history_days": 0, "flapping": {"min_restarts": 1, "window": "soon"},
                "time_of_day": {"lookback_seconds": 0}}"#,
            r#"{"daily_at": "25:00"}"#,
        );
        let text = problems.join("\n");
        for key in [
            "history.history_days:",
            "history.flapping.min_restarts:",
            "history.flapping.window:",
            "history.time_of_day.lookback_seconds:",
            "reports.daily_at:",
        ] {
            assert!(text.contains(key), "{key} missing in\n{text}");
        }
    }

    /// Through `Config::load`: the keys load, and a typo is refused with its path.
    #[test]
    fn a_config_with_history_and_reports_loads() {
        use crate::config::tests::{service, with_services, Fixture};
        let mut config = with_services(serde_json::json!({ "a": service() }));
        config["history"] = serde_json::json!({"history_days": 14, "correlated": {"window": "5s"}});
        config["reports"] = serde_json::json!({"daily_at": "off"});
        let loaded = Fixture::with(&config, &["true"]).load().unwrap();
        assert_eq!(loaded.history.history_days, 14);
        assert_eq!(loaded.history.correlated.window, Duration::from_secs(5));
        assert_eq!(loaded.reports.daily_at, None);

        let plain = with_services(serde_json::json!({ "a": service() }));
        let loaded = Fixture::with(&plain, &["true"]).load().unwrap();
        assert_eq!(loaded.history, HistorySettings::default());

        config["history"] = serde_json::json!({"flapping": {"min_restart": 4}});
        let error = Fixture::with(&config, &["true"]).error();
        assert!(error.contains("history.flapping"), "{error}");
        assert!(error.contains("min_restart"), "{error}");
    }

    #[test]
    fn daily_at_forms() {
        assert_eq!(parse_daily_at("off"), Ok(None));
        assert_eq!(
            parse_daily_at("7:30"),
            Ok(Some(TimeOfDayUtc {
                hour: 7,
                minute: 30
            }))
        );
        assert!(parse_daily_at("07:3").is_err());
        assert!(parse_daily_at("0730").is_err());
        assert!(parse_daily_at("12:60").is_err());
    }
}

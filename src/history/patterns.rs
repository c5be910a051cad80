//! Pattern detection over the history: flapping, a rising latency trend,
//! failures at a recurring hour of the day, and services failing together.
//!
//! Each detector is a pure function of rows and thresholds
//! ([`crate::config::HistorySettings`]); [`detect`] gathers the rows from the
//! store for a period ending at a given time. A finding has a stable `key`, so
//! the History actor can tell a pattern seen for the first time (warned and
//! audited once) from one it already knows.

use super::incidents::{Incident, StartRecord};
use super::latency::HealthStats;
use super::store::{Store, StoreError};
use super::time::{format_day, hour_of_day, ms_of, short_duration};
use crate::config::{Correlated, Flapping, HistorySettings, LatencyTrend, TimeOfDay};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PatternKind {
    Flapping,
    LatencyTrend,
    TimeOfDay,
    Correlated,
}

impl PatternKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PatternKind::Flapping => "flapping",
            PatternKind::LatencyTrend => "latency_trend",
            PatternKind::TimeOfDay => "time_of_day",
            PatternKind::Correlated => "correlated",
        }
    }
}

/// A detected pattern.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub kind: PatternKind,
    /// Stable identity, e.g. `flapping:producer`, `correlated:a+b`.
    pub key: String,
    pub services: Vec<String>,
    /// When the evidence was last seen (Unix ms).
    pub at_ms: u64,
    /// One sentence for humans.
    pub detail: String,
}

/// `min_restarts` automatic restarts within `window`, every one of them
/// followed by `running`. `starts` are one service's, in time order.
pub fn flapping(service: &str, starts: &[StartRecord], s: &Flapping) -> Option<Finding> {
    let window = ms_of(s.window);
    let need = s.min_restarts.max(1) as usize;
    let restarts = starts.iter().filter(|r| r.automatic && r.is_restart());
    // Runs of restarts that all came back; a failed (or unsettled) one breaks a run.
    let mut best: Option<(usize, u64)> = None;
    let mut run: Vec<u64> = vec![];
    let mut consider = |run: &[u64]| {
        let mut lo = 0;
        for hi in 0..run.len() {
            while run[hi] - run[lo] > window {
                lo += 1;
            }
            let n = hi - lo + 1;
            if n >= need && best.is_none_or(|(b, _)| n > b) {
                best = Some((n, run[hi]));
            }
        }
    };
    for r in restarts {
        if r.succeeded == Some(true) {
            run.push(r.at_ms);
        } else {
            consider(&run);
            run.clear();
        }
    }
    consider(&run);
    let (n, at_ms) = best?;
    Some(Finding {
        kind: PatternKind::Flapping,
        key: format!("flapping:{service}"),
        services: vec![service.to_string()],
        at_ms,
        detail: format!(
            "{service} is flapping: {n} automatic restarts within {}, each came back running",
            short_duration(window)
        ),
    })
}

/// p95 of `recent` above the p95 of `baseline` by more than the thresholds.
pub fn latency_trend(
    service: &str,
    recent: &HealthStats,
    baseline: &HealthStats,
    at_ms: u64,
    s: &LatencyTrend,
) -> Option<Finding> {
    if recent.hist.total() < s.min_checks || baseline.hist.total() < s.min_checks {
        return None;
    }
    let (now, before) = (recent.percentile(0.95)?, baseline.percentile(0.95)?);
    let increase = now - before;
    if now <= before * (1.0 + s.increase_percent / 100.0) || increase < s.min_increase_ms {
        return None;
    }
    Some(Finding {
        kind: PatternKind::LatencyTrend,
        key: format!("latency_trend:{service}"),
        services: vec![service.to_string()],
        at_ms,
        detail: format!(
            "{service} health latency rising: p95 {now:.1}ms over the last {} vs {before:.1}ms \
             over the {} before (+{:.0}%)",
            short_duration(ms_of(s.recent)),
            short_duration(ms_of(s.baseline)),
            if before > 0.0 {
                100.0 * increase / before
            } else {
                100.0
            }
        ),
    })
}

/// Incidents of one service opened in the same UTC hour of the day on at least
/// `min_days` different days, which are at least `min_share_percent` % of the
/// days the service had an incident at all.
pub fn time_of_day(service: &str, incidents: &[Incident], s: &TimeOfDay) -> Vec<Finding> {
    let mut hours: BTreeMap<u32, (BTreeSet<u64>, u64)> = BTreeMap::new();
    let mut all_days: BTreeSet<u64> = BTreeSet::new();
    for i in incidents.iter().filter(|i| i.service == service) {
        let (days, last) = hours.entry(hour_of_day(i.opened_ms)).or_default();
        days.insert(i.opened_ms / super::time::DAY_MS);
        all_days.insert(i.opened_ms / super::time::DAY_MS);
        *last = (*last).max(i.opened_ms);
    }
    let share = |n: usize| 100.0 * n as f64 / all_days.len().max(1) as f64;
    hours
        .into_iter()
        .filter(|(_, (days, _))| {
            days.len() >= s.min_days as usize && share(days.len()) >= s.min_share_percent
        })
        .map(|(hour, (days, last))| Finding {
            kind: PatternKind::TimeOfDay,
            key: format!("time_of_day:{service}@{hour:02}"),
            services: vec![service.to_string()],
            at_ms: last,
            detail: format!(
                "{service} fails around {hour:02}:00 UTC: incidents between {hour:02}:00 and \
                 {hour:02}:59 on {} different days ({} to {})",
                days.len(),
                format_day(days.first().copied().unwrap_or(0) * super::time::DAY_MS),
                format_day(days.last().copied().unwrap_or(0) * super::time::DAY_MS),
            ),
        })
        .collect()
}

/// Pairs of services whose incidents opened within `window` of each other at
/// least `min_occurrences` times (each incident paired at most once).
pub fn correlated(incidents: &[Incident], s: &Correlated) -> Vec<Finding> {
    let window = ms_of(s.window);
    let mut by_service: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for i in incidents {
        by_service.entry(&i.service).or_default().push(i.opened_ms);
    }
    for times in by_service.values_mut() {
        times.sort_unstable();
    }
    // Candidate pairs: services with at least one opening within the window.
    let mut all: Vec<(u64, &str)> = incidents
        .iter()
        .map(|i| (i.opened_ms, i.service.as_str()))
        .collect();
    all.sort_unstable();
    let mut pairs: BTreeSet<(&str, &str)> = BTreeSet::new();
    for (k, &(t, a)) in all.iter().enumerate() {
        for &(_, b) in all[k + 1..].iter().take_while(|(u, _)| u - t <= window) {
            if a != b {
                pairs.insert(if a < b { (a, b) } else { (b, a) });
            }
        }
    }
    let mut found = vec![];
    for (a, b) in pairs {
        let (ta, tb) = (&by_service[a], &by_service[b]);
        let (mut i, mut j, mut n, mut last) = (0, 0, 0u32, 0u64);
        while i < ta.len() && j < tb.len() {
            if ta[i].abs_diff(tb[j]) <= window {
                n += 1;
                last = ta[i].max(tb[j]);
                i += 1;
                j += 1;
            } else if ta[i] < tb[j] {
                i += 1;
            } else {
                j += 1;
            }
        }
        if n >= s.min_occurrences {
            found.push(Finding {
                kind: PatternKind::Correlated,
                key: format!("correlated:{a}+{b}"),
                services: vec![a.to_string(), b.to_string()],
                at_ms: last,
                detail: format!(
                    "{a} and {b} fail together: {n} times within {} of each other",
                    short_duration(window)
                ),
            });
        }
    }
    found
}

/// Every pattern in the history up to `to`: flapping and correlated failures
/// within `[from, to)`, recurring hours within the `time_of_day.lookback`
/// before `to`, and the latency trend of the windows ending at `to`.
pub fn detect(
    store: &Store,
    settings: &HistorySettings,
    from: u64,
    to: u64,
) -> Result<Vec<Finding>, StoreError> {
    let mut found = vec![];
    let services = store.services()?;
    let mut starts: BTreeMap<String, Vec<StartRecord>> = BTreeMap::new();
    for s in store.starts(None, from, to)? {
        starts.entry(s.service.clone()).or_default().push(s);
    }
    for (service, mine) in &starts {
        found.extend(flapping(service, mine, &settings.flapping));
    }
    let lt = &settings.latency_trend;
    let recent_from = to.saturating_sub(ms_of(lt.recent));
    let baseline_from = recent_from.saturating_sub(ms_of(lt.baseline));
    for svc in &services {
        let recent = store.health(&svc.name, recent_from, to)?;
        if recent.hist.total() < lt.min_checks {
            continue;
        }
        let baseline = store.health(&svc.name, baseline_from, recent_from)?;
        found.extend(latency_trend(&svc.name, &recent, &baseline, to, lt));
    }
    let tod_from = to.saturating_sub(ms_of(settings.time_of_day.lookback));
    let mut lookback: BTreeMap<String, Vec<Incident>> = BTreeMap::new();
    for i in opened_within(store.incidents(None, tod_from, to)?, tod_from, to) {
        lookback.entry(i.service.clone()).or_default().push(i);
    }
    for (service, incidents) in &lookback {
        found.extend(time_of_day(service, incidents, &settings.time_of_day));
    }
    let period = opened_within(store.incidents(None, from, to)?, from, to);
    found.extend(correlated(&period, &settings.correlated));
    Ok(found)
}

fn opened_within(incidents: Vec<Incident>, from: u64, to: u64) -> Vec<Incident> {
    incidents
        .into_iter()
        .filter(|i| i.opened_ms >= from && i.opened_ms < to)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::latency::Histogram;
    use crate::history::time::{DAY_MS, HOUR_MS, MINUTE_MS};

    fn restart(at_ms: u64, succeeded: Option<bool>) -> StartRecord {
        StartRecord {
            service: "a".into(),
            at_ms,
            action: "restart".into(),
            automatic: true,
            succeeded,
        }
    }

    fn incident(service: &str, opened_ms: u64) -> Incident {
        Incident {
            service: service.into(),
            opened_ms,
            closed_ms: Some(opened_ms + 1000),
            error_kind: Some("exited".into()),
            restarts: 1,
            escalated: false,
            resolved_by: None,
        }
    }

    fn stats(latency: f64, n: u64) -> HealthStats {
        let mut hist = Histogram::default();
        for _ in 0..n {
            hist.add(latency);
        }
        HealthStats {
            checks: n,
            failures: 0,
            min_ms: Some(latency),
            max_ms: Some(latency),
            hist,
        }
    }

    #[test]
    fn flapping_needs_enough_successful_restarts_in_the_window() {
        let s = HistorySettings::default().flapping; // 3 within 15m
        let m = MINUTE_MS;
        let ok = |t| restart(t, Some(true));
        let three = [ok(0), ok(5 * m), ok(10 * m)];
        let f = flapping("a", &three, &s).expect("flapping");
        assert_eq!(f.key, "flapping:a");
        assert_eq!(f.at_ms, 10 * m);
        assert!(
            f.detail.contains("3 automatic restarts within 15m"),
            "{}",
            f.detail
        );
        // Too spread out.
        assert_eq!(flapping("a", &[ok(0), ok(10 * m), ok(20 * m)], &s), None);
        // A restart that failed breaks the run: not flapping, just failing.
        let broken = [ok(0), restart(5 * m, Some(false)), ok(6 * m), ok(7 * m)];
        assert_eq!(flapping("a", &broken, &s), None);
        // Manual restarts and first starts do not count.
        let mut manual = three.clone();
        manual[1].automatic = false;
        assert_eq!(flapping("a", &manual, &s), None);
    }

    #[test]
    fn latency_trend_needs_a_real_rise() {
        let s = HistorySettings::default().latency_trend; // +50 %, +5 ms, 30 checks
        let f = latency_trend("a", &stats(30.0, 60), &stats(10.0, 1440), 7, &s).expect("trend");
        assert_eq!((f.key.as_str(), f.at_ms), ("latency_trend:a", 7));
        assert!(f.detail.contains("p95 30.0ms"), "{}", f.detail);
        assert_eq!(
            latency_trend("a", &stats(12.0, 60), &stats(10.0, 1440), 7, &s),
            None
        );
        // +100 % but only 2 ms: noise.
        assert_eq!(
            latency_trend("a", &stats(4.0, 60), &stats(2.0, 1440), 7, &s),
            None
        );
        // Too few checks.
        assert_eq!(
            latency_trend("a", &stats(30.0, 10), &stats(10.0, 1440), 7, &s),
            None
        );
    }

    #[test]
    fn time_of_day_counts_distinct_days() {
        let s = HistorySettings::default().time_of_day; // 3 days
        let at = |day: u64, h: u64, m: u64| day * DAY_MS + h * HOUR_MS + m * MINUTE_MS;
        let incidents = [
            incident("a", at(0, 3, 10)),
            incident("a", at(0, 3, 40)),
            incident("a", at(1, 3, 5)),
            incident("a", at(2, 14, 0)),
            incident("a", at(3, 3, 59)),
        ];
        let f = time_of_day("a", &incidents, &s);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].key, "time_of_day:a@03");
        assert!(
            f[0].detail.contains("on 3 different days"),
            "{}",
            f[0].detail
        );
        assert!(time_of_day("a", &incidents[..3], &s).is_empty());
        // Failing every day at random hours: 3 days out of 7 at 03:xx is chance.
        let mut noisy = incidents.to_vec();
        for day in 4..7 {
            noisy.push(incident("a", at(day, (3 + 5 * day) % 24, 0)));
            noisy.push(incident("a", at(day, (5 + 5 * day) % 24, 0)));
        }
        noisy.push(incident("a", at(2, 9, 0)));
        assert!(time_of_day("a", &noisy, &s).is_empty(), "3 of 7 days");
    }

    #[test]
    fn correlated_pairs_are_matched_once_each() {
        let s = HistorySettings::default().correlated; // 10 s, 3 times
        let h = HOUR_MS;
        let mut incidents = vec![];
        for k in 0..3 {
            incidents.push(incident("db", k * h));
            incidents.push(incident("api", k * h + 2_000));
        }
        incidents.push(incident("other", 5 * h));
        let f = correlated(&incidents, &s);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].key, "correlated:api+db");
        assert_eq!(f[0].services, ["api", "db"]);
        assert!(
            f[0].detail.contains("3 times within 10s"),
            "{}",
            f[0].detail
        );
        // Two api incidents near one db incident count once.
        let few = [
            incident("db", 0),
            incident("api", 1000),
            incident("api", 2000),
            incident("db", h),
            incident("api", h + 1000),
        ];
        assert!(correlated(&few, &s).is_empty());
    }
}

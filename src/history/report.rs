//! The report of a period: per service availability, incidents, restarts,
//! MTTR, MTBF, health latency and top error kinds, each compared with the
//! previous period of the same length; and the patterns of the period.
//!
//! Definitions (README "History, reports and patterns"):
//! - *observed*: the period from when the service was first seen;
//! - *downtime*: the part of the observed period inside incidents (an open
//!   incident counts up to the end of the period);
//! - *availability* = 1 − downtime / observed;
//! - *MTTR*: mean duration of the incidents opened in the period that ended
//!   with the service back to `running` (resolved `auto` or `human`);
//! - *MTBF* = (observed − downtime) / incidents opened in the period;
//! - *restarts*: process starts in the period whose action is `restart` or
//!   `recover` (as `restart_count`);
//! - latency: percentiles of the passing checks' latency (see
//!   [`super::latency`]).

use super::incidents::{Incident, StartRecord};
use super::latency::{HealthStats, LatencySummary};
use super::patterns::{self, Finding};
use super::store::{Store, StoreError};
use super::time::{rfc3339, short_duration, DAY_MS};
use crate::config::HistorySettings;
use serde::{Serialize, Serializer};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// A time window `[start, end)`, Unix ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start_ms: u64,
    pub end_ms: u64,
}

impl Window {
    pub fn len_ms(&self) -> u64 {
        self.end_ms.saturating_sub(self.start_ms)
    }
}

impl Serialize for Window {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Window", 4)?;
        st.serialize_field("start", &rfc3339(self.start_ms))?;
        st.serialize_field("end", &rfc3339(self.end_ms))?;
        st.serialize_field("start_ms", &self.start_ms)?;
        st.serialize_field("end_ms", &self.end_ms)?;
        st.end()
    }
}

/// What to report on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub current: Window,
    pub previous: Window,
    /// One service, or all.
    pub service: Option<String>,
}

impl Query {
    /// The `length_ms` up to `now_ms`, against the `length_ms` before.
    pub fn since(now_ms: u64, length_ms: u64, service: Option<String>) -> Query {
        let start = now_ms.saturating_sub(length_ms);
        Query {
            current: Window {
                start_ms: start,
                end_ms: now_ms,
            },
            previous: Window {
                start_ms: start.saturating_sub(length_ms),
                end_ms: start,
            },
            service,
        }
    }

    /// The UTC day starting at `day_ms` (up to `now_ms` if it is today), against
    /// the whole day before.
    pub fn day(day_ms: u64, now_ms: u64, service: Option<String>) -> Query {
        Query {
            current: Window {
                start_ms: day_ms,
                end_ms: (day_ms + DAY_MS).min(now_ms.max(day_ms)),
            },
            previous: Window {
                start_ms: day_ms.saturating_sub(DAY_MS),
                end_ms: day_ms,
            },
            service,
        }
    }
}

/// One error kind and how many incidents it opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorCount {
    pub kind: String,
    pub count: u32,
}

/// One service's figures over one period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeriodStats {
    pub window: Window,
    /// The part of the window after the service was first seen.
    pub observed_ms: u64,
    pub downtime_ms: u64,
    /// `None` when the service was not observed at all.
    pub availability_pct: Option<f64>,
    pub incidents: u32,
    pub escalations: u32,
    pub restarts: u32,
    pub automatic_restarts: u32,
    pub mttr_ms: Option<u64>,
    pub mtbf_ms: Option<u64>,
    pub checks: u64,
    pub failed_checks: u64,
    #[serde(flatten)]
    pub latency: LatencySummary,
    /// The three most frequent first error kinds of the incidents.
    pub top_errors: Vec<ErrorCount>,
}

/// Better or worse than the previous period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    Better,
    Same,
    Worse,
}

impl Trend {
    pub fn arrow(t: Option<Trend>) -> &'static str {
        match t {
            Some(Trend::Better) => "↑",
            Some(Trend::Worse) => "↓",
            Some(Trend::Same) => "=",
            None => " ",
        }
    }
}

/// The comparison of each figure (`None`: nothing to compare).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Trends {
    pub availability: Option<Trend>,
    pub incidents: Option<Trend>,
    pub restarts: Option<Trend>,
    pub mttr: Option<Trend>,
    pub mtbf: Option<Trend>,
    pub p50: Option<Trend>,
    pub p95: Option<Trend>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceReport {
    pub service: String,
    pub current: PeriodStats,
    pub previous: PeriodStats,
    pub trend: Trends,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub current: Window,
    pub previous: Window,
    pub services: Vec<ServiceReport>,
    pub patterns: Vec<Finding>,
}

/// The figures of one service over `window`. `incidents` and `starts` may
/// reach outside the window (they are clipped here).
pub fn period_stats(
    window: Window,
    first_seen_ms: u64,
    incidents: &[&Incident],
    starts: &[&StartRecord],
    health: &HealthStats,
) -> PeriodStats {
    let observed_from = window.start_ms.max(first_seen_ms).min(window.end_ms);
    let observed_ms = window.end_ms - observed_from;
    let downtime_ms: u64 = incidents
        .iter()
        .map(|i| {
            let from = i.opened_ms.max(observed_from);
            let to = i.closed_ms.unwrap_or(window.end_ms).min(window.end_ms);
            to.saturating_sub(from)
        })
        .sum();
    let opened: Vec<&&Incident> = incidents
        .iter()
        .filter(|i| i.opened_ms >= window.start_ms && i.opened_ms < window.end_ms)
        .collect();
    let repaired: Vec<u64> = opened
        .iter()
        .filter(|i| i.resolved_by.is_some_and(|r| r.repaired()))
        .filter_map(|i| Some(i.closed_ms?.saturating_sub(i.opened_ms)))
        .collect();
    let restarts: Vec<&&StartRecord> = starts
        .iter()
        .filter(|s| s.is_restart() && s.at_ms >= window.start_ms && s.at_ms < window.end_ms)
        .collect();
    let mut errors: BTreeMap<String, u32> = BTreeMap::new();
    for i in &opened {
        *errors
            .entry(i.error_kind.clone().unwrap_or_else(|| "unknown".into()))
            .or_default() += 1;
    }
    let mut top_errors: Vec<ErrorCount> = errors
        .into_iter()
        .map(|(kind, count)| ErrorCount { kind, count })
        .collect();
    top_errors.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.kind.cmp(&b.kind)));
    top_errors.truncate(3);
    let up_ms = observed_ms.saturating_sub(downtime_ms);
    let n = opened.len() as u64;
    PeriodStats {
        window,
        observed_ms,
        downtime_ms,
        availability_pct: (observed_ms > 0).then(|| 100.0 * up_ms as f64 / observed_ms as f64),
        incidents: n as u32,
        escalations: opened.iter().filter(|i| i.escalated).count() as u32,
        restarts: restarts.len() as u32,
        automatic_restarts: restarts.iter().filter(|s| s.automatic).count() as u32,
        mttr_ms: (!repaired.is_empty())
            .then(|| repaired.iter().sum::<u64>() / repaired.len() as u64),
        mtbf_ms: (n > 0).then(|| up_ms / n),
        checks: health.checks,
        failed_checks: health.failures,
        latency: health.summary(),
        top_errors,
    }
}

fn compare(current: Option<f64>, previous: Option<f64>, higher_is_better: bool) -> Option<Trend> {
    let (c, p) = (current?, previous?);
    if (c - p).abs() <= 1e-9 * p.abs().max(1.0) {
        return Some(Trend::Same);
    }
    Some(if (c > p) == higher_is_better {
        Trend::Better
    } else {
        Trend::Worse
    })
}

/// How `current` compares with `previous` (an unobserved previous period
/// compares with nothing).
pub fn trends(current: &PeriodStats, previous: &PeriodStats) -> Trends {
    let seen = previous.observed_ms > 0 && current.observed_ms > 0;
    let count = |c: u32, p: u32| {
        seen.then(|| compare(Some(f64::from(c)), Some(f64::from(p)), false))
            .flatten()
    };
    let ms = |v: Option<u64>| v.map(|v| v as f64);
    Trends {
        availability: compare(current.availability_pct, previous.availability_pct, true),
        incidents: count(current.incidents, previous.incidents),
        restarts: count(current.restarts, previous.restarts),
        mttr: compare(ms(current.mttr_ms), ms(previous.mttr_ms), false),
        mtbf: compare(ms(current.mtbf_ms), ms(previous.mtbf_ms), true),
        p50: compare(current.latency.p50_ms, previous.latency.p50_ms, false),
        p95: compare(current.latency.p95_ms, previous.latency.p95_ms, false),
    }
}

/// Build the report of `query` from the store.
pub fn generate(
    store: &Store,
    query: &Query,
    settings: &HistorySettings,
) -> Result<Report, StoreError> {
    let (cur, prev) = (query.current, query.previous);
    let only = query.service.as_deref();
    let services: Vec<_> = store
        .services()?
        .into_iter()
        .filter(|s| s.first_seen_ms < cur.end_ms && only.is_none_or(|o| o == s.name))
        .collect();
    let incidents = store.incidents(only, prev.start_ms, cur.end_ms)?;
    let starts = store.starts(only, prev.start_ms, cur.end_ms)?;
    let mut inc_of: HashMap<&str, Vec<&Incident>> = HashMap::new();
    for i in &incidents {
        inc_of.entry(&i.service).or_default().push(i);
    }
    let mut starts_of: HashMap<&str, Vec<&StartRecord>> = HashMap::new();
    for s in &starts {
        starts_of.entry(&s.service).or_default().push(s);
    }
    let mut out = vec![];
    for svc in &services {
        let inc = inc_of.remove(svc.name.as_str()).unwrap_or_default();
        let st = starts_of.remove(svc.name.as_str()).unwrap_or_default();
        let stats = |w: Window| -> Result<PeriodStats, StoreError> {
            let health = store.health(&svc.name, w.start_ms, w.end_ms)?;
            Ok(period_stats(w, svc.first_seen_ms, &inc, &st, &health))
        };
        let (current, previous) = (stats(cur)?, stats(prev)?);
        out.push(ServiceReport {
            service: svc.name.clone(),
            trend: trends(&current, &previous),
            current,
            previous,
        });
    }
    let patterns = patterns::detect(store, settings, cur.start_ms, cur.end_ms)?
        .into_iter()
        .filter(|f| only.is_none_or(|o| f.services.iter().any(|s| s == o)))
        .collect();
    Ok(Report {
        current: cur,
        previous: prev,
        services: out,
        patterns,
    })
}

// ---- rendering ----------------------------------------------------------------------

/// Cell texts shared by the terminal and the Markdown renderings.
pub(crate) mod cell {
    use super::*;

    pub fn pct(v: Option<f64>) -> String {
        v.map_or("–".into(), |v| format!("{v:.3}%"))
    }
    pub fn dur(v: Option<u64>) -> String {
        v.map_or("–".into(), short_duration)
    }
    pub fn ms(v: Option<f64>) -> String {
        v.map_or("–".into(), |v| format!("{v:.1}ms"))
    }
    pub fn errors(e: &[ErrorCount]) -> String {
        if e.is_empty() {
            return "–".into();
        }
        e.iter()
            .map(|e| format!("{} ×{}", e.kind, e.count))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The report for a terminal (SPEC §6 style).
pub fn render_text(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "📈 ==================== History Report ===================="
    );
    let _ = writeln!(
        o,
        "Period: {} → {} ({})",
        rfc3339(r.current.start_ms),
        rfc3339(r.current.end_ms),
        short_duration(r.current.len_ms())
    );
    let _ = writeln!(
        o,
        "Compared with: {} → {}   (↑ better, ↓ worse, = same)",
        rfc3339(r.previous.start_ms),
        rfc3339(r.previous.end_ms)
    );
    if r.services.is_empty() {
        let _ = writeln!(o, "\nNo service has history in this period.");
    }
    for s in &r.services {
        let (c, p, t) = (&s.current, &s.previous, &s.trend);
        let _ = writeln!(o, "\n📋 {}", s.service);
        let mut line = |name: &str, now: String, trend: Option<Trend>, was: String| {
            let _ = writeln!(
                o,
                "  {name:<14}{now:<12}{} (was {was})",
                Trend::arrow(trend)
            );
        };
        line(
            "Availability",
            cell::pct(c.availability_pct),
            t.availability,
            cell::pct(p.availability_pct),
        );
        line(
            "Incidents",
            c.incidents.to_string(),
            t.incidents,
            p.incidents.to_string(),
        );
        line(
            "Restarts",
            c.restarts.to_string(),
            t.restarts,
            p.restarts.to_string(),
        );
        line("MTTR", cell::dur(c.mttr_ms), t.mttr, cell::dur(p.mttr_ms));
        line("MTBF", cell::dur(c.mtbf_ms), t.mtbf, cell::dur(p.mtbf_ms));
        line(
            "Latency p50",
            cell::ms(c.latency.p50_ms),
            t.p50,
            cell::ms(p.latency.p50_ms),
        );
        line(
            "Latency p95",
            cell::ms(c.latency.p95_ms),
            t.p95,
            cell::ms(p.latency.p95_ms),
        );
        let _ = writeln!(
            o,
            "  {:<14}{} ({} failed), {} escalated incident(s), downtime {}",
            "Checks",
            c.checks,
            c.failed_checks,
            c.escalations,
            short_duration(c.downtime_ms)
        );
        let _ = writeln!(o, "  {:<14}{}", "Top errors", cell::errors(&c.top_errors));
    }
    let _ = writeln!(o, "\n🔎 Patterns");
    if r.patterns.is_empty() {
        let _ = writeln!(o, "  none detected");
    }
    for f in &r.patterns {
        let _ = writeln!(o, "  ⚠️  {}: {}", f.kind.as_str(), f.detail);
    }
    let _ = writeln!(
        o,
        "=========================================================="
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::incidents::Resolution;

    fn incident(opened_ms: u64, closed_ms: Option<u64>, how: Option<Resolution>) -> Incident {
        Incident {
            service: "a".into(),
            opened_ms,
            closed_ms,
            error_kind: Some("exited".into()),
            restarts: 1,
            escalated: false,
            resolved_by: how,
        }
    }

    #[test]
    fn downtime_is_clipped_to_the_observed_window() {
        let w = Window {
            start_ms: 1000,
            end_ms: 11_000,
        };
        let before = incident(500, Some(1500), Some(Resolution::Auto)); // 500 inside
        let inside = incident(5000, Some(6000), Some(Resolution::Human)); // 1000
        let open = incident(10_000, None, None); // 1000, to the end
        let s = period_stats(
            w,
            0,
            &[&before, &inside, &open],
            &[],
            &HealthStats::default(),
        );
        assert_eq!(s.downtime_ms, 2500);
        assert_eq!(s.availability_pct, Some(75.0));
        assert_eq!(
            s.incidents, 2,
            "the one opened before the window is not counted"
        );
        assert_eq!(
            s.mttr_ms,
            Some(1000),
            "only repaired incidents opened in the window"
        );
        assert_eq!(s.mtbf_ms, Some(3750));
        // First seen half-way: only the observed part counts.
        let s = period_stats(w, 6000, &[&open], &[], &HealthStats::default());
        assert_eq!((s.observed_ms, s.downtime_ms), (5000, 1000));
        assert_eq!(s.availability_pct, Some(80.0));
        let unseen = period_stats(w, 20_000, &[], &[], &HealthStats::default());
        assert_eq!(unseen.availability_pct, None);
    }

    #[test]
    fn trends_say_better_or_worse() {
        assert_eq!(compare(Some(99.0), Some(98.0), true), Some(Trend::Better));
        assert_eq!(compare(Some(3.0), Some(1.0), false), Some(Trend::Worse));
        assert_eq!(compare(Some(3.0), Some(3.0), false), Some(Trend::Same));
        assert_eq!(compare(None, Some(3.0), false), None);
    }

    #[test]
    fn day_query_stops_at_now() {
        let q = Query::day(10 * DAY_MS, 10 * DAY_MS + 5, None);
        assert_eq!(q.current.len_ms(), 5);
        assert_eq!(q.previous.len_ms(), DAY_MS);
        let q = Query::since(10 * DAY_MS, DAY_MS, Some("a".into()));
        assert_eq!(q.previous.end_ms, q.current.start_ms);
        assert_eq!(q.previous.start_ms, 8 * DAY_MS);
    }
}

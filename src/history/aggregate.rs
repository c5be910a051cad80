//! Health checks downsampled to one row per service and minute: how many checks,
//! how many failed, and the p50/p95/max latency of the passing ones (plus their
//! histogram, see [`super::latency`]). The samples of the current minute are
//! kept in memory; a minute is closed when a later sample arrives, when the
//! clock (given by the caller) has left it, or at shutdown.

use super::latency::{exact_percentile, Histogram};
use super::time::{floor_to, MINUTE_MS};
use std::collections::HashMap;

/// One service's checks in one minute.
#[derive(Debug, Clone, PartialEq)]
pub struct MinuteRow {
    pub service: String,
    /// Start of the minute, Unix ms.
    pub minute_ms: u64,
    pub checks: u64,
    pub failures: u64,
    /// Exact nearest-rank percentiles of the passing checks' latency.
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub min_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub hist: Histogram,
}

/// The samples of one open minute.
#[derive(Debug, Default)]
struct Open {
    minute_ms: u64,
    checks: u64,
    failures: u64,
    /// Latencies of the passing checks.
    latencies: Vec<f64>,
}

impl Open {
    fn close(mut self, service: &str) -> MinuteRow {
        self.latencies.sort_by(f64::total_cmp);
        let mut hist = Histogram::default();
        for &l in &self.latencies {
            hist.add(l);
        }
        MinuteRow {
            service: service.to_string(),
            minute_ms: self.minute_ms,
            checks: self.checks,
            failures: self.failures,
            p50_ms: exact_percentile(&self.latencies, 0.50),
            p95_ms: exact_percentile(&self.latencies, 0.95),
            min_ms: self.latencies.first().copied(),
            max_ms: self.latencies.last().copied(),
            hist,
        }
    }

    fn add(&mut self, ok: bool, latency_ms: f64) {
        self.checks += 1;
        if ok {
            self.latencies.push(latency_ms);
        } else {
            self.failures += 1;
        }
    }
}

/// The open minute of every service.
#[derive(Debug, Default)]
pub struct MinuteAggregator {
    open: HashMap<String, Open>,
}

impl MinuteAggregator {
    /// Count one check; returns the minute it closed, if any. A sample older
    /// than the open minute (out of order) becomes a row of its own, merged with
    /// its minute by the store.
    pub fn add(
        &mut self,
        service: &str,
        at_ms: u64,
        ok: bool,
        latency_ms: f64,
    ) -> Option<MinuteRow> {
        let minute_ms = floor_to(at_ms, MINUTE_MS);
        let Some(open) = self.open.get_mut(service) else {
            let mut open = Open {
                minute_ms,
                ..Open::default()
            };
            open.add(ok, latency_ms);
            self.open.insert(service.to_string(), open);
            return None;
        };
        if minute_ms == open.minute_ms {
            open.add(ok, latency_ms);
            None
        } else if minute_ms > open.minute_ms {
            let mut next = Open {
                minute_ms,
                ..Open::default()
            };
            next.add(ok, latency_ms);
            Some(std::mem::replace(open, next).close(service))
        } else {
            let mut late = Open {
                minute_ms,
                ..Open::default()
            };
            late.add(ok, latency_ms);
            Some(late.close(service))
        }
    }

    /// Close every minute that ended before `now_ms`'s minute.
    pub fn tick(&mut self, now_ms: u64) -> Vec<MinuteRow> {
        let current = floor_to(now_ms, MINUTE_MS);
        let done: Vec<String> = self
            .open
            .iter()
            .filter(|(_, o)| o.minute_ms < current)
            .map(|(s, _)| s.clone())
            .collect();
        let mut rows: Vec<MinuteRow> = done
            .into_iter()
            .filter_map(|s| self.open.remove(&s).map(|o| o.close(&s)))
            .collect();
        rows.sort_by(|a, b| a.service.cmp(&b.service));
        rows
    }

    /// Close every open minute (at shutdown).
    pub fn drain(&mut self) -> Vec<MinuteRow> {
        let mut rows: Vec<MinuteRow> = self.open.drain().map(|(s, o)| o.close(&s)).collect();
        rows.sort_by(|a, b| a.service.cmp(&b.service));
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_service_and_minute() {
        let mut agg = MinuteAggregator::default();
        let t0 = 10 * MINUTE_MS;
        for i in 0..20u64 {
            assert_eq!(agg.add("a", t0 + i * 1000, true, (i + 1) as f64), None);
        }
        assert_eq!(agg.add("a", t0 + 30_000, false, 5000.0), None);
        assert_eq!(agg.add("b", t0 + 1, true, 1.0), None);
        let row = agg
            .add("a", t0 + MINUTE_MS, true, 2.0)
            .expect("minute closed");
        assert_eq!(row.minute_ms, t0);
        assert_eq!((row.checks, row.failures), (21, 1));
        assert_eq!(row.p50_ms, Some(10.0));
        assert_eq!(row.p95_ms, Some(19.0));
        assert_eq!(row.max_ms, Some(20.0));
        assert_eq!(row.hist.total(), 20);
        // The clock closes b's minute (and not a's, still current).
        let rows = agg.tick(t0 + MINUTE_MS + 5);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].service, "b");
        let rest = agg.drain();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].minute_ms, t0 + MINUTE_MS);
    }

    #[test]
    fn failed_minute_has_no_latency() {
        let mut agg = MinuteAggregator::default();
        agg.add("a", 0, false, 5.0);
        let row = agg.drain().remove(0);
        assert_eq!((row.checks, row.failures), (1, 1));
        assert_eq!((row.p50_ms, row.p95_ms, row.max_ms), (None, None, None));
    }

    #[test]
    fn late_sample_becomes_its_own_row() {
        let mut agg = MinuteAggregator::default();
        agg.add("a", 2 * MINUTE_MS, true, 1.0);
        let late = agg.add("a", MINUTE_MS + 5, true, 3.0).expect("late row");
        assert_eq!((late.minute_ms, late.checks), (MINUTE_MS, 1));
    }
}

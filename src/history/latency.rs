//! Health-check latency: exact percentiles of one minute's samples, and a
//! mergeable log-scale histogram for any longer period.
//!
//! A minute row keeps its exact p50/p95/max (nearest rank over the minute's
//! passing checks) *and* a histogram of them. Percentiles of longer periods come
//! from the merged histograms of the minutes (and of the hourly roll-ups), so a
//! 30-day report reads 720 rows per service instead of 43 200, and any period's
//! percentile is the same whichever rows it was merged from. The histogram has 8
//! buckets per doubling from 10 µs (each about 9 % wide): a percentile read from
//! it is the geometric middle of its bucket, within 4.5 % of the true value, and
//! never above the period's exact maximum.

use serde::Serialize;

/// Smallest latency told apart, in milliseconds (bucket 0 is everything below).
const MIN_MS: f64 = 0.01;
/// Buckets per doubling of latency.
const PER_OCTAVE: f64 = 8.0;
/// Bucket indexes are one byte.
const BUCKETS: usize = 256;

/// The bucket holding `latency_ms`.
pub fn bucket_of(latency_ms: f64) -> usize {
    if latency_ms.is_nan() || latency_ms <= MIN_MS {
        return 0;
    }
    let b = (PER_OCTAVE * (latency_ms / MIN_MS).log2()).floor() + 1.0;
    (b as usize).min(BUCKETS - 1)
}

/// The value a percentile falling in `bucket` reads as: the geometric middle of
/// the bucket `[MIN·2^((b−1)/8), MIN·2^(b/8))`.
pub fn bucket_value(bucket: usize) -> f64 {
    if bucket == 0 {
        return MIN_MS;
    }
    MIN_MS * 2f64.powf((bucket as f64 - 0.5) / PER_OCTAVE)
}

/// The nearest-rank percentile `p` (0 < p ≤ 1) of `sorted` (ascending).
pub fn exact_percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    Some(sorted[rank(sorted.len() as u64, p) as usize - 1])
}

/// Nearest rank (1-based) of percentile `p` among `n` values.
fn rank(n: u64, p: f64) -> u64 {
    ((p * n as f64).ceil() as u64).clamp(1, n)
}

/// Counts of passing checks per latency bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Dense, grown to the highest bucket used.
    counts: Vec<u64>,
}

impl Histogram {
    pub fn add(&mut self, latency_ms: f64) {
        self.add_n(bucket_of(latency_ms), 1);
    }

    fn add_n(&mut self, bucket: usize, n: u64) {
        if self.counts.len() <= bucket {
            self.counts.resize(bucket + 1, 0);
        }
        self.counts[bucket] += n;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (b, &n) in other.counts.iter().enumerate() {
            if n > 0 {
                self.add_n(b, n);
            }
        }
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The nearest-rank percentile `p` (0 < p ≤ 1), as its bucket's value.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let want = rank(total, p);
        let mut seen = 0;
        for (b, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= want {
                return Some(bucket_value(b));
            }
        }
        None
    }

    /// Compact form for the database: `(bucket byte, LEB128 count)` pairs.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8);
        for (b, &n) in self.counts.iter().enumerate() {
            if n == 0 {
                continue;
            }
            out.push(b as u8);
            let mut n = n;
            loop {
                let byte = (n & 0x7f) as u8;
                n >>= 7;
                if n == 0 {
                    out.push(byte);
                    break;
                }
                out.push(byte | 0x80);
            }
        }
        out
    }

    /// Add the counts of an encoded histogram; `false` if `bytes` is malformed
    /// (what was read before the fault is kept).
    pub fn merge_encoded(&mut self, bytes: &[u8]) -> bool {
        let mut i = 0;
        while i < bytes.len() {
            let bucket = bytes[i] as usize;
            i += 1;
            let mut n: u64 = 0;
            let mut shift = 0;
            loop {
                let Some(&byte) = bytes.get(i) else {
                    return false;
                };
                i += 1;
                if shift > 63 {
                    return false;
                }
                n |= u64::from(byte & 0x7f) << shift;
                shift += 7;
                if byte & 0x80 == 0 {
                    break;
                }
            }
            self.add_n(bucket, n);
        }
        true
    }

    pub fn decode(bytes: &[u8]) -> Histogram {
        let mut h = Histogram::default();
        h.merge_encoded(bytes);
        h
    }
}

/// Health checks of one service over a period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthStats {
    /// Every check, passing or not.
    pub checks: u64,
    pub failures: u64,
    /// Fastest passing check.
    pub min_ms: Option<f64>,
    /// Slowest passing check.
    pub max_ms: Option<f64>,
    /// Latencies of the passing checks.
    pub hist: Histogram,
}

/// The latency figures of a period, as reports show them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

impl HealthStats {
    pub fn merge(
        &mut self,
        checks: u64,
        failures: u64,
        (min_ms, max_ms): (Option<f64>, Option<f64>),
        hist: &[u8],
    ) {
        self.checks += checks;
        self.failures += failures;
        self.min_ms = min_opt(self.min_ms, min_ms);
        self.max_ms = max_opt(self.max_ms, max_ms);
        self.hist.merge_encoded(hist);
    }

    /// Percentile `p` of the passing checks, never outside the exact minimum
    /// and maximum (so a steady latency reads exactly).
    pub fn percentile(&self, p: f64) -> Option<f64> {
        let total = self.hist.total();
        if total > 0 {
            // The extreme ranks are known exactly.
            match rank(total, p) {
                r if r == total && self.max_ms.is_some() => return self.max_ms,
                1 if self.min_ms.is_some() => return self.min_ms,
                _ => {}
            }
        }
        let mut v = self.hist.percentile(p)?;
        if let Some(max) = self.max_ms {
            v = v.min(max);
        }
        if let Some(min) = self.min_ms {
            v = v.max(min);
        }
        Some(v)
    }

    pub fn summary(&self) -> LatencySummary {
        LatencySummary {
            p50_ms: self.percentile(0.50),
            p95_ms: self.percentile(0.95),
            max_ms: self.max_ms,
        }
    }
}

/// The smaller of two optional values.
pub fn min_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// The larger of two optional values.
pub fn max_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_within_five_percent() {
        for v in [0.05, 0.9, 1.0, 3.3, 12.0, 40.0, 250.0, 5_000.0, 60_000.0] {
            let read = bucket_value(bucket_of(v));
            assert!((read - v).abs() / v < 0.045, "{v} reads as {read}");
        }
        assert_eq!(bucket_of(0.0), 0);
        assert_eq!(bucket_of(f64::NAN), 0);
        assert_eq!(bucket_of(1e30), BUCKETS - 1);
    }

    #[test]
    fn exact_percentiles_use_nearest_rank() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(exact_percentile(&v, 0.5), Some(10.0));
        assert_eq!(exact_percentile(&v, 0.95), Some(19.0));
        assert_eq!(exact_percentile(&v, 1.0), Some(20.0));
        assert_eq!(exact_percentile(&[7.0], 0.95), Some(7.0));
        assert_eq!(exact_percentile(&[], 0.5), None);
    }

    #[test]
    fn histogram_percentiles_and_encoding() {
        let mut h = Histogram::default();
        for _ in 0..90 {
            h.add(10.0);
        }
        for _ in 0..10 {
            h.add(100.0);
        }
        assert_eq!(h.percentile(0.5), Some(bucket_value(bucket_of(10.0))));
        assert_eq!(h.percentile(0.9), Some(bucket_value(bucket_of(10.0))));
        assert_eq!(h.percentile(0.95), Some(bucket_value(bucket_of(100.0))));
        let bytes = h.encode();
        assert_eq!(Histogram::decode(&bytes), h);
        let mut big = Histogram::default();
        big.add_n(200, 1_000_000_000_000);
        assert_eq!(Histogram::decode(&big.encode()), big);
        assert!(!Histogram::default().merge_encoded(&[3, 0x80]));
    }

    #[test]
    fn stats_read_within_the_exact_extremes() {
        let mut s = HealthStats::default();
        let mut h = Histogram::default();
        h.add(10.0);
        s.merge(2, 1, (Some(10.0), Some(10.0)), &h.encode());
        assert_eq!((s.checks, s.failures), (2, 1));
        assert_eq!(
            s.percentile(0.5),
            Some(10.0),
            "a steady latency reads exactly"
        );
        s.merge(1, 0, (Some(20.0), Some(20.0)), &{
            let mut h = Histogram::default();
            h.add(20.0);
            h.encode()
        });
        assert_eq!(s.percentile(1.0), Some(20.0));
        assert_eq!(s.percentile(0.5), Some(10.0));
    }
}

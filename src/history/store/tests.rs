//! The store on a temporary file: roll-ups, merges, retention, patterns, bad files.

use super::*;
use crate::history::aggregate::MinuteRow;
use crate::history::incidents::{Change, Incident, Resolution};
use crate::history::latency::{HealthStats, Histogram};
use crate::history::time::MINUTE_MS;

fn minute(service: &str, minute_ms: u64, latencies: &[f64], failures: u64) -> Row {
    let mut hist = Histogram::default();
    for &l in latencies {
        hist.add(l);
    }
    Row::Minute(MinuteRow {
        service: service.into(),
        minute_ms,
        checks: latencies.len() as u64 + failures,
        failures,
        p50_ms: latencies.first().copied(),
        p95_ms: latencies.last().copied(),
        min_ms: latencies.first().copied(),
        max_ms: latencies.last().copied(),
        hist,
    })
}

#[test]
fn health_reads_hours_and_ragged_minutes_alike() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("h.db")).unwrap();
    // Three hours of one check a minute, 10 ms, and one failure per hour.
    let rows: Vec<Row> = (0..180)
        .map(|m| minute("a", m * MINUTE_MS, &[10.0], u64::from(m % 60 == 0)))
        .collect();
    store.write(&rows).unwrap();
    for (from, to) in [
        (0, 3 * HOUR_MS),
        (30 * MINUTE_MS, 150 * MINUTE_MS),
        (5 * MINUTE_MS, 6 * MINUTE_MS),
    ] {
        let s = store.health("a", from, to).unwrap();
        let minutes = (to - from) / MINUTE_MS;
        assert_eq!(s.checks, minutes + s.failures, "{from}..{to}");
        assert_eq!(s.hist.total(), minutes);
        assert_eq!(s.percentile(0.95), Some(10.0));
    }
    assert_eq!(store.health("a", 0, 3 * HOUR_MS).unwrap().failures, 3);
    assert_eq!(
        store.health("nobody", 0, HOUR_MS).unwrap(),
        HealthStats::default()
    );
}

#[test]
fn a_minute_written_twice_is_merged() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("h.db")).unwrap();
    store.write(&[minute("a", 0, &[5.0], 0)]).unwrap();
    store.write(&[minute("a", 0, &[7.0], 1)]).unwrap();
    let rows = store.minutes("a", 0, MINUTE_MS).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].checks, rows[0].failures, rows[0].max_ms),
        (3, 1, Some(7.0))
    );
    let hour = store.health("a", 0, HOUR_MS).unwrap();
    assert_eq!((hour.checks, hour.failures), (3, 1));
}

#[test]
fn retention_keeps_recent_rows_and_open_incidents() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("h.db")).unwrap();
    let incident = |opened_ms, closed_ms| {
        Row::Change(Change::Incident(Incident {
            service: "a".into(),
            opened_ms,
            closed_ms,
            error_kind: None,
            restarts: 0,
            escalated: false,
            resolved_by: closed_ms.map(|_| Resolution::Auto),
        }))
    };
    store
        .write(&[
            minute("a", 0, &[1.0], 0),
            minute("a", 5 * HOUR_MS, &[1.0], 0),
            incident(0, Some(1000)),
            incident(2000, None),
            incident(5 * HOUR_MS, Some(5 * HOUR_MS + 1)),
        ])
        .unwrap();
    store.retain(2 * HOUR_MS + 5).unwrap();
    assert_eq!(store.minutes("a", 0, 10 * HOUR_MS).unwrap().len(), 1);
    let kept: Vec<u64> = store
        .incidents(None, 0, 10 * HOUR_MS)
        .unwrap()
        .iter()
        .map(|i| i.opened_ms)
        .collect();
    assert_eq!(kept, [2000, 5 * HOUR_MS]);
    assert_eq!(store.open_incidents().unwrap().len(), 1);
}

#[test]
fn patterns_are_new_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("h.db")).unwrap();
    let svc = vec!["a".to_string(), "b".to_string()];
    assert!(store
        .note_pattern("correlated:a+b", "correlated", &svc, 10, "x")
        .unwrap());
    assert!(!store
        .note_pattern("correlated:a+b", "correlated", &svc, 20, "y")
        .unwrap());
    let p = store.patterns(0).unwrap();
    assert_eq!((p[0].first_seen_ms, p[0].last_seen_ms), (10, 20));
    assert_eq!(p[0].services, svc);
    assert_eq!(p[0].detail, "y");
}

#[test]
fn corrupt_or_missing_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.db");
    std::fs::write(&bad, vec![b'x'; 8192]).unwrap();
    assert!(matches!(Store::open(&bad), Err(StoreError::Sqlite { .. })));
    let missing = dir.path().join("none.db");
    assert!(matches!(
        Store::open_read_only(&missing),
        Err(StoreError::Missing(_))
    ));
}

#[test]
fn a_locked_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let other = Connection::open(&path).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE;").unwrap();
    let t = std::time::Instant::now();
    assert!(matches!(Store::open(&path), Err(StoreError::Sqlite { .. })));
    assert!(
        t.elapsed() < BUSY_TIMEOUT * 3,
        "gives up after the busy timeout"
    );
}

#[test]
fn read_only_sees_what_the_writer_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let mut store = Store::open(&path).unwrap();
    store.write(&[minute("a", 0, &[3.0], 0)]).unwrap();
    let reader = Store::open_read_only(&path).unwrap();
    assert_eq!(reader.services().unwrap()[0].name, "a");
    assert_eq!(reader.health("a", 0, MINUTE_MS).unwrap().checks, 1);
}

//! The history end to end without actors: days of realistic events, generated
//! here with their own timestamps, go through [`Feed`] into a [`Store`]; the
//! report's figures are checked exactly and each pattern is found — and not
//! found in a healthy stream.

use super::feed::Feed;
use super::latency::{bucket_of, bucket_value};
use super::patterns::{self, PatternKind};
use super::report::{self, Query, Trend};
use super::store::Store;
use super::summary;
use super::time::{DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS};
use super::timeline;
use crate::config::HistorySettings;
use crate::model::{ErrorKind, Event, EventKind, ServiceStatus};
use ServiceStatus::*;

/// 2025-10-06T00:00:00Z.
const T0: u64 = 1_759_708_800_000;
/// Health checks every 30 s, 1 s after the grid so they never coincide with
/// scripted events.
const CHECK_EVERY: u64 = 30 * SECOND_MS;

/// The events of one service: scripted failures and recoveries, and a health
/// check every 30 s while it is up.
struct Stream {
    service: String,
    scripted: Vec<Event>,
    /// `[from, to)` when the service is not answering checks.
    down: Vec<(u64, u64)>,
}

impl Stream {
    /// A service booted at `at`.
    fn boot(service: &str, at: u64) -> Stream {
        let mut s = Stream {
            service: service.into(),
            scripted: vec![],
            down: vec![(0, at + 2 * SECOND_MS)],
        };
        s.started(at, "start", true);
        s.status(at, Unknown, Starting);
        s.status(at + 2 * SECOND_MS, Starting, Running);
        s
    }

    fn ev(&mut self, at_ms: u64, kind: EventKind) {
        self.scripted.push(Event {
            at_ms,
            service: self.service.clone(),
            kind,
        });
    }
    fn status(&mut self, at: u64, from: ServiceStatus, to: ServiceStatus) {
        self.ev(at, EventKind::Status { from, to });
    }
    fn started(&mut self, at: u64, action: &str, automatic: bool) {
        self.ev(
            at,
            EventKind::Started {
                pid: 4242,
                action: action.into(),
                automatic,
            },
        );
    }

    /// Killed at `at`, restarted automatically at once, `running` after `back`.
    fn crash(&mut self, at: u64, back: u64) -> &mut Self {
        self.ev(
            at,
            EventKind::Exited {
                reason: "killed by signal 9 (SIGKILL)".into(),
            },
        );
        self.status(at, Running, Unhealthy);
        self.started(at + 1, "restart", true);
        self.status(at + 1, Unhealthy, Starting);
        self.status(at + back, Starting, Running);
        self.down.push((at, at + back));
        self
    }

    /// Stops answering at `at` (connection refused); the automatic restart does
    /// not come up and the service is escalated; a human recovers it so that it
    /// runs again at `at + back`.
    fn escalation(&mut self, at: u64, back: u64) -> &mut Self {
        self.ev(
            at,
            EventKind::Health {
                ok: false,
                latency_ms: 0.4,
                error_kind: Some(ErrorKind::ConnectionRefused),
            },
        );
        self.status(at, Running, Unhealthy);
        self.started(at + SECOND_MS, "restart", true);
        self.status(at + SECOND_MS, Unhealthy, Starting);
        self.status(at + 31 * SECOND_MS, Starting, Escalated);
        self.started(at + back - SECOND_MS, "recover", false);
        self.status(at + back - SECOND_MS, Escalated, Starting);
        self.status(at + back, Starting, Running);
        self.down.push((at, at + back));
        self
    }

    /// Every event until `end`, checks answered with `latency(at)`.
    fn events(&self, end: u64, latency: impl Fn(u64) -> f64) -> Vec<Event> {
        let first = self.down[0].1;
        let mut out = self.scripted.clone();
        let mut at = first - first % CHECK_EVERY + CHECK_EVERY + SECOND_MS;
        while at < end {
            if !self.down.iter().any(|&(a, b)| at >= a && at < b) {
                out.push(Event {
                    at_ms: at,
                    service: self.service.clone(),
                    kind: EventKind::Health {
                        ok: true,
                        latency_ms: latency(at),
                        error_kind: None,
                    },
                });
            }
            at += CHECK_EVERY;
        }
        out.retain(|e| e.at_ms < end);
        out
    }
}

/// Feed `events` (of any services, sorted here) through a Feed into a new store,
/// ticking the clock as the actor does.
fn load(events: Vec<Event>) -> (tempfile::TempDir, Store) {
    let mut events = events;
    events.sort_by_key(|e| e.at_ms); // stable: scripted order kept
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("history.db")).unwrap();
    let mut feed = Feed::default();
    let mut rows = vec![];
    for e in &events {
        rows.extend(feed.tick(e.at_ms));
        rows.extend(feed.on_event(e));
        if rows.len() >= 512 {
            store.write(&rows).unwrap();
            rows.clear();
        }
    }
    rows.extend(feed.drain());
    store.write(&rows).unwrap();
    (dir, store)
}

fn checks_in(events: &[Event], from: u64, to: u64) -> u64 {
    events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Health { .. }) && e.at_ms >= from && e.at_ms < to)
        .count() as u64
}

#[test]
fn report_figures_are_exact() {
    let now = T0 + 3 * DAY_MS;
    let (d1, d2) = (T0 + DAY_MS, T0 + 2 * DAY_MS);
    let mut api = Stream::boot("api", T0);
    // Day 1 (the previous period): two crashes back in 4 s each.
    api.crash(d1 + 9 * HOUR_MS + 7 * SECOND_MS, 4 * SECOND_MS);
    api.crash(d1 + 21 * HOUR_MS + 7 * SECOND_MS, 4 * SECOND_MS);
    // Day 2 (the period): a crash back in 6 s, and an escalation a human
    // recovers after 10 minutes.
    api.crash(d2 + 10 * HOUR_MS + 7 * SECOND_MS, 6 * SECOND_MS);
    api.escalation(d2 + 15 * HOUR_MS + 7 * SECOND_MS, 10 * MINUTE_MS);
    // Steady 10 ms; on day 2 one check in ten takes 50 ms.
    let events = api.events(now, |at| {
        if at >= d2 && (at / CHECK_EVERY).is_multiple_of(10) {
            50.0
        } else {
            10.0
        }
    });
    let checks_cur = checks_in(&events, d2, now);
    let checks_prev = checks_in(&events, d1, d2);
    let (_dir, store) = load(events);

    let r = report::generate(
        &store,
        &Query::since(now, DAY_MS, None),
        &HistorySettings::default(),
    )
    .unwrap();
    assert_eq!(r.services.len(), 1);
    let s = &r.services[0];
    let (c, p) = (&s.current, &s.previous);

    let down_cur = 6 * SECOND_MS + 10 * MINUTE_MS;
    assert_eq!(c.observed_ms, DAY_MS);
    assert_eq!(c.downtime_ms, down_cur);
    assert_eq!(
        c.availability_pct,
        Some(100.0 * (DAY_MS - down_cur) as f64 / DAY_MS as f64)
    );
    assert!((c.availability_pct.unwrap() - 99.298_611).abs() < 1e-6);
    assert_eq!((c.incidents, c.escalations), (2, 1));
    assert_eq!((c.restarts, c.automatic_restarts), (3, 2));
    assert_eq!(c.mttr_ms, Some((6_000 + 600_000) / 2));
    assert_eq!(c.mtbf_ms, Some((DAY_MS - down_cur) / 2));
    assert_eq!(
        (c.checks, c.failed_checks),
        (checks_cur, 1),
        "the refused check counts"
    );
    assert_eq!(
        c.latency.p50_ms,
        Some(10.0),
        "a steady majority reads exactly"
    );
    let p95 = c.latency.p95_ms.unwrap();
    assert_eq!(p95, bucket_value(bucket_of(50.0)).clamp(10.0, 50.0));
    assert!((p95 - 50.0).abs() / 50.0 < 0.045, "{p95}");
    assert_eq!(c.latency.max_ms, Some(50.0));
    let kinds: Vec<(&str, u32)> = c
        .top_errors
        .iter()
        .map(|e| (e.kind.as_str(), e.count))
        .collect();
    assert_eq!(kinds, [("connection_refused", 1), ("exited", 1)]);

    assert_eq!(p.downtime_ms, 8 * SECOND_MS);
    assert_eq!((p.incidents, p.restarts), (2, 2));
    assert_eq!(p.mttr_ms, Some(4_000));
    assert_eq!(p.checks, checks_prev);
    assert_eq!(
        (p.latency.p50_ms, p.latency.p95_ms),
        (Some(10.0), Some(10.0))
    );

    let t = s.trend;
    assert_eq!(t.availability, Some(Trend::Worse));
    assert_eq!(t.incidents, Some(Trend::Same));
    assert_eq!(t.restarts, Some(Trend::Worse));
    assert_eq!(t.mttr, Some(Trend::Worse));
    assert_eq!(t.mtbf, Some(Trend::Worse));
    assert_eq!(t.p50, Some(Trend::Same));
    assert_eq!(t.p95, Some(Trend::Worse));
    assert!(r.patterns.is_empty(), "{:?}", r.patterns);

    // A whole-day query of day 2 is the same period.
    let day = report::generate(
        &store,
        &Query::day(d2, now, None),
        &HistorySettings::default(),
    )
    .unwrap();
    assert_eq!(day.services[0].current, *c);

    // The text names the figures and the arrows.
    let text = report::render_text(&r);
    assert!(text.contains("99.299%"), "{text}");
    assert!(
        text.contains("MTTR          5m 3s       ↓ (was 4s)"),
        "{text}"
    );

    // The timeline tells the story of the escalation.
    let tl = timeline::build(
        &store,
        "api",
        report::Window {
            start_ms: d2,
            end_ms: now,
        },
    )
    .unwrap()
    .unwrap();
    assert_eq!(tl.incidents.len(), 2);
    assert!(tl.incidents[1].escalated);
    let text = timeline::render_text(&tl);
    assert!(
        text.contains("resolved human, 2 restart(s), was escalated"),
        "{text}"
    );
    assert!(
        text.contains("recover (manual): came back running"),
        "{text}"
    );
    assert!(timeline::build(&store, "nobody", tl.window)
        .unwrap()
        .is_none());

    // The daily summary of day 2.
    let dir = tempfile::tempdir().unwrap();
    let md = summary::write_daily(&store, &HistorySettings::default(), dir.path(), d2, now)
        .unwrap()
        .expect("written");
    assert!(md.ends_with("2025-10-08.md"));
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(
        text.contains("| api | 99.299% ↓ | 2 = | 3 ↓ | 5m 3s ↓ |"),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(md.with_extension("json")).unwrap()).unwrap();
    assert_eq!(json["services"][0]["current"]["incidents"], 2);
    assert_eq!(json["services"][0]["trend"]["mttr"], "worse");
    // Nothing happened on a day before the service existed: no summary.
    let none = summary::write_daily(
        &store,
        &HistorySettings::default(),
        dir.path(),
        T0 - DAY_MS,
        now,
    );
    assert!(none.unwrap().is_none());
}

/// Four services over three days, each with one anomaly (or none when healthy).
fn fleet(anomalies: bool) -> Vec<Event> {
    let now = T0 + 3 * DAY_MS;
    let d2 = T0 + 2 * DAY_MS;
    let mut events = vec![];

    // flappy: four crashes three minutes apart, each restart comes back.
    let mut flappy = Stream::boot("flappy", T0);
    // nightly: a crash at about 03:15 on three days (or at three different hours).
    let mut nightly = Stream::boot("nightly", T0);
    // db and api: fail within 2 s of each other three times (or hours apart).
    let mut db = Stream::boot("db", T0);
    let mut api = Stream::boot("api", T0);
    if anomalies {
        for k in 0..4 {
            flappy.crash(
                d2 + 20 * HOUR_MS + k * 3 * MINUTE_MS + 7 * SECOND_MS,
                2 * SECOND_MS,
            );
        }
        for day in 0..3 {
            nightly.crash(
                T0 + day * DAY_MS + 3 * HOUR_MS + (10 + day * 7) * MINUTE_MS,
                3 * SECOND_MS,
            );
        }
        for h in [9, 13, 17] {
            db.crash(d2 + h * HOUR_MS + 7 * SECOND_MS, 3 * SECOND_MS);
            api.crash(d2 + h * HOUR_MS + 9 * SECOND_MS, 3 * SECOND_MS);
        }
    } else {
        for k in 0..4 {
            flappy.crash(d2 + (2 + 5 * k) * HOUR_MS + 7 * SECOND_MS, 2 * SECOND_MS);
        }
        for (day, h) in [(0, 3), (1, 9), (2, 15)] {
            nightly.crash(
                T0 + day * DAY_MS + h * HOUR_MS + 10 * MINUTE_MS,
                3 * SECOND_MS,
            );
        }
        for h in [9, 13, 17] {
            db.crash(d2 + h * HOUR_MS + 7 * SECOND_MS, 3 * SECOND_MS);
            api.crash(d2 + (h + 1) * HOUR_MS + 9 * SECOND_MS, 3 * SECOND_MS);
        }
    }
    events.extend(flappy.events(now, |_| 8.0));
    events.extend(nightly.events(now, |_| 8.0));
    events.extend(db.events(now, |_| 3.0));
    // slow: 10 ms, then 40 ms in the last hour (or steady).
    let slow = Stream::boot("slow", T0);
    events.extend(slow.events(now, move |at| {
        if anomalies && at >= now - HOUR_MS {
            40.0
        } else {
            10.0
        }
    }));
    events.extend(api.events(now, |_| 5.0));
    events
}

#[test]
fn each_pattern_is_detected() {
    let now = T0 + 3 * DAY_MS;
    let (_dir, mut store) = load(fleet(true));
    let settings = HistorySettings::default();
    let found = patterns::detect(&store, &settings, now - DAY_MS, now).unwrap();
    let keys: Vec<(&str, PatternKind)> = found.iter().map(|f| (f.key.as_str(), f.kind)).collect();
    assert_eq!(
        keys,
        [
            ("flapping:flappy", PatternKind::Flapping),
            ("latency_trend:slow", PatternKind::LatencyTrend),
            ("time_of_day:nightly@03", PatternKind::TimeOfDay),
            ("correlated:api+db", PatternKind::Correlated),
        ],
        "{found:#?}"
    );
    let flapping = &found[0];
    assert!(
        flapping.detail.contains("4 automatic restarts within 15m"),
        "{}",
        flapping.detail
    );
    assert_eq!(
        flapping.at_ms,
        now - DAY_MS + 20 * HOUR_MS + 9 * MINUTE_MS + 7 * SECOND_MS + 1
    );
    assert!(
        found[1]
            .detail
            .contains("p95 40.0ms over the last 1h vs 10.0ms"),
        "{}",
        found[1].detail
    );
    assert!(
        found[2].detail.contains("on 3 different days"),
        "{}",
        found[2].detail
    );
    assert!(
        found[3].detail.contains("3 times within 10s"),
        "{}",
        found[3].detail
    );

    // The report shows them; a report of one service shows only its own.
    let r = report::generate(&store, &Query::since(now, DAY_MS, None), &settings).unwrap();
    assert_eq!(r.patterns, found);
    let one = report::generate(
        &store,
        &Query::since(now, DAY_MS, Some("db".into())),
        &settings,
    )
    .unwrap();
    assert_eq!(one.services.len(), 1);
    assert_eq!(one.patterns.len(), 1);
    assert_eq!(one.patterns[0].kind, PatternKind::Correlated);

    // Remembered once: the second sighting is not new.
    for f in &found {
        assert!(store
            .note_pattern(&f.key, f.kind.as_str(), &f.services, f.at_ms, &f.detail)
            .unwrap());
        assert!(!store
            .note_pattern(&f.key, f.kind.as_str(), &f.services, now, &f.detail)
            .unwrap());
    }
    assert_eq!(store.patterns(0).unwrap().len(), 4);

    // Thresholds are honoured: five restarts needed, no flapping.
    let mut strict = settings.clone();
    strict.flapping.min_restarts = 5;
    strict.correlated.min_occurrences = 4;
    let found = patterns::detect(&store, &strict, now - DAY_MS, now).unwrap();
    assert!(found
        .iter()
        .all(|f| !matches!(f.kind, PatternKind::Flapping | PatternKind::Correlated)));
}

#[test]
fn a_healthy_fleet_shows_no_pattern() {
    let now = T0 + 3 * DAY_MS;
    let (_dir, store) = load(fleet(false));
    let found = patterns::detect(&store, &HistorySettings::default(), now - DAY_MS, now).unwrap();
    assert!(found.is_empty(), "{found:#?}");
    let r = report::generate(
        &store,
        &Query::since(now, DAY_MS, None),
        &HistorySettings::default(),
    )
    .unwrap();
    assert_eq!(r.services.len(), 5);
    assert!(r.patterns.is_empty());
    let flappy = r.services.iter().find(|s| s.service == "flappy").unwrap();
    assert_eq!((flappy.current.incidents, flappy.current.restarts), (4, 4));
}

//! The History actor with its real worker thread on a temporary database.

use super::*;
use crate::history::store::Store;
use crate::model::{Event, EventKind, ServiceStatus::*};
use std::sync::Mutex;

/// Stands in for the Audit actor.
struct Collect(Arc<Mutex<Vec<Record>>>);
impl Actor for Collect {
    type Context = Context<Self>;
}
impl Handler<Record> for Collect {
    type Result = ();
    fn handle(&mut self, r: Record, _: &mut Context<Self>) {
        self.0.lock().unwrap().push(r);
    }
}

const TIMEOUT: Duration = Duration::from_secs(10);

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        actix::clock::sleep(Duration::from_millis(20)).await;
    }
}

fn start(dir: &std::path::Path) -> (Addr<History>, Arc<Mutex<Vec<Record>>>) {
    start_with(dir, ReportSettings { daily_at: None })
}

fn start_with(
    dir: &std::path::Path,
    reports: ReportSettings,
) -> (Addr<History>, Arc<Mutex<Vec<Record>>>) {
    let records = Arc::new(Mutex::new(vec![]));
    let audit = Collect(records.clone()).start().recipient();
    let history = History::new(
        dir.join("history.db"),
        dir.join("reports"),
        HistorySettings::default(),
        reports,
        audit,
    )
    .start();
    (history, records)
}

fn send(h: &Addr<History>, at_ms: u64, kind: EventKind) {
    h.do_send(Published(Arc::new(Event {
        at_ms,
        service: "a".into(),
        kind,
    })));
}

/// Booted, then three crashes a minute apart, each restart back to running.
fn flap(h: &Addr<History>, t: u64) {
    let restart = |action: &str| EventKind::Started {
        pid: 1,
        action: action.into(),
        automatic: true,
    };
    send(h, t, restart("start"));
    send(
        h,
        t,
        EventKind::Status {
            from: Unknown,
            to: Starting,
        },
    );
    send(
        h,
        t + 10,
        EventKind::Status {
            from: Starting,
            to: Running,
        },
    );
    for k in 1..=3 {
        let at = t + k * 60_000;
        send(
            h,
            at,
            EventKind::Exited {
                reason: "killed".into(),
            },
        );
        send(
            h,
            at,
            EventKind::Status {
                from: Running,
                to: Unhealthy,
            },
        );
        send(h, at + 1, restart("restart"));
        send(
            h,
            at + 1,
            EventKind::Status {
                from: Unhealthy,
                to: Starting,
            },
        );
        send(
            h,
            at + 50,
            EventKind::Status {
                from: Starting,
                to: Running,
            },
        );
    }
}

#[actix::test]
async fn records_events_and_raises_a_new_pattern() {
    let dir = tempfile::tempdir().unwrap();
    let (history, records) = start(dir.path());
    flap(&history, unix_ms() - 5 * 60_000);
    let db = dir.path().join("history.db");
    wait_until("three incidents on disk", || {
        Store::open_read_only(&db)
            .and_then(|s| s.incidents(Some("a"), 0, u64::MAX))
            .is_ok_and(|i| i.len() == 3 && i.iter().all(|i| i.closed_ms.is_some()))
    })
    .await;
    wait_until("the flapping pattern audited", || {
        records
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.action == "pattern")
    })
    .await;
    let r = records.lock().unwrap()[0].clone();
    assert_eq!((r.service.as_str(), r.outcome), ("a", Outcome::Success));
    assert!(r.detail.unwrap().starts_with("flapping: a is flapping"));
    // (Raised once only: `Store::note_pattern` and the history tests.)
}

#[actix::test]
async fn a_corrupt_database_leaves_the_supervisor_running() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.db");
    std::fs::write(&db, vec![b'x'; 4096]).unwrap();
    let (history, _) = start(dir.path());
    flap(&history, unix_ms() - 5 * 60_000);
    actix::clock::sleep(2 * FLUSH_EVERY).await;
    // Still answering, and the file was left alone.
    assert!(history.connected());
    flap(&history, unix_ms());
    actix::clock::sleep(FLUSH_EVERY).await;
    assert_eq!(std::fs::read(&db).unwrap(), vec![b'x'; 4096]);
}

/// A database in `dir` with one passing check yesterday; returns yesterday's start.
fn seed_yesterday(dir: &std::path::Path) -> u64 {
    use crate::history::aggregate::MinuteAggregator;
    let yesterday = crate::history::time::floor_to(unix_ms(), DAY_MS) - DAY_MS;
    let mut minutes = MinuteAggregator::default();
    minutes.add("a", yesterday + 5_000, true, 3.0);
    let rows: Vec<Row> = minutes.drain().into_iter().map(Row::Minute).collect();
    Store::open(&dir.join("history.db"))
        .unwrap()
        .write(&rows)
        .unwrap();
    yesterday
}

#[actix::test]
async fn a_missing_daily_summary_is_written_at_start() {
    use crate::config::TimeOfDayUtc;
    let dir = tempfile::tempdir().unwrap();
    // Yesterday had checks; the summary is due since 00:00 today.
    let yesterday = seed_yesterday(dir.path());
    let midnight = TimeOfDayUtc { hour: 0, minute: 0 };
    let (_history, _) = start_with(
        dir.path(),
        ReportSettings {
            daily_at: Some(midnight),
        },
    );
    let md = summary::markdown_path(&dir.path().join("reports"), yesterday);
    wait_until("the daily summary", || {
        md.exists() && md.with_extension("json").exists()
    })
    .await;
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(text.contains("| a | 100.000%"), "{text}");
}

/// Stands in for the Notifier.
struct Sink(Arc<Mutex<Vec<Alert>>>);
impl Actor for Sink {
    type Context = Context<Self>;
}
impl Handler<Notify> for Sink {
    type Result = ();
    fn handle(&mut self, n: Notify, _: &mut Context<Self>) {
        self.0.lock().unwrap().push(n.0);
    }
}

#[actix::test]
async fn the_daily_summary_goes_to_the_notification_sinks() {
    use crate::config::TimeOfDayUtc;
    let dir = tempfile::tempdir().unwrap();
    seed_yesterday(dir.path());
    let alerts = Arc::new(Mutex::new(vec![]));
    let sink = Sink(alerts.clone()).start().recipient();
    let audit = Collect(Arc::new(Mutex::new(vec![]))).start().recipient();
    let _history = History::new(
        dir.path().join("history.db"),
        dir.path().join("reports"),
        HistorySettings::default(),
        ReportSettings {
            daily_at: Some(TimeOfDayUtc { hour: 0, minute: 0 }),
        },
        audit,
    )
    .with_notifier(Some(sink))
    .start();
    wait_until("a summary alert", || !alerts.lock().unwrap().is_empty()).await;
    let a = alerts.lock().unwrap()[0].clone();
    assert_eq!(a.alert, crate::actors::notifier::AlertKind::Summary);
    assert!(a.text.contains("| a | 100.000%"), "{}", a.text);
    assert!(a.reason.starts_with("daily summary of "), "{}", a.reason);
}

//! Benchmark of `report` over a full history: 30 days × 100 services of
//! per-minute health aggregates (two checks a minute each) plus two crashes a
//! day per service, generated as events and fed through the same path as the
//! History actor (Feed → Store), then `report` timed over the last 24 h and
//! over the whole 30 days (wall time, and this thread's CPU time, which other
//! processes on the machine do not inflate).
//!
//! ```sh
//! cargo run --release --example history-bench                      # temp dir, removed after
//! cargo run --release --example history-bench -- /tmp/hb 100 30    # keep /tmp/hb/history.db
//! cargo run --release --example history-bench -- /tmp/hb 100 30 reuse   # time it again
//! time ./target/release/ai-dawg-manager report --data-dir /tmp/hb --since 30d > /dev/null
//! ```

use ai_dawg_manager::config::HistorySettings;
use ai_dawg_manager::history::feed::Feed;
use ai_dawg_manager::history::patterns;
use ai_dawg_manager::history::report::{self, Query};
use ai_dawg_manager::history::store::Store;
use ai_dawg_manager::history::time::{floor_to, DAY_MS, HOUR_MS, MINUTE_MS};
use ai_dawg_manager::model::{unix_ms, ErrorKind, Event, EventKind, ServiceStatus};
use std::time::Instant;

/// CPU time of this thread in ms: unlike wall time, not inflated when other
/// processes compete for the cores.
fn thread_cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1000.0 + ts.tv_nsec as f64 / 1e6
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = args
        .first()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| temp.path().to_path_buf());
    let services: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100);
    let days: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(30);
    std::fs::create_dir_all(&dir).expect("data dir");
    let db = dir.join("history.db");
    let now = floor_to(unix_ms(), MINUTE_MS);
    if args.get(3).map(String::as_str) == Some("reuse") && db.exists() {
        println!("reusing {}", db.display());
        return time_reports(&db, services, days, now);
    }
    let _ = std::fs::remove_file(&db);

    let start = now - days * DAY_MS;
    let names: Vec<String> = (0..services).map(|i| format!("svc{i:03}")).collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut feed = Feed::default();
    let mut store = Store::open(&db).expect("open");
    let ev = |service: &str, at_ms, kind| Event {
        at_ms,
        service: service.to_string(),
        kind,
    };

    let t = Instant::now();
    let mut rows = vec![];
    let mut written = 0usize;
    // Boot every service.
    for s in &names {
        for kind in [
            EventKind::Started {
                pid: 1,
                action: "start".into(),
                automatic: true,
            },
            EventKind::Status {
                from: ServiceStatus::Unknown,
                to: ServiceStatus::Starting,
            },
            EventKind::Status {
                from: ServiceStatus::Starting,
                to: ServiceStatus::Running,
            },
        ] {
            rows.extend(feed.on_event(&ev(s, start, kind)));
        }
    }
    let mut minute = start;
    while minute < now {
        rows.extend(feed.tick(minute));
        for (i, s) in names.iter().enumerate() {
            let base = 5.0 + (i % 20) as f64;
            for half in [1_000, 31_000] {
                let latency = base + rng.below(1000) as f64 / 100.0;
                let kind = EventKind::Health {
                    ok: true,
                    latency_ms: latency,
                    error_kind: None,
                };
                rows.extend(feed.on_event(&ev(s, minute + half, kind)));
            }
            // About two crashes a day per service, each back in a few seconds.
            if rng.below(720) == 0 {
                let at = minute + 40_000;
                let back = 500 + rng.below(5_000);
                let kinds = [
                    (
                        at,
                        EventKind::Health {
                            ok: false,
                            latency_ms: 0.3,
                            error_kind: Some(ErrorKind::ConnectionRefused),
                        },
                    ),
                    (
                        at,
                        EventKind::Status {
                            from: ServiceStatus::Running,
                            to: ServiceStatus::Unhealthy,
                        },
                    ),
                    (
                        at + 1,
                        EventKind::Started {
                            pid: 2,
                            action: "restart".into(),
                            automatic: true,
                        },
                    ),
                    (
                        at + back,
                        EventKind::Status {
                            from: ServiceStatus::Starting,
                            to: ServiceStatus::Running,
                        },
                    ),
                ];
                for (at, kind) in kinds {
                    rows.extend(feed.on_event(&ev(s, at, kind)));
                }
            }
        }
        minute += MINUTE_MS;
        if minute.is_multiple_of(6 * HOUR_MS) {
            written += rows.len();
            store.write(&rows).expect("write");
            rows.clear();
        }
    }
    rows.extend(feed.drain());
    written += rows.len();
    store.write(&rows).expect("write");
    drop(store);
    let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    println!(
        "loaded {services} services × {days} days: {written} rows ({} minute aggregates) in {:.1}s, {} MiB",
        services * days * 1440,
        t.elapsed().as_secs_f64(),
        size / (1024 * 1024)
    );

    time_reports(&db, services, days, now);
    if !args.is_empty() {
        println!(
            "kept {}; time the binary with: ai-dawg-manager report --data-dir {} --since 30d",
            db.display(),
            dir.display()
        );
    }
}

/// Time `report` (7 runs each) over the last 24 h and the whole history.
fn time_reports(db: &std::path::Path, services: u64, days: u64, now: u64) {
    let store = Store::open_read_only(db).expect("open read-only");
    let settings = HistorySettings::default();
    for (label, length) in [
        ("report --since 24h", DAY_MS),
        ("report --since 30d", days * DAY_MS),
    ] {
        let (mut wall, mut cpu, mut detect) = (vec![], vec![], vec![]);
        let mut incidents = 0;
        for _ in 0..7 {
            let (t, c) = (Instant::now(), thread_cpu_ms());
            let q = Query::since(now, length, None);
            let r = report::generate(&store, &q, &settings).expect("report");
            wall.push(t.elapsed().as_secs_f64() * 1000.0);
            cpu.push(thread_cpu_ms() - c);
            incidents = r.services.iter().map(|s| s.current.incidents).sum::<u32>();
            let c = thread_cpu_ms();
            patterns::detect(&store, &settings, q.current.start_ms, now).expect("patterns");
            detect.push(thread_cpu_ms() - c);
        }
        for v in [&mut wall, &mut cpu, &mut detect] {
            v.sort_by(f64::total_cmp);
        }
        println!(
            "{label:<20} {services} services, {incidents} incidents: median {:.1} ms wall \
             (min {:.1}, max {:.1}), {:.1} ms CPU, of which pattern detection {:.1} ms",
            wall[3], wall[0], wall[6], cpu[3], detect[3]
        );
    }
}

//! The History actor: records every event the Registry publishes into
//! `data/history.db`, raises patterns when first seen, enforces retention and
//! writes the daily summary.
//!
//! It is thin: [`Feed`] turns events into rows, [`crate::history`] holds the
//! rest. Disk work never runs on the actors' thread: rows are batched (flushed
//! every second, or at once past [`FLUSH_AT_ROWS`]) and handed to a worker
//! thread that owns the SQLite connection; queries for patterns and summaries
//! run there too and their results come back as messages. When the database
//! cannot be opened (corrupt, locked, unwritable) the actor logs one warning and
//! the supervisor runs on without history. At shutdown (the actor is dropped)
//! the open minutes are flushed and the worker is joined.

#[cfg(test)]
mod tests;
mod worker;

use super::audit::{Outcome, Record};
use super::notifier::{Alert, Notify};
use super::registry::Published;
use crate::config::{HistorySettings, ReportSettings};
use crate::history::feed::{Feed, Row};
use crate::history::incidents::{Change, Incident};
use crate::history::patterns::{self, Finding};
use crate::history::summary;
use crate::history::time::{ms_of, DAY_MS};
use crate::model::unix_ms;
use actix::prelude::*;
use log::{debug, info, warn};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use worker::Worker;

const TARGET: &str = "history";
/// Rows wait at most this long in memory.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// A batch this large is written at once.
pub const FLUSH_AT_ROWS: usize = 512;
/// Every pattern detector runs at least this often (latency trend, hours).
const DETECT_EVERY: Duration = Duration::from_secs(60);
/// After an incident or a restart, detection runs again at most this soon.
const DETECT_AFTER_CHANGE: Duration = Duration::from_secs(5);

// ---- messages the History actor receives ------------------------------------------
// `Published` (from the Registry): one event; handled below.

/// Incidents a previous supervisor left open, read from the database.
#[derive(Message, Debug)]
#[rtype(result = "()")]
struct Resumed(Vec<Incident>);

/// Patterns the worker found for the first time.
#[derive(Message, Debug)]
#[rtype(result = "()")]
struct PatternsFound(Vec<Finding>);

/// The database could not be opened: drop history from now on.
#[derive(Message, Debug)]
#[rtype(result = "()")]
struct Disabled;

// ---- the actor --------------------------------------------------------------------

pub struct History {
    db_path: PathBuf,
    reports_dir: PathBuf,
    settings: Arc<HistorySettings>,
    reports: ReportSettings,
    audit: Recipient<Record>,
    feed: Feed,
    /// Rows not yet handed to the worker.
    pending: Vec<Row>,
    /// `None` before start and once the database proved unusable.
    worker: Option<Worker>,
    /// Our own address, for the worker's answers (set when started).
    addr: Option<Addr<History>>,
    /// An incident or start changed since the last detection.
    changed: bool,
    last_detection: Option<Instant>,
    /// Where daily summaries are sent (the notification sinks), if configured.
    notifier: Option<Recipient<Notify>>,
}

impl History {
    pub fn new(
        db_path: PathBuf,
        reports_dir: PathBuf,
        settings: HistorySettings,
        reports: ReportSettings,
        audit: Recipient<Record>,
    ) -> Self {
        History {
            db_path,
            reports_dir,
            settings: Arc::new(settings),
            reports,
            audit,
            feed: Feed::default(),
            pending: vec![],
            worker: None,
            addr: None,
            changed: false,
            last_detection: None,
            notifier: None,
        }
    }

    /// Send each daily summary through the notification sinks too.
    pub fn with_notifier(mut self, notifier: Option<Recipient<Notify>>) -> Self {
        self.notifier = notifier;
        self
    }

    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let rows = std::mem::take(&mut self.pending);
        if let Some(w) = &self.worker {
            w.run(move |db| db.write(&rows));
        }
    }

    fn take(&mut self, rows: Vec<Row>) {
        self.changed |= rows.iter().any(|r| {
            matches!(
                r,
                Row::Change(Change::Incident(_) | Change::StartOutcome { .. })
            )
        });
        self.pending.extend(rows);
    }

    fn tick(&mut self) {
        let rows = self.feed.tick(unix_ms());
        self.take(rows);
        self.flush();
        if self.changed
            && self
                .last_detection
                .is_none_or(|t| t.elapsed() >= DETECT_AFTER_CHANGE)
        {
            self.detect();
        }
    }

    /// Run the detectors on the worker; new patterns come back as a message.
    fn detect(&mut self) {
        self.changed = false;
        self.last_detection = Some(Instant::now());
        let (Some(w), Some(addr)) = (&self.worker, self.addr.clone()) else {
            return;
        };
        let settings = self.settings.clone();
        let now = unix_ms();
        w.run(move |db| {
            let lookback = ms_of(settings.flapping.window).max(ms_of(settings.correlated.lookback));
            let found =
                match patterns::detect(&db.store, &settings, now.saturating_sub(lookback), now) {
                    Ok(f) => f,
                    Err(e) => {
                        debug!(target: TARGET, "pattern detection skipped: {e}");
                        return;
                    }
                };
            let new: Vec<Finding> = found
                .into_iter()
                .filter(|f| {
                    let kind = f.kind.as_str();
                    db.store
                        .note_pattern(&f.key, kind, &f.services, f.at_ms, &f.detail)
                        .unwrap_or(false)
                })
                .collect();
            if !new.is_empty() {
                addr.do_send(PatternsFound(new));
            }
        });
    }

    fn retain(&self) {
        let Some(w) = &self.worker else { return };
        let keep = u64::from(self.settings.history_days) * DAY_MS;
        let cutoff = unix_ms().saturating_sub(keep);
        w.run(move |db| match db.store.retain(cutoff) {
            Ok(0) => {}
            Ok(n) => info!(target: TARGET, "retention: {n} old history rows deleted"),
            Err(e) => warn!(target: TARGET, "retention failed: {e}"),
        });
    }

    /// Write the summary of the day due now, unless it is already there.
    fn summarize(&self, only_if_missing: bool) {
        let (Some(w), Some(at)) = (&self.worker, self.reports.daily_at) else {
            return;
        };
        let now = unix_ms();
        let day = summary::due_day(now, at);
        let dir = self.reports_dir.clone();
        let settings = self.settings.clone();
        let notifier = self.notifier.clone();
        w.run(move |db| {
            if only_if_missing && summary::markdown_path(&dir, day).exists() {
                return;
            }
            match summary::write_daily(&db.store, &settings, &dir, day, now) {
                Ok(Some(path)) => {
                    info!(target: TARGET, "daily summary written to {}", path.display());
                    if let Some(n) = &notifier {
                        let text = std::fs::read_to_string(&path).unwrap_or_default();
                        n.do_send(Notify(Alert::summary(&day.to_string(), &path, &text)));
                    }
                }
                Ok(None) => debug!(target: TARGET, "no history for the daily summary of {day}"),
                Err(e) => warn!(target: TARGET, "daily summary not written: {e}"),
            }
        });
    }

    fn schedule_summary(&self, ctx: &mut Context<Self>) {
        let Some(at) = self.reports.daily_at else {
            return;
        };
        let now = unix_ms();
        let wait = Duration::from_millis(summary::next_run(now, at) - now);
        ctx.run_later(wait, |act, ctx| {
            act.summarize(false);
            act.schedule_summary(ctx);
        });
    }
}

impl Actor for History {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let addr = ctx.address();
        match Worker::start(self.db_path.clone(), addr.clone()) {
            Ok(w) => self.worker = Some(w),
            Err(e) => warn!(target: TARGET, "history disabled: cannot start its thread: {e}"),
        }
        self.addr = Some(addr.clone());
        if let Some(w) = &self.worker {
            w.run(move |db| match db.store.open_incidents() {
                Ok(open) if !open.is_empty() => addr.do_send(Resumed(open)),
                Ok(_) => {}
                Err(e) => warn!(target: TARGET, "open incidents not read: {e}"),
            });
        }
        self.retain();
        self.summarize(true);
        self.schedule_summary(ctx);
        ctx.run_interval(FLUSH_EVERY, |act, _| act.tick());
        ctx.run_interval(DETECT_EVERY, |act, _| act.detect());
        ctx.run_interval(Duration::from_millis(DAY_MS), |act, _| act.retain());
    }
}

impl Drop for History {
    /// At shutdown: write the open minutes and what is pending, then join the
    /// worker (dropped with the other fields) so nothing is lost.
    fn drop(&mut self) {
        let rows = self.feed.drain();
        self.pending.extend(rows);
        self.flush();
    }
}

impl Handler<Published> for History {
    type Result = ();
    fn handle(&mut self, m: Published, _: &mut Context<Self>) {
        let rows = self.feed.on_event(&m.0);
        self.take(rows);
        if self.pending.len() >= FLUSH_AT_ROWS {
            self.flush();
        }
    }
}

impl Handler<Resumed> for History {
    type Result = ();
    fn handle(&mut self, m: Resumed, _: &mut Context<Self>) {
        debug!(target: TARGET, "{} incident(s) left open by the previous supervisor", m.0.len());
        let rows = self.feed.resume(m.0);
        self.take(rows);
    }
}

impl Handler<PatternsFound> for History {
    type Result = ();
    fn handle(&mut self, m: PatternsFound, _: &mut Context<Self>) {
        for f in m.0 {
            warn!(target: TARGET, "pattern detected: {}", f.detail);
            for service in &f.services {
                self.audit.do_send(
                    Record::new(service, "pattern", Outcome::Success).detail(format!(
                        "{}: {}",
                        f.kind.as_str(),
                        f.detail
                    )),
                );
            }
        }
    }
}

impl Handler<Disabled> for History {
    type Result = ();
    fn handle(&mut self, _: Disabled, _: &mut Context<Self>) {
        self.worker = None;
        self.pending.clear();
    }
}

//! The daily summary: the report of one UTC day against the day before,
//! written to `data/reports/YYYY-MM-DD.md` and `.json` at `reports.daily_at`.
//! When to run and which day to summarise are pure functions of `now`.

use super::report::{self, cell, Query, Report, Trend};
use super::store::{Store, StoreError};
use super::time::{floor_to, format_day, rfc3339, DAY_MS, HOUR_MS, MINUTE_MS};
use crate::config::{HistorySettings, TimeOfDayUtc};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn at_of(day_ms: u64, t: TimeOfDayUtc) -> u64 {
    day_ms + u64::from(t.hour) * HOUR_MS + u64::from(t.minute) * MINUTE_MS
}

/// The next time after `now_ms` (strictly) that is `t`, UTC.
pub fn next_run(now_ms: u64, t: TimeOfDayUtc) -> u64 {
    let today = at_of(floor_to(now_ms, DAY_MS), t);
    if today > now_ms {
        today
    } else {
        today + DAY_MS
    }
}

/// The day (its midnight) whose summary is due at `now_ms`: yesterday once
/// today's `t` has passed, else the day before yesterday.
pub fn due_day(now_ms: u64, t: TimeOfDayUtc) -> u64 {
    let today = floor_to(now_ms, DAY_MS);
    if now_ms >= at_of(today, t) {
        today.saturating_sub(DAY_MS)
    } else {
        today.saturating_sub(2 * DAY_MS)
    }
}

/// `data/reports/YYYY-MM-DD.md` for the day starting at `day_ms`.
pub fn markdown_path(dir: &Path, day_ms: u64) -> PathBuf {
    dir.join(format!("{}.md", format_day(day_ms)))
}

/// The summary as Markdown.
pub fn markdown(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# AI DAWG Manager — daily summary for {} (UTC)\n",
        format_day(r.current.start_ms)
    );
    let _ = writeln!(
        o,
        "Period {} → {}, compared with the day before (↑ better, ↓ worse, = same).\n",
        rfc3339(r.current.start_ms),
        rfc3339(r.current.end_ms)
    );
    let _ = writeln!(
        o,
        "| service | availability | incidents | restarts | MTTR | MTBF | p50 | p95 | top errors |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|");
    for s in &r.services {
        let (c, t) = (&s.current, &s.trend);
        let with =
            |v: String, tr: Option<Trend>| format!("{v} {}", Trend::arrow(tr)).trim().to_string();
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.service,
            with(cell::pct(c.availability_pct), t.availability),
            with(c.incidents.to_string(), t.incidents),
            with(c.restarts.to_string(), t.restarts),
            with(cell::dur(c.mttr_ms), t.mttr),
            with(cell::dur(c.mtbf_ms), t.mtbf),
            with(cell::ms(c.latency.p50_ms), t.p50),
            with(cell::ms(c.latency.p95_ms), t.p95),
            cell::errors(&c.top_errors),
        );
    }
    let _ = writeln!(o, "\n## Patterns\n");
    if r.patterns.is_empty() {
        let _ = writeln!(o, "None detected.");
    }
    for f in &r.patterns {
        let _ = writeln!(o, "- ⚠️ **{}**: {}", f.kind.as_str(), f.detail);
    }
    o
}

/// Whether anything happened that day (else no summary is written).
fn has_activity(r: &Report) -> bool {
    r.services
        .iter()
        .any(|s| s.current.checks > 0 || s.current.incidents > 0 || s.current.restarts > 0)
}

/// Write the summary of the day starting at `day_ms` (Markdown and JSON) into
/// `dir`; `None` when the history holds nothing for that day.
pub fn write_daily(
    store: &Store,
    settings: &HistorySettings,
    dir: &Path,
    day_ms: u64,
    now_ms: u64,
) -> Result<Option<PathBuf>, SummaryError> {
    let report = report::generate(store, &Query::day(day_ms, now_ms, None), settings)?;
    if !has_activity(&report) {
        return Ok(None);
    }
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| SummaryError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let md = markdown_path(dir, day_ms);
    let json = md.with_extension("json");
    let body = serde_json::to_vec_pretty(&report).unwrap_or_default();
    crate::persist::write_atomic(&json, &body).map_err(io(&json))?;
    crate::persist::write_atomic(&md, markdown(&report).as_bytes()).map_err(io(&md))?;
    Ok(Some(md))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EIGHT: TimeOfDayUtc = TimeOfDayUtc { hour: 8, minute: 0 };

    #[test]
    fn scheduling() {
        let day = 100 * DAY_MS;
        assert_eq!(next_run(day, EIGHT), day + 8 * HOUR_MS);
        assert_eq!(
            next_run(day + 8 * HOUR_MS, EIGHT),
            day + DAY_MS + 8 * HOUR_MS
        );
        assert_eq!(due_day(day + 9 * HOUR_MS, EIGHT), day - DAY_MS);
        assert_eq!(due_day(day + 7 * HOUR_MS, EIGHT), day - 2 * DAY_MS);
    }
}

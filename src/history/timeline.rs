//! `history NAME`: the incident timeline of one service — its incidents, the
//! process starts and manual actions around them, and its patterns.

use super::incidents::{Incident, ManualAction, StartRecord};
use super::report::Window;
use super::store::{PatternRow, Store, StoreError};
use super::time::{rfc3339, short_duration};
use serde::Serialize;
use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeline {
    pub service: String,
    pub window: Window,
    pub incidents: Vec<Incident>,
    pub starts: Vec<StartRecord>,
    pub manual_actions: Vec<ManualAction>,
    pub patterns: Vec<PatternRow>,
    pub open_incidents: u32,
    /// Mean duration of the repaired incidents of the window.
    pub mttr_ms: Option<u64>,
}

/// The timeline of `service` over `window`; `None` if it has no history.
pub fn build(store: &Store, service: &str, window: Window) -> Result<Option<Timeline>, StoreError> {
    let Some(seen) = store.services()?.into_iter().find(|s| s.name == service) else {
        return Ok(None);
    };
    let window = Window {
        start_ms: window.start_ms.max(seen.first_seen_ms).min(window.end_ms),
        ..window
    };
    let (from, to) = (window.start_ms, window.end_ms);
    let incidents = store.incidents(Some(service), from, to)?;
    let repaired: Vec<u64> = incidents
        .iter()
        .filter(|i| i.resolved_by.is_some_and(|r| r.repaired()))
        .map(|i| i.duration_ms(to))
        .collect();
    Ok(Some(Timeline {
        service: service.to_string(),
        window,
        open_incidents: incidents.iter().filter(|i| i.closed_ms.is_none()).count() as u32,
        mttr_ms: (!repaired.is_empty())
            .then(|| repaired.iter().sum::<u64>() / repaired.len() as u64),
        starts: store.starts(Some(service), from, to)?,
        manual_actions: store.manual_actions(service, from, to)?,
        patterns: store
            .patterns(from)?
            .into_iter()
            .filter(|p| p.services.iter().any(|s| s == service))
            .collect(),
        incidents,
    }))
}

/// The timeline for a terminal: one line per fact, oldest first.
pub fn render_text(t: &Timeline) -> String {
    // (time, order among facts of the same millisecond, line)
    let mut lines: Vec<(u64, u8, String)> = vec![];
    for i in &t.incidents {
        lines.push((
            i.opened_ms,
            0,
            format!(
                "🔴 incident opened ({})",
                i.error_kind.as_deref().unwrap_or("unknown error")
            ),
        ));
        if let Some(closed) = i.closed_ms {
            let how = i.resolved_by.map_or("?", |r| r.as_str());
            lines.push((
                closed,
                3,
                format!(
                    "🟢 incident closed after {}: resolved {how}, {} restart(s){}",
                    short_duration(closed.saturating_sub(i.opened_ms)),
                    i.restarts,
                    if i.escalated { ", was escalated" } else { "" }
                ),
            ));
        }
    }
    for s in &t.starts {
        let outcome = match s.succeeded {
            Some(true) => "came back running",
            Some(false) => "failed",
            None => "outcome pending",
        };
        let who = if s.automatic { "automatic" } else { "manual" };
        lines.push((s.at_ms, 1, format!("   ↻ {} ({who}): {outcome}", s.action)));
    }
    for m in t.manual_actions.iter().filter(|m| m.action == "stop") {
        lines.push((m.at_ms, 2, "   🛑 stop".to_string()));
    }
    lines.sort_by_key(|a| (a.0, a.1));

    let mut o = String::new();
    let _ = writeln!(
        o,
        "🕒 ==================== {}: incident timeline ====================",
        t.service
    );
    let _ = writeln!(
        o,
        "Since {}: {} incident(s), {} open, MTTR {}",
        rfc3339(t.window.start_ms),
        t.incidents.len(),
        t.open_incidents,
        t.mttr_ms.map_or("–".into(), short_duration)
    );
    let _ = writeln!(o);
    if lines.is_empty() {
        let _ = writeln!(o, "Nothing happened in this period.");
    }
    for (at, _, line) in &lines {
        let _ = writeln!(o, "{}  {line}", rfc3339(*at));
    }
    if !t.patterns.is_empty() {
        let _ = writeln!(o, "\n🔎 Patterns");
        for p in &t.patterns {
            let _ = writeln!(
                o,
                "  ⚠️  {} (first seen {}): {}",
                p.kind,
                rfc3339(p.first_seen_ms),
                p.detail
            );
        }
    }
    o
}

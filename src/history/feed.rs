//! From the Registry's events to rows for the store: the incident state machine
//! and the per-minute health aggregation side by side. Pure: time is the
//! events' own, or the `now` the caller passes to [`Feed::tick`].

use super::aggregate::{MinuteAggregator, MinuteRow};
use super::incidents::{Change, Incident, IncidentTracker};
use crate::model::{Event, EventKind};
use std::collections::HashSet;

/// One row to write.
#[derive(Debug, Clone, PartialEq)]
pub enum Row {
    /// A service seen for the first time since start-up (its first sighting
    /// ever is kept by the store).
    Seen {
        service: String,
        at_ms: u64,
    },
    Change(Change),
    Minute(MinuteRow),
}

#[derive(Debug, Default)]
pub struct Feed {
    incidents: IncidentTracker,
    minutes: MinuteAggregator,
    seen: HashSet<String>,
}

impl Feed {
    /// The rows an event makes.
    pub fn on_event(&mut self, e: &Event) -> Vec<Row> {
        let mut rows = vec![];
        if !self.seen.contains(&e.service) {
            self.seen.insert(e.service.clone());
            rows.push(Row::Seen {
                service: e.service.clone(),
                at_ms: e.at_ms,
            });
        }
        if let EventKind::Health { ok, latency_ms, .. } = &e.kind {
            if let Some(row) = self.minutes.add(&e.service, e.at_ms, *ok, *latency_ms) {
                rows.push(Row::Minute(row));
            }
        }
        rows.extend(self.incidents.on_event(e).into_iter().map(Row::Change));
        rows
    }

    /// Minutes that `now_ms` has left behind.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Row> {
        self.minutes
            .tick(now_ms)
            .into_iter()
            .map(Row::Minute)
            .collect()
    }

    /// Everything still in memory (at shutdown).
    pub fn drain(&mut self) -> Vec<Row> {
        self.minutes.drain().into_iter().map(Row::Minute).collect()
    }

    /// Take over incidents left open by a previous supervisor.
    pub fn resume(&mut self, open: Vec<Incident>) -> Vec<Row> {
        self.incidents
            .resume(open)
            .into_iter()
            .map(Row::Change)
            .collect()
    }
}

//! From the Registry's events to rows for the store: the incident state machine
//! and the per-minute health aggregation side by side. Pure: time is the
//! events' own, or the `now` the caller passes to [`Feed::tick`].
//!
//! Failed probes of a service that is `starting` are expected (SPEC §4.3) and
//! are not counted as checks; its first passing probe is.

use super::aggregate::{MinuteAggregator, MinuteRow};
use super::incidents::{Change, Incident, IncidentTracker};
use crate::model::{Event, EventKind, ServiceStatus};
use std::collections::{HashMap, HashSet};

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
    /// Last status of each service (to leave out the probes of a start).
    status: HashMap<String, ServiceStatus>,
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
        match &e.kind {
            EventKind::Status { to, .. } => {
                self.status.insert(e.service.clone(), *to);
            }
            EventKind::Health { ok: false, .. }
                if self.status.get(&e.service) == Some(&ServiceStatus::Starting) => {}
            EventKind::Health { ok, latency_ms, .. } => {
                if let Some(row) = self.minutes.add(&e.service, e.at_ms, *ok, *latency_ms) {
                    rows.push(Row::Minute(row));
                }
            }
            _ => {}
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ErrorKind;

    fn ev(at_ms: u64, kind: EventKind) -> Event {
        Event {
            at_ms,
            service: "a".into(),
            kind,
        }
    }
    fn health(at_ms: u64, ok: bool) -> Event {
        ev(
            at_ms,
            EventKind::Health {
                ok,
                latency_ms: 2.0,
                error_kind: (!ok).then_some(ErrorKind::ConnectionRefused),
            },
        )
    }

    #[test]
    fn probes_of_a_start_are_not_counted_as_failures() {
        let mut feed = Feed::default();
        let status = |from, to| EventKind::Status { from, to };
        let mut rows = vec![];
        rows.extend(feed.on_event(&ev(
            0,
            status(ServiceStatus::Unknown, ServiceStatus::Starting),
        )));
        for t in 1..5 {
            rows.extend(feed.on_event(&health(t, false)));
        }
        rows.extend(feed.on_event(&health(6, true)));
        rows.extend(feed.on_event(&ev(
            6,
            status(ServiceStatus::Starting, ServiceStatus::Running),
        )));
        rows.extend(feed.on_event(&health(7, false)));
        rows.extend(feed.drain());
        assert!(matches!(&rows[0], Row::Seen { service, at_ms: 0 } if service == "a"));
        let minutes: Vec<(u64, u64)> = rows
            .iter()
            .filter_map(|r| match r {
                Row::Minute(m) => Some((m.checks, m.failures)),
                _ => None,
            })
            .collect();
        assert_eq!(
            minutes,
            [(2, 1)],
            "the passing probe and the failure while running"
        );
    }
}

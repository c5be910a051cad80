//! The incident state machine: from the Registry's events to incidents, process
//! starts (with whether each brought the service back) and manual actions.
//!
//! An incident opens when a service that was `running` fails: its status leaves
//! `running` for `unhealthy`, `backoff` or `escalated`, or its process exits while
//! it is `running`. It closes when the service is `running` again — resolved
//! `auto` when the last start of the incident was automatic (or there was none),
//! `human` when a manual `start`/`restart`/`recover` brought it back — or when the
//! service is stopped (`stopped`: taken out of service, not repaired). It is
//! `escalated` if it passed through `escalated`. Time comes from the events.

use crate::model::{ErrorKind, Event, EventKind, ServiceStatus};
use serde::Serialize;
use std::collections::HashMap;

/// How an incident ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// Back to `running` with no human involved.
    Auto,
    /// Back to `running` after a manual start, restart or recover.
    Human,
    /// Stopped (by a human or the supervisor's shutdown) before it came back.
    Stopped,
}

impl Resolution {
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Auto => "auto",
            Resolution::Human => "human",
            Resolution::Stopped => "stopped",
        }
    }

    pub fn parse(s: &str) -> Option<Resolution> {
        match s {
            "auto" => Some(Resolution::Auto),
            "human" => Some(Resolution::Human),
            "stopped" => Some(Resolution::Stopped),
            _ => None,
        }
    }

    /// The service was repaired (counts towards MTTR).
    pub fn repaired(self) -> bool {
        matches!(self, Resolution::Auto | Resolution::Human)
    }
}

/// One incident of one service; `(service, opened_ms)` identifies it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    pub service: String,
    pub opened_ms: u64,
    pub closed_ms: Option<u64>,
    /// What failed first (`exited`, `connection_refused`, …), when known.
    pub error_kind: Option<String>,
    /// Process starts during the incident.
    pub restarts: u32,
    pub escalated: bool,
    pub resolved_by: Option<Resolution>,
}

impl Incident {
    /// `closed − opened`, or up to `now` while open.
    pub fn duration_ms(&self, now_ms: u64) -> u64 {
        self.closed_ms
            .unwrap_or(now_ms)
            .saturating_sub(self.opened_ms)
    }
}

/// A process start (`action` `start`, `restart` or `recover`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StartRecord {
    pub service: String,
    pub at_ms: u64,
    pub action: String,
    pub automatic: bool,
    /// Whether it reached `running` before failing again; unknown until then.
    pub succeeded: Option<bool>,
}

impl StartRecord {
    /// A restart in the sense of `restart_count`: `restart` or `recover`.
    pub fn is_restart(&self) -> bool {
        self.action != "start"
    }
}

/// A human (or the shutdown) acting on a service: `start`, `restart`, `recover`
/// (the manual starts) or `stop`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ManualAction {
    pub service: String,
    pub at_ms: u64,
    pub action: String,
}

/// What an event changed, for the store.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Insert or replace the incident `(service, opened_ms)`.
    Incident(Incident),
    Start(StartRecord),
    /// The start `(service, at_ms)` succeeded or not.
    StartOutcome {
        service: String,
        at_ms: u64,
        succeeded: bool,
    },
    Manual(ManualAction),
}

/// What the tracker knows of one service.
#[derive(Debug)]
struct Track {
    status: ServiceStatus,
    open: Option<Incident>,
    /// Kind of the last failed check or exit.
    last_error: Option<ErrorKind>,
    /// Whether the last start of the open incident was automatic.
    last_start_automatic: Option<bool>,
    /// The last start, until it reaches `running` or fails.
    pending_start: Option<u64>,
    /// When the service last became `running`.
    running_since: Option<u64>,
}

impl Default for Track {
    fn default() -> Self {
        Track {
            status: ServiceStatus::Unknown,
            open: None,
            last_error: None,
            last_start_automatic: None,
            pending_start: None,
            running_since: None,
        }
    }
}

/// The state machine of every service.
#[derive(Debug, Default)]
pub struct IncidentTracker {
    services: HashMap<String, Track>,
}

fn error_name(kind: ErrorKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "other".into())
}

impl IncidentTracker {
    /// Take over incidents left open by a previous supervisor. A service already
    /// `running` again closes its incident at the time it became running.
    pub fn resume(&mut self, open: Vec<Incident>) -> Vec<Change> {
        let mut changes = vec![];
        for mut incident in open {
            let track = self.services.entry(incident.service.clone()).or_default();
            if track.open.is_some() {
                continue;
            }
            match (track.status, track.running_since) {
                (ServiceStatus::Running, Some(since)) => {
                    incident.closed_ms = Some(since.max(incident.opened_ms));
                    incident.resolved_by = Some(Resolution::Auto);
                    changes.push(Change::Incident(incident));
                }
                _ => track.open = Some(incident),
            }
        }
        changes
    }

    /// The incidents open now.
    pub fn open_incidents(&self) -> Vec<&Incident> {
        self.services
            .values()
            .filter_map(|t| t.open.as_ref())
            .collect()
    }

    pub fn on_event(&mut self, e: &Event) -> Vec<Change> {
        let track = self.services.entry(e.service.clone()).or_default();
        let mut changes = vec![];
        let at = e.at_ms;
        match &e.kind {
            EventKind::Health { ok, error_kind, .. } => {
                if !ok {
                    track.last_error = error_kind.or(track.last_error);
                }
            }
            EventKind::Exited { .. } => {
                track.last_error = Some(ErrorKind::Exited);
                settle_start(track, &e.service, false, &mut changes);
                if track.status == ServiceStatus::Running && track.open.is_none() {
                    open(track, &e.service, at, &mut changes);
                }
            }
            EventKind::Started {
                action, automatic, ..
            } => {
                settle_start(track, &e.service, false, &mut changes);
                track.pending_start = Some(at);
                changes.push(Change::Start(StartRecord {
                    service: e.service.clone(),
                    at_ms: at,
                    action: action.clone(),
                    automatic: *automatic,
                    succeeded: None,
                }));
                if !automatic {
                    changes.push(Change::Manual(ManualAction {
                        service: e.service.clone(),
                        at_ms: at,
                        action: action.clone(),
                    }));
                }
                if let Some(incident) = track.open.as_mut() {
                    incident.restarts += 1;
                    track.last_start_automatic = Some(*automatic);
                    changes.push(Change::Incident(incident.clone()));
                }
            }
            EventKind::Status { from, to } => {
                track.status = *to;
                match to {
                    ServiceStatus::Running => {
                        track.running_since = Some(at);
                        settle_start(track, &e.service, true, &mut changes);
                        let how = match track.last_start_automatic {
                            Some(false) => Resolution::Human,
                            _ => Resolution::Auto,
                        };
                        close(track, at, how, &mut changes);
                    }
                    ServiceStatus::Unhealthy
                    | ServiceStatus::Backoff
                    | ServiceStatus::Escalated => {
                        settle_start(track, &e.service, false, &mut changes);
                        if *from == ServiceStatus::Running && track.open.is_none() {
                            open(track, &e.service, at, &mut changes);
                        }
                        if *to == ServiceStatus::Escalated {
                            if let Some(incident) = track.open.as_mut().filter(|i| !i.escalated) {
                                incident.escalated = true;
                                changes.push(Change::Incident(incident.clone()));
                            }
                        }
                    }
                    ServiceStatus::Stopped => {
                        settle_start(track, &e.service, false, &mut changes);
                        changes.push(Change::Manual(ManualAction {
                            service: e.service.clone(),
                            at_ms: at,
                            action: "stop".into(),
                        }));
                        close(track, at, Resolution::Stopped, &mut changes);
                    }
                    ServiceStatus::Starting | ServiceStatus::Unknown => {}
                }
            }
        }
        changes
    }
}

fn open(track: &mut Track, service: &str, at: u64, changes: &mut Vec<Change>) {
    let incident = Incident {
        service: service.to_string(),
        opened_ms: at,
        closed_ms: None,
        error_kind: track.last_error.map(error_name),
        restarts: 0,
        escalated: false,
        resolved_by: None,
    };
    track.last_start_automatic = None;
    changes.push(Change::Incident(incident.clone()));
    track.open = Some(incident);
}

fn close(track: &mut Track, at: u64, how: Resolution, changes: &mut Vec<Change>) {
    if let Some(mut incident) = track.open.take() {
        incident.closed_ms = Some(at);
        incident.resolved_by = Some(how);
        changes.push(Change::Incident(incident));
    }
    track.last_start_automatic = None;
}

/// The pending start, if any, is now known to have succeeded or failed.
fn settle_start(track: &mut Track, service: &str, succeeded: bool, changes: &mut Vec<Change>) {
    if let Some(at_ms) = track.pending_start.take() {
        changes.push(Change::StartOutcome {
            service: service.to_string(),
            at_ms,
            succeeded,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ServiceStatus::*;

    fn ev(at_ms: u64, kind: EventKind) -> Event {
        Event {
            at_ms,
            service: "a".into(),
            kind,
        }
    }
    fn status(at: u64, from: ServiceStatus, to: ServiceStatus) -> Event {
        ev(at, EventKind::Status { from, to })
    }
    fn started(at: u64, action: &str, automatic: bool) -> Event {
        ev(
            at,
            EventKind::Started {
                pid: 1,
                action: action.into(),
                automatic,
            },
        )
    }
    fn exited(at: u64) -> Event {
        ev(
            at,
            EventKind::Exited {
                reason: "killed by signal 9 (SIGKILL)".into(),
            },
        )
    }

    /// Feed events; the incidents as last written, in order of opening.
    fn run(events: &[Event]) -> (Vec<Incident>, Vec<Change>) {
        let mut t = IncidentTracker::default();
        let changes: Vec<Change> = events.iter().flat_map(|e| t.on_event(e)).collect();
        let mut incidents: Vec<Incident> = vec![];
        for c in &changes {
            if let Change::Incident(i) = c {
                match incidents.iter_mut().find(|x| x.opened_ms == i.opened_ms) {
                    Some(x) => *x = i.clone(),
                    None => incidents.push(i.clone()),
                }
            }
        }
        (incidents, changes)
    }

    fn boot() -> Vec<Event> {
        vec![
            started(0, "start", true),
            status(0, Unknown, Starting),
            status(10, Starting, Running),
        ]
    }

    #[test]
    fn crash_and_automatic_restart() {
        let mut events = boot();
        events.extend([
            exited(1000),
            status(1000, Running, Unhealthy),
            started(1001, "restart", true),
            status(1001, Unhealthy, Starting),
            status(1500, Starting, Running),
        ]);
        let (incidents, changes) = run(&events);
        assert_eq!(
            incidents,
            vec![Incident {
                service: "a".into(),
                opened_ms: 1000,
                closed_ms: Some(1500),
                error_kind: Some("exited".into()),
                restarts: 1,
                escalated: false,
                resolved_by: Some(Resolution::Auto),
            }]
        );
        let outcomes: Vec<(u64, bool)> = changes
            .iter()
            .filter_map(|c| match c {
                Change::StartOutcome {
                    at_ms, succeeded, ..
                } => Some((*at_ms, *succeeded)),
                _ => None,
            })
            .collect();
        assert_eq!(outcomes, vec![(0, true), (1001, true)]);
    }

    #[test]
    fn escalated_then_recovered_by_a_human() {
        let mut events = boot();
        events.extend([
            ev(
                2000,
                EventKind::Health {
                    ok: false,
                    latency_ms: 1.0,
                    error_kind: Some(ErrorKind::ConnectionRefused),
                },
            ),
            status(2000, Running, Unhealthy),
            started(2001, "restart", true),
            status(2001, Unhealthy, Starting),
            status(3000, Starting, Escalated),
            started(9000, "recover", false),
            status(9000, Escalated, Starting),
            status(9100, Starting, Running),
        ]);
        let (incidents, changes) = run(&events);
        assert_eq!(incidents.len(), 1);
        let i = &incidents[0];
        assert_eq!(i.error_kind.as_deref(), Some("connection_refused"));
        assert_eq!((i.restarts, i.escalated), (2, true));
        assert_eq!(i.resolved_by, Some(Resolution::Human));
        assert_eq!(i.duration_ms(0), 7100);
        assert!(changes.contains(&Change::StartOutcome {
            service: "a".into(),
            at_ms: 2001,
            succeeded: false
        }));
        assert!(changes
            .iter()
            .any(|c| matches!(c, Change::Manual(m) if m.action == "recover" && m.at_ms == 9000)));
    }

    #[test]
    fn manual_stop_and_start_are_not_incidents() {
        let mut events = boot();
        events.extend([
            status(5000, Running, Stopped),
            started(6000, "start", false),
            status(6000, Stopped, Starting),
            status(6100, Starting, Running),
        ]);
        let (incidents, changes) = run(&events);
        assert!(incidents.is_empty());
        let manual: Vec<&str> = changes
            .iter()
            .filter_map(|c| match c {
                Change::Manual(m) => Some(m.action.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(manual, ["stop", "start"]);
    }

    #[test]
    fn a_service_that_never_ran_opens_no_incident() {
        let (incidents, _) = run(&[
            started(0, "start", true),
            status(0, Unknown, Starting),
            status(10_000, Starting, Unhealthy),
        ]);
        assert!(incidents.is_empty());
    }

    #[test]
    fn stop_during_an_incident_closes_it_as_stopped() {
        let mut events = boot();
        events.extend([status(100, Running, Backoff), status(200, Backoff, Stopped)]);
        let (incidents, _) = run(&events);
        assert_eq!(incidents[0].resolved_by, Some(Resolution::Stopped));
        assert_eq!(incidents[0].closed_ms, Some(200));
    }

    #[test]
    fn resume_keeps_or_closes_leftover_incidents() {
        let leftover = Incident {
            service: "a".into(),
            opened_ms: 0,
            closed_ms: None,
            error_kind: None,
            restarts: 0,
            escalated: false,
            resolved_by: None,
        };
        // Still down when read: the incident goes on and closes when it runs.
        let mut t = IncidentTracker::default();
        assert!(t.resume(vec![leftover.clone()]).is_empty());
        let changes: Vec<Change> = boot().iter().flat_map(|e| t.on_event(e)).collect();
        assert!(changes.iter().any(|c| matches!(c,
            Change::Incident(i) if i.closed_ms == Some(10) && i.resolved_by == Some(Resolution::Auto))));
        // Already running when read: closed at the time it became running.
        let mut t = IncidentTracker::default();
        for e in boot() {
            t.on_event(&e);
        }
        let changes = t.resume(vec![leftover]);
        assert!(matches!(&changes[..], [Change::Incident(i)] if i.closed_ms == Some(10)));
        assert!(t.open_incidents().is_empty());
    }
}

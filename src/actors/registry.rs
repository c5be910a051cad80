//! The Registry actor: the one source of truth for every service's record.
//!
//! Service actors report facts (started, checked, exited, stopped), Recovery
//! reports its decisions and counters; the Registry folds them into records,
//! persists them atomically (at once on a status change, debounced otherwise)
//! and answers status queries from its own snapshot, so `status` never waits on
//! a service actor.

use crate::model::{
    now_rfc3339, unix_ms, ErrorKind, Event, EventKind, ExitReason, KillSwitch, Limits, ProcessId,
    ServiceRecord, ServiceStatus, Summary, RECENT_EXITS,
};
use crate::persist::{self, StateFile};
use crate::protocol::StatusReport;
use actix::prelude::*;
use log::{debug, error};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::audit::{Audit, StorageFailed, StorageRecovered};
use super::service::StartCause;
use crate::persist::StateWriter;

const TARGET: &str = "registry";
/// How long a non-status change (the time and latency of the last check, an
/// error text, a counter) may wait before it is written. A status change is
/// written at once. Each write costs two fsyncs — about 6 ms of CPU on a small
/// VM — so with 1 s checks this bounds the writes to one per 5 s rather than
/// one per check interval.
const DEBOUNCE: Duration = Duration::from_secs(5);

// ---- messages the Registry receives -------------------------------------------

/// A service process was spawned.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct ServiceStarted {
    pub service: String,
    pub process: ProcessId,
    pub cause: StartCause,
}

/// A health check finished.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct HealthChecked {
    pub service: String,
    pub ok: bool,
    pub latency: Duration,
    pub error: Option<(ErrorKind, String)>,
}

/// A service process exited on its own.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct ServiceExited {
    pub service: String,
    pub reason: ExitReason,
}

/// A service is down on purpose (after a stop, or never started).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct ServiceStopped {
    pub service: String,
    /// A human's `stop`: remembered in the record (`held_stopped`).
    pub by_hand: bool,
}

/// A start could not even spawn the process (spawn error, port conflict).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct StartFailed {
    pub service: String,
    pub kind: ErrorKind,
    pub message: String,
}

/// Recovery's view changed: counters, and possibly a status it decided.
#[derive(Message, Debug, Default)]
#[rtype(result = "()")]
pub struct RecoveryChanged {
    pub service: String,
    pub restart_attempts: u32,
    pub consecutive_failures: u32,
    /// `Backoff`, `Escalated` or `Unhealthy` when a decision set it.
    pub status: Option<ServiceStatus>,
    pub next_restart_at: Option<SystemTime>,
}

/// A human acted on an escalated service (`start`, `stop`, `restart`,
/// `recover`): the escalation is over, and its status follows its process
/// again — `running` if it is up and its last check passed, else `unhealthy`
/// until a start, a stop or a check says more.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct EscalationLifted {
    pub service: String,
}

/// The effective kill switch, for status answers.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct KillSwitchChanged(pub KillSwitch);

/// Records for `status`; `Err` lists the names that are not configured.
#[derive(Message, Debug)]
#[rtype(result = "Result<StatusReport, Vec<String>>")]
pub struct GetStatus {
    pub services: Vec<String>,
}

/// Be told of every status change.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Subscribe(pub Recipient<StatusChanged>);

/// Sent to subscribers when a service's status changes.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct StatusChanged {
    pub service: String,
    pub status: ServiceStatus,
}

/// Be told of every event (history, dashboard, `events`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SubscribeEvents(pub Recipient<Published>);

/// Stop being told of events (a client of the event stream went away).
/// Subscribers whose actor has stopped are dropped anyway at the next event.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UnsubscribeEvents(pub Recipient<Published>);

/// An event, sent to event subscribers.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Published(pub Arc<Event>);

/// A service was added by a reload (its record, status `stopped` until started).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct AddService(pub ServiceRecord);

/// A service was removed by a reload.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct RemoveService(pub String);

/// A reload changed how a service is shown or limited.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct UpdateMeta {
    pub service: String,
    pub display_name: String,
    pub port: Option<u16>,
    pub limits: Limits,
}

/// Write the state file now; answers once it is on disk (before a manual
/// command is answered, and at shutdown).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Flush;

/// Persist once the messages already queued are handled (sent to self).
#[derive(Message, Debug)]
#[rtype(result = "()")]
struct PersistNow;

// ---- the actor ----------------------------------------------------------------

pub struct Registry {
    state_path: PathBuf,
    /// In config order.
    records: Vec<ServiceRecord>,
    index: HashMap<String, usize>,
    /// Monotonic start of each running process, for uptime.
    started: HashMap<String, Instant>,
    /// Whether the current process passed its last check, for a lifted escalation.
    last_check_ok: HashMap<String, bool>,
    kill_switch: KillSwitch,
    subscribers: Vec<Recipient<StatusChanged>>,
    event_subscribers: Vec<Recipient<Published>>,
    flush_timer: Option<SpawnHandle>,
    /// A `PersistNow` is queued.
    persist_queued: bool,
    /// Writes the state file off the actor thread.
    writer: Option<StateWriter>,
}

impl Registry {
    pub fn new(state_path: PathBuf, records: Vec<ServiceRecord>, kill_switch: KillSwitch) -> Self {
        let index = records
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.clone(), i))
            .collect();
        Registry {
            state_path,
            records,
            index,
            started: HashMap::new(),
            last_check_ok: HashMap::new(),
            kill_switch,
            subscribers: vec![],
            event_subscribers: vec![],
            flush_timer: None,
            persist_queued: false,
            writer: None,
        }
    }

    /// Write the state file on a thread of its own, reporting failures (once)
    /// and recoveries to `audit`. Without this the Registry writes inline.
    pub fn with_writer(mut self, audit: Option<Addr<Audit>>) -> Self {
        let what = self.state_path.display().to_string();
        let writer = StateWriter::spawn(self.state_path.clone(), move |r| {
            let what = what.clone();
            match r {
                Err(error) => {
                    error!(target: TARGET, "cannot write {what}: {error}");
                    if let Some(a) = &audit {
                        a.do_send(StorageFailed { what, error });
                    }
                }
                Ok(()) => {
                    if let Some(a) = &audit {
                        a.do_send(StorageRecovered { what });
                    }
                }
            }
        });
        match writer {
            Ok(w) => self.writer = Some(w),
            Err(e) => error!(target: TARGET, "no state-writer thread ({e}); writing inline"),
        }
        self
    }

    fn snapshot(&self, r: &ServiceRecord) -> ServiceRecord {
        let mut r = r.clone();
        let up = self
            .started
            .get(&r.name)
            .filter(|_| r.pid.is_some())
            .map(|t| t.elapsed().as_millis() as u64)
            .unwrap_or(0);
        r.uptime = up;
        r.uptime_ms = up;
        r
    }

    /// The state file's content: every record as of now.
    fn encode(&self) -> Vec<u8> {
        let file: StateFile = self
            .records
            .iter()
            .map(|r| (r.name.clone(), self.snapshot(r)))
            .collect();
        persist::encode_state(&file)
    }

    /// Hand the current records to the writer.
    fn persist(&mut self) {
        let bytes = self.encode();
        match &self.writer {
            Some(w) => w.submit(bytes),
            None => {
                if let Err(e) = persist::write_atomic(&self.state_path, &bytes) {
                    error!(target: TARGET, "cannot write {}: {e}", self.state_path.display());
                }
            }
        }
    }

    /// Persist after the messages already queued: a burst of changes (a
    /// restart storm) is written once, and still "at once" for a reader.
    fn persist_next(&mut self, ctx: &mut Context<Self>) {
        if !self.persist_queued {
            self.persist_queued = true;
            ctx.notify(PersistNow);
        }
    }

    /// Persist within the debounce delay (for changes that are not a status).
    fn persist_later(&mut self, ctx: &mut Context<Self>) {
        if self.flush_timer.is_none() && !self.persist_queued {
            self.flush_timer = Some(ctx.run_later(DEBOUNCE, |act, ctx| {
                act.flush_timer = None;
                act.persist_next(ctx);
            }));
        }
    }

    fn publish(&mut self, service: &str, kind: EventKind) {
        self.event_subscribers.retain(|s| s.connected());
        if self.event_subscribers.is_empty() {
            return;
        }
        let event = Arc::new(Event {
            at_ms: unix_ms(),
            service: service.to_string(),
            kind,
        });
        for s in &self.event_subscribers {
            s.do_send(Published(event.clone()));
        }
    }

    /// Apply `change` to one record; persist at once if the status changed.
    fn update(
        &mut self,
        service: &str,
        ctx: &mut Context<Self>,
        change: impl FnOnce(&mut ServiceRecord, &mut HashMap<String, Instant>),
    ) {
        let Some(&i) = self.index.get(service) else {
            debug!(target: TARGET, "fact about unknown service {service} ignored");
            return;
        };
        let before = self.records[i].status;
        change(&mut self.records[i], &mut self.started);
        let after = self.records[i].status;
        if before != after {
            debug!(target: TARGET, "{service}: {before} -> {after}");
            self.persist_next(ctx);
            self.publish(
                service,
                EventKind::Status {
                    from: before,
                    to: after,
                },
            );
            let msg = StatusChanged {
                service: service.to_string(),
                status: after,
            };
            for s in &self.subscribers {
                s.do_send(msg.clone());
            }
        } else {
            self.persist_later(ctx);
        }
    }
}

impl Actor for Registry {
    type Context = Context<Self>;
    fn started(&mut self, _: &mut Context<Self>) {
        self.persist();
    }
}

impl Handler<ServiceStarted> for Registry {
    type Result = ();
    fn handle(&mut self, m: ServiceStarted, ctx: &mut Context<Self>) {
        self.last_check_ok.remove(&m.service);
        self.publish(
            &m.service,
            EventKind::Started {
                pid: m.process.pid,
                action: m.cause.action().to_string(),
                automatic: m.cause.is_automatic(),
            },
        );
        self.update(&m.service, ctx, |r, started| {
            r.pid = Some(m.process.pid);
            r.process_start_time = Some(m.process.start_time);
            r.started_at = Some(now_rfc3339());
            r.next_restart_at = None;
            started.insert(r.name.clone(), Instant::now());
            if !m.cause.is_automatic() {
                r.held_stopped = false;
            }
            if m.cause.counts_as_restart() {
                r.restart_count += 1;
            }
            // An escalation stays until a human acts; every human start lifts it.
            if r.status != ServiceStatus::Escalated || !m.cause.is_automatic() {
                r.status = ServiceStatus::Starting;
            }
        });
    }
}

impl Handler<HealthChecked> for Registry {
    type Result = ();
    fn handle(&mut self, m: HealthChecked, ctx: &mut Context<Self>) {
        self.last_check_ok.insert(m.service.clone(), m.ok);
        self.publish(
            &m.service,
            EventKind::Health {
                ok: m.ok,
                latency_ms: m.latency.as_secs_f64() * 1000.0,
                error_kind: m.error.as_ref().map(|e| e.0),
            },
        );
        self.update(&m.service, ctx, |r, _| {
            r.last_health_check = Some(now_rfc3339());
            r.last_health_latency_ms = Some(m.latency.as_secs_f64() * 1000.0);
            if m.ok {
                if matches!(
                    r.status,
                    ServiceStatus::Starting
                        | ServiceStatus::Unhealthy
                        | ServiceStatus::Backoff
                        | ServiceStatus::Unknown
                ) {
                    r.status = ServiceStatus::Running;
                    r.next_restart_at = None;
                }
            } else {
                if let Some((kind, msg)) = m.error {
                    r.last_error = Some(msg);
                    r.last_error_kind = Some(kind);
                }
                if r.status == ServiceStatus::Running {
                    r.status = ServiceStatus::Unhealthy;
                }
            }
        });
    }
}

impl Handler<ServiceExited> for Registry {
    type Result = ();
    fn handle(&mut self, m: ServiceExited, ctx: &mut Context<Self>) {
        self.last_check_ok.remove(&m.service);
        self.publish(
            &m.service,
            EventKind::Exited {
                reason: m.reason.to_string(),
            },
        );
        self.update(&m.service, ctx, |r, started| {
            started.remove(&r.name);
            r.pid = None;
            r.process_start_time = None;
            r.started_at = None;
            r.last_exit = Some(m.reason.to_string());
            r.recent_exits
                .push(format!("{} {}", now_rfc3339(), m.reason));
            if r.recent_exits.len() > RECENT_EXITS {
                r.recent_exits.remove(0);
            }
            r.last_error = Some(m.reason.to_string());
            r.last_error_kind = Some(ErrorKind::Exited);
            if !matches!(r.status, ServiceStatus::Escalated | ServiceStatus::Backoff) {
                r.status = ServiceStatus::Unhealthy;
            }
        });
    }
}

impl Handler<ServiceStopped> for Registry {
    type Result = ();
    fn handle(&mut self, m: ServiceStopped, ctx: &mut Context<Self>) {
        self.last_check_ok.remove(&m.service);
        self.update(&m.service, ctx, |r, started| {
            started.remove(&r.name);
            r.pid = None;
            r.process_start_time = None;
            r.started_at = None;
            r.next_restart_at = None;
            r.status = ServiceStatus::Stopped;
            if m.by_hand {
                r.held_stopped = true;
            }
        });
    }
}

impl Handler<StartFailed> for Registry {
    type Result = ();
    fn handle(&mut self, m: StartFailed, ctx: &mut Context<Self>) {
        self.update(&m.service, ctx, |r, _| {
            r.last_error = Some(m.message);
            r.last_error_kind = Some(m.kind);
            if !matches!(r.status, ServiceStatus::Escalated | ServiceStatus::Backoff) {
                r.status = ServiceStatus::Unhealthy;
            }
        });
    }
}

impl Handler<RecoveryChanged> for Registry {
    type Result = ();
    fn handle(&mut self, m: RecoveryChanged, ctx: &mut Context<Self>) {
        self.update(&m.service, ctx, |r, _| {
            r.restart_attempts = m.restart_attempts;
            r.consecutive_failures = m.consecutive_failures;
            if let Some(s) = m.status {
                r.status = s;
            }
            r.next_restart_at = m
                .next_restart_at
                .map(|t| humantime::format_rfc3339_millis(t).to_string());
        });
    }
}

impl Handler<EscalationLifted> for Registry {
    type Result = ();
    fn handle(&mut self, m: EscalationLifted, ctx: &mut Context<Self>) {
        let passing = self.last_check_ok.get(&m.service) == Some(&true);
        self.update(&m.service, ctx, |r, _| {
            // A start or stop may have said more already: only an escalated
            // status is replaced.
            if r.status == ServiceStatus::Escalated {
                r.status = if r.pid.is_some() && passing {
                    ServiceStatus::Running
                } else {
                    ServiceStatus::Unhealthy
                };
            }
        });
    }
}

impl Handler<KillSwitchChanged> for Registry {
    type Result = ();
    fn handle(&mut self, m: KillSwitchChanged, _: &mut Context<Self>) {
        self.kill_switch = m.0;
    }
}

impl Handler<GetStatus> for Registry {
    type Result = Result<StatusReport, Vec<String>>;
    fn handle(&mut self, m: GetStatus, _: &mut Context<Self>) -> Self::Result {
        let services: Vec<ServiceRecord> = if m.services.is_empty() {
            self.records.iter().map(|r| self.snapshot(r)).collect()
        } else {
            let unknown: Vec<String> = m
                .services
                .iter()
                .filter(|n| !self.index.contains_key(n.as_str()))
                .cloned()
                .collect();
            if !unknown.is_empty() {
                return Err(unknown);
            }
            m.services
                .iter()
                .map(|n| self.snapshot(&self.records[self.index[n.as_str()]]))
                .collect()
        };
        let summary = Summary::of(&services);
        Ok(StatusReport {
            services,
            kill_switch: self.kill_switch,
            summary,
        })
    }
}

impl Handler<Subscribe> for Registry {
    type Result = ();
    fn handle(&mut self, m: Subscribe, _: &mut Context<Self>) {
        self.subscribers.push(m.0);
    }
}

impl Handler<SubscribeEvents> for Registry {
    type Result = ();
    fn handle(&mut self, m: SubscribeEvents, _: &mut Context<Self>) {
        self.event_subscribers.push(m.0);
    }
}

impl Handler<UnsubscribeEvents> for Registry {
    type Result = ();
    fn handle(&mut self, m: UnsubscribeEvents, _: &mut Context<Self>) {
        self.event_subscribers.retain(|s| *s != m.0);
    }
}

impl Handler<AddService> for Registry {
    type Result = ();
    fn handle(&mut self, m: AddService, _: &mut Context<Self>) {
        if self.index.contains_key(&m.0.name) {
            return;
        }
        self.index.insert(m.0.name.clone(), self.records.len());
        self.records.push(m.0);
        self.persist();
    }
}

impl Handler<RemoveService> for Registry {
    type Result = ();
    fn handle(&mut self, m: RemoveService, _: &mut Context<Self>) {
        if self.index.remove(&m.0).is_none() {
            return;
        }
        self.records.retain(|r| r.name != m.0);
        self.started.remove(&m.0);
        self.index = self
            .records
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.clone(), i))
            .collect();
        self.persist();
    }
}

impl Handler<UpdateMeta> for Registry {
    type Result = ();
    fn handle(&mut self, m: UpdateMeta, ctx: &mut Context<Self>) {
        self.update(&m.service.clone(), ctx, |r, _| {
            r.display_name = m.display_name;
            r.port = m.port;
            r.limits = Some(m.limits);
        });
    }
}

impl Handler<PersistNow> for Registry {
    type Result = ();
    fn handle(&mut self, _: PersistNow, ctx: &mut Context<Self>) {
        self.persist_queued = false;
        if let Some(h) = self.flush_timer.take() {
            ctx.cancel_future(h);
        }
        self.persist();
    }
}

impl Handler<Flush> for Registry {
    type Result = ResponseFuture<()>;
    fn handle(&mut self, _: Flush, ctx: &mut Context<Self>) -> Self::Result {
        if let Some(h) = self.flush_timer.take() {
            ctx.cancel_future(h);
        }
        let bytes = self.encode();
        match &self.writer {
            Some(w) => {
                let done = w.submit_acked(bytes);
                Box::pin(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(10), done).await;
                })
            }
            None => {
                if let Err(e) = persist::write_atomic(&self.state_path, &bytes) {
                    error!(target: TARGET, "cannot write {}: {e}", self.state_path.display());
                }
                Box::pin(async {})
            }
        }
    }
}

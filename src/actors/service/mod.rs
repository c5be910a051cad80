//! The ServiceActor: one per service. It owns the service's child process
//! (spawned in its own process group, output to its log file), the future that
//! resolves when the child exits, and its health probes. It knows *how* to
//! start, stop and check; it never decides *whether* to restart: every fact goes
//! to the Registry, every failure to Recovery.
//!
//! Child exits, timer ticks and probe results come back as messages to the actor
//! itself, so each state change passes through exactly one handler. A
//! `generation` number, bumped at every spawn, makes late messages about an
//! older process harmless.

mod cause;
mod port_free;

pub use cause::StartCause;

use super::audit::{Audit, Outcome, Record};
use super::recovery::{Failed, Healthy, Recovery};
use super::registry::{
    HealthChecked, Registry, ServiceExited, ServiceStarted, ServiceStopped, StartFailed,
};
use crate::config::ServiceSpec;
use crate::health::{Probe, ProbeOutcome};
use crate::model::{ErrorKind, ExitReason, ProcessId};
use crate::process::{group, pidfd, port, procfs, reaper, spawn};
use crate::timer;
use actix::clock::Instant;
use actix::prelude::*;
use log::{debug, info, warn};
use nix::sys::signal::Signal;
use std::future::Future;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// First delay between probes while a service is starting; doubled each time.
const FIRST_START_PROBE: Duration = Duration::from_millis(1);
/// For this long after a spawn, a refused connection is retried every
/// [`START_STEP`] rather than on the millisecond timer, so a service that is
/// up in under a millisecond is seen running within a fraction of one.
const START_SPIN: Duration = Duration::from_millis(3);
/// The step of those early probes. Not zero: a busy loop of connects would take
/// the CPU the starting service needs (on a small machine, the same core).
const START_STEP: Duration = Duration::from_micros(250);
/// Longest delay between probes while starting (never more than the interval).
const MAX_START_PROBE: Duration = Duration::from_millis(200);

/// The answer to a start: the new (or already running) pid, or why not.
pub type StartReply = Result<Option<u32>, String>;

// ---- orders the ServiceActor receives -------------------------------------------

/// Start the service if it is not running.
#[derive(Message, Debug)]
#[rtype(result = "StartReply")]
pub struct Start {
    pub cause: StartCause,
    /// Stop a foreign process holding the service's port first.
    pub free_port: bool,
}

/// Stop the service (stop signal to the group, SIGKILL after `stop_timeout`);
/// answers once no process of the group is left.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Stop {
    /// A human's `stop`: the service stays stopped, even across supervisor
    /// restarts, until a human starts it.
    pub by_hand: bool,
}

/// Graceful stop (if running), then start.
#[derive(Message, Debug)]
#[rtype(result = "StartReply")]
pub struct Restart {
    pub cause: StartCause,
    pub free_port: bool,
}

/// Take over a process a previous supervisor left running (already checked to
/// be ours: same pid and start time). Answers whether it was adopted; if not,
/// the caller starts the service afresh.
#[derive(Message, Debug)]
#[rtype(result = "bool")]
pub struct Adopt(pub ProcessId);

/// Give a timed-out check a second chance: the next probe runs after the
/// interval with a doubled timeout, and its failure is counted.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Recheck;

/// `reload`: take a new definition. Health and stop settings apply at once; a
/// changed command, cwd, environment or port restarts a running process.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Reconfigure(pub Arc<ServiceSpec>);

// ---- facts the actor sends itself -----------------------------------------------

#[derive(Message, Debug)]
#[rtype(result = "()")]
struct ChildExited {
    generation: u64,
    reason: ExitReason,
}

#[derive(Message, Debug)]
#[rtype(result = "()")]
struct ProbeDue {
    generation: u64,
}

#[derive(Message, Debug)]
#[rtype(result = "()")]
struct ProbeDone {
    generation: u64,
    outcome: ProbeOutcome,
    recheck: bool,
}

#[derive(Message, Debug)]
#[rtype(result = "()")]
struct StartDeadline {
    generation: u64,
}

#[derive(Message, Debug)]
#[rtype(result = "()")]
struct StopDeadline {
    generation: u64,
}

// ---- state ------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the first passing check; failed checks are not counted.
    Starting,
    /// Passed a check, or `start_timeout` ran out: every failure counts.
    Started,
}

#[derive(Debug, Clone, Copy)]
struct Running {
    id: ProcessId,
    cause: StartCause,
    /// When the start was asked for (the audit line's duration).
    ordered_at: Instant,
    phase: Phase,
}

#[derive(Debug)]
enum Proc {
    Down,
    /// Stopping a foreign holder of the port before a start.
    FreeingPort,
    Up(Running),
    Stopping {
        run: Running,
        since: Instant,
        killed: bool,
    },
}

/// Timers and in-flight work tied to the current process.
#[derive(Default)]
struct Handles {
    probe_timer: Option<SpawnHandle>,
    /// The probe in flight: a task of its own (see [`ServiceActor::watch`]).
    probe: Option<tokio::task::JoinHandle<()>>,
    start_deadline: Option<SpawnHandle>,
    stop_deadline: Option<SpawnHandle>,
}

pub struct ServiceActor {
    spec: Arc<ServiceSpec>,
    /// The log target, `service::<name>`.
    target: String,
    /// Where the process's stdout and stderr go: its log FIFO, or its log file.
    output: PathBuf,
    registry: Addr<Registry>,
    recovery: Addr<Recovery>,
    audit: Addr<Audit>,
    probe: Probe,
    proc_: Proc,
    generation: u64,
    /// False after a stop: exits are then expected and restarts refused.
    wanted_up: bool,
    /// The stop in progress was a human's.
    stop_by_hand: bool,
    /// A start to make once the current process is down.
    after_stop: Option<(StartCause, bool)>,
    spawn_waiters: Vec<oneshot::Sender<StartReply>>,
    stop_waiters: Vec<oneshot::Sender<()>>,
    handles: Handles,
    /// The next probe is the second chance of a timed-out one.
    recheck: bool,
    /// The last check result reported, for audit lines on change.
    last_ok: Option<bool>,
    start_probe_delay: Duration,
}

impl ServiceActor {
    pub fn new(
        spec: Arc<ServiceSpec>,
        output: PathBuf,
        registry: Addr<Registry>,
        recovery: Addr<Recovery>,
        audit: Addr<Audit>,
    ) -> Self {
        let probe = Probe::new(&spec.health, &spec.cwd, &spec.env);
        ServiceActor {
            target: format!("service::{}", spec.name),
            spec,
            output,
            registry,
            recovery,
            audit,
            probe,
            proc_: Proc::Down,
            generation: 0,
            wanted_up: false,
            stop_by_hand: false,
            after_stop: None,
            spawn_waiters: vec![],
            stop_waiters: vec![],
            handles: Handles::default(),
            recheck: false,
            last_ok: None,
            start_probe_delay: FIRST_START_PROBE,
        }
    }

    fn name(&self) -> &str {
        &self.spec.name
    }

    fn record(&self, action: &'static str, outcome: Outcome) -> Record {
        Record::new(&self.spec.name, action, outcome)
    }

    fn resolve_spawn_waiters(&mut self, reply: StartReply) {
        for w in self.spawn_waiters.drain(..) {
            let _ = w.send(reply.clone());
        }
    }

    fn cancel_handles(&mut self, ctx: &mut Context<Self>) {
        let h = std::mem::take(&mut self.handles);
        if let Some(probe) = h.probe {
            probe.abort();
        }
        for handle in [h.probe_timer, h.start_deadline, h.stop_deadline]
            .into_iter()
            .flatten()
        {
            ctx.cancel_future(handle);
        }
    }

    /// Start now (the process is down): free the port if asked, spawn, arm the
    /// start deadline and the first probe.
    fn launch(&mut self, cause: StartCause, free_port: bool, ctx: &mut Context<Self>) {
        let ordered_at = Instant::now();
        if let Some(p) = self.spec.port.filter(|p| !port::bindable(*p)) {
            let me = std::process::id();
            let holders: Vec<_> = port::holders(p)
                .into_iter()
                .filter(|h| h.pid != me)
                .collect();
            if !holders.is_empty() {
                if free_port {
                    self.free_port(p, holders, cause, ordered_at, ctx);
                } else {
                    let msg = format!("port {p} held by {}", holders[0]);
                    self.start_failed(cause, ErrorKind::PortConflict, msg, ordered_at);
                }
                return;
            }
        }
        match self.spec.port {
            Some(p) => println!("🚀 Starting {} on port {p}...", self.spec.display_name),
            None => println!("🚀 Starting {}...", self.spec.display_name),
        }
        let spawn::Spawned { child, id } = match spawn::spawn(&self.spec, &self.output) {
            Ok(s) => s,
            Err(e) => {
                let msg = format!("cannot run {}: {e}", self.spec.program.display());
                self.start_failed(cause, ErrorKind::SpawnFailed, msg, ordered_at);
                return;
            }
        };
        info!(target: &self.target, "spawned pid {} ({cause})", id.pid);
        let pid = id.pid;
        let mut child = child;
        let exited = Box::pin(async move {
            let status = child.wait().await;
            reaper::untrack(pid);
            match status {
                Ok(s) => match (s.code(), s.signal()) {
                    (Some(c), _) => ExitReason::Code(c),
                    (None, Some(sig)) => ExitReason::Signal(sig),
                    (None, None) => ExitReason::Code(-1),
                },
                Err(_) => ExitReason::Code(-1),
            }
        });
        self.watch(id, cause, ordered_at, exited, ctx);
    }

    /// Take charge of a live process: report it, wait for its exit, arm the
    /// start deadline and the first probe.
    fn watch(
        &mut self,
        id: ProcessId,
        cause: StartCause,
        ordered_at: Instant,
        exit: Pin<Box<dyn Future<Output = ExitReason>>>,
        ctx: &mut Context<Self>,
    ) {
        self.generation += 1;
        let generation = self.generation;
        self.proc_ = Proc::Up(Running {
            id,
            cause,
            ordered_at,
            phase: Phase::Starting,
        });
        self.last_ok = None;
        self.recheck = false;
        self.start_probe_delay = FIRST_START_PROBE;
        self.registry.do_send(ServiceStarted {
            service: self.spec.name.clone(),
            process: id,
            cause,
        });
        self.resolve_spawn_waiters(Ok(Some(id.pid)));
        // The exit and the probes are tasks of their own that report back by
        // message: a future spawned in the actor's context is polled again on
        // every wake-up of the actor (every message, every timer), which at a
        // thousand services is a measurable share of the supervisor's CPU.
        let me = ctx.address();
        actix::spawn(async move {
            let reason = exit.await;
            me.do_send(ChildExited { generation, reason });
        });
        self.handles.start_deadline =
            Some(ctx.notify_later(StartDeadline { generation }, self.spec.start_timeout));
        if cause == StartCause::Adopt {
            // Already running for a while: check it now.
            ctx.notify(ProbeDue { generation });
        } else {
            // Just exec'd: it cannot be listening yet.
            self.probe_after_step(ctx);
        }
    }

    /// A start that could not spawn a process.
    fn start_failed(
        &mut self,
        cause: StartCause,
        kind: ErrorKind,
        msg: String,
        ordered_at: Instant,
    ) {
        warn!(target: &self.target, "{} failed: {msg}", cause.action());
        self.audit.do_send(
            self.record(cause.action(), Outcome::Failure)
                .took(ordered_at.elapsed())
                .detail(msg.clone()),
        );
        self.registry.do_send(StartFailed {
            service: self.spec.name.clone(),
            kind,
            message: msg.clone(),
        });
        self.resolve_spawn_waiters(Err(msg.clone()));
        if self.wanted_up {
            self.recovery.do_send(Failed {
                service: self.spec.name.clone(),
                kind,
                message: msg,
                recheckable: false,
            });
        }
    }

    fn schedule_probe(&mut self, delay: Duration, ctx: &mut Context<Self>) {
        if let Some(h) = self.handles.probe_timer.take() {
            ctx.cancel_future(h);
        }
        let generation = self.generation;
        self.handles.probe_timer = Some(ctx.notify_later(ProbeDue { generation }, delay));
    }

    /// Probe again after [`START_STEP`] (a precise timer, not tokio's).
    fn probe_after_step(&mut self, ctx: &mut Context<Self>) {
        if let Some(h) = self.handles.probe_timer.take() {
            ctx.cancel_future(h);
        }
        let generation = self.generation;
        let due = timer::sleep(START_STEP)
            .into_actor(self)
            .map(move |(), _, ctx| ctx.notify(ProbeDue { generation }));
        self.handles.probe_timer = Some(ctx.spawn(due));
    }

    /// Send the stop signal to the group and arm the SIGKILL deadline.
    fn begin_stop(&mut self, run: Running, ctx: &mut Context<Self>) {
        self.cancel_handles(ctx);
        info!(target: &self.target, "stopping pid {} with {}", run.id.pid, self.spec.stop_signal);
        if !group::signal_group(run.id.pid, self.spec.stop_signal) {
            debug!(target: &self.target, "group {} already gone", run.id.pid);
        }
        self.proc_ = Proc::Stopping {
            run,
            since: Instant::now(),
            killed: false,
        };
        let generation = self.generation;
        self.handles.stop_deadline =
            Some(ctx.notify_later(StopDeadline { generation }, self.spec.stop_timeout));
    }

    fn reply_later<T: 'static>(rx: oneshot::Receiver<T>, gone: T) -> ResponseFuture<T> {
        Box::pin(async move { rx.await.unwrap_or(gone) })
    }
}

impl Actor for ServiceActor {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Context<Self>) {
        // The actor goes away only at the very end (or on reload removal, after
        // a Stop); make sure no process of ours is left behind regardless.
        if let Proc::Up(run) | Proc::Stopping { run, .. } = &self.proc_ {
            group::signal_group(run.id.pid, Signal::SIGKILL);
        }
    }
}

impl Handler<Start> for ServiceActor {
    type Result = ResponseFuture<StartReply>;
    fn handle(&mut self, m: Start, ctx: &mut Context<Self>) -> Self::Result {
        self.wanted_up = true;
        let (tx, rx) = oneshot::channel();
        match &self.proc_ {
            Proc::Up(run) => {
                let _ = tx.send(Ok(Some(run.id.pid)));
            }
            Proc::Stopping { .. } => {
                self.after_stop = Some((m.cause, m.free_port));
                self.spawn_waiters.push(tx);
            }
            Proc::FreeingPort => self.spawn_waiters.push(tx),
            Proc::Down => {
                self.spawn_waiters.push(tx);
                self.launch(m.cause, m.free_port, ctx);
            }
        }
        Self::reply_later(rx, Err("service actor is gone".into()))
    }
}

impl Handler<Restart> for ServiceActor {
    type Result = ResponseFuture<StartReply>;
    fn handle(&mut self, m: Restart, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        if m.cause.is_automatic() && !self.wanted_up {
            debug!(target: &self.target, "automatic restart refused: stopped on purpose");
            let _ = tx.send(Err(format!("{} was stopped on purpose", self.name())));
            return Self::reply_later(rx, Err(String::new()));
        }
        self.wanted_up = true;
        self.spawn_waiters.push(tx);
        match std::mem::replace(&mut self.proc_, Proc::Down) {
            Proc::Up(run) => {
                self.after_stop = Some((m.cause, m.free_port));
                self.begin_stop(run, ctx);
            }
            stopping @ Proc::Stopping { .. } => {
                self.proc_ = stopping;
                self.after_stop = Some((m.cause, m.free_port));
            }
            Proc::FreeingPort => self.proc_ = Proc::FreeingPort,
            Proc::Down => self.launch(m.cause, m.free_port, ctx),
        }
        Self::reply_later(rx, Err("service actor is gone".into()))
    }
}

impl Handler<Stop> for ServiceActor {
    type Result = ResponseFuture<()>;
    fn handle(&mut self, m: Stop, ctx: &mut Context<Self>) -> Self::Result {
        self.wanted_up = false;
        self.stop_by_hand = m.by_hand;
        self.after_stop = None;
        self.resolve_spawn_waiters(Err(format!("{} was stopped", self.spec.name)));
        let (tx, rx) = oneshot::channel();
        match std::mem::replace(&mut self.proc_, Proc::Down) {
            Proc::Up(run) => {
                self.stop_waiters.push(tx);
                self.begin_stop(run, ctx);
            }
            stopping @ Proc::Stopping { .. } => {
                self.proc_ = stopping;
                self.stop_waiters.push(tx);
            }
            other => {
                // Down, or freeing a port (the start is abandoned when that ends).
                self.proc_ = other;
                self.cancel_handles(ctx);
                self.registry.do_send(ServiceStopped {
                    service: self.spec.name.clone(),
                    by_hand: m.by_hand,
                });
                let _ = tx.send(());
            }
        }
        Self::reply_later(rx, ())
    }
}

impl Handler<Adopt> for ServiceActor {
    type Result = bool;
    fn handle(&mut self, m: Adopt, ctx: &mut Context<Self>) -> bool {
        if !matches!(self.proc_, Proc::Down) {
            return false;
        }
        let id = m.0;
        // pidfd first, identity second: if the pid was recycled in between, the
        // check fails and the fd is dropped unused.
        let fd = match pidfd::open(id.pid) {
            Ok(fd) if procfs::is_same_process(id) => fd,
            Ok(_) => return false,
            Err(e) => {
                warn!(target: &self.target, "cannot watch pid {}: {e}; starting afresh", id.pid);
                return false;
            }
        };
        self.wanted_up = true;
        info!(target: &self.target, "adopting pid {} left by the previous supervisor", id.pid);
        let exit = Box::pin(async move {
            let _ = pidfd::exited(fd).await;
            ExitReason::Unknown
        });
        self.watch(id, StartCause::Adopt, Instant::now(), exit, ctx);
        true
    }
}

impl Handler<Recheck> for ServiceActor {
    type Result = ();
    fn handle(&mut self, _: Recheck, _: &mut Context<Self>) {
        self.recheck = true;
    }
}

/// Whether running the new definition needs a new process.
fn needs_new_process(old: &ServiceSpec, new: &ServiceSpec) -> bool {
    old.command != new.command
        || old.program != new.program
        || old.cwd != new.cwd
        || old.env != new.env
        || old.port != new.port
}

impl Handler<Reconfigure> for ServiceActor {
    type Result = ();
    fn handle(&mut self, m: Reconfigure, ctx: &mut Context<Self>) {
        let restart = needs_new_process(&self.spec, &m.0);
        self.spec = m.0;
        self.probe = Probe::new(&self.spec.health, &self.spec.cwd, &self.spec.env);
        info!(target: &self.target, "new definition applied{}", if restart { "; restarting" } else { "" });
        if restart && matches!(self.proc_, Proc::Up(_) | Proc::Stopping { .. }) {
            ctx.notify(Restart {
                cause: StartCause::Reload,
                free_port: false,
            });
        } else if matches!(self.proc_, Proc::Up(_)) {
            // The interval may have changed: re-arm the next probe with it.
            if self.handles.probe.is_none() {
                let next = match self.proc_ {
                    Proc::Up(Running {
                        phase: Phase::Starting,
                        ..
                    }) => self.start_probe_delay,
                    _ => self.spec.monitoring.health_check_interval,
                };
                self.schedule_probe(next, ctx);
            }
        }
    }
}

impl Handler<ChildExited> for ServiceActor {
    type Result = ();
    fn handle(&mut self, m: ChildExited, ctx: &mut Context<Self>) {
        if m.generation != self.generation {
            return;
        }
        let (run, stopping) = match std::mem::replace(&mut self.proc_, Proc::Down) {
            Proc::Up(run) => (run, None),
            Proc::Stopping { run, since, killed } => (run, Some((since, killed))),
            other => {
                self.proc_ = other;
                return;
            }
        };
        // Whatever the leader left behind in its group goes with it.
        group::signal_group(run.id.pid, Signal::SIGKILL);
        self.cancel_handles(ctx);
        let service = self.spec.name.clone();
        match stopping {
            Some((since, killed)) => {
                info!(target: &self.target, "pid {} stopped ({})", run.id.pid, m.reason);
                let mut detail = format!("pid {} {}", run.id.pid, m.reason);
                if killed {
                    detail.push_str(&format!(
                        "; SIGKILL after stop_timeout {}",
                        humantime::format_duration(self.spec.stop_timeout)
                    ));
                }
                self.audit.do_send(
                    self.record("stop", Outcome::Success)
                        .took(since.elapsed())
                        .detail(detail),
                );
                self.registry.do_send(ServiceStopped {
                    service,
                    by_hand: std::mem::take(&mut self.stop_by_hand),
                });
                for w in self.stop_waiters.drain(..) {
                    let _ = w.send(());
                }
                if let Some((cause, free_port)) = self.after_stop.take() {
                    self.launch(cause, free_port, ctx);
                }
            }
            None => {
                warn!(target: &self.target, "pid {} {}", run.id.pid, m.reason);
                if run.phase == Phase::Starting {
                    self.audit.do_send(
                        self.record(run.cause.action(), Outcome::Failure)
                            .took(run.ordered_at.elapsed())
                            .detail(format!("{} before becoming healthy", m.reason)),
                    );
                }
                self.registry.do_send(ServiceExited {
                    service: service.clone(),
                    reason: m.reason,
                });
                if self.wanted_up {
                    self.recovery.do_send(Failed {
                        service,
                        kind: ErrorKind::Exited,
                        message: m.reason.to_string(),
                        recheckable: false,
                    });
                }
            }
        }
    }
}

impl Handler<ProbeDue> for ServiceActor {
    type Result = ();
    fn handle(&mut self, m: ProbeDue, ctx: &mut Context<Self>) {
        self.handles.probe_timer = None;
        if m.generation != self.generation || self.handles.probe.is_some() {
            return;
        }
        if !matches!(self.proc_, Proc::Up(_)) {
            return;
        }
        let recheck = std::mem::take(&mut self.recheck);
        let mut limit = self.spec.monitoring.health_check_timeout;
        if recheck {
            limit *= 2;
        }
        let generation = m.generation;
        let probe = self.probe.clone();
        let me = ctx.address();
        self.handles.probe = Some(actix::spawn(async move {
            let outcome = probe.run(limit).await;
            me.do_send(ProbeDone {
                generation,
                outcome,
                recheck,
            });
        }));
    }
}

impl Handler<ProbeDone> for ServiceActor {
    type Result = ();
    fn handle(&mut self, m: ProbeDone, ctx: &mut Context<Self>) {
        if m.generation != self.generation {
            return;
        }
        self.handles.probe = None;
        let Proc::Up(run) = &mut self.proc_ else {
            return;
        };
        let service = self.spec.name.clone();
        let ok = m.outcome.ok();
        let interval = self.spec.monitoring.health_check_interval;
        match (run.phase, ok) {
            (Phase::Starting, false) => {
                // Expected while starting; only start_timeout counts. Probe
                // again soon, backing off, so a fast service is seen at once.
                let refused = m
                    .outcome
                    .error
                    .as_ref()
                    .is_some_and(|e| e.kind == ErrorKind::ConnectionRefused);
                if refused && run.ordered_at.elapsed() < START_SPIN {
                    self.probe_after_step(ctx);
                    return;
                }
                let delay = self.start_probe_delay;
                self.start_probe_delay = (delay * 2).min(MAX_START_PROBE).min(interval);
                self.schedule_probe(delay, ctx);
                return;
            }
            (Phase::Starting, true) => {
                run.phase = Phase::Started;
                let run = *run;
                if let Some(h) = self.handles.start_deadline.take() {
                    ctx.cancel_future(h);
                }
                println!(
                    "✅ {} started successfully (PID: {})",
                    self.spec.display_name, run.id.pid
                );
                info!(target: &self.target, "healthy, pid {} ({})", run.id.pid, run.cause);
                self.audit.do_send(
                    self.record(run.cause.action(), Outcome::Success)
                        .took(run.ordered_at.elapsed())
                        .detail(format!("pid {} ({})", run.id.pid, run.cause)),
                );
                self.recovery.do_send(Healthy {
                    service: service.clone(),
                });
            }
            (Phase::Started, true) => {
                if self.last_ok != Some(true) {
                    info!(target: &self.target, "health check passes again");
                    self.audit.do_send(
                        self.record("health_check", Outcome::Success)
                            .took(m.outcome.latency)
                            .detail("passing again"),
                    );
                    self.recovery.do_send(Healthy {
                        service: service.clone(),
                    });
                }
            }
            (Phase::Started, false) => {
                let (kind, message) = m
                    .outcome
                    .error
                    .as_ref()
                    .map(|e| (e.kind, e.message.clone()))
                    .unwrap_or((ErrorKind::Other, String::new()));
                let recheckable = kind == ErrorKind::Timeout && !m.recheck;
                if self.last_ok != Some(false) {
                    warn!(target: &self.target, "health check failing: {message}");
                    self.audit.do_send(
                        self.record("health_check", Outcome::Failure)
                            .took(m.outcome.latency)
                            .detail(message.clone()),
                    );
                }
                self.recovery.do_send(Failed {
                    service: service.clone(),
                    kind,
                    message,
                    recheckable,
                });
            }
        }
        self.last_ok = Some(ok);
        self.registry.do_send(HealthChecked {
            service,
            ok,
            latency: m.outcome.latency,
            error: m.outcome.error.map(|e| (e.kind, e.message)),
        });
        self.schedule_probe(interval, ctx);
    }
}

impl Handler<StartDeadline> for ServiceActor {
    type Result = ();
    fn handle(&mut self, m: StartDeadline, _: &mut Context<Self>) {
        self.handles.start_deadline = None;
        if m.generation != self.generation {
            return;
        }
        let Proc::Up(run) = &mut self.proc_ else {
            return;
        };
        if run.phase != Phase::Starting {
            return;
        }
        run.phase = Phase::Started;
        let run = *run;
        let msg = format!(
            "not healthy within start_timeout {}",
            humantime::format_duration(self.spec.start_timeout)
        );
        warn!(target: &self.target, "{msg}");
        self.audit.do_send(
            self.record(run.cause.action(), Outcome::Failure)
                .took(run.ordered_at.elapsed())
                .detail(msg.clone()),
        );
        self.last_ok = Some(false);
        self.registry.do_send(HealthChecked {
            service: self.spec.name.clone(),
            ok: false,
            latency: Duration::ZERO,
            error: Some((ErrorKind::Timeout, msg.clone())),
        });
        self.recovery.do_send(Failed {
            service: self.spec.name.clone(),
            kind: ErrorKind::Timeout,
            message: msg,
            recheckable: false,
        });
    }
}

impl Handler<StopDeadline> for ServiceActor {
    type Result = ();
    fn handle(&mut self, m: StopDeadline, _: &mut Context<Self>) {
        self.handles.stop_deadline = None;
        if m.generation != self.generation {
            return;
        }
        if let Proc::Stopping { run, killed, .. } = &mut self.proc_ {
            warn!(target: &self.target,
                "pid {} still running after stop_timeout {}: SIGKILL to its group",
                run.id.pid, humantime::format_duration(self.spec.stop_timeout));
            group::signal_group(run.id.pid, Signal::SIGKILL);
            *killed = true;
        }
    }
}

//! The Manager actor: starts services in dependency order (a dependent once all
//! of its `depends_on` are running, independent ones in parallel), carries out
//! the manual commands of the control socket, and runs the ordered shutdown
//! (dependents first). It also applies `reload` (see [`reload`]) and the
//! run-time kill switch. It holds addresses, never a copy of a record.

mod reload;

use super::audit::{Audit, Outcome, Record};
use super::recovery::{Manual, Recovery, Register, SetKillSwitch};
use super::registry::{
    Flush, KillSwitchChanged, Registry, ServiceStopped, StatusChanged, Subscribe,
};
use super::service::{Adopt, Restart, ServiceActor, Start, StartCause, StartReply, Stop};
use crate::config::{Config, ServiceSpec};
use crate::logs::LogPumps;
use crate::model::{KillSwitch, KillSwitchSource, Limits, ProcessId, ServiceRecord, ServiceStatus};
use crate::paths::DataPaths;
use crate::persist;
use crate::policy::{ManualAction, Settings, Track};
use crate::protocol::{
    ActionOutcome, ActionsReport, ControlRequest, ControlResponse, ErrorCode, KillSwitchMode,
};
use actix::prelude::*;
use log::{info, warn};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

const TARGET: &str = "manager";

// ---- messages the Manager receives ----------------------------------------------

/// A manual command from the control socket.
#[derive(Message, Debug)]
#[rtype(result = "ControlResponse")]
pub struct Command(pub ControlRequest);

/// Re-read the config (control request or SIGHUP).
#[derive(Message, Debug)]
#[rtype(result = "ControlResponse")]
pub struct Reload;

/// Stop every service, dependents first, then the supervisor.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Shutdown {
    pub reason: String,
}

// ---- the actor ----------------------------------------------------------------------

pub struct Manager {
    config: Arc<Config>,
    paths: DataPaths,
    services: BTreeMap<String, Addr<ServiceActor>>,
    registry: Addr<Registry>,
    recovery: Addr<Recovery>,
    audit: Addr<Audit>,
    pumps: LogPumps,
    kill_switch: KillSwitch,
    /// Services known to be running, for dependency order.
    running: HashSet<String>,
    /// Autostart services waiting for their dependencies.
    pending: Vec<String>,
    /// Autostart services the kill switch kept down: started when it goes off.
    held_by_kill_switch: Vec<String>,
    /// What a previous supervisor left: live processes to adopt, records to
    /// continue from.
    inherited: Inherited,
    shutting_down: bool,
}

/// The restart policy's settings for one service.
pub fn settings_of(config: &Config, spec: &ServiceSpec, kill_switch: bool) -> Settings {
    Settings {
        max_restart_attempts: spec.monitoring.max_restart_attempts,
        restart_cooldown: spec.monitoring.restart_cooldown,
        stable_after: spec.monitoring.stable_after,
        max_consecutive_failures: config.safety.max_consecutive_failures_before_escalation,
        kill_switch,
        kill_port_conflicts: config.safety.kill_port_conflicts,
    }
}

/// The limits shown by `status --explain`.
pub fn limits_of(config: &Config, spec: &ServiceSpec) -> Limits {
    Limits {
        max_restart_attempts: spec.monitoring.max_restart_attempts,
        restart_cooldown_ms: spec.monitoring.restart_cooldown.as_millis() as u64,
        stable_after_ms: spec.monitoring.stable_after.as_millis() as u64,
        max_consecutive_failures: config.safety.max_consecutive_failures_before_escalation,
        health_check_interval_ms: spec.monitoring.health_check_interval.as_millis() as u64,
    }
}

/// What a previous supervisor (crashed or shut down) left behind.
#[derive(Debug, Default)]
pub struct Inherited {
    /// Processes still ours (same pid and start time): adopted at boot.
    pub alive: HashMap<String, ProcessId>,
    /// The last persisted records.
    pub records: HashMap<String, ServiceRecord>,
}

/// Recovery's memory of a service, continued from its last record.
fn track_from(record: Option<&ServiceRecord>) -> Track {
    match record {
        Some(r) => Track {
            attempts: r.restart_attempts,
            consecutive_failures: r.consecutive_failures,
            escalated: r.status == ServiceStatus::Escalated,
            ..Track::default()
        },
        None => Track::default(),
    }
}

/// The actors a Manager works with.
pub struct Peers {
    pub registry: Addr<Registry>,
    pub recovery: Addr<Recovery>,
    pub audit: Addr<Audit>,
    /// The thread draining the services' output into their log files.
    pub pumps: LogPumps,
}

impl Manager {
    /// A Manager with no service actors yet: it creates them when it starts.
    pub fn new(
        config: Arc<Config>,
        paths: DataPaths,
        peers: Peers,
        kill_switch: KillSwitch,
        inherited: Inherited,
    ) -> Self {
        let Peers {
            registry,
            recovery,
            audit,
            pumps,
        } = peers;
        Manager {
            config,
            paths,
            services: BTreeMap::new(),
            registry,
            recovery,
            audit,
            pumps,
            kill_switch,
            running: HashSet::new(),
            pending: vec![],
            held_by_kill_switch: vec![],
            inherited,
            shutting_down: false,
        }
    }

    /// Create the actor of one service and hand it to Recovery.
    fn spawn_service(&mut self, spec: &ServiceSpec, track: Track) {
        let log = self.paths.service_log(&spec.name);
        let output = match self.pumps.start(&log) {
            Ok(fifo) => fifo,
            Err(e) => {
                warn!(target: TARGET, "{}: no log FIFO ({e}); output goes straight to {} without rotation", spec.name, log.display());
                log
            }
        };
        let addr = ServiceActor::new(
            Arc::new(spec.clone()),
            output,
            self.registry.clone(),
            self.recovery.clone(),
            self.audit.clone(),
        )
        .start();
        self.recovery.do_send(Register {
            service: spec.name.clone(),
            display_name: spec.display_name.clone(),
            settings: settings_of(&self.config, spec, self.kill_switch.on),
            addr: addr.clone(),
            track,
        });
        self.services.insert(spec.name.clone(), addr);
    }

    /// Queue an autostart service: started once its dependencies run, unless
    /// the kill switch holds it.
    fn want_started(&mut self, name: &str) {
        if self.kill_switch.on {
            self.registry.do_send(ServiceStopped {
                service: name.to_string(),
                by_hand: false,
            });
            self.audit.do_send(
                Record::new(name, "start", Outcome::Skipped)
                    .detail("emergency kill switch is on: no autostart"),
            );
            self.held_by_kill_switch.push(name.to_string());
        } else {
            self.pending.push(name.to_string());
        }
    }

    fn deps_ready(&self, name: &str) -> bool {
        self.config
            .service(name)
            .is_some_and(|s| s.depends_on.iter().all(|d| self.running.contains(d)))
    }

    /// Start every pending service whose dependencies are all running.
    fn start_ready(&mut self) {
        let (ready, waiting): (Vec<String>, Vec<String>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|n| self.deps_ready(n));
        self.pending = waiting;
        for name in ready {
            if let Some(addr) = self.services.get(&name) {
                addr.do_send(Start {
                    cause: StartCause::Autostart,
                    free_port: self.config.safety.kill_port_conflicts,
                });
            }
        }
    }

    fn boot(&mut self, ctx: &mut Context<Self>) {
        let config = self.config.clone();
        for spec in &config.services {
            let previous = self.inherited.records.remove(&spec.name);
            self.spawn_service(spec, track_from(previous.as_ref()));
            let escalated = previous
                .as_ref()
                .is_some_and(|r| r.status == ServiceStatus::Escalated);
            let held = previous.as_ref().is_some_and(|r| r.held_stopped);
            let wanted = spec.autostart && !held && !escalated;
            if let Some(id) = self.inherited.alive.remove(&spec.name) {
                // Adopt what is still running; start afresh only if that fails.
                let adopting = self.services[&spec.name].send(Adopt(id));
                let name = spec.name.clone();
                ctx.spawn(adopting.into_actor(self).map(move |adopted, act, _| {
                    if !matches!(adopted, Ok(true)) && wanted {
                        act.want_started(&name);
                        act.start_ready();
                    }
                }));
            } else if escalated {
                warn!(target: TARGET, "{}: escalated before the supervisor restarted; waiting for a human (`recover`)", spec.name);
            } else if held {
                self.registry.do_send(ServiceStopped {
                    service: spec.name.clone(),
                    by_hand: true,
                });
                self.audit
                    .do_send(Record::new(&spec.name, "start", Outcome::Skipped).detail(
                        "stopped by hand before the supervisor restarted; `start` it to run it",
                    ));
            } else if wanted {
                self.want_started(&spec.name);
            } else {
                self.registry.do_send(ServiceStopped {
                    service: spec.name.clone(),
                    by_hand: false,
                });
            }
        }
        if self.kill_switch.on {
            warn!(target: TARGET, "emergency kill switch is on: nothing is started or restarted automatically");
        }
        self.start_ready();
    }

    /// `kill-switch on|off|clear`: keep the setting in the data folder (or
    /// forget it), and make every actor act on the new effective value.
    fn set_kill_switch(&mut self, mode: KillSwitchMode) -> Result<String, String> {
        let written = match mode {
            KillSwitchMode::On | KillSwitchMode::Off => {
                let file = crate::supervisor::KillSwitchFile {
                    on: mode == KillSwitchMode::On,
                };
                let bytes = serde_json::to_vec(&file).unwrap_or_default();
                persist::write_atomic(&self.paths.kill_switch, &bytes)
            }
            KillSwitchMode::Clear => match std::fs::remove_file(&self.paths.kill_switch) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
        };
        written.map_err(|e| format!("cannot write {}: {e}", self.paths.kill_switch.display()))?;
        let new = match mode {
            KillSwitchMode::On => KillSwitch {
                on: true,
                source: KillSwitchSource::Runtime,
            },
            KillSwitchMode::Off => KillSwitch {
                on: false,
                source: KillSwitchSource::Runtime,
            },
            KillSwitchMode::Clear => KillSwitch {
                on: self.config.safety.emergency_kill_switch,
                source: KillSwitchSource::Config,
            },
        };
        self.apply_kill_switch(new);
        Ok(format!(
            "kill switch {} ({})",
            if new.on { "ON" } else { "OFF" },
            match new.source {
                KillSwitchSource::Runtime => "run-time setting, kept across restarts",
                KillSwitchSource::Config => "config value",
            }
        ))
    }

    fn apply_kill_switch(&mut self, new: KillSwitch) {
        let was_on = self.kill_switch.on;
        self.kill_switch = new;
        self.recovery.do_send(SetKillSwitch(new.on));
        self.registry.do_send(KillSwitchChanged(new));
        if was_on && !new.on {
            let held = std::mem::take(&mut self.held_by_kill_switch);
            self.pending.extend(held);
            self.start_ready();
        }
    }

    /// Services grouped for shutdown: dependents before their dependencies.
    fn stop_waves(&self) -> Vec<Vec<Addr<ServiceActor>>> {
        let mut depth: HashMap<&str, usize> = HashMap::new();
        for name in self.config.start_order() {
            let d = self
                .config
                .service(&name)
                .map(|s| {
                    s.depends_on
                        .iter()
                        .map(|dep| depth.get(dep.as_str()).map_or(0, |d| d + 1))
                        .max()
                        .unwrap_or(0)
                })
                .unwrap_or(0);
            if let Some(spec) = self.config.service(&name) {
                depth.insert(spec.name.as_str(), d);
            }
        }
        let max = depth.values().copied().max().unwrap_or(0);
        (0..=max)
            .rev()
            .map(|level| {
                self.services
                    .iter()
                    .filter(|(n, _)| depth.get(n.as_str()).copied().unwrap_or(0) == level)
                    .map(|(_, a)| a.clone())
                    .collect()
            })
            .collect()
    }

    /// Carry out start/stop/restart/recover on named services.
    fn act(
        &mut self,
        action: ManualAction,
        names: Vec<String>,
    ) -> ResponseActFuture<Self, ControlResponse> {
        let verb = match action {
            ManualAction::Start => "start",
            ManualAction::Stop => "stop",
            ManualAction::Restart => "restart",
            ManualAction::Recover => "recover",
        };
        if names.is_empty() {
            return Box::pin(fut::ready(ControlResponse::error(
                ErrorCode::BadRequest,
                format!("{verb} needs at least one service name"),
            )));
        }
        let unknown: Vec<&String> = names
            .iter()
            .filter(|n| !self.services.contains_key(*n))
            .collect();
        if !unknown.is_empty() {
            let list: Vec<&str> = unknown.iter().map(|s| s.as_str()).collect();
            return Box::pin(fut::ready(ControlResponse::error(
                ErrorCode::UnknownService,
                format!("unknown service: {}", list.join(", ")),
            )));
        }
        let mut seen = HashSet::new();
        let names: Vec<String> = names
            .into_iter()
            .filter(|n| seen.insert(n.clone()))
            .collect();
        // Under the kill switch a manual start still acts, but never kills a
        // port holder on its own account; `recover` always may (a human asked).
        let free_port = self.config.safety.kill_port_conflicts && !self.kill_switch.on;
        let mut calls = vec![];
        for name in &names {
            let addr = self.services[name].clone();
            self.pending.retain(|p| p != name);
            self.held_by_kill_switch.retain(|p| p != name);
            self.recovery.do_send(Manual {
                service: name.clone(),
                action,
            });
            let started = Instant::now();
            let reply: Pin<Box<dyn std::future::Future<Output = StartReply>>> = match action {
                ManualAction::Start => {
                    let f = addr.send(Start {
                        cause: StartCause::Manual,
                        free_port,
                    });
                    Box::pin(async move { f.await.unwrap_or_else(|e| Err(e.to_string())) })
                }
                ManualAction::Restart => {
                    let f = addr.send(Restart {
                        cause: StartCause::ManualRestart,
                        free_port,
                    });
                    Box::pin(async move { f.await.unwrap_or_else(|e| Err(e.to_string())) })
                }
                ManualAction::Recover => {
                    let f = addr.send(Restart {
                        cause: StartCause::Recover,
                        free_port: true,
                    });
                    Box::pin(async move { f.await.unwrap_or_else(|e| Err(e.to_string())) })
                }
                ManualAction::Stop => {
                    let f = addr.send(Stop { by_hand: true });
                    Box::pin(async move { f.await.map(|()| None).map_err(|e| e.to_string()) })
                }
            };
            calls.push((name.clone(), started, reply));
        }
        let audit = self.audit.clone();
        let registry = self.registry.clone();
        Box::pin(
            async move {
                let mut results = vec![];
                for (service, started, reply) in calls {
                    let outcome = match reply.await {
                        Ok(pid) => ActionOutcome {
                            service: service.clone(),
                            ok: true,
                            message: match (action, pid) {
                                (ManualAction::Stop, _) => "stopped".to_string(),
                                (ManualAction::Start, Some(pid)) => format!("started (PID: {pid})"),
                                (ManualAction::Restart, Some(pid)) => {
                                    format!("restarted (PID: {pid})")
                                }
                                (ManualAction::Recover, Some(pid)) => {
                                    format!("recovered (PID: {pid})")
                                }
                                (_, None) => format!("{verb} scheduled"),
                            },
                            pid,
                        },
                        Err(e) => ActionOutcome {
                            service: service.clone(),
                            ok: false,
                            message: e,
                            pid: None,
                        },
                    };
                    let result = if outcome.ok {
                        Outcome::Success
                    } else {
                        Outcome::Failure
                    };
                    audit.do_send(
                        Record::new(&service, verb, result)
                            .took(started.elapsed())
                            .detail(format!("manual command: {}", outcome.message)),
                    );
                    results.push(outcome);
                }
                // What a human did is on disk before they hear it is done.
                let _ = registry.send(Flush).await;
                ControlResponse::Actions(ActionsReport {
                    action: verb.to_string(),
                    results,
                })
            }
            .into_actor(self),
        )
    }
}

use std::pin::Pin;

impl Actor for Manager {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        self.registry
            .do_send(Subscribe(ctx.address().recipient::<StatusChanged>()));
        self.boot(ctx);
    }
}

impl Handler<StatusChanged> for Manager {
    type Result = ();
    fn handle(&mut self, m: StatusChanged, _: &mut Context<Self>) {
        if m.status == ServiceStatus::Running {
            self.running.insert(m.service);
            if !self.shutting_down {
                self.start_ready();
            }
        } else {
            self.running.remove(&m.service);
        }
    }
}

impl Handler<Command> for Manager {
    type Result = ResponseActFuture<Self, ControlResponse>;
    fn handle(&mut self, m: Command, ctx: &mut Context<Self>) -> Self::Result {
        if self.shutting_down {
            return Box::pin(fut::ready(ControlResponse::error(
                ErrorCode::Failed,
                "the supervisor is shutting down",
            )));
        }
        match m.0 {
            ControlRequest::Start { services } => self.act(ManualAction::Start, services),
            ControlRequest::Stop { services } => self.act(ManualAction::Stop, services),
            ControlRequest::Restart { services } => self.act(ManualAction::Restart, services),
            ControlRequest::Recover { services } => self.act(ManualAction::Recover, services),
            ControlRequest::Reload => Box::pin(fut::ready(self.reload())),
            ControlRequest::KillSwitch { mode } => {
                let (ok, message) = match self.set_kill_switch(mode) {
                    Ok(m) => (true, m),
                    Err(m) => (false, m),
                };
                self.audit.do_send(
                    Record::new(
                        "manager",
                        "kill_switch",
                        if ok {
                            Outcome::Success
                        } else {
                            Outcome::Failure
                        },
                    )
                    .detail(format!("manual command {mode:?}: {message}").to_lowercase()),
                );
                Box::pin(fut::ready(ControlResponse::Actions(ActionsReport {
                    action: "kill_switch".into(),
                    results: vec![ActionOutcome {
                        service: "manager".into(),
                        ok,
                        message,
                        pid: None,
                    }],
                })))
            }
            ControlRequest::Shutdown => {
                ctx.notify(Shutdown {
                    reason: "shutdown requested over the control socket".into(),
                });
                Box::pin(fut::ready(ControlResponse::Actions(ActionsReport {
                    action: "shutdown".into(),
                    results: vec![],
                })))
            }
            ControlRequest::Status { .. } => Box::pin(fut::ready(ControlResponse::error(
                ErrorCode::BadRequest,
                "status is answered by the registry",
            ))),
            ControlRequest::Events { .. } => Box::pin(fut::ready(ControlResponse::error(
                ErrorCode::BadRequest,
                "events is streamed by the control server",
            ))),
        }
    }
}

impl Handler<Reload> for Manager {
    type Result = MessageResult<Reload>;
    fn handle(&mut self, _: Reload, _: &mut Context<Self>) -> Self::Result {
        if self.shutting_down {
            return MessageResult(ControlResponse::error(
                ErrorCode::Failed,
                "the supervisor is shutting down",
            ));
        }
        MessageResult(self.reload())
    }
}

impl Handler<Shutdown> for Manager {
    type Result = ResponseActFuture<Self, ()>;
    fn handle(&mut self, m: Shutdown, _: &mut Context<Self>) -> Self::Result {
        if self.shutting_down {
            return Box::pin(fut::ready(()));
        }
        self.shutting_down = true;
        self.pending.clear();
        info!(target: TARGET, "shutting down: {}", m.reason);
        for name in self.services.keys() {
            self.recovery.do_send(Manual {
                service: name.clone(),
                action: ManualAction::Stop,
            });
        }
        let waves = self.stop_waves();
        let registry = self.registry.clone();
        let audit = self.audit.clone();
        let started = Instant::now();
        Box::pin(
            async move {
                for wave in waves {
                    // Every stop of a wave is queued before any is awaited: they run in parallel.
                    let stops: Vec<_> = wave
                        .iter()
                        .map(|a| a.send(Stop { by_hand: false }))
                        .collect();
                    for s in stops {
                        let _ = s.await;
                    }
                }
                let _ = registry.send(Flush).await;
                let _ = audit
                    .send(
                        Record::new("manager", "shutdown", Outcome::Success)
                            .took(started.elapsed())
                            .detail(m.reason),
                    )
                    .await;
            }
            .into_actor(self)
            .map(|_, _, _| {
                info!(target: TARGET, "all services stopped; bye");
                System::current().stop();
            }),
        )
    }
}

//! The Manager actor: starts services in dependency order (a dependent once all
//! of its `depends_on` are running, independent ones in parallel), carries out
//! the manual commands of the control socket, and runs the ordered shutdown
//! (dependents first). It holds addresses, never a copy of a record.

use super::audit::{Audit, Outcome, Record};
use super::recovery::{Manual, Recovery};
use super::registry::{Flush, Registry, ServiceStopped, StatusChanged, Subscribe};
use super::service::{Restart, ServiceActor, Start, StartCause, StartReply, Stop};
use crate::config::Config;
use crate::model::ServiceStatus;
use crate::policy::ManualAction;
use crate::protocol::{ActionOutcome, ActionsReport, ControlRequest, ControlResponse, ErrorCode};
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

/// Stop every service, dependents first, then the supervisor.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Shutdown {
    pub reason: String,
}

// ---- the actor ----------------------------------------------------------------------

pub struct Manager {
    config: Arc<Config>,
    services: BTreeMap<String, Addr<ServiceActor>>,
    registry: Addr<Registry>,
    recovery: Addr<Recovery>,
    audit: Addr<Audit>,
    kill_switch: bool,
    /// Services known to be running, for dependency order.
    running: HashSet<String>,
    /// Autostart services waiting for their dependencies.
    pending: Vec<String>,
    shutting_down: bool,
}

impl Manager {
    pub fn new(
        config: Arc<Config>,
        services: BTreeMap<String, Addr<ServiceActor>>,
        registry: Addr<Registry>,
        recovery: Addr<Recovery>,
        audit: Addr<Audit>,
        kill_switch: bool,
    ) -> Self {
        Manager {
            config,
            services,
            registry,
            recovery,
            audit,
            kill_switch,
            running: HashSet::new(),
            pending: vec![],
            shutting_down: false,
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

    fn boot(&mut self) {
        for spec in &self.config.services {
            if !spec.autostart {
                self.registry.do_send(ServiceStopped {
                    service: spec.name.clone(),
                });
            } else if self.kill_switch {
                self.registry.do_send(ServiceStopped {
                    service: spec.name.clone(),
                });
                self.audit.do_send(
                    Record::new(&spec.name, "start", Outcome::Skipped)
                        .detail("emergency kill switch is on: no autostart"),
                );
            } else {
                self.pending.push(spec.name.clone());
            }
        }
        if self.kill_switch {
            warn!(target: TARGET, "emergency kill switch is on: nothing is started or restarted automatically");
        }
        self.start_ready();
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
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, ControlResponse> {
        let verb = match action {
            ManualAction::Start => "start",
            ManualAction::Stop => "stop",
            ManualAction::Restart => "restart",
            ManualAction::Recover => "recover",
        };
        let _ = ctx;
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
        let free_port = self.config.safety.kill_port_conflicts;
        let mut calls = vec![];
        for name in &names {
            let addr = self.services[name].clone();
            if action == ManualAction::Stop {
                self.pending.retain(|p| p != name);
            }
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
                    let f = addr.send(Stop);
                    Box::pin(async move { f.await.map(|()| None).map_err(|e| e.to_string()) })
                }
            };
            calls.push((name.clone(), started, reply));
        }
        let audit = self.audit.clone();
        Box::pin(
            async move {
                let mut results = vec![];
                for (service, started, reply) in calls {
                    let outcome = match reply.await {
                        Ok(pid) => ActionOutcome {
                            service: service.clone(),
                            ok: true,
                            message: match (verb, pid) {
                                ("stop", _) => "stopped".to_string(),
                                (_, Some(pid)) => format!("{verb} done (PID: {pid})"),
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
        self.boot();
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
            ControlRequest::Start { services } => self.act(ManualAction::Start, services, ctx),
            ControlRequest::Stop { services } => self.act(ManualAction::Stop, services, ctx),
            ControlRequest::Restart { services } => self.act(ManualAction::Restart, services, ctx),
            ControlRequest::Recover { services } => self.act(ManualAction::Recover, services, ctx),
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
        }
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
                    let stops: Vec<_> = wave.iter().map(|a| a.send(Stop)).collect();
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

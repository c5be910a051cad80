//! The Recovery actor: receives every failure, asks the pure policy
//! ([`crate::policy`]) what to do, and carries the decision out — an immediate
//! restart, a restart at the end of the cooldown, a recheck, an escalation, or
//! nothing (kill switch). It owns each service's [`Track`] and its timers; it
//! tells the Registry what it decided so the records stay the one truth.

use super::audit::{self, Audit, Outcome, Record};
use super::registry::{EscalationLifted, RecoveryChanged, Registry};
use super::service::{Recheck, Restart, ServiceActor, StartCause};
use crate::model::{now_rfc3339, ErrorKind, ServiceStatus};
use crate::policy::{self, Decision, EscalationReason, Failure, ManualAction, Settings, Track};
use actix::clock::Instant;
use actix::prelude::*;
use log::{debug, info, warn};
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

const TARGET: &str = "recovery";

// ---- messages Recovery receives -----------------------------------------------

/// Take charge of a service.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Register {
    pub service: String,
    pub display_name: String,
    pub settings: Settings,
    pub addr: Addr<ServiceActor>,
    /// Where recovery stood (continued from the last record after a restart).
    pub track: Track,
}

/// Forget a service (removed by a reload).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unregister {
    pub service: String,
}

/// A service failed: it exited, a counted check failed, or it could not start.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Failed {
    pub service: String,
    pub kind: ErrorKind,
    pub message: String,
    /// A check timed out while the process is alive, for the first time.
    pub recheckable: bool,
}

/// A service passed a check after failing, or its first check after a start.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Healthy {
    pub service: String,
}

/// A human acted on a service.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Manual {
    pub service: String,
    pub action: ManualAction,
}

/// A reload changed a service's limits (its track is kept).
#[derive(Message)]
#[rtype(result = "()")]
pub struct UpdateSettings {
    pub service: String,
    pub display_name: String,
    pub settings: Settings,
}

/// The effective kill switch changed.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct SetKillSwitch(pub bool);

/// A backoff's cooldown is over (sent to self).
#[derive(Message, Debug)]
#[rtype(result = "()")]
struct CooldownEnded {
    service: String,
}

/// A service may have been healthy for `stable_after` (sent to self).
#[derive(Message, Debug)]
#[rtype(result = "()")]
struct StableCheck {
    service: String,
}

// ---- the actor ----------------------------------------------------------------

struct Entry {
    track: Track,
    settings: Settings,
    display_name: String,
    addr: Addr<ServiceActor>,
    last_error: String,
    cooldown: Option<SpawnHandle>,
    stable: Option<SpawnHandle>,
    /// A failure was skipped because of the kill switch: recover it when the
    /// switch goes off.
    skipped: bool,
}

pub struct Recovery {
    services: HashMap<String, Entry>,
    registry: Addr<Registry>,
    audit: Addr<Audit>,
    kill_switch: bool,
}

impl Recovery {
    pub fn new(registry: Addr<Registry>, audit: Addr<Audit>, kill_switch: bool) -> Self {
        Recovery {
            services: HashMap::new(),
            registry,
            audit,
            kill_switch,
        }
    }

    fn settings(&self, e: &Entry) -> Settings {
        Settings {
            kill_switch: self.kill_switch,
            ..e.settings
        }
    }

    /// Tell the Registry the counters (and a status, if decided).
    fn report(&self, service: &str, status: Option<ServiceStatus>) {
        let Some(e) = self.services.get(service) else {
            return;
        };
        let next_restart_at = e
            .track
            .pending_restart
            .map(|due| SystemTime::now() + due.saturating_duration_since(Instant::now()));
        self.registry.do_send(RecoveryChanged {
            service: service.to_string(),
            restart_attempts: e.track.attempts,
            consecutive_failures: e.track.consecutive_failures,
            status,
            next_restart_at,
        });
    }

    fn restart(&self, service: &str, e: &Entry) {
        let s = self.settings(e);
        debug!(target: TARGET, "{service}: ordering restart");
        e.addr.do_send(Restart {
            cause: StartCause::AutoRestart {
                attempt: e.track.attempts,
                of: s.max_restart_attempts,
            },
            free_port: s.kill_port_conflicts,
        });
    }
}

impl Recovery {
    /// Raise the escalation: an audit line and the block (with notifications).
    fn escalate(&self, service: &str, reason: String) {
        let Some(e) = self.services.get(service) else {
            return;
        };
        warn!(target: TARGET, "{service}: escalating: {reason}");
        self.audit.do_send(
            Record::new(service, "escalate", Outcome::Success)
                .detail(format!("{reason}; last error: {}", e.last_error)),
        );
        self.audit.do_send(audit::Escalate {
            service: service.to_string(),
            display_name: e.display_name.clone(),
            reason,
            consecutive_failures: e.track.consecutive_failures,
            restart_attempts: e.track.attempts,
            last_error: e.last_error.clone(),
            time: now_rfc3339(),
        });
    }
}

impl Actor for Recovery {
    type Context = Context<Self>;
}

impl Handler<Register> for Recovery {
    type Result = ();
    fn handle(&mut self, m: Register, ctx: &mut Context<Self>) {
        if let Some(old) = self.services.remove(&m.service) {
            old.cooldown.map(|h| ctx.cancel_future(h));
            old.stable.map(|h| ctx.cancel_future(h));
        }
        self.services.insert(
            m.service,
            Entry {
                track: m.track,
                settings: m.settings,
                display_name: m.display_name,
                addr: m.addr,
                last_error: String::new(),
                cooldown: None,
                stable: None,
                skipped: false,
            },
        );
    }
}

impl Handler<Unregister> for Recovery {
    type Result = ();
    fn handle(&mut self, m: Unregister, ctx: &mut Context<Self>) {
        if let Some(old) = self.services.remove(&m.service) {
            old.cooldown.map(|h| ctx.cancel_future(h));
            old.stable.map(|h| ctx.cancel_future(h));
        }
    }
}

fn error_text(kind: ErrorKind, message: &str) -> String {
    match kind {
        ErrorKind::PortConflict => message.to_string(),
        _ if message.is_empty() => kind.label().to_string(),
        _ => format!("{}: {message}", kind.label()),
    }
}

impl Handler<Failed> for Recovery {
    type Result = ();
    fn handle(&mut self, m: Failed, ctx: &mut Context<Self>) {
        let now = Instant::now();
        let kill_switch = self.kill_switch;
        let Some(e) = self.services.get_mut(&m.service) else {
            return;
        };
        let settings = Settings {
            kill_switch,
            ..e.settings
        };
        if let Some(h) = e.stable.take() {
            ctx.cancel_future(h);
        }
        let was_skipped = std::mem::take(&mut e.skipped);
        let decision = policy::on_failure(
            &mut e.track,
            Failure {
                kind: m.kind,
                recheckable: m.recheckable,
            },
            &settings,
            now,
        );
        if decision != Decision::Recheck {
            e.last_error = error_text(m.kind, &m.message);
        }
        debug!(target: TARGET, "{}: {:?} ({}) -> {decision:?}", m.service, m.kind, m.message);
        let service = m.service.as_str();
        let status = match decision {
            Decision::Recheck => {
                e.addr.do_send(Recheck);
                None
            }
            Decision::Skip => {
                e.skipped = true;
                if !was_skipped {
                    // Once per run of failures, not on every failed check.
                    self.audit.do_send(
                        Record::new(service, "restart", Outcome::Skipped)
                            .detail(format!("kill switch on; {}", e.last_error)),
                    );
                }
                Some(ServiceStatus::Unhealthy)
            }
            Decision::RestartNow => {
                info!(target: TARGET, "{service}: restarting (attempt {}/{}) after {}",
                    e.track.attempts, settings.max_restart_attempts, e.last_error);
                let e = &self.services[service];
                self.restart(service, e);
                None
            }
            Decision::Backoff { until } => {
                let wait = until.saturating_duration_since(now);
                info!(target: TARGET, "{service}: backing off {} before restarting",
                    humantime::format_duration(round_ms(wait)));
                if let Some(h) = e.cooldown.take() {
                    ctx.cancel_future(h);
                }
                e.cooldown = Some(ctx.notify_later(
                    CooldownEnded {
                        service: m.service.clone(),
                    },
                    wait,
                ));
                self.audit
                    .do_send(
                        Record::new(service, "backoff", Outcome::Success).detail(format!(
                            "restart in {} (cooldown); {}",
                            humantime::format_duration(round_ms(wait)),
                            e.last_error
                        )),
                    );
                Some(ServiceStatus::Backoff)
            }
            Decision::AlreadyScheduled | Decision::AlreadyEscalated => None,
            Decision::Escalate(reason) => {
                if let Some(h) = e.cooldown.take() {
                    ctx.cancel_future(h);
                }
                let reason = match reason {
                    EscalationReason::BudgetSpent => format!(
                        "restart budget spent ({} of {} restarts)",
                        e.track.attempts, settings.max_restart_attempts
                    ),
                    EscalationReason::ConsecutiveFailures => {
                        format!("{} consecutive failures", e.track.consecutive_failures)
                    }
                    EscalationReason::PortConflict => {
                        "port held by a foreign process and kill_port_conflicts is false"
                            .to_string()
                    }
                };
                self.escalate(service, reason);
                Some(ServiceStatus::Escalated)
            }
        };
        self.report(service, status);
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

impl Handler<CooldownEnded> for Recovery {
    type Result = ();
    fn handle(&mut self, m: CooldownEnded, _: &mut Context<Self>) {
        let kill_switch = self.kill_switch;
        let Some(e) = self.services.get_mut(&m.service) else {
            return;
        };
        e.cooldown = None;
        let settings = Settings {
            kill_switch,
            ..e.settings
        };
        if policy::on_cooldown_end(&mut e.track, &settings, Instant::now()) {
            info!(target: TARGET, "{}: cooldown over, restarting (attempt {}/{})",
                m.service, e.track.attempts, settings.max_restart_attempts);
            let e = &self.services[&m.service];
            self.restart(&m.service, e);
        }
        self.report(&m.service, None);
    }
}

impl Handler<Healthy> for Recovery {
    type Result = ();
    fn handle(&mut self, m: Healthy, ctx: &mut Context<Self>) {
        let now = Instant::now();
        let Some(e) = self.services.get_mut(&m.service) else {
            return;
        };
        if policy::on_healthy(&mut e.track, now) {
            if let Some(h) = e.cooldown.take() {
                ctx.cancel_future(h);
            }
            info!(target: TARGET, "{}: healthy again, scheduled restart cancelled", m.service);
        }
        if e.stable.is_none() {
            e.stable = Some(ctx.notify_later(
                StableCheck {
                    service: m.service.clone(),
                },
                e.settings.stable_after,
            ));
        }
        self.report(&m.service, None);
    }
}

impl Handler<StableCheck> for Recovery {
    type Result = ();
    fn handle(&mut self, m: StableCheck, _: &mut Context<Self>) {
        let kill_switch = self.kill_switch;
        let Some(e) = self.services.get_mut(&m.service) else {
            return;
        };
        e.stable = None;
        let settings = Settings {
            kill_switch,
            ..e.settings
        };
        if policy::settle(&mut e.track, &settings, Instant::now()) {
            info!(target: TARGET, "{}: stable, restart budget restored", m.service);
            self.report(&m.service, None);
        }
    }
}

impl Handler<Manual> for Recovery {
    type Result = ();
    fn handle(&mut self, m: Manual, ctx: &mut Context<Self>) {
        let Some(e) = self.services.get_mut(&m.service) else {
            return;
        };
        let was_escalated = e.track.escalated;
        policy::on_manual(&mut e.track, m.action);
        if let Some(h) = e.cooldown.take() {
            ctx.cancel_future(h);
        }
        if let Some(h) = e.stable.take() {
            ctx.cancel_future(h);
        }
        if was_escalated && m.action == ManualAction::Start {
            // The Registry keeps `escalated` until told: a `start` of a live
            // process spawns nothing that would tell it otherwise (a restart,
            // a recover or a stop tells it through the process's own facts).
            self.registry.do_send(EscalationLifted {
                service: m.service.clone(),
            });
        }
        self.report(&m.service, None);
    }
}

impl Handler<SetKillSwitch> for Recovery {
    type Result = ();
    fn handle(&mut self, m: SetKillSwitch, ctx: &mut Context<Self>) {
        let was = std::mem::replace(&mut self.kill_switch, m.0);
        if !was || m.0 {
            return;
        }
        // Off again: recover what was skipped while it was on.
        let now = Instant::now();
        let skipped: Vec<String> = self
            .services
            .iter()
            .filter(|(_, e)| e.skipped)
            .map(|(n, _)| n.clone())
            .collect();
        for service in skipped {
            let Some(e) = self.services.get_mut(&service) else {
                continue;
            };
            e.skipped = false;
            let settings = Settings {
                kill_switch: false,
                ..e.settings
            };
            let decision = policy::resume(&mut e.track, &settings, now);
            info!(target: TARGET, "{service}: kill switch off, {decision:?}");
            let status = match decision {
                Decision::RestartNow => {
                    let e = &self.services[&service];
                    self.restart(&service, e);
                    None
                }
                Decision::Backoff { until } => {
                    e.cooldown = Some(ctx.notify_later(
                        CooldownEnded {
                            service: service.clone(),
                        },
                        until.saturating_duration_since(now),
                    ));
                    Some(ServiceStatus::Backoff)
                }
                Decision::Escalate(_) => {
                    // The budget was spent while the switch was on: escalate now.
                    self.escalate(&service, "restart budget spent".into());
                    Some(ServiceStatus::Escalated)
                }
                _ => None,
            };
            self.report(&service, status);
        }
    }
}

impl Handler<UpdateSettings> for Recovery {
    type Result = ();
    fn handle(&mut self, m: UpdateSettings, _: &mut Context<Self>) {
        if let Some(e) = self.services.get_mut(&m.service) {
            e.settings = m.settings;
            e.display_name = m.display_name;
        }
    }
}

//! The Metrics actor: Prometheus metrics (the `prometheus-client` crate) for
//! `GET /metrics`.
//!
//! Counters and the health-check histogram follow the Registry's event stream
//! (`Published`): every health check, escalation and exit is counted as it
//! happens. Gauges that are a record's current value (up, status, consecutive
//! failures, restarts, process start time) are taken from the Registry's
//! records at each scrape, so they can never drift from `status`. The
//! supervisor's own RSS, open fds, CPU and start time come from `/proc/self`.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `ai_dawg_service_up` | gauge (1 running, else 0) | service |
//! | `ai_dawg_service_status` | state set as gauges (1 for the current status) | service, status |
//! | `ai_dawg_service_restarts_total` | counter (the record's `restart_count`) | service |
//! | `ai_dawg_service_consecutive_failures` | gauge | service |
//! | `ai_dawg_service_health_check_duration_seconds` | histogram | service |
//! | `ai_dawg_service_health_checks_total` | counter | service, result (`ok` or the error kind) |
//! | `ai_dawg_service_escalations_total` | counter | service |
//! | `ai_dawg_service_exits_total` | counter | service |
//! | `ai_dawg_service_process_start_time_seconds` | gauge (Unix time; 0 when down) | service |
//! | `ai_dawg_kill_switch` | gauge (1 on) | – |
//! | `process_resident_memory_bytes`, `process_open_fds`, `process_cpu_seconds_total`, `process_start_time_seconds` | the supervisor itself | – |

use super::proc_self;
use crate::actors::registry::{GetStatus, Published, Registry, SubscribeEvents};
use crate::model::{EventKind, ServiceStatus};
use crate::protocol::StatusReport;
use actix::prelude::*;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use std::collections::HashSet;
use std::sync::atomic::AtomicU64;

/// Every status, for the state set.
const STATUSES: [ServiceStatus; 7] = [
    ServiceStatus::Starting,
    ServiceStatus::Running,
    ServiceStatus::Unhealthy,
    ServiceStatus::Stopped,
    ServiceStatus::Backoff,
    ServiceStatus::Escalated,
    ServiceStatus::Unknown,
];

// ---- messages the Metrics actor receives -----------------------------------------

/// Encode every metric now (a scrape). `openmetrics`: the OpenMetrics text
/// format instead of Prometheus' 0.0.4 text format.
#[derive(Message, Debug)]
#[rtype(result = "Result<String, String>")]
pub struct RenderMetrics {
    pub openmetrics: bool,
}

// ---- the actor -----------------------------------------------------------------------

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabel {
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    service: String,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    service: String,
    result: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

fn health_histogram() -> Histogram {
    // 1 ms .. ~16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

pub struct Metrics {
    registry: Addr<Registry>,
    prom: prometheus_client::registry::Registry,
    up: Family<ServiceLabel, Gauge>,
    status: Family<StatusLabels, Gauge>,
    restarts: Family<ServiceLabel, Counter>,
    consecutive_failures: Family<ServiceLabel, Gauge>,
    health_duration: Family<ServiceLabel, Histogram, fn() -> Histogram>,
    health_checks: Family<CheckLabels, Counter>,
    escalations: Family<ServiceLabel, Counter>,
    exits: Family<ServiceLabel, Counter>,
    service_start_time: Family<ServiceLabel, FloatGauge>,
    kill_switch: Gauge,
    resident: Gauge,
    open_fds: Gauge,
    cpu: Counter<f64, AtomicU64>,
    start_time: FloatGauge,
    /// Services that have series, to drop those a reload removed.
    known: HashSet<String>,
}

impl Metrics {
    pub fn new(registry: Addr<Registry>) -> Self {
        let mut prom = prometheus_client::registry::Registry::default();
        let m = Metrics {
            registry,
            up: Family::default(),
            status: Family::default(),
            restarts: Family::default(),
            consecutive_failures: Family::default(),
            health_duration: Family::new_with_constructor(health_histogram as fn() -> Histogram),
            health_checks: Family::default(),
            escalations: Family::default(),
            exits: Family::default(),
            service_start_time: Family::default(),
            kill_switch: Gauge::default(),
            resident: Gauge::default(),
            open_fds: Gauge::default(),
            cpu: Counter::default(),
            start_time: FloatGauge::default(),
            known: HashSet::new(),
            prom: prometheus_client::registry::Registry::default(),
        };
        prom.register(
            "ai_dawg_service_up",
            "Whether the service is running (healthy): 1, else 0",
            m.up.clone(),
        );
        prom.register(
            "ai_dawg_service_status",
            "The service's status as a state set: 1 for the current status, 0 for the others",
            m.status.clone(),
        );
        prom.register(
            "ai_dawg_service_restarts",
            "Restarts over the service's whole life (automatic and manual)",
            m.restarts.clone(),
        );
        prom.register(
            "ai_dawg_service_consecutive_failures",
            "Failures in a row since the last passing check",
            m.consecutive_failures.clone(),
        );
        prom.register(
            "ai_dawg_service_health_check_duration_seconds",
            "How long each health check took",
            m.health_duration.clone(),
        );
        prom.register(
            "ai_dawg_service_health_checks",
            "Health checks by result: ok, or the kind of failure",
            m.health_checks.clone(),
        );
        prom.register(
            "ai_dawg_service_escalations",
            "Escalations raised since the supervisor started",
            m.escalations.clone(),
        );
        prom.register(
            "ai_dawg_service_exits",
            "Exits of the service's process noticed since the supervisor started",
            m.exits.clone(),
        );
        prom.register(
            "ai_dawg_service_process_start_time_seconds",
            "Start time of the service's current process, Unix seconds (0 when not running)",
            m.service_start_time.clone(),
        );
        prom.register(
            "ai_dawg_kill_switch",
            "Whether the emergency kill switch is on: 1, else 0",
            m.kill_switch.clone(),
        );
        prom.register(
            "process_resident_memory_bytes",
            "Resident memory of the supervisor",
            m.resident.clone(),
        );
        prom.register(
            "process_open_fds",
            "Open file descriptors of the supervisor",
            m.open_fds.clone(),
        );
        prom.register(
            "process_cpu_seconds",
            "User and system CPU time of the supervisor",
            m.cpu.clone(),
        );
        prom.register(
            "process_start_time_seconds",
            "Start time of the supervisor, Unix seconds",
            m.start_time.clone(),
        );
        Metrics { prom, ..m }
    }

    /// Take the current values of every record, and of `/proc/self`.
    fn refresh(&mut self, report: &StatusReport) {
        let names: HashSet<String> = report.services.iter().map(|r| r.name.clone()).collect();
        for gone in self.known.difference(&names) {
            self.forget(gone);
        }
        for r in &report.services {
            let l = ServiceLabel {
                service: r.name.clone(),
            };
            self.up
                .get_or_create(&l)
                .set(i64::from(r.status == ServiceStatus::Running));
            for s in STATUSES {
                self.status
                    .get_or_create(&StatusLabels {
                        service: r.name.clone(),
                        status: s.as_str(),
                    })
                    .set(i64::from(r.status == s));
            }
            let restarts = self.restarts.get_or_create(&l);
            let seen = restarts.get();
            if r.restart_count > seen {
                restarts.inc_by(r.restart_count - seen);
            }
            self.consecutive_failures
                .get_or_create(&l)
                .set(i64::from(r.consecutive_failures));
            let started = r
                .started_at
                .as_deref()
                .filter(|_| r.pid.is_some())
                .and_then(|t| humantime::parse_rfc3339(t).ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0.0, |d| d.as_secs_f64());
            self.service_start_time.get_or_create(&l).set(started);
            // Counters show 0 before their first event, not nothing.
            let _ = self.escalations.get_or_create(&l);
            let _ = self.exits.get_or_create(&l);
            let _ = self.health_duration.get_or_create(&l);
        }
        self.known = names;
        self.kill_switch.set(i64::from(report.kill_switch.on));
        if let Some(v) = proc_self::resident_bytes() {
            self.resident.set(v as i64);
        }
        if let Some(v) = proc_self::open_fds() {
            self.open_fds.set(v as i64);
        }
        if let Some(v) = proc_self::cpu_seconds() {
            let seen = self.cpu.get();
            if v > seen {
                self.cpu.inc_by(v - seen);
            }
        }
        if let Some(v) = proc_self::start_time_seconds() {
            self.start_time.set(v);
        }
    }

    /// Drop every series of a service removed by a reload.
    fn forget(&self, service: &str) {
        let l = ServiceLabel {
            service: service.to_string(),
        };
        self.up.remove(&l);
        self.restarts.remove(&l);
        self.consecutive_failures.remove(&l);
        self.health_duration.remove(&l);
        self.escalations.remove(&l);
        self.exits.remove(&l);
        self.service_start_time.remove(&l);
        for s in STATUSES {
            self.status.remove(&StatusLabels {
                service: service.to_string(),
                status: s.as_str(),
            });
        }
        // Health-check results are few; drop any of this service.
        let results = ["ok"]
            .into_iter()
            .map(str::to_string)
            .chain(ERROR_KINDS.iter().map(|k| k.to_string()));
        for result in results {
            self.health_checks.remove(&CheckLabels {
                service: service.to_string(),
                result,
            });
        }
    }

    fn encode(&self, openmetrics: bool) -> Result<String, String> {
        let mut out = String::with_capacity(64 * 1024);
        let done = if openmetrics {
            prometheus_client::encoding::text::encode(&mut out, &self.prom)
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.prom)
        };
        done.map(|()| out)
            .map_err(|e| format!("cannot encode the metrics: {e}"))
    }
}

/// The `result` label of a failed check: the error kind, as in the API.
const ERROR_KINDS: [&str; 8] = [
    "connection_refused",
    "timeout",
    "bad_status",
    "command_failed",
    "exited",
    "port_conflict",
    "spawn_failed",
    "other",
];

fn result_label(kind: Option<crate::model::ErrorKind>) -> String {
    kind.and_then(|k| serde_json::to_value(k).ok())
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "other".into())
}

impl Actor for Metrics {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        self.registry
            .do_send(SubscribeEvents(ctx.address().recipient()));
    }
}

impl Handler<Published> for Metrics {
    type Result = ();
    fn handle(&mut self, m: Published, _: &mut Context<Self>) {
        let service = m.0.service.clone();
        match &m.0.kind {
            EventKind::Health {
                ok,
                latency_ms,
                error_kind,
            } => {
                self.health_duration
                    .get_or_create(&ServiceLabel {
                        service: service.clone(),
                    })
                    .observe(latency_ms / 1000.0);
                let result = if *ok {
                    "ok".to_string()
                } else {
                    result_label(*error_kind)
                };
                self.health_checks
                    .get_or_create(&CheckLabels { service, result })
                    .inc();
            }
            EventKind::Status {
                to: ServiceStatus::Escalated,
                ..
            } => {
                self.escalations
                    .get_or_create(&ServiceLabel { service })
                    .inc();
            }
            EventKind::Exited { .. } => {
                self.exits.get_or_create(&ServiceLabel { service }).inc();
            }
            _ => {}
        }
    }
}

impl Handler<RenderMetrics> for Metrics {
    type Result = ResponseActFuture<Self, Result<String, String>>;
    fn handle(&mut self, m: RenderMetrics, _: &mut Context<Self>) -> Self::Result {
        let status = self.registry.send(GetStatus { services: vec![] });
        Box::pin(
            status
                .into_actor(self)
                .map(move |answer, act, _| match answer {
                    Ok(Ok(report)) => {
                        act.refresh(&report);
                        act.encode(m.openmetrics)
                    }
                    Ok(Err(_)) => Err("the registry refused the status query".into()),
                    Err(e) => Err(format!("the registry is unreachable: {e}")),
                }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ErrorKind;

    #[test]
    fn every_error_kind_has_its_result_label() {
        for kind in [
            ErrorKind::ConnectionRefused,
            ErrorKind::Timeout,
            ErrorKind::BadStatus,
            ErrorKind::CommandFailed,
            ErrorKind::Exited,
            ErrorKind::PortConflict,
            ErrorKind::SpawnFailed,
            ErrorKind::Other,
        ] {
            assert!(
                ERROR_KINDS.contains(&result_label(Some(kind)).as_str()),
                "{kind:?}"
            );
        }
    }
}

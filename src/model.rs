//! The vocabulary every layer shares: a service's status, why it failed, which
//! process is ours, and the record the Registry keeps for each service.
//!
//! Nothing here knows about actix, so the CLI client, the state file and the
//! wire protocol use these types without an actor system.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A service's state as operators see it (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceStatus {
    /// Spawned, waiting for its first successful health check.
    Starting,
    /// Healthy.
    Running,
    /// Alive (or just exited) but failing its checks.
    Unhealthy,
    /// Not running, on purpose.
    Stopped,
    /// Waiting out a restart cooldown; a restart is scheduled.
    Backoff,
    /// Automatic recovery gave up; a human is needed.
    Escalated,
    /// Not yet known (before the supervisor has looked).
    Unknown,
}

impl ServiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceStatus::Starting => "starting",
            ServiceStatus::Running => "running",
            ServiceStatus::Unhealthy => "unhealthy",
            ServiceStatus::Stopped => "stopped",
            ServiceStatus::Backoff => "backoff",
            ServiceStatus::Escalated => "escalated",
            ServiceStatus::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ServiceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a start or a health check failed. Recovery picks its action from this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Nothing listens where the health check connects.
    ConnectionRefused,
    /// The check (or the start) did not finish in time.
    Timeout,
    /// The HTTP check answered with a non-2xx status.
    BadStatus,
    /// The health command exited non-zero.
    CommandFailed,
    /// The service's process exited.
    Exited,
    /// The service's port is held by a process that is not this service's.
    PortConflict,
    /// The program could not be executed at all.
    SpawnFailed,
    /// Any other I/O error of a check.
    Other,
}

impl ErrorKind {
    /// The short label used in escalation blocks and the audit trail.
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::ConnectionRefused => "ECONNREFUSED",
            ErrorKind::Timeout => "TIMEOUT",
            ErrorKind::BadStatus => "BAD_STATUS",
            ErrorKind::CommandFailed => "COMMAND_FAILED",
            ErrorKind::Exited => "EXITED",
            ErrorKind::PortConflict => "PORT_CONFLICT",
            ErrorKind::SpawnFailed => "SPAWN_FAILED",
            ErrorKind::Other => "ERROR",
        }
    }
}

/// A process we started, identified so that a recycled pid is never taken for it:
/// the pid plus the process start time (`/proc/PID/stat` field 22, clock ticks
/// since boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    pub pid: u32,
    pub start_time: u64,
}

/// How a process left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitReason {
    Code(i32),
    Signal(i32),
    /// An adopted process (not our child): its status is its real parent's.
    Unknown,
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ExitReason::Code(c) => write!(f, "exited with code {c}"),
            ExitReason::Unknown => write!(f, "exited (adopted process: status unknown)"),
            ExitReason::Signal(s) => {
                let name = nix::sys::signal::Signal::try_from(s)
                    .map(|s| s.as_str())
                    .unwrap_or("unknown signal");
                write!(f, "killed by signal {s} ({name})")
            }
        }
    }
}

/// One service's record: what the Registry owns, persists in
/// `data/service-state.json` (as `[name, record]` pairs) and answers `status` with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRecord {
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default = "unknown")]
    pub status: ServiceStatus,
    #[serde(default)]
    pub pid: Option<u32>,
    /// Start time of `pid` in clock ticks since boot; with `pid`, who is ours.
    #[serde(default)]
    pub process_start_time: Option<u64>,
    /// RFC 3339 wall-clock time the current process was started.
    #[serde(default)]
    pub started_at: Option<String>,
    /// Milliseconds since `started_at` when the record was taken (seed's field).
    #[serde(default)]
    pub uptime: u64,
    /// The same value, under the name `status --json` documents.
    #[serde(default)]
    pub uptime_ms: u64,
    /// Restarts over the service's whole life (automatic and manual); never reset.
    #[serde(default)]
    pub restart_count: u64,
    /// Restarts in the current incident, against `max_restart_attempts`.
    #[serde(default)]
    pub restart_attempts: u32,
    #[serde(default)]
    pub consecutive_failures: u32,
    /// RFC 3339 time of the last completed health check.
    #[serde(default)]
    pub last_health_check: Option<String>,
    /// Latency of the last completed health check, in milliseconds.
    #[serde(default)]
    pub last_health_latency_ms: Option<f64>,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub last_error_kind: Option<ErrorKind>,
    /// How the last process ended, e.g. "killed by signal 9 (SIGKILL)".
    #[serde(default)]
    pub last_exit: Option<String>,
    /// RFC 3339 time of the scheduled restart while in `backoff`.
    #[serde(default)]
    pub next_restart_at: Option<String>,
    /// The last few exits, newest last: "<time> <how>".
    #[serde(default)]
    pub recent_exits: Vec<String>,
    /// The limits recovery applies to this service, for `status --explain`.
    #[serde(default)]
    pub limits: Option<Limits>,
    /// Stopped by a human: not started again (not even by a new supervisor)
    /// until a human starts it.
    #[serde(default)]
    pub held_stopped: bool,
}

/// How many exits a record remembers.
pub const RECENT_EXITS: usize = 5;

/// A service's recovery limits (its effective monitoring and the safety block).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub max_restart_attempts: u32,
    pub restart_cooldown_ms: u64,
    pub stable_after_ms: u64,
    pub max_consecutive_failures: u32,
    pub health_check_interval_ms: u64,
}

fn unknown() -> ServiceStatus {
    ServiceStatus::Unknown
}

impl ServiceRecord {
    pub fn new(name: &str, display_name: &str, port: Option<u16>) -> Self {
        ServiceRecord {
            name: name.to_string(),
            display_name: display_name.to_string(),
            port,
            status: ServiceStatus::Unknown,
            pid: None,
            process_start_time: None,
            started_at: None,
            uptime: 0,
            uptime_ms: 0,
            restart_count: 0,
            restart_attempts: 0,
            consecutive_failures: 0,
            last_health_check: None,
            last_health_latency_ms: None,
            last_error: None,
            last_error_kind: None,
            last_exit: None,
            next_restart_at: None,
            recent_exits: vec![],
            limits: None,
            held_stopped: false,
        }
    }

    /// The recorded process, when both halves of its identity are known.
    pub fn process(&self) -> Option<ProcessId> {
        Some(ProcessId {
            pid: self.pid?,
            start_time: self.process_start_time?,
        })
    }
}

/// Counts by status for the summary (SPEC §6).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub total: usize,
    pub running: usize,
    pub starting: usize,
    pub stopped: usize,
    pub unhealthy: usize,
    pub backoff: usize,
    pub escalated: usize,
    pub unknown: usize,
}

impl Summary {
    pub fn of<'a>(records: impl IntoIterator<Item = &'a ServiceRecord>) -> Self {
        let mut s = Summary::default();
        for r in records {
            s.total += 1;
            match r.status {
                ServiceStatus::Running => s.running += 1,
                ServiceStatus::Starting => s.starting += 1,
                ServiceStatus::Stopped => s.stopped += 1,
                ServiceStatus::Unhealthy => s.unhealthy += 1,
                ServiceStatus::Backoff => s.backoff += 1,
                ServiceStatus::Escalated => s.escalated += 1,
                ServiceStatus::Unknown => s.unknown += 1,
            }
        }
        s
    }
}

/// Where the effective kill-switch value comes from (SPEC §4.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KillSwitchSource {
    Config,
    Runtime,
}

impl fmt::Display for KillSwitchSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KillSwitchSource::Config => "config",
            KillSwitchSource::Runtime => "runtime",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillSwitch {
    pub on: bool,
    pub source: KillSwitchSource,
}

/// Something that happened to a service, as the Registry saw it. Published to
/// subscribers (incident history, the live dashboard, `events`), in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unix time in milliseconds.
    pub at_ms: u64,
    pub service: String,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// The status changed.
    Status {
        from: ServiceStatus,
        to: ServiceStatus,
    },
    /// A health check finished.
    Health {
        ok: bool,
        latency_ms: f64,
        error_kind: Option<ErrorKind>,
    },
    /// A process was spawned; `action` is `start`, `restart` or `recover`.
    Started {
        pid: u32,
        action: String,
        automatic: bool,
    },
    /// The process exited on its own.
    Exited { reason: String },
}

/// Unix time now, in milliseconds.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Current wall-clock time as RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_serializes_lowercase() {
        let s = serde_json::to_string(&ServiceStatus::Backoff).unwrap();
        assert_eq!(s, "\"backoff\"");
    }

    #[test]
    fn record_loads_from_seed_shape() {
        // The seed's state file carried only these keys.
        let seed = r#"{"name":"producer","port":8001,"status":"running","pid":42,
            "uptime":1000,"restart_count":2,"consecutive_failures":0,"last_health_check":null}"#;
        let r: ServiceRecord = serde_json::from_str(seed).unwrap();
        assert_eq!(r.status, ServiceStatus::Running);
        assert_eq!(r.restart_count, 2);
        assert_eq!(r.process(), None, "no start time: not an identity");
    }

    #[test]
    fn summary_counts_each_status() {
        let mut a = ServiceRecord::new("a", "A", None);
        a.status = ServiceStatus::Running;
        let mut b = ServiceRecord::new("b", "B", None);
        b.status = ServiceStatus::Escalated;
        let s = Summary::of([&a, &b]);
        assert_eq!((s.total, s.running, s.escalated), (2, 1, 1));
    }

    #[test]
    fn exit_reason_names_signal() {
        assert_eq!(
            ExitReason::Signal(9).to_string(),
            "killed by signal 9 (SIGKILL)"
        );
        assert_eq!(ExitReason::Code(3).to_string(), "exited with code 3");
    }
}

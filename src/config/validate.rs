//! Semantic validation: from the raw serde shapes to a `Config`, collecting every
//! problem instead of stopping at the first (`notify.rs` and `http.rs` build
//! the `notifications` and `http` keys).
//!
//! Owns the global parts (monitoring defaults, safety, duplicate
//! ports, unknown dependencies, cycles) and the way problems are rendered; one
//! service is built in `service.rs`. Every problem carries the key path it is
//! about, so the operator can find it in the file.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::duration::DurationKey;
use super::raw::{RawConfig, RawLogs, RawMonitoring, RawSafety, RawService};
use super::{http, notify, order, service, Config, ConfigError, LogRotation, Monitoring, Safety};

/// Problems found so far, each with its key path.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<(String, String)>);

impl Problems {
    pub(crate) fn push(&mut self, key_path: &str, message: impl Into<String>) {
        self.0.push((key_path.to_owned(), message.into()));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// `key.path: message`, one per problem.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.0.iter().map(|(k, m)| format!("{k}: {m}")).collect()
    }

    /// One problem: `file: key.path: message`. Several: a header line naming the
    /// file and the count, then one indented line per problem.
    pub(crate) fn into_error(self, file: &Path) -> ConfigError {
        let file = file.display();
        let lines = self.lines();
        match lines.as_slice() {
            [one] => ConfigError(format!("{file}: {one}")),
            _ => ConfigError(format!(
                "{file}: {} problems:\n  {}",
                lines.len(),
                lines.join("\n  ")
            )),
        }
    }
}

/// A program the config would run, for the whitelist and `--init-whitelist`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ProgramUse {
    /// Where it is written, e.g. `ai_dawg.services.producer.command[0]`.
    pub key: String,
    /// As written.
    pub written: String,
    /// Resolved to an absolute path.
    pub resolved: PathBuf,
}

/// What validation produced: the config when nothing is wrong, the programs it
/// would run (collected even when something else is wrong), and the problems.
pub(crate) struct Built {
    pub config: Option<Config>,
    pub programs: Vec<ProgramUse>,
    pub problems: Problems,
}

/// Validate `raw` (read from `path`, absolute; relative paths hang from `root`).
pub(crate) fn build(
    raw: RawConfig,
    path: PathBuf,
    root: PathBuf,
    whitelist_path: PathBuf,
) -> Built {
    let mut problems = Problems::default();
    let mut programs = Vec::new();

    let monitoring = overlay_monitoring(
        raw.monitoring
            .as_deref()
            .unwrap_or(&RawMonitoring::default()),
        "monitoring",
        Monitoring::default(),
        &mut problems,
    );
    let safety = safety(raw.safety.map(|s| s.0).unwrap_or_default(), &mut problems);
    let logs = log_rotation(raw.logs.map(|l| l.0).unwrap_or_default(), &mut problems);
    let notifications = raw
        .notifications
        .map(|n| notify::build(n.0, &root, &mut problems, &mut programs));
    let http = raw.http.and_then(|h| http::build(h.0, &mut problems));
    let (history, reports) = super::history::build(raw.history, raw.reports, &mut problems);

    let raw_services: Vec<(String, RawService)> = raw
        .ai_dawg
        .0
        .services
        .0
        .into_iter()
        .map(|(name, service)| (name, service.0))
        .collect();
    let defaults = service::Defaults {
        root: &root,
        monitoring: &monitoring,
    };
    let services: Vec<_> = raw_services
        .iter()
        .map(|(name, raw_service)| {
            service::build(name, raw_service, &defaults, &mut problems, &mut programs)
        })
        .collect();

    check_ports(&raw_services, &mut problems);
    check_dependencies(&raw_services, &mut problems);

    // `None` services or notifications always come with a recorded problem.
    let services: Option<Vec<_>> = services.into_iter().collect();
    let config = services
        .filter(|_| problems.is_empty())
        .map(|services| Config {
            path,
            root,
            enabled: raw.enabled.unwrap_or(true),
            services,
            monitoring,
            safety,
            notifications: notifications.flatten(),
            http,
            logs,
            whitelist_path,
            history,
            reports,
        });
    Built {
        config,
        programs,
        problems,
    }
}

/// `base` overlaid with the keys given in `raw` (the object at `at`).
pub(crate) fn overlay_monitoring(
    raw: &RawMonitoring,
    at: &str,
    base: Monitoring,
    problems: &mut Problems,
) -> Monitoring {
    let positive = |key: DurationKey, base: std::time::Duration, problems: &mut Problems| match key
        .resolve(problems)
    {
        Some(d) if d.is_zero() => {
            problems.push(&key.written_path(), "must be greater than zero");
            base
        }
        Some(d) => d,
        None => base,
    };
    let any = |key: DurationKey, base: std::time::Duration, problems: &mut Problems| {
        key.resolve(problems).unwrap_or(base)
    };
    Monitoring {
        health_check_interval: positive(
            DurationKey {
                at,
                key: "health_check_interval",
                human: raw.health_check_interval.as_ref(),
                seconds: raw.health_check_interval_seconds,
            },
            base.health_check_interval,
            problems,
        ),
        health_check_timeout: positive(
            DurationKey {
                at,
                key: "health_check_timeout",
                human: raw.health_check_timeout.as_ref(),
                seconds: raw.health_check_timeout_seconds,
            },
            base.health_check_timeout,
            problems,
        ),
        max_restart_attempts: raw
            .max_restart_attempts
            .unwrap_or(base.max_restart_attempts),
        restart_cooldown: any(
            DurationKey {
                at,
                key: "restart_cooldown",
                human: raw.restart_cooldown.as_ref(),
                seconds: raw.restart_cooldown_seconds,
            },
            base.restart_cooldown,
            problems,
        ),
        stable_after: any(
            DurationKey {
                at,
                key: "stable_after",
                human: raw.stable_after.as_ref(),
                seconds: raw.stable_after_seconds,
            },
            base.stable_after,
            problems,
        ),
    }
}

fn safety(raw: RawSafety, problems: &mut Problems) -> Safety {
    let defaults = Safety::default();
    let escalate_after = raw
        .max_consecutive_failures_before_escalation
        .unwrap_or(defaults.max_consecutive_failures_before_escalation);
    if escalate_after == 0 {
        problems.push(
            "safety.max_consecutive_failures_before_escalation",
            "must be at least 1",
        );
    }
    Safety {
        emergency_kill_switch: raw
            .emergency_kill_switch
            .unwrap_or(defaults.emergency_kill_switch),
        max_consecutive_failures_before_escalation: escalate_after.max(1),
        kill_port_conflicts: raw
            .kill_port_conflicts
            .unwrap_or(defaults.kill_port_conflicts),
    }
}

/// The `logs` object, with its defaults.
fn log_rotation(raw: RawLogs, problems: &mut Problems) -> LogRotation {
    let default = LogRotation::default();
    let max_bytes = raw.max_bytes.unwrap_or(default.max_bytes);
    if max_bytes < 1024 {
        problems.push("logs.max_bytes", "must be at least 1024 bytes");
    }
    LogRotation {
        max_bytes,
        keep: raw.keep.unwrap_or(default.keep),
    }
}

fn check_ports(services: &[(String, RawService)], problems: &mut Problems) {
    let mut first_user: HashMap<u16, &str> = HashMap::new();
    for (name, service) in services {
        let Some(port) = service.port.filter(|p| *p != 0) else {
            continue;
        };
        if let Some(first) = first_user.get(&port) {
            problems.push(
                &format!("ai_dawg.services.{name}.port"),
                format!("port {port} is used by both `{first}` and `{name}`"),
            );
        } else {
            first_user.insert(port, name);
        }
    }
}

fn check_dependencies(services: &[(String, RawService)], problems: &mut Problems) {
    let names: HashSet<&str> = services.iter().map(|(n, _)| n.as_str()).collect();
    for (name, service) in services {
        let key = format!("ai_dawg.services.{name}.depends_on");
        let deps = service.depends_on.as_deref().unwrap_or_default();
        let mut listed: HashSet<&str> = HashSet::new();
        for dep in deps {
            if dep == name {
                problems.push(&key, format!("`{name}` depends on itself"));
            } else if !names.contains(dep.as_str()) {
                problems.push(&key, format!("unknown service `{dep}`"));
            } else if !listed.insert(dep.as_str()) {
                problems.push(&key, format!("`{dep}` is listed twice"));
            }
        }
    }
    let graph: Vec<(&str, &[String])> = services
        .iter()
        .map(|(n, s)| (n.as_str(), s.depends_on.as_deref().unwrap_or_default()))
        .collect();
    for cycle in order::find_cycles(&graph) {
        let first = cycle.first().cloned().unwrap_or_default();
        let mut shown = cycle.clone();
        shown.push(first.clone());
        problems.push(
            &format!("ai_dawg.services.{first}.depends_on"),
            format!("dependency cycle {}", shown.join(" -> ")),
        );
    }
}

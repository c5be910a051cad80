//! The configuration contract of SPEC §3: `config/autonomy.json` and
//! `config/commands-whitelist.json`, loaded once into plain typed values.
//!
//! This module owns the public types every other part of the manager reads
//! (`Config`, `ServiceSpec`, `HealthCheck`, `Monitoring`, `Safety`,
//! `Notifications`) and the one way to get them, [`Config::load`]: parse strictly
//! (unknown keys refused, key path in every message), validate the meaning
//! (reporting every problem at once), resolve each program and check it against
//! the whitelist. Durations are `Duration`, signals are `Signal`, paths are
//! absolute: nobody downstream parses anything again. It imports nothing from
//! actix, so the CLI client can use it without an actor system.

mod duration;
mod endpoint;
mod history;
mod http;
mod notify;
mod order;
mod parse;
mod program;
mod raw;
mod service;
mod signal;
mod validate;
pub mod whitelist;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;

pub use history::{
    Correlated, Flapping, HistorySettings, LatencyTrend, ReportSettings, TimeOfDay, TimeOfDayUtc,
};
pub use program::{resolve_program, SELF_PROGRAM};

/// File name of the whitelist, next to the config file.
pub const WHITELIST_FILE: &str = "commands-whitelist.json";

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Absolute path of the config file (re-read on `reload`).
    pub path: PathBuf,
    /// Absolute: the parent of the folder holding the config file; relative paths
    /// of the config (service `cwd`, the data folder) hang from it.
    pub root: PathBuf,
    /// `false` turns the manager off as a whole (SPEC §3.0).
    pub enabled: bool,
    /// In the order of the file.
    pub services: Vec<ServiceSpec>,
    /// Global defaults; each service carries its effective copy.
    pub monitoring: Monitoring,
    pub safety: Safety,
    pub notifications: Option<Notifications>,
    /// The dashboard, HTTP API and metrics listener; `None` (the default): off.
    pub http: Option<HttpSettings>,
    /// Rotation of `data/logs/*.log` and `data/audit.log`.
    pub logs: LogRotation,
    /// `<folder of config file>/commands-whitelist.json`, absolute.
    pub whitelist_path: PathBuf,
    /// Incident history: retention and pattern thresholds (optional `history`).
    pub history: HistorySettings,
    /// The daily summary (optional `reports`).
    pub reports: ReportSettings,
}

/// Size-based log rotation: a file reaching `max_bytes` becomes `<file>.1`
/// (older ones shift up) and at most `keep` rotated files are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRotation {
    pub max_bytes: u64,
    pub keep: u32,
}

impl Default for LogRotation {
    fn default() -> Self {
        LogRotation {
            max_bytes: 10 * 1024 * 1024,
            keep: 5,
        }
    }
}

/// One service, with every default applied and every path resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    /// Key under `ai_dawg.services`; only `[A-Za-z0-9_.-]` (it names log files).
    pub name: String,
    /// For humans; defaults to the name.
    pub display_name: String,
    /// argv as written, never passed through a shell.
    pub command: Vec<String>,
    /// `command[0]` resolved to an absolute path (see [`resolve_program`]).
    pub program: PathBuf,
    /// Absolute working directory; defaults to the root.
    pub cwd: PathBuf,
    /// Added to the manager's environment.
    pub env: BTreeMap<String, String>,
    pub port: Option<u16>,
    pub health: HealthCheck,
    /// Time from spawn to the first passing health check before it is a failure.
    pub start_timeout: Duration,
    /// Sent to the process group on stop.
    pub stop_signal: Signal,
    /// Time after `stop_signal` before SIGKILL to the group.
    pub stop_timeout: Duration,
    /// Services that must be `running` before this one starts.
    pub depends_on: Vec<String>,
    /// Started by `start` (unless the kill switch is on).
    pub autostart: bool,
    /// Effective: the global defaults overlaid with the service's own `monitoring`.
    pub monitoring: Monitoring,
    /// Per-process resource limits, set with setrlimit before exec.
    pub limits: ResourceLimits,
}

impl std::fmt::Display for ResourceLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = vec![];
        if let Some(n) = self.max_open_files {
            parts.push(format!("max_open_files {n}"));
        }
        if let Some(b) = self.memory_max_bytes {
            parts.push(format!("memory_max_bytes {b}"));
        }
        f.write_str(&parts.join(", "))
    }
}

/// Optional resource limits of a service's process (inherited by its children).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResourceLimits {
    /// `RLIMIT_NOFILE`: open file descriptors.
    pub max_open_files: Option<u64>,
    /// `RLIMIT_AS`: address space in bytes (the portable stand-in for a memory
    /// cap; it counts virtual memory, so leave room above the resident size).
    pub memory_max_bytes: Option<u64>,
}

/// How a service's health is probed (SPEC §3.1).
#[derive(Debug, Clone, PartialEq)]
pub enum HealthCheck {
    /// `GET url`; 2xx is healthy. Only `http://` (no TLS client).
    Http { url: String },
    /// Connect succeeds. `host` is without IPv6 brackets: connect to `(host, port)`.
    Tcp { host: String, port: u16 },
    /// Exit status 0 is healthy; `program` is `argv[0]` resolved like `command`.
    Command { argv: Vec<String>, program: PathBuf },
    /// No probe given: healthy while the process runs.
    Process,
}

/// Monitoring settings: global defaults, and each service's effective values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Monitoring {
    /// Time between health checks; never zero.
    pub health_check_interval: Duration,
    /// Bound on one health check; never zero.
    pub health_check_timeout: Duration,
    /// Automatic restarts allowed since the service was last stable.
    pub max_restart_attempts: u32,
    /// Minimum time between two automatic restarts.
    pub restart_cooldown: Duration,
    /// Healthy this long, a service gets its restart budget back.
    pub stable_after: Duration,
}

impl Default for Monitoring {
    fn default() -> Self {
        Monitoring {
            health_check_interval: Duration::from_secs(30),
            health_check_timeout: Duration::from_secs(5),
            max_restart_attempts: 3,
            restart_cooldown: Duration::from_secs(60),
            stable_after: Duration::from_secs(300),
        }
    }
}

/// The `safety` settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Safety {
    /// Config value of the kill switch (a run-time setting may override it).
    pub emergency_kill_switch: bool,
    /// Consecutive failures that escalate; at least 1.
    pub max_consecutive_failures_before_escalation: u32,
    /// Stop a foreign process holding a service's port instead of escalating.
    pub kill_port_conflicts: bool,
}

impl Default for Safety {
    fn default() -> Self {
        Safety {
            emergency_kill_switch: false,
            max_consecutive_failures_before_escalation: 5,
            kill_port_conflicts: true,
        }
    }
}

/// Where escalations are sent besides the escalation log (SPEC §3.3).
#[derive(Debug, Clone, PartialEq)]
pub struct Notifications {
    /// `http://` URL that receives the escalation as a JSON POST.
    pub webhook_url: Option<String>,
    /// argv that receives the escalation as JSON.
    pub command: Option<Vec<String>>,
    /// `command[0]` resolved (relative paths from the root).
    pub command_program: Option<PathBuf>,
    /// The webhook's body: the alert as JSON, or Slack's `{"text": ...}`.
    pub format: NotifyFormat,
    /// Further attempts after a failed send (each one audited).
    pub retries: u32,
    /// Wait before the first retry; doubled for each further one.
    pub retry_backoff: Duration,
    /// Bound on one send (webhook request or command run).
    pub timeout: Duration,
    /// Alerts waiting per sink; when full, the oldest is dropped (and audited).
    pub queue_size: usize,
}

/// `notifications.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NotifyFormat {
    /// The alert object itself.
    #[default]
    Json,
    /// `{"text": "<one line>"}`, what a Slack incoming webhook takes.
    Slack,
}

/// The `http` key: where the dashboard, the HTTP API and `/metrics` listen.
#[derive(Clone, PartialEq)]
pub struct HttpSettings {
    /// A loopback address unless `token` is set.
    pub listen: std::net::SocketAddr,
    /// When set, mutating requests (and every API request on a non-loopback
    /// address) need `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

impl std::fmt::Debug for HttpSettings {
    /// The token is a secret: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSettings")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Why a config or whitelist was refused: the full operator-facing message, which
/// starts with the file's path and names the key path of every problem (one line
/// each when there are several).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Parse and validate the config at `path`, including the whitelist next to it
    /// (a missing whitelist is an error).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let unchecked = Unchecked::load(path)?;
        let whitelist = whitelist::Whitelist::load(&unchecked.whitelist_display);
        unchecked.finish(whitelist)
    }

    /// The service called `name`.
    pub fn service(&self, name: &str) -> Option<&ServiceSpec> {
        self.services.iter().find(|s| s.name == name)
    }

    /// Service names in dependency order: dependencies before dependents; ties keep
    /// the order of the file.
    pub fn start_order(&self) -> Vec<String> {
        let graph: Vec<(&str, &[String])> = self
            .services
            .iter()
            .map(|s| (s.name.as_str(), s.depends_on.as_slice()))
            .collect();
        order::start_order(&graph)
    }
}

/// A config parsed and validated except for the whitelist.
struct Unchecked {
    /// The config, when no problem was found so far.
    config: Option<Config>,
    /// Problems found so far.
    problems: validate::Problems,
    /// Every program the config would run, for the whitelist.
    programs: Vec<validate::ProgramUse>,
    /// The config path as the operator gave it (messages start with it).
    display: PathBuf,
    /// The whitelist path in the same form.
    whitelist_display: PathBuf,
}

impl Unchecked {
    /// Read and parse `path` (syntax and type errors end here, one at a time), then
    /// validate its meaning, collecting every problem.
    fn load(path: &Path) -> Result<Unchecked, ConfigError> {
        let display = path.to_path_buf();
        let text = parse::read(path)?;
        let raw: raw::Object<raw::RawConfig> = parse::parse_json(&text, path)?;
        let absolute = absolute_config_path(path)?;
        let folder = absolute.parent().unwrap_or(Path::new("/")).to_path_buf();
        let root = folder.parent().unwrap_or(&folder).to_path_buf();
        let whitelist_path = folder.join(WHITELIST_FILE);
        let whitelist_display = path.parent().unwrap_or(Path::new("")).join(WHITELIST_FILE);
        let built = validate::build(raw.0, absolute, root, whitelist_path);
        Ok(Unchecked {
            config: built.config,
            problems: built.problems,
            programs: built.programs,
            display,
            whitelist_display,
        })
    }

    /// Check the programs against the whitelist (or report why it could not be
    /// read) and give the config or every problem found.
    fn finish(
        mut self,
        whitelist: Result<whitelist::Whitelist, ConfigError>,
    ) -> Result<Config, ConfigError> {
        let whitelist_error = match whitelist {
            Ok(list) => {
                for used in &self.programs {
                    if !list.allows(&used.written, &used.resolved) {
                        self.problems.push(
                            &used.key,
                            format!(
                                "program `{}` ({}) is not on the whitelist {}; add {:?} to its \
                                 \"commands\" if the manager may run it",
                                used.written,
                                used.resolved.display(),
                                self.whitelist_display.display(),
                                whitelist::entry_for(&used.written, &used.resolved)
                                    .unwrap_or_else(|| used.written.clone()),
                            ),
                        );
                    }
                }
                None
            }
            Err(e) => Some(e),
        };
        match (self.problems.is_empty(), whitelist_error) {
            (true, None) => self.config.ok_or_else(|| {
                ConfigError(format!("{}: invalid configuration", self.display.display()))
            }),
            (true, Some(e)) => Err(e),
            (false, None) => Err(self.problems.into_error(&self.display)),
            (false, Some(e)) => Err(ConfigError(format!(
                "{}\n{}",
                self.problems.into_error(&self.display),
                e
            ))),
        }
    }

    /// The config's problems, without any whitelist check.
    fn into_result(self) -> Result<(Config, Vec<validate::ProgramUse>), ConfigError> {
        if !self.problems.is_empty() {
            return Err(self.problems.into_error(&self.display));
        }
        match self.config {
            Some(config) => Ok((config, self.programs)),
            None => Err(ConfigError(format!(
                "{}: invalid configuration",
                self.display.display()
            ))),
        }
    }
}

/// Absolute form of the config path. `..` components are resolved through the file
/// system (lexical folding would be wrong across symlinks); otherwise the path is
/// kept as the operator wrote it.
fn absolute_config_path(path: &Path) -> Result<PathBuf, ConfigError> {
    let fail = |e: std::io::Error| {
        ConfigError(format!(
            "{}: cannot make the path absolute: {e}",
            path.display()
        ))
    };
    let absolute = std::path::absolute(path).map_err(fail)?;
    if !absolute.components().any(|c| c == Component::ParentDir) {
        return Ok(absolute);
    }
    match (absolute.parent(), absolute.file_name()) {
        (Some(folder), Some(file)) => Ok(folder.canonicalize().map_err(fail)?.join(file)),
        _ => absolute.canonicalize().map_err(fail),
    }
}

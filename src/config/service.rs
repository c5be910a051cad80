//! One service: from its raw shape under `ai_dawg.services.NAME` to a
//! `ServiceSpec`, with defaults applied, paths and programs resolved, and every
//! problem of that service recorded with its key path.
//!
//! Checks that need all services (ports, dependencies, cycles) live in
//! `validate.rs`; this file also owns the argv checks shared with the
//! notification command.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;

use super::duration::DurationKey;
use super::program::{clean, resolve_program};
use super::raw::RawService;
use super::validate::{overlay_monitoring, Problems, ProgramUse};
use super::{endpoint, signal, HealthCheck, Monitoring, ServiceSpec};

const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Names become `data/logs/<name>.log`; stay well below the file-name limit.
const MAX_NAME_LEN: usize = 100;
/// The audit trail writes `manager` in the service column for the manager's own
/// operations; a service of that name would be indistinguishable.
const RESERVED_NAME: &str = "manager";

/// What a service inherits.
pub(crate) struct Defaults<'a> {
    /// Absolute root; the default `cwd` and the base of relative ones.
    pub root: &'a Path,
    /// The global monitoring settings, overlaid by the service's own.
    pub monitoring: &'a Monitoring,
}

/// Build the service `name`; `None` when something is wrong (recorded in `problems`).
pub(crate) fn build(
    name: &str,
    raw: &RawService,
    defaults: &Defaults,
    problems: &mut Problems,
    programs: &mut Vec<ProgramUse>,
) -> Option<ServiceSpec> {
    let at = format!("ai_dawg.services.{name}");
    let before = problems.len();
    if let Err(e) = check_name(name) {
        problems.push(&at, e);
    }
    let cwd = working_dir(raw.cwd.as_deref(), &at, defaults.root, problems);

    let program = match &raw.command {
        None => {
            problems.push(
                &format!("{at}.command"),
                "missing: give the argv to run, e.g. [\"python3\", \"server.py\"]",
            );
            None
        }
        Some(argv) => program(argv, &format!("{at}.command"), &cwd, problems, programs),
    };
    let health = health(raw, &at, &cwd, problems, programs);

    if raw.port == Some(0) {
        problems.push(
            &format!("{at}.port"),
            "port 0 is not a usable port (1-65535)",
        );
    }
    let env = env(raw, &at, problems);

    let start_timeout = DurationKey {
        at: &at,
        key: "start_timeout",
        human: raw.start_timeout.as_ref(),
        seconds: raw.start_timeout_seconds,
    };
    let start_timeout_value = start_timeout.resolve(problems);
    if start_timeout_value.is_some_and(|d| d.is_zero()) {
        problems.push(&start_timeout.written_path(), "must be greater than zero");
    }
    let stop_timeout = DurationKey {
        at: &at,
        key: "stop_timeout",
        human: raw.stop_timeout.as_ref(),
        seconds: raw.stop_timeout_seconds,
    }
    .resolve(problems);
    let stop_signal = match &raw.stop_signal {
        None => Some(Signal::SIGTERM),
        Some(raw_signal) => signal::parse_signal(raw_signal)
            .map_err(|e| problems.push(&format!("{at}.stop_signal"), e))
            .ok(),
    };
    let monitoring = match &raw.monitoring {
        None => *defaults.monitoring,
        Some(own) => overlay_monitoring(
            own,
            &format!("{at}.monitoring"),
            *defaults.monitoring,
            problems,
        ),
    };

    if raw.max_open_files == Some(0) {
        problems.push(&format!("{at}.max_open_files"), "must be at least 1");
    }
    if raw.memory_max_bytes.is_some_and(|m| m < 1024 * 1024) {
        problems.push(&format!("{at}.memory_max_bytes"), "must be at least 1 MiB");
    }
    if problems.len() != before {
        return None;
    }
    Some(ServiceSpec {
        name: name.to_owned(),
        display_name: raw.display_name.clone().unwrap_or_else(|| name.to_owned()),
        command: raw.command.clone()?,
        program: program?,
        cwd,
        env,
        port: raw.port,
        health: health?,
        start_timeout: start_timeout_value.unwrap_or(DEFAULT_START_TIMEOUT),
        stop_signal: stop_signal?,
        stop_timeout: stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT),
        depends_on: raw.depends_on.clone().unwrap_or_default(),
        autostart: raw.autostart.unwrap_or(true),
        monitoring,
        limits: super::ResourceLimits {
            max_open_files: raw.max_open_files,
            memory_max_bytes: raw.memory_max_bytes,
        },
    })
}

/// Check an argv written at `key` and resolve its program from `cwd`; records the
/// use for the whitelist. `None` when unusable (recorded in `problems`).
pub(crate) fn program(
    argv: &[String],
    key: &str,
    cwd: &Path,
    problems: &mut Problems,
    programs: &mut Vec<ProgramUse>,
) -> Option<PathBuf> {
    let Some(written) = argv.first() else {
        problems.push(key, "must not be empty: give at least the program to run");
        return None;
    };
    let mut usable = true;
    for (i, arg) in argv.iter().enumerate() {
        if arg.contains('\0') {
            problems.push(&format!("{key}[{i}]"), "contains a NUL byte");
            usable = false;
        }
    }
    let key0 = format!("{key}[0]");
    if written.trim().is_empty() {
        problems.push(&key0, "the program name is empty");
        return None;
    }
    if !usable {
        return None;
    }
    match resolve_program(written, cwd) {
        Some(resolved) => {
            programs.push(ProgramUse {
                key: key0,
                written: written.clone(),
                resolved: resolved.clone(),
            });
            Some(resolved)
        }
        None => {
            problems.push(
                &key0,
                format!(
                    "program `{written}` not found on PATH; install it, or write its absolute path"
                ),
            );
            None
        }
    }
}

fn check_name(name: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if name.is_empty() {
        Err("a service name must not be empty".into())
    } else if !name.chars().all(allowed) {
        Err(format!(
            "invalid service name {name:?}: use only letters, digits, `_`, `.` and `-` (it names data/logs/<name>.log)"
        ))
    } else if name == "." || name == ".." {
        Err(format!("invalid service name {name:?}"))
    } else if name.len() > MAX_NAME_LEN {
        Err(format!(
            "service name is longer than {MAX_NAME_LEN} characters"
        ))
    } else if name == RESERVED_NAME {
        Err(format!(
            "`{RESERVED_NAME}` is reserved (the audit trail uses it for the manager itself)"
        ))
    } else {
        Ok(())
    }
}

fn working_dir(raw: Option<&str>, at: &str, root: &Path, problems: &mut Problems) -> PathBuf {
    match raw {
        None => root.to_path_buf(),
        Some(dir) if dir.is_empty() || dir.contains('\0') => {
            problems.push(
                &format!("{at}.cwd"),
                "must be a directory path (leave it out to use the root)",
            );
            root.to_path_buf()
        }
        Some(dir) => clean(&root.join(dir)),
    }
}

fn health(
    raw: &RawService,
    at: &str,
    cwd: &Path,
    problems: &mut Problems,
    programs: &mut Vec<ProgramUse>,
) -> Option<HealthCheck> {
    match (&raw.health_endpoint, &raw.health_command) {
        (Some(_), Some(_)) => {
            problems.push(
                at,
                "give either `health_endpoint` or `health_command`, not both",
            );
            None
        }
        (Some(url), None) => endpoint::parse_health_endpoint(url)
            .map_err(|e| problems.push(&format!("{at}.health_endpoint"), e))
            .ok(),
        (None, Some(argv)) => {
            let program = program(
                argv,
                &format!("{at}.health_command"),
                cwd,
                problems,
                programs,
            )?;
            Some(HealthCheck::Command {
                argv: argv.clone(),
                program,
            })
        }
        (None, None) => Some(HealthCheck::Process),
    }
}

fn env(raw: &RawService, at: &str, problems: &mut Problems) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for (key, value) in raw.env.iter().flat_map(|e| e.0.iter()) {
        if key.is_empty() || key.contains(['=', '\0']) {
            problems.push(
                &format!("{at}.env"),
                format!("{key:?} is not a valid variable name (empty, or contains `=` or NUL)"),
            );
        } else if value.contains('\0') {
            problems.push(&format!("{at}.env.{key}"), "contains a NUL byte");
        } else {
            env.insert(key.clone(), value.clone());
        }
    }
    env
}

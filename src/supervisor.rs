//! `ai-dawg-manager start`: claim the data folder, replace what a crashed
//! supervisor left running, print the banner, wire the actors together and run
//! them until SIGTERM, SIGINT or `shutdown`.

use crate::actors::audit::{Audit, Outcome, Record};
use crate::actors::control::ControlServer;
use crate::actors::manager::{Manager, Shutdown};
use crate::actors::recovery::{Recovery, Register};
use crate::actors::registry::Registry;
use crate::actors::service::ServiceActor;
use crate::config::{Config, ServiceSpec};
use crate::model::{KillSwitch, KillSwitchSource, ServiceRecord};
use crate::paths::DataPaths;
use crate::persist::{self, LoadedState, PidLock};
use crate::policy::Settings;
use crate::process::{group, procfs};
use actix::prelude::*;
use log::{info, warn};
use nix::sys::signal::Signal;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TARGET: &str = "manager";

/// Why `start` could not run.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Lock(#[from] persist::LockError),
    #[error("cannot prepare {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StartError + '_ {
    move |source| StartError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The run-time kill switch kept in the data folder, if one was set.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct KillSwitchFile {
    pub on: bool,
}

/// The kill switch in force: the data folder's setting, else the config's.
pub fn effective_kill_switch(config: &Config, paths: &DataPaths) -> KillSwitch {
    match fs::read(&paths.kill_switch)
        .ok()
        .and_then(|b| serde_json::from_slice::<KillSwitchFile>(&b).ok())
    {
        Some(f) => KillSwitch {
            on: f.on,
            source: KillSwitchSource::Runtime,
        },
        None => KillSwitch {
            on: config.safety.emergency_kill_switch,
            source: KillSwitchSource::Config,
        },
    }
}

/// What a previous supervisor left behind.
struct Leftovers {
    records: HashMap<String, ServiceRecord>,
    /// Audit lines for processes found and replaced.
    replaced: Vec<(String, String)>,
}

/// Stop every process the state file names that is still ours (same pid *and*
/// start time, so a recycled pid is never signalled): the new supervisor then
/// starts exactly one fresh instance of each service.
fn replace_leftovers(config: &Config, paths: &DataPaths) -> Leftovers {
    let mut records = HashMap::new();
    match persist::load_state(&paths.state) {
        LoadedState::Missing => {}
        LoadedState::Corrupt { moved_to, error } => {
            warn!(target: TARGET, "state file unreadable ({error}); kept as {}; starting from the config", moved_to.display());
        }
        LoadedState::Loaded(state) => records.extend(state),
    }
    let mut stopping: Vec<(&ServiceSpec, u32)> = vec![];
    for spec in &config.services {
        let Some(id) = records.get(&spec.name).and_then(ServiceRecord::process) else {
            continue;
        };
        if procfs::is_same_process(id) {
            info!(target: TARGET, "{}: pid {} from the previous supervisor is still running; replacing it", spec.name, id.pid);
            group::signal_group(id.pid, spec.stop_signal);
            stopping.push((spec, id.pid));
        }
    }
    let mut replaced = vec![];
    let t0 = Instant::now();
    for (spec, pid) in stopping {
        let deadline = t0 + spec.stop_timeout;
        while group::group_alive(pid) && Instant::now() < deadline {
            if procfs::is_zombie(pid) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let forced = group::signal_group(pid, Signal::SIGKILL);
        replaced.push((
            spec.name.clone(),
            format!(
                "replaced pid {pid} left by the previous supervisor{}",
                if forced { " (SIGKILL)" } else { "" }
            ),
        ));
    }
    Leftovers { records, replaced }
}

fn print_banner(config: &Config) {
    println!("🚀 ========== AI DAWG Autonomous Manager Starting ==========");
    println!("Config: {}", config.root.display());
    println!("Services: {}", config.services.len());
    println!(
        "Health Check Interval: {}",
        humantime::format_duration(config.monitoring.health_check_interval)
    );
    println!(
        "Max Restart Attempts: {}",
        config.monitoring.max_restart_attempts
    );
    println!("===========================================================");
}

fn bind_socket(path: &Path) -> Result<std::os::unix::net::UnixListener, StartError> {
    // We hold the data folder's lock: any socket file here is a dead one's.
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(path)(e)),
    }
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = std::os::unix::net::UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = bound.map_err(io_err(path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io_err(path))?;
    listener.set_nonblocking(true).map_err(io_err(path))?;
    Ok(listener)
}

/// Run the supervisor in the foreground. Returns when every service is down.
pub fn run(config_path: &Path, data_dir: Option<&Path>) -> Result<(), StartError> {
    let config = Config::load(config_path)?;
    if !config.enabled {
        println!("Autonomous management is disabled in the config (\"enabled\": false); nothing started.");
        return Ok(());
    }
    let paths = DataPaths::resolve(&config.path, data_dir);
    fs::create_dir_all(&paths.logs).map_err(io_err(&paths.logs))?;
    let _lock = PidLock::acquire(&paths.pid)?;
    let listener = bind_socket(&paths.socket)?;
    let leftovers = replace_leftovers(&config, &paths);
    let kill_switch = effective_kill_switch(&config, &paths);
    print_banner(&config);

    let config = Arc::new(config);
    let sys = System::new();
    sys.block_on(async {
        wire(
            config.clone(),
            paths.clone(),
            leftovers,
            kill_switch,
            listener,
        );
    });
    let result = sys.run();
    let _ = fs::remove_file(&paths.socket);
    result.map_err(io_err(&paths.dir))
}

fn settings_of(config: &Config, spec: &ServiceSpec, kill_switch: bool) -> Settings {
    Settings {
        max_restart_attempts: spec.monitoring.max_restart_attempts,
        restart_cooldown: spec.monitoring.restart_cooldown,
        stable_after: spec.monitoring.stable_after,
        max_consecutive_failures: config.safety.max_consecutive_failures_before_escalation,
        kill_switch,
        kill_port_conflicts: config.safety.kill_port_conflicts,
    }
}

/// Create the actors and connect them (inside the running System).
fn wire(
    config: Arc<Config>,
    paths: DataPaths,
    leftovers: Leftovers,
    kill_switch: KillSwitch,
    listener: std::os::unix::net::UnixListener,
) {
    let audit = Audit::new(
        paths.audit.clone(),
        paths.escalations.clone(),
        config.notifications.clone(),
    )
    .start();
    audit.do_send(
        Record::new("manager", "start", Outcome::Success).detail(format!(
            "supervisor pid {} on {} ({} services)",
            std::process::id(),
            config.path.display(),
            config.services.len()
        )),
    );
    for (service, detail) in &leftovers.replaced {
        audit.do_send(Record::new(service, "stop", Outcome::Success).detail(detail.clone()));
    }

    let records = config
        .services
        .iter()
        .map(|s| {
            let mut r = ServiceRecord::new(&s.name, &s.display_name, s.port);
            if let Some(old) = leftovers.records.get(&s.name) {
                r.restart_count = old.restart_count;
            }
            r
        })
        .collect();
    let registry = Registry::new(paths.state.clone(), records, kill_switch).start();
    // Incident history (issue 6): records every event the Registry publishes.
    let history = crate::actors::history::History::new(
        paths.history.clone(),
        paths.reports.clone(),
        config.history.clone(),
        config.reports,
        audit.clone().recipient(),
    );
    registry.do_send(crate::actors::registry::SubscribeEvents(
        history.start().recipient(),
    ));
    let recovery = Recovery::new(registry.clone(), audit.clone(), kill_switch.on).start();

    let client = awc::Client::builder()
        .connector(awc::Connector::new().limit(0))
        .disable_redirects()
        .finish();
    let mut services = BTreeMap::new();
    for spec in &config.services {
        let spec_arc = Arc::new(spec.clone());
        let addr = ServiceActor::new(
            spec_arc,
            paths.service_log(&spec.name),
            registry.clone(),
            recovery.clone(),
            audit.clone(),
            client.clone(),
        )
        .start();
        recovery.do_send(Register {
            service: spec.name.clone(),
            display_name: spec.display_name.clone(),
            settings: settings_of(&config, spec, kill_switch.on),
            addr: addr.clone(),
        });
        services.insert(spec.name.clone(), addr);
    }
    let manager = Manager::new(
        config.clone(),
        services,
        registry.clone(),
        recovery,
        audit,
        kill_switch.on,
    )
    .start();

    match tokio::net::UnixListener::from_std(listener) {
        Ok(l) => {
            ControlServer::new(l, manager.clone(), registry).start();
        }
        Err(e) => warn!(target: TARGET, "control socket unusable: {e}"),
    }

    actix_rt::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            warn!(target: TARGET, "cannot listen for SIGTERM/SIGINT");
            return;
        };
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        manager.do_send(Shutdown {
            reason: format!("{name} received"),
        });
    });
}

//! `ai-dawg-manager start`: claim the data folder, replace what a crashed
//! supervisor left running, print the banner, wire the actors together and run
//! them until SIGTERM, SIGINT or `shutdown`.

use crate::actors::audit::{Audit, Outcome, Record};
use crate::actors::control::ControlServer;
use crate::actors::manager::{limits_of, Inherited, Manager, Peers, Reload, Shutdown};
use crate::actors::notifier::Notifier;
use crate::actors::recovery::Recovery;
use crate::actors::registry::{Registry, SubscribeEvents};
use crate::config::Config;
use crate::logs::LogPumps;
use crate::model::{KillSwitch, KillSwitchSource, ProcessId, ServiceRecord, ServiceStatus};
use crate::paths::DataPaths;
use crate::persist::{self, LoadedState, PidLock};
use crate::process::{group, procfs};
use actix::prelude::*;
use log::{info, warn};
use nix::sys::signal::Signal;
use std::collections::HashMap;
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
    #[error("cannot listen on {addr} (http.listen): {source}; choose another port or stop what holds it")]
    Http {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
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
    /// Processes still ours (same pid *and* start time), to adopt.
    alive: HashMap<String, ProcessId>,
    /// Audit lines for processes of services no longer configured, stopped.
    replaced: Vec<(String, String)>,
}

/// Read the state file and find which recorded processes are still ours: a
/// recycled pid has another start time and is never touched. Processes of
/// services that are no longer configured are stopped.
fn find_leftovers(config: &Config, paths: &DataPaths) -> Leftovers {
    let mut records = HashMap::new();
    match persist::load_state(&paths.state) {
        LoadedState::Missing => {}
        LoadedState::Corrupt { moved_to, error } => {
            warn!(target: TARGET, "state file unreadable ({error}); kept as {}; starting from the config", moved_to.display());
        }
        LoadedState::Loaded(state) => records.extend(state),
    }
    let mut alive = HashMap::new();
    let mut replaced = vec![];
    for (name, record) in &records {
        let Some(id) = record.process() else { continue };
        if !procfs::is_same_process(id) {
            // The leader is gone. If its pid is unused and its group still has
            // members, they are ours: the kernel never hands out a pid that is
            // still some group's id, so the group cannot be anyone else's.
            let leader_gone = match procfs::start_time(id.pid) {
                None => true,
                // Our leader, dead but not reaped (its parent was the old supervisor).
                Some(t) => t == id.start_time && procfs::is_zombie(id.pid),
            };
            if leader_gone && group::group_alive(id.pid) {
                info!(target: TARGET, "{name}: pid {} died while no supervisor ran; killing what is left of its group", id.pid);
                group::signal_group(id.pid, Signal::SIGKILL);
                replaced.push((
                    name.clone(),
                    format!("killed the leftovers of the process group of pid {}, which died while no supervisor ran", id.pid),
                ));
            }
            continue;
        }
        if config.service(name).is_some() {
            alive.insert(name.clone(), id);
        } else {
            info!(target: TARGET, "{name}: no longer configured; stopping pid {} left by the previous supervisor", id.pid);
            group::signal_group(id.pid, Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while group::group_alive(id.pid)
                && !procfs::is_zombie(id.pid)
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            group::signal_group(id.pid, Signal::SIGKILL);
            replaced.push((
                name.clone(),
                format!("stopped pid {} of a service no longer configured", id.pid),
            ));
        }
    }
    // The state file may not name a process yet (the supervisor died between
    // spawning it and writing it down), or name a dead leader whose children
    // live on: the processes holding a service's log FIFO are that service's,
    // whatever the file says.
    let fifos: Vec<(String, std::path::PathBuf)> = config
        .services
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                crate::logs::fifo_path(&paths.service_log(&s.name)),
            )
        })
        .filter(|(_, f)| f.exists())
        .collect();
    let wanted = fifos.iter().map(|(_, f)| f.clone()).collect();
    let holders = procfs::fd_holders(&wanted, false);
    for (name, fifo) in &fifos {
        let Some(pids) = holders.get(fifo) else {
            continue;
        };
        let known = alive.get(name).map(|id: &ProcessId| id.pid);
        // The group leader among them is the service's main process.
        let leader = pids
            .iter()
            .copied()
            .find(|p| procfs::pgid(*p) == i32::try_from(*p).ok() && !procfs::is_zombie(*p));
        match (known, leader) {
            (None, Some(pid)) => {
                if let Some(id) = procfs::identify(pid) {
                    info!(target: TARGET, "{name}: pid {pid} writes to its log but was not recorded; adopting it");
                    alive.insert(name.clone(), id);
                }
            }
            (None, None) => {
                // Only members of a group whose leader is gone: leftovers.
                for pid in pids {
                    if let Ok(raw) = i32::try_from(*pid) {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(raw),
                            Signal::SIGKILL,
                        );
                    }
                }
                replaced.push((
                    name.clone(),
                    format!("killed leftover processes {pids:?} of a leader that died while no supervisor ran"),
                ));
            }
            _ => {}
        }
    }
    Leftovers {
        records,
        alive,
        replaced,
    }
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

/// Raise the open-files limit to its hard maximum: the supervisor holds a few
/// descriptors per service (log FIFO and file, pidfds, probes in flight).
fn raise_fd_limit(services: usize) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_err() {
        warn!(target: TARGET, "cannot raise the open-files limit from {soft} to {hard}");
    }
    let have = getrlimit(Resource::RLIMIT_NOFILE)
        .map(|l| l.0)
        .unwrap_or(soft);
    let need = 64 + 4 * services as u64;
    if have < need {
        warn!(target: TARGET, "open-files limit {have} is low for {services} services (about {need} wanted): raise it with `ulimit -n` or LimitNOFILE");
    }
}

/// Run the supervisor in the foreground. Returns when every service is down.
pub fn run(config_path: &Path, data_dir: Option<&Path>) -> Result<(), StartError> {
    crate::process::memory::configure();
    let config = Config::load(config_path)?;
    if !config.enabled {
        println!("Autonomous management is disabled in the config (\"enabled\": false); nothing started.");
        return Ok(());
    }
    raise_fd_limit(config.services.len());
    if let Err(e) = crate::process::reaper::become_subreaper() {
        warn!(target: TARGET, "cannot become a child subreaper ({e}): orphans of services go to pid 1");
    }
    let paths = DataPaths::resolve(&config.path, data_dir);
    fs::create_dir_all(&paths.logs).map_err(io_err(&paths.logs))?;
    let _lock = PidLock::acquire(&paths.pid)?;
    let listener = bind_socket(&paths.socket)?;
    let http_listener = match &config.http {
        Some(h) => Some(crate::http::bind(h).map_err(|source| StartError::Http {
            addr: h.listen,
            source,
        })?),
        None => None,
    };
    let leftovers = find_leftovers(&config, &paths);
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
            http_listener,
        );
    });
    let result = sys.run();
    let _ = fs::remove_file(&paths.socket);
    result.map_err(io_err(&paths.dir))
}

/// Create the actors and connect them (inside the running System).
fn wire(
    config: Arc<Config>,
    paths: DataPaths,
    leftovers: Leftovers,
    kill_switch: KillSwitch,
    listener: std::os::unix::net::UnixListener,
    http_listener: Option<std::net::TcpListener>,
) {
    // Audit hands escalations to the Notifier, whose sends Audit records.
    let mut notifier = None;
    let audit = Audit::create(|ctx| {
        let n = config
            .notifications
            .as_ref()
            .and_then(|n| Notifier::new(n, ctx.address().recipient()))
            .map(Actor::start);
        notifier.clone_from(&n);
        Audit::new(
            paths.audit.clone(),
            paths.escalations.clone(),
            n.map(Addr::recipient),
            config.logs,
        )
    });
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
            r.limits = Some(limits_of(&config, s));
            if let Some(old) = leftovers.records.get(&s.name) {
                // The record goes on where it was: counters, last errors, a
                // pending escalation, a human's stop.
                r.restart_count = old.restart_count;
                r.restart_attempts = old.restart_attempts;
                r.consecutive_failures = old.consecutive_failures;
                r.last_error = old.last_error.clone();
                r.last_error_kind = old.last_error_kind;
                r.last_exit = old.last_exit.clone();
                r.recent_exits = old.recent_exits.clone();
                r.held_stopped = old.held_stopped;
                if old.status == ServiceStatus::Escalated {
                    r.status = ServiceStatus::Escalated;
                }
            }
            r
        })
        .collect();
    // The Registry and the control socket get a thread of their own: `status`
    // is answered even while the main thread spawns a storm of restarts.
    let control = Arbiter::new();
    let registry =
        Registry::new(paths.state.clone(), records, kill_switch).with_writer(Some(audit.clone()));
    let registry = Registry::start_in_arbiter(&control.handle(), move |_| registry);
    if let Some(n) = &notifier {
        // Resolutions: the Notifier sees escalated services come back.
        registry.do_send(SubscribeEvents(n.clone().recipient()));
    }
    // Incident history (issue 6): records every event the Registry publishes.
    let history = crate::actors::history::History::new(
        paths.history.clone(),
        paths.reports.clone(),
        config.history.clone(),
        config.reports,
        audit.clone().recipient(),
    )
    .with_notifier(notifier.map(Addr::recipient));
    registry.do_send(crate::actors::registry::SubscribeEvents(
        history.start().recipient(),
    ));
    let recovery = Recovery::new(registry.clone(), audit.clone(), kill_switch.on).start();

    let peers = Peers {
        registry: registry.clone(),
        recovery,
        audit,
        pumps: LogPumps::new(config.logs),
    };
    let manager = Manager::new(
        config.clone(),
        paths.clone(),
        peers,
        kill_switch,
        Inherited {
            alive: leftovers.alive,
            records: leftovers.records,
        },
    )
    .start();

    let server = ControlServer::new(listener, manager.clone(), registry.clone());
    ControlServer::start_in_arbiter(&control.handle(), move |_| server);
    if let (Some(listener), Some(settings)) = (http_listener, &config.http) {
        start_http(listener, settings, &paths, manager.clone(), registry);
    }

    actix_rt::spawn(crate::process::reaper::run());
    actix_rt::spawn(crate::process::memory::run());
    let reloader = manager.clone();
    actix_rt::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            warn!(target: TARGET, "cannot listen for SIGHUP");
            return;
        };
        while hup.recv().await.is_some() {
            info!(target: TARGET, "SIGHUP: reloading the config");
            let _ = reloader.send(Reload).await;
        }
    });
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

/// The dashboard, HTTP API and metrics (config key `http`).
fn start_http(
    listener: std::net::TcpListener,
    settings: &crate::config::HttpSettings,
    paths: &DataPaths,
    manager: Addr<Manager>,
    registry: Addr<Registry>,
) {
    let bound = listener.local_addr().unwrap_or(settings.listen);
    let metrics = crate::http::metrics::Metrics::new(registry.clone()).start();
    let state = crate::http::AppState::new(settings, bound, manager, registry, metrics, paths);
    match crate::http::start(listener, state) {
        Ok(()) => info!(target: TARGET, "dashboard, API and metrics on http://{bound}/"),
        Err(e) => warn!(target: TARGET, "cannot serve http on {bound}: {e}"),
    }
}

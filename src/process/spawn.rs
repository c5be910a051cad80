//! Starting a service: its argv without a shell, in its own process group
//! (so a stop reaches every process it forks), stdin from /dev/null, stdout and
//! stderr appended straight to its log file (so a supervisor restart does not
//! cut its output off).

use crate::config::{ResourceLimits, ServiceSpec};
use crate::model::ProcessId;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Stdio;
use tokio::process::{Child, Command};

/// A freshly spawned service process.
#[derive(Debug)]
pub struct Spawned {
    pub child: Child,
    pub id: ProcessId,
}

/// Open (create) a log file for appending: every write lands at the end, even
/// with several writers.
pub fn open_log(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

/// Set the service's resource limits in the child, before exec.
fn apply_limits(limits: ResourceLimits) -> io::Result<()> {
    use nix::sys::resource::{setrlimit, Resource};
    if let Some(n) = limits.max_open_files {
        setrlimit(Resource::RLIMIT_NOFILE, n, n).map_err(io::Error::from)?;
    }
    if let Some(b) = limits.memory_max_bytes {
        setrlimit(Resource::RLIMIT_AS, b, b).map_err(io::Error::from)?;
    }
    Ok(())
}

/// Spawn `spec` as the leader of a new process group, its output to `output`:
/// the service's log FIFO (see [`crate::logs`]) or, failing that, its log file.
pub fn spawn(spec: &ServiceSpec, output: &Path) -> io::Result<Spawned> {
    use std::os::unix::fs::FileTypeExt;
    let log = match std::fs::metadata(output) {
        Ok(m) if m.file_type().is_fifo() => crate::logs::open_writer(output)?,
        _ => open_log(output)?,
    };
    let mut cmd = Command::new(&spec.program);
    if let Some(argv0) = spec.command.first() {
        cmd.arg0(argv0);
    }
    cmd.args(spec.command.iter().skip(1))
        .current_dir(&spec.cwd)
        .envs(&spec.env)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .process_group(0)
        .kill_on_drop(false);
    let limits = spec.limits;
    if limits != ResourceLimits::default() {
        // SAFETY: between fork and exec only async-signal-safe calls are made
        // (setrlimit), on values copied before the fork.
        unsafe {
            cmd.pre_exec(move || apply_limits(limits));
        }
    }
    let child = cmd.spawn().map_err(|e| match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EINVAL) if limits != ResourceLimits::default() => {
            io::Error::new(
                e.kind(),
                format!("the system refused the resource limits ({limits}): {e}"),
            )
        }
        _ => e,
    })?;
    let pid = child
        .id()
        .ok_or_else(|| io::Error::other("spawned child has no pid"))?;
    super::reaper::track(pid);
    // The start time exists from fork on; if the process is already gone its
    // exit will be reported by the wait, so 0 only marks "unknown".
    let start_time = super::procfs::start_time(pid).unwrap_or(0);
    Ok(Spawned {
        child,
        id: ProcessId { pid, start_time },
    })
}

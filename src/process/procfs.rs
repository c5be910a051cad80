//! Readers of `/proc/PID/*`: the process start time that makes a pid an
//! identity, the command line shown in escalations, and the process group.

use crate::model::ProcessId;
use std::fs;

/// Fields of `/proc/PID/stat` after the command name, which may itself hold
/// spaces and parentheses: split after the *last* `)`.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    Some(after.split_whitespace().map(str::to_string).collect())
}

/// Start time of the process in clock ticks since boot (field 22), or `None`
/// when there is no such process.
pub fn start_time(pid: u32) -> Option<u64> {
    // Field 3 (state) is index 0 after the name; field 22 is index 19.
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// The process group of `pid` (field 5).
pub fn pgid(pid: u32) -> Option<i32> {
    stat_fields(pid)?.get(2)?.parse().ok()
}

/// Whether the process is a zombie (state `Z`): exited, not yet reaped.
pub fn is_zombie(pid: u32) -> bool {
    stat_fields(pid)
        .and_then(|f| f.first().cloned())
        .is_some_and(|s| s == "Z")
}

/// The identity of a live process, if `pid` exists.
pub fn identify(pid: u32) -> Option<ProcessId> {
    Some(ProcessId {
        pid,
        start_time: start_time(pid)?,
    })
}

/// Whether `id` still names the very process it was recorded for: same pid and
/// same start time, so a recycled pid is never mistaken for it.
pub fn is_same_process(id: ProcessId) -> bool {
    start_time(id.pid) == Some(id.start_time) && !is_zombie(id.pid)
}

/// The command line of `pid`, arguments joined with spaces.
pub fn cmdline(pid: u32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let parts: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    if parts.is_empty() {
        None
    } else {
        Some(parts.join(" "))
    }
}

/// The processes holding any of `wanted` open, by target, in one pass over
/// `/proc/*/fd`. A target is what the fd links to: a path, or `socket:[inode]`.
/// Used to find who listens on a port, and a service's processes by the log
/// FIFO they write to (which only that service's processes ever get).
pub fn fd_holders(
    wanted: &std::collections::HashSet<std::path::PathBuf>,
    include_self: bool,
) -> std::collections::HashMap<std::path::PathBuf, Vec<u32>> {
    let mut found: std::collections::HashMap<std::path::PathBuf, Vec<u32>> = Default::default();
    if wanted.is_empty() {
        return found;
    }
    let me = std::process::id();
    let Ok(procs) = fs::read_dir("/proc") else {
        return found;
    };
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me && !include_self {
            continue;
        }
        let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = fs::read_link(fd.path()) else {
                continue;
            };
            if wanted.contains(&target) {
                let list = found.entry(target).or_default();
                if !list.contains(&pid) {
                    list.push(pid);
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_identity() {
        let me = std::process::id();
        let id = identify(me).expect("we exist");
        assert!(is_same_process(id));
        assert!(!is_same_process(ProcessId {
            pid: me,
            start_time: id.start_time + 1
        }));
        assert!(cmdline(me).is_some());
        assert!(pgid(me).is_some());
    }

    #[test]
    fn no_such_process() {
        // Pids are below 2^22 on Linux.
        assert_eq!(start_time(u32::MAX - 1), None);
    }
}

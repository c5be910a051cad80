//! The supervisor as a child subreaper: processes a service leaves behind
//! (grandchildren whose parent died) are re-parented to us rather than to
//! pid 1 — which, in containers, often never reaps them — and we reap them, so
//! no zombie stays.
//!
//! Children we spawned ourselves are waited on by their owners (tokio's
//! `Child::wait`); they are *tracked* here so the reaper never steals their
//! exit status. Every spawn and wait happens on the supervisor's main thread,
//! so tracking after `spawn()` returns leaves no window for the reaper.

use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;
use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};

static TRACKED: LazyLock<Mutex<HashSet<u32>>> = LazyLock::new(|| Mutex::new(HashSet::new()));

/// `pid` is ours to wait on: the reaper leaves it alone.
pub fn track(pid: u32) {
    if let Ok(mut t) = TRACKED.lock() {
        t.insert(pid);
    }
}

/// `pid` has been waited on.
pub fn untrack(pid: u32) {
    if let Ok(mut t) = TRACKED.lock() {
        t.remove(&pid);
    }
}

/// Tracks a child's pid for as long as it lives (dropped once its wait is over,
/// however that ends).
pub struct Guard(Option<u32>);

/// Track `pid` (if any) until the returned guard is dropped.
pub fn guard(pid: Option<u32>) -> Guard {
    if let Some(p) = pid {
        track(p);
    }
    Guard(pid)
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(p) = self.0 {
            untrack(p);
        }
    }
}

/// Become the subreaper of everything we start (Linux `PR_SET_CHILD_SUBREAPER`).
pub fn become_subreaper() -> std::io::Result<()> {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes one integer argument.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Our direct children, from `/proc/self/task/*/children`.
fn children() -> Vec<u32> {
    let mut out = vec![];
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for t in tasks.flatten() {
        if let Ok(list) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    out
}

/// Reap every zombie child that nobody else waits for. Returns how many.
pub fn reap_orphans() -> usize {
    let tracked = match TRACKED.lock() {
        Ok(t) => t.clone(),
        Err(_) => return 0,
    };
    let mut reaped = 0;
    for pid in children() {
        if tracked.contains(&pid) || !super::procfs::is_zombie(pid) {
            continue;
        }
        let Ok(raw) = i32::try_from(pid) else {
            continue;
        };
        if waitpid(Pid::from_raw(raw), Some(WaitPidFlag::WNOHANG)).is_ok() {
            reaped += 1;
        }
    }
    reaped
}

/// After a SIGCHLD, how long the sweep waits. Our own services' exits are
/// handled by their actors through pidfds; the sweep is for orphans only and
/// must not take the CPU from a restart in progress. Waiting also merges the
/// signals of a burst of exits (a restart storm) into one sweep.
const SWEEP_DELAY: std::time::Duration = std::time::Duration::from_millis(25);

/// Reap orphans shortly after a child changes state (and every minute, in
/// case a signal was lost), forever.
pub async fn run() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut sigchld = signal(SignalKind::child()).ok();
    // A safety net only: SIGCHLD is sent for every orphan that exits, and a
    // sweep reaps every zombie, so signals merged into one lose nothing.
    let mut sweep = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        match sigchld.as_mut() {
            Some(s) => {
                tokio::select! {
                    _ = s.recv() => tokio::time::sleep(SWEEP_DELAY).await,
                    _ = sweep.tick() => {}
                }
            }
            None => {
                sweep.tick().await;
            }
        }
        let n = reap_orphans();
        if n > 0 {
            log::debug!(target: "reaper", "reaped {n} orphaned process(es)");
        }
    }
}

//! Waiting for a child we spawned to exit, and collecting its status.
//!
//! A pidfd (`pidfd_open`, Linux ≥ 5.3) of the child is registered with the
//! calling thread's reactor: it becomes readable the moment the child is a
//! zombie, and only this waiter wakes. Opening it after the spawn is race-free
//! because the child is ours and not yet reaped (the orphan reaper skips
//! tracked pids), so its pid cannot be reused in between.
//!
//! Without pidfds the waiter falls back to SIGCHLD: every child exit wakes it
//! to try a non-blocking wait, with a slow sweep in case a signal was merged.

use std::io;
use std::process::{Child, ExitStatus};
use std::time::Duration;

/// Resolves with the child's exit status once it has exited (and reaps it).
pub async fn wait(mut child: Child) -> io::Result<ExitStatus> {
    if let Ok(fd) = super::pidfd::open(child.id()) {
        // Readable means exited; a failed registration falls through to SIGCHLD.
        if super::pidfd::exited(fd).await.is_ok() {
            return child.wait();
        }
    }
    by_signal(&mut child).await
}

async fn by_signal(child: &mut Child) -> io::Result<ExitStatus> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut sigchld = signal(SignalKind::child())?;
    let mut sweep = tokio::time::interval(Duration::from_millis(500));
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        tokio::select! {
            _ = sigchld.recv() => {}
            _ = sweep.tick() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[tokio::test]
    async fn reports_the_exit_code() {
        let child = std::process::Command::new("sh")
            .args(["-c", "exit 7"])
            .spawn()
            .unwrap();
        let status = tokio::time::timeout(Duration::from_secs(10), wait(child))
            .await
            .expect("exit noticed")
            .unwrap();
        assert_eq!(status.code(), Some(7));
    }

    #[tokio::test]
    async fn reports_the_killing_signal() {
        let child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
        let status = tokio::time::timeout(Duration::from_secs(10), wait(child))
            .await
            .expect("exit noticed")
            .unwrap();
        assert_eq!(status.signal(), Some(9));
    }

    #[tokio::test]
    async fn the_signal_fallback_reports_the_exit_code() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "exit 3"])
            .spawn()
            .unwrap();
        let status = tokio::time::timeout(Duration::from_secs(10), by_signal(&mut child))
            .await
            .expect("exit noticed")
            .unwrap();
        assert_eq!(status.code(), Some(3));
    }
}

//! Watching a process that is not our child (one adopted from a previous
//! supervisor): a pidfd (`pidfd_open`, Linux ≥ 5.3) becomes readable when the
//! process exits, so the exit is noticed at once without polling. Its exit
//! status cannot be had (it is not ours to reap).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use tokio::io::unix::AsyncFd;

/// A pidfd for `pid`.
pub fn open(pid: u32) -> io::Result<OwnedFd> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, libc::PIDFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the syscall returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Resolves when the process behind `fd` has exited.
pub async fn exited(fd: OwnedFd) -> io::Result<()> {
    // SAFETY: the OwnedFd is moved into the AsyncFd, which neither replaces
    // nor closes it while registered.
    let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(io::Error::from)?;
    let _ready = fd.readable().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn notices_the_exit_of_a_process() {
        let mut child = std::process::Command::new("sleep")
            .arg("0.05")
            .spawn()
            .unwrap();
        let fd = open(child.id()).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(10), exited(fd))
            .await
            .expect("exit noticed")
            .unwrap();
        child.wait().unwrap();
    }
}

//! Sleeps shorter than a millisecond. Tokio's timers tick in whole
//! milliseconds; a service that starts in well under one is worth probing
//! sooner than that, without spinning on a CPU that the starting service
//! needs. A `timerfd` on `CLOCK_MONOTONIC`, registered with the calling
//! thread's reactor, wakes us after `d` with microsecond precision.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Duration;
use tokio::io::unix::AsyncFd;

fn arm(d: Duration) -> io::Result<OwnedFd> {
    // SAFETY: timerfd_create takes a clock id and flags; it returns a new fd or -1.
    let fd = unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // A zero value would disarm the timer: wait at least a nanosecond.
    let d = d.max(Duration::from_nanos(1));
    let spec = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: libc::timespec {
            tv_sec: d.as_secs() as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        },
    };
    use std::os::fd::AsRawFd;
    // SAFETY: the fd is a timerfd; `spec` is a valid itimerspec; no old value wanted.
    let r = unsafe { libc::timerfd_settime(fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// Sleep for `d`, precisely. Falls back to tokio's millisecond timer if the
/// timerfd cannot be had.
pub async fn sleep(d: Duration) {
    let Ok(fd) = arm(d) else {
        tokio::time::sleep(d).await;
        return;
    };
    // SAFETY: the OwnedFd is moved into the AsyncFd, which neither replaces
    // nor closes it while registered.
    match unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) } {
        Ok(fd) => {
            let _ = fd.readable().await;
        }
        Err(_) => tokio::time::sleep(d).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn wakes_after_the_delay_not_before() {
        for micros in [50, 300, 2_000] {
            let d = Duration::from_micros(micros);
            let t = Instant::now();
            sleep(d).await;
            assert!(
                t.elapsed() >= d,
                "{micros} µs: woke after {:?}",
                t.elapsed()
            );
        }
    }

    #[tokio::test]
    async fn a_zero_delay_still_wakes() {
        tokio::time::timeout(Duration::from_secs(10), sleep(Duration::ZERO))
            .await
            .expect("woke");
    }
}

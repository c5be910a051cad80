//! Sleeps shorter than a millisecond. Tokio's timers tick in whole
//! milliseconds; a service that starts in well under one is worth probing
//! sooner than that, without spinning on a CPU that the starting service
//! needs. A `timerfd` on `CLOCK_MONOTONIC`, registered with the calling
//! thread's reactor, wakes us after `d` with microsecond precision.
//!
//! And the opposite: timer slack. Periodic health checks need not fire at an
//! exact microsecond; rounding each due time up to a shared grid lets the
//! checks of many services that fall into the same slot run in one wake-up of
//! the thread, instead of one wake-up (and one cold cache) per service.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::{Duration, Instant};
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

/// The slack allowed for a periodic timer of `period`: a tenth of it, at
/// most 50 ms, none below 1 ms.
pub fn slack_for(period: Duration) -> Duration {
    let slack = (period / 10).min(Duration::from_millis(50));
    if slack < Duration::from_millis(1) {
        Duration::ZERO
    } else {
        slack
    }
}

/// The delay from `now` until the first point of the grid (multiples of
/// `slack` counted from `epoch`) at or after `now + delay`. The result is at
/// least `delay` and less than `delay + slack`; once on the grid, a period that
/// is a multiple of `slack` stays exact.
pub fn on_grid(epoch: Instant, now: Instant, delay: Duration, slack: Duration) -> Duration {
    let step = slack.as_nanos();
    if step == 0 {
        return delay;
    }
    let due = now.saturating_duration_since(epoch).as_nanos() + delay.as_nanos();
    let rounded = due.div_ceil(step) * step;
    delay + Duration::from_nanos((rounded - due).min(u64::MAX as u128) as u64)
}

/// [`on_grid`] with the grid of this process (counted from first use).
pub fn slotted(delay: Duration, slack: Duration) -> Duration {
    static EPOCH: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);
    on_grid(*EPOCH, Instant::now(), delay, slack)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_is_a_tenth_of_the_period_within_bounds() {
        assert_eq!(slack_for(Duration::from_secs(1)), Duration::from_millis(50));
        assert_eq!(
            slack_for(Duration::from_millis(200)),
            Duration::from_millis(20)
        );
        assert_eq!(slack_for(Duration::from_millis(5)), Duration::ZERO);
    }

    #[test]
    fn due_times_are_rounded_up_to_the_grid() {
        let epoch = Instant::now();
        let slack = Duration::from_millis(50);
        let second = Duration::from_secs(1);
        // 1 s after t = 1.013 s is 2.013 s: the next slot is 2.050 s.
        let now = epoch + Duration::from_millis(1013);
        assert_eq!(
            on_grid(epoch, now, second, slack),
            Duration::from_millis(1037)
        );
        // Already on the grid: exactly the delay.
        let now = epoch + Duration::from_millis(1050);
        assert_eq!(on_grid(epoch, now, second, slack), second);
        // Two services 10 ms apart land in the same slot.
        let a = epoch + Duration::from_millis(1003);
        let b = epoch + Duration::from_millis(1013);
        assert_eq!(
            a + on_grid(epoch, a, second, slack),
            b + on_grid(epoch, b, second, slack)
        );
        // No slack, no rounding.
        assert_eq!(on_grid(epoch, now, second, Duration::ZERO), second);
    }

    #[test]
    fn never_earlier_and_never_a_full_slot_late() {
        let epoch = Instant::now();
        let slack = Duration::from_millis(20);
        for ms in 0..200 {
            let now = epoch + Duration::from_micros(ms * 737);
            let d = on_grid(epoch, now, Duration::from_millis(200), slack);
            assert!(
                d >= Duration::from_millis(200) && d < Duration::from_millis(220),
                "{d:?}"
            );
        }
    }

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

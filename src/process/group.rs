//! Signals to a whole process group, so a service's children and
//! grandchildren share its fate (SPEC §4.6).

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// Send `signal` to the process group `pgid`. `false` when the group is gone.
pub fn signal_group(pgid: u32, signal: Signal) -> bool {
    let Ok(raw) = i32::try_from(pgid) else {
        return false;
    };
    if raw <= 1 {
        return false; // never signal "every process" or init's group
    }
    killpg(Pid::from_raw(raw), signal).is_ok()
}

/// Whether any process of the group still exists (zombies included).
pub fn group_alive(pgid: u32) -> bool {
    let Ok(raw) = i32::try_from(pgid) else {
        return false;
    };
    raw > 1 && killpg(Pid::from_raw(raw), None).is_ok()
}

//! The harness of the integration tests: the REAL `ai-dawg-manager` binary,
//! supervising REAL demo services (`ai-dawg-manager demo-service …`) on real
//! 127.0.0.1 ports, with a config written into a temporary folder.
//!
//! - [`Setup`] and [`Service`] build `config/autonomy.json` (as JSON text, so key
//!   order is kept; [`config_of`] renders another one for `reload`) and
//!   `config/commands-whitelist.json`; [`Setup::start`] runs
//!   `ai-dawg-manager start --config <tmp>/config/autonomy.json` with its stdout
//!   and stderr going to files in the folder, and waits until its control socket
//!   answers.
//! - [`Supervisor`] reads what the supervisor shows: `status --json` through the
//!   real CLI ([`Supervisor::status_json`]), records through the control socket
//!   ([`Supervisor::record`], cheap enough to poll every few ms), the audit trail,
//!   the escalation log, the state file, its stdout and stderr.
//! - Tests wait on conditions ([`wait_until`], [`Supervisor::wait_until`]) with
//!   one [`TIMEOUT`], never with fixed sleeps. The only timed windows are
//!   [`Supervisor::holds_for`], used to show that something does *not* happen;
//!   every call says why its window is long enough.
//! - Dropping a [`Supervisor`] (also when a test panics) stops the supervisor
//!   (SIGTERM, then SIGKILL) and SIGKILLs the process group of every service
//!   process the test or the state file named, so no test leaks processes. A
//!   process is identified by its pid *and* its start time (`/proc/PID/stat`
//!   field 22): pids wrap at 32768 here, and a recycled pid is never signalled.
//!
//! Modules: [`process`] (ports, processes identified by pid and start time,
//! bounded runs of the binary, a foreign port holder), [`setup`] (the config
//! builder), [`supervisor`] (the running supervisor and what it shows).

#![allow(dead_code)] // each test binary uses part of the harness

mod process;
mod setup;
mod supervisor;

pub use process::*;
pub use setup::*;
pub use supervisor::*;

use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_ai-dawg-manager");

/// The one bound on every wait. Generous: the suite runs its tests in parallel
/// on a loaded 2-core machine, where a debug build may be slow to start.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// How often a condition is looked at.
pub(crate) const POLL: Duration = Duration::from_millis(5);

/// Poll `condition` every few ms until it holds; `false` if `timeout` passed first.
pub(crate) fn poll_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let since = Instant::now();
    loop {
        if condition() {
            return true;
        }
        if since.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// Wait until `condition` holds; panic naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, condition: impl FnMut() -> bool) {
    assert!(
        poll_until(timeout, condition),
        "timed out after {timeout:?} waiting for {what}"
    );
}

//! Everything about operating-system processes, kept apart from the actors:
//! spawning a service in its own process group with its output going straight
//! to its log file, watching adopted processes through a pidfd, signalling a whole
//! group, reading `/proc` to tell our processes from recycled pids and to find
//! who holds a TCP port — and the supervisor's own process: its thread
//! priorities and what its allocator keeps.

pub mod group;
pub mod memory;
pub mod pidfd;
pub mod port;
pub mod procfs;
pub mod reaper;
pub mod spawn;

/// Lower the calling thread's CPU priority to `nice` (Linux: a thread has a
/// nice value of its own). For background writers — the state file, the
/// history database — so that their fsyncs and encoding never take a CPU from
/// a service that is starting or from the thread that restarts it. Best
/// effort: a refusal only leaves the thread at its priority.
pub fn lower_thread_priority(nice: i32) {
    // SAFETY: gettid takes no arguments; setpriority on PRIO_PROCESS with a
    // thread id changes only that thread.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, nice);
    }
}

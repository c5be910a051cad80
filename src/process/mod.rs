//! Everything about operating-system processes, kept apart from the actors:
//! spawning a service in its own process group with its output going straight
//! to its log file, signalling a whole group, and reading `/proc` to tell our
//! processes from recycled pids and to find who holds a TCP port.

pub mod group;
pub mod pidfd;
pub mod port;
pub mod procfs;
pub mod reaper;
pub mod spawn;

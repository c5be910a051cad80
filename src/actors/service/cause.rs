//! Why a service is being started: decides the audit verb, whether it counts as
//! a restart, and whether it may lift an escalation.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartCause {
    /// The supervisor starting an `autostart` service.
    Autostart,
    /// `start NAME`.
    Manual,
    /// Recovery's automatic restart, `attempt` of the `of` allowed.
    AutoRestart { attempt: u32, of: u32 },
    /// `restart NAME`.
    ManualRestart,
    /// `recover NAME`.
    Recover,
    /// `reload` changed the service's definition.
    Reload,
    /// A process left running by a previous supervisor, taken over.
    Adopt,
}

impl StartCause {
    /// The audit verb (SPEC §6).
    pub fn action(self) -> &'static str {
        match self {
            StartCause::Autostart | StartCause::Manual => "start",
            StartCause::AutoRestart { .. } | StartCause::ManualRestart | StartCause::Reload => {
                "restart"
            }
            StartCause::Recover => "recover",
            StartCause::Adopt => "adopt",
        }
    }

    /// Not asked for by a human.
    pub fn is_automatic(self) -> bool {
        matches!(
            self,
            StartCause::Autostart | StartCause::AutoRestart { .. } | StartCause::Adopt
        )
    }

    /// Counted in the never-reset `restart_count`.
    pub fn counts_as_restart(self) -> bool {
        matches!(
            self,
            StartCause::AutoRestart { .. }
                | StartCause::ManualRestart
                | StartCause::Recover
                | StartCause::Reload
        )
    }
}

impl fmt::Display for StartCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartCause::Autostart => f.write_str("autostart"),
            StartCause::Manual => f.write_str("manual start"),
            StartCause::AutoRestart { attempt, of } => {
                write!(f, "automatic restart, attempt {attempt}/{of}")
            }
            StartCause::ManualRestart => f.write_str("manual restart"),
            StartCause::Recover => f.write_str("manual recover"),
            StartCause::Reload => f.write_str("reload: definition changed"),
            StartCause::Adopt => f.write_str("adopted from the previous supervisor"),
        }
    }
}

//! Colour for human output: only on a terminal, and never when `NO_COLOR` is
//! set (https://no-color.org). The emoji stay either way.

use crate::model::ServiceStatus;
use std::io::IsTerminal;

/// Whether stdout gets ANSI colours.
pub fn enabled() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// `text` in the colour of `status`, when colour is on.
pub fn status_word(status: ServiceStatus, text: &str, colour: bool) -> String {
    if !colour {
        return text.to_string();
    }
    let code = match status {
        ServiceStatus::Running => "32",                              // green
        ServiceStatus::Starting | ServiceStatus::Backoff => "33",    // yellow
        ServiceStatus::Unhealthy | ServiceStatus::Escalated => "31", // red
        ServiceStatus::Stopped | ServiceStatus::Unknown => "90",     // grey
    };
    format!("\x1b[1;{code}m{text}\x1b[0m")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_without_colour() {
        assert_eq!(
            status_word(ServiceStatus::Running, "RUNNING", false),
            "RUNNING"
        );
        assert!(status_word(ServiceStatus::Escalated, "ESCALATED", true).starts_with("\x1b[1;31m"));
    }
}

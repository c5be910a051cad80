//! The `notifications` key: where escalation and resolution alerts go (a
//! webhook, a whitelisted command, or both) and how hard to try.

use std::path::Path;
use std::time::Duration;

use super::duration::DurationKey;
use super::raw::RawNotifications;
use super::validate::{Problems, ProgramUse};
use super::{endpoint, service, Notifications, NotifyFormat};

/// Defaults: 3 retries, 1 s doubling backoff, 10 s per send, 100 queued alerts.
const RETRIES: u32 = 3;
const RETRY_BACKOFF: Duration = Duration::from_secs(1);
const TIMEOUT: Duration = Duration::from_secs(10);
const QUEUE_SIZE: usize = 100;

/// `None` when the notification command is unusable (a problem is recorded).
pub(crate) fn build(
    raw: RawNotifications,
    root: &Path,
    problems: &mut Problems,
    programs: &mut Vec<ProgramUse>,
) -> Option<Notifications> {
    if let Some(url) = &raw.webhook_url {
        if let Err(e) = endpoint::check_webhook_url(url) {
            problems.push("notifications.webhook_url", e);
        }
    }
    let format = match raw.format.as_deref() {
        None | Some("json") => NotifyFormat::Json,
        Some("slack") => NotifyFormat::Slack,
        Some(other) => {
            problems.push(
                "notifications.format",
                format!("unknown format {other:?}; use \"json\" or \"slack\""),
            );
            NotifyFormat::Json
        }
    };
    let retry_backoff = DurationKey {
        at: "notifications",
        key: "retry_backoff",
        human: raw.retry_backoff.as_ref(),
        seconds: raw.retry_backoff_seconds,
    }
    .resolve(problems)
    .unwrap_or(RETRY_BACKOFF);
    let timeout_key = DurationKey {
        at: "notifications",
        key: "timeout",
        human: raw.timeout.as_ref(),
        seconds: raw.timeout_seconds,
    };
    let timeout = match timeout_key.resolve(problems) {
        Some(d) if d.is_zero() => {
            problems.push(&timeout_key.written_path(), "must be greater than zero");
            TIMEOUT
        }
        Some(d) => d,
        None => TIMEOUT,
    };
    let queue_size = raw.queue_size.unwrap_or(QUEUE_SIZE);
    if queue_size == 0 {
        problems.push("notifications.queue_size", "must be at least 1");
    }
    let command_program = match &raw.command {
        None => None,
        Some(argv) => Some(service::program(
            argv,
            "notifications.command",
            root,
            problems,
            programs,
        )?),
    };
    Some(Notifications {
        webhook_url: raw.webhook_url,
        command: raw.command,
        command_program,
        format,
        retries: raw.retries.unwrap_or(RETRIES),
        retry_backoff,
        timeout,
        queue_size: queue_size.max(1),
    })
}

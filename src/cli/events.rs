//! `ai-dawg-manager events [NAME…] [--json] [-v]`: follow the supervisor's
//! events as they happen, over the control socket (the connection stays open),
//! until Ctrl-C or the supervisor stops. The human form leaves out passing
//! health checks unless `-v`; `--json` prints every event.

use super::{exit, style, Cli};
use crate::model::{Event, EventKind};
use crate::protocol::{encode_line, ControlRequest, ControlResponse, ErrorCode};
use std::io::{self, BufRead, BufReader, Write};
use std::time::{Duration, UNIX_EPOCH};

/// One event for humans; `None` for a passing check unless `all` (`-v`).
pub fn human_line(e: &Event, colour: bool, all: bool) -> Option<String> {
    let time = humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(e.at_ms));
    let what = match &e.kind {
        EventKind::Status { from, to } => format!(
            "{} -> {}",
            style::status_word(*from, from.as_str(), colour),
            style::status_word(*to, to.as_str(), colour)
        ),
        EventKind::Started {
            pid,
            action,
            automatic,
        } => format!(
            "started pid {pid} ({action}{})",
            if *automatic { ", automatic" } else { "" }
        ),
        EventKind::Exited { reason } => format!("exited: {reason}"),
        EventKind::Health {
            ok: false,
            latency_ms,
            error_kind,
        } => format!(
            "health check failed ({}, {latency_ms:.0}ms)",
            error_kind.map_or("error", |k| k.label())
        ),
        EventKind::Health {
            ok: true,
            latency_ms,
            ..
        } if all => format!("health check ok ({latency_ms:.0}ms)"),
        EventKind::Health { ok: true, .. } => return None,
    };
    Some(format!("{time} {} {what}", e.service))
}

/// [`human_line`] without colour, or the JSON of a passing check.
pub fn human(e: &Event) -> String {
    human_line(e, false, true).unwrap_or_else(|| serde_json::to_string(e).unwrap_or_default())
}

pub fn follow(cli: &Cli, services: &[String]) -> i32 {
    let paths = cli.paths();
    let mut stream = match super::client::connect(&paths.socket) {
        Ok(s) => s,
        Err(super::client::ClientError::NoSupervisor(why)) => {
            eprintln!(
                "❌ no supervisor is running on {} ({why}); start one with `ai-dawg-manager start`",
                paths.dir.display()
            );
            return exit::NO_SUPERVISOR;
        }
        Err(e) => {
            eprintln!("❌ {e}");
            return exit::FAILED;
        }
    };
    let request = ControlRequest::Events {
        services: services.to_vec(),
    };
    if let Err(e) = stream.write_all(&encode_line(&request)) {
        eprintln!("❌ control socket: {e}");
        return exit::FAILED;
    }
    let colour = !cli.json && style::enabled();
    let mut out = io::stdout().lock();
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { break };
        let printed = match serde_json::from_str::<ControlResponse>(&line) {
            Ok(ControlResponse::Event(e)) if cli.json => {
                writeln!(out, "{}", serde_json::to_string(&e).unwrap_or_default())
            }
            Ok(ControlResponse::Event(e)) => match human_line(&e, colour, cli.verbose > 0) {
                Some(l) => writeln!(out, "{l}"),
                None => Ok(()),
            },
            Ok(ControlResponse::Error(e)) => {
                eprintln!("❌ {}", e.message);
                return match e.code {
                    ErrorCode::UnknownService => exit::UNKNOWN_SERVICE,
                    ErrorCode::BadRequest => exit::USAGE,
                    ErrorCode::Failed => exit::FAILED,
                };
            }
            Ok(_) | Err(_) => {
                eprintln!("❌ unreadable line from the supervisor: {line}");
                return exit::FAILED;
            }
        };
        if printed.and_then(|()| out.flush()).is_err() {
            return exit::OK; // stdout closed (e.g. `| head`)
        }
    }
    eprintln!("the supervisor closed the event stream");
    exit::OK
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ErrorKind, ServiceStatus};

    fn at(kind: EventKind) -> Event {
        Event {
            at_ms: 1_760_011_200_000,
            service: "producer".into(),
            kind,
        }
    }

    #[test]
    fn human_lines() {
        assert_eq!(
            human_line(
                &at(EventKind::Status {
                    from: ServiceStatus::Running,
                    to: ServiceStatus::Unhealthy
                }),
                false,
                false
            )
            .unwrap(),
            "2025-10-09T12:00:00.000Z producer running -> unhealthy"
        );
        assert_eq!(
            human_line(
                &at(EventKind::Started {
                    pid: 42,
                    action: "restart".into(),
                    automatic: true
                }),
                false,
                false
            )
            .unwrap(),
            "2025-10-09T12:00:00.000Z producer started pid 42 (restart, automatic)"
        );
        assert!(human_line(
            &at(EventKind::Health {
                ok: false,
                latency_ms: 2.4,
                error_kind: Some(ErrorKind::ConnectionRefused)
            }),
            false,
            false
        )
        .unwrap()
        .ends_with("health check failed (ECONNREFUSED, 2ms)"));
        let passed = at(EventKind::Health {
            ok: true,
            latency_ms: 1.0,
            error_kind: None,
        });
        assert_eq!(human_line(&passed, false, false), None);
        assert_eq!(
            human_line(&passed, false, true).unwrap(),
            "2025-10-09T12:00:00.000Z producer health check ok (1ms)"
        );
    }
}

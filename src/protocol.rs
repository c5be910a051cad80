//! The control protocol between the CLI and the running supervisor: one
//! [`ControlRequest`] per connection, one [`ControlResponse`] back, each a
//! single line of JSON on `data/manager.sock`. The one exception is
//! [`ControlRequest::Events`]: its connection stays open and carries one
//! [`ControlResponse::Event`] line per event until the client goes away.
//! The HTTP API (`crate::http`) carries the same requests and responses.
//!
//! Shared by the server and the client; nothing here knows about actix.

use crate::model::{Event, KillSwitch, ServiceRecord, Summary};
use serde::{Deserialize, Serialize};

/// Longest request line the server reads; anything longer is refused.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// What a client asks. One verb keeps one name from the CLI to the audit line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum ControlRequest {
    /// Records of these services (all when empty).
    Status {
        #[serde(default)]
        services: Vec<String>,
    },
    /// Start these (stopped) services.
    Start { services: Vec<String> },
    /// Stop these services; they stay stopped until started.
    Stop { services: Vec<String> },
    /// Graceful stop then start; not a failure.
    Restart { services: Vec<String> },
    /// Human recovery: clear the escalation, reset counters, free the port, restart.
    Recover { services: Vec<String> },
    /// Re-read the config: start added services, stop removed ones, restart
    /// changed ones, apply monitoring and safety settings live.
    Reload,
    /// Set the kill switch at run time, or go back to the config's value.
    KillSwitch { mode: KillSwitchMode },
    /// Stop every service (reverse dependency order) and the supervisor.
    Shutdown,
    /// Stream every event of these services (all when empty) as it happens,
    /// one `ControlResponse::Event` line each, until the client hangs up.
    Events {
        #[serde(default)]
        services: Vec<String>,
    },
}

/// `kill-switch on|off|clear`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum KillSwitchMode {
    /// No automatic action at all, kept across supervisor restarts.
    On,
    /// Automatic recovery on, kept across supervisor restarts.
    Off,
    /// Forget the run-time setting: the config's value applies again.
    Clear,
}

impl ControlRequest {
    /// The verb, as written in the audit trail.
    pub fn action(&self) -> &'static str {
        match self {
            ControlRequest::Status { .. } => "status",
            ControlRequest::Start { .. } => "start",
            ControlRequest::Stop { .. } => "stop",
            ControlRequest::Restart { .. } => "restart",
            ControlRequest::Recover { .. } => "recover",
            ControlRequest::Reload => "reload",
            ControlRequest::KillSwitch { .. } => "kill_switch",
            ControlRequest::Shutdown => "shutdown",
            ControlRequest::Events { .. } => "events",
        }
    }
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlResponse {
    Status(StatusReport),
    Actions(ActionsReport),
    Error(ErrorReport),
    /// One line of an `events` stream.
    Event(Event),
}

/// `status`: SPEC §6's `status --json` shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub services: Vec<ServiceRecord>,
    pub kill_switch: KillSwitch,
    pub summary: Summary,
}

/// The outcome of a command that acts on services.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionsReport {
    pub action: String,
    pub results: Vec<ActionOutcome>,
}

impl ActionsReport {
    pub fn all_ok(&self) -> bool {
        self.results.iter().all(|r| r.ok)
    }
}

/// What happened to one service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionOutcome {
    pub service: String,
    pub ok: bool,
    pub message: String,
    #[serde(default)]
    pub pid: Option<u32>,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request could not be read or makes no sense.
    BadRequest,
    /// A named service is not configured.
    UnknownService,
    /// The request was understood but could not be carried out.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorReport {
    pub code: ErrorCode,
    pub message: String,
}

impl ControlResponse {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ControlResponse::Error(ErrorReport {
            code,
            message: message.into(),
        })
    }
}

/// Decode one request line; the error is the message to send back.
pub fn decode_request(line: &[u8]) -> Result<ControlRequest, String> {
    serde_json::from_slice(line).map_err(|e| format!("bad request: {e}"))
}

/// Encode a message as one line (with its newline).
pub fn encode_line<T: Serialize>(msg: &T) -> Vec<u8> {
    let mut out = serde_json::to_vec(msg).unwrap_or_else(|e| {
        serde_json::to_vec(&ControlResponse::error(
            ErrorCode::Failed,
            format!("cannot encode the answer: {e}"),
        ))
        .unwrap_or_default()
    });
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_as_one_line() {
        let r = ControlRequest::Restart {
            services: vec!["producer".into()],
        };
        let line = encode_line(&r);
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
        assert_eq!(decode_request(&line).unwrap(), r);
        assert_eq!(
            decode_request(br#"{"command":"status"}"#).unwrap(),
            ControlRequest::Status { services: vec![] }
        );
        assert_eq!(
            decode_request(br#"{"command":"events"}"#).unwrap(),
            ControlRequest::Events { services: vec![] }
        );
    }

    #[test]
    fn an_event_line_carries_the_event_flat() {
        let line = encode_line(&ControlResponse::Event(crate::model::Event {
            at_ms: 1,
            service: "a".into(),
            kind: crate::model::EventKind::Status {
                from: crate::model::ServiceStatus::Running,
                to: crate::model::ServiceStatus::Unhealthy,
            },
        }));
        let text = String::from_utf8(line).unwrap();
        assert_eq!(
            text,
            "{\"event\":{\"at_ms\":1,\"service\":\"a\",\"event\":\"status\",\"from\":\"running\",\"to\":\"unhealthy\"}}\n"
        );
        let back: ControlResponse = serde_json::from_str(&text).unwrap();
        assert!(matches!(back, ControlResponse::Event(e) if e.service == "a"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b"{"[..],
            b"null",
            br#"{"command":"format_disk"}"#,
            br#"{"command":"stop"}"#,
            br#"{"command":"stop","services":["a"],"extra":1}"#,
            b"\xff\xfe",
        ] {
            assert!(
                decode_request(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}

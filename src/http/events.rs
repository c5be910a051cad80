//! `GET /api/v1/events`: the Registry's events as Server-Sent Events, one
//! `event: <kind>` / `data: <json>` block per event (the JSON is the one of
//! `ai-dawg-manager events --json`), as soon as they happen. Whatever is
//! already waiting goes out in the same chunk; a comment line every
//! [`HEARTBEAT`] keeps proxies from closing an idle stream and lets the server
//! notice a client that went away.

use super::routes::{error, headers, refused};
use super::AppState;
use crate::actors::event_tap::subscribe;
use crate::actors::registry::GetStatus;
use crate::model::{Event, EventKind};
use actix_web::body::{BodySize, MessageBody};
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;

/// Time between keep-alive comments on an idle stream.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// Largest chunk gathered from waiting events before it is sent.
const MAX_CHUNK: usize = 64 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    /// Comma-separated service names; all when absent.
    service: Option<String>,
}

pub async fn stream(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Err(r) = state.guard.check_read(&headers(&req, false)) {
        return refused(r);
    }
    let q = match web::Query::<EventsQuery>::from_query(req.query_string()) {
        Ok(q) => q.into_inner(),
        Err(e) => return error(400, "bad_request", format!("bad query: {e}")),
    };
    let services: Vec<String> = q
        .service
        .iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if !services.is_empty() {
        match state
            .registry
            .send(GetStatus {
                services: services.clone(),
            })
            .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(unknown)) => {
                return error(
                    404,
                    "unknown_service",
                    format!("unknown service: {}", unknown.join(", ")),
                )
            }
            Err(e) => return error(500, "failed", e.to_string()),
        }
    }
    let body = SseBody {
        events: subscribe(state.registry.clone(), services),
        heartbeat: tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT),
        // The client reconnects after 1 s if the stream breaks.
        first: Some(Bytes::from_static(b"retry: 1000\n: connected\n\n")),
        done: false,
    };
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Accel-Buffering", "no"))
        .body(body)
}

/// The SSE name of an event.
fn name(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::Status { .. } => "status",
        EventKind::Health { .. } => "health",
        EventKind::Started { .. } => "started",
        EventKind::Exited { .. } => "exited",
    }
}

/// One event as an SSE block.
pub fn encode(event: &Event, out: &mut Vec<u8>) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name(&event.kind).as_bytes());
    out.extend_from_slice(b"\ndata: ");
    // serde_json never writes a raw newline: the data is one line.
    let _ = serde_json::to_writer(&mut *out, event);
    out.extend_from_slice(b"\n\n");
}

/// The streaming body: events as they come, heartbeats in between.
struct SseBody {
    events: mpsc::Receiver<Arc<Event>>,
    heartbeat: tokio::time::Interval,
    first: Option<Bytes>,
    done: bool,
}

impl MessageBody for SseBody {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        if let Some(first) = this.first.take() {
            return Poll::Ready(Some(Ok(first)));
        }
        if this.done {
            return Poll::Ready(None);
        }
        match this.events.poll_recv(cx) {
            Poll::Ready(Some(event)) => {
                let mut chunk = Vec::with_capacity(256);
                encode(&event, &mut chunk);
                while chunk.len() < MAX_CHUNK {
                    match this.events.try_recv() {
                        Ok(more) => encode(&more, &mut chunk),
                        Err(_) => break,
                    }
                }
                this.heartbeat.reset();
                return Poll::Ready(Some(Ok(Bytes::from(chunk))));
            }
            Poll::Ready(None) => {
                // Cut off (too far behind) or the supervisor is stopping.
                this.done = true;
                return Poll::Ready(Some(Ok(Bytes::from_static(b": stream ended\n\n"))));
            }
            Poll::Pending => {}
        }
        if this.heartbeat.poll_tick(cx).is_ready() {
            return Poll::Ready(Some(Ok(Bytes::from_static(b": keep-alive\n\n"))));
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ServiceStatus;

    #[test]
    fn an_event_is_one_sse_block() {
        let mut out = vec![];
        encode(
            &Event {
                at_ms: 5,
                service: "a\nb".into(),
                kind: EventKind::Status {
                    from: ServiceStatus::Running,
                    to: ServiceStatus::Starting,
                },
            },
            &mut out,
        );
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "event: status\ndata: {\"at_ms\":5,\"service\":\"a\\nb\",\"event\":\"status\",\"from\":\"running\",\"to\":\"starting\"}\n\n"
        );
    }
}

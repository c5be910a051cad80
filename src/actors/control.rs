//! The ControlServer actor: accepts connections on `data/manager.sock` (mode
//! 0600, and only from our own uid or root, checked with the peer's
//! credentials), reads one request line, hands it to the Registry (status) or
//! the Manager (everything else), and writes one answer line. [`answer`] is
//! that dispatch, shared with the HTTP API (`crate::http`): one protocol, two
//! transports. An `events` request instead keeps its connection and streams
//! one event line at a time until the client hangs up (see `stream_events`).
//!
//! Each connection is its own task, bounded in size and time, so a silent or
//! hostile client never holds up anyone else.

use super::event_tap::subscribe;
use super::manager::{Command, Manager};
use super::registry::{GetStatus, Registry};
use crate::protocol::{
    decode_request, encode_line, ControlRequest, ControlResponse, ErrorCode, MAX_REQUEST_BYTES,
};
use actix::prelude::*;
use log::{debug, warn};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

const TARGET: &str = "control";
/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long writing one answer may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

pub struct ControlServer {
    /// Registered with the reactor of the arbiter the server runs in.
    listener: Option<std::os::unix::net::UnixListener>,
    manager: Addr<Manager>,
    registry: Addr<Registry>,
}

impl ControlServer {
    /// `listener` must already be bound and non-blocking (the caller sets the
    /// socket's mode).
    pub fn new(
        listener: std::os::unix::net::UnixListener,
        manager: Addr<Manager>,
        registry: Addr<Registry>,
    ) -> Self {
        ControlServer {
            listener: Some(listener),
            manager,
            registry,
        }
    }
}

impl Actor for ControlServer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let Some(listener) = self.listener.take() else {
            return;
        };
        let listener = match UnixListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                warn!(target: TARGET, "control socket unusable: {e}");
                return;
            }
        };
        let manager = self.manager.clone();
        let registry = self.registry.clone();
        ctx.spawn(
            async move {
                loop {
                    match listener.accept().await {
                        Ok((stream, _)) => {
                            actix_rt::spawn(serve(stream, manager.clone(), registry.clone()));
                        }
                        Err(e) => {
                            // EMFILE and friends: back off a little, keep serving.
                            warn!(target: TARGET, "accept failed: {e}");
                            actix::clock::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
            }
            .into_actor(self),
        );
    }
}

/// Whether the peer may talk to us: the same user as the supervisor, or root.
fn peer_allowed(stream: &UnixStream) -> bool {
    let me = nix::unistd::geteuid().as_raw();
    match stream.peer_cred() {
        Ok(cred) => cred.uid() == me || cred.uid() == 0,
        Err(_) => false,
    }
}

async fn read_request(stream: &mut UnixStream) -> Result<ControlRequest, String> {
    let mut line = Vec::new();
    let limit = (MAX_REQUEST_BYTES + 1) as u64;
    let mut reader = BufReader::new(stream).take(limit);
    match tokio::time::timeout(READ_TIMEOUT, reader.read_until(b'\n', &mut line)).await {
        Err(_) => return Err("no request received within 5s".into()),
        Ok(Err(e)) => return Err(format!("cannot read the request: {e}")),
        Ok(Ok(_)) => {}
    }
    if line.len() > MAX_REQUEST_BYTES {
        return Err(format!("request longer than {MAX_REQUEST_BYTES} bytes"));
    }
    decode_request(&line)
}

/// The answer to one request, whichever transport carried it. `events` is a
/// stream, not an answer: each transport serves it itself.
pub async fn answer(
    req: ControlRequest,
    manager: Addr<Manager>,
    registry: Addr<Registry>,
) -> ControlResponse {
    match req {
        ControlRequest::Status { services } => match registry.send(GetStatus { services }).await {
            Ok(Ok(report)) => ControlResponse::Status(report),
            Ok(Err(unknown)) => ControlResponse::error(
                ErrorCode::UnknownService,
                format!("unknown service: {}", unknown.join(", ")),
            ),
            Err(e) => ControlResponse::error(ErrorCode::Failed, e.to_string()),
        },
        ControlRequest::Events { .. } => ControlResponse::error(
            ErrorCode::BadRequest,
            "events is a stream: ask for it on its own connection",
        ),
        other => manager
            .send(Command(other))
            .await
            .unwrap_or_else(|e| ControlResponse::error(ErrorCode::Failed, e.to_string())),
    }
}

async fn serve(mut stream: UnixStream, manager: Addr<Manager>, registry: Addr<Registry>) {
    let response = if !peer_allowed(&stream) {
        ControlResponse::error(
            ErrorCode::BadRequest,
            "permission denied: only the supervisor's user may use this socket",
        )
    } else {
        match read_request(&mut stream).await {
            Ok(ControlRequest::Events { services }) => {
                return stream_events(stream, registry, services).await;
            }
            Ok(req) => {
                debug!(target: TARGET, "request {req:?}");
                answer(req, manager, registry).await
            }
            Err(e) => ControlResponse::error(ErrorCode::BadRequest, e),
        }
    };
    let line = encode_line(&response);
    // A large answer (status of a thousand services) to a slow reader gets
    // longer than a request does; a client that never reads is still cut off.
    let _ = tokio::time::timeout(WRITE_TIMEOUT, async {
        let _ = stream.write_all(&line).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Serve an `events` request: check the names, then write one
/// `ControlResponse::Event` line per event until the client hangs up (noticed
/// at once: its end of the socket is read too) or falls too far behind.
async fn stream_events(mut stream: UnixStream, registry: Addr<Registry>, services: Vec<String>) {
    if !services.is_empty() {
        if let Ok(Err(unknown)) = registry
            .send(GetStatus {
                services: services.clone(),
            })
            .await
        {
            let line = encode_line(&ControlResponse::error(
                ErrorCode::UnknownService,
                format!("unknown service: {}", unknown.join(", ")),
            ));
            let _ = stream.write_all(&line).await;
            return;
        }
    }
    debug!(target: TARGET, "events stream opened");
    let mut events = subscribe(registry, services);
    let (mut read, mut write) = stream.split();
    let mut scratch = [0u8; 256];
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else {
                    let _ = write.write_all(&encode_line(&ControlResponse::error(
                        ErrorCode::Failed,
                        "event stream ended: the client fell behind or the supervisor is stopping",
                    ))).await;
                    break;
                };
                let mut lines = encode_line(&ControlResponse::Event((*event).clone()));
                // Whatever else is already waiting goes out in the same write.
                while let Ok(more) = events.try_recv() {
                    lines.extend(encode_line(&ControlResponse::Event((*more).clone())));
                }
                if write.write_all(&lines).await.is_err() {
                    break;
                }
            }
            read = read.read(&mut scratch) => {
                if matches!(read, Ok(0) | Err(_)) {
                    break; // the client hung up
                }
            }
        }
    }
    debug!(target: TARGET, "events stream closed");
}

//! The HTTP side of the supervisor (config key `http`, off by default): the
//! live dashboard at `/`, the JSON API under `/api/v1/`, Server-Sent Events at
//! `/api/v1/events` and Prometheus metrics at `/metrics`.
//!
//! It runs inside the supervisor's actix System (actix-web, one worker) and
//! owns no state of its own: the API routes go through the very dispatch of
//! the control socket ([`crate::actors::control::answer`]) — one protocol, two
//! transports — the event stream taps the Registry's events like `events` on
//! the socket, and the metrics come from the [`metrics::Metrics`] actor.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the dashboard (one self-contained page) |
//! | `GET /api/v1/services`, `GET /api/v1/services/{name}` | `status --json`, one record |
//! | `POST /api/v1/services/{name}/{start,stop,restart,recover}` | the manual commands |
//! | `GET /api/v1/audit?service=&n=` | the last audit lines, parsed |
//! | `GET /api/v1/escalations` | the escalation log, parsed, with `open` |
//! | `GET /api/v1/events?service=` | Server-Sent Events, one per event |
//! | `GET /metrics` | Prometheus text format (OpenMetrics when asked for) |
//!
//! Guards ([`guard`]): on a loopback address the `Host` header must name it (no
//! DNS rebinding); mutating requests refuse cross-site callers (`Origin`,
//! `Sec-Fetch-Site`), need `Content-Type: application/json` when they have a
//! body, and need `Authorization: Bearer <token>` when a token is configured;
//! on any other address every route but the page needs the token.

mod dashboard;
mod events;
pub mod guard;
pub mod metrics;
mod proc_self;
mod routes;

use crate::actors::manager::Manager;
use crate::actors::registry::Registry;
use crate::config::HttpSettings;
use actix::Addr;
use actix_web::{web, App, HttpServer};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;

/// Bind the listener (before the actors start, so a busy port stops `start`).
pub fn bind(settings: &HttpSettings) -> std::io::Result<TcpListener> {
    let listener = TcpListener::bind(settings.listen)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// What every route may use; cheap to clone (addresses and paths).
#[derive(Clone)]
pub struct AppState {
    pub manager: Addr<Manager>,
    pub registry: Addr<Registry>,
    pub metrics: Addr<metrics::Metrics>,
    pub audit_path: PathBuf,
    pub escalations_path: PathBuf,
    pub guard: guard::Guard,
}

impl AppState {
    pub fn new(
        settings: &HttpSettings,
        bound: SocketAddr,
        manager: Addr<Manager>,
        registry: Addr<Registry>,
        metrics: Addr<metrics::Metrics>,
        paths: &crate::paths::DataPaths,
    ) -> Self {
        AppState {
            manager,
            registry,
            metrics,
            audit_path: paths.audit.clone(),
            escalations_path: paths.escalations.clone(),
            guard: guard::Guard::new(bound, settings.token.clone()),
        }
    }
}

/// Serve on `listener` inside the running System, until the System stops.
pub fn start(listener: TcpListener, state: AppState) -> std::io::Result<()> {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .configure(routes::configure)
    })
    .workers(1)
    .max_connections(1024)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run();
    actix_rt::spawn(server);
    Ok(())
}

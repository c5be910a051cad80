//! The routes: each one checks the [`guard`](super::guard), turns the request
//! into a [`ControlRequest`] (or reads a data file, for the audit trail and the
//! escalation log) and answers JSON. Errors are `{"error": {"code", "message"}}`
//! with the status that fits: 400, 401, 403, 404, 405, 415, 500.

use super::guard::{Headers, Refusal};
use super::metrics::RenderMetrics;
use super::{dashboard, events, AppState};
use crate::actors::control::answer;
use crate::cli::files::{parse_audit_line, parse_escalations, AuditLine, EscalationBlock};
use crate::model::ServiceStatus;
use crate::persist::tail;
use crate::protocol::{ControlRequest, ControlResponse, ErrorCode};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::io::{self, BufRead, BufReader};
use std::path::Path;

/// Most audit lines one request may ask for.
const MAX_AUDIT_LINES: usize = 10_000;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/")
            .get(dashboard::page)
            .to(method_not_allowed),
    )
    .service(
        web::resource("/metrics")
            .get(metrics)
            .to(method_not_allowed),
    )
    .service(
        web::resource("/api/v1/services")
            .get(list)
            .to(method_not_allowed),
    )
    .service(
        web::resource("/api/v1/services/{name}")
            .get(one)
            .to(method_not_allowed),
    )
    .service(
        web::resource("/api/v1/services/{name}/{action}")
            .post(act)
            .to(method_not_allowed),
    )
    .service(
        web::resource("/api/v1/audit")
            .get(audit)
            .to(method_not_allowed),
    )
    .service(
        web::resource("/api/v1/escalations")
            .get(escalations)
            .to(method_not_allowed),
    )
    .service(
        web::resource("/api/v1/events")
            .get(events::stream)
            .to(method_not_allowed),
    )
    .default_service(web::to(not_found));
}

/// The JSON error answer.
pub fn error(status: u16, code: &str, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .json(serde_json::json!({"error": {"code": code, "message": message.into()}}))
}

pub fn refused(r: Refusal) -> HttpResponse {
    let mut answer = error(r.status, r.code, r.message);
    if r.status == 401 {
        answer.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    answer
}

/// The headers the guard reads.
pub fn headers(req: &HttpRequest, has_body: bool) -> Headers<'_> {
    let get = |name: header::HeaderName| req.headers().get(name).and_then(|v| v.to_str().ok());
    Headers {
        host: get(header::HOST),
        origin: get(header::ORIGIN),
        sec_fetch_site: req
            .headers()
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok()),
        authorization: get(header::AUTHORIZATION),
        content_type: get(header::CONTENT_TYPE),
        has_body,
    }
}

fn status_of(code: ErrorCode) -> u16 {
    match code {
        ErrorCode::BadRequest => 400,
        ErrorCode::UnknownService => 404,
        ErrorCode::Failed => 500,
    }
}

/// A control response as an HTTP answer.
fn respond(r: ControlResponse) -> HttpResponse {
    match r {
        ControlResponse::Status(s) => HttpResponse::Ok().json(s),
        ControlResponse::Actions(a) if a.all_ok() => HttpResponse::Ok().json(a),
        ControlResponse::Actions(a) => {
            let failed: Vec<String> = a
                .results
                .iter()
                .filter(|r| !r.ok)
                .map(|r| format!("{}: {}", r.service, r.message))
                .collect();
            HttpResponse::InternalServerError().json(serde_json::json!({
                "error": {"code": ErrorCode::Failed, "message": failed.join("; ")},
                "action": a.action,
                "results": a.results,
            }))
        }
        ControlResponse::Error(e) => error(
            status_of(e.code),
            &serde_json::to_value(e.code)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| "failed".into()),
            e.message,
        ),
        ControlResponse::Event(_) => error(500, "failed", "unexpected event"),
    }
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    error(
        404,
        "not_found",
        format!("no route {} {}", req.method(), req.path()),
    )
}

async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    error(
        405,
        "method_not_allowed",
        format!("{} is not allowed on {}", req.method(), req.path()),
    )
}

async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Err(r) = state.guard.check_read(&headers(&req, false)) {
        return refused(r);
    }
    let openmetrics = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    match state.metrics.send(RenderMetrics { openmetrics }).await {
        Ok(Ok(text)) => HttpResponse::Ok()
            .content_type(if openmetrics {
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            } else {
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE
            })
            .body(text),
        Ok(Err(e)) => error(500, "failed", e),
        Err(e) => error(500, "failed", e.to_string()),
    }
}

async fn list(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Err(r) = state.guard.check_read(&headers(&req, false)) {
        return refused(r);
    }
    let request = ControlRequest::Status { services: vec![] };
    respond(answer(request, state.manager.clone(), state.registry.clone()).await)
}

async fn one(
    req: HttpRequest,
    name: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    if let Err(r) = state.guard.check_read(&headers(&req, false)) {
        return refused(r);
    }
    let request = ControlRequest::Status {
        services: vec![name.into_inner()],
    };
    match answer(request, state.manager.clone(), state.registry.clone()).await {
        ControlResponse::Status(mut s) if s.services.len() == 1 => {
            HttpResponse::Ok().json(s.services.remove(0))
        }
        other => respond(other),
    }
}

async fn act(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    if let Err(r) = state.guard.check_write(&headers(&req, !body.is_empty())) {
        return refused(r);
    }
    if !body.is_empty()
        && !matches!(
            serde_json::from_slice(&body),
            Ok(serde_json::Value::Object(_))
        )
    {
        return error(
            400,
            "bad_request",
            "the body, when given, must be a JSON object",
        );
    }
    let (name, action) = path.into_inner();
    let services = vec![name];
    let request = match action.as_str() {
        "start" => ControlRequest::Start { services },
        "stop" => ControlRequest::Stop { services },
        "restart" => ControlRequest::Restart { services },
        "recover" => ControlRequest::Recover { services },
        other => {
            return error(
                404,
                "not_found",
                format!("unknown action {other:?}; use start, stop, restart or recover"),
            )
        }
    };
    respond(answer(request, state.manager.clone(), state.registry.clone()).await)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    service: Option<String>,
    n: Option<usize>,
}

async fn audit(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Err(r) = state.guard.check_read(&headers(&req, false)) {
        return refused(r);
    }
    let q = match web::Query::<AuditQuery>::from_query(req.query_string()) {
        Ok(q) => q.into_inner(),
        Err(e) => return error(400, "bad_request", format!("bad query: {e}")),
    };
    let n = q.n.unwrap_or(50).min(MAX_AUDIT_LINES);
    let path = state.audit_path.clone();
    let service = q.service.filter(|s| !s.is_empty());
    match web::block(move || read_audit(&path, service.as_deref(), n)).await {
        Ok(Ok(lines)) => HttpResponse::Ok().json(lines),
        Ok(Err(e)) => error(500, "failed", format!("cannot read the audit trail: {e}")),
        Err(e) => error(500, "failed", e.to_string()),
    }
}

/// The last `n` lines of the audit trail (of `service` only, when given).
fn read_audit(path: &Path, service: Option<&str>, n: usize) -> io::Result<Vec<AuditLine>> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e),
    };
    let lines: Vec<String> = match service {
        None => String::from_utf8_lossy(&tail(&mut file, n)?)
            .lines()
            .map(str::to_string)
            .collect(),
        Some(service) => {
            let mut last = VecDeque::with_capacity(n.min(1024));
            for line in BufReader::new(file).lines().map_while(Result::ok) {
                if line.split(" | ").nth(1) == Some(service) {
                    if last.len() == n {
                        last.pop_front();
                    }
                    if n > 0 {
                        last.push_back(line);
                    }
                }
            }
            last.into()
        }
    };
    Ok(lines.iter().filter_map(|l| parse_audit_line(l)).collect())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EscalationsQuery {
    open: Option<bool>,
}

/// An escalation block, and whether it is the open one of its service.
#[derive(Serialize)]
struct Escalation {
    #[serde(flatten)]
    block: EscalationBlock,
    /// The service is escalated now and this is its latest block.
    open: bool,
}

async fn escalations(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Err(r) = state.guard.check_read(&headers(&req, false)) {
        return refused(r);
    }
    let q = match web::Query::<EscalationsQuery>::from_query(req.query_string()) {
        Ok(q) => q.into_inner(),
        Err(e) => return error(400, "bad_request", format!("bad query: {e}")),
    };
    let path = state.escalations_path.clone();
    let text = match web::block(move || std::fs::read_to_string(path)).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Ok(Err(e)) => return error(500, "failed", format!("cannot read the escalations: {e}")),
        Err(e) => return error(500, "failed", e.to_string()),
    };
    let escalated: Vec<String> = match answer(
        ControlRequest::Status { services: vec![] },
        state.manager.clone(),
        state.registry.clone(),
    )
    .await
    {
        ControlResponse::Status(s) => s
            .services
            .into_iter()
            .filter(|r| r.status == ServiceStatus::Escalated)
            .map(|r| r.name)
            .collect(),
        other => return respond(other),
    };
    let blocks = parse_escalations(&text);
    let mut latest: HashMap<&str, usize> = HashMap::new();
    for (i, b) in blocks.iter().enumerate() {
        latest.insert(b.service.as_str(), i);
    }
    let open: Vec<bool> = blocks
        .iter()
        .enumerate()
        .map(|(i, b)| latest.get(b.service.as_str()) == Some(&i) && escalated.contains(&b.service))
        .collect();
    let list: Vec<Escalation> = blocks
        .into_iter()
        .zip(open)
        .map(|(block, open)| Escalation { block, open })
        .filter(|e| !q.open.unwrap_or(false) || e.open)
        .collect();
    HttpResponse::Ok().json(list)
}

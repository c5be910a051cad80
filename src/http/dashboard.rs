//! `GET /`: the live dashboard, one self-contained page (HTML, CSS and JS in
//! `assets/dashboard.html`, compiled into the binary; nothing from a CDN). It
//! reads the API and follows `/api/v1/events`; see the page's own comments.

use super::routes::{headers, refused};
use super::AppState;
use actix_web::{web, HttpRequest, HttpResponse};

const PAGE: &str = include_str!("../../assets/dashboard.html");

/// The page may run its own inline script and talk to this origin, nothing
/// else, and may not be framed (its buttons restart services).
const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                   connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

pub async fn page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Err(r) = state.guard.check_page(&headers(&req, false)) {
        return refused(r);
    }
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", CSP))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .body(PAGE)
}

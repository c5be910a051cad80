//! Who may use the HTTP side: pure checks over a request's headers, so each
//! rule is a table test.
//!
//! - **Host** (loopback listeners): the `Host` header must name this listener
//!   (`127.0.0.1:P`, `localhost:P`, `[::1]:P`). A web page whose name was
//!   rebound to 127.0.0.1 (DNS rebinding) sends its own name and is refused.
//! - **Token**: with `http.token` set, mutating requests need
//!   `Authorization: Bearer <token>`; on a non-loopback listener (allowed only
//!   with a token) every route but the page needs it.
//! - **Cross-site** (mutating requests): a browser's `Sec-Fetch-Site` must be
//!   `same-origin` (or `none`: typed by the user), and an `Origin`, when sent,
//!   must be this very host. A body must be `application/json` — a form
//!   (`text/plain`, `application/x-www-form-urlencoded`) cannot be one, so no
//!   page can post to the API without a CORS preflight, which is never granted.

use std::net::SocketAddr;

/// Why a request is refused: the HTTP status and the error object's parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            status,
            code,
            message: message.into(),
        }
    }
}

/// The headers the checks read.
#[derive(Debug, Default, Clone, Copy)]
pub struct Headers<'a> {
    pub host: Option<&'a str>,
    pub origin: Option<&'a str>,
    pub sec_fetch_site: Option<&'a str>,
    pub authorization: Option<&'a str>,
    pub content_type: Option<&'a str>,
    /// The request carries a non-empty body.
    pub has_body: bool,
}

#[derive(Clone)]
pub struct Guard {
    /// The listener is on a loopback address.
    loopback: bool,
    /// Accepted `Host` values (lowercase) on a loopback listener.
    hosts: Vec<String>,
    token: Option<String>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("loopback", &self.loopback)
            .field("hosts", &self.hosts)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Guard {
    /// For a listener bound to `bound`.
    pub fn new(bound: SocketAddr, token: Option<String>) -> Self {
        let port = bound.port();
        let mut hosts = vec![
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("[::1]:{port}"),
            bound.to_string().to_ascii_lowercase(),
        ];
        if port == 80 {
            hosts.extend(["127.0.0.1", "localhost", "[::1]"].map(String::from));
        }
        Guard {
            loopback: bound.ip().is_loopback(),
            hosts,
            token,
        }
    }

    pub fn token_required_for_writes(&self) -> bool {
        self.token.is_some()
    }

    /// The page itself: no data in it, only the Host check.
    pub fn check_page(&self, h: &Headers) -> Result<(), Refusal> {
        self.check_host(h)
    }

    /// A read (`GET` of the API, events, metrics).
    pub fn check_read(&self, h: &Headers) -> Result<(), Refusal> {
        self.check_host(h)?;
        if !self.loopback {
            self.check_token(h)?;
        }
        Ok(())
    }

    /// A mutating request (`POST`).
    pub fn check_write(&self, h: &Headers) -> Result<(), Refusal> {
        self.check_host(h)?;
        check_same_origin(h)?;
        self.check_token(h)?;
        if h.has_body {
            let json = h
                .content_type
                .and_then(|c| c.split(';').next())
                .is_some_and(|c| c.trim().eq_ignore_ascii_case("application/json"));
            if !json {
                return Err(Refusal::new(
                    415,
                    "unsupported_media_type",
                    "a request body must be sent as Content-Type: application/json (or send no body)",
                ));
            }
        }
        Ok(())
    }

    fn check_host(&self, h: &Headers) -> Result<(), Refusal> {
        if !self.loopback {
            return Ok(());
        }
        let host = h.host.unwrap_or("").to_ascii_lowercase();
        if self.hosts.contains(&host) {
            Ok(())
        } else {
            Err(Refusal::new(
                403,
                "forbidden",
                format!(
                    "Host {:?} is not this supervisor's address; use http://{}/",
                    h.host.unwrap_or(""),
                    self.hosts[0]
                ),
            ))
        }
    }

    fn check_token(&self, h: &Headers) -> Result<(), Refusal> {
        let Some(token) = &self.token else {
            return Ok(());
        };
        let given = h.authorization.and_then(|a| {
            let (scheme, value) = a.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then_some(value.trim())
        });
        match given {
            Some(given) if constant_time_eq(given.as_bytes(), token.as_bytes()) => Ok(()),
            Some(_) => Err(Refusal::new(401, "unauthorized", "wrong token")),
            None => Err(Refusal::new(
                401,
                "unauthorized",
                "this request needs the token: send Authorization: Bearer <http.token>",
            )),
        }
    }
}

/// Refuse what a browser says comes from another site.
fn check_same_origin(h: &Headers) -> Result<(), Refusal> {
    if let Some(site) = h.sec_fetch_site {
        if !matches!(site.trim(), "same-origin" | "none") {
            return Err(Refusal::new(
                403,
                "forbidden",
                format!("cross-site request refused (Sec-Fetch-Site: {site})"),
            ));
        }
    }
    if let Some(origin) = h.origin {
        let host = h.host.unwrap_or("");
        let same = origin
            .trim()
            .strip_prefix("http://")
            .is_some_and(|o| !host.is_empty() && o.eq_ignore_ascii_case(host));
        if !same {
            return Err(Refusal::new(
                403,
                "forbidden",
                format!("cross-site request refused (Origin {origin} is not http://{host})"),
            ));
        }
    }
    Ok(())
}

/// Compare without an early exit, so timing does not tell how much matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123";

    fn local(token: bool) -> Guard {
        Guard::new(
            "127.0.0.1:9810".parse().unwrap(),
            token.then(|| TOKEN.to_string()),
        )
    }

    fn h<'a>() -> Headers<'a> {
        Headers {
            host: Some("127.0.0.1:9810"),
            ..Headers::default()
        }
    }

    fn status(r: Result<(), Refusal>) -> u16 {
        r.err().map_or(200, |r| r.status)
    }

    #[test]
    fn host_must_name_the_loopback_listener() {
        let g = local(false);
        for ok in [
            "127.0.0.1:9810",
            "localhost:9810",
            "LOCALHOST:9810",
            "[::1]:9810",
        ] {
            assert_eq!(
                status(g.check_read(&Headers {
                    host: Some(ok),
                    ..h()
                })),
                200,
                "{ok}"
            );
        }
        for bad in ["evil.example:9810", "127.0.0.1:9811", "localhost", ""] {
            assert_eq!(
                status(g.check_read(&Headers {
                    host: Some(bad),
                    ..h()
                })),
                403,
                "{bad}"
            );
            assert_eq!(
                status(g.check_page(&Headers {
                    host: Some(bad),
                    ..h()
                })),
                403,
                "{bad}"
            );
        }
        assert_eq!(status(g.check_read(&Headers { host: None, ..h() })), 403);
    }

    #[test]
    fn writes_refuse_other_sites() {
        let g = local(false);
        assert_eq!(
            status(g.check_write(&h())),
            200,
            "curl: no Origin, no Sec-Fetch-Site"
        );
        let same = Headers {
            origin: Some("http://127.0.0.1:9810"),
            sec_fetch_site: Some("same-origin"),
            ..h()
        };
        assert_eq!(status(g.check_write(&same)), 200);
        for (origin, site) in [
            (Some("http://evil.example"), None),
            (Some("http://localhost:8001"), None),
            (Some("null"), None),
            (None, Some("cross-site")),
            (None, Some("same-site")),
            (Some("http://127.0.0.1:9810"), Some("same-site")),
        ] {
            let r = g.check_write(&Headers {
                origin,
                sec_fetch_site: site,
                ..h()
            });
            assert_eq!(status(r), 403, "{origin:?} {site:?}");
        }
    }

    #[test]
    fn writes_need_json_or_no_body() {
        let g = local(false);
        let body = |ct: Option<&'static str>| Headers {
            has_body: true,
            content_type: ct,
            ..h()
        };
        assert_eq!(status(g.check_write(&body(Some("application/json")))), 200);
        assert_eq!(
            status(g.check_write(&body(Some("application/json; charset=utf-8")))),
            200
        );
        for ct in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
        ] {
            assert_eq!(status(g.check_write(&body(ct))), 415, "{ct:?}");
        }
    }

    #[test]
    fn token_guards_writes_and_only_writes_on_loopback() {
        let g = local(true);
        assert_eq!(status(g.check_read(&h())), 200);
        assert_eq!(status(g.check_write(&h())), 401);
        let wrong = Headers {
            authorization: Some("Bearer nope"),
            ..h()
        };
        assert_eq!(status(g.check_write(&wrong)), 401);
        let right = format!("Bearer {TOKEN}");
        let with = Headers {
            authorization: Some(&right),
            ..h()
        };
        assert_eq!(status(g.check_write(&with)), 200);
        let lower = format!("bearer {TOKEN}");
        assert_eq!(
            status(g.check_write(&Headers {
                authorization: Some(&lower),
                ..h()
            })),
            200
        );
    }

    #[test]
    fn beyond_loopback_every_read_needs_the_token() {
        let g = Guard::new("0.0.0.0:9810".parse().unwrap(), Some(TOKEN.into()));
        let any_host = Headers {
            host: Some("supervisor.lan:9810"),
            ..Headers::default()
        };
        assert_eq!(status(g.check_page(&any_host)), 200);
        assert_eq!(status(g.check_read(&any_host)), 401);
        let right = format!("Bearer {TOKEN}");
        assert_eq!(
            status(g.check_read(&Headers {
                authorization: Some(&right),
                ..any_host
            })),
            200
        );
        assert!(!format!("{g:?}").contains(TOKEN));
    }
}

//! The `http` key: where the dashboard, the HTTP API and `/metrics` listen, and
//! the token that guards them.
//!
//! Secure by default: the listener is off unless the key is given, and an
//! address other than loopback is refused unless a token is set, because the
//! API can stop and restart every service.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::raw::RawHttp;
use super::validate::Problems;
use super::HttpSettings;

/// Shortest token accepted: a guessable token is no guard.
pub(crate) const MIN_TOKEN_LEN: usize = 16;

/// `None` when a problem was recorded.
pub(crate) fn build(raw: RawHttp, problems: &mut Problems) -> Option<HttpSettings> {
    let token = match raw.token {
        None => None,
        Some(t) if t.chars().count() < MIN_TOKEN_LEN => {
            problems.push(
                "http.token",
                format!("must be at least {MIN_TOKEN_LEN} characters long"),
            );
            return None;
        }
        Some(t) if !t.chars().all(|c| c.is_ascii_graphic()) => {
            problems.push(
                "http.token",
                "may hold only printable ASCII characters, without spaces",
            );
            return None;
        }
        Some(t) => Some(t),
    };
    let Some(written) = raw.listen else {
        problems.push(
            "http.listen",
            "missing: give the address to listen on, e.g. \"127.0.0.1:9810\"",
        );
        return None;
    };
    let listen = match parse_listen(&written) {
        Ok(a) => a,
        Err(e) => {
            problems.push("http.listen", e);
            return None;
        }
    };
    if !listen.ip().is_loopback() && token.is_none() {
        problems.push(
            "http.listen",
            format!(
                "{written:?} is not a loopback address: the API can stop every service, so \
                 listening beyond this machine needs \"http.token\" (or use \"127.0.0.1:{}\")",
                listen.port()
            ),
        );
        return None;
    }
    Some(HttpSettings { listen, token })
}

/// `ip:port`, `[ipv6]:port` or `localhost:port`.
fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = text.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Some(port) = text.strip_prefix("localhost:") {
        if let Ok(port) = port.parse::<u16>() {
            return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
        }
    }
    Err(format!(
        "{text:?} is not an address to listen on; write it like \"127.0.0.1:9810\""
    ))
}

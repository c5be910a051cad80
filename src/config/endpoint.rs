//! Health endpoints and webhook URLs: `http://host[:port][/path]` and
//! `tcp://host:port`.
//!
//! Checked here once so the probes never meet a URL they cannot use: `https` is
//! refused with a reason (there is no TLS client), as are other schemes, missing
//! hosts, bad ports, credentials and whitespace. The HTTP URL is kept as written.

use super::HealthCheck;

/// `health_endpoint` → `HealthCheck::Http` or `HealthCheck::Tcp`.
pub(crate) fn parse_health_endpoint(text: &str) -> Result<HealthCheck, String> {
    let (scheme, rest) = split_scheme(text)?;
    match scheme.as_str() {
        "http" => {
            check_http_rest(text, rest)?;
            Ok(HealthCheck::Http {
                url: text.to_owned(),
            })
        }
        "tcp" => {
            let authority = rest.strip_suffix('/').unwrap_or(rest);
            if authority.contains(['/', '?', '#']) {
                return Err(format!(
                    "{text:?}: a tcp:// endpoint is only host:port, without a path"
                ));
            }
            let (host, port) = split_authority(text, authority)?;
            let port = port.ok_or_else(|| format!("{text:?}: a tcp:// endpoint needs a port"))?;
            Ok(HealthCheck::Tcp { host, port })
        }
        _ => Err(unsupported(text, &scheme, "http:// or tcp://")),
    }
}

/// `notifications.webhook_url`: an `http://` URL.
pub(crate) fn check_webhook_url(text: &str) -> Result<(), String> {
    let (scheme, rest) = split_scheme(text)?;
    if scheme != "http" {
        return Err(unsupported(text, &scheme, "http://"));
    }
    check_http_rest(text, rest)
}

fn unsupported(text: &str, scheme: &str, wanted: &str) -> String {
    if scheme == "https" {
        format!("{text:?}: https is not supported (there is no TLS client); use {wanted}")
    } else {
        format!("{text:?}: unsupported scheme `{scheme}`; use {wanted}")
    }
}

/// The lowercase scheme and what follows `://`.
fn split_scheme(text: &str) -> Result<(String, &str), String> {
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{text:?}: URLs may not contain spaces or control characters"
        ));
    }
    match text.split_once("://") {
        Some((scheme, rest)) if !scheme.is_empty() => Ok((scheme.to_ascii_lowercase(), rest)),
        _ => Err(format!(
            "{text:?} is not a URL; write it like \"http://127.0.0.1:8001/health\" or \"tcp://127.0.0.1:8001\""
        )),
    }
}

fn check_http_rest(text: &str, rest: &str) -> Result<(), String> {
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    split_authority(text, &rest[..end]).map(|_| ())
}

/// `host[:port]` (IPv6 hosts in brackets) → host without brackets and the port.
fn split_authority(text: &str, authority: &str) -> Result<(String, Option<u16>), String> {
    if authority.contains('@') {
        return Err(format!(
            "{text:?}: credentials in the URL are not supported"
        ));
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| format!("{text:?}: unclosed `[` in the host"))?;
        if !host
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
            || host.is_empty()
        {
            return Err(format!("{text:?}: `[{host}]` is not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| format!("{text:?}: unexpected `{after}` after the host"))?,
            ),
        };
        (host, port)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let host_ok = !host.is_empty()
        && (authority.starts_with('[')
            || host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')));
    if !host_ok {
        return Err(format!("{text:?}: missing or invalid host"));
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => return Err(format!("{text:?}: invalid port `{p}` (1-65535)")),
        },
    };
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(url: &str) -> HealthCheck {
        HealthCheck::Http { url: url.into() }
    }

    #[test]
    fn accepted_endpoints() {
        for url in [
            "http://localhost:8001/health",
            "http://127.0.0.1:8001",
            "http://example.com/",
            "http://[::1]:8080/x?y=1",
            "HTTP://localhost/health",
        ] {
            assert_eq!(parse_health_endpoint(url), Ok(http(url)));
        }
        assert_eq!(
            parse_health_endpoint("tcp://127.0.0.1:6379"),
            Ok(HealthCheck::Tcp {
                host: "127.0.0.1".into(),
                port: 6379
            })
        );
        assert_eq!(
            parse_health_endpoint("tcp://[::1]:6379/"),
            Ok(HealthCheck::Tcp {
                host: "::1".into(),
                port: 6379
            })
        );
    }

    #[test]
    fn refused_endpoints() {
        let https = parse_health_endpoint("https://localhost/health").unwrap_err();
        assert!(https.contains("https is not supported"), "{https}");
        for bad in [
            "localhost:8001",
            "ftp://x/",
            "http://",
            "http://:80/",
            "http://host:0/",
            "http://host:99999/",
            "http://host:+80/",
            "http://user:pw@host/",
            "http://ho st/",
            "http://[::1/",
            "tcp://host",
            "tcp://host:80/path",
            "tcp://:80",
            "://x",
            "",
        ] {
            assert!(parse_health_endpoint(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn webhooks_are_http_only() {
        assert!(check_webhook_url("http://hooks.local:9000/escalation").is_ok());
        assert!(check_webhook_url("https://hooks.example.com/x").is_err());
        assert!(check_webhook_url("tcp://x:1").is_err());
    }
}

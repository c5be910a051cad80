//! The `http` key and the alert-delivery settings of `notifications`.

use std::time::Duration;

use serde_json::json;

use super::{assert_mentions, service, Fixture};
use crate::config::NotifyFormat;

fn with_http(http: serde_json::Value) -> Fixture {
    Fixture::with(
        &json!({"ai_dawg": {"services": {"a": service()}}, "http": http}),
        &["true"],
    )
}

#[test]
fn http_is_off_unless_given() {
    let loaded = Fixture::with(
        &json!({"ai_dawg": {"services": {"a": service()}}}),
        &["true"],
    )
    .load()
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.http, None);
}

#[test]
fn loopback_listen_loads_without_a_token() {
    for (written, expected) in [
        ("127.0.0.1:9810", "127.0.0.1:9810"),
        ("localhost:9811", "127.0.0.1:9811"),
        ("[::1]:9812", "[::1]:9812"),
    ] {
        let http = with_http(json!({"listen": written}))
            .load()
            .unwrap_or_else(|e| panic!("{written}: {e}"))
            .http
            .expect("http");
        assert_eq!(http.listen.to_string(), expected);
        assert_eq!(http.token, None);
    }
}

#[test]
fn non_loopback_listen_needs_a_token() {
    let message = with_http(json!({"listen": "0.0.0.0:9810"})).error();
    assert_mentions(
        &message,
        &["http.listen", "not a loopback address", "http.token"],
    );
    let http = with_http(json!({"listen": "0.0.0.0:9810", "token": "0123456789abcdef-xyz"}))
        .load()
        .unwrap_or_else(|e| panic!("{e}"))
        .http
        .expect("http");
    assert_eq!(http.token.as_deref(), Some("0123456789abcdef-xyz"));
    assert!(
        !format!("{http:?}").contains("0123456789abcdef"),
        "the token never reaches a log line"
    );
}

#[test]
fn http_problems_name_the_key() {
    assert_mentions(
        &with_http(json!({"listen": "nowhere"})).error(),
        &["http.listen", "\"nowhere\" is not an address"],
    );
    assert_mentions(&with_http(json!({})).error(), &["http.listen: missing"]);
    assert_mentions(
        &with_http(json!({"listen": "127.0.0.1:1", "token": "short"})).error(),
        &["http.token: must be at least 16 characters"],
    );
    assert_mentions(
        &with_http(json!({"listen": "127.0.0.1:1", "port": 3})).error(),
        &["http.port", "unknown field `port`"],
    );
}

#[test]
fn notification_delivery_settings() {
    let fixture = Fixture::with(
        &json!({
            "ai_dawg": {"services": {"a": service()}},
            "notifications": {
                "webhook_url": "http://127.0.0.1:9/hook",
                "format": "slack",
                "retries": 5,
                "retry_backoff": "250ms",
                "timeout_seconds": 2,
                "queue_size": 7,
            }
        }),
        &["true"],
    );
    let n = fixture
        .load()
        .unwrap_or_else(|e| panic!("{e}"))
        .notifications
        .expect("notifications");
    assert_eq!(n.format, NotifyFormat::Slack);
    assert_eq!(n.retries, 5);
    assert_eq!(n.retry_backoff, Duration::from_millis(250));
    assert_eq!(n.timeout, Duration::from_secs(2));
    assert_eq!(n.queue_size, 7);

    let defaults = Fixture::with(
        &json!({"ai_dawg": {"services": {}}, "notifications": {"webhook_url": "http://127.0.0.1:9/"}}),
        &["true"],
    )
    .load()
    .unwrap_or_else(|e| panic!("{e}"))
    .notifications
    .expect("notifications");
    assert_eq!(defaults.format, NotifyFormat::Json);
    assert_eq!(
        (
            defaults.retries,
            defaults.retry_backoff,
            defaults.queue_size
        ),
        (3, Duration::from_secs(1), 100)
    );
}

#[test]
fn notification_delivery_problems() {
    let message = Fixture::with(
        &json!({
            "ai_dawg": {"services": {}},
            "notifications": {"format": "teams", "timeout": "0s", "queue_size": 0,
                              "retry_backoff": "soon"}
        }),
        &["true"],
    )
    .error();
    assert_mentions(
        &message,
        &[
            "notifications.format: unknown format \"teams\"",
            "notifications.timeout: must be greater than zero",
            "notifications.queue_size: must be at least 1",
            "notifications.retry_backoff: invalid duration",
        ],
    );
}

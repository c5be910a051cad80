//! Semantic refusals: a config that parses but means something wrong. Each
//! problem names its key path, and all of them are reported at once.

use serde_json::json;

use super::*;

#[test]
fn duplicate_ports_name_both_services() {
    let message = error_of(json!({
        "producer": service_with(json!({"port": 8001})),
        "vocal_coach": service_with(json!({"port": 8001})),
    }));
    assert_mentions(
        &message,
        &[
            "ai_dawg.services.vocal_coach.port",
            "port 8001",
            "`producer`",
            "`vocal_coach`",
        ],
    );
}

#[test]
fn dependency_problems() {
    assert_mentions(
        &error_of(json!({"a": service_with(json!({"depends_on": ["ghost"]}))})),
        &["ai_dawg.services.a.depends_on: unknown service `ghost`"],
    );
    assert_mentions(
        &error_of(json!({"a": service_with(json!({"depends_on": ["a"]}))})),
        &["ai_dawg.services.a.depends_on: `a` depends on itself"],
    );
    assert_mentions(
        &error_of(json!({
            "a": service_with(json!({"depends_on": ["b"]})),
            "b": service_with(json!({"depends_on": ["a"]})),
        })),
        &["ai_dawg.services.a.depends_on: dependency cycle a -> b -> a"],
    );
    assert_mentions(
        &error_of(json!({
            "x": service(),
            "c": service_with(json!({"depends_on": ["x", "d"]})),
            "d": service_with(json!({"depends_on": ["e"]})),
            "e": service_with(json!({"depends_on": ["c"]})),
        })),
        &["ai_dawg.services.c.depends_on: dependency cycle c -> d -> e -> c"],
    );
    assert_mentions(
        &error_of(json!({
            "a": service(),
            "b": service_with(json!({"depends_on": ["a", "a"]})),
        })),
        &["ai_dawg.services.b.depends_on: `a` is listed twice"],
    );
}

#[test]
fn command_problems() {
    assert_mentions(
        &error_of(json!({"a": {"port": 1234}})),
        &["ai_dawg.services.a.command: missing"],
    );
    assert_mentions(
        &error_of(json!({"a": service_with(json!({"command": []}))})),
        &["ai_dawg.services.a.command: must not be empty"],
    );
    assert_mentions(
        &error_of(json!({"a": service_with(json!({"command": [""]}))})),
        &["ai_dawg.services.a.command[0]: the program name is empty"],
    );
    assert_mentions(
        &error_of(json!({"a": service_with(json!({"command": ["no-such-program-xyz-42"]}))})),
        &["ai_dawg.services.a.command[0]: program `no-such-program-xyz-42` not found on PATH"],
    );
    assert_mentions(
        &error_of(
            json!({"a": service_with(json!({"health_command": ["no-such-program-xyz-42"]}))}),
        ),
        &["ai_dawg.services.a.health_command[0]: program `no-such-program-xyz-42` not found"],
    );
    assert_mentions(
        &error_of(json!({"a": service_with(json!({"health_command": []}))})),
        &["ai_dawg.services.a.health_command: must not be empty"],
    );
}

#[test]
fn health_problems() {
    assert_mentions(
        &error_of(json!({"a": service_with(json!({
            "health_endpoint": "http://127.0.0.1:1/health",
            "health_command": ["true"],
        }))})),
        &[
            "ai_dawg.services.a:",
            "`health_endpoint` or `health_command`, not both",
        ],
    );
    assert_mentions(
        &error_of(json!({"a": service_with(json!({"health_endpoint": "https://x/health"}))})),
        &[
            "ai_dawg.services.a.health_endpoint:",
            "https is not supported",
        ],
    );
    assert_mentions(
        &error_of(json!({"a": service_with(json!({"health_endpoint": "ftp://x/health"}))})),
        &[
            "ai_dawg.services.a.health_endpoint:",
            "unsupported scheme `ftp`",
        ],
    );
    assert_mentions(
        &error_of(json!({"a": service_with(json!({"health_endpoint": "localhost:8000"}))})),
        &["ai_dawg.services.a.health_endpoint:", "is not a URL"],
    );
    assert_mentions(
        &error_of(json!({"a": service_with(json!({"health_endpoint": "tcp://localhost"}))})),
        &["ai_dawg.services.a.health_endpoint:", "needs a port"],
    );
}

#[test]
fn zero_interval_and_timeout_are_refused() {
    let global = Fixture::with(
        &json!({
            "ai_dawg": {"services": {"a": service()}},
            "monitoring": {"health_check_interval_seconds": 0, "health_check_timeout": "0s"},
        }),
        &["true"],
    )
    .error();
    assert_mentions(
        &global,
        &[
            "monitoring.health_check_interval_seconds: must be greater than zero",
            "monitoring.health_check_timeout: must be greater than zero",
        ],
    );
    assert_mentions(
        &error_of(
            json!({"a": service_with(json!({"monitoring": {"health_check_interval": "0ms"}}))}),
        ),
        &["ai_dawg.services.a.monitoring.health_check_interval: must be greater than zero"],
    );
    assert_mentions(
        &error_of(json!({"a": service_with(json!({"start_timeout_seconds": 0}))})),
        &["ai_dawg.services.a.start_timeout_seconds: must be greater than zero"],
    );
}

#[test]
fn duration_problems() {
    assert_mentions(
        &error_of(
            json!({"a": service_with(json!({"start_timeout": "10s", "start_timeout_seconds": 10}))}),
        ),
        &[
            "ai_dawg.services.a.start_timeout:",
            "`start_timeout`",
            "`start_timeout_seconds`",
        ],
    );
    assert_mentions(
        &error_of(json!({"a": service_with(json!({"stop_timeout_seconds": -1}))})),
        &["ai_dawg.services.a.stop_timeout_seconds: -1 seconds is negative"],
    );
    assert_mentions(
        &error_of(json!({"a": service_with(json!({"stop_timeout": "soon"}))})),
        &["ai_dawg.services.a.stop_timeout: invalid duration \"soon\""],
    );
    let both_global = Fixture::with(
        &json!({
            "ai_dawg": {"services": {}},
            "monitoring": {"restart_cooldown": "1m", "restart_cooldown_seconds": 60},
        }),
        &[],
    )
    .error();
    assert_mentions(
        &both_global,
        &["monitoring.restart_cooldown:", "`restart_cooldown_seconds`"],
    );
}

#[test]
fn signal_name_and_port_problems() {
    assert_mentions(
        &error_of(json!({"a": service_with(json!({"stop_signal": "SIGNOPE"}))})),
        &["ai_dawg.services.a.stop_signal: unknown signal \"SIGNOPE\""],
    );
    assert_mentions(
        &error_of(json!({"a": service_with(json!({"stop_signal": 99}))})),
        &["ai_dawg.services.a.stop_signal: 99 is not a signal number"],
    );
    assert_mentions(
        &error_of(json!({"a": service_with(json!({"port": 0}))})),
        &["ai_dawg.services.a.port: port 0"],
    );
    for bad in ["my service", "a/b", "..", "manager", "ü"] {
        let message = error_of(json!({ bad: service() }));
        assert_mentions(&message, &[&format!("ai_dawg.services.{bad}:")]);
    }
    assert_mentions(&error_of(json!({ "": service() })), &["must not be empty"]);
    assert_mentions(
        &error_of(json!({"a": service_with(json!({"env": {"A=B": "x"}}))})),
        &["ai_dawg.services.a.env:", "\"A=B\""],
    );
    assert_mentions(
        &error_of(json!({"a": service_with(json!({"cwd": ""}))})),
        &["ai_dawg.services.a.cwd:"],
    );
}

#[test]
fn safety_and_notification_problems() {
    let message = Fixture::with(
        &json!({
            "ai_dawg": {"services": {}},
            "safety": {"max_consecutive_failures_before_escalation": 0},
            "notifications": {"webhook_url": "https://hooks.example.com", "command": ["no-such-program-xyz-42"]},
        }),
        &["true"],
    )
    .error();
    assert_mentions(
        &message,
        &[
            "safety.max_consecutive_failures_before_escalation: must be at least 1",
            "notifications.webhook_url:",
            "https is not supported",
            "notifications.command[0]: program `no-such-program-xyz-42` not found",
        ],
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let fixture = Fixture::with(
        &json!({
            "ai_dawg": {"services": {
                "a": service_with(json!({"port": 9000, "depends_on": ["ghost"]})),
                "b": service_with(json!({"port": 9000, "command": []})),
                "c": service_with(json!({"stop_signal": "NOPE", "health_endpoint": "https://x"})),
                "bad name": service(),
                "d": service_with(json!({"command": ["sh"]})),
            }},
            "monitoring": {"health_check_timeout_seconds": 0},
        }),
        &["true"],
    );
    let message = fixture.error();
    let first = message.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        format!("{}: 8 problems:", fixture.config_path().display()),
        "{message}"
    );
    assert_mentions(
        &message,
        &[
            "  monitoring.health_check_timeout_seconds:",
            "  ai_dawg.services.a.depends_on: unknown service `ghost`",
            "  ai_dawg.services.b.command: must not be empty",
            "  ai_dawg.services.b.port: port 9000 is used by both `a` and `b`",
            "  ai_dawg.services.c.stop_signal:",
            "  ai_dawg.services.c.health_endpoint:",
            "  ai_dawg.services.bad name:",
            "  ai_dawg.services.d.command[0]: program `sh`",
        ],
    );
    assert_eq!(message.lines().count(), 9, "{message}");
}

#[test]
fn a_single_problem_is_one_line_starting_with_the_path() {
    let fixture = Fixture::with(
        &with_services(json!({"a": service_with(json!({"port": 0}))})),
        &["true"],
    );
    let message = fixture.error();
    assert_eq!(
        message,
        format!(
            "{}: ai_dawg.services.a.port: port 0 is not a usable port (1-65535)",
            fixture.config_path().display()
        )
    );
}

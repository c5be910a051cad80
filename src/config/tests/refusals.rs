//! What is refused while reading and parsing: unreadable files, malformed JSON,
//! unknown keys, wrong types. The message starts with the config path and names
//! the key path (and line and column). Semantic refusals are in `problems.rs`.

use serde_json::json;

use super::*;

#[test]
fn malformed_json_gives_line_and_column() {
    let fixture = Fixture::new();
    fixture.write_config("{\n  \"enabled\": true,\n  \"ai_dawg\": {,}\n}");
    fixture.write_whitelist(r#"{"commands": []}"#);
    let message = fixture.error();
    assert!(message.starts_with(&fixture.config_path().display().to_string()));
    assert_mentions(&message, &["malformed JSON", "line 3, column"]);

    fixture.write_config("");
    assert_mentions(&fixture.error(), &["malformed JSON", "line 1"]);

    fixture.write_config(r#"{"ai_dawg": {"services": {}}} trailing"#);
    assert_mentions(&fixture.error(), &["malformed JSON", "trailing characters"]);
}

#[test]
fn unknown_keys_are_refused_at_every_level_with_their_key_path() {
    let cases = [
        (
            json!({"ai_dawg": {"services": {"producer": {"command": ["true"], "prot": 1}}}}),
            "ai_dawg.services.producer.prot: unknown field `prot`, expected one of",
        ),
        (
            json!({"ai_dawg": {"services": {}}, "dashboard": {}}),
            "unknown field `dashboard`",
        ),
        (
            json!({"ai_dawg": {"services": {}, "extra": 1}}),
            "ai_dawg.extra: unknown field `extra`",
        ),
        (
            json!({"ai_dawg": {"services": {}}, "monitoring": {"interval": 3}}),
            "monitoring.interval: unknown field `interval`",
        ),
        (
            json!({"ai_dawg": {"services": {}}, "safety": {"kill_switch": true}}),
            "safety.kill_switch: unknown field `kill_switch`",
        ),
        (
            json!({"ai_dawg": {"services": {}}, "notifications": {"email": "x"}}),
            "notifications.email: unknown field `email`",
        ),
        (
            json!({"ai_dawg": {"services": {"a": {"command": ["true"], "monitoring": {"nope": 1}}}}}),
            "ai_dawg.services.a.monitoring.nope: unknown field `nope`",
        ),
    ];
    for (config, expected) in cases {
        let fixture = Fixture::with(&config, &["true"]);
        let message = fixture.error();
        assert!(
            message.starts_with(&fixture.config_path().display().to_string()),
            "{message}"
        );
        assert_mentions(&message, &[expected, "line 1, column"]);
    }
}

#[test]
fn wrong_types_name_the_key_path() {
    let cases = [
        (
            json!({"a": service_with(json!({"port": "8001"}))}),
            &["ai_dawg.services.a.port: invalid type: string \"8001\", expected u16"][..],
        ),
        (
            json!({"a": service_with(json!({"port": 70000}))}),
            &["ai_dawg.services.a.port", "70000"],
        ),
        (
            json!({"a": service_with(json!({"start_timeout": 10}))}),
            &["ai_dawg.services.a.start_timeout", "\"10s\"", "_seconds"],
        ),
        (
            json!({"a": service_with(json!({"stop_timeout_seconds": "5s"}))}),
            &[
                "ai_dawg.services.a.stop_timeout_seconds",
                "number of seconds",
            ],
        ),
        (
            json!({"a": service_with(json!({"command": "true"}))}),
            &["ai_dawg.services.a.command: invalid type: string"],
        ),
        (
            json!({"a": service_with(json!({"stop_signal": true}))}),
            &["ai_dawg.services.a.stop_signal", "signal name"],
        ),
        (
            json!({"a": service_with(json!({"env": {"X": 1}}))}),
            &["ai_dawg.services.a.env.X: invalid type: integer"],
        ),
    ];
    for (services, expected) in cases {
        assert_mentions(&error_of(services), expected);
    }
}

#[test]
fn objects_must_be_written_as_objects() {
    // serde's derived structs would take `[false, 5, true]` as the fields in order.
    let safety = Fixture::with(
        &json!({"ai_dawg": {"services": {}}, "safety": [false, 5, true]}),
        &[],
    )
    .error();
    assert_mentions(
        &safety,
        &["safety: invalid type: sequence, expected a safety object"],
    );
    assert_mentions(
        &error_of(json!({"a": [["true"]]})),
        &["ai_dawg.services.a: invalid type: sequence, expected a service object"],
    );
}

#[test]
fn no_rust_type_names_leak_into_messages() {
    for text in [
        "[]",
        "null",
        "\"x\"",
        r#"{"ai_dawg": []}"#,
        r#"{"ai_dawg": {"services": {"a": 1}}}"#,
    ] {
        let fixture = Fixture::new();
        fixture.write_config(text);
        fixture.write_whitelist(r#"{"commands": []}"#);
        let message = fixture.error();
        assert!(!message.contains("Raw"), "{message}");
        assert!(!message.contains("struct"), "{message}");
    }
}

#[test]
fn odd_inputs_never_panic() {
    let texts = [
        "{}",
        r#"{"ai_dawg": null}"#,
        r#"{"ai_dawg": {"services": null}}"#,
        r#"{"ai_dawg": {"services": {"": {}}}}"#,
        r#"{"ai_dawg": {"services": {"a": {"command": [""]}}}}"#,
        r#"{"ai_dawg": {"services": {"a": {"command": ["/"], "cwd": "/"}}}}"#,
        r#"{"ai_dawg": {"services": {"a": {"command": ["true"], "stop_signal": 18446744073709551615}}}}"#,
        r#"{"ai_dawg": {"services": {"a": {"command": ["true"], "start_timeout_seconds": 1e308}}}}"#,
        r#"{"ai_dawg": {"services": {"a": {"command": ["true"], "start_timeout": "99999999999999999999999y"}}}}"#,
        r#"{"ai_dawg": {"services": {"a": {"command": ["true"], "health_endpoint": "http://[:"}}}}"#,
        r#"{"ai_dawg": {"services": {"a": {"command": ["true"], "health_endpoint": "tcp://é:1"}}}}"#,
        r#"{"ai_dawg": {"services": {"a": {"command": ["tr\u0000ue"]}}}}"#,
        "\u{feff}{}",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    ];
    for text in texts {
        let fixture = Fixture::new();
        fixture.write_config(text);
        fixture.write_whitelist(r#"{"commands": ["true"]}"#);
        let _ = fixture.load();
    }
}

#[test]
fn duplicate_service_names_are_refused() {
    let fixture = Fixture::new();
    fixture.write_config(
        r#"{"ai_dawg": {"services": {"a": {"command": ["true"]}, "a": {"command": ["true"]}}}}"#,
    );
    fixture.write_whitelist(r#"{"commands": ["true"]}"#);
    assert_mentions(
        &fixture.error(),
        &["ai_dawg.services", "`a` is given twice"],
    );
}

#[test]
fn missing_config_file_names_it() {
    let fixture = Fixture::new();
    let message = fixture.error();
    assert!(message.starts_with(&fixture.config_path().display().to_string()));
    assert_mentions(&message, &["cannot read the file"]);
}

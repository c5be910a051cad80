//! The fuzz targets' properties in the normal test suite (see README
//! "Fuzzing"): a short proptest run per surface, and the regression corpus
//! under `tests/corpus/` (inputs the fuzzers found, and hand-made nasty ones)
//! replayed through the same oracles as `fuzz/fuzz_targets/`.

mod fuzz_support;

use std::path::{Path, PathBuf};

use ai_dawg_manager::protocol::{self, ControlRequest, KillSwitchMode};
use fuzz_support::{check_protocol, check_text, ConfigBench};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Cases per property: enough to catch a regression, short enough for CI.
const CASES: u32 = 256;

// ---------------------------------------------------------------- corpus

fn corpus(kind: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{}: corpus missing", dir.display());
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// Run `check` on every file of `tests/corpus/<kind>`, naming the file that fails.
fn replay(kind: &str, check: impl Fn(&[u8])) {
    for (path, bytes) in corpus(kind) {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&bytes)));
        if let Err(panic) = outcome {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{}: {why}", path.display());
        }
    }
}

#[test]
fn config_corpus_replays() {
    let bench = ConfigBench::new();
    replay("config", |bytes| bench.check(bytes));
}

#[test]
fn protocol_corpus_replays() {
    replay("protocol", check_protocol);
}

#[test]
fn text_corpus_replays() {
    replay("text", check_text);
}

/// Hand-made inputs whose outcome matters beyond "no panic".
#[test]
fn nasty_inputs_are_refused_or_read_as_meant() {
    let bench = ConfigBench::new();
    let file = bench.config_path().display().to_string();
    let load = |name: &str| {
        let bytes = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/corpus/config")
                .join(name),
        )
        .unwrap();
        std::fs::write(bench.config_path(), bytes).unwrap();
        ai_dawg_manager::config::Config::load(bench.config_path())
    };
    let expect_err = |name: &str, wanted: &str| {
        let e = load(name).expect_err(name).to_string();
        assert!(e.starts_with(&file), "{name}: {e}");
        assert!(e.contains(wanted), "{name}: wanted {wanted:?} in {e}");
    };
    expect_err("deep-nesting.json", "invalid type");
    expect_err("duplicate-keys.json", "duplicate field `enabled`");
    expect_err("duplicate-services.json", "key `a` is given twice");
    expect_err("duplicate-env-keys.json", "given twice");
    expect_err("invalid-utf8.json", "cannot read the file");
    expect_err("nul-bytes.json", "malformed JSON");
    expect_err("one-mb-name.json", "longer than 100 characters");
    expect_err("array-instead-of-object.json", "a service object");
    expect_err("trailing.json", "malformed JSON");
    // Found by the cycle-fan input: N cycles of up to N services were all listed.
    let cycles = load("cycle-fan.json").unwrap_err().to_string();
    assert_eq!(
        cycles.matches("dependency cycle").count(),
        10,
        "{:.300}",
        cycles
    );
    let every = load("every-key.json").expect("every-key.json loads");
    assert!(every.http.is_some(), "every-key.json has an http object");
    assert_eq!(every.start_order(), ["producer", "coach", "tcp"]);

    assert!(protocol::decode_request(
        b"{\"command\":\"stop\",\"services\":[\"a\"],\"services\":[\"b\"]}"
    )
    .is_err());
    assert!(
        protocol::decode_request(b"{\"command\":\"status\",\"services\":[\"\\ud800\"]}").is_err()
    );
    assert!(
        protocol::decode_request(b"{\"command\":\"status\"}\n{\"command\":\"shutdown\"}").is_err()
    );
    let deep = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/protocol/deep-nesting.json"),
    )
    .unwrap();
    let e = protocol::decode_request(&deep).unwrap_err();
    assert!(e.contains("recursion limit"), "{e}");
}

// ---------------------------------------------------------------- config

/// Found with the fuzz corpus (many-services.json): duplicate keys, ports and
/// dependencies were checked by scanning what came before, quadratic in the
/// number of services or env keys: a 1 MB config took seconds to be refused.
#[test]
fn many_services_and_keys_load_in_near_linear_time() {
    let n = 20_000;
    let mut services = Map::new();
    for i in 0..n {
        let next = format!("s{}", (i + 1) % n);
        services.insert(
            format!("s{i}"),
            json!({"port": 1 + i, "depends_on": [next], "autostart": false}),
        );
    }
    let env: Map<String, Value> = (0..50_000)
        .map(|i| (format!("K{i}"), Value::from("")))
        .collect();
    services.insert("env".into(), json!({"command": ["sh"], "env": env}));
    let text = json!({"ai_dawg": {"services": services}}).to_string();
    let bench = ConfigBench::new();
    std::fs::write(bench.config_path(), text).unwrap();
    let started = std::time::Instant::now();
    let e = ai_dawg_manager::config::Config::load(bench.config_path()).unwrap_err();
    let took = started.elapsed();
    assert!(e.to_string().contains("dependency cycle s0 -> s1"));
    assert!(took < std::time::Duration::from_secs(15), "took {took:?}");
}

/// A leaf value of the kinds a config holds, and some it must refuse.
fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        (0u64..100_000).prop_map(Value::from),
        prop_oneof![
            Just("sh"),
            Just("python3"),
            Just("ai-dawg-manager"),
            Just("/bin/true"),
            Just("./x/../y"),
            Just("SIGTERM"),
            Just("kill"),
            Just("10s"),
            Just("1m 30s"),
            Just("500ms"),
            Just("http://127.0.0.1:8001/health"),
            Just("tcp://[::1]:6379"),
            Just("https://x/"),
            Just("producer"),
            Just("manager"),
            Just(".."),
            Just(""),
        ]
        .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ]
}

/// An arbitrary JSON value, biased towards the config's keys and values.
fn config_value() -> impl Strategy<Value = Value> {
    const KEYS: &[&str] = &[
        "enabled",
        "ai_dawg",
        "services",
        "display_name",
        "command",
        "cwd",
        "env",
        "port",
        "health_endpoint",
        "health_command",
        "start_timeout",
        "start_timeout_seconds",
        "stop_signal",
        "stop_timeout",
        "stop_timeout_seconds",
        "depends_on",
        "autostart",
        "monitoring",
        "health_check_interval",
        "health_check_interval_seconds",
        "health_check_timeout_seconds",
        "max_restart_attempts",
        "restart_cooldown",
        "stable_after_seconds",
        "safety",
        "emergency_kill_switch",
        "max_consecutive_failures_before_escalation",
        "kill_port_conflicts",
        "notifications",
        "webhook_url",
        "logs",
        "max_bytes",
        "keep",
        "max_open_files",
        "memory_max_bytes",
        "http",
        "listen",
        "token",
        "history",
        "history_days",
        "flapping",
        "window",
        "latency_trend",
        "baseline_seconds",
        "time_of_day",
        "correlated",
        "reports",
        "daily_at",
        "format",
        "retries",
        "retry_backoff",
        "queue_size",
        "a",
        "b",
        "producer",
    ];
    let key = prop_oneof![
        4 => proptest::sample::select(KEYS).prop_map(str::to_owned),
        1 => "\\PC{0,8}",
    ];
    leaf().prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A config close to a valid one: a valid service whose fields are replaced by
/// arbitrary values, so validation (not only parsing) is exercised.
fn near_valid_config() -> impl Strategy<Value = Value> {
    let fields = proptest::collection::vec(
        (
            proptest::sample::select(
                &[
                    "command",
                    "cwd",
                    "env",
                    "port",
                    "health_endpoint",
                    "health_command",
                    "start_timeout",
                    "start_timeout_seconds",
                    "stop_signal",
                    "stop_timeout_seconds",
                    "depends_on",
                    "monitoring",
                    "max_open_files",
                    "memory_max_bytes",
                ][..],
            ),
            config_value(),
        ),
        0..4,
    );
    (fields, proptest::collection::vec(any::<String>(), 1..4)).prop_map(|(fields, names)| {
        let mut services = Map::new();
        for (i, name) in names.into_iter().enumerate() {
            let mut service = json!({"command": ["sh", "-c", "exit 0"], "port": 8000 + i});
            if i == 0 {
                for (k, v) in &fields {
                    service[*k] = v.clone();
                }
            }
            services.insert(name, service);
        }
        json!({"ai_dawg": {"services": services}, "monitoring": {"max_restart_attempts": 2}})
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn config_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        ConfigBench::new().check(&bytes);
    }

    #[test]
    fn config_json_never_panics(value in config_value()) {
        ConfigBench::new().check(value.to_string().as_bytes());
    }

    #[test]
    fn near_valid_configs_never_panic(value in near_valid_config()) {
        ConfigBench::new().check(value.to_string().as_bytes());
    }
}

// ---------------------------------------------------------------- protocol

fn request() -> impl Strategy<Value = ControlRequest> {
    let names = proptest::collection::vec(any::<String>(), 0..4);
    prop_oneof![
        names
            .clone()
            .prop_map(|services| ControlRequest::Status { services }),
        names
            .clone()
            .prop_map(|services| ControlRequest::Start { services }),
        names
            .clone()
            .prop_map(|services| ControlRequest::Stop { services }),
        names
            .clone()
            .prop_map(|services| ControlRequest::Restart { services }),
        names
            .clone()
            .prop_map(|services| ControlRequest::Recover { services }),
        names.prop_map(|services| ControlRequest::Events { services }),
        Just(ControlRequest::Reload),
        Just(ControlRequest::Shutdown),
        prop_oneof![
            Just(KillSwitchMode::On),
            Just(KillSwitchMode::Off),
            Just(KillSwitchMode::Clear)
        ]
        .prop_map(|mode| ControlRequest::KillSwitch { mode }),
    ]
}

/// JSON objects that look like requests: a known or unknown verb, and fields
/// that may be missing, repeated, of the wrong type or unknown.
fn request_like() -> impl Strategy<Value = String> {
    let verb = prop_oneof![
        proptest::sample::select(
            &[
                "status",
                "start",
                "stop",
                "restart",
                "recover",
                "reload",
                "kill_switch",
                "shutdown",
                "events",
                "Status",
                "format_disk",
            ][..]
        )
        .prop_map(|v| format!("{v:?}")),
        leaf().prop_map(|v| v.to_string()),
    ];
    let field = prop_oneof![
        proptest::collection::vec(any::<String>(), 0..3)
            .prop_map(|s| format!("\"services\":{}", json!(s))),
        proptest::sample::select(&["on", "off", "clear", "ON", ""][..])
            .prop_map(|m| format!("\"mode\":{m:?}")),
        leaf().prop_map(|v| format!("\"services\":{v}")),
        leaf().prop_map(|v| format!("\"mode\":{v}")),
        (verb.clone()).prop_map(|v| format!("\"command\":{v}")),
        ("\\PC{0,6}", leaf()).prop_map(|(k, v)| format!("{}:{v}", json!(k))),
    ];
    (verb, proptest::collection::vec(field, 0..4), 0usize..4).prop_map(|(verb, fields, at)| {
        let mut parts = fields;
        let at = at.min(parts.len());
        parts.insert(at, format!("\"command\":{verb}"));
        format!("{{{}}}", parts.join(","))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn every_request_round_trips(r in request()) {
        let line = protocol::encode_line(&r);
        prop_assert_eq!(protocol::decode_request(&line), Ok(r));
        check_protocol(&line);
    }

    #[test]
    fn protocol_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        check_protocol(&bytes);
    }

    #[test]
    fn request_like_objects_round_trip_or_are_refused(line in request_like()) {
        check_protocol(line.as_bytes());
    }
}

// ---------------------------------------------------------------- audit text

/// Text made of the pieces the audit and escalation readers look for.
fn audit_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just(" | ".to_owned()),
        Just(" | #".to_owned()),
        "[0-9a-fA-F]{16}",
        "[0-9]{0,21}ms",
        Just("\n".to_owned()),
        Just("\r\n".to_owned()),
        Just("ESCALATION REQUIRED".to_owned()),
        Just("🚨 =====".to_owned()),
        Just("=====".to_owned()),
        proptest::sample::select(
            &[
                "Service: ",
                "Consecutive Failures: ",
                "Restart Attempts: ",
                "Last Error: ",
                "Reason: ",
                "Time: ",
                ": ",
            ][..]
        )
        .prop_map(str::to_owned),
        "\\PC{0,8}",
        any::<String>(),
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn audit_text_never_panics(text in audit_text()) {
        check_text(text.as_bytes());
    }

    #[test]
    fn audit_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_text(&bytes);
    }
}

/// What the supervisor writes, the readers give back.
mod written_then_read {
    use super::*;
    use ai_dawg_manager::actors::audit::{
        format_escalation, format_line, Escalate, Outcome, Record,
    };
    use ai_dawg_manager::chain;
    use ai_dawg_manager::cli::files::{parse_audit_line, parse_escalations};
    use std::time::Duration;

    /// A field of an escalation block: one line, and not a block header.
    fn block_field() -> impl Strategy<Value = String> {
        any::<String>().prop_filter("one line, not a header", |s| {
            !s.contains(['\n', '\r']) && !s.contains("ESCALATION REQUIRED")
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]

        #[test]
        fn audit_lines_round_trip(
            service in "[A-Za-z0-9_.-]{1,24}",
            action in proptest::sample::select(&["start", "stop", "restart", "health_check", "notify"][..]),
            outcome in proptest::sample::select(&[Outcome::Success, Outcome::Failure, Outcome::Skipped][..]),
            ms in any::<u64>(),
            detail in proptest::option::of(any::<String>()),
            prev in "[0-9a-f]{16}",
        ) {
            let mut record = Record::new(&service, action, outcome).took(Duration::from_millis(ms));
            record.detail = detail.clone();
            let text = format_line("2025-10-09T12:00:00.000Z", &record);
            let (line, hash) = chain::seal(&prev, &text);
            prop_assert_eq!(line.lines().count(), 1, "not one line: {:?}", line);
            let parsed = parse_audit_line(&line).expect("parses");
            prop_assert_eq!(parsed.time, "2025-10-09T12:00:00.000Z");
            prop_assert_eq!(parsed.service, service);
            prop_assert_eq!(parsed.action, action);
            prop_assert_eq!(parsed.duration_ms, ms);
            prop_assert_eq!(parsed.detail, detail.map(|d| d.replace(['\n', '\r'], " ")));
            prop_assert_eq!(parsed.hash, Some(hash));
        }

        #[test]
        fn escalation_blocks_round_trip(
            fields in proptest::collection::vec(
                (block_field(), any::<u32>(), any::<u32>(), block_field(), block_field(), block_field()),
                0..4,
            )
        ) {
            let text: String = fields
                .iter()
                .map(|(service, failures, attempts, last_error, reason, time)| {
                    format_escalation(&Escalate {
                        service: service.clone(),
                        display_name: service.clone(),
                        reason: reason.clone(),
                        consecutive_failures: *failures,
                        restart_attempts: *attempts,
                        last_error: last_error.clone(),
                        time: time.clone(),
                    })
                })
                .collect();
            let blocks = parse_escalations(&text);
            prop_assert_eq!(blocks.len(), fields.len());
            for (b, (service, failures, attempts, last_error, reason, time)) in blocks.iter().zip(&fields) {
                prop_assert_eq!(&b.service, service);
                prop_assert_eq!(&b.consecutive_failures, &failures.to_string());
                prop_assert_eq!(&b.restart_attempts, &attempts.to_string());
                prop_assert_eq!(&b.last_error, last_error);
                prop_assert_eq!(&b.reason, reason);
                prop_assert_eq!(&b.time, time);
            }
        }
    }
}

//! The HTTP side on the real binary: every route of the API, the token and
//! cross-site guards, the refusal of a non-loopback address at config load,
//! Prometheus metrics that parse and follow a `kill -9`, Server-Sent Events
//! delivering a status change within a second, webhook alerts (escalation and
//! resolution, with a retry after a first failure) and the `events` CLI.
//!
//! Each test runs its own supervisor (with real demo services) in a temporary
//! folder; see `http/support.rs` for the harness.

#[path = "http/support.rs"]
mod support;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::*;

const TOKEN: &str = "test-token-0123456789abcdef";

/// A supervisor with `services` (name → demo service) and `extra` top-level keys.
fn supervisor(services: Value, extra: Value) -> Supervisor {
    let http = free_port();
    let mut config = json!({
        "ai_dawg": {"services": services},
        "monitoring": fast_monitoring(),
        "http": {"listen": format!("127.0.0.1:{http}")},
    });
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            c.insert(k.clone(), v.clone());
        }
    }
    Setup::new(&config).start(http)
}

fn two_services() -> Supervisor {
    supervisor(
        json!({"a": demo("a", free_port(), &[]), "b": demo("b", free_port(), &[])}),
        json!({}),
    )
}

#[test]
fn routes_answer_like_the_control_socket() {
    let s = two_services();
    s.running("a");
    s.running("b");

    // GET /api/v1/services is `status --json`.
    let list = s.get("/api/v1/services");
    assert_eq!(list.status, 200);
    assert!(list.headers["content-type"].starts_with("application/json"));
    let list = list.json();
    let names: Vec<&str> = list["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(list["summary"]["total"], 2);
    assert_eq!(list["kill_switch"]["on"], false);
    let cli = s.setup.cli(&["status", "--json"]).output().unwrap();
    let cli: Value = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!(
        cli.as_object().unwrap().keys().collect::<Vec<_>>(),
        list.as_object().unwrap().keys().collect::<Vec<_>>(),
        "the same report as the CLI's"
    );

    // One record; an unknown one.
    assert_eq!(s.record("a")["status"], "running");
    let unknown = s.get("/api/v1/services/zz");
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.error_code(), "unknown_service");
    assert!(unknown.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("zz"));

    // The manual commands.
    let pid = s.running("a");
    let restarted = s.post("/api/v1/services/a/restart", &[], None);
    assert_eq!(restarted.status, 200, "{}", restarted.body);
    let r = restarted.json();
    assert_eq!(r["action"], "restart");
    assert_eq!(r["results"][0]["ok"], true);
    let new_pid = r["results"][0]["pid"].as_u64().unwrap() as u32;
    assert_ne!(new_pid, pid);
    let stopped = s.post(
        "/api/v1/services/b/stop",
        &[("Content-Type", "application/json")],
        Some("{}"),
    );
    assert_eq!(stopped.status, 200, "{}", stopped.body);
    assert_eq!(s.status_of("b"), "stopped");
    assert_eq!(s.post("/api/v1/services/b/start", &[], None).status, 200);
    s.running("b");
    assert_eq!(s.post("/api/v1/services/b/recover", &[], None).status, 200);
    s.running("b");

    for (path, status, code) in [
        ("/api/v1/services/zz/restart", 404, "unknown_service"),
        ("/api/v1/services/a/dance", 404, "not_found"),
    ] {
        let r = s.post(path, &[], None);
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (status, code),
            "{path}"
        );
    }
    let wrong_method = s.get("/api/v1/services/a/restart");
    assert_eq!(
        (wrong_method.status, wrong_method.error_code().as_str()),
        (405, "method_not_allowed")
    );
    assert_eq!(s.get("/api/v2/nothing").error_code(), "not_found");

    // The audit trail, parsed, filtered, bounded.
    let audit = s.get("/api/v1/audit?service=a&n=3");
    assert_eq!(audit.status, 200);
    let lines = audit.json();
    let lines = lines.as_array().unwrap();
    assert!(lines.len() <= 3 && !lines.is_empty());
    assert!(lines.iter().all(|l| l["service"] == "a"));
    assert!(
        lines
            .iter()
            .any(|l| l["action"] == "restart" && l["result"] == "SUCCESS"),
        "{lines:?}"
    );
    assert_eq!(s.get("/api/v1/audit?n=many").status, 400);
    assert_eq!(
        s.get("/api/v1/audit?n=2").json().as_array().unwrap().len(),
        2
    );

    // No escalation yet.
    assert_eq!(s.get("/api/v1/escalations").json(), json!([]));

    // The page itself, self-contained.
    let page = s.get("/");
    assert_eq!(page.status, 200);
    assert!(page.headers["content-type"].starts_with("text/html"));
    assert!(page.body.contains("/api/v1/events"));
    assert!(!page.body.contains("https://"), "no CDN");
    assert!(page.headers["content-security-policy"].contains("frame-ancestors 'none'"));
}

#[test]
fn token_and_cross_site_refusals() {
    let http = free_port();
    let s = Setup::new(&json!({
        "ai_dawg": {"services": {"a": demo("a", free_port(), &[])}},
        "monitoring": fast_monitoring(),
        "http": {"listen": format!("127.0.0.1:{http}"), "token": TOKEN},
    }))
    .start(http);
    s.running("a");
    let bearer = format!("Bearer {TOKEN}");
    let path = "/api/v1/services/a/restart";

    // Reads stay open on loopback; writes need the token.
    assert_eq!(s.get("/api/v1/services").status, 200);
    let none = s.post(path, &[], None);
    assert_eq!(
        (none.status, none.error_code().as_str()),
        (401, "unauthorized")
    );
    assert_eq!(none.headers["www-authenticate"], "Bearer");
    assert_eq!(
        s.post(
            path,
            &[("Authorization", "Bearer wrong-token-xxxxxxxx")],
            None
        )
        .status,
        401
    );
    assert_eq!(
        s.post(path, &[("Authorization", &bearer)], None).status,
        200
    );

    // Cross-site callers are refused even with the token.
    let auth = ("Authorization", bearer.as_str());
    for (headers, why) in [
        (
            vec![auth, ("Origin", "http://evil.example")],
            "foreign Origin",
        ),
        (vec![auth, ("Origin", "null")], "opaque Origin"),
        (
            vec![auth, ("Sec-Fetch-Site", "cross-site")],
            "cross-site fetch",
        ),
        (
            vec![auth, ("Sec-Fetch-Site", "same-site")],
            "another port of localhost",
        ),
    ] {
        let r = s.post(path, &headers, None);
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (403, "forbidden"),
            "{why}"
        );
    }
    let own = format!("http://127.0.0.1:{}", s.port);
    assert_eq!(
        s.post(
            path,
            &[auth, ("Origin", &own), ("Sec-Fetch-Site", "same-origin")],
            None
        )
        .status,
        200,
        "the dashboard's own request"
    );

    // A body must be JSON (a form cannot be), and an object.
    let form = s.post(
        path,
        &[auth, ("Content-Type", "application/x-www-form-urlencoded")],
        Some("a=b"),
    );
    assert_eq!(form.status, 415);
    let text = s.post(path, &[auth, ("Content-Type", "text/plain")], Some("{}"));
    assert_eq!(text.status, 415);
    let array = s.post(
        path,
        &[auth, ("Content-Type", "application/json")],
        Some("[1]"),
    );
    assert_eq!(
        (array.status, array.error_code().as_str()),
        (400, "bad_request")
    );

    // DNS rebinding: a foreign Host is refused on every route.
    for p in ["/", "/api/v1/services", "/metrics"] {
        let r = request(s.port, "GET", p, &[("Host", "rebound.example:80")], None);
        assert_eq!(r.status, 403, "{p}");
    }
    let r = request(
        s.port,
        "GET",
        "/api/v1/services",
        &[("Host", &format!("localhost:{}", s.port))],
        None,
    );
    assert_eq!(r.status, 200);
}

#[test]
fn a_non_loopback_address_is_refused_at_config_load() {
    let http = free_port();
    let setup = Setup::new(&json!({
        "ai_dawg": {"services": {"a": demo("a", free_port(), &[])}},
        "http": {"listen": format!("0.0.0.0:{http}")},
    }));
    let check = setup.cli(&["check"]).output().unwrap();
    assert_eq!(check.status.code(), Some(1));
    let err = String::from_utf8_lossy(&check.stderr);
    assert!(
        err.contains("http.listen") && err.contains("not a loopback address"),
        "{err}"
    );

    let start = setup.cli(&["start"]).output().unwrap();
    assert_eq!(start.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&start.stderr).contains("http.listen"));
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", http)).is_err(),
        "nothing listens"
    );
    assert!(
        !setup.data().join("manager.pid").exists(),
        "nothing started"
    );
}

fn scrape(s: &Supervisor) -> Vec<Sample> {
    let r = s.get("/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    check_exposition(&r.body).unwrap_or_else(|e| panic!("{e}\n{}", r.body))
}

#[test]
fn metrics_parse_and_follow_a_kill() {
    let s = two_services();
    let pid = s.running("a");
    s.running("b");
    wait_until("a passing check counted", TIMEOUT, || {
        value(
            &scrape(&s),
            "ai_dawg_service_health_checks_total",
            &[("service", "a"), ("result", "ok")],
        )
        .unwrap_or(0.0)
            >= 1.0
    });
    let before = scrape(&s);
    let a = [("service", "a")];
    assert_eq!(value(&before, "ai_dawg_service_up", &a), Some(1.0));
    assert_eq!(
        value(
            &before,
            "ai_dawg_service_status",
            &[("service", "a"), ("status", "running")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &before,
            "ai_dawg_service_status",
            &[("service", "a"), ("status", "escalated")]
        ),
        Some(0.0)
    );
    assert_eq!(
        value(&before, "ai_dawg_service_restarts_total", &a),
        Some(0.0)
    );
    assert_eq!(value(&before, "ai_dawg_service_exits_total", &a), Some(0.0));
    assert_eq!(
        value(&before, "ai_dawg_service_escalations_total", &a),
        Some(0.0)
    );
    assert_eq!(
        value(&before, "ai_dawg_service_consecutive_failures", &a),
        Some(0.0)
    );
    assert!(
        value(
            &before,
            "ai_dawg_service_health_check_duration_seconds_count",
            &a
        )
        .unwrap()
            >= 1.0
    );
    assert!(value(&before, "ai_dawg_service_process_start_time_seconds", &a).unwrap() > 1.6e9);
    assert!(value(&before, "process_resident_memory_bytes", &[]).unwrap() > 1e6);
    assert!(value(&before, "process_open_fds", &[]).unwrap() >= 3.0);
    assert!(value(&before, "process_start_time_seconds", &[]).unwrap() > 1.6e9);
    assert_eq!(value(&before, "ai_dawg_kill_switch", &[]), Some(0.0));

    kill9(pid);
    wait_until("the kill counted and a restarted", TIMEOUT, || {
        let m = scrape(&s);
        value(&m, "ai_dawg_service_exits_total", &a) == Some(1.0)
            && value(&m, "ai_dawg_service_restarts_total", &a) == Some(1.0)
            && value(&m, "ai_dawg_service_up", &a) == Some(1.0)
    });
    let after = scrape(&s);
    assert!(
        value(&after, "ai_dawg_service_process_start_time_seconds", &a)
            >= value(&before, "ai_dawg_service_process_start_time_seconds", &a)
    );
    assert_eq!(
        value(&after, "ai_dawg_service_exits_total", &[("service", "b")]),
        Some(0.0),
        "b untouched"
    );

    // OpenMetrics when asked for.
    let om = request(
        s.port,
        "GET",
        "/metrics",
        &[("Accept", "application/openmetrics-text; version=1.0.0")],
        None,
    );
    assert!(om.headers["content-type"].starts_with("application/openmetrics-text"));
    assert!(om.body.ends_with("# EOF\n"));
}

#[test]
fn sse_delivers_a_status_change_within_a_second() {
    let s = two_services();
    let pid = s.running("a");
    let mut events = EventStream::open(s.port, "/api/v1/events?service=a");
    assert_eq!(events.status, 200);
    // Unknown names are refused before the stream opens.
    assert_eq!(s.get("/api/v1/events?service=zz").status, 404);
    // Once the head is out the subscription is in place (no event is missed).
    let killed = Instant::now();
    kill9(pid);
    let mut seen = vec![];
    let latency = loop {
        let e = events
            .next(TIMEOUT)
            .unwrap_or_else(|| panic!("no status event; saw {seen:?}"));
        assert_eq!(e.data["service"], "a", "filtered to a");
        if e.event == "status" && e.data["from"] == "running" {
            break killed.elapsed();
        }
        seen.push(e);
    };
    assert!(latency < Duration::from_secs(1), "took {latency:?}");
    // And back: the restart shows up too.
    let mut back = false;
    while let Some(e) = events.next(TIMEOUT) {
        if e.event == "status" && e.data["to"] == "running" {
            back = true;
            break;
        }
    }
    assert!(back, "a back to running on the stream");
}

#[test]
fn webhook_gets_escalation_and_resolution_with_a_retry() {
    // The first POST fails: the escalation is sent again after the backoff.
    let hook = Receiver::start(vec![500]);
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("fail");
    let mut service = demo("f", free_port(), &["--fail-flag", path_str(&flag)]);
    // Failing while starting counts once this passes.
    service["start_timeout"] = json!("1s");
    let s = supervisor(
        json!({"f": service}),
        json!({
            "monitoring": {
                "health_check_interval_seconds": 0.1,
                "health_check_timeout_seconds": 0.5,
                "max_restart_attempts": 1,
                "restart_cooldown_seconds": 0.1,
                "stable_after_seconds": 60,
            },
            "safety": {"max_consecutive_failures_before_escalation": 2},
            "notifications": {
                "webhook_url": format!("http://127.0.0.1:{}/hook", hook.port),
                "retries": 3,
                "retry_backoff_seconds": 0.1,
                "timeout_seconds": 2,
            },
        }),
    );
    s.running("f");
    std::fs::write(&flag, "").unwrap();
    wait_until("f escalated", TIMEOUT, || s.status_of("f") == "escalated");
    wait_until("the escalation delivered after a retry", TIMEOUT, || {
        hook.received().len() >= 2
    });
    let got = hook.received();
    assert_eq!(got[0].0, 500);
    assert_eq!(got[1].0, 200);
    for (_, body) in &got[..2] {
        assert_eq!(body["alert"], "escalation");
        assert_eq!(body["service"], "f");
        assert!(
            body["reason"]
                .as_str()
                .unwrap()
                .contains("consecutive failures")
                || body["reason"].as_str().unwrap().contains("restart budget")
        );
        assert!(body["text"].as_str().unwrap().contains("ESCALATED"));
    }
    let open = s.get("/api/v1/escalations?open=true").json();
    assert_eq!(open.as_array().unwrap().len(), 1, "{open}");
    assert_eq!(open[0]["service"], "f");
    assert_eq!(open[0]["open"], true);

    // A human fixes it: the resolution goes out.
    std::fs::remove_file(&flag).unwrap();
    assert_eq!(s.post("/api/v1/services/f/recover", &[], None).status, 200);
    s.running("f");
    wait_until("the resolution delivered", TIMEOUT, || {
        hook.received().len() >= 3
    });
    let resolution = &hook.received()[2].1;
    assert_eq!(resolution["alert"], "resolution");
    assert_eq!(resolution["service"], "f");
    assert_eq!(resolution["reason"], "healthy again after a manual recover");
    assert!(resolution["escalated_at"].is_string());
    assert_eq!(s.get("/api/v1/escalations?open=true").json(), json!([]));

    // Every attempt is an audit line.
    wait_until("three notify lines", TIMEOUT, || {
        s.audit()
            .lines()
            .filter(|l| l.contains(" | notify | "))
            .count()
            >= 3
    });
    let audit = s.audit();
    let notify: Vec<&str> = audit
        .lines()
        .filter(|l| l.contains(" | notify | "))
        .collect();
    assert!(
        notify[0].contains("| FAILURE |") && notify[0].contains("HTTP 500; retrying in 100ms"),
        "{notify:?}"
    );
    assert!(
        notify[1].contains("| SUCCESS |") && notify[1].contains("escalation alert"),
        "{notify:?}"
    );
    assert!(
        notify[2].contains("| SUCCESS |") && notify[2].contains("resolution alert"),
        "{notify:?}"
    );
}

#[test]
fn an_escalation_from_before_a_supervisor_crash_still_gets_its_resolution() {
    let hook = Receiver::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("fail");
    let mut service = demo("g", free_port(), &["--fail-flag", path_str(&flag)]);
    service["start_timeout"] = json!("1s");
    let s = supervisor(
        json!({"g": service}),
        json!({
            "monitoring": {
                "health_check_interval_seconds": 0.1,
                "max_restart_attempts": 1,
                "restart_cooldown_seconds": 0.1,
            },
            "safety": {"max_consecutive_failures_before_escalation": 2},
            "notifications": {"webhook_url": format!("http://127.0.0.1:{}/", hook.port)},
        }),
    );
    s.running("g");
    std::fs::write(&flag, "").unwrap();
    wait_until("the escalation alert", TIMEOUT, || {
        !hook.received().is_empty()
    });
    let port = s.port;
    let setup = s.crash();
    let s = setup.start(port);
    wait_until("g still escalated after the crash", TIMEOUT, || {
        s.status_of("g") == "escalated"
    });
    std::fs::remove_file(&flag).unwrap();
    assert_eq!(s.post("/api/v1/services/g/recover", &[], None).status, 200);
    wait_until("the resolution alert", TIMEOUT, || {
        hook.received().len() >= 2
    });
    let resolution = &hook.received()[1].1;
    assert_eq!(resolution["alert"], "resolution");
    assert_eq!(resolution["service"], "g");
    assert_eq!(resolution["reason"], "healthy again after a manual recover");
}

#[test]
fn events_cli_prints_a_change() {
    let s = two_services();
    let pid = s.running("a");
    assert_eq!(
        s.setup
            .cli(&["events", "zz"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(4),
        "unknown service"
    );
    let fds = |s: &Supervisor| {
        let r = s.get("/metrics");
        value(&check_exposition(&r.body).unwrap(), "process_open_fds", &[]).unwrap()
    };
    let fds_before = fds(&s);
    // `-v`: passing checks too, so the first line shows the stream is open.
    let mut human = s
        .setup
        .cli(&["events", "a", "-v"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut json_lines = s
        .setup
        .cli(&["events", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<(bool, String)>();
    for (is_json, out) in [
        (false, human.stdout.take().unwrap()),
        (true, json_lines.stdout.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send((is_json, line));
            }
        });
    }
    // Both streams are open once each has printed a line (a health check).
    let deadline = Instant::now() + TIMEOUT;
    let mut open = [false, false];
    while open != [true, true] {
        let (is_json, _) = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("a first event on each stream");
        open[usize::from(is_json)] = true;
    }
    kill9(pid);
    let (mut human_seen, mut json_seen) = (false, false);
    while !(human_seen && json_seen) {
        let (is_json, line) = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the change printed");
        if is_json {
            let v: Value = serde_json::from_str(&line).expect("one JSON event per line");
            json_seen |= v["service"] == "a" && v["event"] == "status" && v["from"] == "running";
        } else {
            assert!(line.contains(" a "), "filtered to a: {line}");
            human_seen |= line.ends_with(" a running -> unhealthy");
        }
    }
    let _ = human.kill();
    let _ = json_lines.kill();
    let _ = human.wait();
    let _ = json_lines.wait();
    // The supervisor closes the connections of clients that went away, and
    // goes on serving.
    wait_until("the event connections closed", TIMEOUT, || {
        fds(&s) <= fds_before
    });
    assert_eq!(s.get("/api/v1/services").status, 200);
    s.running("a");
}

#[test]
fn the_exposition_checker_is_strict() {
    let good = "# HELP x_total A counter.\n# TYPE x_total counter\nx_total{service=\"a\\\"b\"} 3\n\
                # TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.5\nh_count 2\n";
    let samples = check_exposition(good).unwrap();
    assert_eq!(samples[0].label("service"), Some("a\"b"));
    for bad in [
        "x 1",                                    // no final newline
        "x 1\n",                                  // no TYPE
        "# TYPE x gauge\ny 1\n",                  // outside its family
        "# TYPE x gauge\nx{a=b} 1\n",             // unquoted label
        "# TYPE x gauge\nx{a=\"1\",a=\"2\"} 1\n", // label twice
        "# TYPE x gauge\nx 1\nx 2\n",             // series twice
        "# TYPE x gauge\n# TYPE x gauge\n",       // TYPE twice
        "# TYPE x counter\nx -1\n",               // negative counter
        "# TYPE x gauge\nx one\n",                // bad value
        "# TYPE x gauge\n\nx 1\n",                // blank line
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\n", // no +Inf
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 1\n", // +Inf != count
    ] {
        assert!(check_exposition(bad).is_err(), "accepted {bad:?}");
    }
}

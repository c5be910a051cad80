//! The command line against a running supervisor (SPEC §5, §6): `status
//! --json`, `restart`, `stop`/`start NAME`, `recover`, `shutdown`, and the exit
//! codes without a supervisor, for an unknown service and for a second `start`.

mod common;

use common::*;
use serde_json::{json, Value};
use std::fs;
use std::time::Duration;

#[test]
fn status_json_has_the_spec_shape_and_counts() {
    let sup = Setup::new()
        .service(Service::new("producer").display("AI Producer"))
        .service(
            Service::new("idle")
                .display("Idle One")
                .set("autostart", json!(false)),
        )
        .start();
    let p = sup.wait_running("producer");
    sup.wait_status("idle", "stopped");
    sup.wait_record("uptime of at least 200 ms", "producer", |r| {
        r["uptime_ms"].as_u64().unwrap_or(0) >= 200
    });

    let v = sup.status_json();
    let services = v["services"].as_array().expect("services array");
    assert_eq!(services.len(), 2);
    for r in services {
        for key in [
            "name",
            "display_name",
            "port",
            "status",
            "pid",
            "started_at",
            "uptime_ms",
            "restart_count",
            "consecutive_failures",
            "last_health_check",
            "last_error",
        ] {
            assert!(r.get(key).is_some(), "no {key} in {r}");
        }
    }
    let producer = &services[0];
    assert_eq!(producer["name"], "producer");
    assert_eq!(producer["display_name"], "AI Producer");
    assert_eq!(producer["port"], sup.port("producer"));
    assert_eq!(producer["status"], "running");
    assert_eq!(producer["pid"], p.pid);
    time_of(&producer["started_at"]);
    time_of(&producer["last_health_check"]);
    assert!(producer["uptime_ms"].as_u64().unwrap() >= 200, "{producer}");
    assert_eq!(producer["restart_count"], 0);
    assert_eq!(producer["consecutive_failures"], 0);
    assert!(producer["last_error"].is_null());
    let idle = &services[1];
    assert_eq!(idle["name"], "idle");
    assert_eq!(idle["display_name"], "Idle One");
    assert_eq!(idle["status"], "stopped");
    assert!(idle["pid"].is_null() && idle["started_at"].is_null());
    assert_eq!(idle["uptime_ms"], 0);

    assert_eq!(v["kill_switch"], json!({"on": false, "source": "config"}));
    let summary = &v["summary"];
    for (key, want) in [
        ("total", 2),
        ("running", 1),
        ("stopped", 1),
        ("unhealthy", 0),
        ("unknown", 0),
    ] {
        assert_eq!(summary[key], want, "summary.{key} in {summary}");
    }
    // The counts agree with the list.
    for status in ["running", "stopped", "unhealthy", "unknown"] {
        let n = services.iter().filter(|r| r["status"] == status).count();
        assert_eq!(summary[status], n, "summary.{status}");
    }
}

#[test]
fn restart_gives_a_new_pid_and_counts_no_failure() {
    let sup = Setup::new().service(Service::new("producer")).start();
    let first = sup.wait_running("producer");

    let out = sup.cli(&["restart", "producer"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    let second = sup.wait_running("producer");
    assert_ne!(second, first);
    assert!(
        said.contains(&second.pid.to_string()),
        "restart said: {said}"
    );
    sup.wait_until("the old instance to be gone", || !first.alive());

    let r = sup.record("producer");
    assert_eq!(r["consecutive_failures"], 0, "{r}");
    assert_eq!(r["restart_attempts"], 0, "{r}");
    assert_eq!(r["restart_count"], 1, "{r}");
    assert!(r["last_error"].is_null(), "a restart is no failure: {r}");
    assert!(sup.audited("producer", "restart", "SUCCESS"));
    assert!(sup.audit("producer", "health_check").is_empty());
    assert!(sup.audit("producer", "escalate").is_empty());
}

#[test]
fn stop_then_start_by_name() {
    let sup = Setup::new().service(Service::new("producer")).start();
    let port = sup.port("producer");
    let first = sup.wait_running("producer");

    let out = sup.cli(&["stop", "producer"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!first.alive(), "stop answered before the process was gone");
    let r = sup.record("producer");
    assert_eq!(r["status"], "stopped");
    assert!(r["pid"].is_null());
    assert!(!accepts(port));
    // An automatic restart would be immediate (first of an incident): 500 ms,
    // five health intervals, without one shows the stop holds.
    sup.holds_for("stays stopped", Duration::from_millis(500), || {
        let r = sup.record("producer");
        r["status"] == "stopped" && r["pid"].is_null()
    });

    let out = sup.cli(&["start", "producer"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let second = sup.wait_running("producer");
    assert_ne!(second, first);
    assert!(accepts(port));
    let r = sup.record("producer");
    assert_eq!(r["consecutive_failures"], 0);
    assert!(sup.audited("producer", "stop", "SUCCESS"));
}

#[test]
fn stop_during_a_backoff_cancels_the_scheduled_restart() {
    // A cooldown long enough that the second crash (200 ms after a restart)
    // falls inside it even on a loaded machine.
    let sup = Setup::new()
        .monitoring("restart_cooldown", json!("3s"))
        .service(Service::new("crashy").args(["--crash-after-ms", "200"]))
        .start();
    let backoff = sup.wait_status("crashy", "backoff");
    let due = time_of(&backoff["next_restart_at"]);
    let out = sup.cli(&["stop", "crashy"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let r = sup.record("crashy");
    assert_eq!(r["status"], "stopped", "{r}");
    assert!(r["next_restart_at"].is_null(), "{r}");
    // The cancelled restart was due at `next_restart_at`: watching until
    // 300 ms past it shows it will not come.
    let window = due
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default()
        + Duration::from_millis(300);
    sup.holds_for("stays stopped", window, || {
        let r = sup.record("crashy");
        r["status"] == "stopped" && r["pid"].is_null()
    });
    assert!(demo_instances_on(sup.port("crashy")).is_empty());
}

#[test]
fn recover_lifts_an_escalation_with_its_counters_reset() {
    let (sup, flag) = flaky_service(10, 2);
    // 503 → immediate restart (1), the new instance misses its start_timeout (2).
    fs::write(&flag, "").unwrap();
    let r = sup.wait_status("flaky", "escalated");
    assert_eq!(r["restart_attempts"], 1, "{r}");

    // Passing checks alone do not lift an escalation.
    fs::remove_file(&flag).unwrap();
    let r = sup.wait_record("a passing check", "flaky", |r| {
        r["consecutive_failures"] == 0
    });
    assert_eq!(r["status"], "escalated", "{r}");
    assert_eq!(r["restart_attempts"], 1, "{r}");
    let before = sup.proc_of("flaky").expect("the escalated instance");

    let out = sup.cli(&["recover", "flaky"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let after = sup.wait_running("flaky");
    assert_ne!(after, before, "recover restarts the service");
    let r = sup.record("flaky");
    assert_eq!(r["restart_attempts"], 0, "{r}");
    assert_eq!(r["consecutive_failures"], 0, "{r}");
    assert!(sup.audited("flaky", "recover", "SUCCESS"));
    assert_eq!(sup.escalation_count(), 1);
}

#[test]
fn start_lifts_the_escalation_of_a_live_service() {
    let (sup, flag) = flaky_service(10, 2);
    fs::write(&flag, "").unwrap();
    sup.wait_status("flaky", "escalated");
    fs::remove_file(&flag).unwrap();
    sup.wait_record("a passing check", "flaky", |r| {
        r["consecutive_failures"] == 0
    });
    let live = sup.proc_of("flaky").expect("the escalated instance");

    // README: "An escalation is lifted only by a human (recover, restart,
    // start, stop)". The process is up and healthy, so `start` keeps it.
    let out = sup.cli(&["start", "flaky"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let r = sup.wait_record("the escalation to be lifted", "flaky", |r| {
        r["status"] != "escalated"
    });
    assert_eq!(sup.wait_running("flaky"), live, "{r}");
    assert!(live.alive());
}

#[test]
fn shutdown_stops_every_service_and_the_supervisor_exits_0() {
    let setup = Setup::new();
    let pid_file = setup.path("grandchild.pid");
    let mut sup = setup
        .service(Service::new("producer"))
        .service(
            Service::new("vocal_coach")
                .depends_on(&["producer"])
                .with_grandchild(&pid_file),
        )
        .start();
    let procs = [
        sup.wait_running("producer"),
        sup.wait_running("vocal_coach"),
        sup.read_pid_file(&pid_file),
    ];

    let out = sup.cli(&["shutdown"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let status = sup.wait_exit();
    assert_eq!(status.code(), Some(0), "supervisor exit: {status}");
    for p in procs {
        assert!(!p.alive(), "{p:?} outlived the shutdown");
    }
    assert!(demo_instances_on(sup.port("producer")).is_empty());
    assert!(demo_instances_on(sup.port("vocal_coach")).is_empty());
    assert!(!sup.socket().exists(), "control socket left behind");
    // Dependents first.
    let coach = sup.audit("vocal_coach", "stop");
    let producer = sup.audit("producer", "stop");
    assert!(coach[0].time <= producer[0].time, "{:?}", sup.audit_lines());
    assert!(sup.audited("manager", "shutdown", "SUCCESS"));
}

#[test]
fn without_a_supervisor_status_is_stale_and_commands_exit_3() {
    let mut sup = Setup::new()
        .service(Service::new("producer").display("AI Producer"))
        .start();
    sup.wait_running("producer");
    assert!(sup.cli(&["shutdown"]).status.success());
    assert!(sup.wait_exit().success());

    let out = sup.cli(&["status"]);
    assert_eq!(out.status.code(), Some(3));
    let said = text(&out.stdout);
    assert!(said.contains("STALE"), "{said}");
    assert!(
        said.contains(&format!("AI Producer (port {})", sup.port("producer"))),
        "{said}"
    );

    let out = sup.cli(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(3));
    let v: Value = serde_json::from_slice(&out.stdout).expect("stale status JSON");
    assert_eq!(v["stale"], true);
    assert_eq!(v["services"][0]["name"], "producer");
    assert_eq!(v["services"][0]["status"], "stopped");

    for args in [
        &["restart", "producer"][..],
        &["stop", "producer"],
        &["shutdown"],
    ] {
        let out = sup.cli(args);
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        assert!(
            text(&out.stderr).contains("no supervisor"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn an_unknown_service_exits_4() {
    let sup = Setup::new().service(Service::new("producer")).start();
    let p = sup.wait_running("producer");
    for args in [
        &["restart", "nope"][..],
        &["stop", "nope"],
        &["start", "nope"],
        &["recover", "nope"],
        &["status", "nope"],
        &["stop", "producer", "nope"],
    ] {
        let out = sup.cli(args);
        assert_eq!(
            out.status.code(),
            Some(4),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(text(&out.stderr).contains("nope"), "{args:?}");
    }
    assert!(p.alive(), "a refused command touched the known service");
    assert_eq!(sup.proc_of("producer"), Some(p));
}

#[test]
fn a_second_start_on_the_same_data_dir_refuses() {
    let sup = Setup::new().service(Service::new("producer")).start();
    let p = sup.wait_running("producer");

    let out = sup.cli(&["start"]);
    assert_ne!(out.status.code(), Some(0));
    let said = text(&out.stderr);
    assert!(said.contains("another supervisor"), "{said}");
    assert!(said.contains(&sup.pid().to_string()), "{said}");
    assert!(p.alive());
    assert_eq!(sup.proc_of("producer"), Some(p));
    assert_eq!(demo_instances_on(sup.port("producer")), vec![p]);
}

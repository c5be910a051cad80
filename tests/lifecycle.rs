//! Starting, ordering, stopping and restarting the supervisor itself: the
//! banner, dependency order, `enabled: false`, the kill switch, stop escalating
//! to SIGKILL, the file formats of SPEC §6, and a supervisor killed with SIGKILL.

mod common;

use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

#[test]
fn services_start_and_the_banner_is_printed() {
    let sup = Setup::new()
        .service(Service::new("producer").display("AI Producer"))
        .service(Service::new("vocal_coach").display("Vocal Coach"))
        .start();
    let producer = sup.wait_running("producer");
    let coach = sup.wait_running("vocal_coach");
    assert!(producer.alive() && coach.alive());
    assert!(accepts(sup.port("producer")) && accepts(sup.port("vocal_coach")));

    let out = sup.stdout();
    let banner = [
        "🚀 ========== AI DAWG Autonomous Manager Starting ==========".to_string(),
        format!("Config: {}", sup.root.display()),
        "Services: 2".to_string(),
        "Health Check Interval: 100ms".to_string(),
        "Max Restart Attempts: 3".to_string(),
        "===========================================================".to_string(),
    ];
    let lines: Vec<&str> = out.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == banner[0])
        .unwrap_or_else(|| panic!("no banner in stdout:\n{out}"));
    for (i, want) in banner.iter().enumerate() {
        assert_eq!(
            lines.get(at + i).copied(),
            Some(want.as_str()),
            "stdout:\n{out}"
        );
    }
    for (display, name, p) in [
        ("AI Producer", "producer", producer),
        ("Vocal Coach", "vocal_coach", coach),
    ] {
        let starting = format!("🚀 Starting {display} on port {}...", sup.port(name));
        let started = format!("✅ {display} started successfully (PID: {})", p.pid);
        assert!(out.contains(&starting), "no {starting:?} in stdout:\n{out}");
        assert!(out.contains(&started), "no {started:?} in stdout:\n{out}");
    }

    // The human status keeps the seed's summary.
    let status = sup.cli(&["status"]);
    assert!(status.status.success());
    let status = text(&status.stdout);
    for want in [
        "📊 ==================== Status Summary ====================",
        "Total Services: 2",
        "✅ Running: 2",
        "🛑 Stopped: 0",
        &format!("✅ AI Producer (port {}): RUNNING", sup.port("producer")),
        &format!("✅ Vocal Coach (port {}): RUNNING", sup.port("vocal_coach")),
    ] {
        assert!(status.contains(want), "no {want:?} in status:\n{status}");
    }
}

#[test]
fn a_dependent_starts_only_once_its_dependency_is_running() {
    // The producer binds its port 700 ms after it is spawned: the coach must wait.
    let delay = Duration::from_millis(700);
    let sup = Setup::new()
        .service(
            Service::new("producer")
                .display("AI Producer")
                .args(["--start-delay-ms", &delay.as_millis().to_string()]),
        )
        .service(
            Service::new("vocal_coach")
                .display("Vocal Coach")
                .depends_on(&["producer"]),
        )
        .start();
    sup.wait_running("producer");
    sup.wait_running("vocal_coach");
    let producer = sup.record("producer");
    let coach = sup.record("vocal_coach");
    // Its checks failed for 700 ms while it was starting: not counted.
    assert_eq!(producer["consecutive_failures"], 0, "{producer}");
    assert_eq!(producer["restart_count"], 0, "{producer}");

    // The dependency's healthy line is written before the dependent is spawned.
    let healthy = sup.audit("producer", "start");
    let healthy = healthy
        .iter()
        .find(|l| l.outcome == "SUCCESS")
        .unwrap_or_else(|| panic!("no producer start SUCCESS in {:?}", sup.audit_lines()));
    let coach_started = time_of(&coach["started_at"]);
    assert!(
        coach_started >= healthy.time,
        "vocal_coach started at {} before producer was healthy at {}",
        coach["started_at"],
        healthy.raw
    );
    let gap = coach_started
        .duration_since(time_of(&producer["started_at"]))
        .unwrap_or_default();
    assert!(
        gap >= delay,
        "vocal_coach spawned {gap:?} after producer, less than its {delay:?} start delay"
    );
    // And the stdout lines come in that order.
    let out = sup.stdout();
    let ready = out
        .find("✅ AI Producer started successfully")
        .expect("producer started line");
    let coach_line = out
        .find("🚀 Starting Vocal Coach")
        .expect("coach starting line");
    assert!(ready < coach_line, "stdout order wrong:\n{out}");
}

#[test]
fn disabled_config_starts_nothing_and_exits_0() {
    let setup = Setup::new().enabled(false);
    let svc = Service::new("producer");
    let port = svc.port;
    let setup = setup.service(svc);
    let out = setup.run_start(&setup.config_text());
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("disabled"), "stdout: {stdout}");
    assert!(!accepts(port), "something listens on the service's port");
    assert!(demo_instances_on(port).is_empty());
    assert!(
        !setup.root().join("data").exists(),
        "a disabled manager created its data folder"
    );
}

#[test]
fn kill_switch_blocks_autostart_and_automatic_restart_but_not_manual_start() {
    let sup = Setup::new()
        .safety("emergency_kill_switch", json!(true))
        .service(Service::new("producer"))
        .start();
    sup.wait_status("producer", "stopped");
    sup.wait_until("the audit line `producer | start | SKIPPED`", || {
        sup.audited("producer", "start", "SKIPPED")
    });
    let status = sup.status_json();
    assert_eq!(
        status["kill_switch"],
        json!({"on": true, "source": "config"})
    );
    assert!(status["services"][0]["pid"].is_null());
    assert!(!accepts(sup.port("producer")));

    let out = sup.cli(&["start", "producer"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let first = sup.wait_running("producer");

    first.signal(libc::SIGKILL);
    sup.wait_until("the audit line `producer | restart | SKIPPED`", || {
        sup.audited("producer", "restart", "SKIPPED")
    });
    let r = sup.record("producer");
    assert_ne!(r["status"], "running");
    // The first restart of an incident is immediate: had the kill switch been
    // ignored, a new process would appear within milliseconds of the exit. The
    // SKIPPED line shows the decision was taken; 5 health intervals (500 ms)
    // more without a new pid rule out a late restart.
    sup.holds_for(
        "no new process under the kill switch",
        Duration::from_millis(500),
        || sup.pid_of("producer").is_none(),
    );
    assert!(demo_instances_on(sup.port("producer")).is_empty());
    assert_eq!(sup.record("producer")["restart_count"], 0);
    sup.assert_audit_format();
}

#[test]
fn stop_sigkills_a_service_ignoring_sigterm_and_its_grandchild() {
    let setup = Setup::new();
    let grandchild_file = setup.path("grandchild.pid");
    let sup = setup
        .service(
            Service::new("stubborn")
                .set("stop_timeout", json!("300ms"))
                .args(["--ignore-sigterm"])
                .with_grandchild(&grandchild_file),
        )
        .start();
    let service = sup.wait_running("stubborn");
    let grandchild = sup.read_pid_file(&grandchild_file);
    assert!(grandchild.alive());

    let t0 = Instant::now();
    let out = sup.cli(&["stop", "stubborn"]);
    let took = t0.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // `stop` answers once the group is down, which took the SIGKILL.
    assert!(
        took >= Duration::from_millis(300),
        "stop answered after {took:?}, before stop_timeout"
    );
    assert!(!service.alive(), "the service survived its stop");
    sup.wait_until("the grandchild to be gone", || !grandchild.alive());
    let r = sup.record("stubborn");
    assert_eq!(r["status"], "stopped");
    assert!(r["pid"].is_null());
    let stop = sup.audit("stubborn", "stop");
    let stop = stop
        .iter()
        .find(|l| l.detail.starts_with(&format!("pid {}", service.pid)))
        .unwrap_or_else(|| panic!("no stop line for the process: {stop:?}"));
    assert!(
        stop.detail.contains("SIGKILL") && stop.detail.contains("signal 9"),
        "stop line: {}",
        stop.raw
    );
    assert!(
        stop.duration >= Duration::from_millis(300),
        "stop line: {}",
        stop.raw
    );
}

#[test]
fn audit_and_state_file_have_the_spec_shape_and_restart_count_survives() {
    let setup = Setup::new();
    let mut sup = setup
        .service(Service::new("producer"))
        .service(Service::new("idle").set("autostart", json!(false)))
        .start();
    let first = sup.wait_running("producer");
    sup.wait_status("idle", "stopped");
    // A crash and an automatic restart, then a manual restart: several kinds of lines.
    first.signal(libc::SIGKILL);
    sup.wait_until("an automatic restart", || {
        sup.proc_of("producer").is_some_and(|p| p != first)
    });
    sup.wait_running("producer");
    let out = sup.cli(&["restart", "producer"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    sup.wait_running("producer");
    assert_eq!(sup.record("producer")["restart_count"], 2);
    sup.assert_audit_format();

    // The state file: an array of [name, record] pairs with the seed's keys.
    sup.wait_until("the state file to show restart_count 2", || {
        sup.state_file()[0][1]["restart_count"] == 2
    });
    let state = sup.state_file();
    let pairs = state.as_array().expect("state file is an array");
    let names: Vec<&str> = pairs.iter().map(|p| p[0].as_str().unwrap()).collect();
    assert_eq!(names, ["producer", "idle"]);
    for pair in pairs {
        assert_eq!(pair.as_array().map(Vec::len), Some(2), "{pair}");
        let r = &pair[1];
        assert_eq!(r["name"], pair[0]);
        for key in [
            "name",
            "port",
            "status",
            "pid",
            "uptime",
            "restart_count",
            "consecutive_failures",
            "last_health_check",
        ] {
            assert!(r.get(key).is_some(), "state record lacks {key}: {r}");
        }
        assert!(r["port"].is_u64() && r["status"].is_string() && r["uptime"].is_u64());
    }
    assert_eq!(pairs[0][1]["port"], sup.port("producer"));
    assert!(pairs[0][1]["last_health_check"].is_string());
    assert_eq!(pairs[1][1]["status"], "stopped");
    assert!(pairs[1][1]["pid"].is_null());

    // restart_count survives a restart of the supervisor.
    let out = sup.cli(&["shutdown"]);
    assert!(out.status.success());
    assert!(sup.wait_exit().success());
    sup.restart_supervisor();
    let r = sup.record("producer");
    assert_eq!(r["restart_count"], 2, "{r}");
    sup.wait_running("producer");
    assert_eq!(sup.record("producer")["restart_count"], 2);
    let manager_starts = sup.audit("manager", "start").len();
    assert_eq!(manager_starts, 2, "the audit trail goes on across runs");
    sup.assert_audit_format();
}

#[test]
fn supervisor_killed_with_sigkill_and_started_again_leaves_one_instance_each() {
    // Port holders are not killed: the leftovers must be handled as ours,
    // not as foreign processes in the way.
    let mut sup = Setup::new()
        .safety("kill_port_conflicts", json!(false))
        .service(Service::new("producer"))
        .service(Service::new("vocal_coach").depends_on(&["producer"]))
        .start();
    let old = [
        sup.wait_running("producer"),
        sup.wait_running("vocal_coach"),
    ];
    sup.signal_supervisor(libc::SIGKILL);
    let status = sup.wait_exit();
    assert_eq!(signal_of(&status), Some(libc::SIGKILL));
    assert!(
        old.iter().all(Proc::alive),
        "the services should outlive a SIGKILLed supervisor"
    );
    // Its socket file is left behind, but nobody answers: exit 3, stale state.
    assert!(sup.socket().exists());
    let out = sup.cli(&["status"]);
    assert_eq!(out.status.code(), Some(3));
    let said = text(&out.stdout);
    assert!(said.contains("STALE") && said.contains("RUNNING"), "{said}");
    assert_eq!(sup.cli(&["restart", "producer"]).status.code(), Some(3));

    // SPEC §4.8: what is still ours (same pid and start time) is adopted,
    // not duplicated: exactly one instance each, the very same process.
    sup.restart_supervisor();
    for (name, old) in ["producer", "vocal_coach"].iter().zip(old) {
        let now = sup.wait_running(name);
        assert_eq!(
            now, old,
            "{name}: the live process should have been adopted"
        );
        let port = sup.port(name);
        assert_eq!(
            demo_instances_on(port),
            vec![old],
            "{name}: instances on port {port}"
        );
        let adopts = sup.audit(name, "adopt");
        assert!(
            adopts
                .iter()
                .any(|l| l.detail.contains(&format!("pid {}", old.pid))),
            "{name}: no adopt line for pid {}: {adopts:?}",
            old.pid
        );
    }
    // An adopted process is not our child, yet its exit is noticed at once
    // (pidfd) and it is replaced by exactly one new instance.
    let adopted = sup.proc_of("producer").expect("producer pid");
    adopted.signal(libc::SIGKILL);
    let new = sup.wait_record("a new producer", "producer", |r| {
        r["status"] == "running" && r["pid"].as_u64().is_some_and(|p| p as u32 != adopted.pid)
    });
    let port = sup.port("producer");
    let new_pid = new["pid"].as_u64().unwrap_or(0) as u32;
    sup.wait_until("one producer instance", || {
        demo_instances_on(port)
            .iter()
            .map(|p| p.pid)
            .collect::<Vec<_>>()
            == vec![new_pid]
    });
    assert_eq!(sup.escalation_count(), 0, "{}", sup.escalations());
}

#[test]
fn sigterm_stops_every_service_and_the_supervisor_exits_0() {
    let mut sup = Setup::new().service(Service::new("producer")).start();
    let p = sup.wait_running("producer");
    sup.signal_supervisor(libc::SIGTERM);
    let status = sup.wait_exit();
    assert_eq!(status.code(), Some(0), "supervisor exit: {status}");
    assert!(!p.alive(), "the service outlived the supervisor");
    assert!(sup.audited("manager", "shutdown", "SUCCESS"));
    let state = sup.state_file();
    assert_eq!(state[0][1]["status"], "stopped", "{state}");
    assert!(state[0][1]["pid"].is_null(), "{state}");
}

#[test]
fn a_stopped_service_stays_stopped_across_a_supervisor_crash() {
    let mut sup = Setup::new()
        .service(Service::new("producer"))
        .service(Service::new("idle"))
        .start();
    sup.wait_running("producer");
    let idle = sup.wait_running("idle");
    assert!(sup.cli(&["stop", "idle"]).status.success());
    assert!(!idle.alive());
    sup.signal_supervisor(libc::SIGKILL);
    sup.wait_exit();

    // SPEC §5: stopped services "stay stopped until started"; §4.8: after a
    // crash, state "continue[s] where [it was]".
    sup.restart_supervisor();
    sup.wait_running("producer");
    // Autostart is immediate (the producer is already running): 500 ms, five
    // health intervals, without a start of `idle` shows none is coming.
    sup.holds_for("idle stays stopped", Duration::from_millis(500), || {
        let r = sup.record("idle");
        r["status"] == "stopped" && r["pid"].is_null()
    });
}

#[test]
fn an_escalated_service_stays_escalated_across_a_supervisor_crash() {
    let mut sup = Setup::new()
        .monitoring("restart_cooldown", json!("100ms"))
        .monitoring("max_restart_attempts", json!(1))
        .service(Service::new("crashy").args(["--crash-after-ms", "100"]))
        .start();
    sup.wait_status("crashy", "escalated");
    sup.wait_until("the escalation block", || sup.escalation_count() == 1);
    // The crash comes once the escalation is persisted (a crash before that
    // would lose it: nothing can be durable before it is written).
    sup.wait_until("the state file to say escalated", || {
        sup.state_file()[0][1]["status"] == "escalated"
    });
    sup.signal_supervisor(libc::SIGKILL);
    sup.wait_exit();

    // SPEC §4.5: an incident escalates once and waits for a human; §4.8: state
    // continues where it was. An automatic start would come at once; 500 ms
    // is five health intervals and five cooldowns.
    sup.restart_supervisor();
    sup.holds_for(
        "still escalated, not started",
        Duration::from_millis(500),
        || {
            let r = sup.record("crashy");
            r["status"] == "escalated" && r["pid"].is_null()
        },
    );
    assert_eq!(sup.escalation_count(), 1, "{}", sup.escalations());
}

#[test]
fn leftovers_of_a_leader_that_died_while_the_supervisor_was_down_are_cleaned_up() {
    let (mut sup, leader, grandchild) = parent_with_grandchild();
    sup.signal_supervisor(libc::SIGKILL);
    sup.wait_exit();
    // The leader dies while nobody supervises it; its grandchild lives on in
    // the group the state file names.
    leader.signal(libc::SIGKILL);
    wait_until("the leader to die", TIMEOUT, || !leader.alive());
    assert!(grandchild.alive());

    // SPEC §4.6: no process of a service's group survives it; §4.8: one
    // instance per service after a supervisor crash.
    sup.restart_supervisor();
    let new = sup.wait_running("parent");
    assert_ne!(new, leader);
    sup.wait_until("the old instance's grandchild to be gone", || {
        !grandchild.alive()
    });
}

#[test]
fn a_recorded_pid_with_another_start_time_is_never_adopted_nor_signalled() {
    // A process that is not the service's, recorded as its pid with another
    // start time: what a recycled pid looks like after a crash.
    let setup = Setup::new().service(Service::new("producer"));
    let stranger = Foreign::spawn(free_port());
    let pid = stranger.proc_.pid;
    std::fs::create_dir_all(setup.path("data")).expect("data dir");
    let state = json!([["producer", {
        "name": "producer", "port": 1, "status": "running",
        "pid": pid, "process_start_time": 1, "uptime": 5,
        "restart_count": 4, "consecutive_failures": 0, "last_health_check": null
    }]]);
    std::fs::write(setup.path("data/service-state.json"), state.to_string()).expect("state");
    let sup = setup.start();
    let producer = sup.wait_running("producer");
    assert_ne!(
        producer.pid, pid,
        "the stranger must not be taken for the service"
    );
    assert!(stranger.proc_.alive(), "the stranger was signalled");
    assert!(sup.audit("producer", "adopt").is_empty());
    assert_eq!(
        sup.record("producer")["restart_count"],
        4,
        "restart_count carries over"
    );
}

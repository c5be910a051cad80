//! The control plane (SPEC §5, README "Commands"): `reload` (and SIGHUP), the
//! run-time kill switch, the control socket under garbage, silence and load,
//! `logs`, `audit [--verify]`, `escalations`, `check [--init-whitelist]`,
//! `status --explain` and `recover` of a port held by a foreign process.

mod common;

use ai_dawg_manager::protocol::{encode_line, ControlRequest, ControlResponse, ErrorCode};
use common::*;
use serde_json::{json, Value};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// `text` with the comma before the first `"port"` key removed: malformed
/// JSON. Returns the text and the `line L, column C` the parser names.
fn without_comma_before_port(text: &str) -> (String, String) {
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim_start().starts_with("\"port\":"))
        .expect("a port line");
    let mut bad: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    bad[at - 1] = bad[at - 1].trim_end_matches(',').to_string();
    let column = lines[at].find('"').expect("quote") + 1;
    (bad.join("\n"), format!("line {}, column {column}", at + 1))
}

fn names_in(status: &Value) -> Vec<String> {
    status["services"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str().map(str::to_string))
        .collect()
}

// ---- reload ---------------------------------------------------------------------------

#[test]
fn reload_adds_removes_and_changes_services_and_leaves_the_others_alone() {
    let keep = Service::new("keep");
    let changed = Service::new("changed");
    let removed = Service::new("removed");
    let added = Service::new("added");
    let sup = Setup::new()
        .service(keep.clone())
        .service(changed.clone())
        .service(removed.clone())
        .start();
    let keep_p = sup.wait_running("keep");
    let changed_p = sup.wait_running("changed");
    let removed_p = sup.wait_running("removed");

    let marker = "the definition after the reload";
    sup.write_config(&config_of(&[
        keep.clone(),
        changed.clone().args(["--print", marker]),
        added.clone(),
    ]));
    let out = sup.cli(&["reload"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    for want in [
        "added: added: starting",
        "removed: removed: stopped",
        "changed: changed: new definition applied",
    ] {
        assert!(said.contains(want), "no {want:?} in: {said}");
    }
    assert!(!said.contains("keep"), "keep did not change: {said}");

    // Added: started.
    let added_p = sup.wait_running("added");
    assert!(accepts(added.port));
    // Removed: its process is gone and it leaves `status`.
    sup.wait_until("the removed service to be gone", || {
        !removed_p.alive()
            && sup
                .query()
                .is_some_and(|s| !names_in(&s).contains(&"removed".into()))
    });
    assert!(demo_instances_on(removed.port).is_empty());
    // Changed: a new process, running the new definition.
    let r = sup.wait_record("a new process", "changed", |r| {
        r["status"] == "running" && r["pid"].is_u64() && r["pid"] != changed_p.pid
    });
    sup.wait_until("the old instance of changed to be gone", || {
        !changed_p.alive()
    });
    let log = sup.log_path("changed");
    sup.wait_until("the new definition's --print line in the log", || {
        fs::read_to_string(&log).is_ok_and(|t| t.contains(marker))
    });
    assert_eq!(
        demo_instances_on(changed.port)
            .iter()
            .map(|p| p.pid as u64)
            .collect::<Vec<_>>(),
        vec![r["pid"].as_u64().unwrap()]
    );
    // Unchanged: untouched.
    assert!(keep_p.alive());
    assert_eq!(sup.proc_of("keep"), Some(keep_p));
    assert_eq!(sup.record("keep")["restart_count"], 0);
    assert_eq!(
        names_in(&sup.status_json()),
        ["keep", "changed", "added"],
        "services after the reload"
    );
    assert_ne!(added_p, keep_p);
    assert!(sup.audited("manager", "reload", "SUCCESS"));
}

#[test]
fn reload_refuses_a_broken_config_and_changes_nothing() {
    let alpha = Service::new("alpha");
    let beta = Service::new("beta");
    let gamma = Service::new("gamma");
    let sup = Setup::new()
        .service(alpha.clone())
        .service(beta.clone())
        .start();
    let before = [sup.wait_running("alpha"), sup.wait_running("beta")];

    // Malformed JSON (it would also add gamma): named by line and column.
    let (malformed, at) =
        without_comma_before_port(&config_of(&[alpha.clone(), beta.clone(), gamma.clone()]));
    sup.write_config(&malformed);
    let out = sup.cli(&["reload"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let said = text(&out.stderr);
    assert!(said.contains("nothing changed"), "{said}");
    assert!(
        said.contains("malformed JSON") && said.contains(&at),
        "{at}: {said}"
    );

    // An unknown key (in a config that would also add gamma and drop alpha).
    sup.write_config(&config_of(&[
        beta.clone().set("restart_policy", json!("always")),
        gamma.clone(),
    ]));
    let out = sup.cli(&["reload"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let said = text(&out.stderr);
    assert!(
        said.contains("ai_dawg.services.beta.restart_policy"),
        "{said}"
    );

    assert_eq!(sup.audit("manager", "reload").len(), 2);
    assert!(sup
        .audit("manager", "reload")
        .iter()
        .all(|l| l.outcome == "FAILURE"));
    // A reload acts at once (its orders are sent before it answers): 300 ms,
    // three health intervals, with the same processes and services shows
    // nothing was set in motion.
    sup.holds_for(
        "same services, same processes",
        Duration::from_millis(300),
        || {
            let status = sup.query().expect("status");
            names_in(&status) == ["alpha", "beta"]
                && sup.proc_of("alpha") == Some(before[0])
                && sup.proc_of("beta") == Some(before[1])
        },
    );
    assert!(before.iter().all(Proc::alive));
    assert!(!accepts(gamma.port));
    assert!(demo_instances_on(gamma.port).is_empty());
}

#[test]
fn sighup_reloads_the_config() {
    let alpha = Service::new("alpha");
    let beta = Service::new("beta");
    let sup = Setup::new().service(alpha.clone()).start();
    let a = sup.wait_running("alpha");
    sup.write_config(&config_of(&[alpha, beta.clone()]));

    sup.signal_supervisor(libc::SIGHUP);
    sup.wait_until("beta to be added", || {
        sup.query()
            .is_some_and(|s| names_in(&s).contains(&"beta".into()))
    });
    sup.wait_running("beta");
    assert!(accepts(beta.port));
    sup.wait_until("the audit line `manager | reload | SUCCESS`", || {
        sup.audited("manager", "reload", "SUCCESS")
    });
    let line = &sup.audit("manager", "reload")[0];
    assert!(line.detail.contains("beta: added"), "{}", line.raw);
    assert_eq!(sup.proc_of("alpha"), Some(a), "alpha was touched");
}

// ---- kill switch --------------------------------------------------------------------

#[test]
fn kill_switch_on_stops_automatic_restarts_and_off_resumes_them() {
    let sup = Setup::new().service(Service::new("producer")).start();
    let first = sup.wait_running("producer");

    let out = sup.cli(&["kill-switch", "on"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("kill switch ON"));
    assert_eq!(
        sup.status_json()["kill_switch"],
        json!({"on": true, "source": "runtime"})
    );
    assert!(sup.audited("manager", "kill_switch", "SUCCESS"));
    assert!(first.alive(), "the kill switch does not stop services");

    first.signal(libc::SIGKILL);
    sup.wait_until("the audit line `producer | restart | SKIPPED`", || {
        sup.audited("producer", "restart", "SKIPPED")
    });
    // The first restart of an incident is immediate: without the switch a new
    // process would be there within milliseconds. 500 ms, five health
    // intervals, without one shows it is held.
    sup.holds_for(
        "no restart under the kill switch",
        Duration::from_millis(500),
        || sup.pid_of("producer").is_none(),
    );
    assert!(demo_instances_on(sup.port("producer")).is_empty());

    let out = sup.cli(&["kill-switch", "off"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let second = sup.wait_running("producer");
    assert_ne!(second, first);
    assert_eq!(
        sup.status_json()["kill_switch"],
        json!({"on": false, "source": "runtime"})
    );
    assert_eq!(sup.audit("manager", "kill_switch").len(), 2);
}

#[test]
fn the_run_time_kill_switch_survives_a_supervisor_restart_until_cleared() {
    let mut sup = Setup::new().service(Service::new("producer")).start();
    let first = sup.wait_running("producer");
    assert!(sup.cli(&["kill-switch", "on"]).status.success());
    assert!(sup.cli(&["shutdown"]).status.success());
    assert!(sup.wait_exit().success());
    assert!(!first.alive());

    sup.restart_supervisor();
    sup.wait_until("the audit line `producer | start | SKIPPED`", || {
        sup.audited("producer", "start", "SKIPPED")
    });
    assert_eq!(
        sup.status_json()["kill_switch"],
        json!({"on": true, "source": "runtime"})
    );
    // Autostart comes at once after the supervisor answers: 500 ms, five
    // health intervals, without a process shows it is skipped for good.
    sup.holds_for("autostart skipped", Duration::from_millis(500), || {
        let r = sup.record("producer");
        r["status"] == "stopped" && r["pid"].is_null()
    });

    // `clear`: back to the config's value (off), and the held service starts.
    let out = sup.cli(&["kill-switch", "clear"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        sup.status_json()["kill_switch"],
        json!({"on": false, "source": "config"})
    );
    sup.wait_running("producer");
    assert!(!sup.data().join("kill-switch.json").exists());
}

// ---- the control socket -------------------------------------------------------------

/// Send `bytes` on a fresh connection, close our sending side, and parse the
/// one answer line.
fn ask_raw(sup: &Supervisor, bytes: &[u8]) -> ControlResponse {
    let mut stream = UnixStream::connect(sup.socket()).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.write_all(bytes).expect("send");
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).expect("answer");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("answer {line:?}: {e}"))
}

fn assert_bad_request(answer: &ControlResponse, what: &str) -> String {
    match answer {
        ControlResponse::Error(e) if e.code == ErrorCode::BadRequest => e.message.clone(),
        other => panic!("{what}: not a bad_request error: {other:?}"),
    }
}

#[test]
fn bad_requests_get_an_error_and_the_socket_keeps_serving() {
    let sup = Setup::new().service(Service::new("producer")).start();
    let p = sup.wait_running("producer");

    let meta = fs::metadata(sup.socket()).expect("socket");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "socket mode");

    for bad in [
        &b"{"[..],
        b"{\n",
        b"{\"command\":\"format_disk\"}\n",
        b"{\"command\":\"stop\",\"services\":[\"producer\"],\"force\":true}\n",
        b"\xff\xfe\x00\n",
        b"null\n",
    ] {
        let what = String::from_utf8_lossy(bad).into_owned();
        let message = assert_bad_request(&ask_raw(&sup, bad), &what);
        assert!(message.contains("bad request"), "{what}: {message}");
        assert!(sup.query().is_some(), "status after {what}");
    }
    let message = assert_bad_request(
        &ask_raw(&sup, b"{\"command\":\"stop\",\"services\":[]}\n"),
        "stop nothing",
    );
    assert!(message.contains("at least one"), "{message}");

    // A 10 MB line: refused after 64 KiB, while we are still sending.
    let mut stream = UnixStream::connect(sup.socket()).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut sender = stream.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let mut line = br#"{"command":"status","services":[""#.to_vec();
        line.resize(10 * 1024 * 1024, b'a');
        line.extend_from_slice(b"\"]}\n");
        // How much goes out before the server has answered and closed (EPIPE).
        let mut sent = 0;
        while sent < line.len() {
            match sender.write(&line[sent..(sent + 16 * 1024).min(line.len())]) {
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        sent
    });
    let mut line = String::new();
    BufReader::new(&mut stream)
        .read_line(&mut line)
        .expect("an answer to the oversized line");
    let answer: ControlResponse = serde_json::from_str(&line).expect("answer JSON");
    let message = assert_bad_request(&answer, "10 MB line");
    assert!(message.contains("longer than 65536 bytes"), "{message}");
    // What the server read (64 KiB) plus what the socket buffers hold (a
    // few hundred KiB): far from the whole line.
    let sent = writer.join().unwrap();
    assert!(
        sent < 1024 * 1024,
        "{sent} bytes accepted: the server read on instead of closing"
    );

    assert!(sup.query().is_some());
    assert_eq!(sup.proc_of("producer"), Some(p), "a bad request touched it");
    assert!(sup.audit("producer", "stop").is_empty());
}

#[test]
fn a_silent_client_holds_up_nobody_and_is_cut_off_after_the_read_timeout() {
    let sup = Setup::new().service(Service::new("producer")).start();
    sup.wait_running("producer");

    let t0 = Instant::now();
    let silent = UnixStream::connect(sup.socket()).expect("connect");
    for _ in 0..20 {
        assert!(sup.query().is_some(), "status while a client is silent");
    }
    let out = sup.cli(&["status", "producer"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "served only after {:?}: not while the silent client was waiting",
        t0.elapsed()
    );

    silent.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut answer = String::new();
    BufReader::new(&silent)
        .read_line(&mut answer)
        .expect("the silent client's connection ends");
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(4500),
        "cut off after {waited:?}, before the 5 s read timeout"
    );
    // README: "garbage, silence or oversized requests get an error".
    let answer: ControlResponse = serde_json::from_str(&answer)
        .unwrap_or_else(|e| panic!("no error answer for silence ({e}): {answer:?}"));
    let message = assert_bad_request(&answer, "silence");
    assert!(
        message.contains("no request received within 5s"),
        "{message}"
    );
    assert!(sup.query().is_some());
}

#[test]
fn two_hundred_concurrent_status_requests_all_get_an_answer() {
    let sup = Setup::new()
        .service(Service::new("producer"))
        .service(Service::new("vocal_coach"))
        .start();
    sup.wait_running("producer");
    sup.wait_running("vocal_coach");

    let socket = sup.socket();
    let go = std::sync::Barrier::new(200);
    let answers: Vec<Result<Vec<String>, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..200)
            .map(|_| {
                let (socket, go) = (&socket, &go);
                s.spawn(move || -> Result<Vec<String>, String> {
                    go.wait();
                    let mut stream = UnixStream::connect(socket).map_err(|e| e.to_string())?;
                    stream
                        .set_read_timeout(Some(TIMEOUT))
                        .map_err(|e| e.to_string())?;
                    let request = ControlRequest::Status { services: vec![] };
                    stream
                        .write_all(&encode_line(&request))
                        .map_err(|e| e.to_string())?;
                    let mut line = String::new();
                    BufReader::new(stream)
                        .read_line(&mut line)
                        .map_err(|e| e.to_string())?;
                    match serde_json::from_str(&line).map_err(|e| format!("{e}: {line:?}"))? {
                        ControlResponse::Status(report) => {
                            Ok(report.services.into_iter().map(|r| r.name).collect())
                        }
                        other => Err(format!("{other:?}")),
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("thread panicked".into())))
            .collect()
    });
    let failed: Vec<&String> = answers.iter().filter_map(|a| a.as_ref().err()).collect();
    assert!(failed.is_empty(), "{} failed: {:?}", failed.len(), failed);
    for a in &answers {
        assert_eq!(a.as_ref().unwrap(), &["producer", "vocal_coach"]);
    }
    assert!(sup.query().is_some());
}

// ---- logs ---------------------------------------------------------------------------

/// The tick numbers of the `NAME tick N` lines of `text`.
fn ticks(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| l.split_once(" tick ").and_then(|(_, n)| n.parse().ok()))
        .collect()
}

/// A `logs -f` running in the background, killed when dropped; its output
/// lines arrive on `lines`.
struct Follower {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Follower {
    fn spawn(sup: &Supervisor, service: &str) -> Follower {
        let mut child = Command::new(BIN)
            .args(["logs", service, "-f", "--config"])
            .arg(&sup.config)
            .current_dir(&sup.root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn logs -f");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Follower { child, lines }
    }

    fn next_line(&self) -> String {
        self.lines
            .recv_timeout(TIMEOUT)
            .unwrap_or_else(|e| panic!("no line from logs -f within {TIMEOUT:?}: {e}"))
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn logs_prints_the_last_lines_follows_new_ones_and_knows_its_services() {
    let quiet = Service::new("quiet").args(["--print", "first", "--print", "second"]);
    let quiet = quiet.args(["--print", "third", "--print", "fourth"]);
    let sup = Setup::new()
        .service(quiet)
        .service(Service::new("ticker").args(["--print-every-ms", "20"]))
        .start();
    let q = sup.wait_running("quiet");
    sup.wait_running("ticker");
    let listening = format!(
        "demo quiet listening on 127.0.0.1:{} (pid {})",
        sup.port("quiet"),
        q.pid
    );
    let log = sup.log_path("quiet");
    sup.wait_until("the listening line in the log", || {
        fs::read_to_string(&log).is_ok_and(|t| t.contains(&listening))
    });

    let out = sup.cli(&["logs", "quiet", "-n", "3"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert_eq!(
        said.lines().collect::<Vec<_>>(),
        ["third", "fourth", listening.as_str()]
    );

    // -f: a line written after it started shows up.
    let ticker_log = sup.log_path("ticker");
    sup.wait_until("a first tick", || {
        fs::read_to_string(&ticker_log).is_ok_and(|t| !ticks(&t).is_empty())
    });
    let follower = Follower::spawn(&sup, "ticker");
    follower.next_line();
    // Everything in the file now was written before this point, so a tick
    // beyond its last was written while `-f` was running.
    let last = ticks(&fs::read_to_string(&ticker_log).unwrap())
        .into_iter()
        .max()
        .unwrap();
    let since = Instant::now();
    loop {
        let line = follower.next_line();
        if ticks(&line).first().is_some_and(|n| *n > last) {
            break;
        }
        assert!(
            since.elapsed() < TIMEOUT,
            "no tick after {last} from logs -f"
        );
    }
    drop(follower);

    let out = sup.cli(&["logs", "nope"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("nope"));
}

#[test]
fn logs_follow_goes_on_across_rotation() {
    // ~28-byte lines every 2 ms: the 20000-byte log rotates about every
    // 1.4 s, far apart next to the follower's 100 ms polls.
    let sup = Setup::new()
        .top("logs", json!({"max_bytes": 20000, "keep": 5}))
        .service(Service::new("follow-me-ticker").args(["--print-every-ms", "2"]))
        .start();
    sup.wait_running("follow-me-ticker");
    let log = sup.log_path("follow-me-ticker");
    let rotated = |n: u32| PathBuf::from(format!("{}.{n}", log.display()));
    sup.wait_until("a first tick", || {
        fs::read_to_string(&log).is_ok_and(|t| !ticks(&t).is_empty())
    });
    let follower = Follower::spawn(&sup, "follow-me-ticker");
    let before = (1..=5).filter(|n| rotated(*n).exists()).count() as u32;
    // Follow until the log has rotated twice since it started and a tick of
    // the newest file has been printed.
    let since = Instant::now();
    let mut seen = vec![];
    let mut mark = None;
    while mark.is_none_or(|m| seen.last().is_none_or(|l| *l <= m)) {
        assert!(
            since.elapsed() < TIMEOUT,
            "no second rotation followed within {TIMEOUT:?}"
        );
        seen.extend(ticks(&follower.next_line()));
        if mark.is_none() && rotated(before + 2).exists() {
            mark = fs::read_to_string(&log)
                .ok()
                .and_then(|t| ticks(&t).first().copied());
        }
    }
    drop(follower);
    assert!(seen.len() > 500, "{} ticks followed", seen.len());
    for pair in seen.windows(2) {
        assert_eq!(
            pair[1],
            pair[0] + 1,
            "logs -f: tick {} after {}",
            pair[1],
            pair[0]
        );
    }
}

// ---- audit --------------------------------------------------------------------------

#[test]
fn audit_filters_by_service_limits_and_parses_as_json() {
    let mut sup = Setup::new()
        .service(Service::new("producer"))
        .service(Service::new("other"))
        .start();
    sup.wait_running("producer");
    sup.wait_running("other");
    for _ in 0..2 {
        let out = sup.cli(&["restart", "producer"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    // After the shutdown the trail is final (and `audit` needs no supervisor).
    assert!(sup.cli(&["shutdown"]).status.success());
    assert!(sup.wait_exit().success());

    let all = sup.audit_lines();
    let of = |service: &str| -> Vec<String> {
        all.iter()
            .filter(|l| l.split(" | ").nth(1) == Some(service))
            .cloned()
            .collect()
    };
    let producer = of("producer");
    assert!(producer.len() >= 5, "{producer:?}");
    assert!(!of("other").is_empty() && !of("manager").is_empty());

    let out = sup.cli(&["audit", "--service", "producer", "-n", "3"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    let got: Vec<&str> = said.lines().collect();
    assert_eq!(got, producer[producer.len() - 3..]);

    let out = sup.cli(&["audit", "-n", "4"]);
    assert_eq!(
        text(&out.stdout).lines().collect::<Vec<_>>(),
        all[all.len() - 4..]
    );

    let out = sup.cli(&["audit", "--service", "producer", "-n", "3", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("audit --json");
    let parsed = v.as_array().expect("an array");
    assert_eq!(parsed.len(), 3, "{v}");
    for (entry, raw) in parsed.iter().zip(&producer[producer.len() - 3..]) {
        let line = AuditLine::parse(raw).expect("audit line");
        assert_eq!(entry["service"], "producer");
        assert_eq!(entry["action"], line.action.as_str());
        assert_eq!(entry["result"], line.outcome.as_str());
        assert_eq!(
            entry["duration_ms"].as_u64(),
            Some(line.duration.as_millis() as u64)
        );
        assert!(raw.starts_with(entry["time"].as_str().unwrap()));
        assert!(entry["hash"].is_string(), "{entry}");
    }
}

#[test]
fn audit_verify_passes_on_an_intact_trail_and_names_an_altered_or_removed_line() {
    let mut sup = Setup::new().service(Service::new("producer")).start();
    sup.wait_running("producer");
    assert!(sup.cli(&["restart", "producer"]).status.success());
    assert!(sup.cli(&["shutdown"]).status.success());
    assert!(sup.wait_exit().success());
    let path = sup.data().join("audit.log");
    let original = fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = original.lines().collect();
    assert!(lines.len() >= 6, "{original}");

    let out = sup.cli(&["audit", "--verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let said = text(&out.stdout);
    assert!(
        said.contains(&format!("intact: {} chained lines", lines.len())),
        "{said}"
    );

    // Line 3 altered (its year changed).
    let mut altered: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    altered[2].replace_range(0..1, "1");
    fs::write(&path, altered.join("\n") + "\n").unwrap();
    let out = sup.cli(&["audit", "--verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let said = text(&out.stdout);
    assert!(said.contains("audit.log line 3:"), "{said}");
    assert!(said.contains(&altered[2]), "{said}");

    // Line 4 removed: its successor, now line 4, no longer follows.
    let mut removed: Vec<&str> = lines.clone();
    removed.remove(3);
    fs::write(&path, removed.join("\n") + "\n").unwrap();
    let out = sup.cli(&["audit", "--verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let said = text(&out.stdout);
    assert!(said.contains("audit.log line 4:"), "{said}");
    assert!(said.contains(lines[4]), "{said}");

    fs::write(&path, &original).unwrap();
    assert_eq!(sup.cli(&["audit", "--verify"]).status.code(), Some(0));
}

#[test]
fn audit_reads_the_whole_trail_across_rotated_files() {
    // Audit lines are ~100-150 bytes: a 1 KiB trail rotates every few lines.
    let mut sup = Setup::new()
        .top("logs", json!({"max_bytes": 1024, "keep": 20}))
        .service(Service::new("producer"))
        .start();
    sup.wait_running("producer");
    for _ in 0..4 {
        let out = sup.cli(&["restart", "producer"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    assert!(sup.cli(&["shutdown"]).status.success());
    assert!(sup.wait_exit().success());

    // The whole trail, oldest file first.
    let mut files: Vec<(u32, std::path::PathBuf)> = fs::read_dir(sup.data())
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let n = e
                .file_name()
                .to_str()?
                .strip_prefix("audit.log.")?
                .parse()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    assert!(!files.is_empty(), "the trail did not rotate");
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    let mut trail: Vec<String> = vec![];
    for (_, path) in &files {
        trail.extend(
            fs::read_to_string(path)
                .unwrap()
                .lines()
                .map(str::to_string),
        );
    }
    let current = sup.audit_lines();
    trail.extend(current.iter().cloned());
    assert!(
        current.len() < 10,
        "audit.log alone has {} lines",
        current.len()
    );

    let out = sup.cli(&["audit", "-n", "10"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).lines().collect::<Vec<_>>(),
        trail[trail.len() - 10..]
    );
    let producer: Vec<&String> = trail
        .iter()
        .filter(|l| l.split(" | ").nth(1) == Some("producer"))
        .collect();
    let out = sup.cli(&["audit", "--service", "producer", "-n", "6"]);
    assert_eq!(
        text(&out.stdout).lines().collect::<Vec<_>>(),
        producer[producer.len() - 6..]
    );
    let out = sup.cli(&["audit", "--verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains(&format!("intact: {} chained lines", trail.len())),
        "{}",
        text(&out.stdout)
    );
}

// ---- escalations --------------------------------------------------------------------

#[test]
fn escalations_prints_the_blocks_or_says_there_are_none() {
    let (sup, flag) = flaky_service(10, 2);

    let out = sup.cli(&["escalations"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "No escalations.\n");
    let out = sup.cli(&["escalations", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("escalations --json");
    assert_eq!(v, json!([]));

    // 503 → restart at once (1) → the new instance misses its start_timeout (2).
    fs::write(&flag, "").unwrap();
    sup.wait_status("flaky", "escalated");
    sup.wait_until("the escalation block", || sup.escalation_count() == 1);

    let out = sup.cli(&["escalations"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert_eq!(said, sup.escalations());
    for want in [
        "ESCALATION REQUIRED",
        "Service: flaky",
        "Consecutive Failures: 2",
    ] {
        assert!(said.contains(want), "no {want:?} in {said}");
    }
    let out = sup.cli(&["escalations", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("escalations --json");
    let blocks = v.as_array().expect("an array");
    assert_eq!(blocks.len(), 1, "{v}");
    assert_eq!(blocks[0]["service"], "flaky");
    assert_eq!(blocks[0]["consecutive_failures"], "2");
    assert_eq!(blocks[0]["restart_attempts"], "1");
    assert!(
        blocks[0]["last_error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{v}"
    );
}

// ---- check --------------------------------------------------------------------------

#[test]
fn check_validates_the_config_without_a_supervisor() {
    let svc = Service::new("producer");
    let port = svc.port;
    let setup = Setup::new().service(svc.clone());
    setup.write_config(&setup.config_text());

    let out = setup.cli(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(said.contains("is valid: 1 services"), "{said}");
    assert!(said.contains("producer → /"), "{said}");
    let out = setup.cli(&["check", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("check --json");
    assert_eq!(v["ok"], true);
    assert_eq!(v["services"], json!(["producer"]));

    let bad = Setup::new()
        .service(svc.set("restart_policy", json!("always")))
        .config_text();
    setup.write_config(&bad);
    let out = setup.cli(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let said = text(&out.stderr);
    assert!(
        said.contains("ai_dawg.services.producer.restart_policy"),
        "{said}"
    );
    // `check` starts nothing and creates no data folder.
    assert!(!setup.root().join("data").exists());
    assert!(!accepts(port));
}

#[test]
fn check_init_whitelist_lists_the_programs_and_never_overwrites() {
    let setup = Setup::new()
        .service(Service::new("producer"))
        .top("notifications", json!({"command": ["true"]}))
        .whitelist(None);
    setup.write_config(&setup.config_text());
    let whitelist = setup.root().join("config/commands-whitelist.json");

    let out = setup.cli(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let said = text(&out.stderr);
    assert!(said.contains("check --init-whitelist"), "{said}");

    let out = setup.cli(&["check", "--init-whitelist"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let written = fs::read_to_string(&whitelist).expect("whitelist written");
    let v: Value = serde_json::from_str(&written).expect("whitelist JSON");
    let mut commands: Vec<&str> = v["commands"]
        .as_array()
        .expect("a commands array")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    commands.sort_unstable();
    assert_eq!(commands, ["ai-dawg-manager", "true"], "{written}");

    let out = setup.cli(&["check", "--init-whitelist"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("already exists"));
    assert_eq!(
        fs::read_to_string(&whitelist).unwrap(),
        written,
        "rewritten"
    );

    let out = setup.cli(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let sup = setup.start();
    sup.wait_running("producer");
}

// ---- status --explain ---------------------------------------------------------------

#[test]
fn status_explain_says_why_a_service_is_in_its_state() {
    let sup = Setup::new()
        .service(Service::new("steady"))
        .service(
            Service::new("looping")
                .monitoring("restart_cooldown", json!("10s"))
                .args(["--crash-after-ms", "300"]),
        )
        .service(
            Service::new("doomed")
                .monitoring("max_restart_attempts", json!(1))
                .monitoring("restart_cooldown", json!("100ms"))
                .args(["--crash-after-ms", "100"]),
        )
        .start();
    let steady = sup.wait_running("steady");
    let looping = sup.wait_status("looping", "backoff");
    sup.wait_status("doomed", "escalated");

    let explain = |name: &str| {
        let out = sup.cli(&["status", "--explain", name]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let said = explain("steady");
    for want in [
        "steady (steady) is RUNNING".to_string(),
        "why: healthy".into(),
        format!("process: pid {}", steady.pid),
        "restart budget: 0 of 3 used".into(),
    ] {
        assert!(said.contains(&want), "no {want:?} in:\n{said}");
    }

    // The cooldown is 10 s: still in backoff when asked.
    let said = explain("looping");
    let due = looping["next_restart_at"]
        .as_str()
        .expect("next_restart_at");
    for want in [
        "looping (looping) is BACKOFF".to_string(),
        format!("it restarts at {due}"),
        format!("next restart: {due}"),
        "restart budget: 1 of 3 used".into(),
        "cooldown 10s".into(),
        "exited with code 3".into(),
    ] {
        assert!(said.contains(&want), "no {want:?} in:\n{said}");
    }

    let said = explain("doomed");
    for want in [
        "doomed (doomed) is ESCALATED",
        "gave up",
        "ai-dawg-manager recover doomed",
        "restart budget: 1 of 1 used",
    ] {
        assert!(said.contains(want), "no {want:?} in:\n{said}");
    }

    let out = sup.cli(&["status", "--explain", "nope"]);
    assert_eq!(out.status.code(), Some(4));
}

// ---- recover ------------------------------------------------------------------------

#[test]
fn recover_frees_a_port_held_by_a_foreign_process_even_when_kills_are_off() {
    let svc = Service::new("producer");
    let port = svc.port;
    let mut holder = Foreign::spawn(port);
    let sup = Setup::new()
        .safety("kill_port_conflicts", json!(false))
        .service(svc)
        .start();
    sup.wait_status("producer", "escalated");
    assert!(holder.exit_status().is_none(), "killed without a human");

    let out = sup.cli(&["recover", "producer"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let p = sup.wait_running("producer");
    let said = text(&out.stdout);
    assert!(
        said.contains(&format!("✅ producer: recovered (PID: {})", p.pid)),
        "{said}"
    );
    let mut exit = None;
    sup.wait_until("the holder to exit", || {
        exit = holder.exit_status();
        exit.is_some()
    });
    assert_eq!(signal_of(&exit.unwrap()), Some(libc::SIGTERM));
    assert_eq!(demo_instances_on(port), vec![p]);
    assert!(sup.audit("producer", "kill_port_holder").iter().any(|l| {
        l.outcome == "SUCCESS" && l.detail.contains(&format!("pid {}", holder.proc_.pid))
    }));
    assert!(sup.audited("producer", "recover", "SUCCESS"));
    let r = sup.record("producer");
    assert_eq!(r["restart_attempts"], 0, "{r}");
}

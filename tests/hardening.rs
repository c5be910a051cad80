//! Hardening (README "How it behaves"): service output rotated by size without
//! losing a line, output that survives a SIGKILLed supervisor, a state file
//! that cannot be written, per-service resource limits, and no zombie left by
//! a killed service.

mod common;

use common::*;
use serde_json::json;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The tick numbers of the complete `NAME tick N` lines of `text` (a last line
/// without its newline is still being written); panics on any other line but
/// the demo service's start lines, so a torn or mixed line is caught.
fn ticks_of(name: &str, text: &str) -> Vec<u64> {
    let mut lines: Vec<&str> = text.split('\n').collect();
    lines.pop(); // after the last newline: empty, or a partial line
    let prefix = format!("{name} tick ");
    lines
        .into_iter()
        .filter(|l| !l.starts_with(&format!("demo {name} ")))
        .map(|l| {
            l.strip_prefix(&prefix)
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("not a tick line of {name}: {l:?}"))
        })
        .collect()
}

fn assert_contiguous(ticks: &[u64], what: &str) {
    for pair in ticks.windows(2) {
        assert_eq!(
            pair[1],
            pair[0] + 1,
            "{what}: tick {} follows tick {}",
            pair[1],
            pair[0]
        );
    }
}

/// `<log>.N` files of `log` that exist: their numbers, sorted.
fn rotated(log: &Path) -> Vec<u32> {
    let name = log.file_name().unwrap().to_str().unwrap();
    let prefix = format!("{name}.");
    let mut found: Vec<u32> = fs::read_dir(log.parent().unwrap())
        .unwrap()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_prefix(&prefix)
                .map(|n| n.parse().unwrap_or(u32::MAX))
        })
        .collect();
    found.sort_unstable();
    found
}

fn numbered(log: &Path, n: u32) -> PathBuf {
    PathBuf::from(format!("{}.{n}", log.display()))
}

/// The contents of `log.N` … `log.1`, `log` (oldest first), read as one
/// consistent set: no rotation happened between opening the first and the
/// last (the same files, by inode, before and after).
fn read_rotated_set(sup: &Supervisor, log: &Path) -> Vec<String> {
    let inodes = || -> Vec<(PathBuf, u64)> {
        let mut files: Vec<PathBuf> = rotated(log)
            .into_iter()
            .rev()
            .map(|n| numbered(log, n))
            .collect();
        files.push(log.to_path_buf());
        files
            .into_iter()
            .filter_map(|p| fs::metadata(&p).ok().map(|m| (p, m.ino())))
            .collect()
    };
    let mut contents = vec![];
    sup.wait_until("a consistent view of the rotated logs", || {
        let before = inodes();
        let opened: Vec<File> = before
            .iter()
            .filter_map(|(p, _)| File::open(p).ok())
            .collect();
        if opened.len() != before.len()
            || opened
                .iter()
                .zip(&before)
                .any(|(f, (_, ino))| f.metadata().map(|m| m.ino()).ok() != Some(*ino))
            || inodes() != before
        {
            return false; // rotated meanwhile: look again
        }
        contents = opened
            .into_iter()
            .map(|mut f| {
                let mut s = String::new();
                f.read_to_string(&mut s).expect("read a log file");
                s
            })
            .collect();
        true
    });
    contents
}

#[test]
fn service_logs_rotate_keep_at_most_keep_files_and_lose_no_line() {
    // A long name makes each tick line ~100 bytes: at one line per ms, a
    // 20000-byte file fills in about 0.2 s.
    const NAME: &str =
        "rotating-service-with-a-long-name-so-that-every-tick-line-is-about-100-bytes";
    let sup = Setup::new()
        .top("logs", json!({"max_bytes": 20000, "keep": 3}))
        .service(Service::new(NAME).args(["--print-every-ms", "1"]))
        .start();
    let p = sup.wait_running(NAME);
    let log = sup.log_path(NAME);

    // Wait until the oldest kept file has been dropped at least once (its
    // first tick changes); all along, never more than `keep` rotated files.
    let mut first_of_oldest = None;
    sup.wait_until("the oldest rotated file to be replaced", || {
        let found = rotated(&log);
        assert!(
            found.iter().all(|n| (1..=3).contains(n)),
            "rotated files beyond keep = 3: {found:?}"
        );
        if !found.contains(&3) {
            return false;
        }
        let first = fs::read_to_string(numbered(&log, 3))
            .ok()
            .and_then(|t| ticks_of(NAME, &t).first().copied());
        match (first_of_oldest, first) {
            (None, first) => {
                first_of_oldest = first;
                false
            }
            (Some(before), Some(now)) => now != before,
            (Some(_), None) => false,
        }
    });

    let files = read_rotated_set(&sup, &log);
    assert_eq!(files.len(), 4, "{NAME}.log.3, .2, .1 and .log");
    let mut all = vec![];
    for (i, text) in files.iter().enumerate().take(3) {
        assert!(text.ends_with('\n'), "rotated file {i} ends mid-line");
        let t = ticks_of(NAME, text);
        assert!(!t.is_empty(), "rotated file {i} has no tick");
        all.extend(t);
    }
    all.extend(ticks_of(NAME, &files[3]));
    assert!(all.len() > 400, "only {} ticks", all.len());
    assert!(all[0] > 1, "the oldest file should have been dropped");
    assert_contiguous(&all, "ticks across the kept files");

    // Rotation is the log thread's business: the service never noticed.
    assert!(p.alive());
    let r = sup.record(NAME);
    assert_eq!(r["pid"], p.pid, "{r}");
    assert_eq!(r["restart_count"], 0, "{r}");
}

#[test]
fn a_service_removed_and_added_again_by_reload_has_one_log_writer() {
    // The same service, removed by one reload and added back (now ticking)
    // by the next: its output must still go through one writer, which
    // rotates it without mixing lines up.
    const NAME: &str =
        "re-added-service-with-a-long-name-so-that-every-tick-line-is-about-100-bytes";
    let quiet = Service::new(NAME);
    let ticking = quiet.clone().args(["--print-every-ms", "1"]);
    let other = Service::new("other");
    let logs = json!({"max_bytes": 20000, "keep": 3});
    let config = |services: &[Service]| {
        services
            .iter()
            .cloned()
            .fold(Setup::new().top("logs", logs.clone()), Setup::service)
            .config_text()
    };
    let sup = Setup::new()
        .top("logs", logs.clone())
        .service(quiet)
        .service(other.clone())
        .start();
    let first = sup.wait_running(NAME);
    sup.write_config(&config(std::slice::from_ref(&other)));
    assert!(sup.cli(&["reload"]).status.success());
    sup.wait_until("the removed instance to be gone", || !first.alive());
    sup.write_config(&config(&[other, ticking]));
    assert!(sup.cli(&["reload"]).status.success());
    sup.wait_until(&format!("{NAME} in status"), || {
        sup.query().is_some_and(|s| {
            s["services"]
                .as_array()
                .is_some_and(|l| l.iter().any(|r| r["name"] == NAME))
        })
    });
    let p = sup.wait_running(NAME);
    let log = sup.log_path(NAME);
    sup.wait_until("three rotated files", || rotated(&log).contains(&3));

    let files = read_rotated_set(&sup, &log);
    let all: Vec<u64> = files.iter().flat_map(|t| ticks_of(NAME, t)).collect();
    assert!(all.len() > 400, "only {} ticks", all.len());
    assert_contiguous(&all, "ticks across the kept files");
    assert!(p.alive());

    // Which writer gets a chunk is up to the kernel's wake-up order, so a
    // second one may stay idle through this test: look at the supervisor's
    // open files. One reader of the FIFO, and no writer left on a file that
    // has rotated away (its next chunk would land out of order, or nowhere).
    let open: Vec<String> = fs::read_dir(format!("/proc/{}/fd", sup.pid()))
        .expect("the supervisor's fds")
        .flatten()
        .filter_map(|e| fs::read_link(e.path()).ok())
        .map(|t| t.display().to_string())
        .filter(|t| t.contains(NAME))
        .collect();
    let fifo = format!("/.{NAME}.fifo");
    assert_eq!(
        open.iter().filter(|t| t.ends_with(&fifo)).count(),
        1,
        "readers of the FIFO: {open:#?}"
    );
    let current = log.display().to_string();
    assert!(
        open.iter().all(|t| t.ends_with(&fifo) || *t == current),
        "files held besides the FIFO and the current log: {open:#?}"
    );
}

#[test]
fn service_output_survives_a_supervisor_sigkill() {
    let mut sup = Setup::new()
        .service(Service::new("ticker").args(["--print-every-ms", "2"]))
        .start();
    let p = sup.wait_running("ticker");
    let log = sup.log_path("ticker");
    let last_tick = || {
        fs::read_to_string(&log)
            .map(|t| ticks_of("ticker", &t).last().copied().unwrap_or(0))
            .unwrap_or(0)
    };
    sup.wait_until("50 ticks in the log", || last_tick() >= 50);
    // The state file is written on its own thread: a crash before it names
    // the process would leave nothing to adopt (nothing can be durable before
    // it is written).
    let state = sup.data().join("service-state.json");
    sup.wait_until("the state file to name the process", || {
        fs::read(&state)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .is_some_and(|v| v[0][1]["pid"] == p.pid)
    });

    sup.signal_supervisor(libc::SIGKILL);
    sup.wait_exit();
    // Nobody drains the FIFO now: the file stays as it is while the service
    // goes on ticking into the pipe buffer.
    let at_crash = last_tick();
    assert!(p.alive(), "the service should outlive the supervisor");

    sup.restart_supervisor();
    assert_eq!(sup.wait_running("ticker"), p, "adopted, not replaced");
    sup.wait_until("ticks from after the crash", || {
        last_tick() > at_crash + 100
    });
    let all = ticks_of("ticker", &fs::read_to_string(&log).unwrap());
    assert_eq!(all[0], 1);
    assert_contiguous(&all, "ticks across the supervisor crash");
    assert_eq!(demo_instances_on(sup.port("ticker")), vec![p]);
}

#[test]
fn a_state_file_that_cannot_be_written_escalates_once_and_supervision_goes_on() {
    let sup = Setup::new()
        .service(Service::new("alpha"))
        .service(Service::new("beta"))
        .start();
    sup.wait_running("alpha");
    let beta = sup.wait_running("beta");
    let state = sup.data().join("service-state.json");
    sup.wait_until("the state file", || state.is_file());

    // A folder in its place: the atomic rename onto it fails. The writer may
    // put a fresh file back between the removal and the mkdir (a debounced
    // write): try again until the folder is there.
    sup.wait_until("a folder in place of the state file", || {
        let _ = fs::remove_file(&state);
        fs::create_dir(&state).is_ok()
    });
    let out = sup.cli(&["stop", "alpha"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    sup.wait_until("an escalation for manager", || {
        sup.escalations().contains("Service: manager")
    });
    let block = sup.escalations();
    assert!(block.contains("service-state.json"), "{block}");
    assert!(block.contains("Is a directory"), "{block}");

    // Supervision goes on: commands answer, a killed service comes back.
    beta.signal(libc::SIGKILL);
    let again = sup.wait_record("beta back", "beta", |r| {
        r["status"] == "running" && r["pid"].is_u64() && r["pid"] != beta.pid
    });
    assert_eq!(again["restart_count"], 1);
    let out = sup.cli(&["start", "alpha"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    sup.wait_running("alpha");
    // Every one of these changes failed to be written (a manual command
    // answers once its state was written, or failed to be): one escalation.
    assert_eq!(sup.escalation_count(), 1, "{}", sup.escalations());
    assert_eq!(
        sup.stderr().matches("Service: manager").count(),
        1,
        "{}",
        sup.stderr()
    );
    assert!(state.is_dir());

    // Writing resumes once it can.
    fs::remove_dir(&state).unwrap();
    let out = sup.cli(&["stop", "alpha"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(state.is_file(), "the state file is not back");
    let saved = sup.state_file();
    assert_eq!(saved[0][0], "alpha");
    assert_eq!(saved[0][1]["status"], "stopped", "{saved}");
    assert_eq!(saved[1][1]["restart_count"], 1, "{saved}");
    assert_eq!(sup.escalation_count(), 1, "{}", sup.escalations());
}

#[test]
fn a_process_started_while_the_state_file_cannot_be_written_is_adopted_after_a_crash() {
    // The state file is written on its own thread, after the fact: a crash
    // between a (re)start and that write loses the new pid. A state file that
    // cannot be written holds that window open, so the crash falls in it.
    let mut sup = Setup::new().service(Service::new("alpha")).start();
    let port = sup.port("alpha");
    let first = sup.wait_running("alpha");
    let state = sup.data().join("service-state.json");
    sup.wait_until("a folder in place of the state file", || {
        let _ = fs::remove_file(&state);
        fs::create_dir(&state).is_ok()
    });
    first.signal(libc::SIGKILL);
    let r = sup.wait_record("a new instance", "alpha", |r| {
        r["status"] == "running" && r["pid"].is_u64() && r["pid"] != first.pid
    });
    let second = Proc::of(r["pid"].as_u64().unwrap() as u32).expect("the new instance");
    sup.signal_supervisor(libc::SIGKILL);
    sup.wait_exit();
    fs::remove_dir(&state).unwrap();

    // Still ours (our FIFO is its stdout, its group is the one we made), and
    // the only instance there should be.
    sup.restart_supervisor();
    assert_eq!(sup.wait_running("alpha"), second, "not adopted");
    assert_eq!(demo_instances_on(port), vec![second]);
}

#[test]
fn resource_limits_are_applied_and_an_impossible_one_is_refused_clearly() {
    let sup = Setup::new()
        .service(Service::new("limited").set("max_open_files", json!(64)))
        .service(Service::new("greedy").set("max_open_files", json!(100_000_000)))
        .start();
    let p = sup.wait_running("limited");
    let limits = fs::read_to_string(format!("/proc/{}/limits", p.pid)).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[3..5], ["64", "64"], "{line}");

    // Above /proc/sys/fs/nr_open: not even root may set it.
    let r = sup.wait_record("a refused start", "greedy", |r| {
        r["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("refused"))
    });
    assert!(r["pid"].is_null(), "{r}");
    assert_ne!(r["status"], "running", "{r}");
    let error = r["last_error"].as_str().unwrap();
    assert!(error.contains("max_open_files 100000000"), "{error}");
    let failed = sup.audit("greedy", "start");
    assert!(
        failed
            .iter()
            .any(|l| l.outcome == "FAILURE" && l.detail.contains("refused")),
        "{:?}",
        sup.audit_lines()
    );
    assert!(demo_instances_on(sup.port("greedy")).is_empty());
}

/// `(state, parent pid)` of `pid` from `/proc/PID/stat`.
fn state_and_parent(pid: u32) -> Option<(String, u32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    Some((fields.first()?.to_string(), fields.get(1)?.parse().ok()?))
}

/// Children of `parent` that are zombies.
fn zombie_children(parent: u32) -> Vec<u32> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            state_and_parent(*pid).is_some_and(|(state, ppid)| state == "Z" && ppid == parent)
        })
        .collect()
}

/// Sends SIGCONT to the supervisor when dropped (also when a test fails
/// while the supervisor is stopped).
struct Resume<'a>(&'a Supervisor);

impl Drop for Resume<'_> {
    fn drop(&mut self) {
        self.0.signal_supervisor(libc::SIGCONT);
    }
}

#[test]
fn a_killed_leader_leaves_no_zombie_behind() {
    let (sup, leader, grandchild) = parent_with_grandchild();
    assert_eq!(
        state_and_parent(grandchild.pid).map(|s| s.1),
        Some(leader.pid)
    );

    // With the supervisor stopped, its reaction cannot hide where the orphan
    // goes: to the supervisor (a child subreaper), not to pid 1, which may or
    // may not reap it (here it does, so "gone" alone would prove nothing).
    let resume = Resume(&sup);
    sup.signal_supervisor(libc::SIGSTOP);
    wait_until("the supervisor to be stopped", TIMEOUT, || {
        state_and_parent(sup.pid()).is_some_and(|(state, _)| state == "T")
    });
    leader.signal(libc::SIGKILL);
    let mut parent = None;
    wait_until("the grandchild to be orphaned", TIMEOUT, || {
        parent = state_and_parent(grandchild.pid).map(|s| s.1);
        parent != Some(leader.pid)
    });
    drop(resume);
    assert_eq!(parent, Some(sup.pid()), "the orphan's new parent");

    // The supervisor kills the rest of the group and reaps the orphan too.
    sup.wait_until("the grandchild to be gone from /proc", || {
        Proc::of(grandchild.pid).is_none_or(|p| p.start_time != grandchild.start_time)
    });
    let new = sup.wait_running("parent");
    assert_ne!(new, leader);
    sup.wait_until("no zombie child of the supervisor", || {
        zombie_children(sup.pid()).is_empty()
    });
}

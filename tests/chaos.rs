//! The chaos run (issue "Survive anything"): 20 demo services under the real
//! binary while, at random, services are SIGKILLed, frozen (SIGSTOP … SIGCONT),
//! their health checks hang, and the supervisor itself is SIGKILLed and started
//! again; some services flood their logs meanwhile. Then the invariants:
//! every service back to running without an escalation, exactly one instance
//! per service, no zombie child, the state file valid JSON, `audit --verify`
//! passing, and no line lost from any service's log.
//!
//! `CHAOS_SECS` sets the length of the chaos phase: 20 s in the normal suite;
//! the documented long run is
//! `CHAOS_SECS=120 cargo test --release --test chaos -- --nocapture`.
//! `CHAOS_SEED` replays a run (the seed is printed).

mod common;

use common::*;
use serde_json::json;
use std::collections::HashMap;
use std::fs;
use std::time::{Duration, Instant};

const SERVICES: usize = 20;
/// Services that write a line every millisecond (the log flood).
const FLOODERS: usize = 2;

/// xorshift64*: enough randomness for chaos, replayable from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A fault in progress, undone when its time comes.
enum Fault {
    Frozen {
        pid: u32,
        until: Instant,
    },
    Hanging {
        flag: std::path::PathBuf,
        until: Instant,
    },
}

/// Supervisor peak resident set (kB), from `/proc/PID/status` VmHWM.
fn peak_rss_kb(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Every line of a service's log, oldest file first.
fn log_lines(data: &std::path::Path, name: &str) -> Vec<String> {
    let mut files: Vec<(u32, std::path::PathBuf)> = vec![];
    for e in fs::read_dir(data.join("logs"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let f = e.file_name().to_string_lossy().into_owned();
        if f == format!("{name}.log") {
            files.push((0, e.path()));
        } else if let Some(n) = f
            .strip_prefix(&format!("{name}.log."))
            .and_then(|n| n.parse::<u32>().ok())
        {
            files.push((n, e.path()));
        }
    }
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    files
        .iter()
        .flat_map(|(_, p)| {
            fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Within each instance's run of lines (from its "listening" line on), the
/// ticks must be 1, 2, 3… with no gap: no line lost. Returns the ticks seen.
fn assert_ticks_contiguous(name: &str, lines: &[String]) -> usize {
    let mut expected: Option<u64> = None;
    let mut seen = 0;
    for l in lines {
        if l.starts_with(&format!("demo {name} listening")) {
            expected = Some(1);
        } else if let Some(n) = l
            .strip_prefix(&format!("{name} tick "))
            .and_then(|n| n.trim().parse::<u64>().ok())
        {
            let want = expected.expect("a tick before any listening line");
            assert_eq!(n, want, "{name}: line lost before tick {n} (wanted {want})");
            expected = Some(n + 1);
            seen += 1;
        }
    }
    seen
}

#[test]
fn chaos() {
    let secs = env_u64("CHAOS_SECS", 20);
    let seed = env_u64(
        "CHAOS_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            | 1,
    );
    println!("chaos: {secs} s, seed {seed}");
    let mut rng = Rng(seed);

    let mut setup = Setup::new()
        .monitoring("health_check_interval", json!("100ms"))
        .monitoring("health_check_timeout", json!("300ms"))
        .monitoring("max_restart_attempts", json!(50))
        .monitoring("restart_cooldown", json!("200ms"))
        .monitoring("stable_after", json!("1s"))
        .safety("max_consecutive_failures_before_escalation", json!(1000));
    let mut names = vec![];
    for i in 0..SERVICES {
        let name = format!("c{i:02}");
        let every = if i < FLOODERS { "1" } else { "20" };
        let hang = setup.path(&format!("{name}.hang"));
        let svc = Service::new(&name)
            .args(["--print-every-ms", every, "--hang-flag"])
            .args([hang.to_string_lossy().into_owned()])
            .set("stop_timeout", json!("300ms"))
            .set("start_timeout", json!("5s"));
        setup = setup.service(svc);
        names.push(name);
    }
    let mut sup = setup.start();
    for n in &names {
        sup.wait_running(n);
    }

    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut faults: Vec<Fault> = vec![];
    let mut pending_kills: HashMap<String, (Instant, u32)> = HashMap::new();
    let (mut kills, mut freezes, mut hangs, mut supervisor_kills) = (0, 0, 0, 0);
    let mut recoveries = 0;
    let mut max_recovery = Duration::ZERO;
    let mut max_status = Duration::ZERO;
    let mut peak_rss = 0;
    let mut next_supervisor_kill =
        Instant::now() + Duration::from_secs(secs / 3).max(Duration::from_secs(3));

    while Instant::now() < deadline {
        // How long `status` takes, all through the chaos.
        let t = Instant::now();
        let status = sup.query();
        max_status = max_status.max(t.elapsed());
        peak_rss = peak_rss.max(peak_rss_kb(sup.pid()));

        // Recoveries of earlier kills.
        if let Some(s) = &status {
            for r in s["services"].as_array().into_iter().flatten() {
                let name = r["name"].as_str().unwrap_or_default();
                if let Some((at, old)) = pending_kills.get(name).copied() {
                    let pid = r["pid"].as_u64().unwrap_or(0) as u32;
                    if r["status"] == "running" && pid != 0 && pid != old {
                        recoveries += 1;
                        max_recovery = max_recovery.max(at.elapsed());
                        pending_kills.remove(name);
                    }
                }
            }
        }

        // Undo faults whose time has come.
        let now = Instant::now();
        faults.retain(|f| match f {
            Fault::Frozen { pid, until } if *until <= now => {
                // SAFETY: signalling a pid we froze; if it was replaced, its
                // group was killed and the signal finds nobody.
                unsafe { libc::kill(*pid as i32, libc::SIGCONT) };
                false
            }
            Fault::Hanging { flag, until } if *until <= now => {
                let _ = fs::remove_file(flag);
                false
            }
            _ => true,
        });

        if now >= next_supervisor_kill && faults.is_empty() {
            peak_rss = peak_rss.max(peak_rss_kb(sup.pid()));
            sup.signal_supervisor(libc::SIGKILL);
            sup.wait_exit();
            supervisor_kills += 1;
            // Kills pending across the crash are timed from the kill still.
            sup.restart_supervisor();
            next_supervisor_kill =
                Instant::now() + Duration::from_secs(secs / 3).max(Duration::from_secs(3));
            continue;
        }

        let name = names[rng.below(SERVICES as u64) as usize].clone();
        let busy = pending_kills.contains_key(&name);
        match rng.below(10) {
            0..=4 if !busy => {
                if let Some(p) = sup.pid_of(&name) {
                    // SAFETY: the recorded pid of a running service.
                    unsafe { libc::kill(p as i32, libc::SIGKILL) };
                    pending_kills.insert(name, (Instant::now(), p));
                    kills += 1;
                }
            }
            5 if !busy && faults.len() < 3 => {
                if let Some(p) = sup.pid_of(&name) {
                    // SAFETY: as above.
                    unsafe { libc::kill(p as i32, libc::SIGSTOP) };
                    let ms = 200 + rng.below(800);
                    faults.push(Fault::Frozen {
                        pid: p,
                        until: Instant::now() + Duration::from_millis(ms),
                    });
                    freezes += 1;
                }
            }
            6 if faults.len() < 3 => {
                let flag = sup.root.join(format!("{name}.hang"));
                let _ = fs::write(&flag, b"");
                let ms = 200 + rng.below(800);
                faults.push(Fault::Hanging {
                    flag,
                    until: Instant::now() + Duration::from_millis(ms),
                });
                hangs += 1;
            }
            _ => {}
        }
        // The pace of the chaos: a fault every 50–150 ms.
        std::thread::sleep(Duration::from_millis(50 + rng.below(100)));
    }

    // Calm: undo every fault, then every service must come back by itself.
    for f in faults.drain(..) {
        match f {
            // SAFETY: see above.
            Fault::Frozen { pid, .. } => unsafe {
                libc::kill(pid as i32, libc::SIGCONT);
            },
            Fault::Hanging { flag, .. } => {
                let _ = fs::remove_file(flag);
            }
        }
    }
    for n in &names {
        let pid = sup.wait_running(n).pid;
        sup.wait_until(&format!("{n}: exactly one instance"), || {
            let live: Vec<u32> = demo_instances_on(sup.port(n))
                .iter()
                .map(|p| p.pid)
                .collect();
            live == vec![pid]
        });
    }
    for (name, (at, _)) in pending_kills.drain() {
        recoveries += 1;
        max_recovery = max_recovery.max(at.elapsed());
        let _ = name;
    }
    peak_rss = peak_rss.max(peak_rss_kb(sup.pid()));

    // Invariants.
    assert_eq!(sup.escalation_count(), 0, "{}", sup.escalations());
    let state = sup.state_file();
    assert_eq!(state.as_array().map(Vec::len), Some(SERVICES), "{state}");
    let zombies: Vec<u32> =
        fs::read_to_string(format!("/proc/{}/task/{}/children", sup.pid(), sup.pid()))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
            .filter(|p| {
                fs::read_to_string(format!("/proc/{p}/stat"))
                    .map(|s| {
                        s.rsplit(')')
                            .next()
                            .unwrap_or("")
                            .trim_start()
                            .starts_with('Z')
                    })
                    .unwrap_or(false)
            })
            .collect();
    assert!(zombies.is_empty(), "zombie children: {zombies:?}");
    let verify = sup.cli(&["audit", "--verify"]);
    assert!(verify.status.success(), "{}", text(&verify.stdout));
    let mut ticks = 0;
    for n in &names {
        ticks += assert_ticks_contiguous(n, &log_lines(&sup.data(), n));
    }
    println!(
        "chaos done: {kills} kills, {freezes} freezes, {hangs} hung health checks, \
         {supervisor_kills} supervisor kills; {recoveries} recoveries, max time to recover \
         {max_recovery:?}; max status latency {max_status:?}; supervisor peak RSS {peak_rss} kB; \
         {ticks} log lines checked"
    );
    assert!(
        kills > 0 && supervisor_kills > 0,
        "the chaos did too little"
    );
}

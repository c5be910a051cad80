//! The incident history end to end, on the real binary: a supervisor runs the
//! built-in demo service, the test SIGKILLs it a few times, and `report --json`
//! and `history a --json` (reading `data/history.db`) show the incidents and
//! restarts; the flapping pattern is audited.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ai-dawg-manager");
/// Every wait in this test gives up after this long.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Poll `cond` every 20 ms until it gives a value; panic naming `what` at the deadline.
fn wait_until<T>(what: &str, mut cond: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The running supervisor; killed with every service process it was seen to
/// run when dropped, even when the test fails.
struct Supervisor {
    child: Child,
    config: PathBuf,
    service_pids: Vec<u32>,
}

impl Supervisor {
    fn start(root: &Path) -> Supervisor {
        let config = root.join("config/autonomy.json");
        let log = std::fs::File::create(root.join("supervisor.log")).unwrap();
        let child = Command::new(BIN)
            .args(["start", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start the supervisor");
        Supervisor {
            child,
            config,
            service_pids: vec![],
        }
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .stdin(Stdio::null())
            .output()
            .expect("run the CLI")
    }

    fn json(&self, args: &[&str]) -> Option<Value> {
        let out = self.cli(args);
        serde_json::from_slice(&out.stdout).ok()
    }

    /// The pid of `a` once it is `running`.
    fn running_pid(&mut self) -> Option<u32> {
        let status = self.json(&["status", "--json"])?;
        let a = &status["services"][0];
        let pid = a["pid"].as_u64()? as u32;
        if !self.service_pids.contains(&pid) {
            self.service_pids.push(pid);
        }
        (a["status"] == "running").then_some(pid)
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for &pid in &self.service_pids {
            // Only a process that is still the demo service (never a recycled pid).
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains("demo-service") {
                // The service leads its own process group.
                unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
            }
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn service_report(report: &Value) -> Option<&Value> {
    report["services"]
        .as_array()?
        .iter()
        .find(|s| s["service"] == "a")
}

#[test]
fn killed_service_shows_up_in_report_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("config")).unwrap();
    let port = free_port();
    let config = serde_json::json!({
        "ai_dawg": {"services": {"a": {
            "command": ["ai-dawg-manager", "demo-service", "--port", port.to_string(), "--name", "a"],
            "port": port,
            "health_endpoint": format!("http://127.0.0.1:{port}/health"),
        }}},
        "monitoring": {
            "health_check_interval": "100ms",
            "restart_cooldown_seconds": 0,
            "max_restart_attempts": 10
        }
    });
    std::fs::write(root.join("config/autonomy.json"), config.to_string()).unwrap();
    std::fs::write(
        root.join("config/commands-whitelist.json"),
        r#"{"commands": ["ai-dawg-manager"]}"#,
    )
    .unwrap();

    let mut sup = Supervisor::start(root);
    let mut pid = wait_until("a running", || sup.running_pid());
    for kill in 1..=3 {
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        let old = pid;
        pid = wait_until(&format!("a running again after kill {kill}"), || {
            sup.running_pid().filter(|&p| p != old)
        });
    }

    // Flushed within a second; read while the supervisor runs.
    let history = wait_until("3 closed incidents in the history", || {
        let h = sup.json(&["history", "a", "--json"])?;
        let incidents = h["incidents"].as_array()?;
        let closed = incidents.iter().filter(|i| i["closed_ms"].is_u64()).count();
        (closed >= 3).then_some(h)
    });
    let incidents = history["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 3, "{history:#}");
    assert!(
        incidents.iter().all(|i| i["resolved_by"] == "auto"
            && i["restarts"] == 1
            && i["error_kind"] == "exited"),
        "{history:#}"
    );

    let report = sup.json(&["report", "--json"]).expect("report --json");
    let a = &service_report(&report).expect("a in the report")["current"];
    assert_eq!(a["incidents"], 3, "{a:#}");
    assert_eq!(a["restarts"], 3, "{a:#}");
    assert_eq!(a["automatic_restarts"], 3, "{a:#}");
    assert_eq!(a["escalations"], 0, "{a:#}");
    assert_eq!(a["top_errors"][0]["kind"], "exited", "{a:#}");
    assert_eq!(a["top_errors"][0]["count"], 3, "{a:#}");
    assert!(a["mttr_ms"].as_u64().is_some(), "{a:#}");
    assert!(a["availability_pct"].as_f64().unwrap() < 100.0, "{a:#}");

    // Three automatic restarts within 15 minutes that all came back: flapping,
    // audited once when first seen.
    let audit = root.join("data/audit.log");
    wait_until("the flapping pattern in the audit trail", || {
        let text = std::fs::read_to_string(&audit).ok()?;
        text.contains("| a | pattern | SUCCESS |").then_some(())
    });
    let report = sup.json(&["report", "--json"]).unwrap();
    assert_eq!(report["patterns"][0]["key"], "flapping:a", "{report:#}");

    // Unknown service: exit 4.
    assert_eq!(sup.cli(&["history", "nobody"]).status.code(), Some(4));

    // After a shutdown the report still reads the database.
    assert!(sup.cli(&["shutdown"]).status.success());
    wait_until("the supervisor to exit", || {
        sup.child.try_wait().ok().flatten()
    });
    let out = sup.cli(&["report", "--service", "a"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Incidents     3"), "{text}");
}

//! The running supervisor: its control socket and CLI, its files (audit
//! trail, escalations, state file, stdout, stderr), waits on its state, and
//! the cleanup that leaves no process behind.

use super::{poll_until, run_bounded, stat, text, Proc, BIN, POLL, TIMEOUT};
use ai_dawg_manager::protocol::{encode_line, ControlRequest, ControlResponse};
use serde_json::Value;
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// One line of `data/audit.log`, split into its columns.
#[derive(Debug, Clone)]
pub struct AuditLine {
    pub raw: String,
    pub time: SystemTime,
    pub service: String,
    pub action: String,
    pub outcome: String,
    pub duration: Duration,
    pub detail: String,
}

impl AuditLine {
    pub fn parse(raw: &str) -> Option<AuditLine> {
        let cols: Vec<&str> = raw.splitn(6, " | ").collect();
        if cols.len() < 5 {
            return None;
        }
        Some(AuditLine {
            raw: raw.to_string(),
            time: humantime::parse_rfc3339(cols[0]).ok()?,
            service: cols[1].to_string(),
            action: cols[2].to_string(),
            outcome: cols[3].to_string(),
            duration: Duration::from_millis(cols[4].strip_suffix("ms")?.parse().ok()?),
            detail: cols.get(5).unwrap_or(&"").to_string(),
        })
    }

    /// When the operation began: the line's time minus its duration.
    pub fn began(&self) -> SystemTime {
        self.time - self.duration
    }
}

/// An RFC 3339 time of a record field.
pub fn time_of(v: &Value) -> SystemTime {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("not a time string: {v}"));
    humantime::parse_rfc3339(s).unwrap_or_else(|e| panic!("bad time {s:?}: {e}"))
}

/// How long a dropped fixture waits for the supervisor's graceful exit.
const GRACEFUL_EXIT: Duration = Duration::from_secs(10);

/// The supervisor running on a [`super::Setup`]'s root.
pub struct Supervisor {
    pub root: PathBuf,
    pub config: PathBuf,
    ports: Vec<(String, u16)>,
    /// `None` once kept (a failed test keeps its folder for a look).
    dir: Option<tempfile::TempDir>,
    child: Option<Child>,
    /// Every service process seen, to be killed at the end whatever happened.
    seen: Mutex<HashSet<Proc>>,
}

impl Supervisor {
    /// Start `ai-dawg-manager start` on `root` (the config is written).
    pub(crate) fn launch(
        dir: tempfile::TempDir,
        config: PathBuf,
        ports: Vec<(String, u16)>,
    ) -> Supervisor {
        let mut sup = Supervisor {
            root: dir.path().to_path_buf(),
            config,
            ports,
            dir: Some(dir),
            child: None,
            seen: Mutex::new(HashSet::new()),
        };
        sup.spawn_supervisor();
        sup
    }

    fn spawn_supervisor(&mut self) {
        let log = |name: &str| -> File {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.root.join(name))
                .expect("supervisor output file")
        };
        let child = Command::new(BIN)
            .arg("start")
            .arg("--config")
            .arg(&self.config)
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .stdout(log("supervisor.stdout"))
            .stderr(log("supervisor.stderr"))
            .spawn()
            .expect("spawn the supervisor");
        self.child = Some(child);
    }

    /// Wait until the control socket answers a status request.
    pub fn wait_ready(&mut self) {
        let since = Instant::now();
        loop {
            if self.query().is_some() {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "the supervisor exited ({status}) before answering\n{}",
                    self.diagnostics()
                );
            }
            if since.elapsed() >= TIMEOUT {
                panic!(
                    "timed out after {TIMEOUT:?} waiting for the supervisor to answer\n{}",
                    self.diagnostics()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    pub fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    pub fn socket(&self) -> PathBuf {
        self.data().join("manager.sock")
    }

    /// `data/logs/<service>.log`.
    pub fn log_path(&self, service: &str) -> PathBuf {
        self.data().join("logs").join(format!("{service}.log"))
    }

    /// Replace `config/autonomy.json` (for `reload`).
    pub fn write_config(&self, text: &str) {
        fs::write(&self.config, text).expect("rewrite the config");
    }

    pub fn port(&self, service: &str) -> u16 {
        self.ports
            .iter()
            .find(|(n, _)| n == service)
            .map(|(_, p)| *p)
            .unwrap_or_else(|| panic!("no service {service} in this setup"))
    }

    /// The supervisor's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("supervisor spawned").id()
    }

    /// Remember a process so the fixture kills its group at the end.
    pub fn track(&self, p: Proc) {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(p);
    }

    fn track_records(&self, v: &Value) {
        for r in v["services"].as_array().into_iter().flatten() {
            if let (Some(pid), Some(t)) = (r["pid"].as_u64(), r["process_start_time"].as_u64()) {
                self.track(Proc {
                    pid: pid as u32,
                    start_time: t,
                });
            }
        }
    }

    /// Run the binary as a client, with this setup's `--config`.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .arg("--config")
            .arg(&self.config)
            .current_dir(&self.root);
        run_bounded(cmd)
    }

    /// `status --json` through the real CLI; it must succeed.
    pub fn status_json(&self) -> Value {
        let out = self.cli(&["status", "--json"]);
        assert!(
            out.status.success(),
            "status --json failed: {:?}\n{}",
            out.status,
            text(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("status --json is not JSON ({e}): {}", text(&out.stdout)));
        self.track_records(&v);
        v
    }

    /// The status report straight from the control socket (the JSON `status
    /// --json` prints), or `None` when nobody answers. Cheap: used for polling.
    pub fn query(&self) -> Option<Value> {
        let mut stream = UnixStream::connect(self.socket()).ok()?;
        stream.set_read_timeout(Some(TIMEOUT)).ok()?;
        let request = ControlRequest::Status { services: vec![] };
        stream.write_all(&encode_line(&request)).ok()?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).ok()?;
        match serde_json::from_str(&line).ok()? {
            ControlResponse::Status(report) => {
                let v = serde_json::to_value(report).ok()?;
                self.track_records(&v);
                Some(v)
            }
            _ => None,
        }
    }

    /// One service's current record (through the socket).
    pub fn record(&self, name: &str) -> Value {
        let status = self
            .query()
            .unwrap_or_else(|| panic!("no answer from the supervisor\n{}", self.diagnostics()));
        Self::find(&status, name)
    }

    fn find(status: &Value, name: &str) -> Value {
        status["services"]
            .as_array()
            .and_then(|list| list.iter().find(|r| r["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no service {name} in {status}"))
    }

    pub fn pid_of(&self, name: &str) -> Option<u32> {
        self.record(name)["pid"].as_u64().map(|p| p as u32)
    }

    /// The current process of a service as a [`Proc`], if it has one.
    pub fn proc_of(&self, name: &str) -> Option<Proc> {
        let r = self.record(name);
        Some(Proc {
            pid: r["pid"].as_u64()? as u32,
            start_time: r["process_start_time"].as_u64()?,
        })
    }

    /// Wait until `name`'s record satisfies `pred`; return that record.
    pub fn wait_record(&self, what: &str, name: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let mut found = Value::Null;
        self.wait_until(&format!("{name}: {what}"), || match self.query() {
            Some(status) => {
                let r = Self::find(&status, name);
                let ok = pred(&r);
                if ok {
                    found = r;
                }
                ok
            }
            None => false,
        });
        found
    }

    /// Wait until `name` is `status`; return its record.
    pub fn wait_status(&self, name: &str, status: &str) -> Value {
        self.wait_record(&format!("status {status}"), name, |r| r["status"] == status)
    }

    /// Wait until `name` is running with a process; return the process.
    pub fn wait_running(&self, name: &str) -> Proc {
        let r = self.wait_record("running with a pid", name, |r| {
            r["status"] == "running" && r["pid"].is_u64()
        });
        Proc {
            pid: r["pid"].as_u64().expect("pid") as u32,
            start_time: r["process_start_time"]
                .as_u64()
                .expect("process_start_time"),
        }
    }

    /// Wait until `condition` holds; on timeout, panic naming `what` with the
    /// supervisor's stderr tail and its last status.
    pub fn wait_until(&self, what: &str, condition: impl FnMut() -> bool) {
        if !poll_until(TIMEOUT, condition) {
            panic!(
                "timed out after {TIMEOUT:?} waiting for {what}\n{}",
                self.diagnostics()
            );
        }
    }

    /// Show that `condition` keeps holding for all of `window` (something does
    /// NOT happen). Callers justify the window's length.
    pub fn holds_for(&self, what: &str, window: Duration, mut condition: impl FnMut() -> bool) {
        let since = Instant::now();
        while since.elapsed() < window {
            if !condition() {
                panic!(
                    "{what}: stopped holding after {:?}\n{}",
                    since.elapsed(),
                    self.diagnostics()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// The supervisor's stderr tail and its status, for failure messages.
    pub fn diagnostics(&self) -> String {
        let stderr = self.stderr();
        let lines: Vec<&str> = stderr.lines().collect();
        let tail = lines[lines.len().saturating_sub(60)..].join("\n");
        let status = self
            .query()
            .map(|v| v.to_string())
            .unwrap_or_else(|| "(no answer)".into());
        format!(
            "--- supervisor stderr (last 60 lines) ---\n{tail}\n--- status ---\n{status}\n--- audit ---\n{}",
            self.audit_lines().join("\n")
        )
    }

    pub fn audit_lines(&self) -> Vec<String> {
        fs::read_to_string(self.data().join("audit.log"))
            .map(|t| t.lines().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// Parsed audit lines of `service` with `action` (any outcome).
    pub fn audit(&self, service: &str, action: &str) -> Vec<AuditLine> {
        self.audit_lines()
            .iter()
            .filter_map(|l| AuditLine::parse(l))
            .filter(|l| l.service == service && l.action == action)
            .collect()
    }

    /// Whether the audit trail has a `service | action | outcome` line.
    pub fn audited(&self, service: &str, action: &str, outcome: &str) -> bool {
        self.audit(service, action)
            .iter()
            .any(|l| l.outcome == outcome)
    }

    pub fn escalations(&self) -> String {
        fs::read_to_string(self.data().join("escalations.log")).unwrap_or_default()
    }

    pub fn escalation_count(&self) -> usize {
        self.escalations().matches("ESCALATION REQUIRED").count()
    }

    pub fn stdout(&self) -> String {
        fs::read_to_string(self.root.join("supervisor.stdout")).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(self.root.join("supervisor.stderr")).unwrap_or_default()
    }

    /// `data/service-state.json`.
    pub fn state_file(&self) -> Value {
        let bytes = fs::read(self.data().join("service-state.json")).expect("state file");
        serde_json::from_slice(&bytes).expect("state file is JSON")
    }

    /// A pid written by the demo service (`--pid-file`, `--grandchild-pid-file`).
    pub fn read_pid_file(&self, path: &Path) -> Proc {
        let mut pid = None;
        self.wait_until(&format!("pid file {}", path.display()), || {
            pid = fs::read_to_string(path)
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok());
            pid.is_some()
        });
        let p = Proc::of(pid.expect("pid")).expect("the process of a fresh pid file");
        self.track(p);
        p
    }

    /// Send `signal` to the supervisor.
    pub fn signal_supervisor(&self, signal: i32) {
        // SAFETY: our own child, not yet reaped, so its pid is still its own.
        unsafe { libc::kill(self.pid() as i32, signal) };
    }

    /// Wait (bounded) for the supervisor to exit; its status.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("supervisor spawned");
        let mut status = None;
        let exited = poll_until(TIMEOUT, || {
            status = child.try_wait().ok().flatten();
            status.is_some()
        });
        if !exited {
            panic!(
                "the supervisor did not exit within {TIMEOUT:?}\n{}",
                self.diagnostics()
            );
        }
        status.expect("exited")
    }

    /// Start the supervisor again on the same root (the previous one has exited).
    pub fn restart_supervisor(&mut self) {
        if let Some(c) = self.child.as_mut() {
            assert!(
                c.try_wait().ok().flatten().is_some(),
                "the previous supervisor is still running"
            );
        }
        self.spawn_supervisor();
        self.wait_ready();
    }

    /// Check every audit line against SPEC §6.
    pub fn assert_audit_format(&self) {
        let re = regex::Regex::new(
            r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \| [^|]+ \| [a-z_]+ \| (SUCCESS|FAILURE|SKIPPED) \| \d+ms( \| .*)?$",
        )
        .expect("regex");
        let lines = self.audit_lines();
        assert!(!lines.is_empty(), "empty audit trail");
        for l in &lines {
            assert!(
                re.is_match(l),
                "audit line not in the SPEC §6 format: {l:?}"
            );
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if child.try_wait().ok().flatten().is_none() {
                // SAFETY: our own child, not yet reaped.
                unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
                let exited =
                    poll_until(GRACEFUL_EXIT, || child.try_wait().ok().flatten().is_some());
                if !exited {
                    let _ = child.kill();
                }
            }
            let _ = child.wait();
        }
        // Whatever the state file names, too (a process the test never looked at).
        let mut procs: Vec<Proc> = self
            .seen
            .lock()
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        if let Ok(bytes) = fs::read(self.data().join("service-state.json")) {
            if let Ok(Value::Array(pairs)) = serde_json::from_slice::<Value>(&bytes) {
                for pair in pairs {
                    let r = &pair[1];
                    if let (Some(pid), Some(t)) =
                        (r["pid"].as_u64(), r["process_start_time"].as_u64())
                    {
                        procs.push(Proc {
                            pid: pid as u32,
                            start_time: t,
                        });
                    }
                }
            }
        }
        for p in procs {
            // A pid that exists with another start time was recycled: its old
            // group is empty (a group id is never reused while the group lives),
            // so there is nothing of ours to kill. A pid with no process may
            // still name a group of leftovers: kill that group.
            let ours = match stat(p.pid) {
                Some((_, t)) => t == p.start_time,
                None => true,
            };
            if ours {
                // SAFETY: plain syscalls; pid > 1 and ours, checked above.
                unsafe {
                    if p.pid > 1 {
                        libc::kill(p.pid as i32, libc::SIGKILL);
                        libc::killpg(p.pid as i32, libc::SIGKILL);
                    }
                }
            }
        }
        if std::thread::panicking() {
            if let Some(dir) = self.dir.take() {
                eprintln!("test folder kept for a look: {}", dir.keep().display());
            }
        }
    }
}

//! The harness of the integration tests: the REAL `ai-dawg-manager` binary,
//! supervising REAL demo services (`ai-dawg-manager demo-service …`) on real
//! 127.0.0.1 ports, with a config written into a temporary folder.
//!
//! - [`Setup`] and [`Service`] build `config/autonomy.json` (as JSON text, so key
//!   order is kept) and `config/commands-whitelist.json`; [`Setup::start`] runs
//!   `ai-dawg-manager start --config <tmp>/config/autonomy.json` with its stdout
//!   and stderr going to files in the folder, and waits until its control socket
//!   answers.
//! - [`Supervisor`] reads what the supervisor shows: `status --json` through the
//!   real CLI ([`Supervisor::status_json`]), records through the control socket
//!   ([`Supervisor::record`], cheap enough to poll every few ms), the audit trail,
//!   the escalation log, the state file, its stdout and stderr.
//! - Tests wait on conditions ([`wait_until`], [`Supervisor::wait_until`]) with
//!   one [`TIMEOUT`], never with fixed sleeps. The only timed windows are
//!   [`Supervisor::holds_for`], used to show that something does *not* happen;
//!   every call says why its window is long enough.
//! - Dropping a [`Supervisor`] (also when a test panics) stops the supervisor
//!   (SIGTERM, then SIGKILL) and SIGKILLs the process group of every service
//!   process the test or the state file named, so no test leaks processes. A
//!   process is identified by its pid *and* its start time (`/proc/PID/stat`
//!   field 22): pids wrap at 32768 here, and a recycled pid is never signalled.

#![allow(dead_code)] // each test binary uses part of the harness

use ai_dawg_manager::protocol::{encode_line, ControlRequest, ControlResponse};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_ai-dawg-manager");

/// The one bound on every wait. Generous: the suite runs its tests in parallel
/// on a loaded 2-core machine, where a debug build may be slow to start.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// How often a condition is looked at.
const POLL: Duration = Duration::from_millis(5);

/// How long a dropped fixture waits for the supervisor's graceful exit.
const GRACEFUL_EXIT: Duration = Duration::from_secs(10);

// ---- waiting --------------------------------------------------------------------

/// Poll `condition` every few ms until it holds; `false` if `timeout` passed first.
fn poll_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let since = Instant::now();
    loop {
        if condition() {
            return true;
        }
        if since.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// Wait until `condition` holds; panic naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, condition: impl FnMut() -> bool) {
    assert!(
        poll_until(timeout, condition),
        "timed out after {timeout:?} waiting for {what}"
    );
}

// ---- ports ----------------------------------------------------------------------

/// Ports handed out by [`free_port`]: below the kernel's ephemeral range
/// (32768–60999 here), so no outgoing connection (health checks!) takes one.
const PORT_LOW: u32 = 20_000;
const PORT_SPAN: u32 = 12_000;

/// A port on 127.0.0.1 nobody listens on. A per-process counter (seeded from
/// the pid, so test binaries and other suites on the machine start in
/// different places) never hands the same port out twice, and each candidate
/// is checked by binding it.
pub fn free_port() -> u16 {
    static SEED: OnceLock<u32> = OnceLock::new();
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = *SEED.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        std::process::id().wrapping_mul(7919) ^ nanos
    });
    for _ in 0..PORT_SPAN {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = (PORT_LOW + seed.wrapping_add(n) % PORT_SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {PORT_LOW}..{}", PORT_LOW + PORT_SPAN);
}

/// Whether something accepts connections on 127.0.0.1:`port`.
pub fn accepts(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

// ---- processes ------------------------------------------------------------------

/// A process, identified so that a recycled pid is never taken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Proc {
    pub pid: u32,
    /// `/proc/PID/stat` field 22, clock ticks since boot.
    pub start_time: u64,
}

/// `(state, start time)` of `pid` from `/proc/PID/stat`, if it exists.
fn stat(pid: u32) -> Option<(String, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    Some((fields.first()?.to_string(), fields.get(19)?.parse().ok()?))
}

impl Proc {
    /// The process that has `pid` now.
    pub fn of(pid: u32) -> Option<Proc> {
        stat(pid).map(|(_, start_time)| Proc { pid, start_time })
    }

    /// Still running: same pid, same start time, not a zombie (`Z`). A zombie
    /// has exited; it only waits for its parent to reap it.
    pub fn alive(&self) -> bool {
        matches!(stat(self.pid), Some((state, t)) if t == self.start_time && state != "Z")
    }

    pub fn signal(&self, signal: i32) {
        if self.alive() {
            // SAFETY: a plain syscall on a process we just checked is ours.
            unsafe { libc::kill(self.pid as i32, signal) };
        }
    }

    /// The process's command line, arguments joined with spaces.
    pub fn cmdline(&self) -> String {
        fs::read(format!("/proc/{}/cmdline", self.pid))
            .map(|raw| {
                raw.split(|b| *b == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    }
}

/// Every live (non-zombie) process whose command line is a demo service on `port`.
pub fn demo_instances_on(port: u16) -> Vec<Proc> {
    let wanted = format!("demo-service --port {port} ");
    let mut found = vec![];
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if let Some(p) = Proc::of(pid) {
            if p.alive() && format!("{} ", p.cmdline()).contains(&wanted) {
                found.push(p);
            }
        }
    }
    found
}

/// Run `cmd` to its end with its output captured; kill it and panic after `TIMEOUT`.
pub fn run_bounded(mut cmd: Command) -> Output {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = vec![];
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    };
    let out = reader(Box::new(child.stdout.take().expect("piped stdout")));
    let err = reader(Box::new(child.stderr.take().expect("piped stderr")));
    let mut status = None;
    let finished = poll_until(TIMEOUT, || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    if !finished {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{shown} did not finish within {TIMEOUT:?}");
    }
    Output {
        status: status.expect("finished"),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// A demo service started by the test itself, not by the supervisor: a foreign
/// holder of a port. Killed and reaped when dropped.
pub struct Foreign {
    child: Child,
    pub proc_: Proc,
}

impl Foreign {
    /// Start it on `port` and wait until it accepts connections.
    pub fn spawn(port: u16) -> Foreign {
        let child = Command::new(BIN)
            .args([
                "demo-service",
                "--port",
                &port.to_string(),
                "--name",
                "foreign",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the foreign port holder");
        let proc_ = Proc::of(child.id()).expect("foreign holder just spawned");
        let holder = Foreign { child, proc_ };
        wait_until("the foreign holder to accept", TIMEOUT, || accepts(port));
        holder
    }

    /// How it ended, once it has (it is our child: reaped here).
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Foreign {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Text of a captured stream.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ---- config -----------------------------------------------------------------------

/// Set `key` in an ordered list of JSON entries, in place if it is there.
fn put(entries: &mut Vec<(String, Value)>, key: &str, value: Value) {
    match entries.iter_mut().find(|(k, _)| k == key) {
        Some(entry) => entry.1 = value,
        None => entries.push((key.to_string(), value)),
    }
}

/// A JSON object as text, keys in the given order.
fn object(entries: &[(String, Value)], indent: usize) -> String {
    if entries.is_empty() {
        return "{}".into();
    }
    let pad = " ".repeat(indent + 2);
    let body: Vec<String> = entries
        .iter()
        .map(|(k, v)| format!("{pad}{}: {v}", Value::from(k.as_str())))
        .collect();
    format!("{{\n{}\n{}}}", body.join(",\n"), " ".repeat(indent))
}

/// One demo service of a [`Setup`]: `ai-dawg-manager demo-service --port P
/// --name NAME [args…]` with an HTTP health check on its port.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub port: u16,
    args: Vec<String>,
    /// The service's keys, in file order.
    keys: Vec<(String, Value)>,
    /// Its `monitoring` override, if any.
    monitoring: Vec<(String, Value)>,
}

impl Service {
    /// A service on a fresh port, with test-speed defaults: `start_timeout` 10 s
    /// (tests that need a start timeout set a shorter one), `stop_timeout` 2 s.
    pub fn new(name: &str) -> Service {
        let port = free_port();
        let mut s = Service {
            name: name.to_string(),
            port,
            args: vec![],
            keys: vec![],
            monitoring: vec![],
        };
        s.keys = vec![
            ("display_name".into(), json!(name)),
            ("command".into(), Value::Null), // filled in by `entries`
            ("port".into(), json!(port)),
            (
                "health_endpoint".into(),
                json!(format!("http://127.0.0.1:{port}/health")),
            ),
            ("start_timeout".into(), json!("10s")),
            ("stop_timeout".into(), json!("2s")),
        ];
        s
    }

    pub fn display(self, display_name: &str) -> Service {
        self.set("display_name", json!(display_name))
    }

    /// Fault flags of the demo service (`--crash-after-ms 300`, …).
    pub fn args<S: AsRef<str>>(mut self, args: impl IntoIterator<Item = S>) -> Service {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_string()));
        self
    }

    /// Set (or replace) a key of the service object.
    pub fn set(mut self, key: &str, value: Value) -> Service {
        put(&mut self.keys, key, value);
        self
    }

    /// Set a key of the service's own `monitoring` override.
    pub fn monitoring(mut self, key: &str, value: Value) -> Service {
        put(&mut self.monitoring, key, value);
        self
    }

    pub fn depends_on(self, deps: &[&str]) -> Service {
        self.set("depends_on", json!(deps))
    }

    /// The argv the supervisor runs.
    pub fn command(&self) -> Vec<String> {
        let mut argv: Vec<String> = vec![
            "ai-dawg-manager".into(),
            "demo-service".into(),
            "--port".into(),
            self.port.to_string(),
            "--name".into(),
            self.name.clone(),
        ];
        argv.extend(self.args.iter().cloned());
        argv
    }

    fn to_json(&self, indent: usize) -> String {
        let mut keys = self.keys.clone();
        if let Some(entry) = keys.iter_mut().find(|(k, v)| k == "command" && v.is_null()) {
            entry.1 = json!(self.command());
        }
        let mut text = object(&keys, indent);
        if !self.monitoring.is_empty() {
            // Insert the override as the last key (the object ends with "\n<indent>}").
            let tail = format!("\n{}}}", " ".repeat(indent));
            text.truncate(text.len() - tail.len());
            text.push_str(&format!(
                ",\n{}\"monitoring\": {}{tail}",
                " ".repeat(indent + 2),
                object(&self.monitoring, indent + 2)
            ));
        }
        text
    }
}

/// A temporary root with `config/` to be written, and the supervisor to run on it.
pub struct Setup {
    dir: tempfile::TempDir,
    enabled: Option<bool>,
    services: Vec<Service>,
    monitoring: Vec<(String, Value)>,
    safety: Vec<(String, Value)>,
    /// `None`: no whitelist file at all.
    whitelist: Option<String>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup::new()
    }
}

impl Setup {
    /// Test-speed defaults: checks every 100 ms bounded by 300 ms, 3 restarts,
    /// a 1 s cooldown, stable after 60 s (no test lasts that long, so budgets
    /// never come back by themselves), 5 failures escalate, port holders killed.
    pub fn new() -> Setup {
        let dir = tempfile::Builder::new()
            .prefix("adm-itest-")
            .tempdir()
            .expect("temp dir");
        Setup {
            dir,
            enabled: None,
            services: vec![],
            monitoring: vec![
                ("health_check_interval".into(), json!("100ms")),
                ("health_check_timeout".into(), json!("300ms")),
                ("max_restart_attempts".into(), json!(3)),
                ("restart_cooldown".into(), json!("1s")),
                ("stable_after".into(), json!("60s")),
            ],
            safety: vec![
                ("emergency_kill_switch".into(), json!(false)),
                (
                    "max_consecutive_failures_before_escalation".into(),
                    json!(5),
                ),
                ("kill_port_conflicts".into(), json!(true)),
            ],
            whitelist: Some(r#"{"commands": ["ai-dawg-manager"]}"#.into()),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A path in the temporary root, for fault flags and pid files.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn service(mut self, s: Service) -> Setup {
        self.services.push(s);
        self
    }

    pub fn monitoring(mut self, key: &str, value: Value) -> Setup {
        put(&mut self.monitoring, key, value);
        self
    }

    pub fn safety(mut self, key: &str, value: Value) -> Setup {
        put(&mut self.safety, key, value);
        self
    }

    pub fn enabled(mut self, on: bool) -> Setup {
        self.enabled = Some(on);
        self
    }

    /// The whitelist's text, or `None` for no whitelist file.
    pub fn whitelist(mut self, text: Option<&str>) -> Setup {
        self.whitelist = text.map(str::to_string);
        self
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config").join("autonomy.json")
    }

    /// `config/autonomy.json` as text, keys in the order they were given.
    pub fn config_text(&self) -> String {
        let services: Vec<String> = self
            .services
            .iter()
            .map(|s| format!("      {}: {}", Value::from(s.name.as_str()), s.to_json(6)))
            .collect();
        let mut text = String::from("{\n");
        if let Some(on) = self.enabled {
            text.push_str(&format!("  \"enabled\": {on},\n"));
        }
        text.push_str(&format!(
            "  \"ai_dawg\": {{\n    \"services\": {{\n{}\n    }}\n  }},\n",
            services.join(",\n")
        ));
        text.push_str(&format!(
            "  \"monitoring\": {},\n",
            object(&self.monitoring, 2)
        ));
        text.push_str(&format!("  \"safety\": {}\n}}\n", object(&self.safety, 2)));
        text
    }

    /// Write `config/autonomy.json` (with `text`) and the whitelist.
    pub fn write_config(&self, text: &str) {
        let folder = self.dir.path().join("config");
        fs::create_dir_all(&folder).expect("config folder");
        fs::write(folder.join("autonomy.json"), text).expect("write config");
        if let Some(w) = &self.whitelist {
            fs::write(folder.join("commands-whitelist.json"), w).expect("write whitelist");
        }
    }

    /// Run `ai-dawg-manager start` on a config that must be refused (or that
    /// disables the manager): it has to finish on its own.
    pub fn run_start(&self, config_text: &str) -> Output {
        self.write_config(config_text);
        let mut cmd = Command::new(BIN);
        cmd.arg("start")
            .arg("--config")
            .arg(self.config_path())
            .current_dir(self.root());
        run_bounded(cmd)
    }

    /// Write the config, start the supervisor and wait until it answers.
    pub fn start(self) -> Supervisor {
        let mut sup = self.spawn();
        sup.wait_ready();
        sup
    }

    /// Write the config and start the supervisor without waiting for it.
    pub fn spawn(self) -> Supervisor {
        self.write_config(&self.config_text());
        let mut sup = Supervisor {
            root: self.dir.path().to_path_buf(),
            config: self.config_path(),
            ports: self
                .services
                .iter()
                .map(|s| (s.name.clone(), s.port))
                .collect(),
            dir: Some(self.dir),
            child: None,
            seen: Mutex::new(HashSet::new()),
        };
        sup.spawn_supervisor();
        sup
    }
}

// ---- the running supervisor -------------------------------------------------------

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

/// The supervisor running on a [`Setup`]'s root.
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

/// The exit signal of a status, if it was killed by one.
pub fn signal_of(status: &ExitStatus) -> Option<i32> {
    status.signal()
}

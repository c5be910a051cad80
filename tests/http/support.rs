//! The harness of `tests/http.rs`: the REAL `ai-dawg-manager` binary with its
//! `http` listener on, supervising real demo services on 127.0.0.1, a tiny
//! blocking HTTP/1.1 client (with chunked decoding for the event stream), a
//! local webhook receiver, and a strict checker of the Prometheus text format.
//!
//! Tests wait on conditions ([`wait_until`]) with one [`TIMEOUT`], never with
//! fixed sleeps. Dropping a [`Supervisor`] (also when a test panics) stops the
//! supervisor (SIGTERM, then SIGKILL) and SIGKILLs the process group of every
//! service the state file names, so no test leaks processes.

#![allow(dead_code)]

use serde_json::{json, Value};
use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_ai-dawg-manager");

/// The one bound on every wait: generous, the suite runs in parallel on 2 cores.
pub const TIMEOUT: Duration = Duration::from_secs(20);

const POLL: Duration = Duration::from_millis(5);

/// Wait until `condition` holds; panic naming `what` after `timeout`.
#[track_caller]
pub fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let since = Instant::now();
    while !condition() {
        assert!(
            since.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(POLL);
    }
}

// ---- ports ------------------------------------------------------------------------

/// A port nobody listens on, below the ephemeral range (32768+) so no outgoing
/// connection takes it, from a range of its own for this test binary.
pub fn free_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ = NEXT.compare_exchange(
        0,
        24_000 + (std::process::id() % 2_000) as u16 * 2,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    loop {
        let p = NEXT.fetch_add(1, Ordering::SeqCst);
        let p = if p >= 28_000 { 24_000 + p % 4_000 } else { p };
        if TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

// ---- the supervisor ------------------------------------------------------------------

/// A demo service on `port` (command, port, health endpoint), with `extra` args.
pub fn demo(name: &str, port: u16, extra: &[&str]) -> Value {
    let mut command = vec![
        "ai-dawg-manager".to_string(),
        "demo-service".into(),
        "--port".into(),
        port.to_string(),
        "--name".into(),
        name.into(),
    ];
    command.extend(extra.iter().map(|s| s.to_string()));
    json!({
        "command": command,
        "port": port,
        "health_endpoint": format!("http://127.0.0.1:{port}/health"),
        "stop_timeout": "2s",
    })
}

/// Sub-second monitoring for tests.
pub fn fast_monitoring() -> Value {
    json!({
        "health_check_interval_seconds": 0.2,
        "health_check_timeout_seconds": 0.5,
        "max_restart_attempts": 5,
        "restart_cooldown_seconds": 0.1,
        "stable_after_seconds": 60,
    })
}

/// A temporary root with `config/autonomy.json` and the whitelist.
pub struct Setup {
    pub dir: tempfile::TempDir,
}

impl Setup {
    /// `config` is the whole autonomy.json; the whitelist allows `ai-dawg-manager`.
    pub fn new(config: &Value) -> Setup {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::create_dir(dir.path().join("config")).expect("config dir");
        fs::write(
            dir.path().join("config/autonomy.json"),
            serde_json::to_string_pretty(config).expect("json"),
        )
        .expect("write config");
        fs::write(
            dir.path().join("config/commands-whitelist.json"),
            r#"{"commands": ["ai-dawg-manager"]}"#,
        )
        .expect("write whitelist");
        Setup { dir }
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config/autonomy.json")
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A client command (`status`, `events`, ...) on this setup.
    pub fn cli(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--config").arg(self.config_path()).args(args);
        c.env_remove("AI_DAWG_CONFIG").env("NO_COLOR", "1");
        c
    }

    /// Run `start` and wait until `http_port` answers.
    pub fn start(self, http_port: u16) -> Supervisor {
        let out = fs::File::create(self.dir.path().join("supervisor.out")).expect("out");
        let err = fs::File::create(self.dir.path().join("supervisor.err")).expect("err");
        let child = self
            .cli(&["start"])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn the supervisor");
        let mut s = Supervisor {
            setup: self,
            child,
            port: http_port,
        };
        let since = Instant::now();
        loop {
            if TcpStream::connect(("127.0.0.1", http_port)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = s.child.try_wait() {
                panic!("the supervisor exited ({status}):\n{}", s.stderr());
            }
            assert!(
                since.elapsed() < TIMEOUT,
                "the supervisor's http port {http_port} never answered:\n{}",
                s.stderr()
            );
            std::thread::sleep(POLL);
        }
        s
    }
}

/// A running supervisor; dropping it stops it and everything it started.
pub struct Supervisor {
    pub setup: Setup,
    pub child: Child,
    pub port: u16,
}

impl Supervisor {
    pub fn get(&self, path: &str) -> Reply {
        request(self.port, "GET", path, &[], None)
    }

    pub fn post(&self, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Reply {
        request(self.port, "POST", path, headers, body)
    }

    pub fn record(&self, service: &str) -> Value {
        let r = self.get(&format!("/api/v1/services/{service}"));
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    }

    pub fn status_of(&self, service: &str) -> String {
        self.record(service)["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Wait until `service` is running; its pid.
    pub fn running(&self, service: &str) -> u32 {
        let mut pid = 0;
        wait_until(&format!("{service} running"), TIMEOUT, || {
            let r = self.record(service);
            pid = r["pid"].as_u64().unwrap_or(0) as u32;
            r["status"] == "running" && pid != 0
        });
        pid
    }

    pub fn audit(&self) -> String {
        fs::read_to_string(self.setup.data().join("audit.log")).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(self.setup.dir.path().join("supervisor.err")).unwrap_or_default()
    }

    /// SIGKILL the supervisor (its services live on, to be adopted) and give
    /// back its folder, to start another supervisor on it.
    pub fn crash(mut self) -> Setup {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = std::mem::replace(&mut self.setup.dir, tempfile::tempdir().expect("temp dir"));
        Setup { dir }
    }

    /// Every pid the state file names.
    fn service_pids(&self) -> Vec<i32> {
        let text =
            fs::read_to_string(self.setup.data().join("service-state.json")).unwrap_or_default();
        let Ok(Value::Array(pairs)) = serde_json::from_str::<Value>(&text) else {
            return vec![];
        };
        pairs
            .iter()
            .filter_map(|p| p.get(1)?.get("pid")?.as_i64())
            .map(|p| p as i32)
            .collect()
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        let pids = self.service_pids();
        let me = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(me, nix::sys::signal::Signal::SIGTERM);
        let since = Instant::now();
        while since.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(POLL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Whatever a killed supervisor left behind.
        for pid in pids.into_iter().chain(self.service_pids()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// SIGKILL one process (a service's main process, as `kill -9` would).
pub fn kill9(pid: u32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9");
}

// ---- a tiny HTTP/1.1 client ------------------------------------------------------------

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// Lowercase names.
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Reply {
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The `error.code` of a JSON error answer.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// Write the request head (and body); `Host: 127.0.0.1:PORT` unless given.
fn send_head(
    stream: &mut TcpStream,
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) {
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.map_or(0, str::len)
    ));
    stream.write_all(head.as_bytes()).expect("send head");
    if let Some(b) = body {
        stream.write_all(b.as_bytes()).expect("send body");
    }
}

/// A response head: the status and the headers.
fn read_head(reader: &mut impl BufRead) -> (u16, HashMap<String, String>) {
    let (status_line, headers) = read_lines(reader);
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    (status, headers)
}

/// The first line of a head and its headers (lowercase names).
fn read_lines(reader: &mut impl BufRead) -> (String, HashMap<String, String>) {
    let mut first = String::new();
    reader.read_line(&mut first).expect("first line");
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("header line");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    (first, headers)
}

/// One request on a fresh connection; the whole answer.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    send_head(&mut stream, port, method, path, headers, body);
    let mut reader = BufReader::new(stream);
    let (status, headers) = read_head(&mut reader);
    let mut raw = vec![];
    if headers.get("transfer-encoding").map(String::as_str) == Some("chunked") {
        let mut chunks = Chunked { reader };
        while let Some(c) = chunks.next_chunk() {
            raw.extend(c);
        }
    } else {
        reader.read_to_end(&mut raw).expect("body");
    }
    Reply {
        status,
        headers,
        body: String::from_utf8(raw).expect("utf-8 body"),
    }
}

struct Chunked<R> {
    reader: R,
}

impl<R: BufRead> Chunked<R> {
    /// The next chunk; `None` at the end (or when the connection drops).
    fn next_chunk(&mut self) -> Option<Vec<u8>> {
        let mut size = String::new();
        if self.reader.read_line(&mut size).ok()? == 0 {
            return None;
        }
        let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
        if n == 0 {
            return None;
        }
        let mut data = vec![0; n + 2];
        self.reader.read_exact(&mut data).ok()?;
        data.truncate(n);
        Some(data)
    }
}

/// An open `GET /api/v1/events` stream.
pub struct EventStream {
    chunks: Chunked<BufReader<TcpStream>>,
    buf: String,
    pub status: u16,
}

/// One server-sent event.
#[derive(Debug, Clone)]
pub struct Sse {
    pub event: String,
    pub data: Value,
}

impl EventStream {
    pub fn open(port: u16, path: &str) -> EventStream {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        send_head(&mut stream, port, "GET", path, &[], None);
        let mut reader = BufReader::new(stream);
        let (status, _) = read_head(&mut reader);
        EventStream {
            chunks: Chunked { reader },
            buf: String::new(),
            status,
        }
    }

    /// The next event (comments skipped), waiting at most `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Option<Sse> {
        let deadline = Instant::now() + timeout;
        loop {
            while let Some(cut) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..cut + 2).collect();
                let mut event = "message".to_string();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        event = v.to_string();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if !data.is_empty() {
                    let data = serde_json::from_str(&data).expect("event data is JSON");
                    return Some(Sse { event, data });
                }
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            self.chunks
                .reader
                .get_ref()
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .ok()?;
            let chunk = self.chunks.next_chunk()?;
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

// ---- a webhook receiver -----------------------------------------------------------------

/// A local HTTP server that answers each POST with the next status of its
/// script (200 once the script is used up) and keeps the JSON bodies.
pub struct Receiver {
    pub port: u16,
    pub bodies: Arc<Mutex<Vec<(u16, Value)>>>,
}

impl Receiver {
    pub fn start(script: Vec<u16>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let port = listener.local_addr().expect("addr").port();
        let bodies: Arc<Mutex<Vec<(u16, Value)>>> = Arc::default();
        let kept = bodies.clone();
        std::thread::spawn(move || {
            let mut script = script.into_iter();
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(stream);
                let (_, headers) = read_lines(&mut reader);
                let n: usize = headers
                    .get("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; n];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let status = script.next().unwrap_or(200);
                let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                kept.lock().expect("lock").push((status, value));
                let mut stream = reader.into_inner();
                let _ = stream.write_all(
                    format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                    .as_bytes(),
                );
            }
        });
        Receiver { port, bodies }
    }

    pub fn received(&self) -> Vec<(u16, Value)> {
        self.bodies.lock().expect("lock").clone()
    }
}

// ---- the Prometheus text format, strictly -------------------------------------------------

/// One sample: its name, labels and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| format!("bad value {s:?}")),
    }
}

/// `{k="v",...}` from the start of `s`; the labels and the rest.
type Labels = Vec<(String, String)>;

fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let mut labels = vec![];
    let mut rest = s.strip_prefix('{').ok_or("labels must start with {")?;
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let key = &rest[..eq];
        if !is_name(key) || key.contains(':') {
            return Err(format!("bad label name {key:?}"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value must be quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some((_, '\n')) => return Err("newline in a label value".into()),
                Some((_, c)) => value.push(c),
            }
        };
        if labels.iter().any(|(k, _)| k == key) {
            return Err(format!("label {key} given twice"));
        }
        labels.push((key.to_string(), value));
        rest = &rest[end + 1..];
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else if !rest.starts_with('}') {
            return Err("labels must be separated by ,".into());
        }
    }
}

/// Check `text` against the Prometheus text format 0.0.4, strictly: every line
/// is a `# HELP`, a `# TYPE` or a sample; a family's TYPE comes once, before
/// its samples; samples belong to the family declared last (histograms:
/// `_bucket` with `le`, `_sum`, `_count`); no series twice; counters are not
/// negative; histogram buckets are cumulative and end with `+Inf` = `_count`.
pub fn check_exposition(text: &str) -> Result<Vec<Sample>, String> {
    if !text.ends_with('\n') {
        return Err("the text must end with a newline".into());
    }
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helps: HashMap<String, ()> = HashMap::new();
    let mut current: Option<(String, String)> = None;
    let mut samples: Vec<Sample> = vec![];
    let mut seen = std::collections::HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or("");
            if !is_name(name) || helps.insert(name.to_string(), ()).is_some() {
                return Err(at("bad or repeated HELP".into()));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let (name, kind) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            if !is_name(name)
                || parts.next().is_some()
                || !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind)
            {
                return Err(at("bad TYPE".into()));
            }
            if types.insert(name.to_string(), kind.to_string()).is_some() {
                return Err(at("TYPE given twice".into()));
            }
            current = Some((name.to_string(), kind.to_string()));
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            return Err(at("unexpected comment or blank line".into()));
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| at("no value".into()))?;
        let name = &line[..name_end];
        if !is_name(name) {
            return Err(at(format!("bad metric name {name:?}")));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(at)?
        } else {
            (vec![], &line[name_end..])
        };
        let mut fields = rest
            .strip_prefix(' ')
            .ok_or_else(|| at("no space before the value".into()))?
            .split(' ');
        let value = parse_value(fields.next().unwrap_or("")).map_err(at)?;
        if let Some(ts) = fields.next() {
            ts.parse::<i64>().map_err(|_| at("bad timestamp".into()))?;
        }
        if fields.next().is_some() {
            return Err(at("trailing fields".into()));
        }
        let Some((family, kind)) = &current else {
            return Err(at("sample before any TYPE".into()));
        };
        let belongs = match kind.as_str() {
            "histogram" => [
                format!("{family}_bucket"),
                format!("{family}_sum"),
                format!("{family}_count"),
            ]
            .contains(&name.to_string()),
            _ => name == family,
        };
        if !belongs {
            return Err(at(format!("sample outside its family {family}")));
        }
        if kind == "counter" && (value.is_nan() || value < 0.0) {
            return Err(at("negative counter".into()));
        }
        if name.ends_with("_bucket") && !labels.iter().any(|(k, _)| k == "le") {
            return Err(at("bucket without le".into()));
        }
        let mut key = labels.clone();
        key.sort();
        if !seen.insert((name.to_string(), format!("{key:?}"))) {
            return Err(at("series given twice".into()));
        }
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    // Histograms: cumulative buckets, +Inf equal to _count.
    for (family, kind) in &types {
        if kind != "histogram" {
            continue;
        }
        let mut series: HashMap<String, Vec<(f64, f64)>> = HashMap::new();
        for s in samples
            .iter()
            .filter(|s| s.name == format!("{family}_bucket"))
        {
            let mut rest: Vec<_> = s
                .labels
                .iter()
                .filter(|(k, _)| k != "le")
                .cloned()
                .collect();
            rest.sort();
            let le =
                parse_value(s.label("le").unwrap_or("")).map_err(|e| format!("{family}: {e}"))?;
            series
                .entry(format!("{rest:?}"))
                .or_default()
                .push((le, s.value));
        }
        for (labels, mut buckets) in series {
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            if buckets.windows(2).any(|w| w[1].1 < w[0].1) {
                return Err(format!("{family}{labels}: buckets are not cumulative"));
            }
            let Some(&(le, inf)) = buckets.last() else {
                continue;
            };
            if le != f64::INFINITY {
                return Err(format!("{family}{labels}: no +Inf bucket"));
            }
            let count = samples
                .iter()
                .find(|s| {
                    let mut l = s.labels.clone();
                    l.sort();
                    s.name == format!("{family}_count") && format!("{l:?}") == labels
                })
                .map(|s| s.value);
            if count != Some(inf) {
                return Err(format!(
                    "{family}{labels}: +Inf bucket {inf} != count {count:?}"
                ));
            }
        }
    }
    Ok(samples)
}

/// The value of the sample `name` whose labels include all of `labels`.
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
        .map(|s| s.value)
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

//! The demo service: a tiny HTTP server that stands in for an AI model server.
//!
//! The shipped config runs it as `ai-dawg-manager demo-service --port 8001 --name
//! producer`, and the integration tests run it with fault switches (slow start, crash,
//! ignored SIGTERM, a lingering grandchild, failing or hanging health checks, chatty
//! logs). It lives in `examples/` because it is sample code, not part of the
//! supervisor, but it is compiled *into* the library (`#[path]` in `lib.rs`, with
//! `autoexamples = false` in `Cargo.toml`) and reached through a hidden subcommand, so
//! `cargo run --release -- start` on a fresh clone needs no second build step and no
//! python.
//!
//! It uses std threads and a blocking `TcpListener` only: it binds within about a
//! millisecond of exec (it also benchmarks restart latency), keeps one short-lived
//! thread per connection, and never panics on what a client sends.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{self, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Exit code when the port cannot be bound (like `EADDRINUSE`, 98 on Linux).
pub const BIND_FAILED_EXIT_CODE: i32 = 98;

/// Largest request head read; a longer one is bad input and the connection is closed.
const MAX_HEAD_BYTES: usize = 8 * 1024;
/// How long a client may take to send its request head, or to read the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a held health answer looks at the hang flag again.
const HANG_POLL: Duration = Duration::from_millis(10);
/// A held health answer is released after this long even if the hang flag stays.
const HANG_CAP: Duration = Duration::from_secs(120);
/// Connections served at once; more are closed at once (hung health checks pile up).
const MAX_CONNECTIONS: usize = 256;
/// Stack of a connection thread: the handler needs a few KB, not the default 2 MB.
const CONNECTION_STACK: usize = 64 * 1024;

/// Run the demo HTTP service: a stand-in for an AI model server, with fault switches
/// for tests.
#[derive(clap::Args, Debug, Clone)]
pub struct DemoOptions {
    /// TCP port to listen on
    #[arg(long)]
    pub port: u16,
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Name shown in output lines and in the /health body
    #[arg(long, default_value = "demo")]
    pub name: String,
    /// Sleep this many ms before binding the port (a slow start)
    #[arg(long, value_name = "MS")]
    pub start_delay_ms: Option<u64>,
    /// Exit with --exit-code this many ms after binding (a crash)
    #[arg(long, value_name = "MS")]
    pub crash_after_ms: Option<u64>,
    /// Exit code used by --crash-after-ms
    #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
    pub exit_code: i32,
    /// Ignore SIGTERM, so only SIGKILL stops it
    #[arg(long)]
    pub ignore_sigterm: bool,
    /// Start a `sleep 3600` child in the same process group and leave it running
    #[arg(long)]
    pub spawn_grandchild: bool,
    /// Write the pid of the --spawn-grandchild child to this file
    #[arg(long, value_name = "PATH")]
    pub grandchild_pid_file: Option<PathBuf>,
    /// While this file exists, GET /health answers 503
    #[arg(long, value_name = "PATH")]
    pub fail_flag: Option<PathBuf>,
    /// While this file exists, GET /health holds its answer (at most 120 s)
    #[arg(long, value_name = "PATH")]
    pub hang_flag: Option<PathBuf>,
    /// Print this line to stdout at start (repeatable)
    #[arg(long = "print", value_name = "LINE")]
    pub print: Vec<String>,
    /// Print "<name> tick <n>" every this many ms
    #[arg(long, value_name = "MS")]
    pub print_every_ms: Option<u64>,
    /// Write this process's pid to this file at start
    #[arg(long, value_name = "PATH")]
    pub pid_file: Option<PathBuf>,
}

/// Runs the demo service until it is killed or a fault switch ends the process.
///
/// Order: ignore SIGTERM, write the pid file, print the `--print` lines, sleep the
/// start delay, bind (exiting with code 98 if that fails), print the listening line,
/// start the grandchild, the crash timer and the ticker, then serve forever.
pub fn run(opts: DemoOptions) -> io::Result<()> {
    prepare(&opts)?;
    let listener = match TcpListener::bind((opts.host.as_str(), opts.port)) {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!(
                "demo {}: cannot listen on {}:{}: {err}",
                opts.name, opts.host, opts.port
            );
            process::exit(BIND_FAILED_EXIT_CODE);
        }
    };
    serve(listener, &opts)
}

/// Everything `run` does before binding.
fn prepare(opts: &DemoOptions) -> io::Result<()> {
    if opts.ignore_sigterm {
        use nix::sys::signal::{signal, SigHandler, Signal};
        // SAFETY: installs SIG_IGN, no handler code runs.
        unsafe { signal(Signal::SIGTERM, SigHandler::SigIgn) }.map_err(io::Error::from)?;
    }
    if let Some(path) = &opts.pid_file {
        write_atomically(path, &format!("{}\n", process::id()))?;
    }
    for line in &opts.print {
        say(line);
    }
    if let Some(ms) = opts.start_delay_ms {
        thread::sleep(Duration::from_millis(ms));
    }
    Ok(())
}

/// Everything `run` does after binding: announce, start the fault switches, serve.
fn serve(listener: TcpListener, opts: &DemoOptions) -> io::Result<()> {
    let port = listener.local_addr().map_or(opts.port, |addr| addr.port());
    say(&format!(
        "demo {} listening on {}:{} (pid {})",
        opts.name,
        opts.host,
        port,
        process::id()
    ));
    if opts.ignore_sigterm {
        say(&format!("demo {} ignores SIGTERM", opts.name));
    }
    if opts.spawn_grandchild {
        spawn_grandchild(opts)?;
    }
    if let Some(ms) = opts.crash_after_ms {
        let (name, code) = (opts.name.clone(), opts.exit_code);
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(ms));
            say(&format!("demo {name} crashing with exit code {code}"));
            process::exit(code);
        });
    }
    if let Some(ms) = opts.print_every_ms {
        let name = opts.name.clone();
        thread::spawn(move || {
            for n in 1u64.. {
                thread::sleep(Duration::from_millis(ms.max(1)));
                say(&format!("{name} tick {n}"));
            }
        });
    }
    accept_loop(listener, Arc::new(Flags::from(opts)))
}

/// Starts `sleep 3600` and leaves it running: it stays in our process group, so only a
/// stop that signals the whole group ends it. A background thread reaps it if it dies
/// first, so a killed grandchild does not linger as a zombie while we live.
fn spawn_grandchild(opts: &DemoOptions) -> io::Result<()> {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new("sleep");
    command
        .arg("3600")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: signal() is async-signal-safe. The child gets the default SIGTERM action
    // back, so --ignore-sigterm applies to this process only.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|err| {
        eprintln!("demo {}: cannot start grandchild: {err}", opts.name);
        err
    })?;
    say(&format!(
        "demo {} started grandchild (pid {})",
        opts.name,
        child.id()
    ));
    if let Some(path) = &opts.grandchild_pid_file {
        write_atomically(path, &format!("{}\n", child.id()))?;
    }
    thread::Builder::new()
        .stack_size(CONNECTION_STACK)
        .spawn(move || child.wait())?;
    Ok(())
}

/// What a connection handler needs to know.
struct Flags {
    /// Name put in the /health body.
    name: String,
    /// While this file exists, /health answers 503.
    fail: Option<PathBuf>,
    /// While this file exists, /health holds its answer.
    hang: Option<PathBuf>,
}

impl From<&DemoOptions> for Flags {
    fn from(opts: &DemoOptions) -> Self {
        Flags {
            name: opts.name.clone(),
            fail: opts.fail_flag.clone(),
            hang: opts.hang_flag.clone(),
        }
    }
}

/// Accepts forever, one thread per connection; errors end one connection, never the loop.
fn accept_loop(listener: TcpListener, flags: Arc<Flags>) -> io::Result<()> {
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(err) => {
                // EMFILE and friends: back off a little rather than spin.
                eprintln!("demo {}: accept failed: {err}", flags.name);
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if open.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            open.fetch_sub(1, Ordering::SeqCst);
            continue; // dropping the stream closes it
        }
        let (flags, open_in_thread) = (Arc::clone(&flags), Arc::clone(&open));
        let spawned = thread::Builder::new()
            .stack_size(CONNECTION_STACK)
            .spawn(move || {
                let _ = handle(stream, &flags);
                open_in_thread.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            open.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Serves one request and closes the connection.
fn handle(mut stream: TcpStream, flags: &Flags) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let Some(head) = read_head(&mut stream)? else {
        return Ok(()); // bad or incomplete request: just close
    };
    let Some((method, path)) = parse_request_line(&head) else {
        return Ok(());
    };
    let (status, content_type, body) = match (method, path) {
        ("GET", "/health") => health(flags),
        ("GET", "/") => (
            "200 OK",
            "text/plain; charset=utf-8",
            format!("demo service {}\n", flags.name),
        ),
        _ => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found\n".into(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes())?;
    linger_close(stream);
    Ok(())
}

/// The /health answer, after waiting out the hang flag.
fn health(flags: &Flags) -> (&'static str, &'static str, String) {
    if let Some(hang) = &flags.hang {
        let since = Instant::now();
        while hang.exists() && since.elapsed() < HANG_CAP {
            thread::sleep(HANG_POLL);
        }
    }
    let failing = flags.fail.as_deref().is_some_and(Path::exists);
    let (status, word) = if failing {
        ("503 Service Unavailable", "failing")
    } else {
        ("200 OK", "ok")
    };
    let body = format!(
        "{{\"status\":\"{word}\",\"name\":\"{}\"}}",
        json_escape(&flags.name)
    );
    (status, "application/json", body)
}

/// Reads up to the blank line ending the request head. `None` on EOF, an oversized head
/// or a timeout; the body, if any, is ignored.
fn read_head(stream: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Ok(None),
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Ok(None),
        };
        head.extend_from_slice(&chunk[..n]);
        if let Some(end) = find_head_end(&head) {
            head.truncate(end);
            return Ok(Some(head));
        }
        if head.len() > MAX_HEAD_BYTES {
            return Ok(None);
        }
    }
}

/// Where the head ends: the first `\r\n\r\n` (or bare `\n\n`).
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = buf.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `GET /health?x=1 HTTP/1.1` → `("GET", "/health")`; `None` unless it looks like HTTP.
fn parse_request_line(head: &[u8]) -> Option<(&str, &str)> {
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let line = std::str::from_utf8(&head[..line_end]).ok()?.trim_end();
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || method.is_empty() || !version.starts_with("HTTP/") {
        return None;
    }
    let path = target.split(['?', '#']).next().unwrap_or(target);
    Some((method, path))
}

/// Closes after answering without losing the answer: a close with unread input sends a
/// reset, which can beat the response to the client. So half-close, then drain briefly.
fn linger_close(mut stream: TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 1024];
    let mut drained = 0;
    while drained < 64 * 1024 {
        match stream.read(&mut sink) {
            Ok(n) if n > 0 => drained += n,
            _ => break,
        }
    }
}

/// Escapes a string for use inside JSON quotes.
fn json_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Prints one line to stdout and flushes (stdout is a log file). Errors are ignored: a
/// full disk or closed stdout must not stop the service.
fn say(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Writes `PATH.tmp`, then renames it to `PATH`, so a reader never sees a partial file.
fn write_atomically(path: &Path, contents: &str) -> io::Result<()> {
    let mut tmp = OsString::from(path.as_os_str());
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    fs::write(&tmp, contents)?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// How long a test waits for a condition before failing.
    const TIMEOUT: Duration = Duration::from_secs(10);

    fn options(port: u16) -> DemoOptions {
        DemoOptions {
            port,
            host: "127.0.0.1".into(),
            name: "tester".into(),
            start_delay_ms: None,
            crash_after_ms: None,
            exit_code: 3,
            ignore_sigterm: false,
            spawn_grandchild: false,
            grandchild_pid_file: None,
            fail_flag: None,
            hang_flag: None,
            print: Vec::new(),
            print_every_ms: None,
            pid_file: None,
        }
    }

    fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
        let since = Instant::now();
        while !condition() {
            assert!(since.elapsed() < TIMEOUT, "timed out waiting for {what}");
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Runs the service on a thread, on a port the OS picked, the way `run` does but
    /// without the exit on a bind failure. Returns the port once it accepts.
    fn start(configure: impl FnOnce(&mut DemoOptions)) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut opts = options(port);
        configure(&mut opts);
        thread::spawn(move || {
            prepare(&opts).unwrap();
            serve(listener, &opts)
        });
        port
    }

    /// Sends raw bytes, returns (status code, whole response text).
    fn send(port: u16, request: &[u8]) -> (u16, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.write_all(request).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let code = response
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status in {response:?}"));
        (code, response)
    }

    fn get(port: u16, path: &str) -> (u16, String) {
        send(
            port,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        )
    }

    #[test]
    fn health_answers_200_through_run() {
        // `run` binds itself, so pick a free port first.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        thread::spawn(move || run(options(port)));
        wait_until("the service to accept", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        let (code, response) = get(port, "/health");
        assert_eq!(code, 200);
        assert!(response.contains("Content-Type: application/json\r\n"));
        assert!(response.contains("Connection: close\r\n"));
        let body = r#"{"status":"ok","name":"tester"}"#;
        assert!(response.contains(&format!("Content-Length: {}\r\n", body.len())));
        assert!(response.ends_with(&format!("\r\n\r\n{body}")), "{response}");
    }

    #[test]
    fn routes_root_and_unknown_paths() {
        let port = start(|_| {});
        assert_eq!(get(port, "/").0, 200);
        assert_eq!(get(port, "/health?probe=1").0, 200);
        assert_eq!(get(port, "/nope").0, 404);
        assert_eq!(get(port, "/health/x").0, 404);
        assert_eq!(
            send(
                port,
                b"POST /health HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
            )
            .0,
            404
        );
        assert_eq!(send(port, b"GET /health HTTP/1.0\n\n").0, 200);
    }

    #[test]
    fn fail_flag_turns_health_to_503_while_it_exists() {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("fail");
        let port = start(|o| o.fail_flag = Some(flag.clone()));
        assert_eq!(get(port, "/health").0, 200);
        fs::write(&flag, "").unwrap();
        let (code, response) = get(port, "/health");
        assert_eq!(code, 503);
        assert!(response.ends_with(r#"{"status":"failing","name":"tester"}"#));
        assert_eq!(get(port, "/").0, 200, "only /health fails");
        fs::remove_file(&flag).unwrap();
        assert_eq!(get(port, "/health").0, 200);
    }

    #[test]
    fn hang_flag_holds_health_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("hang");
        fs::write(&flag, "").unwrap();
        let port = start(|o| o.hang_flag = Some(flag.clone()));
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || tx.send(get(port, "/health").0));
        assert!(
            rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "answered while the hang flag exists"
        );
        assert_eq!(get(port, "/").0, 200, "other paths do not hang");
        fs::remove_file(&flag).unwrap();
        assert_eq!(rx.recv_timeout(TIMEOUT), Ok(200));
    }

    #[test]
    fn bad_input_does_not_stop_the_server() {
        let port = start(|_| {});
        let garbage: [&[u8]; 6] = [
            b"\x00\xff\xfe garbage\r\n\r\n",
            b"GET\r\n\r\n",
            b"GET /health HTTP/1.1 extra\r\n\r\n",
            b"\xc3\x28 /health HTTP/1.1\r\n\r\n",
            &[b'A'; 20_000],
            b"GET /health HTT",
        ];
        for bytes in garbage {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
            stream.set_read_timeout(Some(TIMEOUT)).unwrap();
            let _ = stream.write_all(bytes);
            let _ = stream.shutdown(Shutdown::Write);
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
            assert!(
                answer.is_empty(),
                "answered {:?}",
                String::from_utf8_lossy(&answer)
            );
        }
        // A silent client and one that connects and leaves do not block anyone.
        let _silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
        drop(TcpStream::connect(("127.0.0.1", port)).unwrap());
        assert_eq!(get(port, "/health").0, 200);
    }

    #[test]
    fn pid_file_is_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("demo.pid");
        let mut opts = options(0);
        opts.pid_file = Some(pid_file.clone());
        opts.print = vec!["hello from a test".into()];
        prepare(&opts).unwrap();
        let pid = fs::read_to_string(&pid_file).unwrap();
        assert_eq!(pid.trim(), process::id().to_string());
        assert!(!dir.path().join("demo.pid.tmp").exists());
    }

    #[test]
    fn grandchild_shares_our_group_and_is_reaped_when_killed() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("grandchild.pid");
        let mut opts = options(0);
        opts.grandchild_pid_file = Some(pid_file.clone());
        spawn_grandchild(&opts).unwrap();
        let pid: i32 = fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // SAFETY: plain syscalls on a pid we just started.
        unsafe {
            assert_eq!(libc::getpgid(pid), libc::getpgid(0));
            assert_eq!(libc::kill(pid, libc::SIGTERM), 0);
        }
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        wait_until("the killed grandchild to be reaped", || !proc_dir.exists());
    }

    #[test]
    fn request_line_parsing() {
        assert_eq!(
            parse_request_line(b"GET /health?x=1 HTTP/1.1\r\nHost: a"),
            Some(("GET", "/health"))
        );
        assert_eq!(parse_request_line(b"GET / HTTP/1.0"), Some(("GET", "/")));
        assert_eq!(parse_request_line(b"GET /"), None);
        assert_eq!(parse_request_line(b" / HTTP/1.1"), None);
        assert_eq!(parse_request_line(b"GET / FTP/1.1"), None);
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nbody"), Some(14));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n"), None);
    }

    #[test]
    fn names_are_escaped_in_json() {
        assert_eq!(json_escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(json_escape("line\nbreak"), "line\\u000abreak");
    }
}

//! One health probe (SPEC §3.1, §4.3): an HTTP GET (2xx is healthy), a TCP
//! connect, or a health command (exit 0 is healthy), always bounded by a
//! timeout, and classified into an [`ErrorKind`] that Recovery acts on.

use crate::config::HealthCheck;
use crate::model::ErrorKind;
use crate::process::group;
use nix::sys::signal::Signal;
use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

/// Why a probe failed.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeError {
    pub kind: ErrorKind,
    pub message: String,
}

/// The result of one probe.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeOutcome {
    pub latency: Duration,
    pub error: Option<ProbeError>,
}

impl ProbeOutcome {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// An HTTP check, prepared once: where to connect and the request to send.
#[derive(Debug)]
struct HttpTarget {
    url: String,
    host: String,
    port: u16,
    /// The address when the host is an IP literal (no lookup per check).
    addr: Option<SocketAddr>,
    request: Vec<u8>,
}

impl HttpTarget {
    fn new(url: &str) -> Result<HttpTarget, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
        if parsed.scheme() != "http" {
            return Err(format!("{url}: only http:// is supported"));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| format!("{url}: no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = parsed.port_or_known_default().unwrap_or(80);
        let path = match parsed.query() {
            Some(q) => format!("{}?{q}", parsed.path()),
            None => parsed.path().to_string(),
        };
        let host_header = match parsed.port() {
            Some(p) => format!("{}:{p}", parsed.host_str().unwrap_or_default()),
            None => parsed.host_str().unwrap_or_default().to_string(),
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: ai-dawg-manager\r\n\
             Accept: */*\r\nConnection: close\r\n\r\n"
        )
        .into_bytes();
        let addr = host
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, port));
        Ok(HttpTarget {
            url: url.to_string(),
            host,
            port,
            addr,
            request,
        })
    }
}

#[derive(Debug)]
enum Target {
    Process,
    Http(Result<HttpTarget, String>),
    Tcp {
        host: String,
        port: u16,
    },
    Command {
        argv: Vec<String>,
        program: PathBuf,
        cwd: PathBuf,
        env: BTreeMap<String, String>,
    },
}

/// One service's health check, prepared once and cheap to clone, so each run
/// can go off the actor's mailbox.
///
/// The HTTP check is a plain `GET` with `Connection: close` whose status line
/// is read with `httparse`: a probe needs no pooling, redirects or bodies, and
/// at a thousand checks a second a general-purpose client's per-request cost
/// is most of the supervisor's CPU.
#[derive(Clone, Debug)]
pub struct Probe(Arc<Target>);

impl Probe {
    pub fn new(check: &HealthCheck, cwd: &Path, env: &BTreeMap<String, String>) -> Probe {
        Probe(Arc::new(match check {
            HealthCheck::Process => Target::Process,
            HealthCheck::Http { url } => Target::Http(HttpTarget::new(url)),
            HealthCheck::Tcp { host, port } => Target::Tcp {
                host: host.clone(),
                port: *port,
            },
            HealthCheck::Command { argv, program } => Target::Command {
                argv: argv.clone(),
                program: program.clone(),
                cwd: cwd.to_path_buf(),
                env: env.clone(),
            },
        }))
    }
}

fn fail(kind: ErrorKind, message: impl Into<String>) -> Option<ProbeError> {
    Some(ProbeError {
        kind,
        message: message.into(),
    })
}

fn io_kind(e: &io::Error) -> ErrorKind {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => ErrorKind::ConnectionRefused,
        io::ErrorKind::TimedOut => ErrorKind::Timeout,
        _ => ErrorKind::Other,
    }
}

/// The most of a response head read to find its status line.
const HEAD_LIMIT: usize = 4096;
/// The first read's buffer: enough for a typical health answer's head.
const FIRST_READ: usize = 512;

impl Probe {
    /// Run the probe once, never longer than `limit`.
    pub async fn run(self, limit: Duration) -> ProbeOutcome {
        let started = Instant::now();
        let error = match timeout(limit, self.check_once(limit)).await {
            Ok(e) => e,
            Err(_) => fail(
                ErrorKind::Timeout,
                format!("no answer within {}", humantime::format_duration(limit)),
            ),
        };
        ProbeOutcome {
            latency: started.elapsed(),
            error,
        }
    }

    async fn check_once(&self, limit: Duration) -> Option<ProbeError> {
        match &*self.0 {
            Target::Process => None,
            Target::Http(Ok(t)) => http(t).await,
            Target::Http(Err(e)) => fail(ErrorKind::Other, e.clone()),
            Target::Tcp { host, port } => {
                match tokio::net::TcpStream::connect((host.as_str(), *port)).await {
                    Ok(_) => None,
                    Err(e) => fail(io_kind(&e), format!("tcp://{host}:{port}: {e}")),
                }
            }
            Target::Command {
                argv,
                program,
                cwd,
                env,
            } => command(argv, program, cwd, env, limit).await,
        }
    }
}

async fn http(t: &HttpTarget) -> Option<ProbeError> {
    let connected = match t.addr {
        Some(a) => TcpStream::connect(a).await,
        None => TcpStream::connect((t.host.as_str(), t.port)).await,
    };
    let mut stream = match connected {
        Ok(s) => s,
        Err(e) => return fail(io_kind(&e), format!("{}: {e}", t.url)),
    };
    if let Err(e) = stream.write_all(&t.request).await {
        return fail(io_kind(&e), format!("{}: {e}", t.url));
    }
    // Small at first and grown on demand: a buffer of HEAD_LIMIT inside the
    // probe's future made every probe a large allocation, and with glibc each
    // large allocation consolidates the free lists (measured: a sixth of the
    // supervisor's CPU at 100 services).
    let mut buf = vec![0u8; FIRST_READ];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize((buf.len() * 2).min(HEAD_LIMIT), 0);
        }
        let n = match stream.read(&mut buf[len..]).await {
            Ok(n) => n,
            Err(e) => return fail(io_kind(&e), format!("{}: {e}", t.url)),
        };
        len += n;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&buf[..len]) {
            Ok(httparse::Status::Complete(_)) => {
                let code = resp.code.unwrap_or(0);
                return if (200..300).contains(&code) {
                    None
                } else {
                    fail(ErrorKind::BadStatus, format!("HTTP {code} from {}", t.url))
                };
            }
            Ok(httparse::Status::Partial) if n == 0 || len == HEAD_LIMIT => {
                return fail(
                    ErrorKind::Other,
                    format!("{}: the answer ended before its head did", t.url),
                )
            }
            Ok(httparse::Status::Partial) => continue,
            Err(e) => return fail(ErrorKind::Other, format!("{}: bad answer: {e}", t.url)),
        }
    }
}

async fn command(
    argv: &[String],
    program: &Path,
    cwd: &Path,
    env: &BTreeMap<String, String>,
    limit: Duration,
) -> Option<ProbeError> {
    let mut cmd = tokio::process::Command::new(program);
    if let Some(argv0) = argv.first() {
        cmd.arg0(argv0);
    }
    cmd.args(argv.iter().skip(1))
        .current_dir(cwd)
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return fail(ErrorKind::SpawnFailed, format!("health command: {e}")),
    };
    let pgid = child.id();
    let _tracked = crate::process::reaper::guard(pgid);
    match timeout(limit, child.wait()).await {
        Ok(Ok(status)) if status.success() => None,
        Ok(Ok(status)) => fail(ErrorKind::CommandFailed, format!("health command {status}")),
        Ok(Err(e)) => fail(ErrorKind::Other, format!("health command: {e}")),
        Err(_) => {
            if let Some(pgid) = pgid {
                group::signal_group(pgid, Signal::SIGKILL);
            }
            let _ = child.wait().await;
            fail(
                ErrorKind::Timeout,
                format!(
                    "health command gave no answer within {}",
                    humantime::format_duration(limit)
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A one-shot HTTP server answering `answer` to the first request.
    fn serve_once(answer: &'static [u8]) -> (u16, std::thread::JoinHandle<Vec<u8>>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut req = vec![0; 1024];
            let n = s.read(&mut req).unwrap();
            s.write_all(answer).unwrap();
            req.truncate(n);
            req
        });
        (port, h)
    }

    fn check(url: &str) -> Option<ProbeError> {
        let probe = Probe::new(
            &HealthCheck::Http { url: url.into() },
            Path::new("/"),
            &BTreeMap::new(),
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(probe.run(Duration::from_secs(5))).error
    }

    #[test]
    fn a_2xx_is_healthy_and_the_request_is_a_plain_get() {
        let (port, h) = serve_once(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(check(&format!("http://127.0.0.1:{port}/health?x=1")), None);
        let req = String::from_utf8(h.join().unwrap()).unwrap();
        assert!(req.starts_with("GET /health?x=1 HTTP/1.1\r\n"), "{req}");
        assert!(
            req.contains(&format!("Host: 127.0.0.1:{port}\r\n")),
            "{req}"
        );
        assert!(req.contains("Connection: close\r\n"), "{req}");
    }

    #[test]
    fn a_503_is_a_bad_status() {
        let (port, h) = serve_once(b"HTTP/1.1 503 Service Unavailable\r\n\r\nbusy");
        let e = check(&format!("http://127.0.0.1:{port}/health")).expect("unhealthy");
        assert_eq!(e.kind, ErrorKind::BadStatus);
        assert!(e.message.contains("503"), "{}", e.message);
        h.join().unwrap();
    }

    #[test]
    fn garbage_and_silence_are_failures_not_panics() {
        let (port, h) = serve_once(b"SSH-2.0-OpenSSH\r\n\r\n");
        assert_eq!(
            check(&format!("http://127.0.0.1:{port}/")).map(|e| e.kind),
            Some(ErrorKind::Other)
        );
        h.join().unwrap();
        let (port, h) = serve_once(b"");
        assert_eq!(
            check(&format!("http://127.0.0.1:{port}/")).map(|e| e.kind),
            Some(ErrorKind::Other)
        );
        h.join().unwrap();
    }

    #[test]
    fn nothing_listening_is_connection_refused() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert_eq!(
            check(&format!("http://127.0.0.1:{port}/")).map(|e| e.kind),
            Some(ErrorKind::ConnectionRefused)
        );
    }
}

//! One health probe (SPEC §3.1, §4.3): an HTTP GET (2xx is healthy), a TCP
//! connect, or a health command (exit 0 is healthy), always bounded by a
//! timeout, and classified into an [`ErrorKind`] that Recovery acts on.

use crate::config::HealthCheck;
use crate::model::ErrorKind;
use crate::process::group;
use nix::sys::signal::Signal;
use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
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

/// Everything a probe needs, owned, so it can run detached from the actor.
#[derive(Clone)]
pub struct Probe {
    pub check: HealthCheck,
    pub cwd: PathBuf,
    pub env: BTreeMap<String, String>,
    pub client: awc::Client,
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
        match &self.check {
            HealthCheck::Process => None,
            HealthCheck::Http { url } => self.http(url, limit).await,
            HealthCheck::Tcp { host, port } => {
                match tokio::net::TcpStream::connect((host.as_str(), *port)).await {
                    Ok(_) => None,
                    Err(e) => fail(io_kind(&e), format!("tcp://{host}:{port}: {e}")),
                }
            }
            HealthCheck::Command { argv, program } => self.command(argv, program, limit).await,
        }
    }

    async fn http(&self, url: &str, limit: Duration) -> Option<ProbeError> {
        use awc::error::{ConnectError, SendRequestError};
        let sent = self
            .client
            .get(url)
            .timeout(limit)
            .force_close()
            .send()
            .await;
        match sent {
            Ok(resp) if resp.status().is_success() => None,
            Ok(resp) => fail(
                ErrorKind::BadStatus,
                format!("HTTP {} from {url}", resp.status().as_u16()),
            ),
            Err(SendRequestError::Connect(ConnectError::Io(e))) => {
                fail(io_kind(&e), format!("{url}: {e}"))
            }
            Err(SendRequestError::Connect(ConnectError::Timeout))
            | Err(SendRequestError::Timeout) => fail(
                ErrorKind::Timeout,
                format!("no answer within {}", humantime::format_duration(limit)),
            ),
            Err(e) => fail(ErrorKind::Other, format!("{url}: {e}")),
        }
    }

    async fn command(
        &self,
        argv: &[String],
        program: &PathBuf,
        limit: Duration,
    ) -> Option<ProbeError> {
        let mut cmd = tokio::process::Command::new(program);
        if let Some(argv0) = argv.first() {
            cmd.arg0(argv0);
        }
        cmd.args(argv.iter().skip(1))
            .current_dir(&self.cwd)
            .envs(&self.env)
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
}

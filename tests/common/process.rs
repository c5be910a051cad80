//! Ports, processes identified so that a recycled pid is never taken for
//! ours, bounded runs of the binary, and a foreign port holder.

use super::{poll_until, wait_until, BIN, TIMEOUT};
use std::fs;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Mutex;

/// A port on 127.0.0.1 nobody listens on, chosen by the kernel (bind port 0,
/// then release it) and never handed out twice by this process. The kernel
/// picks from its ephemeral range (32768–60999 here), away from the fixed
/// ranges other programs on this machine use (a benchmark listens in the
/// 21xxx range): a fixed range of our own collided with it.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .expect("bind 127.0.0.1:0")
            .port();
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
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
pub(crate) fn stat(pid: u32) -> Option<(String, u64)> {
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

/// The exit signal of a status, if it was killed by one.
pub fn signal_of(status: &ExitStatus) -> Option<i32> {
    status.signal()
}

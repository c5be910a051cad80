//! Service logs that survive a supervisor crash and cannot fill the disk.
//!
//! Each service writes its stdout and stderr into a FIFO,
//! `data/logs/.<name>.fifo`, which it holds open read-write: it never sees a
//! broken pipe, even while no supervisor runs (its output then waits in the
//! pipe buffer, enlarged to 1 MiB). A pump on a dedicated thread (its own
//! arbiter, so a service writing 50 MB/s never slows the actors) drains each
//! FIFO into `data/logs/<name>.log` and rotates it by size: the file becomes
//! `<name>.log.1`, older ones shift up, at most `keep` are kept. Rotation cuts
//! at a line boundary when the chunk at hand has one, and no line is lost:
//! whatever the pump has read is written before anything else happens. A
//! restarted supervisor reopens the same FIFOs and goes on, so an adopted
//! service's output keeps flowing.

use crate::config::LogRotation;
use actix::Arbiter;
use log::{error, warn};
use nix::sys::stat::Mode;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

const TARGET: &str = "logs";
/// The kernel buffer of each FIFO: what a service can write while nobody reads.
const PIPE_SIZE: i32 = 1024 * 1024;

/// The FIFO a service writes to.
pub fn fifo_path(log: &Path) -> PathBuf {
    let name = log
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("service.log");
    let stem = name.strip_suffix(".log").unwrap_or(name);
    log.with_file_name(format!(".{stem}.fifo"))
}

/// Make sure `path` is a FIFO (create it, or replace a stray regular file).
pub fn ensure_fifo(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_fifo() => return Ok(()),
        Ok(_) => fs::remove_file(path)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o600)).map_err(io::Error::from)
}

/// The write end a service gets as stdout and stderr: opened read-write so the
/// service is a reader too and never gets SIGPIPE when the supervisor is gone.
pub fn open_writer(fifo: &Path) -> io::Result<File> {
    let f = OpenOptions::new().read(true).write(true).open(fifo)?;
    // Best effort: a bigger buffer carries more output over a supervisor restart.
    let _ = nix::fcntl::fcntl(f.as_raw_fd(), nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
    Ok(f)
}

/// Shift `<log>.1…` up by one (dropping what passes `keep`) and move `log` to
/// `<log>.1`. With `keep == 0` the full log is simply removed.
pub fn rotate(log: &Path, keep: u32) -> io::Result<()> {
    let numbered = |n: u32| PathBuf::from(format!("{}.{n}", log.display()));
    if keep == 0 {
        return match fs::remove_file(log) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    let _ = fs::remove_file(numbered(keep));
    for n in (1..keep).rev() {
        let from = numbered(n);
        if from.exists() {
            fs::rename(&from, numbered(n + 1))?;
        }
    }
    fs::rename(log, numbered(1))
}

/// An append-only log file that rotates itself by size.
pub struct RotatingFile {
    path: PathBuf,
    file: File,
    size: u64,
    limits: LogRotation,
    /// The file ends with a newline (or is empty).
    at_line_start: bool,
}

impl RotatingFile {
    pub fn open(path: &Path, limits: LogRotation) -> io::Result<Self> {
        let file = crate::process::spawn::open_log(path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile {
            path: path.to_path_buf(),
            file,
            size,
            limits,
            at_line_start: true,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append `data`; when the file would pass `max_bytes` it rotates at a
    /// line boundary: before `data` if the file ends a line, else right after
    /// the newline that ends the current line.
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if self.size + data.len() as u64 <= self.limits.max_bytes || self.size == 0 {
            return self.append(data);
        }
        if self.at_line_start {
            self.rotate_now()?;
            return self.append(data);
        }
        match data.iter().position(|b| *b == b'\n') {
            Some(i) => {
                self.append(&data[..=i])?;
                self.rotate_now()?;
                self.append(&data[i + 1..])
            }
            // A line that never ends is cut at twice the limit: the disk
            // bound wins over keeping the line whole.
            None if self.size + data.len() as u64 > 2 * self.limits.max_bytes => {
                self.rotate_now()?;
                self.append(data)
            }
            None => self.append(data),
        }
    }

    /// Write one whole record (a line) with a single `write`, rotating first
    /// when it would not fit.
    pub fn write_record(&mut self, record: &[u8]) -> io::Result<()> {
        if self.size > 0 && self.size + record.len() as u64 > self.limits.max_bytes {
            self.rotate_now()?;
        }
        self.append(record)
    }

    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        self.file.write_all(data)?;
        self.size += data.len() as u64;
        self.at_line_start = data.last() == Some(&b'\n');
        Ok(())
    }

    fn rotate_now(&mut self) -> io::Result<()> {
        rotate(&self.path, self.limits.keep)?;
        self.file = crate::process::spawn::open_log(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

thread_local! {
    /// One read buffer for every pump of the log thread: pumps never hold it
    /// across an await, so a thousand services cost one buffer, not a thousand.
    static BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; 256 * 1024]);
}

/// Drain `fifo` into `log` forever.
async fn pump(fifo: PathBuf, log: PathBuf, limits: LogRotation) {
    let rx = match tokio::net::unix::pipe::OpenOptions::new()
        .read_write(true)
        .open_receiver(&fifo)
    {
        Ok(rx) => rx,
        Err(e) => {
            error!(target: TARGET, "cannot read {}: {e}", fifo.display());
            return;
        }
    };
    let mut out: Option<RotatingFile> = None;
    let mut complained = false;
    loop {
        if rx.readable().await.is_err() {
            return;
        }
        loop {
            let read = BUFFER.with(|b| {
                let mut b = b.borrow_mut();
                match rx.try_read(&mut b) {
                    Ok(0) => Ok(false),
                    Ok(n) => {
                        if out.is_none() {
                            out = RotatingFile::open(&log, limits).ok();
                        }
                        let written = match out.as_mut() {
                            Some(f) => f.write(&b[..n]),
                            None => Err(io::Error::other("log file cannot be opened")),
                        };
                        match written {
                            Ok(()) => complained = false,
                            Err(e) => {
                                // Disk full or read-only: drop this chunk, keep
                                // draining so the service never blocks, retry
                                // the file with the next chunk.
                                if !complained {
                                    warn!(target: TARGET, "cannot write {}: {e}", log.display());
                                    complained = true;
                                }
                                out = None;
                            }
                        }
                        Ok(true)
                    }
                    Err(e) => Err(e),
                }
            });
            match read {
                Ok(true) => continue,
                Ok(false) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    error!(target: TARGET, "reading {}: {e}", fifo.display());
                    return;
                }
            }
        }
    }
}

/// The thread that drains every service's FIFO.
pub struct LogPumps {
    arbiter: Arbiter,
    limits: LogRotation,
    /// The FIFOs being drained (by inode): one pump each, for as long as the
    /// supervisor runs. A service removed by `reload` keeps its (idle) pump,
    /// which serves it again if it is added back.
    pumping: HashMap<PathBuf, u64>,
}

impl LogPumps {
    pub fn new(limits: LogRotation) -> Self {
        LogPumps {
            arbiter: Arbiter::new(),
            limits,
            pumping: HashMap::new(),
        }
    }

    /// Create the FIFO of `log` if needed and make sure it is drained, by
    /// exactly one pump: two would each write (and rotate) the log on their
    /// own, one of them into a file already rotated away. Returns the FIFO's
    /// path (what the service's output goes to).
    pub fn start(&mut self, log: &Path) -> io::Result<PathBuf> {
        let fifo = fifo_path(log);
        ensure_fifo(&fifo)?;
        let inode = fs::metadata(&fifo)?.ino();
        if self.pumping.get(&fifo) == Some(&inode) {
            return Ok(fifo);
        }
        // New, or replaced behind our back (the old pump drains a FIFO
        // nobody can open any more).
        let (f, l, limits) = (fifo.clone(), log.to_path_buf(), self.limits);
        if !self.arbiter.spawn(pump(f, l, limits)) {
            return Err(io::Error::other("the log thread is gone"));
        }
        self.pumping.insert(fifo.clone(), inode);
        Ok(fifo)
    }
}

impl Drop for LogPumps {
    fn drop(&mut self) {
        self.arbiter.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(p: &Path) -> String {
        fs::read_to_string(p).unwrap_or_default()
    }

    #[test]
    fn rotation_shifts_and_keeps_at_most_keep() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("a.log");
        let limits = LogRotation {
            max_bytes: 10,
            keep: 2,
        };
        let mut f = RotatingFile::open(&log, limits).unwrap();
        for i in 0..5 {
            f.write(format!("line{i}xx\n").as_bytes()).unwrap();
        }
        assert_eq!(read(&log), "line4xx\n");
        assert_eq!(read(&d.path().join("a.log.1")), "line3xx\n");
        assert_eq!(read(&d.path().join("a.log.2")), "line2xx\n");
        assert!(!d.path().join("a.log.3").exists());
    }

    #[test]
    fn rotation_cuts_at_a_line_boundary_and_loses_nothing() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("a.log");
        let limits = LogRotation {
            max_bytes: 12,
            keep: 5,
        };
        let mut f = RotatingFile::open(&log, limits).unwrap();
        f.write(b"aaaa\nbbbb\n").unwrap();
        f.write(b"cccc\ndd").unwrap();
        f.write(b"dd\n").unwrap();
        let all = read(&d.path().join("a.log.1")) + &read(&log);
        assert_eq!(all, "aaaa\nbbbb\ncccc\ndddd\n");
        assert_eq!(read(&d.path().join("a.log.1")), "aaaa\nbbbb\n");
        assert_eq!(read(&log), "cccc\ndddd\n");
    }

    #[test]
    fn fifo_is_created_once() {
        let d = tempfile::tempdir().unwrap();
        let fifo = fifo_path(&d.path().join("svc.log"));
        assert!(fifo.ends_with(".svc.fifo"));
        ensure_fifo(&fifo).unwrap();
        ensure_fifo(&fifo).unwrap();
        assert!(fs::metadata(&fifo).unwrap().file_type().is_fifo());
        let _w = open_writer(&fifo).unwrap();
    }
}

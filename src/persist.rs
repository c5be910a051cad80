//! Files that must never tear: atomic replacement (temp file, fsync, rename,
//! fsync of the folder), the persisted state, and the pid-file lock that keeps a
//! second supervisor off the same data folder.

use crate::model::ServiceRecord;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Replace `path` with `bytes` so that a reader (or a crash) sees either the
/// old content or the new one, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The nice value of background writer threads (see
/// [`crate::process::lower_thread_priority`]).
pub const BACKGROUND_NICE: i32 = 10;

/// Writes the state file on its own thread, so an fsync never holds up the
/// actors: the newest content wins (older pending content is dropped), and
/// `on_change(Err)`/`on_change(Ok)` is called when writing starts failing or
/// works again.
pub struct StateWriter {
    shared: std::sync::Arc<WriterShared>,
}

struct WriterShared {
    slot: std::sync::Mutex<WriterSlot>,
    wake: std::sync::Condvar,
}

#[derive(Default)]
struct WriterSlot {
    pending: Option<Vec<u8>>,
    submitted: u64,
    written: u64,
    /// Told when the generation they wait for is on disk.
    acks: Vec<(u64, tokio::sync::oneshot::Sender<()>)>,
}

impl StateWriter {
    pub fn spawn(
        path: PathBuf,
        on_change: impl Fn(Result<(), String>) + Send + 'static,
    ) -> io::Result<StateWriter> {
        let shared = std::sync::Arc::new(WriterShared {
            slot: std::sync::Mutex::new(WriterSlot::default()),
            wake: std::sync::Condvar::new(),
        });
        let worker = shared.clone();
        std::thread::Builder::new()
            .name("state-writer".into())
            .spawn(move || {
                crate::process::lower_thread_priority(BACKGROUND_NICE);
                let mut failing = false;
                loop {
                    let (bytes, generation) = {
                        let Ok(mut slot) = worker.slot.lock() else {
                            return;
                        };
                        while slot.pending.is_none() {
                            slot = match worker.wake.wait(slot) {
                                Ok(s) => s,
                                Err(_) => return,
                            };
                        }
                        (slot.pending.take().unwrap_or_default(), slot.submitted)
                    };
                    match write_atomic(&path, &bytes) {
                        Ok(()) if failing => {
                            failing = false;
                            on_change(Ok(()));
                        }
                        Ok(()) => {}
                        Err(e) if !failing => {
                            failing = true;
                            on_change(Err(e.to_string()));
                        }
                        Err(_) => {}
                    }
                    if let Ok(mut slot) = worker.slot.lock() {
                        slot.written = generation;
                        let (done, waiting) = std::mem::take(&mut slot.acks)
                            .into_iter()
                            .partition(|(g, _)| *g <= generation);
                        slot.acks = waiting;
                        for (_, tx) in done {
                            let _ = tx.send(());
                        }
                    }
                    worker.wake.notify_all();
                }
            })?;
        Ok(StateWriter { shared })
    }

    /// Have `bytes` written (replacing whatever is still waiting).
    pub fn submit(&self, bytes: Vec<u8>) {
        if let Ok(mut slot) = self.shared.slot.lock() {
            slot.pending = Some(bytes);
            slot.submitted += 1;
        }
        self.shared.wake.notify_all();
    }

    /// Have `bytes` written; the receiver resolves once they are on disk (or
    /// the write was attempted and failed).
    pub fn submit_acked(&self, bytes: Vec<u8>) -> tokio::sync::oneshot::Receiver<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if let Ok(mut slot) = self.shared.slot.lock() {
            slot.pending = Some(bytes);
            slot.submitted += 1;
            let generation = slot.submitted;
            slot.acks.push((generation, tx));
        }
        self.shared.wake.notify_all();
        rx
    }

    /// Wait (at most `limit`) until everything submitted is on disk.
    pub fn flush(&self, limit: std::time::Duration) {
        let deadline = std::time::Instant::now() + limit;
        let Ok(mut slot) = self.shared.slot.lock() else {
            return;
        };
        while slot.written < slot.submitted {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return;
            }
            slot = match self.shared.wake.wait_timeout(slot, left) {
                Ok((s, _)) => s,
                Err(_) => return,
            };
        }
    }
}

/// The state file's shape: `[[name, record], …]` (the seed's).
pub type StateFile = Vec<(String, ServiceRecord)>;

pub fn encode_state(records: &StateFile) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(records).unwrap_or_else(|_| b"[]".to_vec());
    out.push(b'\n');
    out
}

/// What loading the state file found.
#[derive(Debug)]
pub enum LoadedState {
    Missing,
    Loaded(StateFile),
    /// Unreadable: it was moved aside to the given path.
    Corrupt {
        moved_to: PathBuf,
        error: String,
    },
}

/// Load the persisted state. A corrupt file is kept as
/// `service-state.json.corrupt-<unix-ms>` and the caller starts from the config.
pub fn load_state(path: &Path) -> LoadedState {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return LoadedState::Missing,
        Err(e) => {
            return LoadedState::Corrupt {
                moved_to: path.to_path_buf(),
                error: e.to_string(),
            }
        }
    };
    match serde_json::from_slice::<StateFile>(&bytes) {
        Ok(s) => LoadedState::Loaded(s),
        Err(e) => {
            let ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0);
            let aside = PathBuf::from(format!("{}.corrupt-{ms}", path.display()));
            let moved_to = match fs::rename(path, &aside) {
                Ok(()) => aside,
                Err(_) => path.to_path_buf(),
            };
            LoadedState::Corrupt {
                moved_to,
                error: e.to_string(),
            }
        }
    }
}

/// Read the state file without side effects (for a stale `status`).
pub fn read_state(path: &Path) -> io::Result<StateFile> {
    let bytes = fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The supervisor's claim on a data folder: an exclusive `flock` on
/// `manager.pid`, held for the supervisor's life and released by the kernel
/// even on SIGKILL, so a stale pid file never blocks a new start.
#[derive(Debug)]
pub struct PidLock {
    _lock: Flock<File>,
    path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another supervisor (pid {pid}) is running on {dir}; stop it (ai-dawg-manager shutdown) or use --data-dir")]
    Held { pid: String, dir: String },
    #[error("cannot use {path}: {source}")]
    Io { path: String, source: io::Error },
}

impl PidLock {
    pub fn acquire(path: &Path) -> Result<PidLock, LockError> {
        let io_err = |source| LockError::Io {
            path: path.display().to_string(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io_err)?;
        let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err((mut file, _)) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let dir = path
                    .parent()
                    .unwrap_or(Path::new("."))
                    .display()
                    .to_string();
                return Err(LockError::Held {
                    pid: pid.trim().to_string(),
                    dir,
                });
            }
        };
        lock.set_len(0).map_err(io_err)?;
        lock.rewind().map_err(io_err)?;
        writeln!(lock, "{}", std::process::id()).map_err(io_err)?;
        lock.sync_all().map_err(io_err)?;
        Ok(PidLock {
            _lock: lock,
            path: path.to_path_buf(),
        })
    }
}

impl Drop for PidLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// The last `n` lines of `file` (reading backwards in blocks: logs can be big).
pub fn tail(file: &mut File, n: usize) -> io::Result<Vec<u8>> {
    let len = file.seek(SeekFrom::End(0))?;
    if n == 0 {
        return Ok(vec![]);
    }
    let mut pos = len;
    let mut buf: Vec<u8> = vec![];
    const BLOCK: u64 = 64 * 1024;
    loop {
        let newlines = buf.iter().filter(|b| **b == b'\n').count();
        // A trailing newline ends the last line; it does not start a new one.
        let needed = if buf.last() == Some(&b'\n') { n + 1 } else { n };
        if newlines >= needed || pos == 0 {
            break;
        }
        let step = BLOCK.min(pos);
        pos -= step;
        file.seek(SeekFrom::Start(pos))?;
        let mut chunk = vec![0; step as usize];
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
    }
    let body = buf.strip_suffix(b"\n").unwrap_or(&buf);
    let start = body
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, b)| **b == b'\n')
        .nth(n - 1)
        .map(|(i, _)| i + 1)
        .unwrap_or(0);
    file.seek(SeekFrom::Start(len))?;
    Ok(buf[start..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail_of(text: &str, n: usize) -> String {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.log");
        std::fs::write(&p, text).unwrap();
        let mut f = File::open(&p).unwrap();
        String::from_utf8(tail(&mut f, n).unwrap()).unwrap()
    }

    #[test]
    fn tail_takes_the_last_lines() {
        assert_eq!(tail_of("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(tail_of("a\nb\nc", 2), "b\nc");
        assert_eq!(tail_of("a\nb\n", 10), "a\nb\n");
        assert_eq!(tail_of("", 3), "");
        assert_eq!(tail_of("a\n", 0), "");
    }

    #[test]
    fn tail_crosses_blocks() {
        let text: String = (0..100_000).map(|i| format!("line {i}\n")).collect();
        assert_eq!(tail_of(&text, 2), "line 99998\nline 99999\n");
    }

    #[test]
    fn atomic_write_replaces_content() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1, "no temp left");
    }

    #[test]
    fn the_writer_thread_writes_the_newest_content() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.json");
        let w = StateWriter::spawn(p.clone(), |_| {}).unwrap();
        for i in 0..100 {
            w.submit(format!("{i}").into_bytes());
        }
        w.flush(std::time::Duration::from_secs(10));
        assert_eq!(fs::read_to_string(&p).unwrap(), "99");
    }

    #[test]
    fn the_writer_reports_failure_once_and_recovery() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.json");
        fs::create_dir(&p).unwrap(); // renaming a file over a folder fails
        let (tx, rx) = std::sync::mpsc::channel();
        let w = StateWriter::spawn(p.clone(), move |r| {
            let _ = tx.send(r.is_ok());
        })
        .unwrap();
        w.submit(b"a".to_vec());
        w.flush(std::time::Duration::from_secs(10));
        w.submit(b"b".to_vec());
        w.flush(std::time::Duration::from_secs(10));
        fs::remove_dir(&p).unwrap();
        w.submit(b"c".to_vec());
        w.flush(std::time::Duration::from_secs(10));
        let seen: Vec<bool> = rx.try_iter().collect();
        assert_eq!(seen, vec![false, true]);
        assert_eq!(fs::read_to_string(&p).unwrap(), "c");
    }

    #[test]
    fn corrupt_state_is_moved_aside() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("service-state.json");
        fs::write(&p, b"[[\"a\", {\"name\":").unwrap();
        match load_state(&p) {
            LoadedState::Corrupt { moved_to, .. } => {
                assert!(moved_to.to_string_lossy().contains(".corrupt-"));
                assert!(!p.exists());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn state_round_trips() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("service-state.json");
        let rec = ServiceRecord::new("a", "A", Some(1));
        write_atomic(&p, &encode_state(&vec![("a".into(), rec.clone())])).unwrap();
        match load_state(&p) {
            LoadedState::Loaded(s) => assert_eq!(s, vec![("a".to_string(), rec)]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn second_lock_is_refused_with_the_holder_pid() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("manager.pid");
        let _held = PidLock::acquire(&p).unwrap();
        match PidLock::acquire(&p) {
            Err(LockError::Held { pid, .. }) => assert_eq!(pid, std::process::id().to_string()),
            other => panic!("{other:?}"),
        }
    }
}

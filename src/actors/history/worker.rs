//! The History actor's worker thread: it owns the SQLite connection and runs
//! the jobs the actor sends it, in order, so no actor waits on the disk.

use super::{Disabled, History, TARGET};
use crate::history::feed::Row;
use crate::history::store::Store;
use actix::prelude::*;
use log::{debug, info, warn};
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;

/// What the worker thread owns: the store, and whether its writes are failing
/// (so a broken disk warns once, not every second).
pub(super) struct Db {
    pub(super) store: Store,
    failing: bool,
}

impl Db {
    pub(super) fn write(&mut self, rows: &[Row]) {
        match self.store.write(rows) {
            Ok(()) if self.failing => {
                self.failing = false;
                info!(target: TARGET, "history recording again in {}", self.store.path().display());
            }
            Ok(()) => {}
            Err(e) => {
                if !self.failing {
                    warn!(target: TARGET, "history not recorded ({e}); the supervisor runs on without it");
                }
                self.failing = true;
            }
        }
    }
}

type Job = Box<dyn FnOnce(&mut Db) + Send>;

/// The thread that owns the database; jobs run in the order sent.
pub(super) struct Worker {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Start the thread; it opens `path` first and tells `addr` if it cannot.
    pub(super) fn start(path: PathBuf, addr: Addr<History>) -> std::io::Result<Worker> {
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("history-db".into())
            .spawn(move || {
                crate::process::lower_thread_priority(crate::persist::BACKGROUND_NICE);
                let store = match Store::open(&path) {
                    Ok(s) => s,
                    Err(e) => {
                        warn!(target: TARGET, "history disabled: {e}; the supervisor runs on without history");
                        addr.do_send(Disabled);
                        return;
                    }
                };
                debug!(target: TARGET, "recording history in {}", path.display());
                let mut db = Db {
                    store,
                    failing: false,
                };
                while let Ok(job) = rx.recv() {
                    job(&mut db);
                }
            })?;
        Ok(Worker {
            jobs: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queue a job; `false` when the worker is gone.
    pub(super) fn run(&self, job: impl FnOnce(&mut Db) + Send + 'static) -> bool {
        self.jobs
            .as_ref()
            .is_some_and(|tx| tx.send(Box::new(job)).is_ok())
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

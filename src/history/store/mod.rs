//! `data/history.db`: an embedded SQLite database (WAL mode, so `report` can
//! read while the supervisor writes). The History actor's worker thread is its
//! only writer; the CLI opens it read-only.
//!
//! Tables (times are Unix milliseconds, UTC). Incidents and starts are
//! clustered by time (`WITHOUT ROWID`, keyed by time then service), health
//! rows by service then time: each query reads contiguous pages.
//!
//! | table | one row per |
//! |---|---|
//! | `services` | service ever seen: id, name, first time seen |
//! | `incidents` | incident: opened, closed, first error kind, restarts, escalated, resolved by |
//! | `starts` | process start: action (`start`/`restart`/`recover`), automatic, succeeded |
//! | `manual_actions` | manual `start`/`restart`/`recover`/`stop` |
//! | `health_minutes` | service and minute: checks, failures, p50/p95/max latency, histogram |
//! | `health_hours` | service and hour: the same, rolled up from its minutes as they are written |
//! | `patterns` | pattern ever detected: kind, services, first and last seen, detail |

//!
//! `write.rs` holds the batched writes, `read.rs` the queries.

mod read;
mod write;

#[cfg(test)]
mod tests;

use super::feed::Row;
use super::time::{floor_to, HOUR_MS};
use rusqlite::{params, Connection, OpenFlags};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Version of the schema below, kept in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 1;
/// How long a statement waits for a lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_millis(1000);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS services (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    first_seen_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS incidents (
    opened_ms INTEGER NOT NULL,
    service_id INTEGER NOT NULL,
    closed_ms INTEGER,
    error_kind TEXT,
    restarts INTEGER NOT NULL,
    escalated INTEGER NOT NULL,
    resolved_by TEXT,
    PRIMARY KEY (opened_ms, service_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS starts (
    at_ms INTEGER NOT NULL,
    service_id INTEGER NOT NULL,
    action TEXT NOT NULL,
    automatic INTEGER NOT NULL,
    succeeded INTEGER,
    PRIMARY KEY (at_ms, service_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS manual_actions (
    service_id INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    action TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS manual_by_service ON manual_actions (service_id, at_ms);
CREATE TABLE IF NOT EXISTS health_minutes (
    service_id INTEGER NOT NULL,
    minute_ms INTEGER NOT NULL,
    checks INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    p50_ms REAL,
    p95_ms REAL,
    min_ms REAL,
    max_ms REAL,
    hist BLOB NOT NULL,
    PRIMARY KEY (service_id, minute_ms)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS health_hours (
    service_id INTEGER NOT NULL,
    hour_ms INTEGER NOT NULL,
    checks INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    min_ms REAL,
    max_ms REAL,
    hist BLOB NOT NULL,
    PRIMARY KEY (service_id, hour_ms)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS patterns (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    services TEXT NOT NULL,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    detail TEXT NOT NULL
);
";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "no history at {0} yet: the supervisor records it while it runs (`ai-dawg-manager start`)"
    )]
    Missing(PathBuf),
    #[error("history database {path}: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "history database {0} was written by a newer ai-dawg-manager (schema {1}); upgrade, or move it away"
    )]
    NewerSchema(String, i64),
}

type Result<T> = std::result::Result<T, StoreError>;

/// A service and when it was first seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    pub name: String,
    pub first_seen_ms: u64,
}

/// A pattern as the store remembers it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PatternRow {
    pub key: String,
    pub kind: String,
    pub services: Vec<String>,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
    pub detail: String,
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Service name → id, filled as names are met.
    ids: HashMap<String, i64>,
}

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Store {
    /// Open (creating if needed) for writing: WAL mode, schema in place.
    pub fn open(path: &Path) -> Result<Store> {
        let conn = Connection::open(path).map_err(sqlite_err(path))?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            ids: HashMap::new(),
        };
        store.prepare().map_err(sqlite_err(path))?;
        store.check_version()?;
        Ok(store)
    }

    fn prepare(&mut self) -> rusqlite::Result<()> {
        self.conn.busy_timeout(BUSY_TIMEOUT)?;
        let _mode: String = self
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        // A small page cache: the supervisor's footprint matters more than
        // the speed of a batch insert (SQLite's default is 2 MiB).
        self.conn.pragma_update(None, "cache_size", -256)?;
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version <= SCHEMA_VERSION {
            self.conn.execute_batch(SCHEMA)?;
            if version < SCHEMA_VERSION {
                self.conn
                    .pragma_update(None, "user_version", SCHEMA_VERSION)?;
            }
        }
        Ok(())
    }

    fn check_version(&self) -> Result<()> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sqlite_err(&self.path))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema(
                self.path.display().to_string(),
                version,
            ));
        }
        Ok(())
    }

    /// Open an existing database for reading only (the CLI).
    pub fn open_read_only(path: &Path) -> Result<Store> {
        if !path.exists() {
            return Err(StoreError::Missing(path.to_path_buf()));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sqlite_err(path))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sqlite_err(path))?;
        let store = Store {
            conn,
            path: path.to_path_buf(),
            ids: HashMap::new(),
        };
        store.check_version()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        sqlite_err(&self.path)
    }

    // ---- writing ----------------------------------------------------------------

    /// Write a batch of rows in one transaction.
    pub fn write(&mut self, rows: &[Row]) -> Result<()> {
        let path = self.path.clone();
        self.write_rows(rows).map_err(sqlite_err(&path))
    }

    /// Delete what is older than `cutoff_ms` (rounded down to the hour, so an
    /// hour's roll-up and its minutes go together); open incidents stay.
    /// Returns the number of rows deleted.
    pub fn retain(&mut self, cutoff_ms: u64) -> Result<usize> {
        let cutoff = i(floor_to(cutoff_ms, HOUR_MS));
        let path = self.path.clone();
        let mut run = || -> rusqlite::Result<usize> {
            let tx = self.conn.transaction()?;
            let mut n = 0;
            n += tx.execute("DELETE FROM health_minutes WHERE minute_ms < ?1", [cutoff])?;
            n += tx.execute("DELETE FROM health_hours WHERE hour_ms < ?1", [cutoff])?;
            n += tx.execute(
                "DELETE FROM incidents WHERE closed_ms IS NOT NULL AND closed_ms < ?1",
                [cutoff],
            )?;
            n += tx.execute("DELETE FROM starts WHERE at_ms < ?1", [cutoff])?;
            n += tx.execute("DELETE FROM manual_actions WHERE at_ms < ?1", [cutoff])?;
            n += tx.execute("DELETE FROM patterns WHERE last_seen_ms < ?1", [cutoff])?;
            tx.commit()?;
            Ok(n)
        };
        run().map_err(sqlite_err(&path))
    }

    /// Remember a detected pattern; `true` the first time its key is seen.
    pub fn note_pattern(
        &mut self,
        key: &str,
        kind: &str,
        services: &[String],
        at_ms: u64,
        detail: &str,
    ) -> Result<bool> {
        let inserted = self
            .conn
            .prepare_cached(
                "INSERT INTO patterns (key, kind, services, first_seen_ms, last_seen_ms, detail)
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5)
                 ON CONFLICT (key) DO NOTHING",
            )
            .and_then(|mut s| s.execute(params![key, kind, services.join(","), i(at_ms), detail]))
            .map_err(self.err())?;
        if inserted == 0 {
            self.conn
                .prepare_cached(
                    "UPDATE patterns SET last_seen_ms = max(last_seen_ms, ?2), detail = ?3
                     WHERE key = ?1",
                )
                .and_then(|mut s| s.execute(params![key, i(at_ms), detail]))
                .map_err(self.err())?;
        }
        Ok(inserted > 0)
    }
}

fn sqlite_err(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sqlite {
        path: path.display().to_string(),
        source,
    }
}

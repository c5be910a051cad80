//! `data/history.db`: an embedded SQLite database (WAL mode, so `report` can
//! read while the supervisor writes). The History actor's worker thread is its
//! only writer; the CLI opens it read-only.
//!
//! Tables (times are Unix milliseconds, UTC):
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

use super::aggregate::MinuteRow;
use super::feed::Row;
use super::incidents::{Change, Incident, ManualAction, Resolution, StartRecord};
use super::latency::{max_opt, min_opt, HealthStats, Histogram};
use super::time::{ceil_to, floor_to, HOUR_MS};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
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
    service_id INTEGER NOT NULL,
    opened_ms INTEGER NOT NULL,
    closed_ms INTEGER,
    error_kind TEXT,
    restarts INTEGER NOT NULL,
    escalated INTEGER NOT NULL,
    resolved_by TEXT,
    PRIMARY KEY (service_id, opened_ms)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS incidents_by_opening ON incidents (opened_ms);
CREATE TABLE IF NOT EXISTS starts (
    service_id INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    action TEXT NOT NULL,
    automatic INTEGER NOT NULL,
    succeeded INTEGER
);
CREATE INDEX IF NOT EXISTS starts_by_service ON starts (service_id, at_ms);
CREATE INDEX IF NOT EXISTS starts_by_time ON starts (at_ms);
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

    fn write_rows(&mut self, rows: &[Row]) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        let ids = &mut self.ids;
        let mut minutes: Vec<(i64, &MinuteRow)> = vec![];
        for row in rows {
            match row {
                Row::Seen { service, at_ms } => {
                    tx.prepare_cached(
                        "INSERT INTO services (name, first_seen_ms) VALUES (?1, ?2)
                         ON CONFLICT (name) DO UPDATE
                         SET first_seen_ms = min(first_seen_ms, excluded.first_seen_ms)",
                    )?
                    .execute(params![service, i(*at_ms)])?;
                    id_of(&tx, ids, service, *at_ms)?;
                }
                Row::Change(Change::Incident(inc)) => {
                    let id = id_of(&tx, ids, &inc.service, inc.opened_ms)?;
                    tx.prepare_cached(
                        "INSERT INTO incidents (service_id, opened_ms, closed_ms, error_kind,
                                                restarts, escalated, resolved_by)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                         ON CONFLICT (service_id, opened_ms) DO UPDATE SET
                            closed_ms = excluded.closed_ms, error_kind = excluded.error_kind,
                            restarts = excluded.restarts, escalated = excluded.escalated,
                            resolved_by = excluded.resolved_by",
                    )?
                    .execute(params![
                        id,
                        i(inc.opened_ms),
                        inc.closed_ms.map(i),
                        inc.error_kind,
                        inc.restarts,
                        inc.escalated,
                        inc.resolved_by.map(Resolution::as_str),
                    ])?;
                }
                Row::Change(Change::Start(s)) => {
                    let id = id_of(&tx, ids, &s.service, s.at_ms)?;
                    tx.prepare_cached(
                        "INSERT INTO starts (service_id, at_ms, action, automatic, succeeded)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![
                        id,
                        i(s.at_ms),
                        s.action,
                        s.automatic,
                        s.succeeded
                    ])?;
                }
                Row::Change(Change::StartOutcome {
                    service,
                    at_ms,
                    succeeded,
                }) => {
                    let id = id_of(&tx, ids, service, *at_ms)?;
                    tx.prepare_cached(
                        "UPDATE starts SET succeeded = ?3 WHERE service_id = ?1 AND at_ms = ?2",
                    )?
                    .execute(params![id, i(*at_ms), succeeded])?;
                }
                Row::Change(Change::Manual(m)) => {
                    let id = id_of(&tx, ids, &m.service, m.at_ms)?;
                    tx.prepare_cached(
                        "INSERT INTO manual_actions (service_id, at_ms, action) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![id, i(m.at_ms), m.action])?;
                }
                Row::Minute(m) => {
                    let id = id_of(&tx, ids, &m.service, m.minute_ms)?;
                    minutes.push((id, m));
                }
            }
        }
        write_minutes(&tx, &minutes)?;
        tx.commit()
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

    // ---- reading ----------------------------------------------------------------

    fn lookup(&self, service: &str) -> Result<Option<i64>> {
        if let Some(&id) = self.ids.get(service) {
            return Ok(Some(id));
        }
        self.conn
            .prepare_cached("SELECT id FROM services WHERE name = ?1")
            .and_then(|mut s| s.query_row([service], |r| r.get(0)).optional())
            .map_err(self.err())
    }

    /// Every service seen, by name.
    pub fn services(&self) -> Result<Vec<ServiceInfo>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, first_seen_ms FROM services ORDER BY name")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(ServiceInfo {
                    name: r.get(0)?,
                    first_seen_ms: u(r.get(1)?),
                })
            })
            .and_then(Iterator::collect)
            .map_err(self.err())?;
        Ok(rows)
    }

    /// Incidents overlapping `[from, to)` (opened before `to`, not closed before
    /// `from`), of one service or all, in order of opening.
    pub fn incidents(&self, service: Option<&str>, from: u64, to: u64) -> Result<Vec<Incident>> {
        self.select_incidents(
            "i.opened_ms < ?2 AND (i.closed_ms IS NULL OR i.closed_ms > ?1)",
            service,
            from,
            to,
        )
    }

    /// Incidents not closed yet.
    pub fn open_incidents(&self) -> Result<Vec<Incident>> {
        self.select_incidents("i.closed_ms IS NULL", None, 0, 0)
    }

    fn select_incidents(
        &self,
        condition: &str,
        service: Option<&str>,
        from: u64,
        to: u64,
    ) -> Result<Vec<Incident>> {
        let sql = format!(
            "SELECT s.name, i.opened_ms, i.closed_ms, i.error_kind, i.restarts, i.escalated,
                    i.resolved_by
             FROM incidents i JOIN services s ON s.id = i.service_id
             WHERE {condition} AND (?3 IS NULL OR s.name = ?3)
             ORDER BY i.opened_ms, s.name"
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(self.err())?;
        let rows = stmt
            .query_map(params![i(from), i(to), service], |r| {
                Ok(Incident {
                    service: r.get(0)?,
                    opened_ms: u(r.get(1)?),
                    closed_ms: r.get::<_, Option<i64>>(2)?.map(u),
                    error_kind: r.get(3)?,
                    restarts: r.get(4)?,
                    escalated: r.get(5)?,
                    resolved_by: r
                        .get::<_, Option<String>>(6)?
                        .and_then(|s| Resolution::parse(&s)),
                })
            })
            .and_then(Iterator::collect)
            .map_err(self.err())?;
        Ok(rows)
    }

    /// Process starts in `[from, to)`, of one service or all, in time order.
    pub fn starts(&self, service: Option<&str>, from: u64, to: u64) -> Result<Vec<StartRecord>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT s.name, t.at_ms, t.action, t.automatic, t.succeeded
                 FROM starts t JOIN services s ON s.id = t.service_id
                 WHERE t.at_ms >= ?1 AND t.at_ms < ?2 AND (?3 IS NULL OR s.name = ?3)
                 ORDER BY t.at_ms, s.name",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map(params![i(from), i(to), service], |r| {
                Ok(StartRecord {
                    service: r.get(0)?,
                    at_ms: u(r.get(1)?),
                    action: r.get(2)?,
                    automatic: r.get(3)?,
                    succeeded: r.get(4)?,
                })
            })
            .and_then(Iterator::collect)
            .map_err(self.err())?;
        Ok(rows)
    }

    /// Manual actions on one service in `[from, to)`, in time order.
    pub fn manual_actions(&self, service: &str, from: u64, to: u64) -> Result<Vec<ManualAction>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT s.name, m.at_ms, m.action
                 FROM manual_actions m JOIN services s ON s.id = m.service_id
                 WHERE s.name = ?3 AND m.at_ms >= ?1 AND m.at_ms < ?2
                 ORDER BY m.at_ms",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map(params![i(from), i(to), service], |r| {
                Ok(ManualAction {
                    service: r.get(0)?,
                    at_ms: u(r.get(1)?),
                    action: r.get(2)?,
                })
            })
            .and_then(Iterator::collect)
            .map_err(self.err())?;
        Ok(rows)
    }

    /// The health checks of `service` in the minutes starting in `[from, to)`:
    /// hourly roll-ups for the whole hours, minute rows for the ragged ends.
    pub fn health(&self, service: &str, from: u64, to: u64) -> Result<HealthStats> {
        let mut stats = HealthStats::default();
        let Some(id) = self.lookup(service)? else {
            return Ok(stats);
        };
        if from >= to {
            return Ok(stats);
        }
        let (h0, h1) = (ceil_to(from, HOUR_MS), floor_to(to, HOUR_MS));
        if h0 < h1 {
            self.add_minutes(&mut stats, id, from, h0)?;
            self.add_hours(&mut stats, id, h0, h1)?;
            self.add_minutes(&mut stats, id, h1, to)?;
        } else {
            self.add_minutes(&mut stats, id, from, to)?;
        }
        Ok(stats)
    }

    fn add_minutes(&self, stats: &mut HealthStats, id: i64, from: u64, to: u64) -> Result<()> {
        self.add_rows(
            stats,
            "SELECT checks, failures, min_ms, max_ms, hist FROM health_minutes
             WHERE service_id = ?1 AND minute_ms >= ?2 AND minute_ms < ?3",
            id,
            from,
            to,
        )
    }

    fn add_hours(&self, stats: &mut HealthStats, id: i64, from: u64, to: u64) -> Result<()> {
        self.add_rows(
            stats,
            "SELECT checks, failures, min_ms, max_ms, hist FROM health_hours
             WHERE service_id = ?1 AND hour_ms >= ?2 AND hour_ms < ?3",
            id,
            from,
            to,
        )
    }

    fn add_rows(
        &self,
        stats: &mut HealthStats,
        sql: &str,
        id: i64,
        from: u64,
        to: u64,
    ) -> Result<()> {
        if from >= to {
            return Ok(());
        }
        let mut stmt = self.conn.prepare_cached(sql).map_err(self.err())?;
        let mut rows = stmt
            .query(params![id, i(from), i(to)])
            .map_err(self.err())?;
        while let Some(r) = rows.next().map_err(self.err())? {
            let hist = r.get_ref(4).map_err(self.err())?;
            stats.merge(
                u(r.get(0).map_err(self.err())?),
                u(r.get(1).map_err(self.err())?),
                (r.get(2).map_err(self.err())?, r.get(3).map_err(self.err())?),
                hist.as_blob().unwrap_or_default(),
            );
        }
        Ok(())
    }

    /// The minute rows of `service` in `[from, to)`.
    pub fn minutes(&self, service: &str, from: u64, to: u64) -> Result<Vec<MinuteRow>> {
        let Some(id) = self.lookup(service)? else {
            return Ok(vec![]);
        };
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT minute_ms, checks, failures, p50_ms, p95_ms, min_ms, max_ms, hist
                 FROM health_minutes
                 WHERE service_id = ?1 AND minute_ms >= ?2 AND minute_ms < ?3
                 ORDER BY minute_ms",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map(params![id, i(from), i(to)], |r| {
                Ok(MinuteRow {
                    service: service.to_string(),
                    minute_ms: u(r.get(0)?),
                    checks: u(r.get(1)?),
                    failures: u(r.get(2)?),
                    p50_ms: r.get(3)?,
                    p95_ms: r.get(4)?,
                    min_ms: r.get(5)?,
                    max_ms: r.get(6)?,
                    hist: Histogram::decode(r.get_ref(7)?.as_blob().unwrap_or_default()),
                })
            })
            .and_then(Iterator::collect)
            .map_err(self.err())?;
        Ok(rows)
    }

    /// Patterns last seen at or after `from`, most recent first.
    pub fn patterns(&self, from: u64) -> Result<Vec<PatternRow>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT key, kind, services, first_seen_ms, last_seen_ms, detail FROM patterns
                 WHERE last_seen_ms >= ?1 ORDER BY last_seen_ms DESC, key",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([i(from)], |r| {
                Ok(PatternRow {
                    key: r.get(0)?,
                    kind: r.get(1)?,
                    services: r
                        .get::<_, String>(2)?
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect(),
                    first_seen_ms: u(r.get(3)?),
                    last_seen_ms: u(r.get(4)?),
                    detail: r.get(5)?,
                })
            })
            .and_then(Iterator::collect)
            .map_err(self.err())?;
        Ok(rows)
    }
}

fn sqlite_err(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sqlite {
        path: path.display().to_string(),
        source,
    }
}

/// The id of `service`, creating its row (first seen `at_ms`) if needed.
fn id_of(
    conn: &Connection,
    ids: &mut HashMap<String, i64>,
    service: &str,
    at_ms: u64,
) -> rusqlite::Result<i64> {
    if let Some(&id) = ids.get(service) {
        return Ok(id);
    }
    conn.prepare_cached(
        "INSERT INTO services (name, first_seen_ms) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
    )?
    .execute(params![service, i(at_ms)])?;
    let id: i64 = conn
        .prepare_cached("SELECT id FROM services WHERE name = ?1")?
        .query_row([service], |r| r.get(0))?;
    ids.insert(service.to_string(), id);
    Ok(id)
}

/// Insert minute rows (merging with a row already there for the same minute, as
/// after a restart of the supervisor within a minute) and fold them into their
/// hours' roll-ups.
fn write_minutes(conn: &Connection, minutes: &[(i64, &MinuteRow)]) -> rusqlite::Result<()> {
    let mut hours: HashMap<(i64, u64), HealthStats> = HashMap::new();
    let mut insert = conn.prepare_cached(
        "INSERT INTO health_minutes (service_id, minute_ms, checks, failures, p50_ms, p95_ms,
                                     min_ms, max_ms, hist)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (service_id, minute_ms) DO NOTHING",
    )?;
    for &(id, m) in minutes {
        let inserted = insert.execute(params![
            id,
            i(m.minute_ms),
            i(m.checks),
            i(m.failures),
            m.p50_ms,
            m.p95_ms,
            m.min_ms,
            m.max_ms,
            m.hist.encode(),
        ])?;
        if inserted == 0 {
            merge_minute(conn, id, m)?;
        }
        let hour = hours
            .entry((id, floor_to(m.minute_ms, HOUR_MS)))
            .or_default();
        hour.checks += m.checks;
        hour.failures += m.failures;
        hour.min_ms = min_opt(hour.min_ms, m.min_ms);
        hour.max_ms = max_opt(hour.max_ms, m.max_ms);
        hour.hist.merge(&m.hist);
    }
    let mut select = conn.prepare_cached(
        "SELECT checks, failures, min_ms, max_ms, hist FROM health_hours
         WHERE service_id = ?1 AND hour_ms = ?2",
    )?;
    let mut upsert = conn.prepare_cached(
        "INSERT OR REPLACE INTO health_hours (service_id, hour_ms, checks, failures, min_ms,
                                             max_ms, hist)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for ((id, hour_ms), mut add) in hours {
        let old = select
            .query_row(params![id, i(hour_ms)], |r| {
                Ok((
                    u(r.get(0)?),
                    u(r.get(1)?),
                    (r.get(2)?, r.get(3)?),
                    r.get::<_, Vec<u8>>(4)?,
                ))
            })
            .optional()?;
        if let Some((checks, failures, extremes, hist)) = old {
            add.merge(checks, failures, extremes, &hist);
        }
        upsert.execute(params![
            id,
            i(hour_ms),
            i(add.checks),
            i(add.failures),
            add.min_ms,
            add.max_ms,
            add.hist.encode()
        ])?;
    }
    Ok(())
}

/// A second row for a minute already written: add it in. The exact p50/p95 of
/// the two parts cannot be combined, so the merged minute reads them from its
/// histogram.
fn merge_minute(conn: &Connection, id: i64, m: &MinuteRow) -> rusqlite::Result<()> {
    type Old = (i64, i64, (Option<f64>, Option<f64>), Vec<u8>);
    let (checks, failures, extremes, hist): Old = conn
        .prepare_cached(
            "SELECT checks, failures, min_ms, max_ms, hist FROM health_minutes
             WHERE service_id = ?1 AND minute_ms = ?2",
        )?
        .query_row(params![id, i(m.minute_ms)], |r| {
            Ok((r.get(0)?, r.get(1)?, (r.get(2)?, r.get(3)?), r.get(4)?))
        })?;
    let mut stats = HealthStats::default();
    stats.merge(u(checks), u(failures), extremes, &hist);
    stats.merge(m.checks, m.failures, (m.min_ms, m.max_ms), &m.hist.encode());
    let summary = stats.summary();
    conn.prepare_cached(
        "UPDATE health_minutes SET checks = ?3, failures = ?4, p50_ms = ?5, p95_ms = ?6,
                min_ms = ?7, max_ms = ?8, hist = ?9
         WHERE service_id = ?1 AND minute_ms = ?2",
    )?
    .execute(params![
        id,
        i(m.minute_ms),
        i(stats.checks),
        i(stats.failures),
        summary.p50_ms,
        summary.p95_ms,
        stats.min_ms,
        summary.max_ms,
        stats.hist.encode(),
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::time::MINUTE_MS;

    fn minute(service: &str, minute_ms: u64, latencies: &[f64], failures: u64) -> Row {
        let mut hist = Histogram::default();
        for &l in latencies {
            hist.add(l);
        }
        Row::Minute(MinuteRow {
            service: service.into(),
            minute_ms,
            checks: latencies.len() as u64 + failures,
            failures,
            p50_ms: latencies.first().copied(),
            p95_ms: latencies.last().copied(),
            min_ms: latencies.first().copied(),
            max_ms: latencies.last().copied(),
            hist,
        })
    }

    #[test]
    fn health_reads_hours_and_ragged_minutes_alike() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("h.db")).unwrap();
        // Three hours of one check a minute, 10 ms, and one failure per hour.
        let rows: Vec<Row> = (0..180)
            .map(|m| minute("a", m * MINUTE_MS, &[10.0], u64::from(m % 60 == 0)))
            .collect();
        store.write(&rows).unwrap();
        for (from, to) in [
            (0, 3 * HOUR_MS),
            (30 * MINUTE_MS, 150 * MINUTE_MS),
            (5 * MINUTE_MS, 6 * MINUTE_MS),
        ] {
            let s = store.health("a", from, to).unwrap();
            let minutes = (to - from) / MINUTE_MS;
            assert_eq!(s.checks, minutes + s.failures, "{from}..{to}");
            assert_eq!(s.hist.total(), minutes);
            assert_eq!(s.percentile(0.95), Some(10.0));
        }
        assert_eq!(store.health("a", 0, 3 * HOUR_MS).unwrap().failures, 3);
        assert_eq!(
            store.health("nobody", 0, HOUR_MS).unwrap(),
            HealthStats::default()
        );
    }

    #[test]
    fn a_minute_written_twice_is_merged() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("h.db")).unwrap();
        store.write(&[minute("a", 0, &[5.0], 0)]).unwrap();
        store.write(&[minute("a", 0, &[7.0], 1)]).unwrap();
        let rows = store.minutes("a", 0, MINUTE_MS).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].checks, rows[0].failures, rows[0].max_ms),
            (3, 1, Some(7.0))
        );
        let hour = store.health("a", 0, HOUR_MS).unwrap();
        assert_eq!((hour.checks, hour.failures), (3, 1));
    }

    #[test]
    fn retention_keeps_recent_rows_and_open_incidents() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("h.db")).unwrap();
        let incident = |opened_ms, closed_ms| {
            Row::Change(Change::Incident(Incident {
                service: "a".into(),
                opened_ms,
                closed_ms,
                error_kind: None,
                restarts: 0,
                escalated: false,
                resolved_by: closed_ms.map(|_| Resolution::Auto),
            }))
        };
        store
            .write(&[
                minute("a", 0, &[1.0], 0),
                minute("a", 5 * HOUR_MS, &[1.0], 0),
                incident(0, Some(1000)),
                incident(2000, None),
                incident(5 * HOUR_MS, Some(5 * HOUR_MS + 1)),
            ])
            .unwrap();
        store.retain(2 * HOUR_MS + 5).unwrap();
        assert_eq!(store.minutes("a", 0, 10 * HOUR_MS).unwrap().len(), 1);
        let kept: Vec<u64> = store
            .incidents(None, 0, 10 * HOUR_MS)
            .unwrap()
            .iter()
            .map(|i| i.opened_ms)
            .collect();
        assert_eq!(kept, [2000, 5 * HOUR_MS]);
        assert_eq!(store.open_incidents().unwrap().len(), 1);
    }

    #[test]
    fn patterns_are_new_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("h.db")).unwrap();
        let svc = vec!["a".to_string(), "b".to_string()];
        assert!(store
            .note_pattern("correlated:a+b", "correlated", &svc, 10, "x")
            .unwrap());
        assert!(!store
            .note_pattern("correlated:a+b", "correlated", &svc, 20, "y")
            .unwrap());
        let p = store.patterns(0).unwrap();
        assert_eq!((p[0].first_seen_ms, p[0].last_seen_ms), (10, 20));
        assert_eq!(p[0].services, svc);
        assert_eq!(p[0].detail, "y");
    }

    #[test]
    fn corrupt_or_missing_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.db");
        std::fs::write(&bad, vec![b'x'; 8192]).unwrap();
        assert!(matches!(Store::open(&bad), Err(StoreError::Sqlite { .. })));
        let missing = dir.path().join("none.db");
        assert!(matches!(
            Store::open_read_only(&missing),
            Err(StoreError::Missing(_))
        ));
    }

    #[test]
    fn read_only_sees_what_the_writer_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let mut store = Store::open(&path).unwrap();
        store.write(&[minute("a", 0, &[3.0], 0)]).unwrap();
        let reader = Store::open_read_only(&path).unwrap();
        assert_eq!(reader.services().unwrap()[0].name, "a");
        assert_eq!(reader.health("a", 0, MINUTE_MS).unwrap().checks, 1);
    }
}

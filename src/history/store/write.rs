//! The batched writes of the store: one transaction per batch; minute rows
//! merged when their minute is already there and folded into their hour's
//! roll-up as they are written.

use super::{i, u, Store};
use crate::history::aggregate::MinuteRow;
use crate::history::feed::Row;
use crate::history::incidents::{Change, Resolution};
use crate::history::latency::{max_opt, min_opt, HealthStats};
use crate::history::time::{floor_to, HOUR_MS};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;

impl Store {
    pub(super) fn write_rows(&mut self, rows: &[Row]) -> rusqlite::Result<()> {
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
                         ON CONFLICT (opened_ms, service_id) DO UPDATE SET
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
                        "INSERT OR REPLACE INTO starts (service_id, at_ms, action, automatic, succeeded)
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
                        "UPDATE starts SET succeeded = ?3 WHERE at_ms = ?2 AND service_id = ?1",
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

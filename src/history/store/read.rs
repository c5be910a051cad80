//! The queries of the store: services, incidents, starts, manual actions,
//! health over any period (hourly roll-ups for whole hours, minutes at the
//! ragged ends), minute rows and patterns.

use super::{i, u, PatternRow, Result, ServiceInfo, Store};
use crate::history::aggregate::MinuteRow;
use crate::history::incidents::{Incident, ManualAction, Resolution, StartRecord};
use crate::history::latency::{HealthStats, Histogram};
use crate::history::time::{ceil_to, floor_to, HOUR_MS};
use rusqlite::{params, OptionalExtension};

impl Store {
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

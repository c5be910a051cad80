//! Memory and learning: the incident history of every service, its reports,
//! its patterns and the daily summary.
//!
//! The Registry publishes every event ([`crate::model::Event`]); the History
//! actor ([`crate::actors::history`]) feeds them to [`feed::Feed`], which turns
//! them into rows — incidents from [`incidents`], per-minute health aggregates
//! from [`aggregate`] — and hands them in batches to [`store::Store`]
//! (`data/history.db`, SQLite). Reports ([`report`]), timelines ([`timeline`]),
//! patterns ([`patterns`]) and daily summaries ([`summary`]) are computed from
//! the store. Everything here is plain code without actix and takes time as an
//! argument (Unix milliseconds, UTC; see [`time`]), so it is tested with
//! synthetic days of events; the actor only wires it to messages and timers,
//! and the CLI reads the store directly.
//!
//! | module | owns |
//! |---|---|
//! | [`incidents`] | the incident state machine, starts and manual actions |
//! | [`aggregate`] | health checks → one row per service and minute |
//! | [`latency`] | exact minute percentiles, mergeable histograms |
//! | [`feed`] | events → rows (the two above side by side) |
//! | [`store`] | the SQLite schema, batched writes, retention, queries |
//! | [`report`] | a period's figures against the previous period |
//! | [`patterns`] | flapping, latency trend, time-of-day, correlated failures |
//! | [`summary`] | the daily summary files and when they are due |
//! | [`timeline`] | `history NAME` |
//! | [`time`] | UTC days and hours, short durations |

pub mod aggregate;
pub mod feed;
pub mod incidents;
pub mod latency;
pub mod patterns;
pub mod report;
pub mod store;
pub mod summary;
pub mod time;
pub mod timeline;

#[cfg(test)]
mod tests;

//! The Audit actor: the single writer of `data/audit.log` and
//! `data/escalations.log`. Escalations are handed on to the Notifier
//! ([`super::notifier`]), which sends the alerts without blocking anyone
//! (SPEC §3.3, §4.5, §6).

use super::notifier::{Alert, Notify};
use crate::config::LogRotation;
use crate::logs::RotatingFile;
use crate::model::now_rfc3339;
use actix::prelude::*;
use log::{error, info, warn};
use serde::Serialize;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

const TARGET: &str = "audit";

/// The result column of an audit line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    Skipped,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "SUCCESS",
            Outcome::Failure => "FAILURE",
            Outcome::Skipped => "SKIPPED",
        }
    }
}

/// Append one operation to the audit trail.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Record {
    /// A service name, or `manager`.
    pub service: String,
    pub action: &'static str,
    pub outcome: Outcome,
    pub duration: Duration,
    pub detail: Option<String>,
    /// When it happened (not when the Audit actor got to write it: under load
    /// its mailbox may lag).
    pub at: std::time::SystemTime,
}

impl Record {
    pub fn new(service: &str, action: &'static str, outcome: Outcome) -> Self {
        Record {
            at: std::time::SystemTime::now(),
            service: service.to_string(),
            action,
            outcome,
            duration: Duration::ZERO,
            detail: None,
        }
    }
    pub fn took(mut self, d: Duration) -> Self {
        self.duration = d;
        self
    }
    pub fn detail(mut self, d: impl Into<String>) -> Self {
        self.detail = Some(d.into());
        self
    }
}

/// Raise an escalation: the block goes to `escalations.log` and stderr, and the
/// notifications fire.
#[derive(Message, Debug, Clone, Serialize)]
#[rtype(result = "()")]
pub struct Escalate {
    pub service: String,
    pub display_name: String,
    pub reason: String,
    pub consecutive_failures: u32,
    pub restart_attempts: u32,
    pub last_error: String,
    pub time: String,
}

/// A file the supervisor must write could not be written (disk full,
/// read-only folder…). Raised once until [`StorageRecovered`].
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct StorageFailed {
    /// What could not be written, e.g. the state file's path.
    pub what: String,
    pub error: String,
}

/// Writing `what` works again.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct StorageRecovered {
    pub what: String,
}

/// Format an audit line (without the newline): SPEC §6.
pub fn format_line(time: &str, r: &Record) -> String {
    let mut line = format!(
        "{time} | {} | {} | {} | {}ms",
        r.service,
        r.action,
        r.outcome.as_str(),
        r.duration.as_millis()
    );
    if let Some(d) = &r.detail {
        // One record, one line: a detail never breaks the line.
        line.push_str(" | ");
        line.push_str(&d.replace(['\n', '\r'], " "));
    }
    line
}

/// Format the escalation block (the seed's, plus the time and the reason).
pub fn format_escalation(e: &Escalate) -> String {
    format!(
        "🚨 ========================== ESCALATION REQUIRED ==========================\n\
         Service: {}\n\
         Status: CRITICAL - Repeated failures detected\n\
         Consecutive Failures: {}\n\
         Restart Attempts: {}\n\
         Last Error: {}\n\
         Reason: {}\n\
         Time: {}\n\
         ==========================================================================\n",
        e.service, e.consecutive_failures, e.restart_attempts, e.last_error, e.reason, e.time
    )
}

pub struct Audit {
    audit_path: PathBuf,
    /// The hash of the last line written: the next line's link.
    last_hash: String,
    escalations_path: PathBuf,
    audit: Option<RotatingFile>,
    rotation: LogRotation,
    /// Where escalation alerts go, when notifications are configured.
    notifier: Option<Recipient<Notify>>,
    /// Files that cannot be written right now (each escalated once).
    failing: std::collections::HashSet<String>,
}

impl Audit {
    pub fn new(
        audit_path: PathBuf,
        escalations_path: PathBuf,
        notifier: Option<Recipient<Notify>>,
        rotation: LogRotation,
    ) -> Self {
        Audit {
            last_hash: last_hash(&audit_path),
            audit_path,
            escalations_path,
            audit: None,
            rotation,
            notifier,
            failing: Default::default(),
        }
    }

    fn append(&mut self, line: &str, ctx: &mut Context<Self>) {
        let what = self.audit_path.display().to_string();
        if self.audit.is_none() {
            match RotatingFile::open(&self.audit_path, self.rotation) {
                Ok(f) => self.audit = Some(f),
                Err(e) => {
                    self.storage_failed(what, e.to_string(), ctx);
                    return;
                }
            }
        }
        if let Some(f) = self.audit.as_mut() {
            // One write of the whole line on an O_APPEND file: never half a line.
            let (mut sealed, hash) = crate::chain::seal(&self.last_hash, line);
            sealed.push('\n');
            match f.write_record(sealed.as_bytes()) {
                Ok(()) => {
                    self.last_hash = hash;
                    self.storage_recovered(&what);
                }
                Err(e) => {
                    self.audit = None;
                    self.storage_failed(what, e.to_string(), ctx);
                }
            }
        }
    }

    fn record(&mut self, r: Record, ctx: &mut Context<Self>) {
        let time = humantime::format_rfc3339_millis(r.at).to_string();
        let line = format_line(&time, &r);
        info!(target: TARGET, "{line}");
        self.append(&line, ctx);
    }

    /// Escalate a storage failure once; the supervisor goes on supervising.
    fn storage_failed(&mut self, what: String, error: String, _ctx: &mut Context<Self>) {
        if !self.failing.insert(what.clone()) {
            return;
        }
        error!(target: TARGET, "cannot write {what}: {error}; supervising goes on, writing resumes when possible");
        let e = Escalate {
            service: "manager".into(),
            display_name: "AI DAWG Manager".into(),
            reason: format!("cannot write {what}"),
            consecutive_failures: 0,
            restart_attempts: 0,
            last_error: error,
            time: now_rfc3339(),
        };
        self.raise(e);
    }

    fn storage_recovered(&mut self, what: &str) {
        if self.failing.remove(what) {
            info!(target: TARGET, "writing {what} works again");
        }
    }

    fn raise(&mut self, e: Escalate) {
        let block = format_escalation(&e);
        eprint!("{block}");
        warn!(target: TARGET, "escalation raised for {}: {}", e.service, e.reason);
        let written = crate::process::spawn::open_log(&self.escalations_path)
            .and_then(|mut f| f.write_all(block.as_bytes()));
        if let Err(err) = written {
            error!(target: TARGET, "cannot write {}: {err}", self.escalations_path.display());
        }
        if let Some(notifier) = &self.notifier {
            notifier.do_send(Notify(Alert::escalation(&e)));
        }
    }
}

/// The hash of the last sealed line of the trail (empty when there is none),
/// so a restarted supervisor continues the chain.
fn last_hash(path: &std::path::Path) -> String {
    let Ok(mut f) = File::open(path) else {
        return String::new();
    };
    let tail = crate::persist::tail(&mut f, 1).unwrap_or_default();
    let text = String::from_utf8_lossy(&tail);
    crate::chain::split(text.trim_end_matches('\n'))
        .1
        .unwrap_or_default()
        .to_string()
}

impl Actor for Audit {
    type Context = Context<Self>;
}

impl Handler<Record> for Audit {
    type Result = ();
    fn handle(&mut self, r: Record, ctx: &mut Context<Self>) {
        self.record(r, ctx);
    }
}

impl Handler<Escalate> for Audit {
    type Result = ();
    fn handle(&mut self, e: Escalate, _: &mut Context<Self>) {
        self.raise(e);
    }
}

impl Handler<StorageFailed> for Audit {
    type Result = ();
    fn handle(&mut self, m: StorageFailed, ctx: &mut Context<Self>) {
        self.storage_failed(m.what, m.error, ctx);
    }
}

impl Handler<StorageRecovered> for Audit {
    type Result = ();
    fn handle(&mut self, m: StorageRecovered, _: &mut Context<Self>) {
        self.storage_recovered(&m.what);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_line_has_the_spec_shape() {
        let r = Record::new("producer", "start", Outcome::Success)
            .took(Duration::from_millis(2345))
            .detail("pid 42\nsecond line");
        assert_eq!(
            format_line("2025-10-09T12:00:00.000Z", &r),
            "2025-10-09T12:00:00.000Z | producer | start | SUCCESS | 2345ms | pid 42 second line"
        );
    }

    #[test]
    fn escalation_block_keeps_the_seed_lines() {
        let b = format_escalation(&Escalate {
            service: "producer".into(),
            display_name: "AI Producer".into(),
            reason: "restart budget spent".into(),
            consecutive_failures: 5,
            restart_attempts: 3,
            last_error: "ECONNREFUSED".into(),
            time: "t".into(),
        });
        assert!(b.starts_with("🚨 ========================== ESCALATION REQUIRED"));
        for l in [
            "Service: producer",
            "Status: CRITICAL - Repeated failures detected",
            "Consecutive Failures: 5",
            "Restart Attempts: 3",
            "Last Error: ECONNREFUSED",
        ] {
            assert!(b.contains(l), "{l}");
        }
    }
}

//! Human output (SPEC §6): the status summary in the seed's form, the outcome
//! of actions, and the stale status read from the state file.

use super::exit;
use crate::model::{KillSwitch, KillSwitchSource, ServiceRecord, ServiceStatus, Summary};
use crate::paths::DataPaths;
use crate::persist;
use crate::protocol::{ActionsReport, StatusReport};
use std::fmt::Write;
use std::time::Duration;

fn icon(s: ServiceStatus) -> &'static str {
    match s {
        ServiceStatus::Running => "✅",
        ServiceStatus::Starting => "🔄",
        ServiceStatus::Stopped => "🛑",
        ServiceStatus::Unhealthy => "⚠️ ",
        ServiceStatus::Backoff => "⏳",
        ServiceStatus::Escalated => "🚨",
        ServiceStatus::Unknown => "❓",
    }
}

/// "5m 30s": whole seconds, humantime style.
pub fn uptime(ms: u64) -> String {
    humantime::format_duration(Duration::from_secs(ms / 1000)).to_string()
}

fn service_line(r: &ServiceRecord, colour: bool) -> String {
    let name = if r.display_name.is_empty() {
        &r.name
    } else {
        &r.display_name
    };
    let word = super::style::status_word(r.status, &r.status.as_str().to_uppercase(), colour);
    let mut line = match r.port {
        Some(p) => format!("{} {name} (port {p}): {word}", icon(r.status)),
        None => format!("{} {name}: {word}", icon(r.status)),
    };
    match r.status {
        ServiceStatus::Running | ServiceStatus::Starting => {
            let _ = write!(line, " Uptime: {}", uptime(r.uptime_ms));
        }
        ServiceStatus::Backoff => {
            if let Some(at) = &r.next_restart_at {
                let _ = write!(line, " Next restart: {at}");
            }
        }
        _ => {}
    }
    if matches!(
        r.status,
        ServiceStatus::Unhealthy | ServiceStatus::Backoff | ServiceStatus::Escalated
    ) {
        if let Some(e) = &r.last_error {
            let _ = write!(line, " Last error: {e}");
        }
    }
    line
}

fn summary_block(out: &mut String, s: &Summary) {
    let _ = writeln!(out, "Total Services: {}", s.total);
    let _ = writeln!(out, "✅ Running: {}", s.running);
    let _ = writeln!(out, "🛑 Stopped: {}", s.stopped);
    let _ = writeln!(out, "⚠️  Unhealthy: {}", s.unhealthy);
    let _ = writeln!(out, "❓ Unknown: {}", s.unknown);
    for (label, n) in [
        ("🔄 Starting", s.starting),
        ("⏳ Backoff", s.backoff),
        ("🚨 Escalated", s.escalated),
    ] {
        if n > 0 {
            let _ = writeln!(out, "{label}: {n}");
        }
    }
}

/// The seed's status summary. `stale` names when the state was written, for a
/// status read from the file with no supervisor running.
pub fn status(report: &StatusReport, stale: Option<&str>) -> String {
    status_with(report, stale, super::style::enabled())
}

pub fn status_with(report: &StatusReport, stale: Option<&str>, colour: bool) -> String {
    let mut out = String::new();
    if let Some(when) = stale {
        let _ = writeln!(
            out,
            "⚠️  No supervisor is running: last persisted state (STALE, written {when})"
        );
    }
    let _ = writeln!(
        out,
        "📊 ==================== Status Summary ===================="
    );
    summary_block(&mut out, &report.summary);
    if report.kill_switch.on {
        let _ = writeln!(
            out,
            "🛑 Emergency kill switch: ON ({:?})",
            report.kill_switch.source
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "📋 Service Details:");
    for r in &report.services {
        let _ = writeln!(out, "{}", service_line(r, colour));
    }
    let _ = writeln!(
        out,
        "=========================================================="
    );
    out
}

pub fn actions(a: &ActionsReport) -> String {
    let mut out = String::new();
    if a.results.is_empty() {
        let _ = writeln!(out, "✅ {} requested", a.action);
    }
    for r in &a.results {
        let mark = if r.ok { "✅" } else { "❌" };
        let _ = writeln!(out, "{mark} {}: {}", r.service, r.message);
    }
    out
}

/// `status` with no supervisor: print the last persisted state, marked stale; exit 3.
/// The kill switch a supervisor would start with: the data folder's setting,
/// else the config's value (when the config can be read).
fn stale_kill_switch(paths: &DataPaths, config: &std::path::Path) -> Option<KillSwitch> {
    if let Some(f) = std::fs::read(&paths.kill_switch)
        .ok()
        .and_then(|b| serde_json::from_slice::<crate::supervisor::KillSwitchFile>(&b).ok())
    {
        return Some(KillSwitch {
            on: f.on,
            source: KillSwitchSource::Runtime,
        });
    }
    crate::config::Config::load(config)
        .ok()
        .map(|c| KillSwitch {
            on: c.safety.emergency_kill_switch,
            source: KillSwitchSource::Config,
        })
}

pub fn stale_status(
    paths: &DataPaths,
    config: &std::path::Path,
    names: &[String],
    json: bool,
) -> i32 {
    let state = match persist::read_state(&paths.state) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "❌ no supervisor is running and no readable state at {} ({e})",
                paths.state.display()
            );
            return exit::NO_SUPERVISOR;
        }
    };
    let mut services: Vec<ServiceRecord> = state.into_iter().map(|(_, r)| r).collect();
    if !names.is_empty() {
        services.retain(|r| names.contains(&r.name));
    }
    let summary = Summary::of(&services);
    let written = std::fs::metadata(&paths.state)
        .and_then(|m| m.modified())
        .map(|t| humantime::format_rfc3339_seconds(t).to_string())
        .unwrap_or_else(|_| "at an unknown time".into());
    let kill_switch = stale_kill_switch(paths, config);
    if json {
        let v = serde_json::json!({
            "stale": true,
            "written": written,
            "services": services,
            "kill_switch": kill_switch,
            "summary": summary,
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        let report = StatusReport {
            services,
            kill_switch: kill_switch.unwrap_or(KillSwitch {
                on: false,
                source: KillSwitchSource::Config,
            }),
            summary,
        };
        print!("{}", status(&report, Some(&written)));
    }
    exit::NO_SUPERVISOR
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_keeps_the_seed_form() {
        let mut a = ServiceRecord::new("producer", "AI Producer", Some(8001));
        a.status = ServiceStatus::Running;
        a.uptime_ms = 330_000;
        let report = StatusReport {
            summary: Summary::of([&a]),
            services: vec![a],
            kill_switch: KillSwitch {
                on: false,
                source: KillSwitchSource::Config,
            },
        };
        let text = status_with(&report, None, false);
        assert!(text.starts_with("📊 ==================== Status Summary ===================="));
        assert!(text.contains(
            "Total Services: 1\n✅ Running: 1\n🛑 Stopped: 0\n⚠️  Unhealthy: 0\n❓ Unknown: 0\n"
        ));
        assert!(text
            .contains("📋 Service Details:\n✅ AI Producer (port 8001): RUNNING Uptime: 5m 30s\n"));
    }
}

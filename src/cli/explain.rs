//! `status --explain NAME`: why a service is in its state, in sentences an
//! operator can act on — its recent exits, the restart budget used, when the
//! cooldown ends, the last probe error.

use super::render::uptime;
use crate::model::{ServiceRecord, ServiceStatus};
use crate::protocol::StatusReport;
use std::fmt::Write;
use std::time::Duration;

fn dur(ms: u64) -> String {
    humantime::format_duration(Duration::from_millis(ms)).to_string()
}

fn why(r: &ServiceRecord, kill_switch: bool) -> String {
    let err = r.last_error.as_deref().unwrap_or("no error recorded");
    match r.status {
        ServiceStatus::Running => format!(
            "healthy: its last health check passed{}",
            r.last_health_check
                .as_deref()
                .map(|t| format!(" at {t}"))
                .unwrap_or_default()
        ),
        ServiceStatus::Starting => format!(
            "started {} ago and waiting for its first passing health check",
            uptime(r.uptime_ms)
        ),
        ServiceStatus::Unhealthy if kill_switch => format!(
            "failing ({err}), and the emergency kill switch is on: nothing restarts it automatically; \
             `ai-dawg-manager restart {}` or `kill-switch off`",
            r.name
        ),
        ServiceStatus::Unhealthy => format!("failing: {err}"),
        ServiceStatus::Backoff => format!(
            "failed again within the restart cooldown; it restarts at {} ({err})",
            r.next_restart_at.as_deref().unwrap_or("the end of the cooldown")
        ),
        ServiceStatus::Escalated => format!(
            "automatic recovery gave up ({err}); a human is needed: fix the cause, then \
             `ai-dawg-manager recover {}`",
            r.name
        ),
        ServiceStatus::Stopped => {
            "stopped on purpose (a manual stop, not autostart, or held by the kill switch); \
             `ai-dawg-manager start NAME` starts it"
                .replace("NAME", &r.name)
        }
        ServiceStatus::Unknown => "not looked at yet (waiting for its dependencies?)".into(),
    }
}

pub fn explain(report: &StatusReport) -> String {
    let mut out = String::new();
    for r in &report.services {
        let _ = writeln!(
            out,
            "{} ({}) is {}",
            r.name,
            r.display_name,
            r.status.as_str().to_uppercase()
        );
        let _ = writeln!(out, "  why: {}", why(r, report.kill_switch.on));
        if let Some(pid) = r.pid {
            let _ = writeln!(out, "  process: pid {pid}, up {}", uptime(r.uptime_ms));
        }
        if let Some(l) = &r.limits {
            let _ = writeln!(
                out,
                "  restart budget: {} of {} used in this incident (back after {} healthy); cooldown {}",
                r.restart_attempts,
                l.max_restart_attempts,
                dur(l.stable_after_ms),
                dur(l.restart_cooldown_ms)
            );
            let _ = writeln!(
                out,
                "  consecutive failures: {} (escalates at {})",
                r.consecutive_failures, l.max_consecutive_failures
            );
        } else {
            let _ = writeln!(
                out,
                "  restarts in this incident: {}; consecutive failures: {}",
                r.restart_attempts, r.consecutive_failures
            );
        }
        let _ = writeln!(out, "  restarts in total: {}", r.restart_count);
        if let Some(at) = &r.next_restart_at {
            let _ = writeln!(out, "  next restart: {at}");
        }
        if let Some(e) = &r.last_error {
            let _ = writeln!(out, "  last error: {e}");
        }
        match (&r.last_health_check, r.last_health_latency_ms) {
            (Some(t), Some(ms)) => {
                let _ = writeln!(out, "  last health check: {t} ({ms:.1} ms)");
            }
            (Some(t), None) => {
                let _ = writeln!(out, "  last health check: {t}");
            }
            _ => {}
        }
        if !r.recent_exits.is_empty() {
            let _ = writeln!(out, "  recent exits:");
            for e in &r.recent_exits {
                let _ = writeln!(out, "    {e}");
            }
        }
        if report.kill_switch.on {
            let _ = writeln!(out, "  kill switch: ON ({})", report.kill_switch.source);
        }
    }
    out
}

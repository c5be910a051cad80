//! The Notifier actor: sends alerts to the sinks of `notifications` (a webhook,
//! a whitelisted command, or both) — an *escalation* alert when Audit raises
//! one, and a *resolution* alert when an escalated service is healthy again
//! (after a manual `recover`, `restart` or `start`), which it sees on the
//! Registry's event stream.
//!
//! Never blocking: each sink has a bounded queue (the oldest waiting alert is
//! dropped when it is full) and one send in flight, run with `ctx.spawn`, so
//! alerts reach a sink in order. A failed send is retried after a backoff that
//! doubles each time, up to `retries` times. Every attempt, and every drop, is
//! an audit line with the action `notify`.

use super::audit::{Escalate, Outcome, Record};
use super::registry::Published;
use crate::config::{Notifications, NotifyFormat};
use crate::model::{now_rfc3339, EventKind, ServiceStatus};
use actix::prelude::*;
use log::{debug, warn};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

const TARGET: &str = "notifier";

// ---- messages the Notifier receives ------------------------------------------

/// Send this alert to every sink (Audit, on an escalation).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Notify(pub Alert);

/// A sink's backoff is over: try its alert in flight again (sent to self).
#[derive(Message, Debug)]
#[rtype(result = "()")]
struct RetryDue {
    sink: usize,
}

// ---- the alert ------------------------------------------------------------------

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// Automatic recovery gave up: a human is needed.
    Escalation,
    /// The escalated service is healthy again.
    Resolution,
    /// The daily summary of the incident history was written.
    Summary,
}

/// The body of an alert: the escalation's fields (SPEC §3.3), what the alert
/// is about, and one line for humans.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub alert: AlertKind,
    pub service: String,
    pub display_name: String,
    /// Why it escalated, or how it was resolved.
    pub reason: String,
    pub consecutive_failures: u32,
    pub restart_attempts: u32,
    pub last_error: String,
    /// RFC 3339 time of the escalation or of the resolution.
    pub time: String,
    /// For a resolution: when the escalation was raised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalated_at: Option<String>,
    /// The alert in one line (the `text` of the Slack format).
    pub text: String,
}

impl Alert {
    pub fn escalation(e: &Escalate) -> Self {
        Alert {
            alert: AlertKind::Escalation,
            service: e.service.clone(),
            display_name: e.display_name.clone(),
            reason: e.reason.clone(),
            consecutive_failures: e.consecutive_failures,
            restart_attempts: e.restart_attempts,
            last_error: e.last_error.clone(),
            time: e.time.clone(),
            escalated_at: None,
            text: format!(
                "🚨 {} ({}) ESCALATED: {}; last error: {} — needs a human (`ai-dawg-manager recover {}`)",
                e.display_name, e.service, e.reason, e.last_error, e.service
            ),
        }
    }

    /// An escalation raised before this supervisor started: only its service
    /// is known.
    pub fn inherited(service: &str) -> Self {
        Alert {
            alert: AlertKind::Escalation,
            service: service.to_string(),
            display_name: service.to_string(),
            reason: "escalated before the supervisor restarted".into(),
            consecutive_failures: 0,
            restart_attempts: 0,
            last_error: String::new(),
            time: String::new(),
            escalated_at: None,
            text: String::new(),
        }
    }

    /// The resolution of `escalation`; `how` says what brought it back.
    pub fn resolution(escalation: &Alert, how: &str) -> Self {
        let reason = format!("healthy again {how}");
        let since = if escalation.time.is_empty() {
            String::new()
        } else {
            format!(" (escalated at {})", escalation.time)
        };
        Alert {
            alert: AlertKind::Resolution,
            reason: reason.clone(),
            time: now_rfc3339(),
            escalated_at: Some(escalation.time.clone()).filter(|t| !t.is_empty()),
            text: format!(
                "✅ {} ({}) RESOLVED: {reason}{since}",
                escalation.display_name, escalation.service
            ),
            ..escalation.clone()
        }
    }

    /// The daily summary of `day`, written to `path`; `text` is its report.
    pub fn summary(day: &str, path: &std::path::Path, text: &str) -> Self {
        Alert {
            alert: AlertKind::Summary,
            service: "manager".into(),
            display_name: "AI DAWG Manager".into(),
            reason: format!("daily summary of {day}: {}", path.display()),
            consecutive_failures: 0,
            restart_attempts: 0,
            last_error: String::new(),
            time: now_rfc3339(),
            escalated_at: None,
            text: text.to_string(),
        }
    }

    fn label(&self) -> &'static str {
        match self.alert {
            AlertKind::Escalation => "escalation",
            AlertKind::Resolution => "resolution",
            AlertKind::Summary => "summary",
        }
    }
}

// ---- the actor ------------------------------------------------------------------

enum Target {
    Webhook { url: String, format: NotifyFormat },
    Command { argv: Vec<String>, program: PathBuf },
}

impl Target {
    fn describe(&self) -> String {
        match self {
            Target::Webhook { url, .. } => format!("webhook {url}"),
            Target::Command { argv, .. } => format!("command {}", argv.join(" ")),
        }
    }
}

/// An alert on its way to one sink.
struct Pending {
    alert: Arc<Alert>,
    /// 1 for the first try.
    attempt: u32,
}

struct Sink {
    target: Target,
    waiting: VecDeque<Pending>,
    in_flight: Option<Pending>,
}

/// An escalation not yet resolved.
struct Open {
    alert: Alert,
    /// The last human action on the service since ("manual recover", ...).
    lifted_by: Option<String>,
}

pub struct Notifier {
    sinks: Vec<Sink>,
    retries: u32,
    retry_backoff: Duration,
    timeout: Duration,
    queue_size: usize,
    audit: Recipient<Record>,
    open: HashMap<String, Open>,
    /// The last manual start of each service ("after a manual recover").
    last_manual: HashMap<String, String>,
    /// Created in this actor's arbiter (awc clients are not `Send`).
    client: Option<awc::Client>,
}

impl Notifier {
    /// `None` when the settings name no sink.
    pub fn new(n: &Notifications, audit: Recipient<Record>) -> Option<Self> {
        let mut sinks = vec![];
        if let Some(url) = &n.webhook_url {
            sinks.push(Target::Webhook {
                url: url.clone(),
                format: n.format,
            });
        }
        if let (Some(argv), Some(program)) = (&n.command, &n.command_program) {
            sinks.push(Target::Command {
                argv: argv.clone(),
                program: program.clone(),
            });
        }
        if sinks.is_empty() {
            return None;
        }
        Some(Notifier {
            sinks: sinks
                .into_iter()
                .map(|target| Sink {
                    target,
                    waiting: VecDeque::new(),
                    in_flight: None,
                })
                .collect(),
            retries: n.retries,
            retry_backoff: n.retry_backoff,
            timeout: n.timeout,
            queue_size: n.queue_size,
            audit,
            open: HashMap::new(),
            last_manual: HashMap::new(),
            client: None,
        })
    }

    fn enqueue(&mut self, alert: Alert, ctx: &mut Context<Self>) {
        let alert = Arc::new(alert);
        for i in 0..self.sinks.len() {
            let sink = &mut self.sinks[i];
            if sink.waiting.len() >= self.queue_size {
                if let Some(dropped) = sink.waiting.pop_front() {
                    warn!(target: TARGET, "{}: queue full, dropping the oldest alert", sink.target.describe());
                    self.audit.do_send(
                        Record::new(&dropped.alert.service, "notify", Outcome::Failure).detail(
                            format!(
                                "{} alert to {} dropped: {} alerts already waiting",
                                dropped.alert.label(),
                                sink.target.describe(),
                                self.queue_size
                            ),
                        ),
                    );
                }
            }
            sink.waiting.push_back(Pending {
                alert: alert.clone(),
                attempt: 1,
            });
            self.pump(i, ctx);
        }
    }

    /// Start the next send of sink `i` if none is in flight.
    fn pump(&mut self, i: usize, ctx: &mut Context<Self>) {
        let sink = &mut self.sinks[i];
        if sink.in_flight.is_some() {
            return;
        }
        if let Some(next) = sink.waiting.pop_front() {
            sink.in_flight = Some(next);
            self.send(i, ctx);
        }
    }

    /// Send sink `i`'s alert in flight.
    fn send(&mut self, i: usize, ctx: &mut Context<Self>) {
        let Some(pending) = &self.sinks[i].in_flight else {
            return;
        };
        let alert = pending.alert.clone();
        let timeout = self.timeout;
        let started = Instant::now();
        let attempt: Pin<Box<dyn Future<Output = Result<String, String>>>> =
            match &self.sinks[i].target {
                Target::Webhook { url, format } => {
                    let client = self
                        .client
                        .get_or_insert_with(|| {
                            awc::Client::builder()
                                .disable_redirects()
                                .timeout(timeout)
                                .finish()
                        })
                        .clone();
                    Box::pin(post(client, url.clone(), webhook_body(&alert, *format)))
                }
                Target::Command { argv, program } => Box::pin(run_command(
                    program.clone(),
                    argv.clone(),
                    serde_json::to_vec(&*alert).unwrap_or_default(),
                    timeout,
                )),
            };
        ctx.spawn(
            attempt
                .into_actor(self)
                .map(move |result, act, ctx| act.sent(i, result, started.elapsed(), ctx)),
        );
    }

    /// A send of sink `i` finished: audit it, then retry, give up or go on.
    fn sent(
        &mut self,
        i: usize,
        result: Result<String, String>,
        took: Duration,
        ctx: &mut Context<Self>,
    ) {
        let retries = self.retries;
        let sink = &mut self.sinks[i];
        let Some(pending) = sink.in_flight.as_mut() else {
            return;
        };
        let of = retries + 1;
        let what = format!(
            "{} alert to {} (attempt {}/{of})",
            pending.alert.label(),
            sink.target.describe(),
            pending.attempt
        );
        let service = pending.alert.service.clone();
        match result {
            Ok(detail) => {
                debug!(target: TARGET, "{what}: {detail}");
                self.audit.do_send(
                    Record::new(&service, "notify", Outcome::Success)
                        .took(took)
                        .detail(format!("{what}: {detail}")),
                );
                sink.in_flight = None;
                self.pump(i, ctx);
            }
            Err(e) if pending.attempt < of => {
                let wait = self
                    .retry_backoff
                    .saturating_mul(1 << (pending.attempt - 1).min(16));
                pending.attempt += 1;
                warn!(target: TARGET, "{what} failed: {e}; retrying in {}", humantime::format_duration(wait));
                self.audit.do_send(
                    Record::new(&service, "notify", Outcome::Failure)
                        .took(took)
                        .detail(format!(
                            "{what}: {e}; retrying in {}",
                            humantime::format_duration(wait)
                        )),
                );
                ctx.notify_later(RetryDue { sink: i }, wait);
            }
            Err(e) => {
                warn!(target: TARGET, "{what} failed: {e}; giving up");
                self.audit.do_send(
                    Record::new(&service, "notify", Outcome::Failure)
                        .took(took)
                        .detail(format!("{what}: {e}; giving up")),
                );
                sink.in_flight = None;
                self.pump(i, ctx);
            }
        }
    }
}

use std::future::Future;
use std::pin::Pin;

/// The webhook's JSON body: the alert, or Slack's `{"text": ...}`.
pub fn webhook_body(alert: &Alert, format: NotifyFormat) -> Vec<u8> {
    match format {
        NotifyFormat::Json => serde_json::to_vec(alert),
        NotifyFormat::Slack => serde_json::to_vec(&serde_json::json!({ "text": alert.text })),
    }
    .unwrap_or_default()
}

/// POST `body` as JSON; `Ok` on a 2xx answer.
async fn post(client: awc::Client, url: String, body: Vec<u8>) -> Result<String, String> {
    let answer = client
        .post(&url)
        .insert_header(("Content-Type", "application/json"))
        .insert_header(("User-Agent", "ai-dawg-manager"))
        .send_body(body)
        .await
        .map_err(|e| format!("webhook: {e}"))?;
    let status = answer.status();
    if status.is_success() {
        Ok(format!("HTTP {}", status.as_u16()))
    } else {
        Err(format!("HTTP {}", status.as_u16()))
    }
}

/// Run the notification command with `body` on its stdin; `Ok` on exit 0.
async fn run_command(
    program: PathBuf,
    argv: Vec<String>,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<String, String> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(argv.iter().skip(1))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| format!("cannot run: {e}"))?;
    // Ours to wait on: the orphan reaper must leave it alone.
    let _tracked = crate::process::reaper::guard(child.id());
    let run = async {
        if let Some(mut stdin) = child.stdin.take() {
            // A command that ignores its stdin may close it early: not a failure.
            let _ = stdin.write_all(&body).await;
        }
        child.wait().await
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(Ok(s)) if s.success() => Ok("exit 0".into()),
        Ok(Ok(s)) => Err(s.to_string()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "timed out after {}",
            humantime::format_duration(timeout)
        )),
    }
}

impl Actor for Notifier {
    type Context = Context<Self>;
}

impl Handler<Notify> for Notifier {
    type Result = ();
    fn handle(&mut self, m: Notify, ctx: &mut Context<Self>) {
        if m.0.alert == AlertKind::Escalation {
            self.open.insert(
                m.0.service.clone(),
                Open {
                    alert: m.0.clone(),
                    lifted_by: None,
                },
            );
        }
        self.enqueue(m.0, ctx);
    }
}

impl Handler<Published> for Notifier {
    type Result = ();
    fn handle(&mut self, m: Published, ctx: &mut Context<Self>) {
        let event = &m.0;
        match &event.kind {
            EventKind::Started {
                action, automatic, ..
            } => {
                if *automatic {
                    self.last_manual.remove(&event.service);
                } else {
                    let how = format!("after a manual {action}");
                    if let Some(open) = self.open.get_mut(&event.service) {
                        open.lifted_by = Some(how.clone());
                    }
                    self.last_manual.insert(event.service.clone(), how);
                }
            }
            EventKind::Status { from, to } => {
                if *from == ServiceStatus::Escalated && !self.open.contains_key(&event.service) {
                    // Escalated before this supervisor started (the status is
                    // kept across restarts): its resolution is news all the same.
                    self.open.insert(
                        event.service.clone(),
                        Open {
                            alert: Alert::inherited(&event.service),
                            lifted_by: self.last_manual.get(&event.service).cloned(),
                        },
                    );
                }
                if *to == ServiceStatus::Running {
                    if let Some(open) = self.open.remove(&event.service) {
                        let how = open.lifted_by.as_deref().unwrap_or("after the escalation");
                        let alert = Alert::resolution(&open.alert, how);
                        self.enqueue(alert, ctx);
                    }
                }
            }
            _ => {}
        }
    }
}

impl Handler<RetryDue> for Notifier {
    type Result = ();
    fn handle(&mut self, m: RetryDue, ctx: &mut Context<Self>) {
        self.send(m.sink, ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escalate() -> Escalate {
        Escalate {
            service: "producer".into(),
            display_name: "AI Producer".into(),
            reason: "restart budget spent (3 of 3 restarts)".into(),
            consecutive_failures: 4,
            restart_attempts: 3,
            last_error: "ECONNREFUSED".into(),
            time: "2025-10-09T12:00:00.000Z".into(),
        }
    }

    #[test]
    fn an_escalation_alert_keeps_the_escalation_fields() {
        let v = serde_json::to_value(Alert::escalation(&escalate())).unwrap();
        assert_eq!(v["alert"], "escalation");
        assert_eq!(v["service"], "producer");
        assert_eq!(v["consecutive_failures"], 4);
        assert_eq!(v["restart_attempts"], 3);
        assert_eq!(v["last_error"], "ECONNREFUSED");
        assert!(v.get("escalated_at").is_none());
        assert!(v["text"].as_str().unwrap().contains("ESCALATED"));
    }

    #[test]
    fn an_inherited_escalation_resolves_without_a_time() {
        let r = Alert::resolution(&Alert::inherited("producer"), "after a manual recover");
        assert_eq!(r.escalated_at, None);
        assert_eq!(
            r.text,
            "✅ producer (producer) RESOLVED: healthy again after a manual recover"
        );
    }

    #[test]
    fn slack_gets_only_the_text() {
        let a = Alert::escalation(&escalate());
        let v: serde_json::Value =
            serde_json::from_slice(&webhook_body(&a, NotifyFormat::Slack)).unwrap();
        assert_eq!(v, serde_json::json!({ "text": a.text }));
        let v: serde_json::Value =
            serde_json::from_slice(&webhook_body(&a, NotifyFormat::Json)).unwrap();
        assert_eq!(v["alert"], "escalation");
    }

    #[test]
    fn a_resolution_names_its_escalation() {
        let e = Alert::escalation(&escalate());
        let r = Alert::resolution(&e, "after a manual recover");
        assert_eq!(r.alert, AlertKind::Resolution);
        assert_eq!(r.reason, "healthy again after a manual recover");
        assert_eq!(r.escalated_at.as_deref(), Some("2025-10-09T12:00:00.000Z"));
        assert!(r.text.starts_with("✅ AI Producer (producer) RESOLVED"));
    }
}

//! `reload` as a diff between the running config and the file: services added
//! are created (and started if `autostart`), removed ones are stopped and
//! dropped, changed ones get their new definition (a new process only when
//! the command, cwd, environment or port changed), and monitoring and safety
//! settings apply live. An invalid file changes nothing.

use super::{limits_of, settings_of, Manager};
use crate::actors::audit::{Outcome, Record};
use crate::actors::recovery::{Unregister, UpdateSettings};
use crate::actors::registry::{AddService, RemoveService, UpdateMeta};
use crate::actors::service::{Reconfigure, Stop};
use crate::config::Config;
use crate::model::{KillSwitch, KillSwitchSource, ServiceRecord};
use crate::protocol::{ActionOutcome, ActionsReport, ControlResponse, ErrorCode};
use log::{info, warn};
use std::sync::Arc;

const TARGET: &str = "manager";

impl Manager {
    pub(super) fn reload(&mut self) -> ControlResponse {
        let new = match Config::load(&self.config.path) {
            Ok(c) if !c.enabled => Err(
                "the new config says \"enabled\": false; use `shutdown` to stop the supervisor"
                    .to_string(),
            ),
            Ok(c) => Ok(Arc::new(c)),
            Err(e) => Err(e.to_string()),
        };
        let new = match new {
            Ok(c) => c,
            Err(e) => {
                warn!(target: TARGET, "reload refused, nothing changed: {e}");
                self.audit.do_send(
                    Record::new("manager", "reload", Outcome::Failure)
                        .detail(format!("config refused, nothing changed: {e}")),
                );
                return ControlResponse::error(
                    ErrorCode::Failed,
                    format!("reload refused, nothing changed:\n{e}"),
                );
            }
        };
        let old = std::mem::replace(&mut self.config, new.clone());
        let mut results = vec![];
        let mut outcome = |service: &str, message: String| {
            results.push(ActionOutcome {
                service: service.to_string(),
                ok: true,
                message,
                pid: None,
            })
        };

        for spec in &old.services {
            if new.service(&spec.name).is_some() {
                continue;
            }
            if let Some(addr) = self.services.remove(&spec.name) {
                let stopping = addr.send(Stop { by_hand: false });
                // The actor goes away once stopped and no address is left.
                actix_rt::spawn(async move {
                    let _ = stopping.await;
                });
            }
            self.recovery.do_send(Unregister {
                service: spec.name.clone(),
            });
            self.registry.do_send(RemoveService(spec.name.clone()));
            self.pending.retain(|p| p != &spec.name);
            self.held_by_kill_switch.retain(|p| p != &spec.name);
            self.running.remove(&spec.name);
            outcome(&spec.name, "removed: stopped".into());
        }

        for spec in &new.services {
            match old.service(&spec.name) {
                None => {
                    let mut record = ServiceRecord::new(&spec.name, &spec.display_name, spec.port);
                    record.limits = Some(limits_of(&new, spec));
                    self.registry.do_send(AddService(record));
                    self.spawn_service(spec, Default::default());
                    if spec.autostart {
                        self.want_started(&spec.name);
                        outcome(&spec.name, "added: starting".into());
                    } else {
                        self.registry
                            .do_send(crate::actors::registry::ServiceStopped {
                                service: spec.name.clone(),
                                by_hand: false,
                            });
                        outcome(&spec.name, "added (not autostart)".into());
                    }
                }
                Some(before) => {
                    self.recovery.do_send(UpdateSettings {
                        service: spec.name.clone(),
                        display_name: spec.display_name.clone(),
                        settings: settings_of(&new, spec, self.kill_switch.on),
                    });
                    self.registry.do_send(UpdateMeta {
                        service: spec.name.clone(),
                        display_name: spec.display_name.clone(),
                        port: spec.port,
                        limits: limits_of(&new, spec),
                    });
                    if before != spec {
                        if let Some(addr) = self.services.get(&spec.name) {
                            addr.do_send(Reconfigure(Arc::new(spec.clone())));
                        }
                        outcome(&spec.name, "changed: new definition applied".into());
                    }
                }
            }
        }

        if self.kill_switch.source == KillSwitchSource::Config
            && self.kill_switch.on != new.safety.emergency_kill_switch
        {
            self.apply_kill_switch(KillSwitch {
                on: new.safety.emergency_kill_switch,
                source: KillSwitchSource::Config,
            });
            outcome(
                "manager",
                format!(
                    "kill switch {} (config value)",
                    if new.safety.emergency_kill_switch {
                        "ON"
                    } else {
                        "OFF"
                    }
                ),
            );
        }
        self.start_ready();

        let summary = if results.is_empty() {
            "no change".to_string()
        } else {
            results
                .iter()
                .map(|r| format!("{}: {}", r.service, r.message))
                .collect::<Vec<_>>()
                .join("; ")
        };
        info!(target: TARGET, "reloaded {}: {summary}", new.path.display());
        self.audit
            .do_send(Record::new("manager", "reload", Outcome::Success).detail(summary.clone()));
        if results.is_empty() {
            results.push(ActionOutcome {
                service: "manager".into(),
                ok: true,
                message: "config reloaded: no change".into(),
                pid: None,
            });
        }
        ControlResponse::Actions(ActionsReport {
            action: "reload".into(),
            results,
        })
    }
}

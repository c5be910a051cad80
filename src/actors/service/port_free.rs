//! Freeing a service's port from a foreign holder before a start (SPEC §4.4):
//! SIGTERM to each holder, wait up to the service's `stop_timeout` for the port
//! to be released, then SIGKILL. Runs off the mailbox; the result comes back
//! as a [`PortFreed`] message.

use super::{Proc, ServiceActor, StartCause};
use crate::actors::audit::Outcome;
use crate::model::ErrorKind;
use crate::process::port::{self, PortHolder};
use actix::clock::{sleep, Instant};
use actix::prelude::*;
use log::{info, warn};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::time::Duration;

/// How often the port is looked at while waiting for it to be released.
const POLL: Duration = Duration::from_millis(5);
/// How long to wait after SIGKILL.
const AFTER_KILL: Duration = Duration::from_secs(2);

#[derive(Message, Debug)]
#[rtype(result = "()")]
pub(super) struct PortFreed {
    cause: StartCause,
    ordered_at: Instant,
    holders: Vec<PortHolder>,
    freed: bool,
    killed: bool,
    took: Duration,
}

fn signal_all(holders: &[PortHolder], sig: Signal) {
    for h in holders {
        if let Ok(pid) = i32::try_from(h.pid) {
            if pid > 1 {
                let _ = kill(Pid::from_raw(pid), sig);
            }
        }
    }
}

async fn wait_free(port: u16, until: Instant) -> bool {
    loop {
        if !port::is_listening(port) {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        sleep(POLL).await;
    }
}

impl ServiceActor {
    pub(super) fn free_port(
        &mut self,
        p: u16,
        holders: Vec<PortHolder>,
        cause: StartCause,
        ordered_at: Instant,
        ctx: &mut Context<Self>,
    ) {
        self.proc_ = Proc::FreeingPort;
        warn!(target: &self.target, "port {p} held by {}: stopping it", holders[0]);
        let grace = self.spec.stop_timeout;
        ctx.spawn(
            async move {
                let t0 = Instant::now();
                signal_all(&holders, Signal::SIGTERM);
                let mut freed = wait_free(p, t0 + grace).await;
                let mut killed = false;
                if !freed {
                    signal_all(&holders, Signal::SIGKILL);
                    killed = true;
                    freed = wait_free(p, Instant::now() + AFTER_KILL).await;
                }
                PortFreed {
                    cause,
                    ordered_at,
                    holders,
                    freed,
                    killed,
                    took: t0.elapsed(),
                }
            }
            .into_actor(self)
            .map(|m, _, ctx| ctx.notify(m)),
        );
    }
}

impl Handler<PortFreed> for ServiceActor {
    type Result = ();
    fn handle(&mut self, m: PortFreed, ctx: &mut Context<Self>) {
        if !matches!(self.proc_, Proc::FreeingPort) {
            return;
        }
        self.proc_ = Proc::Down;
        let who: Vec<String> = m.holders.iter().map(|h| h.to_string()).collect();
        let mut detail = format!(
            "port {} held by {}",
            self.spec.port.unwrap_or(0),
            who.join(", ")
        );
        if m.killed {
            detail.push_str("; SIGKILL after SIGTERM was ignored");
        }
        let outcome = if m.freed {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        info!(target: &self.target, "kill_port_holder: {detail} -> freed: {}", m.freed);
        self.audit.do_send(
            self.record("kill_port_holder", outcome)
                .took(m.took)
                .detail(detail.clone()),
        );
        if !self.wanted_up {
            return; // stopped meanwhile
        }
        if m.freed {
            self.launch(m.cause, false, ctx);
        } else {
            self.start_failed(m.cause, ErrorKind::PortConflict, detail, m.ordered_at);
        }
    }
}

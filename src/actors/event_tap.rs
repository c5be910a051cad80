//! The EventTap actor: one per client of an event stream (`events` on the
//! control socket, `GET /api/v1/events` over HTTP). It subscribes to the
//! Registry's events and hands them to the client's writer through a bounded
//! channel, so a slow client never makes the Registry (or anyone) wait: a
//! client that falls a whole channel behind is cut off instead, and reconnects.
//!
//! The tap stops, and unsubscribes, as soon as the writer drops its end (the
//! client went away), or when the client falls behind.

use super::registry::{Published, Registry, SubscribeEvents, UnsubscribeEvents};
use crate::model::Event;
use actix::prelude::*;
use log::debug;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::mpsc;

const TARGET: &str = "events";

/// Events a client may be behind before it is cut off.
pub const BACKLOG: usize = 4096;

pub struct EventTap {
    registry: Addr<Registry>,
    tx: mpsc::Sender<Arc<Event>>,
    /// Only these services' events (all when empty).
    services: HashSet<String>,
}

/// Subscribe a new client: the receiving end of its events. Must be called
/// inside an actix arbiter (the tap runs there).
///
/// The subscription is queued at the Registry before this returns, so every
/// event the Registry handles after anything the caller sends next reaches
/// the client (the HTTP stream relies on this: once its head is out, no
/// change is missed).
pub fn subscribe(registry: Addr<Registry>, services: Vec<String>) -> mpsc::Receiver<Arc<Event>> {
    let (tx, rx) = mpsc::channel(BACKLOG);
    let tap = EventTap {
        registry: registry.clone(),
        tx,
        services: services.into_iter().collect(),
    }
    .start();
    registry.do_send(SubscribeEvents(tap.recipient()));
    rx
}

impl Actor for EventTap {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let tx = self.tx.clone();
        ctx.spawn(
            async move { tx.closed().await }
                .into_actor(self)
                .map(|(), _, ctx| ctx.stop()),
        );
    }

    fn stopped(&mut self, ctx: &mut Context<Self>) {
        debug!(target: TARGET, "event client gone; unsubscribing");
        self.registry
            .do_send(UnsubscribeEvents(ctx.address().recipient()));
    }
}

impl Handler<Published> for EventTap {
    type Result = ();
    fn handle(&mut self, m: Published, ctx: &mut Context<Self>) {
        if !self.services.is_empty() && !self.services.contains(&m.0.service) {
            return;
        }
        match self.tx.try_send(m.0) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                debug!(target: TARGET, "event client {BACKLOG} events behind; cutting it off");
                ctx.stop();
            }
            Err(mpsc::error::TrySendError::Closed(_)) => ctx.stop(),
        }
    }
}

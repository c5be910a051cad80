//! AI DAWG Manager: a service supervisor on actix that keeps long-running
//! services alive with zero human intervention (see `../shared/SPEC.md`).
//!
//! Crate map — module, what it owns, the SPEC section it serves:
//!
//! | module | responsibility | SPEC |
//! |---|---|---|
//! | [`config`] | load and validate `autonomy.json` and the whitelist | §3 |
//! | [`model`] | statuses, error kinds, process identity, service records | §4, §6 |
//! | [`policy`] | pure restart/backoff/escalation decisions | §4.4–4.5, §4.7 |
//! | [`actors`] | Manager, ServiceActor, Registry, Recovery, Audit, ControlServer | §4 |
//! | [`process`] | spawn in a process group, group signals, `/proc` readers | §4.2, §4.6, §4.8 |
//! | [`logs`] | service output through FIFOs into rotated log files | §2 |
//! | [`health`] | one HTTP / TCP / command probe bounded by a timeout | §4.3 |
//! | [`chain`] | the audit trail's hash chain, `audit --verify` | §6 |
//! | [`history`] | incident history (`data/history.db`, written by the History actor), reports, patterns, daily summaries | issue 6 |
//! | [`persist`] | atomic writes, state file, pid-file lock | §2 |
//! | [`paths`] | where each file of §2 lives | §2 |
//! | [`protocol`] | control requests and responses (shared with the CLI) | §5 |
//! | [`cli`] | the clap commands, socket client, human rendering | §5, §6 |
//! | [`http`] | dashboard, HTTP API, Server-Sent Events, Prometheus metrics (key `http`) | – |
//! | [`timer`] | sleeps shorter than tokio's millisecond tick (start probes) | – |
//! | [`supervisor`] | `start`: claim the data folder, wire the actors, run | §1, §4.8 |
//! | [`demo_service`] | the demo service of the shipped config and the tests | – |
//!
//! The actors, in words: each service has a **ServiceActor** that owns its child
//! process and health probes and reports facts to the **Registry** (the one
//! source of truth, persisted to `data/service-state.json`) and failures to
//! **Recovery**, which applies [`policy`] and orders restarts back to the
//! service actor or raises an escalation through **Audit** (the single writer
//! of `audit.log` and `escalations.log`). The **Manager** starts services in
//! dependency order and runs the shutdown; the **ControlServer** answers the CLI
//! on `data/manager.sock`. The **Notifier** sends escalation and resolution
//! alerts; optional HTTP routes ([`http`]) serve the dashboard, the same
//! requests as the socket, the event stream and metrics. The message table is
//! in [`actors`].

pub mod actors;
pub mod chain;
pub mod cli;
pub mod config;
pub mod health;
pub mod history;
pub mod http;
pub mod logs;
pub mod model;
pub mod paths;
pub mod persist;
pub mod policy;
pub mod process;
pub mod protocol;
pub mod supervisor;
pub mod timer;

#[path = "../examples/demo_service.rs"]
pub mod demo_service;

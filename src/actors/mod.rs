//! The actors of the supervisor and the messages between them (DESIGN.md).
//!
//! | message | sender → receiver | reply | when |
//! |---|---|---|---|
//! | `Start`, `Restart` | Manager, Recovery → ServiceActor | pid or error | manual command, autostart, automatic restart |
//! | `Stop` | Manager → ServiceActor | once down | manual stop, shutdown |
//! | `Recheck` | Recovery → ServiceActor | – | a live process's check timed out the first time |
//! | `ServiceStarted`, `HealthChecked`, `ServiceExited`, `ServiceStopped`, `StartFailed` | ServiceActor → Registry | – | facts about the process |
//! | `Failed`, `Healthy` | ServiceActor → Recovery | – | a counted failure; healthy after failing or starting |
//! | `RecoveryChanged` | Recovery → Registry | – | counters or a decided status changed |
//! | `EscalationLifted` | Recovery → Registry | – | a human acted on an escalated service |
//! | `Manual` | Manager → Recovery | – | a human acted: cancel timers, lift escalation |
//! | `Record`, `Escalate` | everyone → Audit | – | an operation; an escalation |
//! | `Notify` | Audit → Notifier | – | an escalation alert to send (resolutions the Notifier finds itself) |
//! | `StatusChanged` | Registry → Manager | – | a status changed (dependency order) |
//! | `GetStatus` | ControlServer → Registry | report | `status` |
//! | `Command` | ControlServer → Manager | response | every other control request |
//! | `Shutdown` | signal handler, Manager → Manager | – | SIGTERM/SIGINT, `shutdown` |
//! | `SubscribeEvents`, `UnsubscribeEvents` | EventTap, Notifier, Metrics, History → Registry | – | follow every event; stop |
//! | `Published` | Registry → subscribers | – | an event (status, health, started, exited) |
//! | `RenderMetrics` | HTTP `/metrics` → Metrics | text | a scrape |
//! | `Record` (action `pattern`) | History → Audit | – | a pattern seen for the first time |

pub mod audit;
pub mod control;
pub mod event_tap;
pub mod history;
pub mod manager;
pub mod notifier;
pub mod recovery;
pub mod registry;
pub mod service;

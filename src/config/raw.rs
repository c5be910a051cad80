//! The serde shapes of `config/autonomy.json`, exactly as written in the file.
//!
//! Every struct here refuses unknown keys (`deny_unknown_fields`) so a typo such as
//! `"prot"` is an error with its key path instead of a silently ignored setting.
//! Nothing is interpreted here: durations stay as written (number of seconds or
//! humantime string), signals stay names or numbers, paths stay relative. The
//! meaning is given in `validate.rs`, which can then report every problem at once.
//! Fields that are required by the contract (such as `command`) are still `Option`
//! here so that their absence is reported together with the other problems.

use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

/// The whole file.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub enabled: Option<bool>,
    pub ai_dawg: Object<RawAiDawg>,
    pub monitoring: Option<Object<RawMonitoring>>,
    pub safety: Option<Object<RawSafety>>,
    pub notifications: Option<Object<RawNotifications>>,
    pub http: Option<Object<RawHttp>>,
    pub logs: Option<Object<RawLogs>>,
    pub history: Option<Object<super::history::RawHistory>>,
    pub reports: Option<Object<super::history::RawReports>>,
}

/// The `logs` object: size-based rotation of service logs and the audit trail.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLogs {
    pub max_bytes: Option<u64>,
    pub keep: Option<u32>,
}

/// The `ai_dawg` object: the services, keyed by name, in file order.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAiDawg {
    pub services: OrderedMap<Object<RawService>>,
}

/// One service, as written under `ai_dawg.services.NAME`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawService {
    pub display_name: Option<String>,
    pub command: Option<Vec<String>>,
    pub cwd: Option<String>,
    pub env: Option<OrderedMap<String>>,
    pub port: Option<u16>,
    pub health_endpoint: Option<String>,
    pub health_command: Option<Vec<String>>,
    pub start_timeout: Option<HumanDuration>,
    pub start_timeout_seconds: Option<Seconds>,
    pub stop_signal: Option<RawSignal>,
    pub stop_timeout: Option<HumanDuration>,
    pub stop_timeout_seconds: Option<Seconds>,
    pub depends_on: Option<Vec<String>>,
    pub autostart: Option<bool>,
    pub monitoring: Option<Object<RawMonitoring>>,
    pub max_open_files: Option<u64>,
    pub memory_max_bytes: Option<u64>,
}

/// The global `monitoring` object, and a service's override of it.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMonitoring {
    pub health_check_interval: Option<HumanDuration>,
    pub health_check_interval_seconds: Option<Seconds>,
    pub health_check_timeout: Option<HumanDuration>,
    pub health_check_timeout_seconds: Option<Seconds>,
    pub max_restart_attempts: Option<u32>,
    pub restart_cooldown: Option<HumanDuration>,
    pub restart_cooldown_seconds: Option<Seconds>,
    pub stable_after: Option<HumanDuration>,
    pub stable_after_seconds: Option<Seconds>,
}

/// The `safety` object.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSafety {
    pub emergency_kill_switch: Option<bool>,
    pub max_consecutive_failures_before_escalation: Option<u32>,
    pub kill_port_conflicts: Option<bool>,
}

/// The optional `notifications` object.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNotifications {
    pub webhook_url: Option<String>,
    pub command: Option<Vec<String>>,
    /// `"json"` (default) or `"slack"` (`{"text": ...}`) for the webhook body.
    pub format: Option<String>,
    /// Further attempts after a failed send.
    pub retries: Option<u32>,
    pub retry_backoff: Option<HumanDuration>,
    pub retry_backoff_seconds: Option<Seconds>,
    pub timeout: Option<HumanDuration>,
    pub timeout_seconds: Option<Seconds>,
    /// Alerts waiting per sink before the oldest is dropped.
    pub queue_size: Option<usize>,
}

/// The optional `http` object: the dashboard, API and metrics listener.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttp {
    pub listen: Option<String>,
    pub token: Option<String>,
}

/// A JSON object deserialized as `T`, and nothing else.
///
/// Derived struct deserializers also accept a JSON array of the fields in order
/// (`"safety": [false, 5, true]`); a config must say what each value is, so every
/// object of the file goes through this wrapper, which accepts only `{...}`.
#[derive(Debug, Default)]
pub(crate) struct Object<T>(pub T);

impl<T> std::ops::Deref for Object<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// What an object is, for "invalid type: ..., expected ..." messages.
pub(crate) trait Expecting {
    const WHAT: &'static str;
}

impl Expecting for RawConfig {
    const WHAT: &'static str =
        "an object with the keys enabled, ai_dawg, monitoring, safety, notifications, logs, history, reports, http";
}
impl Expecting for RawAiDawg {
    const WHAT: &'static str = "an object {\"services\": {...}}";
}
impl Expecting for RawService {
    const WHAT: &'static str = "a service object (command, port, health_endpoint, ...)";
}
impl Expecting for RawMonitoring {
    const WHAT: &'static str =
        "a monitoring object (health_check_interval_seconds, max_restart_attempts, ...)";
}
impl Expecting for RawSafety {
    const WHAT: &'static str = "a safety object (emergency_kill_switch, \
        max_consecutive_failures_before_escalation, kill_port_conflicts)";
}
impl Expecting for RawLogs {
    const WHAT: &'static str = "a logs object (max_bytes, keep)";
}
impl Expecting for RawNotifications {
    const WHAT: &'static str =
        "a notifications object (webhook_url, command, format, retries, retry_backoff, ...)";
}
impl Expecting for RawHttp {
    const WHAT: &'static str = "an http object (listen, token)";
}

/// A duration written as a humantime string (`"500ms"`, `"1m 30s"`), unparsed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HumanDuration(pub String);

/// A duration written as a JSON number of seconds, unchecked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Seconds(pub f64);

/// A stop signal as written: a name (`"SIGTERM"`, `"term"`) or a number (`15`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RawSignal {
    Name(String),
    Number(i64),
}

/// A JSON object kept in file order, refusing a key given twice.
///
/// Services must keep the order of the file (it breaks ties in the start order), and
/// a duplicated service name or env key would otherwise silently drop one of them.
#[derive(Debug)]
pub(crate) struct OrderedMap<V>(pub Vec<(String, V)>);

impl<'de, T: Deserialize<'de> + Expecting> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de> + Expecting> Visitor<'de> for ObjectVisitor<T> {
            type Value = Object<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(T::WHAT)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Object<T>, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(Object)
            }
        }
        deserializer.deserialize_map(ObjectVisitor(PhantomData))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HumanVisitor;
        impl Visitor<'_> for HumanVisitor {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a duration string such as \"10s\" or \"1m 30s\" \
                     (for a number of seconds use the `_seconds` key)",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HumanDuration, E> {
                Ok(HumanDuration(v.to_owned()))
            }
        }
        deserializer.deserialize_str(HumanVisitor)
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SecondsVisitor;
        impl Visitor<'_> for SecondsVisitor {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a number of seconds such as 30 or 0.5 \
                     (for a string such as \"30s\" use the key without `_seconds`)",
                )
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Seconds, E> {
                Ok(Seconds(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Seconds, E> {
                Ok(Seconds(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Seconds, E> {
                Ok(Seconds(v))
            }
        }
        deserializer.deserialize_f64(SecondsVisitor)
    }
}

impl<'de> Deserialize<'de> for RawSignal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SignalVisitor;
        impl Visitor<'_> for SignalVisitor {
            type Value = RawSignal;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a signal name such as \"SIGTERM\" or a signal number such as 15")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawSignal, E> {
                Ok(RawSignal::Name(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawSignal, E> {
                Ok(RawSignal::Number(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawSignal, E> {
                Ok(RawSignal::Number(i64::try_from(v).unwrap_or(i64::MAX)))
            }
        }
        deserializer.deserialize_any(SignalVisitor)
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
            type Value = OrderedMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedMap<V>, A::Error> {
                let mut entries: Vec<(String, V)> = Vec::new();
                // A set, not a scan of `entries`: that was quadratic in the keys.
                let mut seen: HashSet<String> = HashSet::new();
                while let Some(key) = map.next_key::<String>()? {
                    if !seen.insert(key.clone()) {
                        return Err(de::Error::custom(format_args!(
                            "key `{key}` is given twice"
                        )));
                    }
                    let value = map.next_value::<V>()?;
                    entries.push((key, value));
                }
                Ok(OrderedMap(entries))
            }
        }
        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}

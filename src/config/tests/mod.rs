//! Tests of the whole config module through its public API: each test writes a
//! config (and usually a whitelist) into a temporary `config/` folder and loads it.
//!
//! `load.rs`: what loads and what it means; `refusals.rs`: files refused while
//! parsing; `problems.rs`: configs refused for what they mean; `whitelist.rs`: the
//! whitelist and `--init-whitelist`; `http.rs`: the `http` key and alert delivery.

mod http;
mod load;
mod problems;
mod refusals;
mod whitelist;

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{Config, ConfigError};

/// A temporary root with a `config/` folder in it.
pub(super) struct Fixture {
    /// Keeps the folder alive.
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::create_dir(dir.path().join("config")).expect("config dir");
        Fixture { dir }
    }

    /// A fixture holding `config` and a whitelist listing `commands`.
    pub fn with(config: &Value, commands: &[&str]) -> Fixture {
        let fixture = Fixture::new();
        fixture.write_config(&config.to_string());
        fixture.write_whitelist(&json!({ "commands": commands }).to_string());
        fixture
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config/autonomy.json")
    }

    pub fn whitelist_path(&self) -> PathBuf {
        self.dir.path().join("config/commands-whitelist.json")
    }

    pub fn write_config(&self, text: &str) {
        fs::write(self.config_path(), text).expect("write config");
    }

    pub fn write_whitelist(&self, text: &str) {
        fs::write(self.whitelist_path(), text).expect("write whitelist");
    }

    pub fn load(&self) -> Result<Config, ConfigError> {
        Config::load(&self.config_path())
    }

    /// The error message of a load expected to fail.
    pub fn error(&self) -> String {
        match self.load() {
            Ok(config) => panic!("config unexpectedly loaded: {config:#?}"),
            Err(ConfigError(message)) => message,
        }
    }
}

/// A config with these services (name → object) and nothing else. Note that a
/// `json!` object is sorted by key: tests about file order write text instead.
pub(super) fn with_services(services: Value) -> Value {
    json!({ "ai_dawg": { "services": services } })
}

/// A valid minimal service running `true`.
pub(super) fn service() -> Value {
    json!({ "command": ["true"] })
}

/// `service()` with some keys replaced or added.
pub(super) fn service_with(extra: Value) -> Value {
    let mut s = service();
    if let (Some(s), Some(extra)) = (s.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            s.insert(k.clone(), v.clone());
        }
    }
    s
}

/// Load a config of these services, with `true` and `sh` whitelisted; the error.
pub(super) fn error_of(services: Value) -> String {
    Fixture::with(&with_services(services), &["true", "sh"]).error()
}

/// The message must contain every one of `parts`.
#[track_caller]
pub(super) fn assert_mentions(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(
            message.contains(part),
            "expected {part:?} in the message:\n{message}"
        );
    }
}

pub(super) fn exists(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}

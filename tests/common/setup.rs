//! The config builder: `config/autonomy.json` written as JSON text (so the
//! keys keep the order they were given) and the whitelist, in a temp root.

use super::{free_port, run_bounded, Proc, Supervisor, BIN};
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Set `key` in an ordered list of JSON entries, in place if it is there.
fn put(entries: &mut Vec<(String, Value)>, key: &str, value: Value) {
    match entries.iter_mut().find(|(k, _)| k == key) {
        Some(entry) => entry.1 = value,
        None => entries.push((key.to_string(), value)),
    }
}

/// A JSON object as text, keys in the given order.
fn object(entries: &[(String, Value)], indent: usize) -> String {
    if entries.is_empty() {
        return "{}".into();
    }
    let pad = " ".repeat(indent + 2);
    let body: Vec<String> = entries
        .iter()
        .map(|(k, v)| format!("{pad}{}: {v}", Value::from(k.as_str())))
        .collect();
    format!("{{\n{}\n{}}}", body.join(",\n"), " ".repeat(indent))
}

/// One demo service of a [`Setup`]: `ai-dawg-manager demo-service --port P
/// --name NAME [args…]` with an HTTP health check on its port.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub port: u16,
    args: Vec<String>,
    /// The service's keys, in file order.
    keys: Vec<(String, Value)>,
    /// Its `monitoring` override, if any.
    monitoring: Vec<(String, Value)>,
}

impl Service {
    /// A service on a fresh port, with test-speed defaults: `start_timeout` 10 s
    /// (tests that need a start timeout set a shorter one), `stop_timeout` 2 s.
    pub fn new(name: &str) -> Service {
        let port = free_port();
        let mut s = Service {
            name: name.to_string(),
            port,
            args: vec![],
            keys: vec![],
            monitoring: vec![],
        };
        s.keys = vec![
            ("display_name".into(), json!(name)),
            ("command".into(), Value::Null), // filled in by `entries`
            ("port".into(), json!(port)),
            (
                "health_endpoint".into(),
                json!(format!("http://127.0.0.1:{port}/health")),
            ),
            ("start_timeout".into(), json!("10s")),
            ("stop_timeout".into(), json!("2s")),
        ];
        s
    }

    pub fn display(self, display_name: &str) -> Service {
        self.set("display_name", json!(display_name))
    }

    /// Fault flags of the demo service (`--crash-after-ms 300`, …).
    pub fn args<S: AsRef<str>>(mut self, args: impl IntoIterator<Item = S>) -> Service {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_string()));
        self
    }

    /// Set (or replace) a key of the service object.
    pub fn set(mut self, key: &str, value: Value) -> Service {
        put(&mut self.keys, key, value);
        self
    }

    /// Set a key of the service's own `monitoring` override.
    pub fn monitoring(mut self, key: &str, value: Value) -> Service {
        put(&mut self.monitoring, key, value);
        self
    }

    /// Have the demo service fork a grandchild into its process group and
    /// write the grandchild's pid to `pid_file`.
    pub fn with_grandchild(self, pid_file: &Path) -> Service {
        self.args(["--spawn-grandchild", "--grandchild-pid-file"])
            .args([pid_file.to_str().unwrap_or_default()])
    }

    pub fn depends_on(self, deps: &[&str]) -> Service {
        self.set("depends_on", json!(deps))
    }

    /// The argv the supervisor runs.
    pub fn command(&self) -> Vec<String> {
        let mut argv: Vec<String> = vec![
            "ai-dawg-manager".into(),
            "demo-service".into(),
            "--port".into(),
            self.port.to_string(),
            "--name".into(),
            self.name.clone(),
        ];
        argv.extend(self.args.iter().cloned());
        argv
    }

    fn to_json(&self, indent: usize) -> String {
        let mut keys = self.keys.clone();
        if let Some(entry) = keys.iter_mut().find(|(k, v)| k == "command" && v.is_null()) {
            entry.1 = json!(self.command());
        }
        let mut text = object(&keys, indent);
        if !self.monitoring.is_empty() {
            // Insert the override as the last key (the object ends with "\n<indent>}").
            let tail = format!("\n{}}}", " ".repeat(indent));
            text.truncate(text.len() - tail.len());
            text.push_str(&format!(
                ",\n{}\"monitoring\": {}{tail}",
                " ".repeat(indent + 2),
                object(&self.monitoring, indent + 2)
            ));
        }
        text
    }
}

/// The config text of a setup with these services and the test defaults
/// (for `reload`: the services keep their ports).
pub fn config_of(services: &[Service]) -> String {
    services
        .iter()
        .cloned()
        .fold(Setup::new(), Setup::service)
        .config_text()
}

/// A temporary root with `config/` to be written, and the supervisor to run on it.
pub struct Setup {
    dir: tempfile::TempDir,
    enabled: Option<bool>,
    services: Vec<Service>,
    monitoring: Vec<(String, Value)>,
    safety: Vec<(String, Value)>,
    /// Other top-level keys (`logs`, `notifications`), after `safety`.
    top: Vec<(String, Value)>,
    /// `None`: no whitelist file at all.
    whitelist: Option<String>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup::new()
    }
}

impl Setup {
    /// Test-speed defaults: checks every 100 ms, each bounded by 2 s (a loaded
    /// machine must not fail a healthy service; tests of timeouts set their
    /// own), 3 restarts, a 1 s cooldown, stable after 60 s (no test lasts that
    /// long, so budgets never come back by themselves), 5 failures escalate.
    /// Port holders are NOT killed unless a test says so: on a shared machine
    /// the holder of a port we picked could be someone else's process.
    pub fn new() -> Setup {
        let dir = tempfile::Builder::new()
            .prefix("adm-itest-")
            .tempdir()
            .expect("temp dir");
        Setup {
            dir,
            enabled: None,
            services: vec![],
            monitoring: vec![
                ("health_check_interval".into(), json!("100ms")),
                ("health_check_timeout".into(), json!("2s")),
                ("max_restart_attempts".into(), json!(3)),
                ("restart_cooldown".into(), json!("1s")),
                ("stable_after".into(), json!("60s")),
            ],
            safety: vec![
                ("emergency_kill_switch".into(), json!(false)),
                (
                    "max_consecutive_failures_before_escalation".into(),
                    json!(5),
                ),
                ("kill_port_conflicts".into(), json!(false)),
            ],
            top: vec![],
            whitelist: Some(r#"{"commands": ["ai-dawg-manager"]}"#.into()),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A path in the temporary root, for fault flags and pid files.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn service(mut self, s: Service) -> Setup {
        self.services.push(s);
        self
    }

    pub fn monitoring(mut self, key: &str, value: Value) -> Setup {
        put(&mut self.monitoring, key, value);
        self
    }

    pub fn safety(mut self, key: &str, value: Value) -> Setup {
        put(&mut self.safety, key, value);
        self
    }

    /// Set a top-level key of the config other than the services,
    /// `monitoring` and `safety` (e.g. `"logs"`, `"notifications"`).
    pub fn top(mut self, key: &str, value: Value) -> Setup {
        put(&mut self.top, key, value);
        self
    }

    pub fn enabled(mut self, on: bool) -> Setup {
        self.enabled = Some(on);
        self
    }

    /// The whitelist's text, or `None` for no whitelist file.
    pub fn whitelist(mut self, text: Option<&str>) -> Setup {
        self.whitelist = text.map(str::to_string);
        self
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config").join("autonomy.json")
    }

    /// `config/autonomy.json` as text, keys in the order they were given.
    pub fn config_text(&self) -> String {
        let services: Vec<String> = self
            .services
            .iter()
            .map(|s| format!("      {}: {}", Value::from(s.name.as_str()), s.to_json(6)))
            .collect();
        let mut text = String::from("{\n");
        if let Some(on) = self.enabled {
            text.push_str(&format!("  \"enabled\": {on},\n"));
        }
        text.push_str(&format!(
            "  \"ai_dawg\": {{\n    \"services\": {{\n{}\n    }}\n  }},\n",
            services.join(",\n")
        ));
        text.push_str(&format!(
            "  \"monitoring\": {},\n",
            object(&self.monitoring, 2)
        ));
        text.push_str(&format!("  \"safety\": {}", object(&self.safety, 2)));
        for (key, value) in &self.top {
            text.push_str(&format!(",\n  {}: {value}", Value::from(key.as_str())));
        }
        text.push_str("\n}\n");
        text
    }

    /// Write `config/autonomy.json` (with `text`) and the whitelist.
    pub fn write_config(&self, text: &str) {
        let folder = self.dir.path().join("config");
        fs::create_dir_all(&folder).expect("config folder");
        fs::write(folder.join("autonomy.json"), text).expect("write config");
        if let Some(w) = &self.whitelist {
            fs::write(folder.join("commands-whitelist.json"), w).expect("write whitelist");
        }
    }

    /// Run `ai-dawg-manager start` on a config that must be refused (or that
    /// disables the manager): it has to finish on its own.
    pub fn run_start(&self, config_text: &str) -> Output {
        self.write_config(config_text);
        let mut cmd = Command::new(BIN);
        cmd.arg("start")
            .arg("--config")
            .arg(self.config_path())
            .current_dir(self.root());
        run_bounded(cmd)
    }

    /// Run the binary as a client with this setup's `--config`, no supervisor
    /// needed (`check`, `audit`, …). The config must have been written.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .arg("--config")
            .arg(self.config_path())
            .current_dir(self.root());
        run_bounded(cmd)
    }

    /// Write the config, start the supervisor and wait until it answers.
    pub fn start(self) -> Supervisor {
        let mut sup = self.spawn();
        sup.wait_ready();
        sup
    }

    /// Write the config and start the supervisor without waiting for it.
    pub fn spawn(self) -> Supervisor {
        self.write_config(&self.config_text());
        let config = self.config_path();
        let ports = self
            .services
            .iter()
            .map(|s| (s.name.clone(), s.port))
            .collect();
        Supervisor::launch(self.dir, config, ports)
    }
}

/// A supervisor over one service, `flaky`, that answers 503 while the
/// returned flag file exists. Its restarts wait out a 30 s cooldown, so once
/// it fails, its checks go on failing in backoff until
/// `escalate_after` failures in a row escalate it; `max_restart_attempts`
/// stays above what the test reaches. Returns once `flaky` is running.
pub fn flaky_service(max_restart_attempts: u32, escalate_after: u32) -> (Supervisor, PathBuf) {
    let setup = Setup::new();
    let flag = setup.path("fail.flag");
    let sup = setup
        .monitoring("restart_cooldown", json!("30s"))
        .monitoring("max_restart_attempts", json!(max_restart_attempts))
        .safety(
            "max_consecutive_failures_before_escalation",
            json!(escalate_after),
        )
        .service(
            Service::new("flaky")
                .set("start_timeout", json!("500ms"))
                .args(["--fail-flag", flag.to_str().unwrap_or_default()]),
        )
        .start();
    sup.wait_running("flaky");
    (sup, flag)
}

/// A supervisor over one service, `parent`, that has forked a grandchild into
/// its process group. Returns once both run: the supervisor, the leader and
/// the grandchild.
pub fn parent_with_grandchild() -> (Supervisor, Proc, Proc) {
    let setup = Setup::new();
    let pid_file = setup.path("grandchild.pid");
    let sup = setup
        .service(Service::new("parent").with_grandchild(&pid_file))
        .start();
    let leader = sup.wait_running("parent");
    let grandchild = sup.read_pid_file(&pid_file);
    (sup, leader, grandchild)
}

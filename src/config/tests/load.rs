//! What loads, and what the loaded values mean.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::json;

use super::*;
use crate::config::{resolve_program, HealthCheck, Monitoring, Safety};

/// The seed's file, unchanged except for a `command` per service.
const SEED: &str = r#"{"enabled": true, "ai_dawg": {"services": {"producer": {"port": 8001, "health_endpoint": "http://localhost:8001/health", "command": ["true"]}, "vocal_coach": {"port": 8000, "health_endpoint": "http://localhost:8000/health", "command": ["true"]}}}, "monitoring": {"health_check_interval_seconds": 30, "health_check_timeout_seconds": 5, "max_restart_attempts": 3, "restart_cooldown_seconds": 60}, "safety": {"emergency_kill_switch": false, "max_consecutive_failures_before_escalation": 5, "kill_port_conflicts": true}}"#;

/// The full example of SPEC §3, verbatim.
const SPEC_EXAMPLE: &str = r#"{
  "enabled": true,
  "ai_dawg": {
    "services": {
      "producer": {
        "display_name": "AI Producer",
        "command": ["python3", "server.py", "--port", "8001"],
        "cwd": "services/producer",
        "env": {"LOG_LEVEL": "info"},
        "port": 8001,
        "health_endpoint": "http://localhost:8001/health",
        "start_timeout": "10s",
        "stop_signal": "SIGTERM",
        "stop_timeout": "10s",
        "depends_on": [],
        "autostart": true
      }
    }
  },
  "monitoring": {
    "health_check_interval_seconds": 30,
    "health_check_timeout_seconds": 5,
    "max_restart_attempts": 3,
    "restart_cooldown_seconds": 60,
    "stable_after_seconds": 300
  },
  "safety": {
    "emergency_kill_switch": false,
    "max_consecutive_failures_before_escalation": 5,
    "kill_port_conflicts": true
  }
}"#;

#[test]
fn shipped_config_and_whitelist_load() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/autonomy.json");
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.enabled);
    assert_eq!(config.root, Path::new(env!("CARGO_MANIFEST_DIR")));
    assert_eq!(
        config.whitelist_path,
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/commands-whitelist.json")
    );
    assert_eq!(config.start_order(), ["producer", "vocal_coach"]);

    let producer = config.service("producer").expect("producer");
    assert_eq!(producer.display_name, "AI Producer");
    assert_eq!(producer.port, Some(8001));
    assert_eq!(producer.command[..2], ["ai-dawg-manager", "demo-service"]);
    assert_eq!(
        Some(producer.program.clone()),
        resolve_program("ai-dawg-manager", &config.root)
    );
    assert_eq!(
        producer.health,
        HealthCheck::Http {
            url: "http://127.0.0.1:8001/health".into()
        }
    );
    assert_eq!(producer.start_timeout, Duration::from_secs(10));
    assert_eq!(producer.stop_timeout, Duration::from_secs(5));

    let coach = config.service("vocal_coach").expect("vocal_coach");
    assert_eq!(coach.display_name, "Vocal Coach");
    assert_eq!(coach.port, Some(8000));
    assert_eq!(coach.depends_on, ["producer"]);
    assert_eq!(
        config.monitoring,
        Monitoring {
            health_check_interval: Duration::from_secs(5),
            health_check_timeout: Duration::from_secs(2),
            max_restart_attempts: 3,
            restart_cooldown: Duration::from_secs(10),
            stable_after: Duration::from_secs(60),
        }
    );
    assert_eq!(coach.monitoring, config.monitoring);
    assert_eq!(config.safety, Safety::default());
}

#[test]
fn seed_config_loads_with_commands_added() {
    let fixture = Fixture::new();
    fixture.write_config(SEED);
    fixture.write_whitelist(r#"{"commands": ["true"]}"#);
    let config = fixture.load().unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<_> = config.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["producer", "vocal_coach"]);
    assert_eq!(
        config.monitoring,
        Monitoring {
            health_check_interval: Duration::from_secs(30),
            health_check_timeout: Duration::from_secs(5),
            max_restart_attempts: 3,
            restart_cooldown: Duration::from_secs(60),
            stable_after: Duration::from_secs(300),
        }
    );
    assert_eq!(
        config.safety,
        Safety {
            emergency_kill_switch: false,
            max_consecutive_failures_before_escalation: 5,
            kill_port_conflicts: true,
        }
    );
}

#[test]
fn spec_example_loads() {
    let fixture = Fixture::new();
    fixture.write_config(SPEC_EXAMPLE);
    fixture.write_whitelist(r#"{"commands": ["python3"]}"#);
    let python = resolve_program("python3", Path::new("/"));
    let config = match (fixture.load(), python) {
        (Ok(config), Some(_)) => config,
        // Without python3 on PATH the example is refused for that reason alone.
        (Err(e), None) => {
            assert_eq!(
                e.0.lines().count(),
                1,
                "only the missing python3 may be wrong: {e}"
            );
            assert_mentions(&e.0, &["command[0]", "`python3` not found on PATH"]);
            return;
        }
        (result, python) => panic!("python3 on PATH: {python:?}, load: {result:?}"),
    };
    let producer = &config.services[0];
    assert_eq!(producer.cwd, fixture.root().join("services/producer"));
    assert_eq!(
        producer.env.get("LOG_LEVEL").map(String::as_str),
        Some("info")
    );
    assert_eq!(producer.stop_signal, Signal::SIGTERM);
    assert_eq!(producer.start_timeout, Duration::from_secs(10));
    assert_eq!(producer.stop_timeout, Duration::from_secs(10));
    assert!(producer.depends_on.is_empty());
    assert!(producer.autostart);
    assert_eq!(config.monitoring.stable_after, Duration::from_secs(300));
}

#[test]
fn defaults_of_a_minimal_config() {
    let fixture = Fixture::with(&with_services(json!({ "a": service() })), &["true"]);
    let config = fixture.load().unwrap_or_else(|e| panic!("{e}"));
    assert!(config.enabled);
    assert_eq!(config.path, fixture.config_path());
    assert_eq!(config.root, fixture.root());
    assert_eq!(config.whitelist_path, fixture.whitelist_path());
    assert_eq!(config.monitoring, Monitoring::default());
    assert_eq!(config.safety, Safety::default());
    assert_eq!(config.notifications, None);
    let a = &config.services[0];
    assert_eq!(a.name, "a");
    assert_eq!(a.display_name, "a");
    assert_eq!(a.command, ["true"]);
    assert_eq!(
        Some(a.program.clone()),
        resolve_program("true", Path::new("/"))
    );
    assert_eq!(a.cwd, fixture.root());
    assert!(a.env.is_empty());
    assert_eq!(a.port, None);
    assert_eq!(a.health, HealthCheck::Process);
    assert_eq!(a.start_timeout, Duration::from_secs(30));
    assert_eq!(a.stop_signal, Signal::SIGTERM);
    assert_eq!(a.stop_timeout, Duration::from_secs(10));
    assert!(a.depends_on.is_empty());
    assert!(a.autostart);
    assert_eq!(a.monitoring, Monitoring::default());
}

#[test]
fn enabled_false_loads() {
    let mut config = with_services(json!({ "a": service() }));
    config["enabled"] = json!(false);
    let loaded = Fixture::with(&config, &["true"])
        .load()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!loaded.enabled);
}

#[test]
fn both_duration_forms() {
    let config = json!({
        "ai_dawg": { "services": {
            "human": service_with(json!({"start_timeout": "1m 30s", "stop_timeout": "500ms"})),
            "seconds": service_with(json!({"start_timeout_seconds": 2.5, "stop_timeout_seconds": 0})),
        }},
        "monitoring": {
            "health_check_interval": "250ms",
            "health_check_timeout_seconds": 0.1,
            "restart_cooldown": "2m",
            "stable_after_seconds": 1,
        }
    });
    let loaded = Fixture::with(&config, &["true"])
        .load()
        .unwrap_or_else(|e| panic!("{e}"));
    let human = loaded.service("human").expect("human");
    assert_eq!(human.start_timeout, Duration::from_secs(90));
    assert_eq!(human.stop_timeout, Duration::from_millis(500));
    let seconds = loaded.service("seconds").expect("seconds");
    assert_eq!(seconds.start_timeout, Duration::from_millis(2500));
    assert_eq!(seconds.stop_timeout, Duration::ZERO);
    assert_eq!(
        loaded.monitoring,
        Monitoring {
            health_check_interval: Duration::from_millis(250),
            health_check_timeout: Duration::from_millis(100),
            max_restart_attempts: 3,
            restart_cooldown: Duration::from_secs(120),
            stable_after: Duration::from_secs(1),
        }
    );
}

#[test]
fn per_service_monitoring_overrides_only_what_it_gives() {
    let config = json!({
        "ai_dawg": { "services": {
            "plain": service(),
            "tuned": service_with(json!({"monitoring": {
                "health_check_interval": "100ms",
                "max_restart_attempts": 7,
            }})),
        }},
        "monitoring": {
            "health_check_interval_seconds": 30,
            "health_check_timeout_seconds": 4,
            "max_restart_attempts": 2,
            "restart_cooldown_seconds": 15,
        }
    });
    let loaded = Fixture::with(&config, &["true"])
        .load()
        .unwrap_or_else(|e| panic!("{e}"));
    let global = Monitoring {
        health_check_interval: Duration::from_secs(30),
        health_check_timeout: Duration::from_secs(4),
        max_restart_attempts: 2,
        restart_cooldown: Duration::from_secs(15),
        stable_after: Duration::from_secs(300),
    };
    assert_eq!(loaded.monitoring, global);
    assert_eq!(loaded.service("plain").map(|s| s.monitoring), Some(global));
    assert_eq!(
        loaded.service("tuned").map(|s| s.monitoring),
        Some(Monitoring {
            health_check_interval: Duration::from_millis(100),
            max_restart_attempts: 7,
            ..global
        })
    );
}

#[test]
fn service_fields_are_resolved() {
    let fixture = Fixture::new();
    let absolute_dir = fixture.root().join("elsewhere");
    let config = with_services(json!({
        "web": service_with(json!({
            "display_name": "Web",
            "cwd": "services/./web",
            "env": {"B": "2", "A": "1"},
            "port": 9000,
            "health_endpoint": "tcp://127.0.0.1:9000",
            "stop_signal": 2,
            "autostart": false,
            "depends_on": ["db"],
        })),
        "db": service_with(json!({
            "cwd": absolute_dir,
            "health_command": ["sh", "-c", "exit 0"],
            "stop_signal": "int",
        })),
        "script": service_with(json!({ "command": ["./run.sh", "--flag"], "cwd": "scripts" })),
    }));
    fixture.write_config(&config.to_string());
    let script = fixture.root().join("scripts/run.sh");
    fixture.write_whitelist(
        &json!({ "commands": ["true", "sh", script.to_str().expect("utf-8 temp path")] })
            .to_string(),
    );
    let loaded = fixture.load().unwrap_or_else(|e| panic!("{e}"));

    let web = loaded.service("web").expect("web");
    assert_eq!(web.display_name, "Web");
    assert_eq!(web.cwd, fixture.root().join("services/web"));
    assert_eq!(
        web.env.iter().collect::<Vec<_>>(),
        [
            (&"A".to_string(), &"1".to_string()),
            (&"B".to_string(), &"2".to_string())
        ]
    );
    assert_eq!(
        web.health,
        HealthCheck::Tcp {
            host: "127.0.0.1".into(),
            port: 9000
        }
    );
    assert_eq!(web.stop_signal, Signal::SIGINT);
    assert!(!web.autostart);

    let db = loaded.service("db").expect("db");
    assert_eq!(db.cwd, absolute_dir);
    assert_eq!(db.stop_signal, Signal::SIGINT);
    assert_eq!(
        db.health,
        HealthCheck::Command {
            argv: vec!["sh".into(), "-c".into(), "exit 0".into()],
            program: resolve_program("sh", Path::new("/")).expect("sh on PATH"),
        }
    );

    let script_spec = loaded.service("script").expect("script");
    assert_eq!(script_spec.program, script);
    assert_eq!(script_spec.command, ["./run.sh", "--flag"]);
}

#[test]
fn notifications_are_resolved_from_the_root() {
    let fixture = Fixture::new();
    let config = json!({
        "ai_dawg": { "services": { "a": service() } },
        "notifications": {
            "webhook_url": "http://127.0.0.1:9999/escalation",
            "command": ["bin/notify", "--json"],
        }
    });
    fixture.write_config(&config.to_string());
    let notify = fixture.root().join("bin/notify");
    fixture.write_whitelist(
        &json!({ "commands": ["true", notify.to_str().expect("utf-8")] }).to_string(),
    );
    let loaded = fixture.load().unwrap_or_else(|e| panic!("{e}"));
    let n = loaded.notifications.expect("notifications");
    assert_eq!(
        n.webhook_url.as_deref(),
        Some("http://127.0.0.1:9999/escalation")
    );
    assert_eq!(n.command, Some(vec!["bin/notify".into(), "--json".into()]));
    assert_eq!(n.command_program, Some(notify));
}

#[test]
fn start_order_puts_dependencies_first_and_keeps_file_order() {
    // Written as text: `json!` objects are sorted by key, a file is not.
    let fixture = Fixture::new();
    fixture.write_config(
        r#"{"ai_dawg": {"services": {
            "frontend": {"command": ["true"], "depends_on": ["api", "auth"]},
            "api": {"command": ["true"], "depends_on": ["db"]},
            "auth": {"command": ["true"]},
            "db": {"command": ["true"]},
            "metrics": {"command": ["true"]}
        }}}"#,
    );
    fixture.write_whitelist(r#"{"commands": ["true"]}"#);
    let loaded = fixture.load().unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<_> = loaded.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["frontend", "api", "auth", "db", "metrics"]);
    assert_eq!(
        loaded.start_order(),
        ["auth", "db", "api", "frontend", "metrics"]
    );
}

#[test]
fn root_is_the_parent_of_the_config_folder_even_through_dot_dot() {
    let fixture = Fixture::with(&with_services(json!({ "a": service() })), &["true"]);
    std::fs::create_dir(fixture.root().join("other")).expect("mkdir");
    let winding: PathBuf = fixture.root().join("other/../config/autonomy.json");
    let loaded = Config::load(&winding).unwrap_or_else(|e| panic!("{e}"));
    let real_root = fixture.root().canonicalize().expect("canonical root");
    assert_eq!(loaded.root, real_root);
    assert_eq!(loaded.path, real_root.join("config/autonomy.json"));
    assert_eq!(
        loaded.whitelist_path,
        real_root.join("config/commands-whitelist.json")
    );
}

//! Configs that must be refused (SPEC §3): `start` exits non-zero with one
//! message naming the key path (or line and column), and starts nothing.

mod common;

use common::*;
use serde_json::json;

/// Run `start` on `setup`'s config (as text, possibly edited); it must fail
/// naming every one of `wants`, without starting anything on the services'
/// ports or creating the data folder. Returns stderr.
fn refused(setup: &Setup, config: &str, ports: &[u16], wants: &[&str]) -> String {
    let out = setup.run_start(config);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "start should fail; stdout: {} stderr: {stderr}",
        text(&out.stdout)
    );
    for want in wants {
        assert!(stderr.contains(want), "no {want:?} in: {stderr}");
    }
    assert!(
        !text(&out.stdout).contains("Starting"),
        "stdout: {}",
        text(&out.stdout)
    );
    for &port in ports {
        assert!(!accepts(port), "something listens on {port}");
        assert!(
            demo_instances_on(port).is_empty(),
            "a service ran on {port}"
        );
    }
    assert!(
        !setup.root().join("data").exists(),
        "a refused config created the data folder"
    );
    stderr
}

#[test]
fn an_unknown_key_is_refused_with_its_path() {
    let svc = Service::new("producer").set("prot", json!(8001));
    let port = svc.port;
    let setup = Setup::new().service(svc);
    refused(
        &setup,
        &setup.config_text(),
        &[port],
        &["ai_dawg.services.producer.prot", "unknown field"],
    );
}

#[test]
fn a_wrong_type_is_refused_with_its_path() {
    let svc = Service::new("producer").monitoring("max_restart_attempts", json!("three"));
    let port = svc.port;
    let setup = Setup::new().service(svc);
    refused(
        &setup,
        &setup.config_text(),
        &[port],
        &[
            "ai_dawg.services.producer.monitoring.max_restart_attempts",
            "invalid type",
        ],
    );
}

#[test]
fn duplicate_ports_are_refused() {
    let a = Service::new("a");
    let port = a.port;
    let b = Service::new("b").set("port", json!(port));
    let setup = Setup::new().service(a).service(b);
    refused(
        &setup,
        &setup.config_text(),
        &[port],
        &["ai_dawg.services.b.port", &format!("port {port}")],
    );
}

#[test]
fn a_dependency_cycle_is_refused() {
    let a = Service::new("a").depends_on(&["b"]);
    let b = Service::new("b").depends_on(&["a"]);
    let ports = [a.port, b.port];
    let setup = Setup::new().service(a).service(b);
    refused(
        &setup,
        &setup.config_text(),
        &ports,
        &["depends_on", "dependency cycle"],
    );
}

#[test]
fn an_unknown_dependency_is_refused() {
    let svc = Service::new("producer").depends_on(&["ghost"]);
    let port = svc.port;
    let setup = Setup::new().service(svc);
    refused(
        &setup,
        &setup.config_text(),
        &[port],
        &["ai_dawg.services.producer.depends_on", "ghost"],
    );
}

#[test]
fn a_program_not_on_the_whitelist_is_refused() {
    let svc = Service::new("producer");
    let port = svc.port;
    let setup = Setup::new()
        .service(svc)
        .whitelist(Some(r#"{"commands": ["python3"]}"#));
    refused(
        &setup,
        &setup.config_text(),
        &[port],
        &[
            "ai_dawg.services.producer.command[0]",
            "ai-dawg-manager",
            "not on the whitelist",
        ],
    );
}

#[test]
fn a_missing_whitelist_is_refused() {
    let svc = Service::new("producer");
    let port = svc.port;
    let setup = Setup::new().service(svc).whitelist(None);
    refused(
        &setup,
        &setup.config_text(),
        &[port],
        &["commands-whitelist.json", "whitelist not found"],
    );
}

#[test]
fn malformed_json_is_refused_with_line_and_column() {
    let svc = Service::new("producer");
    let port = svc.port;
    let setup = Setup::new().service(svc);
    // Drop the comma before the service's "port" key.
    let good = setup.config_text();
    let lines: Vec<&str> = good.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim_start().starts_with("\"port\":"))
        .expect("a port line");
    let mut bad: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let before = bad[at - 1].trim_end_matches(',').to_string();
    bad[at - 1] = before;
    let bad = bad.join("\n");
    let line = at + 1;
    let column = lines[at].find('"').expect("quote") + 1;
    refused(
        &setup,
        &bad,
        &[port],
        &[&format!("line {line}, column {column}"), "malformed JSON"],
    );
}

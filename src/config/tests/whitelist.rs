//! The whitelist: what it allows, how it is refused, and `--init-whitelist`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::json;

use super::*;
use crate::config::resolve_program;
use crate::config::whitelist::{init_whitelist, Whitelist};

fn list(commands: &[&str]) -> (tempfile::TempDir, Whitelist) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("commands-whitelist.json");
    fs::write(&path, json!({ "commands": commands }).to_string()).expect("write");
    let whitelist = Whitelist::load(&path).unwrap_or_else(|e| panic!("{e}"));
    (dir, whitelist)
}

fn on_path(name: &str) -> std::path::PathBuf {
    resolve_program(name, Path::new("/")).unwrap_or_else(|| panic!("{name} not on PATH"))
}

#[test]
fn bare_entries_allow_the_bare_name_and_the_same_file_by_path() {
    let (_dir, whitelist) = list(&["sh"]);
    let sh = on_path("sh");
    assert!(whitelist.allows("sh", &sh));
    // Written as the absolute path that `sh` resolves to: the same file.
    assert!(whitelist.allows(sh.to_str().expect("utf-8"), &sh));
    assert!(!whitelist.allows("true", &on_path("true")));
}

#[test]
fn a_bare_entry_never_allows_another_file_with_the_same_name() {
    let (dir, whitelist) = list(&["sh"]);
    let fake = dir.path().join("sh");
    fs::write(&fake, "#!/bin/sh\n").expect("write");
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).expect("chmod");
    assert!(!whitelist.allows(fake.to_str().expect("utf-8"), &fake));
    assert!(!whitelist.allows("./sh", &fake));
}

#[test]
fn absolute_entries_and_globs() {
    let (_dir, whitelist) = list(&["/opt/services/*/bin/*", "/usr/local/bin/tool", "py*"]);
    let allowed = Path::new("/opt/services/producer/bin/server");
    assert!(whitelist.allows("/opt/services/producer/bin/server", allowed));
    assert!(whitelist.allows("bin/server", allowed));
    // `*` does not cross a `/`.
    let deeper = Path::new("/opt/services/a/b/bin/server");
    assert!(!whitelist.allows("/opt/services/a/b/bin/server", deeper));
    assert!(whitelist.allows("tool", Path::new("/usr/local/bin/tool")));
    assert!(!whitelist.allows("tool", Path::new("/tmp/tool")));
    // A bare glob matches bare names only.
    assert!(whitelist.allows("python3", Path::new("/usr/bin/python3")));
    assert!(!whitelist.allows("/tmp/python3", Path::new("/tmp/python3")));
}

#[test]
fn config_load_refuses_programs_not_on_the_whitelist() {
    let fixture = Fixture::with(
        &with_services(json!({
            "a": service(),
            "b": service_with(json!({"command": ["sh", "-c", "sleep 1"], "health_command": ["true"]})),
        })),
        &["true"],
    );
    let message = fixture.error();
    assert_mentions(
        &message,
        &[
            &fixture.config_path().display().to_string(),
            "ai_dawg.services.b.command[0]: program `sh`",
            "is not on the whitelist",
            "commands-whitelist.json",
            "add \"sh\"",
        ],
    );
    assert_eq!(message.lines().count(), 1, "{message}");

    // An absolute path to a whitelisted bare name's file is allowed...
    let sh = on_path("sh");
    let fixture = Fixture::with(
        &with_services(json!({ "a": service_with(json!({"command": [sh]})) })),
        &["sh"],
    );
    fixture.load().unwrap_or_else(|e| panic!("{e}"));

    // ...but a look-alike in the service's folder is not.
    let fixture = Fixture::new();
    let fake = fixture.root().join("sh");
    fs::write(&fake, "#!/bin/sh\n").expect("write");
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).expect("chmod");
    fixture.write_config(
        &with_services(json!({ "a": service_with(json!({"command": ["./sh"]})) })).to_string(),
    );
    fixture.write_whitelist(r#"{"commands": ["sh"]}"#);
    assert_mentions(
        &fixture.error(),
        &[
            "ai_dawg.services.a.command[0]: program `./sh`",
            "not on the whitelist",
        ],
    );
}

#[test]
fn missing_whitelist_says_how_to_create_one() {
    let fixture = Fixture::new();
    fixture.write_config(&with_services(json!({ "a": service() })).to_string());
    let message = fixture.error();
    assert!(
        message.starts_with(&fixture.whitelist_path().display().to_string()),
        "{message}"
    );
    assert_mentions(
        &message,
        &["not found", "ai-dawg-manager check --init-whitelist"],
    );
}

#[test]
fn missing_whitelist_is_reported_after_the_config_problems() {
    let fixture = Fixture::new();
    fixture
        .write_config(&with_services(json!({ "a": service_with(json!({"port": 0})) })).to_string());
    let message = fixture.error();
    assert!(message.starts_with(&fixture.config_path().display().to_string()));
    assert_mentions(&message, &["ai_dawg.services.a.port", "--init-whitelist"]);
}

#[test]
fn malformed_whitelists_name_their_path_and_problem() {
    let cases: [(&str, &[&str]); 6] = [
        (r#"{"commands": ["sh""#, &["malformed JSON", "line 1"]),
        (
            r#"{"commands": ["sh"], "extra": 1}"#,
            &["unknown field `extra`"],
        ),
        (r#"{"programs": ["sh"]}"#, &["unknown field `programs`"]),
        (r#"{"commands": "sh"}"#, &["commands: invalid type"]),
        (
            r#"{"commands": ["bin/sh", ""]}"#,
            &[
                "2 problems",
                "commands[0]:",
                "neither a bare program name nor an absolute path",
                "commands[1]: empty entry",
            ],
        ),
        (
            r#"{"commands": ["/opt/[x"]}"#,
            &["commands[0]:", "not a valid glob"],
        ),
    ];
    for (text, expected) in cases {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("commands-whitelist.json");
        fs::write(&path, text).expect("write");
        let message = Whitelist::load(&path).expect_err(text).0;
        assert!(
            message.starts_with(&path.display().to_string()),
            "{message}"
        );
        assert_mentions(&message, expected);
    }
}

#[test]
fn init_whitelist_lists_exactly_the_programs_used() {
    let fixture = Fixture::new();
    let config = json!({
        "ai_dawg": {"services": {
            "a": service_with(json!({"health_command": ["sh", "-c", "exit 0"]})),
            "b": service_with(json!({"command": ["./bin/server"], "cwd": "services/b"})),
            "c": service(),
        }},
        "notifications": {"command": ["ai-dawg-manager", "notify"]},
    });
    fixture.write_config(&config.to_string());
    let written = init_whitelist(&fixture.config_path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(written, fixture.whitelist_path());
    let text = fs::read_to_string(&written).expect("read");
    let value: serde_json::Value = serde_json::from_str(&text).expect("json");
    let server = fixture.root().join("services/b/bin/server");
    assert_eq!(
        value,
        json!({"commands": ["ai-dawg-manager", "true", "sh", server]})
    );
    // No temporary file left behind, and the result loads.
    let leftovers: Vec<_> = fs::read_dir(fixture.root().join("config"))
        .expect("read dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers.len(), 2, "{leftovers:?}");
    fixture.load().unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn init_whitelist_refuses_to_overwrite() {
    let fixture = Fixture::with(&with_services(json!({ "a": service() })), &["sh"]);
    let message = init_whitelist(&fixture.config_path())
        .expect_err("must refuse")
        .0;
    assert_mentions(&message, &["already exists", "refusing to overwrite"]);
    let kept = fs::read_to_string(fixture.whitelist_path()).expect("read");
    assert_eq!(kept, r#"{"commands":["sh"]}"#);
}

#[test]
fn init_whitelist_refuses_an_otherwise_invalid_config() {
    let fixture = Fixture::new();
    fixture
        .write_config(&with_services(json!({ "a": service_with(json!({"port": 0})) })).to_string());
    let message = init_whitelist(&fixture.config_path())
        .expect_err("must refuse")
        .0;
    assert_mentions(&message, &["ai_dawg.services.a.port"]);
    assert!(!exists(&fixture.whitelist_path()));
}

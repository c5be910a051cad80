//! The oracles of the fuzz targets, shared by the cargo-fuzz targets in
//! `fuzz/fuzz_targets/` (through `#[path]`) and by `tests/fuzz_regressions.rs`
//! (proptest and the corpus replay), so libFuzzer and the normal test suite
//! check exactly the same properties. Each `check_*` takes arbitrary bytes and
//! panics when a property is broken; returning means the input is fine.

#![allow(dead_code)] // each user takes only the checks it needs

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use ai_dawg_manager::cli::files::{parse_audit_line, parse_escalations};
use ai_dawg_manager::config::Config;
use ai_dawg_manager::{chain, protocol};

/// The fixed whitelist next to every fuzzed config: bare names, a glob and an
/// absolute path, so that configs naming them get past the whitelist and reach
/// the end of validation.
pub const WHITELIST: &str =
    r#"{"commands": ["ai-dawg-manager", "sh", "python3", "/bin/*", "/usr/bin/env"]}"#;

/// A folder `<tmp>/ai-dawg-fuzz-<pid>-<n>/config/` holding the fixed whitelist;
/// fuzzed configs are written there as `autonomy.json`. Removed on drop.
pub struct ConfigBench {
    root: PathBuf,
    config: PathBuf,
}

impl ConfigBench {
    pub fn new() -> ConfigBench {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let root = std::env::temp_dir().join(format!("ai-dawg-fuzz-{}-{n}", std::process::id()));
        let folder = root.join("config");
        std::fs::create_dir_all(&folder).expect("create the fuzz config folder");
        std::fs::write(
            folder.join(ai_dawg_manager::config::WHITELIST_FILE),
            WHITELIST,
        )
        .expect("write the fuzz whitelist");
        ConfigBench {
            config: folder.join("autonomy.json"),
            root,
        }
    }

    /// Where the fuzzed config is written.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Write `bytes` as the config and load it: never a panic; an error starts
    /// with the config file's path; a loaded config is coherent.
    pub fn check(&self, bytes: &[u8]) {
        std::fs::write(&self.config, bytes).expect("write the fuzzed config");
        check_loaded(&self.config, Config::load(&self.config));
    }
}

impl Default for ConfigBench {
    fn default() -> Self {
        ConfigBench::new()
    }
}

impl Drop for ConfigBench {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The properties of one `Config::load(path)` outcome.
pub fn check_loaded(path: &Path, loaded: Result<Config, ai_dawg_manager::config::ConfigError>) {
    let file = path.display().to_string();
    match loaded {
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.starts_with(&file),
                "the error does not start with the config file {file}: {message}"
            );
        }
        Ok(config) => {
            assert_eq!(config.path, path, "config.path");
            assert!(config.root.is_absolute(), "root {:?}", config.root);
            let names: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
            let mut order = config.start_order();
            assert_eq!(
                order.len(),
                names.len(),
                "start order {order:?} of {names:?}"
            );
            for s in &config.services {
                let at = order.iter().position(|n| *n == s.name).unwrap();
                for dep in &s.depends_on {
                    let dep_at = order.iter().position(|n| n == dep);
                    assert!(
                        dep_at.is_some_and(|d| d < at),
                        "{} starts before its dependency {dep}: {order:?}",
                        s.name
                    );
                }
                assert!(!s.command.is_empty(), "{}: empty command", s.name);
                assert!(
                    s.program.is_absolute(),
                    "{}: program {:?}",
                    s.name,
                    s.program
                );
                assert!(s.cwd.is_absolute(), "{}: cwd {:?}", s.name, s.cwd);
                assert!(!s.monitoring.health_check_interval.is_zero());
                assert!(!s.monitoring.health_check_timeout.is_zero());
                assert!(!s.start_timeout.is_zero());
            }
            order.sort();
            order.dedup();
            assert_eq!(
                order.len(),
                names.len(),
                "duplicate service names {names:?}"
            );
            assert!(config.safety.max_consecutive_failures_before_escalation >= 1);
        }
    }
}

/// `decode_request` never panics; a decoded request encodes as exactly one line
/// that decodes to the same request and encodes the same again.
pub fn check_protocol(bytes: &[u8]) {
    let Ok(request) = protocol::decode_request(bytes) else {
        return;
    };
    let line = protocol::encode_line(&request);
    assert_eq!(line.last(), Some(&b'\n'), "no newline at the end");
    assert_eq!(
        line.iter().filter(|b| **b == b'\n').count(),
        1,
        "not one line: {:?}",
        String::from_utf8_lossy(&line)
    );
    let again = protocol::decode_request(&line).unwrap_or_else(|e| {
        panic!(
            "{request:?} encodes as {:?}, which does not decode: {e}",
            String::from_utf8_lossy(&line)
        )
    });
    assert_eq!(again, request, "round trip");
    assert_eq!(
        protocol::encode_line(&again),
        line,
        "encoding is not stable"
    );
    let _ = request.action();
}

/// The audit trail and escalation readers on arbitrary text: never a panic, and
/// their results are consistent with the text.
pub fn check_text(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines {
        let (body, hash) = chain::split(line);
        assert!(line.starts_with(body), "split body is not a prefix");
        match hash {
            Some(h) => {
                assert_eq!(h.len(), 16);
                assert_eq!(format!("{body} | #{h}"), *line, "split loses text");
            }
            None => assert_eq!(body, *line),
        }
        if let Some(parsed) = parse_audit_line(line) {
            assert_eq!(parsed.hash.as_deref(), hash, "hash of {line:?}");
            assert!(body.starts_with(&parsed.time), "time of {line:?}");
        }
    }
    match chain::verify(lines.iter().copied()) {
        Ok(n) => assert!(n <= lines.len()),
        Err(b) => assert!(b.index < lines.len(), "break {b:?} past the end"),
    }
    check_sealed(&lines);
    let blocks = parse_escalations(&text);
    assert!(
        blocks.len() <= text.matches("ESCALATION REQUIRED").count(),
        "more blocks than headers"
    );
}

/// Sealing any lines gives a trail that verifies, and altering any line after
/// the first is found at that line.
fn check_sealed(texts: &[&str]) {
    let mut prev = String::new();
    let mut sealed: Vec<String> = Vec::with_capacity(texts.len());
    for text in texts {
        let (line, hash) = chain::seal(&prev, text);
        assert_eq!(chain::split(&line), (*text, Some(hash.as_str())));
        sealed.push(line);
        prev = hash;
    }
    assert_eq!(
        chain::verify(sealed.iter().map(String::as_str)),
        Ok(sealed.len()),
        "a sealed trail does not verify"
    );
    // Alter one line (the middle one): the chain breaks exactly there.
    if sealed.len() >= 2 {
        let k = sealed.len() / 2;
        let (text, hash) = chain::split(&sealed[k]);
        let forged = format!("{text}x | #{}", hash.unwrap());
        let mut altered = sealed.clone();
        altered[k] = forged;
        let found = chain::verify(altered.iter().map(String::as_str));
        assert_eq!(
            found.map_err(|b| b.index),
            Err(k),
            "altered line {k} not found"
        );
    }
}

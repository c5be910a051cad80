//! The commands that read the data folder's files directly and work without a
//! running supervisor: `logs`, `audit`, `escalations`, and `check`, which reads
//! the config.

use super::{exit, Cli};
use crate::config::{whitelist, Config};
use crate::{chain, persist};
use serde::Serialize;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

/// How often `logs -f` looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// Whether `name` is a configured service, when the config can be read.
fn configured(cli: &Cli, name: &str) -> Option<bool> {
    Config::load(&cli.config)
        .ok()
        .map(|c| c.service(name).is_some())
}

pub fn logs(cli: &Cli, service: &str, n: usize, follow: bool) -> i32 {
    let path = cli.paths().service_log(service);
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) => {
            if configured(cli, service) == Some(false) {
                eprintln!("❌ unknown service: {service}");
                return exit::UNKNOWN_SERVICE;
            }
            eprintln!("❌ no log for {service} at {} ({e})", path.display());
            return exit::FAILED;
        }
    };
    let mut out = io::stdout().lock();
    match persist::tail(&mut file, n) {
        Ok(bytes) => {
            if out.write_all(&bytes).and_then(|_| out.flush()).is_err() {
                return exit::OK;
            }
        }
        Err(e) => {
            eprintln!("❌ cannot read {}: {e}", path.display());
            return exit::FAILED;
        }
    }
    if follow {
        follow_file(&path, file, &mut out);
    }
    exit::OK
}

/// Print what is appended to `path` until the reader goes away; when the file
/// is rotated (renamed or truncated), finish the old one and go on with the new.
fn follow_file(path: &Path, mut file: File, out: &mut impl Write) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => {
                    if out.write_all(&buf[..k]).and_then(|_| out.flush()).is_err() {
                        return; // stdout closed
                    }
                }
                Err(_) => break,
            }
        }
        std::thread::sleep(FOLLOW_POLL);
        let ours = file.metadata().ok();
        let now = std::fs::metadata(path).ok();
        let pos = file.stream_position().unwrap_or(0);
        match (ours, now) {
            (Some(a), Some(b)) if a.ino() != b.ino() || b.len() < pos => {
                // Rotated: read what is left of the old file, then switch.
                loop {
                    match file.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => {
                            if out.write_all(&buf[..k]).is_err() {
                                return;
                            }
                        }
                    }
                }
                if let Ok(f) = File::open(path) {
                    file = f;
                }
            }
            _ => {}
        }
    }
}

/// One audit line, parsed.
#[derive(Debug, Serialize, PartialEq)]
pub struct AuditLine {
    pub time: String,
    pub service: String,
    pub action: String,
    pub result: String,
    pub duration_ms: u64,
    pub detail: Option<String>,
    /// The line's link in the hash chain.
    pub hash: Option<String>,
}

pub fn parse_audit_line(line: &str) -> Option<AuditLine> {
    let (line, hash) = chain::split(line);
    let mut parts = line.splitn(6, " | ");
    let time = parts.next()?.to_string();
    let service = parts.next()?.to_string();
    let action = parts.next()?.to_string();
    let result = parts.next()?.to_string();
    let duration_ms = parts.next()?.strip_suffix("ms")?.parse().ok()?;
    let detail = parts.next().map(str::to_string);
    Some(AuditLine {
        time,
        service,
        action,
        result,
        duration_ms,
        detail,
        hash: hash.map(str::to_string),
    })
}

/// `audit`: the last `n` lines of the whole trail (rotated files included,
/// so a rotation that just happened hides nothing), of one service if given.
pub fn audit(cli: &Cli, service: Option<&str>, n: usize) -> i32 {
    let path = cli.paths().audit;
    let files = audit_files(&path);
    if files.is_empty() {
        if cli.json {
            println!("[]");
        } else {
            eprintln!("no audit trail yet at {}", path.display());
        }
        return exit::OK;
    }
    let mut last: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    for f in &files {
        let file = match File::open(f) {
            Ok(file) => file,
            // Dropped by a rotation since the listing: nothing left to show.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                eprintln!("❌ cannot read {}: {e}", f.display());
                return exit::FAILED;
            }
        };
        let matching =
            BufReader::new(file)
                .lines()
                .map_while(Result::ok)
                .filter(|l| match service {
                    Some(s) => l.split(" | ").nth(1) == Some(s),
                    None => true,
                });
        for l in matching {
            last.push_back(l);
            if last.len() > n {
                last.pop_front();
            }
        }
    }
    let lines = Vec::from(last);
    if cli.json {
        let parsed: Vec<AuditLine> = lines.iter().filter_map(|l| parse_audit_line(l)).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&parsed).unwrap_or_default()
        );
    } else {
        for l in lines {
            println!("{l}");
        }
    }
    exit::OK
}

/// The audit files, oldest first: rotated ones (`audit.log.N` … `.1`), then `audit.log`.
pub fn audit_files(audit: &Path) -> Vec<std::path::PathBuf> {
    let mut rotated: Vec<(u32, std::path::PathBuf)> = vec![];
    if let (Some(dir), Some(name)) = (audit.parent(), audit.file_name().and_then(|n| n.to_str())) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let fname = e.file_name();
                let Some(f) = fname.to_str() else { continue };
                if let Some(n) = f
                    .strip_prefix(name)
                    .and_then(|r| r.strip_prefix('.'))
                    .and_then(|r| r.parse::<u32>().ok())
                {
                    rotated.push((n, e.path()));
                }
            }
        }
    }
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut files: Vec<_> = rotated.into_iter().map(|(_, p)| p).collect();
    if audit.exists() {
        files.push(audit.to_path_buf());
    }
    files
}

/// `audit --verify`: check the hash chain across every audit file.
pub fn verify_audit(cli: &Cli) -> i32 {
    let files = audit_files(&cli.paths().audit);
    let mut lines: Vec<(String, usize, String)> = vec![];
    for f in &files {
        match std::fs::read_to_string(f) {
            Ok(text) => {
                for (i, l) in text.lines().enumerate() {
                    lines.push((f.display().to_string(), i + 1, l.to_string()));
                }
            }
            Err(e) => {
                eprintln!("❌ cannot read {}: {e}", f.display());
                return exit::FAILED;
            }
        }
    }
    match chain::verify(lines.iter().map(|(_, _, l)| l.as_str())) {
        Ok(n) => {
            println!(
                "✅ audit trail intact: {n} chained lines in {} file(s)",
                files.len()
            );
            exit::OK
        }
        Err(b) => {
            let (file, line_no, text) = &lines[b.index];
            println!(
                "❌ audit trail broken at {file} line {line_no}: {}",
                b.reason
            );
            println!("   {text}");
            exit::FAILED
        }
    }
}

/// One escalation block, parsed.
#[derive(Debug, Serialize, Default)]
pub struct EscalationBlock {
    pub service: String,
    pub consecutive_failures: String,
    pub restart_attempts: String,
    pub last_error: String,
    pub reason: String,
    pub time: String,
}

pub fn parse_escalations(text: &str) -> Vec<EscalationBlock> {
    let mut blocks = vec![];
    let mut current: Option<EscalationBlock> = None;
    for line in text.lines() {
        if line.contains("ESCALATION REQUIRED") {
            if let Some(b) = current.take() {
                blocks.push(b);
            }
            current = Some(EscalationBlock::default());
            continue;
        }
        let Some(b) = current.as_mut() else { continue };
        if let Some((k, v)) = line.split_once(": ") {
            let v = v.to_string();
            match k {
                "Service" => b.service = v,
                "Consecutive Failures" => b.consecutive_failures = v,
                "Restart Attempts" => b.restart_attempts = v,
                "Last Error" => b.last_error = v,
                "Reason" => b.reason = v,
                "Time" => b.time = v,
                _ => {}
            }
        } else if line.starts_with("=====") {
            if let Some(b) = current.take() {
                blocks.push(b);
            }
        }
    }
    blocks.extend(current);
    blocks
}

pub fn escalations(cli: &Cli) -> i32 {
    let path = cli.paths().escalations;
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            eprintln!("❌ cannot read {}: {e}", path.display());
            return exit::FAILED;
        }
    };
    if cli.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&parse_escalations(&text)).unwrap_or_default()
        );
    } else if text.is_empty() {
        println!("No escalations.");
    } else {
        print!("{text}");
    }
    exit::OK
}

pub fn check(cli: &Cli, init_whitelist: bool) -> i32 {
    if init_whitelist {
        return match whitelist::init_whitelist(&cli.config) {
            Ok(path) => {
                println!("✅ wrote {}", path.display());
                exit::OK
            }
            Err(e) => {
                eprintln!("❌ {e}");
                exit::FAILED
            }
        };
    }
    match Config::load(&cli.config) {
        Ok(c) => {
            if cli.json {
                let v = serde_json::json!({
                    "ok": true,
                    "config": c.path,
                    "whitelist": c.whitelist_path,
                    "services": c.services.iter().map(|s| &s.name).collect::<Vec<_>>(),
                    "enabled": c.enabled,
                });
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                println!(
                    "✅ {} is valid: {} services; whitelist {}",
                    c.path.display(),
                    c.services.len(),
                    c.whitelist_path.display()
                );
                for s in &c.services {
                    println!("  {} → {}", s.name, s.program.display());
                }
                if !c.enabled {
                    println!("  (\"enabled\": false: `start` will not start anything)");
                }
            }
            exit::OK
        }
        Err(e) => {
            if cli.json {
                let v = serde_json::json!({"ok": false, "error": e.to_string()});
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                eprintln!("❌ {e}");
            }
            exit::FAILED
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_lines_parse() {
        let l = parse_audit_line(
            "2025-10-09T12:00:00.000Z | producer | start | SUCCESS | 2345ms | pid 4 | x",
        )
        .unwrap();
        assert_eq!(l.duration_ms, 2345);
        assert_eq!(l.detail.as_deref(), Some("pid 4 | x"));
        assert!(parse_audit_line("garbage").is_none());
    }

    #[test]
    fn escalation_blocks_parse() {
        let text = "🚨 ===== ESCALATION REQUIRED =====\nService: a\nLast Error: x: y\n=====\n\
                    🚨 ===== ESCALATION REQUIRED =====\nService: b\n=====\n";
        let b = parse_escalations(text);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].last_error, "x: y");
        assert_eq!(b[1].service, "b");
    }
}

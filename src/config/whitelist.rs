//! `config/commands-whitelist.json`: the only programs the manager may execute
//! (SPEC §3.4), and `check --init-whitelist`, which writes one from the config.
//!
//! Entries are bare program names or absolute paths, globs allowed
//! (`"/opt/services/*/bin/*"`). A program is allowed when it was written as a bare
//! name matching a bare entry, when its resolved path matches an absolute entry, or
//! when a bare entry resolves through `PATH` to the very same path. A bare entry
//! never allows some other file that merely has the same name.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use glob::{MatchOptions, Pattern};

use super::{parse, resolve_program, ConfigError, Unchecked, WHITELIST_FILE};

/// The loaded whitelist.
#[derive(Debug, Clone)]
pub struct Whitelist {
    /// Where it was read from (as given).
    path: PathBuf,
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    /// As written in the file.
    written: String,
    pattern: Pattern,
    /// A bare program name (no `/`); otherwise an absolute path.
    bare: bool,
    /// Contains no glob syntax: a bare literal may be resolved through `PATH`.
    literal: bool,
}

/// `{"commands": [...]}` and nothing else.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, expecting = "an object {\"commands\": [...]}")]
struct RawWhitelist {
    commands: Vec<String>,
}

/// `*` and `?` never cross a `/`: `/opt/*/bin/x` does not allow `/opt/a/b/bin/x`.
const MATCH: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

impl Whitelist {
    /// Read and check the whitelist at `path`. A missing file is an error that says
    /// how to create one.
    pub fn load(path: &Path) -> Result<Whitelist, ConfigError> {
        let file = path.display();
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ConfigError(format!(
                    "{file}: whitelist not found. The manager only runs programs listed there. \
                     Create it from the config with `ai-dawg-manager check --init-whitelist` \
                     (then review it), or write it by hand: {{\"commands\": [\"python3\"]}}"
                )))
            }
            Err(e) => return Err(ConfigError(format!("{file}: cannot read the file: {e}"))),
        };
        let raw: RawWhitelist = parse::parse_json(&text, path)?;
        let mut problems = Vec::new();
        let mut entries = Vec::new();
        for (i, written) in raw.commands.into_iter().enumerate() {
            match Entry::new(&written) {
                Ok(entry) => entries.push(entry),
                Err(e) => problems.push(format!("commands[{i}]: {e}")),
            }
        }
        match problems.as_slice() {
            [] => Ok(Whitelist {
                path: path.to_path_buf(),
                entries,
            }),
            [one] => Err(ConfigError(format!("{file}: {one}"))),
            many => Err(ConfigError(format!(
                "{file}: {} problems:\n  {}",
                many.len(),
                many.join("\n  ")
            ))),
        }
    }

    /// Whether the program written as `written` (an argv[0]) and resolved to
    /// `resolved` (see [`resolve_program`]) may be executed.
    pub fn allows(&self, written: &str, resolved: &Path) -> bool {
        let written_bare = !written.is_empty() && !written.contains('/');
        self.entries.iter().any(|entry| {
            if entry.bare {
                (written_bare && entry.pattern.matches_with(written, MATCH))
                    || (entry.literal
                        && resolve_program(&entry.written, Path::new("/")).as_deref()
                            == Some(resolved))
            } else {
                entry.pattern.matches_path_with(resolved, MATCH)
            }
        })
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The entries, as written.
    pub fn entries(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.written.as_str())
    }
}

impl Entry {
    fn new(written: &str) -> Result<Entry, String> {
        if written.trim().is_empty() {
            return Err("empty entry".into());
        }
        if written.contains('\0') {
            return Err(format!("{written:?} contains a NUL byte"));
        }
        let bare = !written.contains('/');
        if !bare && !written.starts_with('/') {
            return Err(format!(
                "{written:?} is neither a bare program name nor an absolute path"
            ));
        }
        let pattern =
            Pattern::new(written).map_err(|e| format!("{written:?} is not a valid glob: {e}"))?;
        Ok(Entry {
            written: written.to_owned(),
            pattern,
            bare,
            literal: Pattern::escape(written) == written,
        })
    }
}

/// The whitelist entry that allows exactly this program: the bare name as written,
/// otherwise the resolved absolute path (glob characters escaped). `None` when the
/// path is not UTF-8.
pub(crate) fn entry_for(written: &str, resolved: &Path) -> Option<String> {
    if !written.is_empty() && !written.contains('/') {
        Some(Pattern::escape(written))
    } else {
        resolved.to_str().map(Pattern::escape)
    }
}

/// `check --init-whitelist`: parse the config at `config_path` without whitelist
/// checks (it must be valid otherwise) and write, next to it, a whitelist listing
/// exactly the programs it uses (bare names stay bare), atomically. Refuses to
/// overwrite an existing whitelist. Returns the absolute path written.
pub fn init_whitelist(config_path: &Path) -> Result<PathBuf, ConfigError> {
    let display = config_path
        .parent()
        .unwrap_or(Path::new(""))
        .join(WHITELIST_FILE);
    if display.symlink_metadata().is_ok() {
        return Err(already_exists(&display));
    }
    let (config, programs) = Unchecked::load(config_path)?.into_result()?;
    let mut commands: Vec<String> = Vec::new();
    for used in &programs {
        let entry = entry_for(&used.written, &used.resolved).ok_or_else(|| {
            ConfigError(format!(
                "{}: {}: the path {} is not UTF-8 and cannot be written to the whitelist",
                config_path.display(),
                used.key,
                used.resolved.display()
            ))
        })?;
        if !commands.contains(&entry) {
            commands.push(entry);
        }
    }
    let text = serde_json::to_string_pretty(&serde_json::json!({ "commands": commands }))
        .map_err(|e| ConfigError(format!("{}: {e}", display.display())))?;
    write_new(&config.whitelist_path, &display, &format!("{text}\n"))?;
    Ok(config.whitelist_path)
}

fn already_exists(display: &Path) -> ConfigError {
    ConfigError(format!(
        "{}: already exists; refusing to overwrite it. Edit it by hand, or remove it and \
         run `ai-dawg-manager check --init-whitelist` again",
        display.display()
    ))
}

/// Write `text` to `target` through a temporary file in the same folder and a
/// rename, so a reader never sees half a file; never replaces an existing file.
fn write_new(target: &Path, display: &Path, text: &str) -> Result<(), ConfigError> {
    let fail = |what: &str, e: std::io::Error| {
        ConfigError(format!("{}: cannot {what}: {e}", display.display()))
    };
    let folder = target.parent().unwrap_or(Path::new("/"));
    let temp = folder.join(format!(".{WHITELIST_FILE}.{}.tmp", std::process::id()));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&temp)
        .and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.sync_all()
        });
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(fail("write the temporary file", e));
    }
    if target.symlink_metadata().is_ok() {
        let _ = fs::remove_file(&temp);
        return Err(already_exists(display));
    }
    if let Err(e) = fs::rename(&temp, target) {
        let _ = fs::remove_file(&temp);
        return Err(fail("rename the temporary file into place", e));
    }
    if let Ok(dir) = fs::File::open(folder) {
        let _ = dir.sync_all();
    }
    Ok(())
}

//! Reading a JSON file into the serde shapes, with operator-facing errors.
//!
//! Shared by the config and the whitelist. Malformed JSON is reported with line and
//! column; a wrong type or an unknown key with its key path (through
//! `serde_path_to_error`), e.g.
//! `config/autonomy.json: ai_dawg.services.producer.prot: unknown field `prot`, ...`.
//! Every message starts with the file's path as the operator gave it.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::error::Category;

use super::ConfigError;

/// The file's text, or an error naming the file.
pub(crate) fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("{}: cannot read the file: {e}", path.display())))
}

/// Deserialize `text` (the content of `display`) as `T`, refusing trailing content.
pub(crate) fn parse_json<T: DeserializeOwned>(
    text: &str,
    display: &Path,
) -> Result<T, ConfigError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value: T =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|e| describe(e, display))?;
    deserializer
        .end()
        .map_err(|e| describe_plain(e, ".", display))?;
    Ok(value)
}

fn describe(err: serde_path_to_error::Error<serde_json::Error>, display: &Path) -> ConfigError {
    let key_path = err.path().to_string();
    describe_plain(err.into_inner(), &key_path, display)
}

fn describe_plain(err: serde_json::Error, key_path: &str, display: &Path) -> ConfigError {
    let (line, column) = (err.line(), err.column());
    let message = without_position(&err.to_string(), line, column);
    let file = display.display();
    ConfigError(match err.classify() {
        Category::Syntax | Category::Eof => {
            format!("{file}: malformed JSON at line {line}, column {column}: {message}")
        }
        Category::Io => format!("{file}: cannot read the file: {message}"),
        Category::Data if key_path == "." || key_path.is_empty() => {
            format!("{file}: {message} (line {line}, column {column})")
        }
        Category::Data => format!("{file}: {key_path}: {message} (line {line}, column {column})"),
    })
}

/// serde_json appends " at line L column C" to its messages; we place it ourselves.
fn without_position(message: &str, line: usize, column: usize) -> String {
    let suffix = format!(" at line {line} column {column}");
    message.strip_suffix(&suffix).unwrap_or(message).to_owned()
}

//! The audit trail's hash chain: every line ends with ` | #<16 hex>`, the first
//! 8 bytes of SHA-256 over the previous line's hash and this line's text, so
//! altering or removing a line breaks the chain at the next line, and
//! `audit --verify` names it. The chain runs on across rotated files.

use sha2::{Digest, Sha256};

/// The marker before a line's hash.
const MARK: &str = " | #";
/// Hex digits of a hash.
const HASH_LEN: usize = 16;

/// The hash of a line whose text is `text`, following a line hashed `prev`
/// (empty for the first line of the trail).
pub fn link(prev: &str, text: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(text.as_bytes());
    h.finalize()[..HASH_LEN / 2]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `text` with its hash appended.
pub fn seal(prev: &str, text: &str) -> (String, String) {
    let hash = link(prev, text);
    (format!("{text}{MARK}{hash}"), hash)
}

/// Split a stored line into its text and hash (`None` for a line without one).
pub fn split(line: &str) -> (&str, Option<&str>) {
    match line.rfind(MARK) {
        Some(i)
            if line.len() == i + MARK.len() + HASH_LEN
                && line[i + MARK.len()..]
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit()) =>
        {
            (&line[..i], Some(&line[i + MARK.len()..]))
        }
        _ => (line, None),
    }
}

/// Where the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// Index in the sequence of lines given to [`verify`] (0-based).
    pub index: usize,
    pub reason: &'static str,
}

/// Check a sequence of lines (oldest first). Lines before the first sealed
/// one (written before the chain existed) are skipped; after it, every line
/// must be sealed and follow its predecessor. Returns how many lines were
/// checked.
pub fn verify<'a>(lines: impl IntoIterator<Item = &'a str>) -> Result<usize, Break> {
    let mut prev: Option<String> = None;
    let mut checked = 0;
    for (index, line) in lines.into_iter().enumerate() {
        let (text, hash) = split(line);
        match (hash, &prev) {
            (None, None) => continue,
            (None, Some(_)) => {
                return Err(Break {
                    index,
                    reason: "has no hash: added or altered by hand",
                })
            }
            (Some(h), p) => {
                // The first sealed line starts the chain, whatever came before
                // (a trail rotated away, or lines written before the chain).
                if let Some(p) = p {
                    if link(p, text) != h {
                        return Err(Break {
                            index,
                            reason: "does not follow the line before it: this line was altered, or the line before it removed",
                        });
                    }
                }
                prev = Some(h.to_string());
                checked += 1;
            }
        }
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trail(n: usize) -> Vec<String> {
        let mut prev = String::new();
        (0..n)
            .map(|i| {
                let (line, h) = seal(&prev, &format!("t | s | start | SUCCESS | {i}ms"));
                prev = h;
                line
            })
            .collect()
    }

    #[test]
    fn an_intact_trail_verifies() {
        let t = trail(5);
        assert_eq!(verify(t.iter().map(String::as_str)), Ok(5));
    }

    #[test]
    fn an_altered_line_is_named() {
        let mut t = trail(5);
        t[2] = t[2].replace("2ms", "3ms");
        assert_eq!(verify(t.iter().map(String::as_str)).unwrap_err().index, 2);
    }

    #[test]
    fn a_removed_line_is_named_at_its_successor() {
        let mut t = trail(5);
        t.remove(2);
        assert_eq!(verify(t.iter().map(String::as_str)).unwrap_err().index, 2);
    }

    #[test]
    fn an_inserted_unsealed_line_is_named() {
        let mut t = trail(3);
        t.insert(1, "forged | line".into());
        assert_eq!(verify(t.iter().map(String::as_str)).unwrap_err().index, 1);
    }

    #[test]
    fn split_keeps_details_with_bars() {
        let (line, h) = seal("", "a | b | c");
        assert_eq!(split(&line), ("a | b | c", Some(h.as_str())));
        assert_eq!(split("x | #zz"), ("x | #zz", None));
    }
}

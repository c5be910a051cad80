//! Durations: the two ways a config may write one, turned into `Duration` once.
//!
//! A key `X_seconds` takes a JSON number of seconds (fractions allowed, finite,
//! not negative); the key `X` takes a humantime string such as `"500ms"` or
//! `"1m 30s"`. Giving both forms of one key is refused, naming both, because the
//! reader could not tell which one wins.

use std::time::Duration;

use super::raw::{HumanDuration, Seconds};
use super::validate::Problems;

/// One duration setting as written: its key path without the `_seconds` suffix and
/// the two optional forms.
pub(crate) struct DurationKey<'a> {
    /// Path of the object holding the key, e.g. `ai_dawg.services.producer`.
    pub at: &'a str,
    /// The key without suffix, e.g. `start_timeout`.
    pub key: &'a str,
    pub human: Option<&'a HumanDuration>,
    pub seconds: Option<Seconds>,
}

impl DurationKey<'_> {
    /// The duration given (`None` when neither form is given or the value is bad;
    /// a bad value is pushed to `problems` with its key path).
    pub(crate) fn resolve(&self, problems: &mut Problems) -> Option<Duration> {
        let human_path = join(self.at, self.key);
        let seconds_path = format!("{human_path}_seconds");
        match (self.human, self.seconds) {
            (None, None) => None,
            (Some(_), Some(_)) => {
                problems.push(
                    &human_path,
                    format!(
                        "both `{}` and `{}_seconds` are given; keep only one of them",
                        self.key, self.key
                    ),
                );
                None
            }
            (Some(human), None) => match parse_human(&human.0) {
                Ok(d) => Some(d),
                Err(e) => {
                    problems.push(&human_path, e);
                    None
                }
            },
            (None, Some(seconds)) => match from_seconds(seconds.0) {
                Ok(d) => Some(d),
                Err(e) => {
                    problems.push(&seconds_path, e);
                    None
                }
            },
        }
    }

    /// The key path of the form actually written (for messages about the value).
    pub(crate) fn written_path(&self) -> String {
        let base = join(self.at, self.key);
        if self.seconds.is_some() && self.human.is_none() {
            format!("{base}_seconds")
        } else {
            base
        }
    }
}

/// `"1m 30s"` → 90 s, with a message fit for an operator on failure.
pub(crate) fn parse_human(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        format!("invalid duration {text:?}: {e} (write it like \"500ms\", \"10s\" or \"1m 30s\")")
    })
}

/// A number of seconds → `Duration`, refusing negative, non-finite and huge values.
pub(crate) fn from_seconds(seconds: f64) -> Result<Duration, String> {
    if !seconds.is_finite() {
        return Err(format!("{seconds} is not a finite number of seconds"));
    }
    if seconds < 0.0 {
        return Err(format!("{seconds} seconds is negative"));
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{seconds} seconds is too large"))
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_owned()
    } else {
        format!("{at}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_accept_fractions_and_refuse_negative() {
        assert_eq!(from_seconds(0.5), Ok(Duration::from_millis(500)));
        assert_eq!(from_seconds(30.0), Ok(Duration::from_secs(30)));
        assert_eq!(from_seconds(0.0), Ok(Duration::ZERO));
        assert!(from_seconds(-1.0).is_err());
        assert!(from_seconds(f64::NAN).is_err());
        assert!(from_seconds(f64::INFINITY).is_err());
        assert!(from_seconds(1e300).is_err());
    }

    #[test]
    fn humantime_strings() {
        assert_eq!(parse_human("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_human("1m 30s"), Ok(Duration::from_secs(90)));
        let err = parse_human("10").unwrap_err();
        assert!(err.contains("\"10\""), "{err}");
        assert!(parse_human("soon").is_err());
        assert!(parse_human("").is_err());
    }

    #[test]
    fn both_forms_are_refused_naming_both() {
        let mut problems = Problems::default();
        let human = HumanDuration("10s".into());
        let key = DurationKey {
            at: "monitoring",
            key: "restart_cooldown",
            human: Some(&human),
            seconds: Some(Seconds(10.0)),
        };
        assert_eq!(key.resolve(&mut problems), None);
        let text = problems.lines().join("\n");
        assert!(text.contains("monitoring.restart_cooldown:"), "{text}");
        assert!(text.contains("`restart_cooldown_seconds`"), "{text}");
    }
}

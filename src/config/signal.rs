//! `stop_signal`: a signal name in any case, with or without `SIG`, or a number.

use std::str::FromStr;

use nix::sys::signal::Signal;

use super::raw::RawSignal;

/// `"SIGTERM"`, `"TERM"`, `"sigterm"`, `"15"` and `15` all give `SIGTERM`.
pub(crate) fn parse_signal(raw: &RawSignal) -> Result<Signal, String> {
    match raw {
        RawSignal::Number(n) => from_number(*n),
        RawSignal::Name(name) => {
            let trimmed = name.trim();
            if let Ok(n) = trimmed.parse::<i64>() {
                return from_number(n);
            }
            let upper = trimmed.to_ascii_uppercase();
            let full = if upper.starts_with("SIG") {
                upper
            } else {
                format!("SIG{upper}")
            };
            Signal::from_str(&full).map_err(|_| {
                format!("unknown signal {name:?}; use a name such as \"SIGTERM\" or \"SIGINT\"")
            })
        }
    }
}

fn from_number(n: i64) -> Result<Signal, String> {
    i32::try_from(n)
        .ok()
        .and_then(|n| Signal::try_from(n).ok())
        .ok_or_else(|| format!("{n} is not a signal number on this system"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        for raw in [
            RawSignal::Name("SIGTERM".into()),
            RawSignal::Name("TERM".into()),
            RawSignal::Name("sigterm".into()),
            RawSignal::Name("term".into()),
            RawSignal::Name("15".into()),
            RawSignal::Number(15),
        ] {
            assert_eq!(parse_signal(&raw), Ok(Signal::SIGTERM), "{raw:?}");
        }
        assert_eq!(
            parse_signal(&RawSignal::Name("SIGINT".into())),
            Ok(Signal::SIGINT)
        );
        assert_eq!(parse_signal(&RawSignal::Number(9)), Ok(Signal::SIGKILL));
    }

    #[test]
    fn refusals() {
        for raw in [
            RawSignal::Name("SIGNOPE".into()),
            RawSignal::Name("".into()),
            RawSignal::Name("SIG".into()),
            RawSignal::Number(0),
            RawSignal::Number(-1),
            RawSignal::Number(999),
            RawSignal::Number(i64::MAX),
        ] {
            assert!(parse_signal(&raw).is_err(), "{raw:?} accepted");
        }
    }
}

//! `report` and `history NAME`: read `data/history.db` directly (read-only), so
//! they work with or without a running supervisor.

use super::{exit, Cli};
use crate::config::{Config, HistorySettings};
use crate::history::report::{self, Query, Window};
use crate::history::store::Store;
use crate::history::time::{parse_day, parse_period};
use crate::history::timeline;
use crate::model::unix_ms;

/// `report`: availability, incidents, restarts, MTTR, MTBF, health latency and
/// top error kinds per service, against the previous period; and the patterns.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// The period up to now: 24h, 7d, 90m…
    #[arg(long, default_value = "24h", conflicts_with = "day")]
    pub since: String,
    /// One whole UTC day instead, YYYY-MM-DD (compared with the day before).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub day: Option<String>,
    /// Only this service.
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
}

/// `history NAME`: the incident timeline of one service.
#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    /// The service.
    pub service: String,
    /// Only the last part: 24h, 7d… (default: all the history kept).
    #[arg(long)]
    pub since: Option<String>,
}

/// The pattern thresholds of the config, or the defaults when it cannot be read.
fn settings(cli: &Cli) -> HistorySettings {
    if !cli.config.exists() {
        return HistorySettings::default();
    }
    match Config::load(&cli.config) {
        Ok(c) => c.history,
        Err(e) => {
            log::warn!(target: "history", "{e}\nusing the default pattern thresholds");
            HistorySettings::default()
        }
    }
}

fn open(cli: &Cli) -> Result<Store, i32> {
    Store::open_read_only(&cli.paths().history).map_err(|e| {
        eprintln!("❌ {e}");
        exit::FAILED
    })
}

fn print_json(value: &impl serde::Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

pub fn run_report(cli: &Cli, args: &ReportArgs) -> i32 {
    let now = unix_ms();
    let query = match &args.day {
        Some(day) => match parse_day(day) {
            Ok(d) if d <= now => Query::day(d, now, args.service.clone()),
            Ok(_) => {
                eprintln!("❌ {day} has not begun yet (days are UTC)");
                return exit::USAGE;
            }
            Err(e) => {
                eprintln!("❌ --day: {e}");
                return exit::USAGE;
            }
        },
        None => match parse_period(&args.since) {
            Ok(len) => Query::since(now, len, args.service.clone()),
            Err(e) => {
                eprintln!("❌ --since: {e}");
                return exit::USAGE;
            }
        },
    };
    let store = match open(cli) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let report = match report::generate(&store, &query, &settings(cli)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("❌ {e}");
            return exit::FAILED;
        }
    };
    if let (Some(name), true) = (&args.service, report.services.is_empty()) {
        eprintln!("❌ no history for service `{name}` in this period");
        return exit::UNKNOWN_SERVICE;
    }
    if cli.json {
        print_json(&report);
    } else {
        print!("{}", report::render_text(&report));
    }
    exit::OK
}

pub fn run_history(cli: &Cli, args: &HistoryArgs) -> i32 {
    let now = unix_ms();
    let start = match args.since.as_deref().map(parse_period) {
        None => 0,
        Some(Ok(len)) => now.saturating_sub(len),
        Some(Err(e)) => {
            eprintln!("❌ --since: {e}");
            return exit::USAGE;
        }
    };
    let store = match open(cli) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let window = Window {
        start_ms: start,
        end_ms: now,
    };
    match timeline::build(&store, &args.service, window) {
        Ok(Some(t)) if cli.json => {
            print_json(&t);
            exit::OK
        }
        Ok(Some(t)) => {
            print!("{}", timeline::render_text(&t));
            exit::OK
        }
        Ok(None) => {
            eprintln!("❌ no history for service `{}`", args.service);
            exit::UNKNOWN_SERVICE
        }
        Err(e) => {
            eprintln!("❌ {e}");
            exit::FAILED
        }
    }
}

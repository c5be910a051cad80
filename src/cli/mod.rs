//! The command line (SPEC §5): one clap parser; `start` without names runs the
//! supervisor, every other command is a short synchronous client of the
//! control socket (or, for a stale `status`, a reader of the state file).

pub mod client;
pub mod events;
pub mod explain;
pub mod files;
pub mod render;
pub mod report;
pub mod style;

use crate::demo_service::DemoOptions;
use crate::paths::{DataPaths, DEFAULT_CONFIG};
use crate::protocol::{ControlRequest, ControlResponse, ErrorCode, KillSwitchMode};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Exit codes (SPEC §5).
pub mod exit {
    pub const OK: i32 = 0;
    pub const FAILED: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const NO_SUPERVISOR: i32 = 3;
    pub const UNKNOWN_SERVICE: i32 = 4;
}

/// AI DAWG Manager: keeps long-running services alive with zero human intervention.
///
/// Examples:
///   ai-dawg-manager start                 run the supervisor (foreground)
///   ai-dawg-manager status                summary of every service
///   ai-dawg-manager restart producer      graceful restart, not counted as a failure
///   ai-dawg-manager recover producer      clear an escalation and start again
///   ai-dawg-manager events --json         follow every state change, one JSON line each
#[derive(Parser, Debug)]
#[command(name = "ai-dawg-manager", version, verbatim_doc_comment)]
pub struct Cli {
    /// The config file; the root is the parent of its folder.
    #[arg(long, global = true, env = "AI_DAWG_CONFIG", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// The data folder (default: <root>/data).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less output (-q warnings only, -qq errors only).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub quiet: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the supervisor in the foreground; with names, start those (stopped) services.
    Start { services: Vec<String> },
    /// Stop these services; they stay stopped until started.
    Stop {
        #[arg(required = true)]
        services: Vec<String>,
    },
    /// Graceful stop then start; not counted as a failure.
    Restart {
        #[arg(required = true)]
        services: Vec<String>,
    },
    /// Human recovery: clear the escalation, reset counters, free the port, restart.
    Recover {
        #[arg(required = true)]
        services: Vec<String>,
    },
    /// Summary and details of the services (all when none named).
    Status {
        services: Vec<String>,
        /// Say why NAME is in its state: exits, budget, cooldown, last probe error.
        #[arg(long, value_name = "NAME")]
        explain: Option<String>,
    },
    /// A service's log: the last N lines, and with -f every new line.
    Logs {
        service: String,
        /// How many lines from the end.
        #[arg(short = 'n', long = "lines", default_value_t = 10)]
        lines: usize,
        /// Keep printing lines as they are written (across rotation), until Ctrl-C.
        #[arg(short, long)]
        follow: bool,
    },
    /// Re-read the config: start added services, stop removed ones, restart changed ones.
    Reload,
    /// Set the kill switch at run time (kept across restarts), or return to the config's value.
    KillSwitch {
        #[arg(value_enum)]
        mode: KillSwitchMode,
    },
    /// The audit trail (reads the file; no supervisor needed).
    Audit {
        /// Only lines about this service (or `manager`).
        #[arg(long)]
        service: Option<String>,
        /// How many lines from the end.
        #[arg(short = 'n', long = "lines", default_value_t = 50)]
        lines: usize,
        /// Check the hash chain of the whole trail; name the first altered or removed line.
        #[arg(long)]
        verify: bool,
    },
    /// The escalation log (reads the file; no supervisor needed).
    Escalations,
    /// Validate the config and the whitelist without starting anything.
    Check {
        /// Write a whitelist listing exactly the programs the config uses.
        #[arg(long)]
        init_whitelist: bool,
    },
    /// Stop all services (dependents first) and the supervisor.
    Shutdown,
    /// Print events as they happen (status changes, starts, exits, failed checks),
    /// until Ctrl-C; -v adds passing checks; --json prints every event, one JSON line each.
    ///
    /// Human form: `<time> <service> <from> -> <to>`, `<time> <service> started pid N (restart)`.
    Events {
        /// Only these services (all when none named).
        services: Vec<String>,
    },
    /// Availability, incidents, restarts, MTTR/MTBF, latency and patterns per service, vs the previous period.
    Report(report::ReportArgs),
    /// The incident timeline of one service.
    History(report::HistoryArgs),
    /// Run the built-in demo service (used by the shipped config and the tests).
    #[command(hide = true)]
    DemoService(DemoOptions),
}

impl Cli {
    pub fn paths(&self) -> DataPaths {
        DataPaths::resolve(&self.config, self.data_dir.as_deref())
    }

    /// The log filter for `-v/-q`; `RUST_LOG` wins when set.
    pub fn log_level(&self) -> &'static str {
        let default_supervisor =
            matches!(&self.command, Command::Start { services } if services.is_empty());
        let base: i32 = if default_supervisor { 2 } else { 1 };
        match base + i32::from(self.verbose) - i32::from(self.quiet) {
            i32::MIN..=0 => "error",
            1 => "warn",
            2 => "info",
            3 => "debug",
            _ => "trace",
        }
    }
}

/// Run the parsed command; the exit code.
pub fn run(cli: Cli) -> i32 {
    let request = match &cli.command {
        Command::Start { services } if services.is_empty() => {
            return match crate::supervisor::run(&cli.config, cli.data_dir.as_deref()) {
                Ok(()) => exit::OK,
                Err(e) => {
                    eprintln!("❌ {e}");
                    exit::FAILED
                }
            };
        }
        Command::Report(args) => return report::run_report(&cli, args),
        Command::History(args) => return report::run_history(&cli, args),
        Command::DemoService(opts) => {
            return match crate::demo_service::run(opts.clone()) {
                Ok(()) => exit::OK,
                Err(e) => {
                    eprintln!("demo-service: {e}");
                    exit::FAILED
                }
            };
        }
        Command::Start { services } => ControlRequest::Start {
            services: services.clone(),
        },
        Command::Stop { services } => ControlRequest::Stop {
            services: services.clone(),
        },
        Command::Restart { services } => ControlRequest::Restart {
            services: services.clone(),
        },
        Command::Recover { services } => ControlRequest::Recover {
            services: services.clone(),
        },
        Command::Status { services, explain } => ControlRequest::Status {
            services: match explain {
                Some(name) => vec![name.clone()],
                None => services.clone(),
            },
        },
        Command::Reload => ControlRequest::Reload,
        Command::KillSwitch { mode } => ControlRequest::KillSwitch { mode: *mode },
        Command::Shutdown => ControlRequest::Shutdown,
        Command::Logs {
            service,
            lines,
            follow,
        } => return files::logs(&cli, service, *lines, *follow),
        Command::Audit { verify: true, .. } => return files::verify_audit(&cli),
        Command::Audit { service, lines, .. } => {
            return files::audit(&cli, service.as_deref(), *lines)
        }
        Command::Escalations => return files::escalations(&cli),
        Command::Check { init_whitelist } => return files::check(&cli, *init_whitelist),
        Command::Events { services } => return events::follow(&cli, services),
    };
    let paths = cli.paths();
    match client::ask(&paths.socket, &request) {
        Ok(response) => show(&cli, &response),
        Err(client::ClientError::NoSupervisor(why)) => {
            if let ControlRequest::Status { services } = &request {
                return render::stale_status(&paths, &cli.config, services, cli.json);
            }
            eprintln!(
                "❌ no supervisor is running on {} ({why}); start one with `ai-dawg-manager start`",
                paths.dir.display()
            );
            exit::NO_SUPERVISOR
        }
        Err(e) => {
            eprintln!("❌ {e}");
            exit::FAILED
        }
    }
}

/// Print an answer and choose the exit code.
fn show(cli: &Cli, response: &ControlResponse) -> i32 {
    let code = match response {
        ControlResponse::Status(_) => exit::OK,
        ControlResponse::Actions(a) if a.all_ok() => exit::OK,
        ControlResponse::Actions(_) => exit::FAILED,
        ControlResponse::Error(e) => match e.code {
            ErrorCode::UnknownService => exit::UNKNOWN_SERVICE,
            ErrorCode::BadRequest => exit::USAGE,
            ErrorCode::Failed => exit::FAILED,
        },
        ControlResponse::Event(_) => exit::OK,
    };
    if cli.json {
        let body = match response {
            ControlResponse::Status(s) => serde_json::to_string_pretty(s),
            ControlResponse::Actions(a) => serde_json::to_string_pretty(a),
            ControlResponse::Error(e) => {
                serde_json::to_string_pretty(&serde_json::json!({ "error": e }))
            }
            ControlResponse::Event(e) => serde_json::to_string(e),
        };
        println!("{}", body.unwrap_or_default());
    } else {
        match response {
            ControlResponse::Status(s) => match &cli.command {
                Command::Status {
                    explain: Some(_), ..
                } => print!("{}", explain::explain(s)),
                _ => print!("{}", render::status(s, None)),
            },
            ControlResponse::Actions(a) => print!("{}", render::actions(a)),
            ControlResponse::Error(e) => eprintln!("❌ {}", e.message),
            ControlResponse::Event(e) => println!("{}", events::human(e)),
        }
    }
    code
}

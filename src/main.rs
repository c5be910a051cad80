//! `ai-dawg-manager`: parse, run, exit with the command's code.

use ai_dawg_manager::cli::{self, Cli};
use clap::Parser;

fn main() {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(cli.log_level()))
        .format_timestamp_millis()
        .init();
    std::process::exit(cli::run(cli));
}

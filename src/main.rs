//! The `bits-tls` binary: parse the command line, run, map the outcome to an exit code.

use bits_tls::{commands, errors, exit, printer, settings};
use clap::FromArgMatches;
use std::process::ExitCode;

fn main() -> ExitCode {
    let parsed = settings::command()
        .try_get_matches()
        .and_then(|m| bits_tls::cli::Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        // clap would exit 2 on a usage error, but 2 means "changes pending" here: a usage error is 1.
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(exit::ERROR)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match commands::run(cli) {
        Ok(status) => status.into(),
        Err(err) if errors::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            printer::print_error(&err);
            ExitCode::from(exit::ERROR)
        }
    }
}

//! One small adapter per subcommand: build options from the command line, call the library, print.

pub mod check;
pub mod completions;
pub mod diff;
pub mod fetch;
pub mod init;
pub mod man;
pub mod notify;
pub mod probe;
pub mod render;
pub mod sync;
pub mod verify;

use crate::cli::{Cli, ColorWhen, Command};
use crate::exit::ExitStatus;
use crate::printer::{Printer, Verbosity};

/// Runs the parsed command line. Errors are returned, never printed or exited on here.
pub fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    let choice = match cli.global.color {
        ColorWhen::Auto => anstream::ColorChoice::Auto,
        ColorWhen::Always => anstream::ColorChoice::Always,
        ColorWhen::Never => anstream::ColorChoice::Never,
    };
    choice.write_global();
    let verbosity = match (cli.global.quiet, cli.global.verbose) {
        (true, _) => Verbosity::Quiet,
        (false, 0) => Verbosity::Normal,
        (false, _) => Verbosity::Verbose,
    };
    let printer = Printer::new(verbosity);
    let config = cli.global.config.as_deref();
    match cli.command {
        Command::Fetch(args) => fetch::run(&args, config, &printer),
        Command::Render(args) => render::run(&args, config, &printer),
        Command::Diff(args) => diff::run(&args, config, &printer),
        Command::Sync(args) => sync::run(&args, config, &printer),
        Command::Check(args) => check::run(&args, config, &printer),
        Command::Verify(args) => verify::run(&args, config, &printer),
        Command::Probe(args) => probe::run(&args, config, &printer),
        Command::Init(args) => init::run(&args, config, &printer),
        Command::Completions { shell } => completions::run(shell),
        Command::Man(args) => man::run(&args, &printer),
        Command::Notify(args) => notify::run(&args, config, &printer),
    }
}

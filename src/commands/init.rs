//! `bits-tls init`: write the commented starter configuration.

use crate::cli::InitArgs;
use crate::exit::ExitStatus;
use crate::printer::Printer;

pub fn run(args: &InitArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    if args.path.exists() && !args.force {
        anyhow::bail!(
            "`{}` exists already; not overwritten (pass --force to replace it)",
            crate::sanitize::for_terminal(&args.path.display().to_string())
        );
    }
    crate::write::write_atomic(&args.path, crate::config::STARTER.as_bytes())?;
    printer.note(&format!(
        "wrote {}: set the outputs, then run `bits-tls diff` to see what a sync would do",
        args.path.display()
    ));
    Ok(ExitStatus::Success)
}

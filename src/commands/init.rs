//! `bits-tls init`: write the commented starter configuration, or print it with `-`.

use crate::cli::InitArgs;
use crate::exit::ExitStatus;
use crate::printer::Printer;
use std::io::Write;
use std::path::Path;

pub fn run(
    args: &InitArgs,
    config: Option<&Path>,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let starter = crate::config::STARTER.as_bytes();
    let path = match (&args.path, config) {
        (Some(p), _) if p.as_os_str() == "-" => {
            let mut out = crate::report::stdout();
            out.write_all(starter)?;
            out.flush()?;
            return Ok(ExitStatus::Success);
        }
        (Some(p), _) => p.as_path(),
        (None, Some(c)) => c,
        (None, None) => Path::new(crate::config::DEFAULT_FILE),
    };
    let shown = crate::sanitize::for_terminal(&path.display().to_string());
    if path.exists() {
        if !args.force {
            anyhow::bail!(
                "`{shown}` exists already; not overwritten (`bits-tls init -` prints the example; --force replaces the file, keeping it as `{shown}.bak`)"
            );
        }
        let mut backup = path.as_os_str().to_owned();
        backup.push(".bak");
        let old = std::fs::read(path)?;
        crate::write::write_atomic(Path::new(&backup), &old)?;
        printer.note(&format!(
            "kept the old file as {}",
            Path::new(&backup).display()
        ));
    }
    crate::write::write_atomic(path, starter)?;
    printer.note(&format!(
        "wrote {shown}: set the outputs, then run `bits-tls diff` to see what a sync would do"
    ));
    Ok(ExitStatus::Success)
}

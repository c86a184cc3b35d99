//! `bits-tls fetch`: print the parsed list as a table, JSON or normalised CSV.

use crate::cli::FetchArgs;
use crate::config::Config;
use crate::exit::ExitStatus;
use crate::printer::Printer;
use crate::report;
use crate::settings::{self, SourceSettings};
use crate::source;
use anyhow::Context;
use std::io::Write;
use std::path::Path;

pub fn run(
    args: &FetchArgs,
    config: Option<&Path>,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let cfg = Config::discover(config)?;
    let options = settings::render_options(&cfg, &Default::default())?;
    let settings = SourceSettings::new(&cfg, &args.source, &options)?;
    let fetched = source::fetch(&settings.location, &settings.fetch, &printer.log())?;
    printer.info(&format!("read {}", fetched.format_note));
    printer.warnings(&fetched.list.warnings);
    source::require_domains(&fetched, &settings.location, args.allow_empty)?;
    let mut out = crate::report::stdout();
    report::list::write(&mut out, args.format, &fetched.provenance, &fetched.list)?;
    out.flush().context("writing to stdout")?;
    // The list is plain data; freeing it piece by piece just before the process ends is left to the
    // operating system, as `sync` leaves its plan.
    std::mem::forget(fetched);
    Ok(ExitStatus::Success)
}

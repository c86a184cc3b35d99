//! `bits-tls diff`: the plan, changing nothing. Exit 0 nothing to do, 2 changes pending, 3 a sync would
//! be refused by a guard.

use crate::cli::{DiffArgs, PlanFormat};
use crate::config::Config;
use crate::engine::{self, Job, ListFrom, Prepared};
use crate::exit::ExitStatus;
use crate::printer::Printer;
use crate::{report, settings};
use anyhow::Context;
use std::io::Write;
use std::path::Path;

pub fn run(
    args: &DiffArgs,
    config: Option<&Path>,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let cfg = Config::discover(config)?;
    let job = settings::job(&cfg, &args.job, chrono::Local::now().date_naive())?;
    plan_and_show(&job, args.format, printer)
}

/// Prepares the plan, shows it with its warnings, and returns the exit status (also `sync --dry-run`).
pub fn plan_and_show(
    job: &Job,
    format: PlanFormat,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let prepared = engine::prepare(job, ListFrom::Source, &printer.log())?;
    for w in prepared
        .list
        .warnings
        .iter()
        .chain(&prepared.config_warnings)
    {
        printer.warning(w);
    }
    show(&prepared, format)?;
    Ok(status(&prepared))
}

pub fn show(p: &Prepared, format: PlanFormat) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        PlanFormat::Text => report::text(&mut out, p),
        PlanFormat::Json => report::json(&mut out, p),
        PlanFormat::Markdown => report::markdown(&mut out, p),
    }
    .context("writing to stdout")?;
    out.flush().context("writing to stdout")?;
    Ok(())
}

/// 3 when a guard trips, 2 when anything would change, else 0.
pub fn status(p: &Prepared) -> ExitStatus {
    if p.guard.is_some() {
        ExitStatus::Refused
    } else if p.has_changes() {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    }
}

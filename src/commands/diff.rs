//! `bits-tls diff`: the plan, changing nothing. Exit 0 nothing to do, 2 changes pending, 3 a sync would
//! be refused by a guard.

use crate::cli::DiffArgs;
use crate::config::Config;
use crate::exit::ExitStatus;
use crate::plan::{self, Job, ListFrom, Plan};
use crate::printer::Printer;
use crate::report::plan::Format;
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
    plan_and_show(&job, args.format, printer, args.probe)
}

/// Makes the plan, shows it with its warnings (and the added domains' probe verdicts), and returns the
/// exit status (also `sync --dry-run`).
pub fn plan_and_show(
    job: &Job,
    format: Format,
    printer: &Printer,
    probe: bool,
) -> anyhow::Result<ExitStatus> {
    let plan = plan::prepare(job, ListFrom::Source, &printer.log())?;
    printer.warnings(plan.list.warnings.iter().chain(&plan.config_warnings));
    if probe {
        super::probe::added_domains(&plan, job, printer)?;
    }
    show(&plan, format)?;
    Ok(status(&plan))
}

pub fn show(p: &Plan, format: Format) -> anyhow::Result<()> {
    let mut out = crate::report::stdout();
    report::plan::write(&mut out, p, format).context("writing to stdout")?;
    out.flush().context("writing to stdout")?;
    Ok(())
}

/// 3 when a guard trips, 2 when anything would change, else 0.
pub fn status(p: &Plan) -> ExitStatus {
    if p.guard.is_some() {
        ExitStatus::Refused
    } else if p.has_changes() {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    }
}

//! `bits-tls sync`: fetch, plan, guard, write, hooks, state, history. Quiet when nothing changed.

use crate::cli::SyncArgs;
use crate::config::Config;
use crate::exit::ExitStatus;
use crate::plan::{self, ListFrom};
use crate::printer::Printer;
use crate::report::plan::Format;
use crate::{apply, report, settings};
use std::io::Write;
use std::path::Path;

pub fn run(
    args: &SyncArgs,
    config: Option<&Path>,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let cfg = Config::discover(config)?;
    let job = settings::job(&cfg, &args.job, chrono::Local::now().date_naive())?;
    if args.dry_run {
        return super::diff::plan_and_show(&job, Format::Text, printer);
    }
    apply::check_output_paths(&job).map_err(anyhow::Error::msg)?;
    let _lock = apply::lock(&job)?;
    // An earlier run cut short is finished or undone before anything else (see apply::recover).
    let (recovered, warnings) = apply::recover(&job)?;
    let warn = |m: &str| printer.warning(&crate::list::Warning::general(m));
    if let Some(r) = &recovered {
        warn(&r.describe());
    }
    warnings.iter().for_each(|w| warn(w));
    let plan = plan::prepare(&job, ListFrom::Source, &printer.log())?;
    // The list's own warnings repeat on every run; they are shown when the list changed (or with -v),
    // so a cron job mails only news. Configuration warnings need action and are always shown.
    if plan.list_changed() {
        plan.list.warnings.iter().for_each(|w| printer.warning(w));
    } else {
        plan.list
            .warnings
            .iter()
            .for_each(|w| printer.info(&format!("warning: {}", w.message)));
    }
    plan.config_warnings.iter().for_each(|w| printer.warning(w));
    if let Some(reason) = &plan.guard {
        if !args.force {
            super::diff::show(&plan, Format::Text)?;
            printer.error(&format!("refused: {reason}; nothing was changed"));
            printer.hint("check the list at https://bits.no/tls; if the change is real, run again with --force");
            return Ok(ExitStatus::Refused);
        }
        printer.note(&format!("applying despite the guard (--force): {reason}"));
    }
    let outcome = apply::apply(&job, &plan, plan.guard.is_some(), chrono::Utc::now())?;
    outcome.warnings.iter().for_each(|w| warn(w));
    if outcome.changed && printer.verbosity > crate::printer::Verbosity::Quiet {
        let mut out = std::io::stdout().lock();
        report::sync::applied(&mut out, &plan, &outcome)?;
        out.flush()?;
    } else if !outcome.changed {
        printer.info("nothing changed");
    }
    Ok(if outcome.changed && args.detailed_exitcode {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}

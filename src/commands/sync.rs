//! `bits-tls sync`: fetch, plan, guard, write, hooks, state, history. Quiet when nothing changed.

use crate::cli::SyncArgs;
use crate::config::Config;
use crate::exit::ExitStatus;
use crate::notify::Notifier;
use crate::plan::{self, ListFrom};
use crate::printer::Printer;
use crate::{apply, report, settings};
use std::io::Write;
use std::path::Path;

pub fn run(
    args: &SyncArgs,
    config: Option<&Path>,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let cfg = Config::discover(config)?;
    // [notify]: mail on a change, a refusal, a failure or staleness (never for a dry run).
    let notifier = Notifier::new(cfg.notify.as_ref().filter(|_| !args.dry_run));
    let state_path = settings::state_path(&cfg, args.job.state.as_deref());
    let result = sync(args, &cfg, printer, &notifier, &state_path);
    if let Err(e) = &result {
        notifier.failed(e, &state_path, printer);
    }
    result
}

fn sync(
    args: &SyncArgs,
    cfg: &Config,
    printer: &Printer,
    notifier: &Notifier,
    state_path: &Path,
) -> anyhow::Result<ExitStatus> {
    let job = settings::job(cfg, &args.job, chrono::Local::now().date_naive())?;
    settings::require_outputs(&job, cfg, "sync", "write")?;
    if args.dry_run {
        return super::diff::plan_and_show(&job, args.format, printer, args.probe);
    }
    if let Some(program) = plan::missing_programs(&job).first() {
        anyhow::bail!(
            "the hook program `{}` cannot be run (not found on PATH, or not executable); nothing was changed",
            crate::sanitize::for_terminal(program)
        );
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
        printer.warnings(&plan.list.warnings);
    } else {
        printer.infos(
            plan.list
                .warnings
                .iter()
                .map(|w| format!("warning: {}", w.message)),
        );
    }
    printer.warnings(&plan.config_warnings);
    if args.probe {
        super::probe::added_domains(&plan, &job, printer)?;
    }
    if let Some(reason) = &plan.guard {
        if !args.force {
            // Short, for the cron mail that repeats it on every run until someone acts; `diff` has the
            // whole plan.
            printer.error(&format!(
                "refused: {reason}; nothing was changed ({})",
                report::plan::change_counts(&plan.changes)
            ));
            printer.hint(&format!(
                "review the plan with `bits-tls diff` and the list at {}; if the change is real, run `bits-tls sync --force`",
                job.location
            ));
            notifier.refused(&plan, reason, state_path, printer);
            return Ok(ExitStatus::Refused);
        }
        printer.note(&format!("applying despite the guard (--force): {reason}"));
    }
    let outcome = apply::apply(&job, &plan, plan.guard.is_some(), chrono::Utc::now())?;
    outcome.warnings.iter().for_each(|w| warn(w));
    if outcome.changed && !plan.provenance_only() {
        notifier.changed(&plan, printer);
    }
    if outcome.changed && printer.verbosity > crate::printer::Verbosity::Quiet {
        let mut out = crate::report::stdout();
        report::sync::applied(&mut out, &plan, &outcome)?;
        out.flush()?;
    } else if !outcome.changed {
        printer.info("nothing changed");
    }
    // The plan holds the list, the state read and every output's bytes (~100 MB at 100,000
    // participants), plain data only; freeing it piece by piece just before the process ends took
    // ~10 % of a sync (malloc_consolidate). It is left to the operating system instead, a common CLI
    // technique (the command runs once per process).
    std::mem::forget(plan);
    Ok(if outcome.changed && args.detailed_exitcode {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}

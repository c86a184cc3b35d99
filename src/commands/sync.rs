//! `bits-tls sync`: fetch, plan, guard, write, hooks, state, history. Quiet when nothing changed.

use crate::cli::SyncArgs;
use crate::config::Config;
use crate::engine::{self, ListFrom};
use crate::exit::ExitStatus;
use crate::notify::Notifier;
use crate::printer::Printer;
use crate::settings;
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
    if args.dry_run {
        return super::diff::plan_and_show(&job, crate::cli::PlanFormat::Text, printer);
    }
    let _lock = engine::lock(&job)?;
    let prepared = engine::prepare(&job, ListFrom::Source, &printer.log())?;
    // The list's own warnings repeat on every run; they are shown when the list changed (or with -v),
    // so a cron job mails only news. Configuration warnings need action and are always shown.
    if prepared.list_changed() {
        prepared
            .list
            .warnings
            .iter()
            .for_each(|w| printer.warning(w));
    } else {
        prepared
            .list
            .warnings
            .iter()
            .for_each(|w| printer.info(&format!("warning: {}", w.message)));
    }
    prepared
        .config_warnings
        .iter()
        .for_each(|w| printer.warning(w));
    if let Some(reason) = &prepared.guard {
        if !args.force {
            super::diff::show(&prepared, crate::cli::PlanFormat::Text)?;
            printer.error(&format!("refused: {reason}; nothing was changed"));
            printer.hint("check the list at https://bits.no/tls; if the change is real, run again with --force");
            notifier.refused(&prepared, reason, state_path, printer);
            return Ok(ExitStatus::Refused);
        }
        printer.note(&format!("applying despite the guard (--force): {reason}"));
    }
    let outcome = engine::apply(
        &job,
        &prepared,
        prepared.guard.is_some(),
        chrono::Utc::now(),
    )?;
    if outcome.changed {
        notifier.changed(&prepared, printer);
    }
    if outcome.changed && printer.verbosity > crate::printer::Verbosity::Quiet {
        let mut out = std::io::stdout().lock();
        let ch = &prepared.changes;
        writeln!(
            out,
            "bits-tls: applied the Bits list ({} participants, {} domains; sha256 {})",
            prepared.list.participants.len(),
            prepared.list.domains().len(),
            &prepared.provenance.sha256[..16]
        )?;
        if !ch.is_empty() {
            writeln!(out, "  {}", crate::report::change_counts(ch))?;
            for d in &ch.domains_added {
                writeln!(out, "  + {d}")?;
            }
            for d in &ch.domains_removed {
                writeln!(out, "  - {d}")?;
            }
        }
        for (f, path) in prepared
            .files
            .iter()
            .filter(|f| f.changed())
            .zip(&outcome.files_written)
        {
            let (a, r) = f.counts();
            writeln!(
                out,
                "  wrote {} (+{a} -{r} lines)",
                crate::sanitize::for_terminal(&path.display().to_string())
            )?;
        }
        for h in &outcome.hooks_run {
            writeln!(out, "  ran {}", crate::sanitize::for_terminal(h))?;
        }
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

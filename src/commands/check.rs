//! `bits-tls check`: offline, do the files on disk match what the state renders, and is the state
//! fresh? With `--online`, also compare the state with the live list.

use crate::cli::CheckArgs;
use crate::config::Config;
use crate::exit::ExitStatus;
use crate::plan::{self, ListFrom};
use crate::printer::Printer;
use crate::report::check::Check;
use crate::{report, settings, source};
use anyhow::Context;
use std::io::Write;
use std::path::Path;

pub fn run(
    args: &CheckArgs,
    config: Option<&Path>,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let cfg = Config::discover(config)?;
    let job = settings::job(&cfg, &args.job, chrono::Local::now().date_naive())?;
    settings::require_outputs(&job, &cfg, "check", "compare")?;
    // Shared: a running sync is waited for, so its files are never compared half-way.
    let _lock = crate::apply::lock_shared(&job)?;
    let problems = crate::apply::integrity(&job)?;
    let plan = plan::prepare(&job, ListFrom::State, &printer.log())?;
    plan.config_warnings.iter().for_each(|w| printer.warning(w));
    let state = plan.previous.as_ref().expect("check reads the state");
    let age = chrono::Utc::now() - state.last_checked;
    let stale = args.max_age == 0 || age > chrono::Duration::days(args.max_age.into());

    let online = if args.online {
        let fetched = source::fetch(&job.location, &job.fetch, &printer.log())?;
        Some(plan::list_changes(
            &plan.list.participants,
            &fetched.list.participants,
        ))
    } else {
        None
    };
    let check = Check {
        state_path: &job.state_path,
        state,
        age_days: age.num_days(),
        max_age_days: args.max_age,
        stale,
        files: &plan.files,
        problems: &problems,
        online: online.as_ref(),
        local: &plan.local,
    };
    let mut out = crate::report::stdout();
    report::check::write(&mut out, &check, args.format).context("writing to stdout")?;
    out.flush().context("writing to stdout")?;
    let drift = check.drift().next().is_some() || !problems.is_empty();
    let list_drift = online.as_ref().is_some_and(|c| !c.is_empty());
    Ok(if drift || list_drift {
        ExitStatus::Changes
    } else if stale {
        ExitStatus::Stale
    } else {
        ExitStatus::Success
    })
}

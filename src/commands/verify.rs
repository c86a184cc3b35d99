//! `bits-tls verify postfix|exim`: read-only, does the live MTA force verified TLS 1.2+ for every
//! listed domain? The list is the state's (as `check` uses it), or a fresh one with `--source`.

use crate::cli::VerifyArgs;
use crate::config::Config;
use crate::exit::ExitStatus;
use crate::plan::{self, ListFrom};
use crate::printer::Printer;
use crate::report::verify::{ListInfo, Report};
use crate::verify::{self, Expected, Setup};
use crate::{report, settings};
use anyhow::Context;
use std::io::Write;
use std::path::Path;

pub fn run(
    args: &VerifyArgs,
    config: Option<&Path>,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let cfg = Config::discover(config)?;
    let job = settings::job(&cfg, &args.job, chrono::Local::now().date_naive())?;
    let from = if args.job.source.source.is_some() {
        ListFrom::Source
    } else {
        ListFrom::State
    };
    let plan = plan::prepare(&job, from, &printer.log())?;
    plan.config_warnings.iter().for_each(|w| printer.warning(w));
    let expected = Expected::from_plan(&job, &plan, args.mta)?;
    let setup = Setup {
        postfix_config_dir: args.postfix_config_dir.clone(),
        postfix_command_dir: args.postfix_command_dir.clone(),
        exim: args.exim.clone(),
        exim_config: args.exim_config.clone(),
        log: args.log.clone(),
        queue: args.queue,
    };
    let verification = verify::verify(args.mta, &setup, &expected)?;
    let list = ListInfo {
        from: if from == ListFrom::State {
            "state"
        } else {
            "source"
        },
        location: match from {
            ListFrom::State => job.state_path.display().to_string(),
            ListFrom::Source => job.location.to_string(),
        },
        sha256: plan.provenance.sha256.clone(),
        participants: plan.effective().participants.len(),
        domains: expected.domains.len(),
    };
    let mut out = report::stdout();
    report::verify::write(
        &mut out,
        &Report {
            list: &list,
            verification: &verification,
        },
        args.format,
    )
    .context("writing to stdout")?;
    out.flush().context("writing to stdout")?;
    Ok(if verification.has_gaps() {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}

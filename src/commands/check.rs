//! `bits-tls check`: offline, do the files on disk match what the state renders, and is the state
//! fresh? With `--online`, also compare the state with the live list.

use crate::cli::{CheckArgs, PlanFormat};
use crate::config::Config;
use crate::engine::{self, ListFrom};
use crate::exit::ExitStatus;
use crate::printer::Printer;
use crate::{plan, report, settings, source};
use anyhow::Context;
use serde::Serialize;
use std::io::Write;
use std::path::Path;

#[derive(Serialize)]
struct CheckJson<'a> {
    state: String,
    last_checked: String,
    last_changed: String,
    age_days: i64,
    max_age_days: u32,
    stale: bool,
    drift: Vec<&'a plan::FileChange>,
    list_changes: Option<&'a plan::ListChanges>,
}

pub fn run(
    args: &CheckArgs,
    config: Option<&Path>,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let cfg = Config::discover(config)?;
    let job = settings::job(&cfg, &args.job, chrono::Local::now().date_naive())?;
    let prepared = engine::prepare(&job, ListFrom::State, &printer.log())?;
    prepared
        .config_warnings
        .iter()
        .for_each(|w| printer.warning(w));
    let state = prepared.previous.as_ref().expect("check reads the state");
    let age = chrono::Utc::now() - state.last_checked;
    let stale = args.max_age == 0 || age > chrono::Duration::days(args.max_age.into());
    let drift: Vec<&plan::FileChange> = prepared.files.iter().filter(|f| f.changed()).collect();

    let online = if args.online {
        let fetched = source::fetch(&job.location, &job.fetch, &printer.log())?;
        Some(plan::list_changes(
            &state.participants,
            &fetched.list.participants,
        ))
    } else {
        None
    };
    let list_drift = online.as_ref().is_some_and(|c| !c.is_empty());

    let mut out = std::io::stdout().lock();
    match args.format {
        PlanFormat::Json => {
            let doc = CheckJson {
                state: job.state_path.display().to_string(),
                last_checked: state
                    .last_checked
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                last_changed: state
                    .last_changed
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                age_days: age.num_days(),
                max_age_days: args.max_age,
                stale,
                drift: drift.clone(),
                list_changes: online.as_ref(),
            };
            serde_json::to_writer_pretty(&mut out, &doc).context("writing to stdout")?;
            writeln!(out)?;
        }
        PlanFormat::Text | PlanFormat::Markdown => {
            writeln!(
                out,
                "State {}: last checked {} ({} days ago), last changed {}",
                crate::sanitize::for_terminal(&job.state_path.display().to_string()),
                state.last_checked.format("%Y-%m-%d %H:%M UTC"),
                age.num_days(),
                state.last_changed.format("%Y-%m-%d")
            )?;
            if stale {
                writeln!(
                    out,
                    "STALE: older than {} days; the scheme asks for a check at least every quarter",
                    args.max_age
                )?;
            }
            for f in &prepared.files {
                let verdict = if f.changed() { "DIFFERS" } else { "ok" };
                writeln!(
                    out,
                    "  {verdict:<8}{}",
                    crate::sanitize::for_terminal(&f.path.display().to_string())
                )?;
            }
            for f in &drift {
                writeln!(out)?;
                for line in f.diff.lines() {
                    writeln!(out, "{}", crate::sanitize::for_terminal(line))?;
                }
            }
            if let Some(ch) = &online {
                writeln!(out, "\nAgainst the live list:")?;
                report::text_changes(&mut out, ch)?;
            }
        }
    }
    out.flush()?;
    Ok(if !drift.is_empty() || list_drift {
        ExitStatus::Changes
    } else if stale {
        ExitStatus::Stale
    } else {
        ExitStatus::Success
    })
}

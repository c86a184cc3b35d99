//! `check`: does every output file match what the state renders, is the state fresh, and (online) does
//! the state still match the live list?

use super::plan::{markdown_local, text_changes, text_local, ChangesJson, FileJson};
use super::{diff_for_terminal, md_code, md_diff, JSON_VERSION};
use crate::plan::{Adjustment, FileChange, ListChanges};
use crate::sanitize::for_terminal;
use crate::state::State;
use chrono::SecondsFormat;
use serde::Serialize;
use std::io::{self, Write};
use std::path::Path;

/// The formats a check is shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people: the state's age, a verdict per file, the diffs
    Text,
    /// For scripts and monitoring
    Json,
    /// For a change ticket or an audit note
    Markdown,
}

/// What `check` found.
#[derive(Debug)]
pub struct Check<'a> {
    pub state_path: &'a Path,
    pub state: &'a State,
    pub age_days: i64,
    pub max_age_days: u32,
    pub stale: bool,
    /// Every configured output, changed or not.
    pub files: &'a [FileChange],
    /// Drift beyond file contents: an unfinished sync, a derived table older than its file.
    pub problems: &'a [String],
    /// The state against the live list (`--online`).
    pub online: Option<&'a ListChanges>,
    /// Local adjustments in force.
    pub local: &'a [Adjustment],
}

impl Check<'_> {
    pub fn drift(&self) -> impl Iterator<Item = &FileChange> {
        self.files.iter().filter(|f| f.changed())
    }

    /// Exchange scripts: the file can match while the live connectors do not.
    pub fn scripts(&self) -> impl Iterator<Item = &FileChange> {
        self.files.iter().filter(|f| f.output.target.is_script())
    }
}

/// What check can say about an Exchange script's effect.
const LIVE_UNKNOWN: &str = "whether it ran is unknown here: run the exchange-verify (Exchange Server) or exchange-online-verify (Exchange Online) script to see the live connectors";

pub fn write(out: &mut impl Write, c: &Check, format: Format) -> io::Result<()> {
    match format {
        Format::Text => text(out, c),
        Format::Json => json(out, c),
        Format::Markdown => markdown(out, c),
    }
}

fn verdict(f: &FileChange) -> &'static str {
    if f.changed() {
        "DIFFERS"
    } else {
        "ok"
    }
}

fn stale_line(c: &Check) -> String {
    format!(
        "STALE: older than {} days; the scheme asks for a check at least every quarter",
        c.max_age_days
    )
}

fn text(out: &mut impl Write, c: &Check) -> io::Result<()> {
    writeln!(
        out,
        "State {}: last checked {} ({} days ago), last changed {}",
        for_terminal(&c.state_path.display().to_string()),
        c.state.last_checked.format("%Y-%m-%d %H:%M UTC"),
        c.age_days,
        c.state.last_changed.format("%Y-%m-%d")
    )?;
    if c.stale {
        writeln!(out, "{}", stale_line(c))?;
    }
    text_local(out, c.local)?;
    for f in c.files {
        writeln!(
            out,
            "  {:<8}{}",
            verdict(f),
            for_terminal(&f.path().display().to_string())
        )?;
    }
    for p in c.problems {
        writeln!(out, "  DRIFT   {}", for_terminal(p))?;
    }
    for f in c.scripts() {
        writeln!(
            out,
            "  note: {} is a script; {}",
            for_terminal(&f.path().display().to_string()),
            LIVE_UNKNOWN
        )?;
    }
    for f in c.drift() {
        writeln!(out)?;
        out.write_all(diff_for_terminal(&f.diff).as_bytes())?;
    }
    if let Some(ch) = c.online {
        writeln!(out, "\nAgainst the live list:")?;
        text_changes(out, ch)?;
    }
    Ok(())
}

#[derive(Serialize)]
pub struct CheckJson<'a> {
    pub version: u32,
    pub state: String,
    pub last_checked: String,
    pub last_changed: String,
    pub age_days: i64,
    pub max_age_days: u32,
    pub stale: bool,
    pub local: &'a [Adjustment],
    /// The files that differ from what the state renders.
    pub drift: Vec<FileJson<'a>>,
    /// With `--online`: the live list against the state.
    pub list_changes: Option<ChangesJson<'a>>,
    /// Drift beyond file contents (an unfinished sync, a stale derived table); absent when none.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub problems: &'a [String],
    /// Exchange scripts among the outputs: their live effect is unknown to check.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub live_state_unknown: Vec<String>,
}

fn json(out: &mut impl Write, c: &Check) -> io::Result<()> {
    let doc = CheckJson {
        version: JSON_VERSION,
        state: c.state_path.display().to_string(),
        last_checked: c
            .state
            .last_checked
            .to_rfc3339_opts(SecondsFormat::Secs, true),
        last_changed: c
            .state
            .last_changed
            .to_rfc3339_opts(SecondsFormat::Secs, true),
        age_days: c.age_days,
        max_age_days: c.max_age_days,
        stale: c.stale,
        local: c.local,
        drift: c.drift().map(FileJson::new).collect(),
        list_changes: c.online.map(ChangesJson::new),
        problems: c.problems,
        live_state_unknown: c
            .scripts()
            .map(|f| f.path().display().to_string())
            .collect(),
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}

fn markdown(out: &mut impl Write, c: &Check) -> io::Result<()> {
    writeln!(out, "### bits-tls check\n")?;
    writeln!(
        out,
        "State {}: last checked {} ({} days ago), last changed {}.\n",
        md_code(&c.state_path.display().to_string()),
        c.state.last_checked.format("%Y-%m-%d %H:%M UTC"),
        c.age_days,
        c.state.last_changed.format("%Y-%m-%d")
    )?;
    if c.stale {
        writeln!(out, "> **{}**\n", stale_line(c))?;
    }
    markdown_local(out, c.local)?;
    writeln!(out, "| file | target | verdict |\n|---|---|---|")?;
    for f in c.files {
        writeln!(
            out,
            "| {} | {} | {} |",
            md_code(&f.path().display().to_string()),
            f.target(),
            verdict(f)
        )?;
    }
    for p in c.problems {
        writeln!(out, "\n> **DRIFT:** {}", super::md_code(p))?;
    }
    for f in c.scripts() {
        writeln!(
            out,
            "\n> {} is a script; {}.",
            md_code(&f.path().display().to_string()),
            LIVE_UNKNOWN
        )?;
    }
    for f in c.drift() {
        out.write_all(md_diff(&f.path().display().to_string(), &f.diff).as_bytes())?;
    }
    if let Some(ch) = c.online {
        writeln!(
            out,
            "\nAgainst the live list: {}.",
            super::plan::change_counts(ch)
        )?;
    }
    Ok(())
}

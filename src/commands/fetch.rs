//! `bits-tls fetch`: print the parsed list as a table, JSON or normalised CSV.

use crate::cli::{FetchArgs, ListFormat};
use crate::config::Config;
use crate::exit::ExitStatus;
use crate::list::{Participant, ParticipantList, Warning};
use crate::printer::Printer;
use crate::sanitize;
use crate::settings::{self, SourceSettings};
use crate::source::{self, Provenance};
use anyhow::Context;
use serde::Serialize;
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
    for w in &fetched.list.warnings {
        printer.warning(w);
    }
    let mut out = std::io::stdout().lock();
    match args.format {
        ListFormat::Json => write_json(&mut out, &fetched.provenance, &fetched.list)?,
        ListFormat::Csv => write_csv(&mut out, &fetched.list)?,
        ListFormat::Text => write_text(&mut out, &fetched.provenance, &fetched.list)?,
    }
    out.flush().context("writing to stdout")?;
    Ok(ExitStatus::Success)
}

/// The contract's JSON shape (design.md).
#[derive(Serialize)]
pub struct ListJson<'a> {
    pub source: &'a Provenance,
    pub participants: &'a [Participant],
    pub warnings: &'a [Warning],
}

pub fn write_json(
    out: &mut impl Write,
    provenance: &Provenance,
    list: &ParticipantList,
) -> anyhow::Result<()> {
    let doc = ListJson {
        source: provenance,
        participants: &list.participants,
        warnings: &list.warnings,
    };
    serde_json::to_writer_pretty(&mut *out, &doc).context("writing JSON to stdout")?;
    writeln!(out).context("writing to stdout")?;
    Ok(())
}

/// One row per domain under the requirement document's English headers, so the output reads back in.
/// A name that a spreadsheet would run as a formula gets a leading `'`.
pub fn write_csv(out: &mut impl Write, list: &ParticipantList) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record([
        "Company name",
        "Company Identification number",
        "Domain with forced TLS",
        "Date of enrolment",
        "Requirement 5.2.4 supported?",
    ])?;
    for p in &list.participants {
        let name = if p.organization.starts_with(['=', '+', '-', '@']) {
            format!("'{}", p.organization)
        } else {
            p.organization.clone()
        };
        let enrolled = p.enrolled.map(|d| d.to_string()).unwrap_or_default();
        let flag = match p.enforces_inbound_tls {
            Some(true) => "Ja",
            Some(false) => "Nei",
            None => "",
        };
        for d in &p.domains {
            w.write_record([
                name.as_str(),
                p.org_number.as_deref().unwrap_or(""),
                d.as_str(),
                &enrolled,
                flag,
            ])?;
        }
    }
    w.flush().context("writing CSV to stdout")?;
    Ok(())
}

/// An aligned table, then one summary line.
pub fn write_text(
    out: &mut impl Write,
    provenance: &Provenance,
    list: &ParticipantList,
) -> anyhow::Result<()> {
    const NAME_MAX: usize = 40;
    let rows: Vec<[String; 5]> = list
        .participants
        .iter()
        .map(|p| {
            let domains: Vec<String> = p
                .domains
                .iter()
                .map(|d| match d.unicode() {
                    Some(u) => format!("{d} ({})", sanitize::for_terminal(&u)),
                    None => d.to_string(),
                })
                .collect();
            [
                sanitize::excerpt(&p.organization, NAME_MAX),
                p.org_number.clone().unwrap_or_else(|| "-".into()),
                p.enrolled.map_or_else(|| "-".into(), |d| d.to_string()),
                match p.enforces_inbound_tls {
                    Some(true) => "Ja".into(),
                    Some(false) => "Nei".into(),
                    None => "-".into(),
                },
                domains.join(", "),
            ]
        })
        .collect();
    let header = ["ORGANIZATION", "ORG.NR", "ENROLLED", "5.2.4", "DOMAINS"].map(String::from);
    let mut widths = [0usize; 4];
    for r in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for r in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (w, cell) in widths.iter().zip(r.iter()) {
            line.push_str(cell);
            line.push_str(&" ".repeat(w - cell.chars().count() + 2));
        }
        line.push_str(&r[4]);
        writeln!(out, "{line}")?;
    }
    let domains = list.domains().len();
    let mut summary = format!(
        "\n{}, {}, {}",
        plural(list.participants.len(), "participant"),
        plural(domains, "domain"),
        plural(list.warnings.len(), "warning")
    );
    if let Some(d) = provenance.page_updated {
        summary.push_str(&format!("; page updated {d}"));
    }
    summary.push_str(&format!("; sha256 {}", &provenance.sha256[..16]));
    writeln!(out, "{summary}")?;
    Ok(())
}

/// `1 domain`, `2 domains`.
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

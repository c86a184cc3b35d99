//! The list (`fetch`): a table for people, the contract's JSON, or normalised CSV that reads back in.

use super::{flag, list_size, plural, short_digest, JSON_VERSION};
use crate::list::{Participant, ParticipantList, Warning};
use crate::sanitize;
use crate::source::Provenance;
use anyhow::Context;
use serde::Serialize;
use std::io::Write;

/// The formats the list is shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table and a summary line, for people
    Text,
    /// The contract's JSON: version, source, participants, warnings
    Json,
    /// One row per domain, with the list's English headers (re-readable by --source)
    Csv,
}

pub fn write(
    out: &mut impl Write,
    format: Format,
    provenance: &Provenance,
    list: &ParticipantList,
) -> anyhow::Result<()> {
    match format {
        Format::Json => json(out, provenance, list),
        Format::Csv => csv(out, list),
        Format::Text => text(out, provenance, list),
    }
}

/// The contract's JSON shape (design.md).
#[derive(Serialize)]
pub struct ListJson<'a> {
    pub version: u32,
    pub source: &'a Provenance,
    pub participants: &'a [Participant],
    pub warnings: &'a [Warning],
}

fn json(
    out: &mut impl Write,
    provenance: &Provenance,
    list: &ParticipantList,
) -> anyhow::Result<()> {
    let doc = ListJson {
        version: JSON_VERSION,
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
fn csv(out: &mut impl Write, list: &ParticipantList) -> anyhow::Result<()> {
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
            None => "",
            f => flag(f),
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
fn text(
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
                flag(p.enforces_inbound_tls).into(),
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
    let mut summary = format!(
        "\n{}, {}",
        list_size(list.participants.len(), list.domains().len()),
        plural(list.warnings.len(), "warning")
    );
    if let Some(d) = provenance.page_updated {
        summary.push_str(&format!("; page updated {d}"));
    }
    summary.push_str(&format!("; sha256 {}", short_digest(&provenance.sha256)));
    writeln!(out, "{summary}")?;
    Ok(())
}

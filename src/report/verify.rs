//! `verify`: per listed domain, is mail to it forced over verified TLS 1.2+ on this server, and if
//! not, why; then findings about the server as a whole, and the evidence from the log and queue.
//! Text for the on-call admin, JSON (versioned) for monitoring, Markdown for the change ticket.

use super::{md_code, plural, short_digest, JSON_VERSION};
use crate::sanitize::for_terminal;
use crate::verify::evidence::{hours, Evidence, Trust, Violation, Waiting};
use crate::verify::{Severity, Verdict, Verification};
use serde::Serialize;
use std::io::{self, Write};

/// The formats a verification is shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people: a verdict per domain with the reasons, then the server
    Text,
    /// For scripts and monitoring
    Json,
    /// For a change ticket
    Markdown,
}

/// Where the list came from.
#[derive(Debug, Serialize)]
pub struct ListInfo {
    /// `state` or `source`.
    pub from: &'static str,
    /// The state file, or the source as given.
    pub location: String,
    pub sha256: String,
    pub participants: usize,
    pub domains: usize,
}

pub struct Report<'a> {
    pub list: &'a ListInfo,
    pub verification: &'a Verification,
}

pub fn write(out: &mut impl Write, r: &Report, format: Format) -> io::Result<()> {
    match format {
        Format::Text => text(out, r),
        Format::Json => json(out, r),
        Format::Markdown => markdown(out, r),
    }
}

fn list_line(l: &ListInfo) -> String {
    format!(
        "{} ({}, from the {} {}; sha256 {})",
        plural(l.domains, "listed domain"),
        plural(l.participants, "participant"),
        l.from,
        l.location,
        short_digest(&l.sha256)
    )
}

fn server_lines(v: &Verification) -> Vec<String> {
    v.servers
        .iter()
        .map(|s| {
            let mut line = s.software.clone();
            if let Some(i) = &s.instance {
                line.push_str(&format!(" (instance {i})"));
            }
            if let Some(t) = &s.tls_library {
                line.push_str(&format!(" with {t}"));
            }
            line.push_str(&format!(", configuration {}", s.config));
            line
        })
        .collect()
}

/// The one-line result.
pub fn result_line(v: &Verification) -> String {
    let (ok, undecided, gap) = v.counts();
    let total = ok + undecided + gap;
    let server_gaps = v.findings_of(Severity::Gap);
    let warnings = v.findings_of(Severity::Warning);
    let violations = v.evidence.as_ref().map_or(0, |e| e.violations.len());
    if !v.has_gaps() {
        let mut s = format!(
            "ENFORCED: {} forced over verified TLS 1.2+ on this server",
            if total == 1 {
                "the listed domain is".to_string()
            } else {
                format!("all {total} listed domains are")
            }
        );
        if warnings > 0 {
            s.push_str(&format!("; {}", plural(warnings, "warning")));
        }
        return s;
    }
    let mut parts = vec![format!("{ok} of {total} listed domains enforced")];
    if gap > 0 {
        parts.push(plural(gap, "gap"));
    }
    if undecided > 0 {
        parts.push(format!("{undecided} undecided"));
    }
    if server_gaps > 0 {
        parts.push(plural(server_gaps, "server gap"));
    }
    if violations > 0 {
        parts.push(format!("{} in the log", plural(violations, "violation")));
    }
    if warnings > 0 {
        parts.push(plural(warnings, "warning"));
    }
    format!("GAPS: {}", parts.join(", "))
}

fn text(out: &mut impl Write, r: &Report) -> io::Result<()> {
    let v = r.verification;
    writeln!(
        out,
        "bits-tls verify {}: {}",
        v.mta.name().to_lowercase(),
        for_terminal(&list_line(r.list))
    )?;
    for s in server_lines(v) {
        writeln!(out, "{}", for_terminal(&s))?;
    }
    writeln!(out, "\nDomains:")?;
    let width = v.domains.iter().map(|d| d.domain.len()).max().unwrap_or(0);
    for d in &v.domains {
        writeln!(
            out,
            "  {:<9} {:<width$}  {}",
            d.verdict.word(),
            d.domain,
            for_terminal(&d.route)
        )?;
        for why in &d.reasons {
            writeln!(out, "              - {}", for_terminal(why))?;
        }
        for n in &d.notes {
            writeln!(out, "              note: {}", for_terminal(n))?;
        }
    }
    if !v.findings.is_empty() {
        writeln!(out, "\nServer:")?;
        let mut f: Vec<_> = v.findings.iter().collect();
        f.sort_by_key(|f| std::cmp::Reverse(f.severity));
        for f in f {
            let subject = f
                .subject
                .as_deref()
                .map(|s| format!("[{}] ", for_terminal(s)))
                .unwrap_or_default();
            writeln!(
                out,
                "  {:<8} {subject}{}",
                f.severity.word(),
                for_terminal(&f.message)
            )?;
        }
    }
    if let Some(e) = &v.evidence {
        text_evidence(out, e)?;
    }
    writeln!(out, "\nResult: {}", result_line(v))
}

fn trust_counts(sent: &std::collections::BTreeMap<Trust, usize>) -> String {
    let total: usize = sent.values().sum();
    let parts: Vec<String> = sent
        .iter()
        .map(|(t, n)| format!("{} {n}", t.word()))
        .collect();
    if parts.is_empty() {
        "0 sent".into()
    } else {
        format!("{total} sent ({})", parts.join(", "))
    }
}

fn text_evidence(out: &mut impl Write, e: &Evidence) -> io::Result<()> {
    if let Some(log) = &e.log {
        writeln!(
            out,
            "\nLog {}: {} read; listed domains with traffic: {}",
            for_terminal(&log.file),
            plural(log.deliveries, "delivery line"),
            log.domains.len()
        )?;
        for d in &log.domains {
            let mut line = format!(
                "  {}: {}, {} deferred, {} bounced",
                d.domain,
                trust_counts(&d.sent),
                d.deferred,
                d.bounced
            );
            if let Some(r) = &d.last_deferral {
                line.push_str(&format!(" (last: {})", for_terminal(r)));
            }
            writeln!(out, "{line}")?;
        }
        if e.violations.is_empty() {
            writeln!(
                out,
                "  No delivery to a listed domain without verified TLS 1.2+."
            )?;
        } else {
            writeln!(out, "  Violations:")?;
            for x in &e.violations {
                writeln!(out, "    {}", violation(x, for_terminal))?;
            }
        }
    }
    if let Some(q) = &e.queue {
        writeln!(
            out,
            "\nQueue: {}; {} at listed domains waiting",
            plural(q.messages, "message"),
            plural(q.waiting.len(), "recipient")
        )?;
        for w in &q.waiting {
            writeln!(out, "  {}", waiting(w, for_terminal))?;
        }
    }
    Ok(())
}

/// A delivery without verified TLS 1.2+, its log's words escaped for the format (`esc`).
fn violation(x: &Violation, esc: fn(&str) -> String) -> String {
    format!(
        "{} {} {} via {}: {}",
        esc(&x.time),
        esc(&x.id),
        esc(&x.recipient),
        esc(&x.relay),
        x.why
    )
}

/// A queued recipient at a listed domain, the queue's words escaped for the format (`esc`).
fn waiting(w: &Waiting, esc: fn(&str) -> String) -> String {
    let bounce = w
        .bounce_in_hours
        .map(|h| format!(", bounces in {}", hours(h)))
        .unwrap_or_default();
    format!(
        "{} {}: waiting {}{bounce}: {}",
        esc(&w.id),
        esc(&w.recipient),
        hours(w.age_hours),
        esc(w.reason.as_deref().unwrap_or("(no reason recorded)"))
    )
}

#[derive(Serialize)]
struct Summary {
    enforced: usize,
    undecided: usize,
    gap: usize,
    server_gaps: usize,
    warnings: usize,
    violations: usize,
}

#[derive(Serialize)]
struct VerifyJson<'a> {
    version: u32,
    mta: crate::verify::Mta,
    /// `enforced` or `gaps`: the exit code's meaning.
    result: &'static str,
    list: &'a ListInfo,
    servers: &'a [crate::verify::ServerInfo],
    summary: Summary,
    domains: &'a [crate::verify::DomainCheck],
    findings: &'a [crate::verify::Finding],
    evidence: &'a Option<Evidence>,
}

fn json(out: &mut impl Write, r: &Report) -> io::Result<()> {
    let v = r.verification;
    let (enforced, undecided, gap) = v.counts();
    let doc = VerifyJson {
        version: JSON_VERSION,
        mta: v.mta,
        result: if v.has_gaps() { "gaps" } else { "enforced" },
        list: r.list,
        servers: &v.servers,
        summary: Summary {
            enforced,
            undecided,
            gap,
            server_gaps: v.findings_of(Severity::Gap),
            warnings: v.findings_of(Severity::Warning),
            violations: v.evidence.as_ref().map_or(0, |e| e.violations.len()),
        },
        domains: &v.domains,
        findings: &v.findings,
        evidence: &v.evidence,
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}

/// A table cell: inline code, `|` escaped.
fn cell(s: &str) -> String {
    md_code(s).replace('|', "\\|")
}

fn markdown(out: &mut impl Write, r: &Report) -> io::Result<()> {
    let v = r.verification;
    writeln!(out, "### bits-tls verify {}\n", v.mta.name().to_lowercase())?;
    writeln!(out, "**{}**\n", result_line(v))?;
    writeln!(
        out,
        "List: {} ({}, from the {} {}, sha256 {}).\n",
        plural(r.list.domains, "listed domain"),
        plural(r.list.participants, "participant"),
        r.list.from,
        md_code(&r.list.location),
        md_code(short_digest(&r.list.sha256))
    )?;
    for s in server_lines(v) {
        writeln!(out, "- Server: {}", md_code(&s))?;
    }
    writeln!(
        out,
        "\n| domain | verdict | route | why |\n|---|---|---|---|"
    )?;
    for d in &v.domains {
        let mut why: Vec<String> = d.reasons.iter().map(|x| cell(x)).collect();
        why.extend(d.notes.iter().map(|n| format!("note: {}", cell(n))));
        writeln!(
            out,
            "| {} | {} | {} | {} |",
            cell(&d.domain),
            match d.verdict {
                Verdict::Enforced => "ok".to_string(),
                other => format!("**{}**", other.word()),
            },
            cell(&d.route),
            why.join("<br>")
        )?;
    }
    if !v.findings.is_empty() {
        writeln!(out, "\n#### Server\n")?;
        let mut f: Vec<_> = v.findings.iter().collect();
        f.sort_by_key(|f| std::cmp::Reverse(f.severity));
        for f in f {
            let subject = f
                .subject
                .as_deref()
                .map(|s| format!("{} ", md_code(s)))
                .unwrap_or_default();
            let word = match f.severity {
                Severity::Gap => "**GAP**",
                Severity::Warning => "warning",
                Severity::Note => "note",
            };
            writeln!(out, "- {word} {subject}{}", md_code(&f.message))?;
        }
    }
    if let Some(e) = &v.evidence {
        if let Some(log) = &e.log {
            writeln!(
                out,
                "\n#### Log {}\n\n{} read.\n",
                md_code(&log.file),
                plural(log.deliveries, "delivery line")
            )?;
            if !log.domains.is_empty() {
                writeln!(
                    out,
                    "| domain | sent | deferred | bounced |\n|---|---|---|---|"
                )?;
                for d in &log.domains {
                    writeln!(
                        out,
                        "| {} | {} | {} | {} |",
                        cell(&d.domain),
                        trust_counts(&d.sent),
                        d.deferred,
                        d.bounced
                    )?;
                }
            }
            if e.violations.is_empty() {
                writeln!(
                    out,
                    "\nNo delivery to a listed domain without verified TLS 1.2+."
                )?;
            } else {
                writeln!(out, "\nViolations:\n")?;
                for x in &e.violations {
                    writeln!(out, "- {}", violation(x, md_code))?;
                }
            }
        }
        if let Some(q) = &e.queue {
            writeln!(
                out,
                "\n#### Queue\n\n{}; {} at listed domains waiting.\n",
                plural(q.messages, "message"),
                plural(q.waiting.len(), "recipient")
            )?;
            for w in &q.waiting {
                writeln!(out, "- {}", waiting(w, md_code))?;
            }
        }
    }
    Ok(())
}

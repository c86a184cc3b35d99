//! `probe`: a table of verdicts with the reason per MX and address (text), every fact kept (JSON), a
//! message for tls@bits.no about the participants forced TLS cannot reach (Markdown), and suggested
//! `[[override]]` entries (TOML). Everything a server said is escaped for the medium it goes to.

use super::{md_code, plural, JSON_VERSION};
use crate::probe::verdict::{Check, TlsaStatus, Verdict};
use crate::probe::{DomainReport, Run};
use crate::sanitize::for_terminal;
use serde::Serialize;
use std::io::{self, Write};

/// The formats a probe is shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people: one line per domain, then the reasons per MX and address
    Text,
    /// For scripts: every fact per address (versioned)
    Json,
    /// The message to tls@bits.no about participants forced TLS cannot reach
    Markdown,
}

pub fn write(out: &mut impl Write, run: &Run, format: Format) -> io::Result<()> {
    match format {
        Format::Text => text(out, run),
        Format::Json => json(out, run),
        Format::Markdown => markdown(out, run),
    }
}

/// `ok` (dane-only recommended), `mismatch`, `bogus`, `insecure`, `-` (no TLSA).
fn dane_word(d: &DomainReport) -> &'static str {
    let st: Vec<TlsaStatus> = d.mx.iter().map(|m| m.tlsa_status).collect();
    if d.dane.recommended {
        "ok"
    } else if st.contains(&TlsaStatus::Bogus) {
        "bogus"
    } else if st.contains(&TlsaStatus::Failed) {
        "failed"
    } else if st.contains(&TlsaStatus::Secure) && d.dane_only != Verdict::Deliverable {
        "mismatch"
    } else if st.contains(&TlsaStatus::Insecure) || st.contains(&TlsaStatus::Secure) {
        "insecure"
    } else {
        "-"
    }
}

fn sts_word(d: &DomainReport) -> String {
    let s = &d.mta_sts;
    match (&s.policy, &s.policy_error, &s.record, &s.record_error) {
        (Some(p), ..) if !s.uncovered_mx.is_empty() => {
            format!("{}(gap)", serde_plain(&p.mode))
        }
        (Some(p), ..) => serde_plain(&p.mode),
        (None, Some(_), ..) | (None, None, None, Some(_)) => "error".into(),
        _ => "-".into(),
    }
}

fn serde_plain<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

fn secure_word(d: &DomainReport) -> String {
    match (&d.secure, &d.secure_match) {
        (Verdict::Deliverable, _) => "ok".into(),
        (_, Some(_)) => "match=".into(),
        (v, None) => v.as_str().into(),
    }
}

/// The findings at the configured level, one line per MX address (or the domain).
pub fn reasons(d: &DomainReport) -> Vec<String> {
    let mut out: Vec<String> = d
        .findings
        .iter()
        .map(|f| format!("{}: {}", f.reason.as_str(), f.detail))
        .collect();
    for m in &d.mx {
        if let Some(p) = &m.problem {
            out.push(format!("{}: {}: {}", m.host, p.reason.as_str(), p.detail));
        }
        for a in &m.addresses {
            if let Some(line) = check_line(&a.configured) {
                out.push(format!("{} {}: {line}", m.host, a.address));
            }
        }
    }
    out
}

fn check_line(c: &Check) -> Option<String> {
    (!c.pass).then(|| {
        c.findings
            .iter()
            .map(|f| format!("{}: {}", f.reason.as_str(), f.detail))
            .collect::<Vec<_>>()
            .join("; ")
    })
}

fn counts(run: &Run) -> String {
    let n = |v: Verdict| run.domains.iter().filter(|d| d.verdict == v).count();
    let mut parts = vec![format!("{} deliverable", n(Verdict::Deliverable))];
    for v in [Verdict::Degraded, Verdict::WouldDefer, Verdict::Unknown] {
        if n(v) > 0 {
            parts.push(format!("{} {}", n(v), v.as_str()));
        }
    }
    format!(
        "{}: {}; {} in {:.1} s",
        plural(run.domains.len(), "domain"),
        parts.join(", "),
        plural(run.connections, "connection"),
        run.millis as f64 / 1000.0
    )
}

fn text(out: &mut impl Write, run: &Run) -> io::Result<()> {
    writeln!(
        out,
        "Resolver {}: {}",
        run.resolver.server,
        for_terminal(&run.resolver.detail)
    )?;
    let w = run
        .domains
        .iter()
        .map(|d| d.domain.len())
        .max()
        .unwrap_or(6)
        .max(6);
    writeln!(
        out,
        "{:w$}  {:9}  {:11}  {:11}  {:8}  {:13}  TLS-RPT",
        "DOMAIN", "LEVEL", "VERDICT", "SECURE", "DANE", "MTA-STS"
    )?;
    for d in &run.domains {
        writeln!(
            out,
            "{:w$}  {:9}  {:11}  {:11}  {:8}  {:13}  {}",
            d.domain,
            d.level.as_str(),
            d.verdict.as_str(),
            secure_word(d),
            dane_word(d),
            sts_word(d),
            if d.tls_rpt.is_some() { "yes" } else { "-" }
        )?;
    }
    let broken: Vec<&DomainReport> = run
        .domains
        .iter()
        .filter(|d| d.verdict != Verdict::Deliverable)
        .collect();
    if !broken.is_empty() {
        writeln!(out, "\nWhy not deliverable:")?;
        for d in broken {
            writeln!(
                out,
                "  {} ({} at {}):",
                d.domain,
                d.verdict.as_str(),
                d.level.as_str()
            )?;
            for r in reasons(d) {
                writeln!(out, "    {}", for_terminal(&r))?;
            }
        }
    }
    let notes: Vec<String> = run.domains.iter().flat_map(notes).collect();
    if !notes.is_empty() {
        writeln!(out, "\nNotes:")?;
        for n in notes {
            writeln!(out, "  {}", for_terminal(&n))?;
        }
    }
    let expiring: Vec<String> = run
        .domains
        .iter()
        .flat_map(|d| {
            d.expiring.iter().map(move |e| {
                format!(
                    "{}: {} {} expires {} ({} days)",
                    d.domain, e.host, e.address, e.not_after, e.days_left
                )
            })
        })
        .collect();
    if !expiring.is_empty() {
        writeln!(
            out,
            "\nCertificates expiring within {} days:",
            run.expiry_warn_days
        )?;
        for e in expiring {
            writeln!(out, "  {}", for_terminal(&e))?;
        }
    }
    let suggested: Vec<&DomainReport> = run
        .domains
        .iter()
        .filter(|d| d.suggestion.is_some())
        .collect();
    if !suggested.is_empty() {
        writeln!(
            out,
            "\nStronger policy possible (--suggest-overrides prints the entries):"
        )?;
        for d in suggested {
            let s = d.suggestion.as_ref().unwrap();
            let m = s
                .match_
                .as_ref()
                .map(|m| format!(" match={m}"))
                .unwrap_or_default();
            writeln!(out, "  {}: {}{m}", d.domain, s.level.as_str())?;
        }
    }
    writeln!(out, "\n{}", counts(run))
}

/// What else is worth knowing about a domain: degraded levels, MTA-STS problems, secure's match=.
fn notes(d: &DomainReport) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(m) = &d.secure_match {
        out.push(format!(
            "{}: the certificates do not name the domain; secure would need match=nexthop:dot-nexthop:{m}",
            d.domain
        ));
    }
    if let Some(e) = &d.mta_sts.record_error {
        out.push(format!("{}: MTA-STS record: {e}", d.domain));
    }
    if let Some(e) = &d.mta_sts.policy_error {
        out.push(format!("{}: MTA-STS policy: {e}", d.domain));
    }
    if !d.mta_sts.uncovered_mx.is_empty() {
        out.push(format!(
            "{}: the MTA-STS policy's mx patterns do not cover {}",
            d.domain,
            d.mta_sts.uncovered_mx.join(", ")
        ));
    }
    if let Some(e) = &d.tls_rpt_error {
        out.push(format!("{}: TLS-RPT record: {e}", d.domain));
    }
    if d.verdict == Verdict::Deliverable {
        let temp: Vec<String> = d
            .addresses()
            .filter(|(_, a)| a.configured.temporary())
            .map(|(m, a)| format!("{} {}", m.host, a.address))
            .collect();
        if !temp.is_empty() {
            out.push(format!(
                "{}: temporarily refused (421) or not reachable from here (IPv6), not judged: {}",
                d.domain,
                temp.join(", ")
            ));
        }
    }
    out
}

#[derive(Serialize)]
struct RunJson<'a> {
    version: u32,
    #[serde(flatten)]
    run: &'a Run,
}

fn json(out: &mut impl Write, run: &Run) -> io::Result<()> {
    serde_json::to_writer_pretty(
        &mut *out,
        &RunJson {
            version: JSON_VERSION,
            run,
        },
    )?;
    writeln!(out)
}

fn markdown(out: &mut impl Write, run: &Run) -> io::Result<()> {
    writeln!(
        out,
        "### bits-tls probe: forced TLS to the Bits participants\n"
    )?;
    writeln!(out, "{}.\n", counts(run))?;
    writeln!(
        out,
        "| domain | level | verdict | secure | DANE | MTA-STS | TLS-RPT |\n|---|---|---|---|---|---|---|"
    )?;
    for d in &run.domains {
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            md_code(&d.domain),
            d.level.as_str(),
            d.verdict.as_str(),
            secure_word(d),
            dane_word(d),
            sts_word(d),
            if d.tls_rpt.is_some() { "yes" } else { "-" }
        )?;
    }
    let broken: Vec<&DomainReport> = run
        .domains
        .iter()
        .filter(|d| matches!(d.verdict, Verdict::Degraded | Verdict::WouldDefer))
        .collect();
    if !broken.is_empty() {
        writeln!(
            out,
            "\nTo tls@bits.no — participants that cannot receive mail over verified TLS 1.2 or newer \
             (forced TLS to them waits in the queue, then bounces):\n"
        )?;
        for d in broken {
            writeln!(out, "- {} ({}):", md_code(&d.domain), d.verdict.as_str())?;
            for r in reasons(d) {
                writeln!(out, "  - {}", md_code(&r))?;
            }
        }
    }
    let expiring: Vec<String> = run
        .domains
        .iter()
        .flat_map(|d| {
            d.expiring.iter().map(move |e| {
                format!(
                    "- {}: {} ({} days)",
                    md_code(&format!("{} {} {}", d.domain, e.host, e.address)),
                    md_code(&e.not_after),
                    e.days_left
                )
            })
        })
        .collect();
    if !expiring.is_empty() {
        writeln!(
            out,
            "\nCertificates that pass now but expire within {} days:\n",
            run.expiry_warn_days
        )?;
        for e in expiring {
            writeln!(out, "{e}")?;
        }
    }
    let suggested: Vec<String> = run
        .domains
        .iter()
        .filter_map(|d| {
            let s = d.suggestion.as_ref()?;
            let m = s
                .match_
                .as_ref()
                .map(|m| format!(" match={m}"))
                .unwrap_or_default();
            Some(format!(
                "- {}: {}",
                md_code(&d.domain),
                md_code(&format!("{}{m}", s.level.as_str()))
            ))
        })
        .collect();
    if !suggested.is_empty() {
        writeln!(
            out,
            "\nStronger policy possible (`bits-tls probe --suggest-overrides`):\n"
        )?;
        for s in suggested {
            writeln!(out, "{s}")?;
        }
    }
    Ok(())
}

/// `[[override]]` entries for bits-tls.toml, one per suggestion. Every value is a TOML string, so a
/// name from DNS cannot add a key or a table.
pub fn overrides(out: &mut impl Write, run: &Run) -> io::Result<()> {
    let mut any = false;
    for d in &run.domains {
        let Some(s) = &d.suggestion else { continue };
        any = true;
        // A second entry for the same domain would make the configuration invalid: say what to change.
        let c = if d.overridden {
            writeln!(
                out,
                "# {} already has an [[override]]; change it to this one:",
                d.domain
            )?;
            "# "
        } else {
            ""
        };
        writeln!(out, "{c}[[override]]")?;
        writeln!(out, "{c}domain = {}", toml_str(&d.domain))?;
        writeln!(out, "{c}reason = {}", toml_str(&s.reason))?;
        writeln!(out, "{c}postfix_level = {}", toml_str(s.level.as_str()))?;
        if let Some(m) = &s.match_ {
            writeln!(out, "{c}postfix_match = {}", toml_str(m))?;
        }
        writeln!(out)?;
    }
    if !any {
        writeln!(out, "# bits-tls probe: no stronger policy to suggest")?;
    }
    Ok(())
}

fn toml_str(s: &str) -> String {
    toml::Value::String(crate::sanitize::one_line(s)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text from DNS or a server cannot add a key, a table or a line to the suggested TOML.
    #[test]
    fn suggested_values_stay_one_toml_string() {
        let hostile = "x\"\n[[override]]\ndomain = \"evil.no\"\r\n# \u{1b}[31m";
        let line = format!("reason = {}\n", toml_str(hostile));
        assert_eq!(line.lines().count(), 1, "{line}");
        let doc: toml::Table = toml::from_str(&line).unwrap();
        assert_eq!(doc.len(), 1);
        assert!(doc["reason"].as_str().unwrap().contains("[[override]]"));
    }
}

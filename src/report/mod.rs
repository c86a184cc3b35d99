//! Everything shown on stdout: one file per command's report (`list` for `fetch`, `plan` for `diff` and
//! `sync --dry-run`, `check`, `sync`, `verify`, `probe`), each with its formats side by side — text for people, JSON for
//! scripts (every document carries `version`), Markdown for a change ticket or merge request — and the
//! wording they share here, so one fact is said one way everywhere. Text from the list is escaped for
//! each medium.

pub mod check;
pub mod list;
pub mod plan;
pub mod probe;
pub mod sync;
pub mod verify;

use crate::list::Participant;
use crate::plan::ParticipantChange;
use crate::sanitize::for_terminal;
use crate::source::Provenance;
use std::io;

/// Standard output for data: buffered (a report is a few large writes, not one per line), and a reader
/// that went away (`bits-tls check | head -1`) is not an error — the rest is dropped, diagnostics still go
/// to stderr, and the command ends with its real exit code (drift stays 2, a refusal 3).
pub fn stdout() -> io::BufWriter<ClosedPipeOk<io::Stdout>> {
    io::BufWriter::with_capacity(64 * 1024, ClosedPipeOk(io::stdout()))
}

/// A writer for which a closed pipe is the end of interest, not a failure.
pub struct ClosedPipeOk<W>(pub W);

impl<W: io::Write> io::Write for ClosedPipeOk<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.0.write(buf) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(buf.len()),
            other => other,
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.0.flush() {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            other => other,
        }
    }
}

/// The version of every JSON document bits-tls prints. A field is only ever added within a version.
pub const JSON_VERSION: u32 = 1;

/// `1 domain`, `2 domains`.
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `3 participants, 4 domains`.
pub fn list_size(participants: usize, domains: usize) -> String {
    format!(
        "{}, {}",
        plural(participants, "participant"),
        plural(domains, "domain")
    )
}

/// `sha256 0123456789abcdef, page updated 2021-11-16`.
pub fn source_line(p: &Provenance) -> String {
    let mut s = format!("sha256 {}", short_digest(&p.sha256));
    if let Some(d) = p.page_updated {
        s.push_str(&format!(", page updated {d}"));
    }
    s
}

/// The first 16 hex digits of a digest: enough to tell lists apart in a summary.
pub fn short_digest(sha256: &str) -> &str {
    &sha256[..sha256.len().min(16)]
}

/// `Name (org.nr)`, escaped for the terminal.
pub(crate) fn who(p: &Participant) -> String {
    match &p.org_number {
        Some(n) => format!("{} ({n})", for_terminal(&p.organization)),
        None => for_terminal(&p.organization),
    }
}

/// `a.no, b.no`.
pub(crate) fn domains(p: &Participant) -> String {
    p.domains
        .iter()
        .map(|d| d.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The 5.2.4 flag as the list writes it.
pub(crate) fn flag(f: Option<bool>) -> &'static str {
    match f {
        Some(true) => "Ja",
        Some(false) => "Nei",
        None => "-",
    }
}

/// What changed about one participant, in words.
pub(crate) fn describe_change(c: &ParticipantChange) -> Vec<String> {
    let (b, a) = (&c.before, &c.after);
    let mut parts = Vec::new();
    let added: Vec<&str> = a
        .domains
        .iter()
        .filter(|d| !b.domains.contains(d))
        .map(|d| d.as_str())
        .collect();
    let removed: Vec<&str> = b
        .domains
        .iter()
        .filter(|d| !a.domains.contains(d))
        .map(|d| d.as_str())
        .collect();
    if !added.is_empty() {
        parts.push(format!("+{}", added.join(" +")));
    }
    if !removed.is_empty() {
        parts.push(format!("-{}", removed.join(" -")));
    }
    if b.organization != a.organization {
        parts.push(format!("name was `{}`", for_terminal(&b.organization)));
    }
    if b.org_number != a.org_number {
        parts.push(format!(
            "org.nr {} → {}",
            b.org_number.as_deref().unwrap_or("-"),
            a.org_number.as_deref().unwrap_or("-")
        ));
    }
    if b.enforces_inbound_tls != a.enforces_inbound_tls {
        parts.push(format!(
            "5.2.4 {} → {}",
            flag(b.enforces_inbound_tls),
            flag(a.enforces_inbound_tls)
        ));
    }
    if b.enrolled != a.enrolled {
        parts.push("enrolment date changed".into());
    }
    parts
}

/// A unified diff for the terminal: each line escaped, and `+`/`-` lines coloured when standard output
/// takes colour (`--color`, `NO_COLOR`, a terminal).
pub(crate) fn diff_for_terminal(text: &str) -> String {
    use anstyle::AnsiColor;
    let colour = crate::terminal::stdout_colour();
    let added = AnsiColor::Green.on_default();
    let removed = AnsiColor::Red.on_default();
    text.lines()
        .map(|l| {
            let shown = for_terminal(l);
            let style = match l.as_bytes().first() {
                _ if !colour || l.starts_with("+++") || l.starts_with("---") => None,
                Some(b'+') => Some(added),
                Some(b'-') => Some(removed),
                _ => None,
            };
            match style {
                Some(s) => format!("{s}{shown}{s:#}\n"),
                None => format!("{shown}\n"),
            }
        })
        .collect()
}

/// Inline code for Markdown: no backticks or line breaks inside, so list text cannot format, link or
/// mention anyone.
pub(crate) fn md_code(s: &str) -> String {
    format!("`{}`", crate::sanitize::one_line(s).replace('`', "'"))
}

/// A fence longer than any run of backticks in `text`.
pub(crate) fn fence(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

/// A diff as a collapsed Markdown block.
pub(crate) fn md_diff(path: &str, diff: &str) -> String {
    let fence = fence(diff);
    format!(
        "\n<details><summary>{}</summary>\n\n{fence}diff\n{diff}{fence}\n\n</details>\n",
        md_code(path)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_escapes() {
        assert_eq!(md_code("@all <b>x</b> `y`\nz"), "`@all <b>x</b> 'y' z`");
        assert_eq!(fence("a ``` b ```` c"), "`````");
        assert_eq!(fence("plain"), "```");
    }

    #[test]
    fn sizes_agree_in_number() {
        assert_eq!(list_size(1, 1), "1 participant, 1 domain");
        assert_eq!(list_size(0, 2), "0 participants, 2 domains");
    }
}

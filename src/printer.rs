//! Diagnostics on stderr (warnings, progress, errors with causes and hints), honouring `-q`/`-v` and
//! `--color`. Data goes to stdout through the commands; this module never writes data.

use crate::list::Warning;
use crate::sanitize;
use anstyle::{AnsiColor, Style};
use std::io::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

const WARN: Style = AnsiColor::Yellow.on_default().bold();
const ERROR: Style = AnsiColor::Red.on_default().bold();
const HINT: Style = AnsiColor::Cyan.on_default().bold();
const DIM: Style = Style::new().dimmed();
const NOTE: Style = AnsiColor::Green.on_default().bold();

/// Where diagnostics go.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub verbosity: Verbosity,
}

impl Printer {
    pub fn new(verbosity: Verbosity) -> Printer {
        Printer { verbosity }
    }

    /// A problem with the input; shown unless `-q`.
    pub fn warning(&self, w: &Warning) {
        if self.verbosity == Verbosity::Quiet {
            return;
        }
        let place = w.line.map(|l| format!("line {l}: ")).unwrap_or_default();
        // Messages quote untrusted text already escaped; escaping again is harmless and keeps the promise.
        let msg = sanitize::for_terminal(&w.message);
        let _ = writeln!(anstream::stderr(), "{WARN}warning{WARN:#}: {place}{msg}");
    }

    /// A note (a summary of what was done); shown unless `-q`.
    pub fn note(&self, msg: &str) {
        if self.verbosity > Verbosity::Quiet {
            let _ = writeln!(
                anstream::stderr(),
                "{NOTE}note{NOTE:#}: {}",
                sanitize::for_terminal(msg)
            );
        }
    }

    /// Progress detail; shown with `-v`.
    pub fn info(&self, msg: &str) {
        if self.verbosity >= Verbosity::Verbose {
            let _ = writeln!(
                anstream::stderr(),
                "{DIM}{}{DIM:#}",
                sanitize::for_terminal(msg)
            );
        }
    }

    /// An error that is an outcome, not a failure (a refusal); always shown.
    pub fn error(&self, msg: &str) {
        let _ = writeln!(
            anstream::stderr(),
            "{ERROR}error{ERROR:#}: {}",
            sanitize::for_terminal(msg)
        );
    }

    /// Advice after an error; always shown.
    pub fn hint(&self, msg: &str) {
        let _ = writeln!(
            anstream::stderr(),
            "{HINT}hint{HINT:#}: {}",
            sanitize::for_terminal(msg)
        );
    }

    /// A closure for library code that reports progress: shown with `-v`, except that a retry is a
    /// note at the normal level too, so a slow or failing server never means minutes of silence.
    pub fn log(&self) -> impl Fn(String) + '_ {
        move |m: String| {
            if m.starts_with("retrying ") {
                self.note(&m)
            } else {
                self.info(&m)
            }
        }
    }
}

/// `error: …`, one `Caused by:` line per cause, then a `hint:` if any layer offers one.
pub fn print_error(err: &anyhow::Error) {
    let mut out = anstream::stderr();
    let _ = writeln!(
        out,
        "{ERROR}error{ERROR:#}: {}",
        sanitize::for_terminal(&err.to_string())
    );
    for cause in err.chain().skip(1) {
        for (i, line) in cause.to_string().lines().enumerate() {
            let lead = if i == 0 { "  Caused by: " } else { "    " };
            let _ = writeln!(out, "{lead}{}", sanitize::for_terminal(line));
        }
    }
    if let Some(hint) = crate::errors::hint(err) {
        let _ = writeln!(out, "{HINT}hint{HINT:#}: {}", sanitize::for_terminal(&hint));
    }
}

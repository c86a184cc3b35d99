//! Diagnostics on stderr (warnings, progress, errors with causes and hints), honouring `-q`/`-v` and
//! `--color`. Data goes to stdout through the commands; this module never writes data.
//!
//! Each message, or each batch of them (`warnings`, `infos`), is formatted whole and written with one
//! `write`, so nothing is held back: it reaches stderr before anything that runs next (stdout, a hook)
//! and there is nothing to flush at exit. Whether stderr takes colour is asked once per run
//! (`terminal.rs`).

use crate::list::Warning;
use crate::sanitize;
use anstyle::{AnsiColor, Style};
use std::fmt::Write as _;
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
        self.warnings(std::iter::once(w))
    }

    /// Problems with the input, written to stderr at once (a list may have thousands); shown unless `-q`.
    pub fn warnings<'a>(&self, ws: impl IntoIterator<Item = &'a Warning>) {
        if self.verbosity == Verbosity::Quiet {
            return;
        }
        let mut ws = ws.into_iter().peekable();
        if ws.peek().is_none() {
            return;
        }
        let warn = paint(WARN);
        let mut text = String::new();
        for w in ws {
            let _ = write!(text, "{warn}warning{warn:#}: ");
            if let Some(l) = w.line {
                let _ = write!(text, "line {l}: ");
            }
            // Messages quote untrusted text already escaped; escaping again is harmless and keeps the promise.
            let _ = writeln!(text, "{}", sanitize::for_terminal(&w.message));
        }
        emit(&text);
    }

    /// A note (a summary of what was done); shown unless `-q`.
    pub fn note(&self, msg: &str) {
        if self.verbosity > Verbosity::Quiet {
            let note = paint(NOTE);
            emit(&format!(
                "{note}note{note:#}: {}\n",
                sanitize::for_terminal(msg)
            ));
        }
    }

    /// Progress detail; shown with `-v`.
    pub fn info(&self, msg: &str) {
        self.infos(std::iter::once(msg))
    }

    /// Progress details written at once; shown with `-v`.
    pub fn infos<S: AsRef<str>>(&self, msgs: impl IntoIterator<Item = S>) {
        if self.verbosity >= Verbosity::Verbose {
            let mut msgs = msgs.into_iter().peekable();
            if msgs.peek().is_none() {
                return;
            }
            let dim = paint(DIM);
            let mut text = String::new();
            for m in msgs {
                let _ = writeln!(text, "{dim}{}{dim:#}", sanitize::for_terminal(m.as_ref()));
            }
            emit(&text);
        }
    }

    /// An error that is an outcome, not a failure (a refusal); always shown.
    pub fn error(&self, msg: &str) {
        let error = paint(ERROR);
        emit(&format!(
            "{error}error{error:#}: {}\n",
            sanitize::for_terminal(msg)
        ));
    }

    /// Advice after an error; always shown.
    pub fn hint(&self, msg: &str) {
        let hint = paint(HINT);
        emit(&format!(
            "{hint}hint{hint:#}: {}\n",
            sanitize::for_terminal(msg)
        ));
    }

    /// A closure for library code that reports progress: shown with `-v`, except that a retry or a
    /// long wait is a note at the normal level too, so a slow or failing server never means minutes of silence.
    pub fn log(&self) -> impl Fn(String) + '_ {
        move |m: String| {
            if m.starts_with("retrying ") || m.starts_with("still waiting ") {
                self.note(&m)
            } else {
                self.info(&m)
            }
        }
    }
}

/// `error: …`, one `Caused by:` line per cause, then a `hint:` if any layer offers one.
pub fn print_error(err: &anyhow::Error) {
    let (error, hint_style) = (paint(ERROR), paint(HINT));
    let mut out = format!(
        "{error}error{error:#}: {}\n",
        sanitize::for_terminal(&err.to_string())
    );
    for cause in err.chain().skip(1) {
        for (i, line) in cause.to_string().lines().enumerate() {
            let lead = if i == 0 { "  Caused by: " } else { "    " };
            let _ = writeln!(out, "{lead}{}", sanitize::for_terminal(line));
        }
    }
    if let Some(hint) = crate::errors::hint(err) {
        // A hint may quote a program's output over several lines; each is escaped on its own.
        let shown: Vec<String> = hint.lines().map(sanitize::for_terminal).collect();
        let _ = writeln!(out, "{hint_style}hint{hint_style:#}: {}", shown.join("\n"));
    }
    emit(&out);
}

/// The style, or none when stderr takes no colour.
fn paint(style: Style) -> Style {
    if crate::terminal::stderr_colour() {
        style
    } else {
        Style::new()
    }
}

/// One write of whole lines to stderr (unbuffered, so it is there before anything that follows).
fn emit(text: &str) {
    if !text.is_empty() {
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
}

//! Mail to the postmaster when a sync applied a change, was refused by a safety guard, failed, or has
//! not succeeded for too long: through the local MTA's `sendmail -t -i`, run as an argv (no shell, no
//! credentials; the host is a mail server). A no-op run sends nothing.
//!
//! The headers are built from bits-tls's own words, the checked addresses of `[notify]` and the host
//! name only; every header value is reduced to printable text (no CR, LF or other control character) and
//! non-ASCII is sent as RFC 2047 encoded words, so no text from the list can add or extend a header line.
//! List text appears only in the body, after the blank line that ends the header.

use crate::plan::Plan;
use crate::printer::Printer;
use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// `[notify]` in `bits-tls.toml`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Recipients: `user@domain`, or a local user name the MTA resolves (`postmaster`).
    pub to: Vec<String>,
    /// The From address; without it the MTA writes the invoking user's address.
    pub from: Option<String>,
    /// The MTA's submission program as an argv; the message is its standard input.
    #[serde(default = "default_sendmail")]
    pub sendmail: Vec<String>,
    /// Which events send mail.
    #[serde(default = "all_events")]
    pub events: Vec<Event>,
    /// A failed or refused sync counts as `stale` once the last successful check is this many days old.
    #[serde(default = "default_stale_days")]
    pub stale_after_days: u32,
}

/// What a mail is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    /// A sync changed the list or a file (the body is the Markdown plan).
    Change,
    /// A safety guard refused the new list; nothing was changed.
    Refused,
    /// A sync failed; nothing was changed (also: a systemd unit failed).
    Failure,
    /// A sync failed or was refused and the last successful check is older than `stale_after_days`.
    Stale,
    /// `bits-tls notify`: a test mail (always sent).
    #[serde(skip_deserializing)]
    Test,
}

impl Event {
    pub fn name(self) -> &'static str {
        match self {
            Event::Change => "change",
            Event::Refused => "refused",
            Event::Failure => "failure",
            Event::Stale => "stale",
            Event::Test => "test",
        }
    }
}

pub const DEFAULT_SENDMAIL: [&str; 3] = ["/usr/sbin/sendmail", "-t", "-i"];

fn default_sendmail() -> Vec<String> {
    DEFAULT_SENDMAIL.iter().map(|s| s.to_string()).collect()
}

fn all_events() -> Vec<Event> {
    vec![Event::Change, Event::Refused, Event::Failure, Event::Stale]
}

fn default_stale_days() -> u32 {
    92
}

impl NotifyConfig {
    /// Checks the addresses and the command; the message is the reason, for `ConfigError::Invalid`.
    pub fn check(&self) -> Result<(), String> {
        if self.to.is_empty() {
            return Err("notify: `to` needs at least one address".into());
        }
        for a in self.to.iter().chain(&self.from) {
            check_address(a).map_err(|m| {
                format!(
                    "notify: `{}` is not a mail address: {m}",
                    crate::sanitize::excerpt(a, 80)
                )
            })?;
        }
        if self.sendmail.first().is_none_or(|p| p.is_empty()) {
            return Err("notify: the sendmail command is empty".into());
        }
        Ok(())
    }

    pub fn wants(&self, e: Event) -> bool {
        self.events.contains(&e)
    }
}

/// An address as it may stand in a header: `local@domain` or a bare local name, ASCII, no spaces, no
/// characters that mean something in an address list (`, ; < > ( ) " \ :`), nothing that could end a line.
pub fn check_address(a: &str) -> Result<(), &'static str> {
    const LOCAL_SPECIAL: &str = "!#$%&'*+/=?^_`{|}~.-";
    let (local, domain) = match a.rsplit_once('@') {
        Some((l, d)) => (l, Some(d)),
        None => (a, None),
    };
    if local.is_empty() || local.len() > 64 {
        return Err("the local part is empty or too long");
    }
    if !local
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || LOCAL_SPECIAL.contains(c))
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
    {
        return Err("the local part may hold only letters, digits and !#$%&'*+/=?^_`{|}~.-");
    }
    if let Some(d) = domain {
        let ok = !d.is_empty()
            && d.len() <= 253
            && d.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !ok {
            return Err(
                "the domain must be ASCII (use the xn-- form) with letters, digits, - and .",
            );
        }
    }
    Ok(())
}

/// One mail, before it is given headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub event: Event,
    pub subject: String,
    pub body: String,
}

/// The whole message as sendmail reads it: header lines, a blank line, the body; LF line ends.
pub fn format(cfg: &NotifyConfig, msg: &Message, host: &str, date: DateTime<Utc>) -> String {
    let mut out = String::new();
    if let Some(from) = &cfg.from {
        out.push_str(&format!("From: {}\n", header_value(from)));
    }
    let to: Vec<String> = cfg.to.iter().map(|a| header_value(a)).collect();
    out.push_str(&format!("To: {}\n", to.join(",\n ")));
    out.push_str(&format!(
        "Subject: {}\n",
        header_value(&format!("[bits-tls] {}: {}", host_name(host), msg.subject))
    ));
    out.push_str(&format!("Date: {}\n", date.to_rfc2822()));
    out.push_str("MIME-Version: 1.0\n");
    out.push_str("Content-Type: text/plain; charset=utf-8\n");
    out.push_str("Content-Transfer-Encoding: 8bit\n");
    // RFC 3834: an automatic message; vacation responders do not answer it.
    out.push_str("Auto-Submitted: auto-generated\n");
    out.push_str(&format!("X-Bits-Tls-Event: {}\n", msg.event.name()));
    out.push('\n');
    out.push_str(&body_text(&msg.body));
    out
}

/// A header value: every control character (CR, LF, TAB, ESC, DEL, C1, Unicode line separators and bidi
/// controls) becomes a space, so the value stays on its line; non-ASCII text becomes RFC 2047 encoded
/// words, folded onto continuation lines that start with a space (a continuation, never a new header).
pub fn header_value(text: &str) -> String {
    let clean = crate::sanitize::one_line(text);
    if clean.is_ascii() {
        return clean;
    }
    // An encoded word is at most 75 characters: `=?UTF-8?B?` + base64 + `?=` leaves 63 for base64, i.e.
    // 45 bytes of text per word; words are cut at character boundaries.
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in clean.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(encoded_word(&chunk));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(encoded_word(&chunk));
    }
    words.join("\n ")
}

fn encoded_word(text: &str) -> String {
    format!("=?UTF-8?B?{}?=", base64(text.as_bytes()))
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The host name as it may stand in a subject: letters, digits, `.` and `-` only.
fn host_name(host: &str) -> String {
    let h: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
        .take(253)
        .collect();
    if h.is_empty() {
        "localhost".into()
    } else {
        h
    }
}

/// The body: LF line ends, no CR or other control character but TAB (each becomes `\u{FFFD}`), no line
/// longer than 998 bytes (RFC 5322; longer ones are cut at a character boundary onto the next line), and a
/// final newline.
pub fn body_text(body: &str) -> String {
    const MAX: usize = 998;
    let mut out = String::with_capacity(body.len() + 1);
    for line in body.split('\n') {
        let mut len = 0;
        for c in line.chars() {
            let c = if c == '\t' || !(c.is_control() || crate::sanitize::is_dangerous(c)) {
                c
            } else {
                '\u{FFFD}'
            };
            if len + c.len_utf8() > MAX {
                out.push('\n');
                len = 0;
            }
            out.push(c);
            len += c.len_utf8();
        }
        out.push('\n');
    }
    // `split` yields an empty last piece for a body that ends with a newline: do not double it.
    if body.ends_with('\n') {
        out.pop();
    }
    out
}

/// Hands the message to the MTA: `sendmail` as an argv, the message on standard input.
pub fn send(cfg: &NotifyConfig, message: &str) -> anyhow::Result<()> {
    let (program, args) = cfg.sendmail.split_first().context("no sendmail command")?;
    let shown = cfg.sendmail.join(" ");
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running `{shown}`"))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let written = stdin.write_all(message.as_bytes());
    drop(stdin);
    let output = child
        .wait_with_output()
        .with_context(|| format!("waiting for `{shown}`"))?;
    if !output.status.success() {
        bail!(
            "`{shown}` failed ({}): {}",
            output.status,
            crate::sanitize::excerpt(String::from_utf8_lossy(&output.stderr).trim(), 400)
        );
    }
    written.with_context(|| format!("writing the message to `{shown}`"))?;
    Ok(())
}

/// This machine's name, for the subject.
pub fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// What `sync` calls: one method per event, each a no-op without `[notify]` or with the event off. A
/// mail that cannot be sent is reported on stderr; it never changes the sync's own outcome.
#[derive(Debug, Clone)]
pub struct Notifier {
    cfg: Option<NotifyConfig>,
    host: String,
}

impl Notifier {
    pub fn new(cfg: Option<&NotifyConfig>) -> Notifier {
        Notifier {
            cfg: cfg.cloned(),
            host: this_host(),
        }
    }

    /// A sync applied a change: the Markdown plan.
    pub fn changed(&self, p: &Plan, printer: &Printer) {
        let Some(cfg) = self.enabled(Event::Change) else {
            return;
        };
        let ch = &p.changes;
        let subject = if ch.is_empty() {
            "applied the Bits list (files or source updated)".to_string()
        } else {
            format!(
                "applied the Bits list: {}",
                crate::report::plan::change_counts(ch)
            )
        };
        let body = format!(
            "bits-tls applied a change from the Bits forced-TLS list on {}.\n\n{}",
            host_name(&self.host),
            markdown(p)
        );
        self.deliver(cfg, Event::Change, subject, body, printer);
    }

    /// A safety guard refused the list; nothing was changed.
    pub fn refused(&self, p: &Plan, reason: &str, state: &Path, printer: &Printer) {
        let Some(cfg) = self.enabled(Event::Refused) else {
            return;
        };
        let body = format!(
            "bits-tls refused the new Bits forced-TLS list on {}: {}. Nothing was changed.\n\
             Review the plan below (or run `bits-tls diff`); if the change is real, run `bits-tls sync --force`.\n{}\n{}",
            host_name(&self.host),
            crate::sanitize::one_line(reason),
            staleness(cfg, state).map(|s| format!("\n{s}\n")).unwrap_or_default(),
            markdown(p)
        );
        self.deliver(
            cfg,
            Event::Refused,
            "refused the new list (safety guard); nothing changed".into(),
            body,
            printer,
        );
    }

    /// A sync failed; the mail is `stale` instead when the last successful check is too old.
    pub fn failed(&self, err: &anyhow::Error, state: &Path, printer: &Printer) {
        let Some(cfg) = &self.cfg else {
            return;
        };
        let stale = staleness(cfg, state);
        let event = match &stale {
            Some(_) if cfg.wants(Event::Stale) => Event::Stale,
            _ if cfg.wants(Event::Failure) => Event::Failure,
            _ => return,
        };
        let mut body = format!(
            "bits-tls sync failed on {}; no output file or the state was changed.\n\n",
            host_name(&self.host)
        );
        body.push_str(&format!("error: {err}\n"));
        for cause in err.chain().skip(1) {
            body.push_str(&format!("  Caused by: {cause}\n"));
        }
        if let Some(hint) = crate::errors::hint(err) {
            body.push_str(&format!("hint: {hint}\n"));
        }
        if let Some(s) = &stale {
            body.push_str(&format!("\n{s}\n"));
        }
        let subject = match event {
            Event::Stale => "STALE: sync failed and the list is out of date".to_string(),
            _ => "sync failed; nothing changed".to_string(),
        };
        self.deliver(cfg, event, subject, body, printer);
    }

    fn enabled(&self, e: Event) -> Option<&NotifyConfig> {
        self.cfg.as_ref().filter(|c| c.wants(e))
    }

    fn deliver(
        &self,
        cfg: &NotifyConfig,
        event: Event,
        subject: String,
        body: String,
        printer: &Printer,
    ) {
        let msg = Message {
            event,
            subject,
            body,
        };
        let text = format(cfg, &msg, &self.host, Utc::now());
        match send(cfg, &text) {
            Ok(()) => printer.info(&format!(
                "notify: sent the {} mail to {}",
                event.name(),
                cfg.to.join(", ")
            )),
            Err(e) => printer.error(&format!(
                "could not send the {} notification: {e:#}",
                event.name()
            )),
        }
    }
}

/// How systemd says a unit ended: the `MONITOR_*` variables it gives an `OnFailure=` unit (systemd 251+).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitEnd {
    pub result: Option<String>,
    pub exit_code: Option<String>,
    pub exit_status: Option<String>,
    pub invocation_id: Option<String>,
}

impl UnitEnd {
    pub fn from_env() -> UnitEnd {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        UnitEnd {
            result: var("MONITOR_SERVICE_RESULT"),
            exit_code: var("MONITOR_EXIT_CODE"),
            exit_status: var("MONITOR_EXIT_STATUS"),
            invocation_id: var("MONITOR_INVOCATION_ID"),
        }
    }
}

/// The mail for a failed systemd unit (`OnFailure=bits-tls-notify@%n.service`), or `None` when there is
/// nothing to add: the `failure` event is off, or the sync already mailed this end itself (it exited 1,
/// a failure it reported, or 3, a refusal it reported with `refused` on). A sync that was killed, timed
/// out or crashed is reported here; without `MONITOR_*` (systemd before 251) every failure is.
pub fn unit_failure(cfg: &NotifyConfig, unit: &str, end: &UnitEnd, host: &str) -> Option<Message> {
    if !cfg.wants(Event::Failure) {
        return None;
    }
    if end.result.as_deref() == Some("exit-code") {
        match end.exit_status.as_deref() {
            Some("1") => return None,
            Some("3") if cfg.wants(Event::Refused) => return None,
            _ => {}
        }
    }
    let unit = crate::sanitize::one_line(unit);
    let shown = |v: &Option<String>| {
        v.as_deref()
            .map(crate::sanitize::one_line)
            .unwrap_or_else(|| "unknown".into())
    };
    let mut body = format!(
        "The systemd unit {unit} failed on {}.\n\n  result:      {}\n  exit:        {} {}\n",
        host_name(host),
        shown(&end.result),
        shown(&end.exit_code),
        shown(&end.exit_status),
    );
    let journal = match &end.invocation_id {
        Some(id) => format!(
            "journalctl -u {unit} _SYSTEMD_INVOCATION_ID={}",
            crate::sanitize::one_line(id)
        ),
        None => format!("journalctl -u {unit} -n 50"),
    };
    body.push_str(&format!(
        "\nIts log: {journal}\nNo output file or state is changed by a failed sync.\n"
    ));
    Some(Message {
        event: Event::Failure,
        subject: format!("{unit} failed ({})", shown(&end.result)),
        body,
    })
}

fn markdown(p: &Plan) -> String {
    let mut buf = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = crate::report::plan::write(&mut buf, p, crate::report::plan::Format::Markdown);
    String::from_utf8_lossy(&buf).into_owned()
}

/// "The last successful check was N days ago …" when the state is older than `stale_after_days`.
fn staleness(cfg: &NotifyConfig, state: &Path) -> Option<String> {
    let s = crate::state::State::load(state).ok().flatten()?;
    let age = Utc::now() - s.last_checked;
    (age > chrono::Duration::days(cfg.stale_after_days.into())).then(|| {
        format!(
            "STALE: the last successful check of the list was {} days ago ({}); the scheme asks for an \
             update at least every quarter.",
            age.num_days(),
            s.last_checked.format("%Y-%m-%d %H:%M UTC")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> NotifyConfig {
        NotifyConfig {
            to: vec!["postmaster@example.no".into(), "root".into()],
            from: Some("bits-tls@mail.example.no".into()),
            sendmail: default_sendmail(),
            events: all_events(),
            stale_after_days: 92,
        }
    }

    #[test]
    fn base64_matches_rfc4648() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn header_values_never_break_the_line() {
        let v = header_value("Evil\r\nBcc: victim@example.com\u{2028}X: y\u{85}Z");
        assert!(!v.contains('\r') && !v.contains('\n'), "{v:?}");
        let v = header_value("Bank æøå\r\nBcc: victim@example.com ".repeat(4).as_str());
        for line in v.split('\n').skip(1) {
            assert!(
                line.starts_with(' '),
                "a folded line is a continuation: {v:?}"
            );
        }
        for word in v.split_whitespace() {
            assert!(word.starts_with("=?UTF-8?B?") && word.len() <= 75, "{word}");
        }
    }

    #[test]
    fn addresses_are_checked() {
        assert!(cfg().check().is_ok());
        for bad in [
            "a@b.no\nBcc: x@y",
            "a@b.no, c@d.no",
            "<a@b.no>",
            "a b@c.no",
            "a@b..no",
            "æ@b.no",
            "",
        ] {
            assert!(check_address(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_header_ends_before_any_body_text() {
        let msg = Message {
            event: Event::Change,
            subject: "x\nBcc: victim@example.com".into(),
            body: "Bcc: victim@example.com\r\nline\u{1b}[31m\n".into(),
        };
        let text = format(&cfg(), &msg, "mail1\nBcc: x", Utc::now());
        let (head, body) = text.split_once("\n\n").unwrap();
        assert!(!head.to_ascii_lowercase().contains("\nbcc:"), "{head}");
        assert_eq!(body, "Bcc: victim@example.com\u{FFFD}\nline\u{FFFD}[31m\n");
    }

    #[test]
    fn long_body_lines_are_cut() {
        let body = body_text(&"ø".repeat(1200));
        assert!(body.lines().all(|l| l.len() <= 998));
        assert_eq!(body.lines().count(), 3);
    }
}

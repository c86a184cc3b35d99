//! `[notify]`: one mail per event through a recording `sendmail` stand-in (a script that keeps its argv
//! and the message it was given), none on a no-op run, and no header that list text could add.

mod support;

use predicates::prelude::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use support::bits;

/// A list file with one participant per (organisation, domain).
fn list(rows: &[(&str, &str)]) -> String {
    let mut s = String::from("Virksomhet;Org.nr;Domene;Krav 5.2.4\n");
    for (org, d) in rows {
        s.push_str(&format!("\"{}\";;{d};Ja\n", org.replace('"', "\"\"")));
    }
    s
}

fn rows(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (format!("Deltaker {i}"), format!("d{i}.no")))
        .collect()
}

struct Mailhost {
    dir: tempfile::TempDir,
}

/// The headers every mail has, and nothing else (From only when configured).
const HEADERS: [&str; 9] = [
    "From",
    "To",
    "Subject",
    "Date",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Auto-Submitted",
    "X-Bits-Tls-Event",
];

impl Mailhost {
    /// A config with `[notify]` whose sendmail is the recording script; the list is `liste.csv`.
    fn new(sendmail_exit: u8) -> Mailhost {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("mail")).unwrap();
        let script = root.join("sendmail");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n# Records one message: its argv and its standard input.\n\
                 d=\"$(dirname \"$0\")/mail\"\nn=$(ls \"$d\" | grep -c '^msg')\n\
                 printf '%s\\n' \"$@\" > \"$d/argv.$n\"\ncat > \"$d/msg.$n\"\nexit {sendmail_exit}\n"
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let config = format!(
            "source = \"{}\"\n\n[notify]\nto = [\"postmaster@example.no\", \"hostmaster@example.no\"]\n\
             from = \"bits-tls@mail.example.no\"\nsendmail = [\"{}\", \"-t\", \"-i\"]\n\n\
             [[output]]\ntarget = \"exim-domains\"\npath = \"exim-domains\"\n",
            root.join("liste.csv").display(),
            script.display()
        );
        std::fs::write(root.join("bits-tls.toml"), config).unwrap();
        Mailhost { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn set_list(&self, rows: &[(&str, &str)]) {
        std::fs::write(self.path("liste.csv"), list(rows)).unwrap();
    }

    fn cmd(&self, args: &[&str]) -> assert_cmd::Command {
        let mut c = bits();
        c.current_dir(self.dir.path()).args(args);
        c
    }

    fn sync(&self) -> assert_cmd::assert::Assert {
        self.cmd(&["sync"]).assert()
    }

    /// The messages recorded so far, in order.
    fn mails(&self) -> Vec<Mail> {
        let mut out = Vec::new();
        for n in 0.. {
            let Ok(raw) = std::fs::read_to_string(self.path(&format!("mail/msg.{n}"))) else {
                break;
            };
            let argv = std::fs::read_to_string(self.path(&format!("mail/argv.{n}"))).unwrap();
            out.push(Mail::parse(&raw, &argv));
        }
        out
    }
}

#[derive(Debug)]
struct Mail {
    argv: Vec<String>,
    /// (name, value with continuation lines joined).
    headers: Vec<(String, String)>,
    body: String,
}

impl Mail {
    fn parse(raw: &str, argv: &str) -> Mail {
        let (head, body) = raw
            .split_once("\n\n")
            .expect("a blank line ends the header");
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.split('\n') {
            assert!(!line.contains('\r'), "a CR in the header: {line:?}");
            if line.starts_with([' ', '\t']) {
                headers.last_mut().expect("a continuation").1.push_str(line);
            } else {
                let (k, v) = line.split_once(": ").expect("name: value");
                headers.push((k.to_string(), v.to_string()));
            }
        }
        Mail {
            argv: argv.lines().map(str::to_string).collect(),
            headers,
            body: body.to_string(),
        }
    }

    fn header(&self, name: &str) -> &str {
        &self
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", self.headers))
            .1
    }

    fn event(&self) -> &str {
        self.header("X-Bits-Tls-Event")
    }

    /// Only bits-tls's own headers, each once; the recipients are the configured ones.
    fn assert_clean_header(&self) {
        let names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names, HEADERS,
            "unexpected header lines: {:?}",
            self.headers
        );
        assert_eq!(
            self.header("To"),
            "postmaster@example.no, hostmaster@example.no"
        );
        assert_eq!(self.header("From"), "bits-tls@mail.example.no");
        assert_eq!(self.argv, ["-t", "-i"], "sendmail's arguments");
        for (k, v) in &self.headers {
            assert!(
                !v.to_lowercase().contains("victim"),
                "list text reached the header {k}: {v}"
            );
        }
    }
}

#[test]
fn one_mail_per_event_and_none_for_a_no_op() {
    let m = Mailhost::new(0);
    let r = rows(20);
    let mut list: Vec<(&str, &str)> = r.iter().map(|(o, d)| (o.as_str(), d.as_str())).collect();
    m.set_list(&list);

    // First sync: a change, with the Markdown plan.
    m.sync().success();
    let mails = m.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].event(), "change");
    mails[0].assert_clean_header();
    assert!(mails[0].header("Subject").contains(
        "applied the Bits list: 20 joined, 0 left, 0 changed; domains: 20 added, 0 removed"
    ));
    assert!(mails[0]
        .body
        .contains("### bits-tls: changes from the Bits forced-TLS list"));
    assert!(mails[0].body.contains("- joined: `Deltaker 7` `d7.no`"));

    // The same list again: nothing changed, nothing sent.
    m.sync().success().stdout("");
    assert_eq!(m.mails().len(), 1);

    // One participant more: one more change mail.
    list.push(("Ny Deltaker", "ny.no"));
    m.set_list(&list);
    m.sync().success();
    let mails = m.mails();
    assert_eq!(mails.len(), 2);
    assert_eq!(mails[1].event(), "change");
    assert!(mails[1].body.contains("- joined: `Ny Deltaker` `ny.no`"));

    // Half the list gone: the guard refuses (exit 3), one refusal mail with the plan.
    m.set_list(&list[..10]);
    m.sync().code(3);
    let mails = m.mails();
    assert_eq!(mails.len(), 3);
    assert_eq!(mails[2].event(), "refused");
    mails[2].assert_clean_header();
    assert!(mails[2].body.contains("Refused by a safety guard"));
    assert!(mails[2].body.contains("bits-tls sync --force"));

    // The list cannot be read: one failure mail with the error.
    std::fs::remove_file(m.path("liste.csv")).unwrap();
    m.sync().code(1);
    let mails = m.mails();
    assert_eq!(mails.len(), 4);
    assert_eq!(mails[3].event(), "failure");
    mails[3].assert_clean_header();
    assert!(mails[3].body.contains("liste.csv"), "{}", mails[3].body);

    // Still failing, and the last good check is 100 days old: one mail, and it says stale.
    let state_path = m.path("bits-tls.state.json");
    let state = std::fs::read_to_string(&state_path).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&state).unwrap();
    let old = (chrono::Utc::now() - chrono::Duration::days(100))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    v["last_checked"] = serde_json::Value::String(old);
    std::fs::write(&state_path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    m.sync().code(1);
    let mails = m.mails();
    assert_eq!(mails.len(), 5);
    assert_eq!(mails[4].event(), "stale");
    assert!(mails[4].header("Subject").contains("STALE"));
    assert!(mails[4]
        .body
        .contains("the last successful check of the list was 100 days ago"));

    // A dry run never mails, whatever happens.
    m.cmd(&["sync", "--dry-run"]).assert().code(1);
    assert_eq!(m.mails().len(), 5);
}

#[test]
fn hostile_organisation_names_add_no_header() {
    let m = Mailhost::new(0);
    let hostile = [
        (
            "Evil Bank\r\nBcc: victim@evil.example\r\n\r\nfake body",
            "evil.no",
        ),
        (
            "Ærlig Bank\nSubject: victim\nBcc: victim2@evil.example",
            "aerlig.no",
        ),
        (
            "Ond\u{2028}Bcc: victim3@evil.example\u{85}To: victim4@x",
            "ond.no",
        ),
        ("Nul\u{0}Bcc: victim5@evil.example", "nul.no"),
    ];
    m.set_list(&hostile);
    m.sync().success();
    let mails = m.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];
    mail.assert_clean_header();
    // The names are in the body, each on its own plan line.
    assert!(mail.body.contains("Evil Bank"), "{}", mail.body);
    assert!(mail.body.contains("Ærlig Bank"), "{}", mail.body);
    for line in mail.body.lines() {
        assert!(
            !line.starts_with("Bcc:") && !line.starts_with("Subject:") && !line.starts_with("To:"),
            "{line:?}"
        );
    }
    // The raw message: LF line ends, no CR anywhere, no NUL.
    let raw = std::fs::read_to_string(m.path("mail/msg.0")).unwrap();
    assert!(!raw.contains('\r') && !raw.contains('\0'));
}

#[test]
fn a_failing_sendmail_is_reported_and_the_sync_still_counts() {
    let m = Mailhost::new(75);
    m.set_list(&[("Bank", "bank.no")]);
    m.sync().success().stderr(predicate::str::contains(
        "could not send the change notification",
    ));
    assert!(m.path("exim-domains").exists());
    assert_eq!(m.mails().len(), 1, "the message was handed over once");
}

#[test]
fn notify_sends_a_test_mail() {
    let m = Mailhost::new(0);
    m.cmd(&["notify"]).assert().success();
    let mails = m.mails();
    assert_eq!(mails.len(), 1);
    mails[0].assert_clean_header();
    assert_eq!(mails[0].event(), "test");
}

#[test]
fn unit_failures_are_mailed_once() {
    let m = Mailhost::new(0);
    let run = |vars: &[(&str, &str)]| {
        let mut c = m.cmd(&["notify", "--unit-failed", "bits-tls.service"]);
        for k in [
            "MONITOR_SERVICE_RESULT",
            "MONITOR_EXIT_CODE",
            "MONITOR_EXIT_STATUS",
            "MONITOR_INVOCATION_ID",
        ] {
            c.env_remove(k);
        }
        for (k, v) in vars {
            c.env(k, v);
        }
        c.assert().success();
    };
    // Exit 1 and 3: the sync mailed the failure or refusal itself.
    run(&[
        ("MONITOR_SERVICE_RESULT", "exit-code"),
        ("MONITOR_EXIT_CODE", "exited"),
        ("MONITOR_EXIT_STATUS", "1"),
    ]);
    run(&[
        ("MONITOR_SERVICE_RESULT", "exit-code"),
        ("MONITOR_EXIT_CODE", "exited"),
        ("MONITOR_EXIT_STATUS", "3"),
    ]);
    assert_eq!(m.mails().len(), 0);
    // A timeout: the sync could not say anything; the notifier does.
    run(&[
        ("MONITOR_SERVICE_RESULT", "timeout"),
        ("MONITOR_EXIT_CODE", "killed"),
        ("MONITOR_EXIT_STATUS", "TERM"),
        ("MONITOR_INVOCATION_ID", "0123abcd"),
    ]);
    // An old systemd without MONITOR_*: mailed too.
    run(&[]);
    let mails = m.mails();
    assert_eq!(mails.len(), 2, "{mails:?}");
    for mail in &mails {
        mail.assert_clean_header();
        assert_eq!(mail.event(), "failure");
    }
    assert!(mails[0]
        .header("Subject")
        .contains("bits-tls.service failed (timeout)"));
    assert!(mails[0]
        .body
        .contains("journalctl -u bits-tls.service _SYSTEMD_INVOCATION_ID=0123abcd"));
}

#[test]
fn bad_notify_settings_are_refused() {
    let m = Mailhost::new(0);
    let path: &Path = &m.path("bits-tls.toml");
    let text = std::fs::read_to_string(path).unwrap();
    std::fs::write(
        path,
        text.replace(
            "\"hostmaster@example.no\"",
            "\"hostmaster@example.no\\nBcc: victim@evil.example\"",
        ),
    )
    .unwrap();
    m.set_list(&[("Bank", "bank.no")]);
    m.sync()
        .code(1)
        .stderr(predicate::str::contains("is not a mail address"));
    assert_eq!(m.mails().len(), 0);
}

//! The command line itself: help, exit codes, completions, man page, quiet/verbose, colour, and
//! behaviour with a closed pipe.

mod support;

use predicates::prelude::*;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use support::{bits, fixture};

#[test]
fn help_is_stable() {
    let out = bits().arg("--help").assert().success();
    let help = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let path = fixture("../snapshots/help.txt");
    if std::env::var_os("BITS_TLS_BLESS").is_some() {
        std::fs::write(&path, &help).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .expect("tests/snapshots/help.txt (BITS_TLS_BLESS=1 writes it)");
    assert_eq!(
        help, want,
        "help changed; if intended, rerun with BITS_TLS_BLESS=1 and review the diff"
    );
    assert!(help.contains("Exit codes:") && help.contains("3  refused by a safety guard"));
}

#[test]
fn short_help_is_one_line_per_item() {
    bits()
        .args(["fetch", "-h"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--source <URL|PATH>"));
}

#[test]
fn usage_errors_exit_1_not_2() {
    // 2 means "changes pending" in this tool's contract, so a usage error must not use it.
    bits()
        .arg("frobnicate")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("unrecognized subcommand"));
    bits().args(["fetch", "--format", "yaml"]).assert().code(1);
    bits().args(["fetch", "--timeout", "0"]).assert().code(1);
}

#[test]
fn version() {
    bits()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::starts_with("bits-tls "));
}

#[test]
fn completions_and_man_page() {
    bits()
        .args(["completions", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("complete -F").and(predicate::str::contains("bits-tls")));
    bits()
        .args(["completions", "zsh"])
        .assert()
        .success()
        .stdout(predicate::str::contains("#compdef bits-tls"));
    bits()
        .arg("man")
        .assert()
        .success()
        .stdout(predicate::str::starts_with(".ie"));
    bits()
        .arg("man")
        .assert()
        .success()
        .stdout(predicate::str::contains(".TH bits-tls"));
}

#[test]
fn quiet_hides_warnings_verbose_shows_progress() {
    let src = fixture("messy.csv");
    let src = src.to_str().unwrap();
    bits()
        .args(["fetch", "--source", src])
        .assert()
        .success()
        .stderr(predicate::str::contains("warning: line 7:"));
    bits()
        .args(["fetch", "-q", "--source", src])
        .assert()
        .success()
        .stderr("");
    bits()
        .args(["fetch", "-v", "--source", src])
        .assert()
        .success()
        .stderr(
            predicate::str::contains("reading ")
                .and(predicate::str::contains("UTF-8, `;`-separated")),
        );
}

#[test]
fn colour_only_when_asked_and_never_in_json() {
    let src = fixture("messy.csv");
    let src = src.to_str().unwrap();
    bits()
        .args([
            "fetch", "--color", "always", "--format", "json", "--source", src,
        ])
        .env_remove("NO_COLOR")
        .assert()
        .success()
        .stderr(predicate::str::contains("\x1b[").and(predicate::str::contains("warning")))
        .stdout(predicate::str::contains("\x1b[").not());
    // Not a terminal, NO_COLOR set: plain.
    bits()
        .args(["fetch", "--source", src])
        .assert()
        .success()
        .stderr(predicate::str::contains("\x1b[").not());
}

#[test]
fn hostile_names_cannot_drive_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evil.csv");
    std::fs::write(
        &path,
        "Virksomhet;Domene\n\"Evil\x1b]0;pwned\x07 Bank\";evil.no\nX;\"bad\x1b[2J.no\"\n",
    )
    .unwrap();
    let out = bits()
        .args(["fetch", "--source", path.to_str().unwrap()])
        .assert()
        .success();
    let o = out.get_output();
    assert!(
        !o.stdout.contains(&0x1b),
        "ESC on stdout: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(
        !o.stderr.contains(&0x1b),
        "ESC on stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("\\u{1b}[2J"));
}

#[test]
fn closed_pipe_exits_quietly() {
    // A list long enough to overflow the pipe buffer, read one line of, then closed.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.csv");
    let mut text = String::from("Virksomhet;Domene\n");
    for i in 0..20_000 {
        text.push_str(&format!("Organisasjon nummer {i};domene-{i}.no\n"));
    }
    std::fs::write(&path, text).unwrap();
    let mut child = support::bits_std()
        .args(["fetch", "--source", path.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("ORGANIZATION"));
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn closed_pipe_never_panics_or_complains() {
    for args in [
        vec!["completions", "zsh"],
        vec!["completions", "bash"],
        vec!["man"],
        vec!["fetch", "--format", "json"],
        vec!["fetch", "--format", "csv"],
        vec!["render", "exim-config"],
    ] {
        let mut cmd = support::bits_std();
        cmd.args(&args);
        if args[0] != "completions" && args[0] != "man" {
            cmd.arg("--source").arg(support::example_csv()).arg("-q");
        }
        let (code, stderr) = support::with_closed_stdout(cmd);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?}");
    }
}

/// `-v` shows the reader's choices: the encoding and delimiter, the header row and the column mapping.
#[test]
fn verbose_shows_the_readers_decisions() {
    bits()
        .args(["fetch", "-v", "--source"])
        .arg(support::example_csv())
        .assert()
        .success()
        .stderr(
            predicate::str::contains("read as UTF-8, separated by `;`").and(
                predicate::str::contains("header row found at line 1: domain=3"),
            ),
        );
}

//! Manual pages that are real: `bits-tls man --dir` writes the overview and one page per command, every
//! page the overview names exists, each renders with man(1) without a warning, and the sections an admin
//! looks for are there.

mod support;

use std::process::Command;
use support::bits;

fn render(page: &std::path::Path) -> (String, String) {
    let out = Command::new("man")
        .args(["--warnings", "-E", "UTF-8", "-l", page.to_str().unwrap()])
        .env("MANWIDTH", "100")
        .env("MAN_KEEP_FORMATTING", "")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .expect("man(1) runs (Debian's man-db)");
    assert!(out.status.success(), "man -l {}: {out:?}", page.display());
    // Strip overstrike formatting (col -b) by dropping "x\bx" pairs.
    let text = String::from_utf8_lossy(&out.stdout);
    let mut clean = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if chars.peek() == Some(&'\u{8}') {
            chars.next();
            continue;
        }
        clean.push(c);
    }
    (clean, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn every_command_has_a_page_with_the_sections_admins_need() {
    let dir = tempfile::tempdir().unwrap();
    bits()
        .args(["man", "--dir", dir.path().to_str().unwrap()])
        .assert()
        .success();
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "bits-tls-check.1",
            "bits-tls-completions.1",
            "bits-tls-diff.1",
            "bits-tls-fetch.1",
            "bits-tls-init.1",
            "bits-tls-man.1",
            "bits-tls-notify.1",
            "bits-tls-probe.1",
            "bits-tls-render.1",
            "bits-tls-sync.1",
            "bits-tls-verify.1",
            "bits-tls.1",
        ]
    );

    let (overview, warnings) = render(&dir.path().join("bits-tls.1"));
    assert_eq!(warnings, "", "man --warnings on bits-tls.1");
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "SUBCOMMANDS",
        "EXIT STATUS",
        "FILES",
        "ENVIRONMENT",
        "EXAMPLES",
        "SEE ALSO",
    ] {
        assert!(
            overview.lines().any(|l| l == section),
            "bits-tls.1 has no {section} section:\n{overview}"
        );
    }
    // The exit codes are in EXIT STATUS (not under "EXTRA"), and the FILES an admin must know.
    assert!(!overview.contains("EXTRA"));
    for needle in [
        "refused by a safety guard",
        "/etc/bits-tls/bits-tls.toml",
        "/var/lib/bits-tls/bits-tls.state.json",
        "bits-tls.history.jsonl",
        ".lock",
        ".bak.1",
        "BITS_TLS_CONFIG",
        "BITS_TLS_STATE",
        "BITS_TLS_SOURCE",
        "HTTPS_PROXY",
        "NO_COLOR",
    ] {
        assert!(overview.contains(needle), "bits-tls.1 lacks `{needle}`");
    }
    // Every page the overview points at exists.
    for word in overview.split(|c: char| c.is_whitespace() || c == ',') {
        if let Some(name) = word
            .strip_prefix("bits-tls-")
            .and_then(|w| w.strip_suffix("(1)"))
        {
            assert!(
                names.contains(&format!("bits-tls-{name}.1")),
                "bits-tls.1 refers to bits-tls-{name}(1), which was not written"
            );
        }
    }

    for name in &names[..names.len() - 1] {
        let (page, warnings) = render(&dir.path().join(name));
        assert_eq!(warnings, "", "man --warnings on {name}");
        for section in [
            "NAME",
            "SYNOPSIS",
            "OPTIONS",
            "EXIT STATUS",
            "EXAMPLES",
            "SEE ALSO",
        ] {
            assert!(
                page.lines().any(|l| l == section),
                "{name} has no {section} section:\n{page}"
            );
        }
    }
    let (sync, _) = render(&dir.path().join("bits-tls-sync.1"));
    for needle in ["--dry-run", "--detailed-exitcode", "FILES", "--force"] {
        assert!(sync.contains(needle), "bits-tls-sync.1 lacks `{needle}`");
    }
    let (verify, _) = render(&dir.path().join("bits-tls-verify.1"));
    for needle in [
        "--postfix-config-dir",
        "--exim-config",
        "gaps found",
        "--log",
        "FILES",
    ] {
        assert!(
            verify.contains(needle),
            "bits-tls-verify.1 lacks `{needle}`"
        );
    }
}

#[test]
fn man_without_dir_prints_the_overview() {
    let out = bits().arg("man").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(".TH bits-tls 1"));
    assert!(text.contains(".SH \"EXIT STATUS\""));
    assert_eq!(
        text.matches(".ds Aq").count(),
        2,
        "the string definition once (.ie/.el)"
    );
}

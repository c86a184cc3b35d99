//! Golden files for every command × format: the exact bytes a person, a script or a ticket sees.
//! `BITS_TLS_BLESS=1 cargo test --test report` rewrites them after a deliberate change; review the diff.

mod support;

use std::path::{Path, PathBuf};
use support::bits;

const V1: &str = "Virksomhet;Org.nr;Domene;Dato;Krav 5.2.4\n\
Bits AS;916960190;bits.no;2017-02-01;Ja\n\
Sørbanken;;sorbanken.no, blåbær.no;01.02.2019;Nei\n\
Gamle Bank `x`;;gamle.no;;\n\
Ugyldig;;not a domain;;\n";

const V2: &str = "Virksomhet;Org.nr;Domene;Dato;Krav 5.2.4\n\
Bits AS;916960190;bits.no;2017-02-01;Ja\n\
Sørbanken ASA;;sorbanken.no, ny.no;01.02.2019;Ja\n\
Ny Forsikring;;forsikring.no;2026-11-01;\n\
Ugyldig;;not a domain;;\n";

fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/report")
        .join(name);
    if std::env::var_os("BITS_TLS_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!("no golden file {name}; run `BITS_TLS_BLESS=1 cargo test --test report`")
    });
    assert!(
        actual == expected,
        "{name} differs from its golden file (BITS_TLS_BLESS=1 rewrites it)\n--- expected\n{expected}\n--- actual\n{actual}"
    );
}

/// Replaces the value of every `"key": "…"` (JSON) with `"key": "<KEY>"`.
fn blank_json(text: &str, key: &str) -> String {
    let pat = format!("\"{key}\": \"");
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(&pat) {
        out.push_str(&rest[..i + pat.len()]);
        rest = &rest[i + pat.len()..];
        let end = rest.find('"').unwrap();
        out.push('<');
        out.push_str(&key.to_uppercase());
        out.push('>');
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn stdout(cmd: &mut assert_cmd::Command, code: i32) -> String {
    let out = cmd.assert().code(code).get_output().stdout.clone();
    String::from_utf8(out).unwrap()
}

/// A mail-config directory with the list as a file beside the config (so every path shown is relative).
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn new() -> Work {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("liste.csv"), V1).unwrap();
        std::fs::write(
            dir.path().join("bits-tls.toml"),
            "source = \"liste.csv\"\n\
             [[extra_domains]]\ndomain = \"partner.example.no\"\nreason = \"bilateral agreement\"\n\
             [[exclude]]\ndomain = \"sorbanken.no\"\nreason = \"MX certificate expired, ticket 1235\"\nexpires = 2099-12-31\n\
             [[override]]\ndomain = \"bits.no\"\nreason = \"publishes TLSA under DNSSEC\"\npostfix_level = \"dane-only\"\n\n\
             [[output]]\ntarget = \"postfix-policy\"\npath = \"policy\"\nhook = [\"true\", \"{path}\"]\n\
             [[output]]\ntarget = \"exim-domains\"\npath = \"exim\"\n",
        )
        .unwrap();
        Work { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn bits(&self, args: &[&str]) -> assert_cmd::Command {
        let mut c = bits();
        c.current_dir(self.dir.path())
            .args(["--config", "bits-tls.toml"])
            .args(args);
        c
    }
}

#[test]
fn fetch_in_every_format() {
    let w = Work::new();
    for (format, file) in [
        ("text", "fetch.txt"),
        ("json", "fetch.json"),
        ("csv", "fetch.csv"),
    ] {
        let out = stdout(
            &mut w.bits(&["fetch", "--source", "liste.csv", "--format", format]),
            0,
        );
        golden(file, &blank_json(&out, "fetched_at"));
    }
}

#[test]
fn sync_diff_and_check_in_every_format() {
    let w = Work::new();
    let first = stdout(&mut w.bits(&["sync"]), 0);
    golden("sync-first.txt", &first);

    std::fs::write(w.path("liste.csv"), V2).unwrap();
    for (format, file) in [
        ("text", "diff.txt"),
        ("json", "diff.json"),
        ("markdown", "diff.md"),
    ] {
        let out = stdout(&mut w.bits(&["diff", "--format", format]), 2);
        golden(file, &blank_json(&out, "fetched_at"));
    }
    let second = stdout(&mut w.bits(&["sync"]), 0);
    golden("sync-change.txt", &second);

    // A fixed state time, so that the age is known; and one file edited by hand.
    let state_path = w.path("bits-tls.state.json");
    // Pretty-printed first (the state is written compact; the pretty form reads the same).
    let state = std::fs::read_to_string(&state_path).unwrap();
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    let state = serde_json::to_string_pretty(&state).unwrap();
    let fixed = "2026-01-02T03:04:05Z";
    let state = ["last_checked", "last_changed", "fetched_at"]
        .iter()
        .fold(state, |s, k| {
            blank_json(&s, k).replace(&format!("<{}>", k.to_uppercase()), fixed)
        });
    std::fs::write(&state_path, state).unwrap();
    let age = (chrono::Utc::now()
        - chrono::DateTime::parse_from_rfc3339(fixed)
            .unwrap()
            .to_utc())
    .num_days();
    let exim = std::fs::read_to_string(w.path("exim")).unwrap();
    std::fs::write(w.path("exim"), exim.replace("bits.no\n", "")).unwrap();
    for (format, file) in [
        ("text", "check.txt"),
        ("json", "check.json"),
        ("markdown", "check.md"),
    ] {
        let out = stdout(&mut w.bits(&["check", "--format", format]), 2)
            .replace(&format!("({age} days ago)"), "(AGE days ago)")
            .replace(&format!("\"age_days\": {age},"), "\"age_days\": AGE,");
        golden(file, &out);
    }
}

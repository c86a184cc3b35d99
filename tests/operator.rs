//! What a 3 a.m. on-call admin or a pipeline trips over: hints that cannot hurt, no silent success,
//! no lost exit code.

mod support;

use predicates::prelude::*;
use support::{bits, example_csv};

#[test]
fn config_errors_name_the_table_suggest_the_key_and_never_suggest_overwriting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bits-tls.toml");
    let text = "[[override]]\ndomain = \"a.no\"\nreason = \"r\"\n[[override]]\ndomain = \"b.no\"\nreason = \"r\"\npostfix_levle = \"verify\"\n";
    std::fs::write(&path, text).unwrap();
    let out = bits()
        .args(["--config", path.to_str().unwrap(), "diff"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("(in `[[override]]` #2)")
                .and(predicate::str::contains("did you mean `postfix_level`?"))
                .and(predicate::str::contains("init --force").not()),
        );
    drop(out);
    std::fs::write(&path, "timeout = 0\n").unwrap();
    bits()
        .args(["--config", path.to_str().unwrap(), "diff"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("hint: `bits-tls init -` prints")
                .and(predicate::str::contains("--force").not()),
        );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "timeout = 0\n");
}

#[test]
fn init_prints_with_a_dash_follows_config_and_keeps_a_backup() {
    let dir = tempfile::tempdir().unwrap();
    let out = bits()
        .current_dir(dir.path())
        .args(["init", "-"])
        .assert()
        .success();
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains("[[output]]"));
    assert!(!dir.path().join("-").exists(), "`-` is stdout, not a file");
    let cfg = dir.path().join("etc-bits-tls.toml");
    bits()
        .current_dir(dir.path())
        .args(["--config", cfg.to_str().unwrap(), "init"])
        .assert()
        .success();
    assert!(cfg.is_file(), "init writes where --config points");
    std::fs::write(&cfg, "# mine\n").unwrap();
    bits()
        .current_dir(dir.path())
        .args(["--config", cfg.to_str().unwrap(), "init"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not overwritten"));
    bits()
        .current_dir(dir.path())
        .args(["--config", cfg.to_str().unwrap(), "init", "--force"])
        .assert()
        .success();
    let backup = dir.path().join("etc-bits-tls.toml.bak");
    assert_eq!(std::fs::read_to_string(backup).unwrap(), "# mine\n");
}

#[test]
fn sync_and_check_without_outputs_fail_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for (cmd, says) in [
        ("sync", "nothing to write"),
        ("check", "nothing to compare"),
    ] {
        bits()
            .current_dir(dir.path())
            .arg(cmd)
            .arg("--source")
            .arg(example_csv())
            .assert()
            .code(1)
            .stderr(
                predicate::str::contains(says)
                    .and(predicate::str::contains("no configuration file was found"))
                    .and(predicate::str::contains("--config")),
            );
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no state, history or lock left in the working directory"
    );
    std::fs::write(dir.path().join("bits-tls.toml"), "own_domains = []\n").unwrap();
    bits()
        .current_dir(dir.path())
        .args(["sync", "--source"])
        .arg(example_csv())
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "add [[output]] entries to `bits-tls.toml`",
        ));
}

#[test]
fn render_writes_atomically_and_refuses_an_empty_list() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("policy");
    bits()
        .args([
            "render",
            "postfix-policy",
            "-q",
            "--output",
            out.to_str().unwrap(),
            "--source",
        ])
        .arg(example_csv())
        .assert()
        .success()
        .stdout("");
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .contains("bits.no verify"));
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "Virksomhet;Domene\nIngen;not a domain\n").unwrap();
    for cmd in ["render", "fetch"] {
        let mut c = bits();
        c.arg(cmd);
        if cmd == "render" {
            c.args(["postfix-policy", "--output", out.to_str().unwrap()]);
        }
        c.args(["--source", empty.to_str().unwrap()])
            .assert()
            .code(1)
            .stderr(
                predicate::str::contains("holds no domains")
                    .and(predicate::str::contains("--allow-empty")),
            );
    }
    assert!(
        std::fs::read_to_string(&out)
            .unwrap()
            .contains("bits.no verify"),
        "the file is as it was"
    );
    bits()
        .args([
            "fetch",
            "--allow-empty",
            "--source",
            empty.to_str().unwrap(),
        ])
        .assert()
        .success();
}

#[test]
fn template_mistakes_are_named_before_the_download() {
    let dir = tempfile::tempdir().unwrap();
    let tpl = dir.path().join("mine.j2");
    std::fs::write(
        &tpl,
        "# {{ tool.name }}\n{% for d in domains %}{{ d.nmae }}\n{% endfor %}",
    )
    .unwrap();
    bits()
        .args(["render", "--template", tpl.to_str().unwrap(), "--source"])
        .arg(example_csv())
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("mine.j2")
                .and(predicate::str::contains("line 2"))
                .and(predicate::str::contains("`d.nmae`")),
        );
    // A missing template or templates directory fails before any request is made.
    let missing = dir.path().join("nope.j2");
    let server = support::Server::start(vec![]);
    for args in [
        vec!["render", "--template", missing.to_str().unwrap()],
        vec!["render", "postfix-policy", "--templates", "/no/such/dir"],
        vec![
            "render",
            "postfix-policy",
            "--templates",
            dir.path().to_str().unwrap(),
        ],
    ] {
        bits()
            .args(&args)
            .args(["--allow-http", "--source", &server.url("/tls")])
            .assert()
            .code(1);
    }
    assert!(server.hits("/tls").is_empty(), "nothing was downloaded");
}

#[test]
fn a_large_first_sync_is_summarised_for_the_cron_mail() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("Virksomhet;Domene\n");
    for i in 0..30 {
        csv.push_str(&format!("Deltaker {i};d{i:02}.no\n"));
    }
    std::fs::write(dir.path().join("liste.csv"), csv).unwrap();
    let out = bits()
        .current_dir(dir.path())
        .args(["sync", "-s", "liste.csv", "-o", "postfix-policy=policy"])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(
        text.contains("  + d19.no\n") && !text.contains("  + d20.no\n"),
        "{text}"
    );
    assert!(text.contains("  + … and 10 more"), "{text}");
}

#[test]
fn short_flags_help_command_and_dry_run_formats() {
    bits()
        .args(["help", "sync"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--dry-run"));
    let dir = tempfile::tempdir().unwrap();
    let out = bits()
        .current_dir(dir.path())
        .args([
            "sync",
            "-n",
            "-f",
            "json",
            "-o",
            "postfix-policy=policy",
            "-s",
        ])
        .arg(example_csv())
        .assert()
        .code(2);
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["version"], 1);
    assert!(
        !dir.path().join("policy").exists(),
        "a dry run writes nothing"
    );
    bits()
        .args(["sync", "-f", "json"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--dry-run"));
}

#[test]
fn a_saved_page_and_its_list_are_named_the_same_way() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = bits()
        .current_dir(root)
        .args(["render", "postfix-policy", "-q", "-s", "examples/tls.html"])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(
        text.contains("# List:     examples/domeneliste-tvungen-tls.csv\n"),
        "{text}"
    );
    assert!(text.contains("# Page:     examples/tls.html"), "{text}");
}

#[test]
fn the_reader_and_options_say_what_is_wrong() {
    let csv = example_csv();
    bits()
        .args(["fetch", "--columns", "domain=99", "-s"])
        .arg(&csv)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "names column 99, but the file has",
        ));
    bits()
        .args(["fetch", "--columns", "organization=1,organization=2", "-s"])
        .arg(&csv)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("`organization` is given twice"));
    bits()
        .args(["render", "postfix-policy", "--postfix-match", "x y", "-s"])
        .arg(&csv)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "option `postfix.match` (`--postfix-match`)",
        ));
    bits()
        .args(["fetch", "-q", "--max-size", "8MiB", "-s"])
        .arg(&csv)
        .assert()
        .success();
    bits()
        .args(["fetch", "-q", "--max-size", "8XB", "-s"])
        .arg(&csv)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not a size unit"));
}

#[test]
fn a_hook_that_cannot_run_is_found_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bits-tls.toml"),
        format!(
            "source = \"{}\"\n[[output]]\ntarget = \"postfix-policy\"\npath = \"policy\"\nhook = [\"/usr/sbin/postmap-typo\", \"hash:{{path}}\"]\n",
            example_csv().display()
        ),
    )
    .unwrap();
    bits()
        .current_dir(dir.path())
        .arg("diff")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "`/usr/sbin/postmap-typo` cannot be run",
        ));
    bits()
        .current_dir(dir.path())
        .arg("sync")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("nothing was changed"));
    assert!(!dir.path().join("policy").exists());
    assert!(!dir.path().join("bits-tls.state.json").exists());
}

#[test]
fn every_local_adjustment_is_visible_in_files_history_and_check() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bits-tls.toml"),
        format!(
            "source = \"{}\"\n\
             [[exclude]]\ndomain = \"bits.no\"\nreason = \"ticket 7\"\nexpires = 2099-01-31\n\
             [[override]]\ndomain = \"ghost.example.no\"\nreason = \"typo\"\npostfix_level = \"secure\"\n\
             [[output]]\ntarget = \"postfix-policy\"\npath = \"policy\"\n",
            example_csv().display()
        ),
    )
    .unwrap();
    bits()
        .current_dir(dir.path())
        .arg("sync")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "local: excluded bits.no: ticket 7 (until 2099-01-31)",
        ))
        .stderr(predicate::str::contains(
            "the override for `ghost.example.no` does nothing",
        ));
    let policy = std::fs::read_to_string(dir.path().join("policy")).unwrap();
    assert!(
        policy.contains("# Local:    excluded bits.no: ticket 7 (until 2099-01-31)\n"),
        "{policy}"
    );
    let history = std::fs::read_to_string(dir.path().join("bits-tls.history.jsonl")).unwrap();
    assert!(
        history.contains("\"local\":[\"excluded bits.no: ticket 7 (until 2099-01-31)\"]"),
        "{history}"
    );
    bits()
        .current_dir(dir.path())
        .arg("check")
        .assert()
        .success()
        .stdout(predicate::str::contains("excluded bits.no: ticket 7"));
    // An exclusion and an addition of one domain contradict each other.
    std::fs::write(
        dir.path().join("bits-tls.toml"),
        "[[exclude]]\ndomain = \"a.no\"\nreason = \"r\"\n[[extra_domains]]\ndomain = \"A.no\"\nreason = \"r\"\n",
    )
    .unwrap();
    bits()
        .current_dir(dir.path())
        .arg("diff")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "both in [[exclude]] and in [[extra_domains]]",
        ));
}

#[test]
fn diffs_are_coloured_only_when_colour_is_on() {
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| -> String {
        let out = bits()
            .current_dir(dir.path())
            .args(["diff", "-q", "-o", "exim-domains=x", "-s"])
            .arg(example_csv())
            .args(extra)
            .assert()
            .code(2);
        String::from_utf8(out.get_output().stdout.clone()).unwrap()
    };
    assert!(run(&["--color", "always"]).contains("\u{1b}[32m+bits.no\u{1b}[0m\n"));
    assert!(
        !run(&[]).contains('\u{1b}'),
        "NO_COLOR is set by the test harness"
    );
    assert!(!run(&["--color", "always", "-f", "json"]).contains('\u{1b}'));
}

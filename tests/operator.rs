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

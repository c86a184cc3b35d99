//! The README's examples stay true: its configuration example is accepted as it stands, and its first
//! command works on the bundled example.

mod support;

use predicates::prelude::*;
use support::bits;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

#[test]
fn configuration_example_is_accepted() {
    let text = readme();
    let start = text.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let block = &text[start..start + text[start..].find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bits-tls.toml");
    std::fs::write(&config, block).unwrap();
    // diff changes nothing, so the example's /etc paths are safe; the list comes from the bundled example.
    bits()
        .current_dir(dir.path())
        .args([
            "diff",
            "--config",
            config.to_str().unwrap(),
            "--source",
            support::example_csv().to_str().unwrap(),
        ])
        .assert()
        .code(2)
        .stdout(predicate::str::contains(
            "create /etc/postfix/bits_tls_policy",
        ))
        .stderr(predicate::str::contains(
            "own domain `example.no` is not on the list",
        ));
}

#[test]
fn the_first_command_runs_offline_on_the_bundled_example() {
    let text = readme();
    let line = text
        .lines()
        .find(|l| l.starts_with("cargo run --release -- "))
        .expect("the first command");
    let args: Vec<&str> = line["cargo run --release -- ".len()..]
        .split('#')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(args[0], "render");
    bits()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(&args)
        .assert()
        .success()
        .stdout(predicate::str::contains("bits.no verify protocols="))
        .stderr(predicate::str::contains("warning: line 17"));
}

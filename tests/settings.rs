//! Defaults < configuration file < environment < flags, for values and for booleans in both directions,
//! and the file's values checked as strictly as the flags'.

mod support;

use predicates::prelude::*;
use support::{bits, example_csv};

fn with_config(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bits-tls.toml"), text).unwrap();
    dir
}

fn render(dir: &tempfile::TempDir, args: &[&str]) -> String {
    let out = bits()
        .current_dir(dir.path())
        .arg("render")
        .args(args)
        .arg("--source")
        .arg(example_csv())
        .assert()
        .success();
    String::from_utf8(out.get_output().stdout.clone()).unwrap()
}

#[test]
fn a_flag_turns_off_a_boolean_the_file_turns_on() {
    let dir = with_config("subdomains = true\n[exchange_online]\ninbound = true\n");
    let file_says = render(&dir, &["exim-domains"]);
    assert!(file_says.lines().any(|l| l == "*.bits.no"), "{file_says}");
    let flag_says = render(&dir, &["exim-domains", "--no-subdomains"]);
    assert!(
        !flag_says.lines().any(|l| l.starts_with("*.")),
        "{flag_says}"
    );
    assert!(render(&dir, &["exchange-online"]).contains("New-InboundConnector"));
    assert!(
        !render(&dir, &["exchange-online", "--no-exo-inbound"]).contains("New-InboundConnector")
    );
    // The last of a pair wins on the command line.
    let last = render(&dir, &["exim-domains", "--no-subdomains", "--subdomains"]);
    assert!(last.lines().any(|l| l == "*.bits.no"));
}

#[test]
fn flags_override_the_file_which_overrides_the_defaults() {
    let dir = with_config("[postfix]\nlevel = \"secure\"\nprotocols = \"modern\"\n");
    let file_says = render(&dir, &["postfix-policy"]);
    assert!(
        file_says.contains("bits.no secure protocols=>=TLSv1.2\n"),
        "{file_says}"
    );
    let flag_says = render(&dir, &["postfix-policy", "--postfix-level", "verify"]);
    assert!(
        flag_says.contains("bits.no verify protocols=>=TLSv1.2\n"),
        "{flag_says}"
    );
    let none = with_config("");
    assert!(render(&none, &["postfix-policy"])
        .contains("bits.no verify protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1\n"));
}

#[test]
fn the_file_is_checked_like_the_flags() {
    for (text, says) in [
        ("timeout = 0\n", "timeout: must be from 1 to 3600"),
        ("max_size = 0\n", "max_size: must be at least 1"),
        (
            "[safety]\nmax_removed_percent = 150\n",
            "max_removed_percent: must be from 0 to 100",
        ),
        ("columns = \"domain=0\"\n", "column numbers start at 1"),
        (
            "own_domains = [\"not a domain\"]\n",
            "domain `not a domain`",
        ),
        ("[exchange]\ntls_domain = \"x y\"\n", "domain `x y`"),
    ] {
        let dir = with_config(text);
        bits()
            .current_dir(dir.path())
            .args(["render", "postfix-policy", "--source"])
            .arg(example_csv())
            .assert()
            .code(1)
            .stderr(predicate::str::contains(says));
    }
}

#[test]
fn config_domains_are_read_as_people_write_them() {
    let dir = with_config(
        "[[extra_domains]]\ndomain = \"Partner.Example.NO.\"\nreason = \"ticket 1\"\n\
         [[exclude]]\ndomain = \"BITS.no\"\nreason = \"ticket 2\"\n",
    );
    let out = bits()
        .current_dir(dir.path())
        .args(["diff", "--output", "postfix-policy=policy", "--source"])
        .arg(example_csv())
        .assert()
        .code(2);
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(text.contains("+partner.example.no verify"), "{text}");
    assert!(!text.contains("+bits.no verify"), "{text}");
}

//! Your own domains never reach the inbound (5.2.4) rules, or the bank refuses its own mail: `render
//! --own-domain` and `own_domains` in the configuration leave them out of the Exim domain list (which the
//! ACL reads) and of the Postfix senders table, checked with the real postmap. (`sync` and Exim's ACL in
//! Debian's configuration: tests/exim_debian.rs.)

mod support;

use support::mta::{text, write, PostfixDir};
use support::{example_csv, render};

/// Which of `keys` postmap finds in the senders table, compiled once.
fn postfix_refuses(table: &str, keys: &[&str]) -> Vec<bool> {
    let pf = PostfixDir::new("");
    let path = write(pf.path(), "bits_tls_senders", table);
    let map = format!("hash:{path}");
    let out = pf.postmap(&[&map]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    keys.iter()
        .map(|key| {
            let out = pf.postmap(&["-q", key, &map]);
            match out.status.code() {
                Some(0) => text(&out.stdout).contains("reject_plaintext_session"),
                Some(1) => false,
                other => panic!("postmap -q {key}: {other:?}"),
            }
        })
        .collect()
}

fn exim_lists(list: &str, domain: &str) -> bool {
    list.lines().any(|l| l == domain)
}

#[test]
fn own_domains_are_left_out_of_the_inbound_rules() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "bits-tls.toml", "own_domains = [\"fno.no\"]\n");
    let flag: &[&str] = &["--own-domain", "bits.no", "--own-domain", "BITS.no."];
    let with_config: &[&str] = &["--config", &config];

    let senders = render("postfix-senders", &example_csv(), &[]);
    let domains = render("exim-domains", &example_csv(), &[]);
    assert_eq!(
        postfix_refuses(&senders, &["bits.no", "fno.no"]),
        [true, true]
    );
    for own in ["bits.no", "fno.no"] {
        assert!(exim_lists(&domains, own), "{own} is on the list");
    }

    let senders = render("postfix-senders", &example_csv(), flag);
    let domains = render("exim-domains", &example_csv(), flag);
    // Only the own domain goes.
    assert_eq!(
        postfix_refuses(&senders, &["bits.no", "fno.no"]),
        [false, true]
    );
    assert!(!exim_lists(&domains, "bits.no"));
    assert!(exim_lists(&domains, "fno.no"));

    let senders = render("postfix-senders", &example_csv(), with_config);
    let domains = render("exim-domains", &example_csv(), with_config);
    assert_eq!(
        postfix_refuses(&senders, &["bits.no", "fno.no"]),
        [true, false]
    );
    assert!(!exim_lists(&domains, "fno.no"));
    assert!(exim_lists(&domains, "bits.no"));

    // An own domain that is not on the list is a warning, as in sync.
    support::bits()
        .args([
            "render",
            "exim-domains",
            "--own-domain",
            "not-listed.no",
            "--source",
        ])
        .arg(example_csv())
        .assert()
        .success()
        .stderr(predicates::str::contains(
            "own domain `not-listed.no` is not on the list",
        ));
}

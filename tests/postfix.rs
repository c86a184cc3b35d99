//! The Postfix tables checked by the real Postfix 3.7 (unpacked by scripts/setup-test-tools.sh):
//! postmap compiles them and answers every listed domain, postconf accepts the main.cf lines from their
//! headers. (A running Postfix with the senders table is in tests/delivery.rs.)

mod support;

use predicates::prelude::*;
use support::mta::{text, wiring_lines, write, PostfixDir};
use support::{bits, example_csv, listed_domains, render};

const LEGACY: &str = "verify protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1";

/// Compiles `table` with postmap (no warnings allowed) and returns a lookup function.
fn compile<'a>(
    pf: &'a PostfixDir,
    name: &str,
    table: &str,
) -> impl Fn(&str) -> Option<String> + 'a {
    let path = write(pf.path(), name, table);
    let map = format!("hash:{path}");
    let out = pf.postmap(&[&map]);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "postmap {name}: {}",
        text(&out.stderr)
    );
    move |key: &str| {
        let out = pf.postmap(&["-q", key, &map]);
        match out.status.code() {
            Some(0) => Some(text(&out.stdout).trim_end().to_string()),
            Some(1) => None,
            other => panic!("postmap -q {key}: exit {other:?}: {}", text(&out.stderr)),
        }
    }
}

#[test]
fn postmap_compiles_the_policy_and_answers_every_domain() {
    let pf = PostfixDir::new("");
    let domains = listed_domains(&example_csv());
    assert_eq!(domains.len(), 15);
    let lookup = compile(
        &pf,
        "policy",
        &render("postfix-policy", &example_csv(), &[]),
    );
    for d in &domains {
        assert_eq!(lookup(d).as_deref(), Some(LEGACY), "{d}");
        assert_eq!(
            lookup(&format!(".{d}")).as_deref(),
            Some(LEGACY),
            "subdomains are covered, as in the senders table"
        );
    }
    assert_eq!(lookup("not-listed.no"), None);
    assert_eq!(lookup(".not-listed.no"), None);
    assert_eq!(
        lookup("xn--blbrbank-b0al.no").as_deref(),
        Some(LEGACY),
        "IDN as A-label"
    );
    // Postfix (smtputf8_enable = yes) looks up the UTF-8 form for SMTPUTF8 mail.
    assert_eq!(
        lookup("blåbærbank.no").as_deref(),
        Some(LEGACY),
        "IDN as U-label"
    );
    assert_eq!(
        lookup("BLÅBÆRBANK.no").as_deref(),
        Some(LEGACY),
        "case-folded"
    );
    assert_eq!(lookup(".blåbærbank.no").as_deref(), Some(LEGACY));
    assert_eq!(
        lookup("BITS.NO").as_deref(),
        Some(LEGACY),
        "keys are case-folded"
    );
}

#[test]
fn postmap_policy_variants() {
    let pf = PostfixDir::new("");
    let args = [
        "--subdomains",
        "--postfix-protocols",
        "modern",
        "--postfix-level",
        "secure",
        "--postfix-match",
        "nexthop:dot-nexthop:.protection.outlook.com",
    ];
    let lookup = compile(
        &pf,
        "policy",
        &render("postfix-policy", &example_csv(), &args),
    );
    let want = "secure protocols=>=TLSv1.2 match=nexthop:dot-nexthop:.protection.outlook.com";
    assert_eq!(lookup("bits.no").as_deref(), Some(want));
    assert_eq!(
        lookup(".bits.no").as_deref(),
        Some(want),
        "the subdomain key"
    );
    assert_eq!(lookup("fno.no").as_deref(), Some(want));

    let lookup = compile(
        &pf,
        "dane",
        &render(
            "postfix-policy",
            &example_csv(),
            &["--postfix-level", "dane-only"],
        ),
    );
    assert_eq!(
        lookup("bits.no").as_deref(),
        Some("dane-only protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1")
    );
}

#[test]
fn postmap_compiles_the_senders_table() {
    let pf = PostfixDir::new("");
    let lookup = compile(
        &pf,
        "senders",
        &render("postfix-senders", &example_csv(), &[]),
    );
    for d in listed_domains(&example_csv()) {
        for key in [d.clone(), format!(".{d}")] {
            assert_eq!(
                lookup(&key).as_deref(),
                Some("reject_plaintext_session"),
                "{key}"
            );
        }
    }
    assert_eq!(
        lookup("blåbærbank.no").as_deref(),
        Some("reject_plaintext_session")
    );
    assert_eq!(lookup("not-listed.no"), None);
}

#[test]
fn postconf_accepts_the_wiring_lines() {
    let policy = render("postfix-policy", &example_csv(), &[]);
    let senders = render("postfix-senders", &example_csv(), &[]);
    let mut lines = wiring_lines(&policy);
    lines.extend(wiring_lines(&senders));
    let names: Vec<&str> = lines.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "smtp_tls_security_level",
            "smtp_tls_CAfile",
            "smtp_tls_policy_maps",
            "smtp_tls_loglevel",
            "delay_warning_time",
            "smtpd_sender_restrictions",
            "plaintext_reject_code"
        ]
    );
    let main_cf: String = lines.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
    let pf = PostfixDir::new(&main_cf);
    for (k, v) in &lines {
        let out = pf.postconf(&["-h", k]);
        assert!(out.status.success(), "postconf {k}: {}", text(&out.stderr));
        assert!(
            !text(&out.stderr).contains("warning"),
            "postconf {k}: {}",
            text(&out.stderr)
        );
        assert_eq!(text(&out.stdout).trim(), v, "{k}");
    }
    // Postfix's own consistency check of restriction lists and maps.
    let out = pf.postconf(&["-n"]);
    assert!(
        out.status.success() && !text(&out.stderr).contains("warning"),
        "{}",
        text(&out.stderr)
    );
}

/// The header's `postconf -e` line, run with this test's Postfix: an existing table stays first.
#[test]
fn the_documented_append_keeps_an_existing_policy_table() {
    let pf = PostfixDir::new("");
    let bilateral = write(
        pf.path(),
        "bilateral",
        "partner.example secure match=nexthop\nbits.no dane-only\n",
    );
    assert!(pf.postmap(&[&format!("hash:{bilateral}")]).status.success());
    let ours = pf.path().join("bits_tls_policy").display().to_string();
    let policy = render(
        "postfix-policy",
        &example_csv(),
        &["--postfix-policy-path", &ours],
    );
    write(pf.path(), "bits_tls_policy", &policy);
    assert!(pf.postmap(&[&format!("hash:{ours}")]).status.success());
    let main_cf = pf.path().join("main.cf");
    let before = std::fs::read_to_string(&main_cf).unwrap();
    std::fs::write(
        &main_cf,
        format!("{before}smtp_tls_policy_maps = hash:{bilateral}\n"),
    )
    .unwrap();
    let command = policy
        .lines()
        .find_map(|l| {
            l.trim_start_matches('#')
                .trim()
                .strip_prefix("postconf -e ")
        })
        .expect("the header gives the append command");
    let root = support::mta::postfix_root();
    let postconf = format!(
        "{} -c {}",
        root.join("usr/sbin/postconf").display(),
        pf.path().display()
    );
    let script = format!("postconf -e {command}").replace("postconf ", &format!("{postconf} "));
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .env("LD_LIBRARY_PATH", root.join("usr/lib/postfix"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{script}: {}", text(&out.stderr));
    let maps = pf.postconf(&["-h", "smtp_tls_policy_maps"]);
    let maps = text(&maps.stdout);
    let maps: Vec<&str> = maps.split_whitespace().collect();
    assert_eq!(
        maps,
        [format!("hash:{bilateral}"), format!("hash:{ours}")],
        "the existing table first, then the list"
    );
    // No duplicate setting ("overriding earlier entry"), and both tables answer.
    let n = pf.postconf(&["-n"]);
    assert!(
        n.status.success() && !text(&n.stderr).contains("warning"),
        "{}",
        text(&n.stderr)
    );
    let q = |key: &str, map: &str| text(&pf.postmap(&["-q", key, &format!("hash:{map}")]).stdout);
    assert_eq!(
        q("partner.example", &bilateral).trim(),
        "secure match=nexthop"
    );
    assert_eq!(
        q("bits.no", &bilateral).trim(),
        "dane-only",
        "first match wins"
    );
    assert_eq!(q("bits.no", &ours).trim(), LEGACY);
}

#[test]
fn wiring_follows_the_options() {
    let policy = render(
        "postfix-policy",
        &example_csv(),
        &[
            "--postfix-ca-file",
            "/etc/pki/tls/certs/ca-bundle.crt",
            "--postfix-policy-path",
            "/srv/mail/bits_policy",
            "--postfix-relay",
            "[Relay.Bank.example]:587",
        ],
    );
    let lines = wiring_lines(&policy);
    let get = |k: &str| lines.iter().find(|(n, _)| n == k).unwrap().1.clone();
    assert_eq!(get("smtp_tls_CAfile"), "/etc/pki/tls/certs/ca-bundle.crt");
    assert_eq!(get("smtp_tls_policy_maps"), "hash:/srv/mail/bits_policy");
    assert_eq!(get("delay_warning_time"), "4h");
    assert_eq!(get("smtp_tls_loglevel"), "1");
    assert!(policy.contains("postmap hash:/srv/mail/bits_policy"));
    assert!(!policy.contains("/etc/postfix/bits_tls_policy"));
    // The relay's entry, as Postfix looks it up for `relayhost = [relay.bank.example]:587`.
    let pf = PostfixDir::new("");
    let lookup = compile(&pf, "policy", &policy);
    assert_eq!(lookup("[relay.bank.example]:587").as_deref(), Some(LEGACY));
    bits()
        .args(["render", "postfix-policy", "--source"])
        .arg(example_csv())
        .args(["--postfix-relay", "relay bank"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("postfix.relay"));
}

/// A template that drops the floor, lowers the level or adds a stray non-ASCII key is refused, naming
/// the line; nothing is printed.
#[test]
fn the_policy_check_is_semantic() {
    let dir = tempfile::tempdir().unwrap();
    for (template, needle) in [
        (
            "{% for d in domains %}{{ d.name }} verify\n{% endfor %}",
            "no `protocols=` TLS 1.2 floor",
        ),
        (
            "{% for d in domains %}{{ d.name }} verify protocols=!SSLv2:!SSLv3:!TLSv1\n{% endfor %}",
            "does not keep TLS below 1.2 out",
        ),
        (
            "{% for d in domains %}{{ d.name }} verify protocols=>=TLSv1.2\n{% endfor %}",
            "needs Postfix 3.6",
        ),
        (
            "{% for d in domains %}{{ d.name }} encrypt protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1\n{% endfor %}",
            "level `encrypt`",
        ),
        (
            "{% for d in domains %}{{ d.name }} {{ postfix.policy_value }}\n{% endfor %}blåbær.no {{ postfix.policy_value }}\n",
            "not the UTF-8 form of a domain in this table",
        ),
    ] {
        std::fs::write(dir.path().join("postfix-policy.j2"), template).unwrap();
        bits()
            .args(["render", "postfix-policy", "--source"])
            .arg(example_csv())
            .arg("--templates")
            .arg(dir.path())
            .assert()
            .code(1)
            .stdout("")
            .stderr(predicate::str::contains("failed its check at line"))
            .stderr(predicate::str::contains(needle));
    }
}

/// `encrypt` only per domain, with a reason, and a warning on every run.
#[test]
fn encrypt_needs_an_override_and_warns() {
    bits()
        .args(["render", "postfix-policy", "--source"])
        .arg(example_csv())
        .args(["--postfix-level", "encrypt"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("postfix.level"));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bits-tls.toml");
    std::fs::write(
        &config,
        "[[override]]\ndomain = \"bits.no\"\nreason = \"private CA, ticket 9\"\npostfix_level = \"encrypt\"\n",
    )
    .unwrap();
    for _ in 0..2 {
        let out = bits()
            .args(["render", "postfix-policy", "--source"])
            .arg(example_csv())
            .arg("--config")
            .arg(&config)
            .assert()
            .success()
            .stderr(predicate::str::contains(
                "[[override]] for bits.no sets the Postfix level `encrypt`",
            ));
        let policy = text(&out.get_output().stdout);
        assert!(policy.contains("\nbits.no encrypt protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1\n"));
    }
}

/// diff and sync know where the tables go: the headers name those paths, and a CA file this machine
/// lacks is warned about.
#[test]
fn headers_name_the_output_paths_and_a_missing_ca_file_warns() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("maps/policy");
    let senders = dir.path().join("maps/senders");
    std::fs::create_dir(dir.path().join("maps")).unwrap();
    bits()
        .current_dir(dir.path())
        .args(["sync", "--source"])
        .arg(example_csv())
        .arg("--output")
        .arg(format!("postfix-policy={}", policy.display()))
        .arg("--output")
        .arg(format!("postfix-senders={}", senders.display()))
        .args(["--postfix-ca-file", "/nonexistent/ca-bundle.crt"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "the CA file `/nonexistent/ca-bundle.crt`",
        ));
    let p = std::fs::read_to_string(&policy).unwrap();
    let s = std::fs::read_to_string(&senders).unwrap();
    let maps = wiring_lines(&p);
    assert!(
        maps.contains(&(
            "smtp_tls_policy_maps".into(),
            format!("hash:{}", policy.display())
        )),
        "{maps:?}"
    );
    assert!(p.contains(&format!("postmap hash:{}", policy.display())));
    assert!(s.contains(&format!("check_sender_access hash:{}", senders.display())));
    assert!(!p.contains("/etc/postfix/") && !s.contains("/etc/postfix/"));
    // A relative path (a mail-config repository) is not where Postfix reads the table: the header keeps
    // the configured path, so the bytes do not depend on where the checkout is.
    bits()
        .current_dir(dir.path())
        .args(["sync", "-q", "--source"])
        .arg(example_csv())
        .args(["--output", "postfix-policy=maps/relative"])
        .assert()
        .success();
    let relative = std::fs::read_to_string(dir.path().join("maps/relative")).unwrap();
    assert!(relative.contains("smtp_tls_policy_maps = hash:/etc/postfix/bits_tls_policy\n"));
    // An explicit path wins over the output's, and an existing CA file is not warned about.
    let ca = write(dir.path(), "ca.pem", "");
    bits()
        .current_dir(dir.path())
        .args(["diff", "--source"])
        .arg(example_csv())
        .arg("--output")
        .arg(format!("postfix-policy={}", policy.display()))
        .args(["--postfix-policy-path", "/etc/postfix/elsewhere"])
        .args(["--postfix-ca-file", &ca])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("CA file").not())
        .stdout(predicate::str::contains("hash:/etc/postfix/elsewhere"));
}

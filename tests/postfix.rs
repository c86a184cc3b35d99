//! The Postfix tables checked by the real Postfix 3.7 (unpacked by scripts/setup-test-tools.sh):
//! postmap compiles them and answers every listed domain, postconf accepts the main.cf lines from their
//! headers, and a running Postfix with the senders table refuses plaintext mail from a listed domain.

mod support;

use support::mta::{text, try_sender, write, PostfixDir, PostfixInstance};
use support::{example_csv, listed_domains, render, TestPki};

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
            lookup(&format!("sub.{d}")),
            None,
            "subdomains are off by default"
        );
    }
    assert_eq!(lookup("not-listed.no"), None);
    assert_eq!(
        lookup("xn--blbrbank-b0al.no").as_deref(),
        Some(LEGACY),
        "IDN as A-label"
    );
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
        assert_eq!(
            lookup(&d).as_deref(),
            Some("reject_plaintext_session"),
            "{d}"
        );
    }
    assert_eq!(lookup("not-listed.no"), None);
}

/// The `#   name = value` lines under "main.cf" in a rendered header.
fn wiring_lines(rendered: &str) -> Vec<(String, String)> {
    rendered
        .lines()
        .skip_while(|l| !l.starts_with("# main.cf"))
        .skip(1)
        .take_while(|l| l.starts_with("#   "))
        .map(|l| {
            let (k, v) = l
                .trim_start_matches("#   ")
                .split_once(" = ")
                .expect("name = value");
            (k.to_string(), v.to_string())
        })
        .collect()
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

#[test]
fn running_postfix_refuses_plaintext_from_listed_senders() {
    let pki = TestPki::new();
    let senders = render("postfix-senders", &example_csv(), &[]);
    let pf = PostfixDir::new("");
    let cert = write(pf.path(), "cert.pem", &pki.cert_pem);
    let key = write(pf.path(), "key.pem", &pki.key_pem);
    let table = write(pf.path(), "bits_tls_senders", &senders);
    let out = pf.postmap(&[&format!("hash:{table}")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let wiring: String = wiring_lines(&senders)
        .iter()
        .map(|(k, v)| {
            format!(
                "{k} = {}\n",
                v.replace("/etc/postfix/bits_tls_senders", &table)
            )
        })
        .collect();
    std::fs::write(
        pf.path().join("main.cf"),
        std::fs::read_to_string(pf.path().join("main.cf")).unwrap()
            + &wiring
            + &format!(
                "smtpd_tls_security_level = may\nsmtpd_tls_cert_file = {cert}\nsmtpd_tls_key_file = {key}\n\
                 smtpd_recipient_restrictions = reject_unauth_destination\n\
                 mynetworks = 192.0.2.0/24\n"
            ),
    )
    .unwrap();
    // The test client (127.0.0.1) must not be in mynetworks, or permit_mynetworks lets it through, as it
    // would any client of the server's own network.
    let postfix = PostfixInstance::start(pf);
    let log = || postfix.conf.log();

    let (rcpt, mail) = try_sender(postfix.port, "someone@bits.no", "user@test.example", None);
    assert_eq!(mail.0, 250, "{}", log());
    assert_eq!(
        rcpt.0,
        550,
        "plaintext from a listed domain must be refused: {rcpt:?}\n{}",
        log()
    );
    assert!(
        rcpt.1.contains("Session encryption is required"),
        "{rcpt:?}"
    );

    let (rcpt, _) = try_sender(
        postfix.port,
        "someone@xn--blbrbank-b0al.no",
        "user@test.example",
        None,
    );
    assert_eq!(rcpt.0, 550, "IDN sender domain: {rcpt:?}");

    let (rcpt, _) = try_sender(
        postfix.port,
        "someone@bits.no",
        "user@test.example",
        Some(&pki.ca_der),
    );
    assert_eq!(
        rcpt.0,
        250,
        "the same sender over STARTTLS is accepted: {rcpt:?}\n{}",
        log()
    );

    let (rcpt, _) = try_sender(
        postfix.port,
        "someone@unlisted.no",
        "user@test.example",
        None,
    );
    assert_eq!(
        rcpt.0,
        250,
        "an unlisted sender may still use plaintext: {rcpt:?}\n{}",
        log()
    );
}

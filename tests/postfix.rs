//! The Postfix tables checked by the real Postfix 3.7 (unpacked by scripts/setup-test-tools.sh):
//! postmap compiles them and answers every listed domain, postconf accepts the main.cf lines from their
//! headers. (A running Postfix with the senders table is in tests/delivery.rs.)

mod support;

use support::mta::{text, wiring_lines, write, PostfixDir};
use support::{example_csv, listed_domains, render};

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

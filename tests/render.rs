//! `bits-tls render`: golden files for every target, hostile input against each target's line grammar
//! (written here independently of the renderer's own checks), determinism, user templates, template
//! overrides and option errors.

mod support;

use predicates::prelude::*;
use std::path::Path;
use support::grammar::{grammar, is_comment, names_domains};
use support::{bits, example_csv, fixture, listed_domains, render};

const TARGETS: [&str; 12] = [
    "postfix-policy",
    "postfix-senders",
    "exim-domains",
    "exim-main",
    "exim-acl",
    "exim-router",
    "exim-transport",
    "exim-config",
    "exchange",
    "exchange-online",
    "exchange-verify",
    "exchange-online-verify",
];

#[test]
fn hostile_list_reaches_outputs_only_as_valid_domains() {
    let src = fixture("hostile.csv");
    let expected = listed_domains(&src);
    assert_eq!(
        expected,
        [
            "attr.no",
            "bidi.no",
            "bits.no",
            "block.no",
            "bs.no",
            "crlf.no",
            "good-one.no",
            "here.no",
            "named.no",
            "newline-name.no",
            "next.no",
            "sep.no",
            "tab.no",
            "uq.no"
        ]
    );
    for target in TARGETS {
        let baseline = render(target, &example_csv(), &[]);
        let out = render(target, &src, &[]);
        let named = grammar(target, &out, &baseline).unwrap_or_else(|e| panic!("{e}\n{out}"));
        let expected_here: Vec<String> = if names_domains(target) {
            expected.clone()
        } else {
            vec![]
        };
        assert_eq!(named, expected_here, "{target}");
        for payload in [
            "relay.no verify",
            "Remove-Item",
            "Stop-Computer",
            "${run",
            "$(rm",
            "$(reboot",
            "`id`",
            "<#",
            "@'",
        ] {
            for line in out.lines().filter(|l| l.contains(payload)) {
                assert!(
                    is_comment(line) && !line.contains("${") && !line.contains("$("),
                    "{target}: {payload:?} in {line:?}"
                );
            }
        }
    }
}

#[test]
fn hostile_list_with_subdomains() {
    let src = fixture("hostile.csv");
    for target in TARGETS {
        let baseline = render(target, &example_csv(), &["--subdomains"]);
        let out = render(target, &src, &["--subdomains"]);
        grammar(target, &out, &baseline).unwrap_or_else(|e| panic!("{e}\n{out}"));
    }
}

/// Renders with `current_dir` = examples/ and a relative source, so provenance is machine-independent.
fn golden_render(target: &str, args: &[&str]) -> String {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let out = bits()
        .current_dir(&examples)
        .args(["render", "-q", "--source", "domeneliste-tvungen-tls.csv"])
        .args(target.split(' '))
        .args(args)
        .assert()
        .success();
    String::from_utf8(out.get_output().stdout.clone()).unwrap()
}

#[test]
fn golden_files() {
    let cases: Vec<(&str, &str, Vec<&str>)> = vec![
        ("postfix-policy", "postfix-policy", vec![]),
        ("postfix-senders", "postfix-senders", vec![]),
        ("exim-domains", "exim-domains", vec![]),
        ("exim-config", "exim-config", vec![]),
        (
            "exim-transport",
            "exim-transport-openssl",
            vec!["--exim-tls", "openssl"],
        ),
        ("exchange", "exchange.ps1", vec![]),
        ("exchange-online", "exchange-online.ps1", vec![]),
        ("exchange-verify", "exchange-verify.ps1", vec![]),
        (
            "exchange-online-verify",
            "exchange-online-verify.ps1",
            vec!["--exo-inbound"],
        ),
        (
            "postfix-policy",
            "postfix-policy-subdomains-modern",
            vec!["--subdomains", "--postfix-protocols", "modern"],
        ),
        (
            "exchange-online",
            "exchange-online-split-inbound.ps1",
            vec!["--exo-max-domains", "6", "--exo-inbound"],
        ),
        (
            "exchange",
            "exchange-m365-direct.ps1",
            vec![
                "--exchange-microsoft365-split",
                "--exchange-topology",
                "direct",
                "--exchange-fqdn",
                "mail.bank.example.no",
            ],
        ),
        (
            "exchange-online",
            "exchange-online-m365.ps1",
            vec!["--exo-microsoft365-split"],
        ),
        (
            "--template templates/sendmail-tls-rcpt.j2",
            "sendmail-tls-rcpt",
            vec![],
        ),
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let bless = std::env::var_os("BITS_TLS_BLESS").is_some();
    let mut failures = Vec::new();
    for (target, file, args) in cases {
        let got = golden_render(target, &args);
        let path = dir.join(file);
        if bless {
            std::fs::write(&path, &got).unwrap();
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("{} missing (BITS_TLS_BLESS=1 writes it)", path.display()));
        if got != want {
            failures.push(file);
        }
    }
    assert!(failures.is_empty(), "output differs from tests/golden for {failures:?}; if intended, rerun with BITS_TLS_BLESS=1 and review the diff");
}

#[test]
fn same_list_same_bytes_whatever_the_row_order() {
    let text = std::fs::read_to_string(example_csv()).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let header = lines.remove(0);
    lines.reverse();
    let dir = tempfile::tempdir().unwrap();
    let shuffled = dir.path().join("shuffled.csv");
    std::fs::write(&shuffled, format!("{header}\n{}\n", lines.join("\n"))).unwrap();
    for target in TARGETS {
        let a = render(target, &example_csv(), &[]);
        assert_eq!(
            a,
            render(target, &example_csv(), &[]),
            "{target}: two runs differ"
        );
        let b = render(target, &shuffled, &[]);
        let strip = |s: &str| {
            s.lines()
                .filter(|l| !l.starts_with("# SHA-256:") && !l.starts_with("# List:"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(
            strip(&a),
            strip(&b),
            "{target}: row order changed the output"
        );
        assert!(
            a.ends_with('\n') && !a.ends_with("\n\n\n"),
            "{target}: trailing newline"
        );
    }
}

#[test]
fn user_template_sees_the_documented_context() {
    let dir = tempfile::tempdir().unwrap();
    let tpl = dir.path().join("all.j2");
    std::fs::write(
        &tpl,
        "{{ tool.name }} {{ counts.participants }}/{{ counts.domains }} {{ source.sha256[:8] }} {{ source.page is none }}\n\
         {% for p in participants %}{{ p.organization }}|{{ p.org_number or '-' }}|{{ p.domains|join(',') }}|{{ p.enrolled }}|{{ p.enforces_inbound_tls }}\n{% endfor %}\
         {% for d in domains %}{{ d.name }}={{ d.unicode or '' }}@{{ d.organization }}\n{% endfor %}\
         {{ options.postfix.level }} {{ postfix.policy_value }} {{ exchange.address_spaces|length }} {{ exchange_online.connectors|length }}\n",
    )
    .unwrap();
    let out = bits()
        .args([
            "render",
            "--source",
            example_csv().to_str().unwrap(),
            "--template",
            tpl.to_str().unwrap(),
        ])
        .assert()
        .success();
    let out = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(out.starts_with("bits-tls 14/15 de52cb69 True\n"), "{out}");
    assert!(
        out.contains("Bits AS|916960190|bits.no|2017-02-01|False\n"),
        "{out}"
    );
    assert!(
        out.contains("Finans Norge|-|fno.no|2017-02-01|True\n"),
        "{out}"
    );
    assert!(
        out.contains("xn--blbrbank-b0al.no=blåbærbank.no@Blåbær Bank AS\n"),
        "{out}"
    );
    assert!(
        out.ends_with("verify verify protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1 15 1\n"),
        "{out}"
    );
}

#[test]
fn user_template_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let tpl = dir.path().join("bad.j2");
    std::fs::write(&tpl, "{{ no_such_variable }}\n").unwrap();
    bits()
        .args([
            "render",
            "--source",
            example_csv().to_str().unwrap(),
            "--template",
            tpl.to_str().unwrap(),
        ])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains("undefined").and(predicate::str::contains("hint:")));
    bits()
        .args([
            "render",
            "--source",
            example_csv().to_str().unwrap(),
            "--template",
            "/nonexistent.j2",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "could not read the template `/nonexistent.j2`",
        ));
}

#[test]
fn template_directory_overrides_and_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    // A valid override: no per-participant comments.
    std::fs::write(
        dir.path().join("postfix-policy.j2"),
        "{% for d in domains %}{{ d.name }} {{ postfix.policy_value }}\n{% endfor %}",
    )
    .unwrap();
    let out = render(
        "postfix-policy",
        &example_csv(),
        &["--templates", dir.path().to_str().unwrap()],
    );
    assert_eq!(out.lines().count(), 15);
    assert!(out.starts_with("bits.no verify protocols="));
    // An override that would weaken the policy is refused, and nothing is printed.
    std::fs::write(
        dir.path().join("postfix-policy.j2"),
        "{% for d in domains %}{{ d.name }} may\n{% endfor %}",
    )
    .unwrap();
    bits()
        .args([
            "render",
            "postfix-policy",
            "--source",
            example_csv().to_str().unwrap(),
            "--templates",
            dir.path().to_str().unwrap(),
        ])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains("failed its check at line 1"));
    // Other targets still use the embedded templates.
    let senders = render(
        "postfix-senders",
        &example_csv(),
        &["--templates", dir.path().to_str().unwrap()],
    );
    assert!(senders.contains("bits.no reject_plaintext_session"));
}

#[test]
fn option_errors_name_the_option() {
    let src = example_csv();
    let src = src.to_str().unwrap();
    for (args, needle) in [
        (vec!["--postfix-match", "nexthop verify"], "postfix.match"),
        (
            vec!["--postfix-level", "encrypt", "--postfix-match", "nexthop"],
            "postfix.match",
        ),
        (
            vec!["--exim-domains-file", "relative.txt"],
            "exim.domains_file",
        ),
        (
            vec!["--exchange-connector", "x'; Remove-Item"],
            "exchange.connector_name",
        ),
        (
            vec!["--exchange-tls-auth-level", "DomainValidation"],
            "exchange.tls_domain",
        ),
        (
            vec!["--exo-max-domains", "0"],
            "exchange_online.max_domains_per_connector",
        ),
    ] {
        bits()
            .args(["render", "postfix-policy", "--source", src])
            .args(&args)
            .assert()
            .code(1)
            .stderr(predicate::str::contains(needle));
    }
    bits().args(["render", "--source", src]).assert().code(1);
    bits()
        .args(["render", "sendmail", "--source", src])
        .assert()
        .code(1);
    bits()
        .args([
            "render",
            "exchange",
            "--exchange-tls-domain",
            "not a domain",
            "--source",
            src,
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("domain"));
}

#[test]
fn wildcards_in_the_list_need_subdomains() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("wild.csv");
    std::fs::write(&src, "Virksomhet;Domene\nA;*.wild.no\nB;plain.no\n").unwrap();
    let out = bits()
        .args(["render", "exim-domains", "--source", src.to_str().unwrap()])
        .assert()
        .success();
    let o = out.get_output();
    assert!(!String::from_utf8_lossy(&o.stdout).contains("wild.no"));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is a wildcard"));
    let out = render("exim-domains", &src, &["--subdomains"]);
    assert!(out.contains("\nwild.no\n*.wild.no\n"), "{out}");
}

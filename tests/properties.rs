//! Property tests for everything that eats untrusted input: no input panics the parsers, every domain
//! that comes out is a valid normalised host name, and no output field carries a control character.

use bits_tls::domain::{is_normalised, Domain, DomainRules};
use bits_tls::list::{build, ParseOptions, ParticipantList};
use bits_tls::source::{csv, page};
use proptest::prelude::*;

fn parse_bytes(bytes: &[u8]) -> Option<ParticipantList> {
    let decoded = csv::decode(bytes);
    let (_, rows) = csv::records(&decoded.text);
    build(&rows, &ParseOptions::default()).ok()
}

fn assert_clean(list: &ParticipantList) {
    for p in &list.participants {
        assert!(!p.domains.is_empty());
        for d in &p.domains {
            assert!(is_normalised(d.as_str()), "not normalised: {d:?}");
            assert_eq!(
                Domain::parse(d.as_str(), DomainRules::default()).as_ref(),
                Ok(d),
                "not idempotent"
            );
        }
        let mut sorted = p.domains.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, p.domains);
        for text in [Some(&p.organization), p.org_number.as_ref()]
            .into_iter()
            .flatten()
        {
            assert!(
                !text.chars().any(bits_tls::sanitize::is_dangerous),
                "control char in {text:?}"
            );
            assert_eq!(text.trim(), text);
        }
    }
    let all: Vec<_> = list.participants.iter().flat_map(|p| &p.domains).collect();
    let unique: std::collections::BTreeSet<_> = all.iter().collect();
    assert_eq!(
        all.len(),
        unique.len(),
        "a domain appears under two participants"
    );
}

/// Cells mixing valid domains, separators, quotes, control and bidi characters, IDN and junk.
fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,10}\\.(no|com|kommune\\.no)",
        "[A-Za-zæøåÆØÅ0-9 .,;\\-_*@]{0,30}",
        "[ \\t]*[A-Z]{1,5}\\.NO\\.?[ \\t]*",
        "\\PC{0,20}",
        ".{0,20}",
        Just("\"".to_string()),
        Just("a.no\nb.no".to_string()),
        Just("x.no\u{202e}".to_string()),
        Just("${run{/bin/sh}}".to_string()),
        Just("$(reboot).no".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_as_csv_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Some(list) = parse_bytes(&bytes) {
            assert_clean(&list);
        }
    }

    #[test]
    fn arbitrary_bytes_as_html_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let text = String::from_utf8_lossy(&bytes);
        let base = url::Url::parse("https://bits.no/tls").unwrap();
        let _ = page::scan(&text, &base);
        let html = format!("<html><body><table><tr><th>Domene</th><th>Navn</th></tr><tr><td>{text}</td><td>x</td></tr></table></body></html>");
        if let Ok(scan) = page::scan(&html, &base) {
            if let Some(link) = scan.link {
                prop_assert!(matches!(link.scheme(), "http" | "https"));
            }
        }
    }

    #[test]
    fn structured_rows_give_clean_lists(
        rows in proptest::collection::vec(proptest::collection::vec(cell(), 5), 0..30),
        delimiter in prop_oneof![Just(';'), Just(','), Just('\t')],
    ) {
        let mut text = String::from("Company name;Company Identification number;Domain with forced TLS;Date of enrolment;Requirement 5.2.4 supported?\n").replace(';', &delimiter.to_string());
        for row in &rows {
            let cells: Vec<String> = row.iter().map(|c| format!("\"{}\"", c.replace('"', "\"\""))).collect();
            text.push_str(&cells.join(&delimiter.to_string()));
            text.push('\n');
        }
        let list = parse_bytes(text.as_bytes()).expect("the header row is always found");
        assert_clean(&list);
        // Every warning names a line inside the file.
        let lines = text.lines().count() as u64 + 1;
        for w in &list.warnings {
            if let Some(l) = w.line { prop_assert!(l >= 2 && l <= lines, "line {} of {}", l, lines); }
        }
    }

    #[test]
    fn domain_parse_is_strict_and_idempotent(raw in "\\PC{0,40}|[a-zA-Z0-9.\\-]{0,40}") {
        for rules in [DomainRules::default(), DomainRules { allow_wildcards: true }] {
            if let Ok(d) = Domain::parse(&raw, rules) {
                prop_assert!(is_normalised(d.as_str()));
                prop_assert!(d.as_str().len() <= 253);
                prop_assert!(d.as_str().split('.').count() >= 2);
                prop_assert_eq!(Domain::parse(d.as_str(), DomainRules::default()), Ok(d.clone()));
            }
        }
    }
}

mod support;

/// A list in the requirement document's layout with the given (name, domain cell) rows.
fn list_from(rows: &[(String, String)]) -> bits_tls::list::ParticipantList {
    let mut text = String::from("Company name;Domain with forced TLS\n");
    for (name, cell) in rows {
        text.push_str(&format!(
            "\"{}\";\"{}\"\n",
            name.replace('"', "\"\""),
            cell.replace('"', "\"\"")
        ));
    }
    parse_bytes(text.as_bytes()).expect("header found")
}

fn render_all(
    list: &bits_tls::list::ParticipantList,
    subdomains: bool,
) -> Vec<(&'static str, String)> {
    use bits_tls::render::{options::RenderOptions, BuiltIn, RenderInput, Renderer};
    let provenance = bits_tls::source::Provenance {
        page: Some("https://bits.no/tls".into()),
        csv: Some("https://bits.no/liste.csv".into()),
        sha256: "0".repeat(64),
        page_updated: None,
        fetched_at: chrono::DateTime::UNIX_EPOCH,
    };
    let opts = RenderOptions {
        subdomains,
        ..RenderOptions::default()
    };
    let renderer = Renderer::new(None).unwrap();
    BuiltIn::ALL
        .iter()
        .map(|t| {
            let text = renderer
                .render(
                    &(*t).into(),
                    RenderInput {
                        provenance: &provenance,
                        list,
                        local: &[],
                    },
                    &opts,
                )
                .expect("renders");
            (t.name(), text)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_output_line_keeps_its_target_grammar(
        rows in proptest::collection::vec(("\\PC{0,30}|.{0,30}", cell()), 0..12),
        subdomains in any::<bool>(),
    ) {
        let list = list_from(&rows);
        let baseline = render_all(&list_from(&[("Bits AS".into(), "bits.no".into())]), subdomains);
        let mut listed: Vec<String> = list.domains().iter().map(|d| d.to_string()).collect();
        listed.sort();
        for ((target, out), (_, base)) in render_all(&list, subdomains).iter().zip(&baseline) {
            let named = support::grammar::grammar(target, out, base).map_err(|e| TestCaseError::fail(format!("{e}\n{out}")))?;
            if support::grammar::names_domains(target) {
                prop_assert_eq!(&named, &listed, "{}", target);
            }
        }
    }
}

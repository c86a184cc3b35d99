//! `bits-tls fetch` on every fixture, from files and over HTTP from a local server that misbehaves.

mod support;

use predicates::prelude::*;
use serde_json::Value;
use std::time::{Duration, Instant};
use support::{bits, fixture, fixture_bytes, Reply, Server};

fn json_of(out: &[u8]) -> Value {
    serde_json::from_slice(out)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(out)))
}

fn fetch_json(args: &[&str]) -> Value {
    let out = bits()
        .arg("fetch")
        .args(args)
        .args(["--format", "json"])
        .assert()
        .success();
    json_of(&out.get_output().stdout)
}

fn fetch_file(name: &str) -> Value {
    fetch_json(&["--source", fixture(name).to_str().unwrap()])
}

fn domains(v: &Value) -> Vec<String> {
    support::json_domains(v)
}

fn warning_lines(v: &Value) -> Vec<Option<u64>> {
    v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["line"].as_u64())
        .collect()
}

fn warning_text(v: &Value) -> String {
    v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["message"].as_str().unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn requirement_document_layout_with_bom_and_crlf() {
    let v = fetch_file("english-semicolon-bom-crlf.csv");
    assert_eq!(domains(&v), ["bits.no", "dnb.no", "fno.no"]);
    assert_eq!(warning_lines(&v), Vec::<Option<u64>>::new());
    let bits = &v["participants"][0];
    assert_eq!(bits["organization"], "Bits AS");
    assert_eq!(bits["org_number"], "916960190");
    assert_eq!(bits["enrolled"], "2017-02-01");
    assert_eq!(bits["enforces_inbound_tls"], false);
    assert_eq!(v["participants"][2]["org_number"], Value::Null);
    assert_eq!(v["source"]["page"], Value::Null);
    assert!(v["source"]["csv"]
        .as_str()
        .unwrap()
        .ends_with("english-semicolon-bom-crlf.csv"));
    assert_eq!(v["source"]["sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn norwegian_headers_comma_windows_1252() {
    let v = fetch_file("norwegian-comma-cp1252.csv");
    assert_eq!(
        domains(&v),
        [
            "xn--blbrbank-b0al.no",
            "kystbank.no",
            "kystbanken.no",
            "sorpensjon.no"
        ]
    );
    let names: Vec<&str> = v["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["organization"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Blåbær Bank AS",
            "Kystbanken ASA",
            "Sørlandets Pensjonskasse"
        ]
    );
    assert_eq!(v["participants"][1]["org_number"], "976240391");
    assert_eq!(v["participants"][1]["enforces_inbound_tls"], true);
    assert_eq!(v["participants"][2]["enforces_inbound_tls"], Value::Null);
    assert_eq!(v["warnings"], serde_json::json!([]));
}

#[test]
fn tab_separated_file_named_txt() {
    let v = fetch_file("tab-separated.txt");
    assert_eq!(domains(&v), ["inkassonord.no", "vestkystfinans.no"]);
    assert_eq!(v["participants"][1]["enrolled"], "2020-08-12");
}

#[test]
fn utf16_excel_unicode_text() {
    let v = fetch_file("utf16-excel.txt");
    assert_eq!(domains(&v), ["sorbanken.no"]);
    assert_eq!(v["participants"][0]["organization"], "Sørbanken");
}

#[test]
fn messy_cells_give_warnings_with_line_numbers() {
    let v = fetch_file("messy.csv");
    assert_eq!(
        domains(&v),
        [
            "ok-domain.no",
            "xn--bcher-kva.no",
            "eksempelsparebank.no",
            "esb.no",
            "esb2.no",
            "fjellheim.kommune.no",
            "kystbanken.no",
            "nfs.no",
            "nordfjord.no",
            "nordfjordforsikring.no"
        ]
    );
    assert_eq!(
        warning_lines(&v),
        [
            Some(7),
            Some(7),
            Some(7),
            Some(8),
            Some(8),
            Some(8),
            Some(10),
            Some(13)
        ]
        .to_vec()
    );
    let text = warning_text(&v);
    for needle in [
        "MOD11",
        "`not a date`",
        "`kanskje`",
        "`bad_domain.no`",
        "`localhost`",
        "`*.wild.no`",
        "already listed on line 2",
        "`Totalt 9 deltakere`",
    ] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
    // Two rows of one organisation merge; the earliest enrolment date wins.
    let esb = v["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["organization"] == "Eksempel Sparebank")
        .unwrap();
    assert_eq!(esb["enrolled"], "2016-01-01");
    assert_eq!(esb["org_number"], "964330123");
}

#[test]
fn title_rows_and_footer_notes() {
    let v = fetch_file("title-and-notes.csv");
    assert_eq!(domains(&v), ["bits.no", "fno.no"]);
    assert_eq!(warning_lines(&v), [Some(7)].to_vec());
}

#[test]
fn headerless_file_is_read_by_content_with_a_warning() {
    let v = fetch_file("no-header.csv");
    assert_eq!(domains(&v), ["bits.no", "fno.no", "kystbanken.no"]);
    assert!(warning_text(&v).contains("--columns"));
    assert_eq!(v["participants"][0]["org_number"], "916960190");
}

#[test]
fn columns_override_names_unknown_headers() {
    let path = fixture("unknown-headers.csv");
    let v = fetch_json(&[
        "--source",
        path.to_str().unwrap(),
        "--columns",
        "domain=Nettsted,organization=Firma",
    ]);
    assert_eq!(domains(&v), ["bits.no", "fno.no"]);
    assert_eq!(v["warnings"], serde_json::json!([]));
    bits()
        .args([
            "fetch",
            "--source",
            path.to_str().unwrap(),
            "--columns",
            "domain=Nowhere",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("`Nowhere`").and(predicate::str::contains("hint:")));
    bits()
        .args([
            "fetch",
            "--source",
            path.to_str().unwrap(),
            "--columns",
            "colour=2",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("unknown field `colour`"));
}

#[test]
fn saved_page_with_relative_percent_encoded_link() {
    let v = fetch_file("site/tvungen-tls.html");
    assert_eq!(domains(&v), ["bits.no", "fno.no"]);
    assert_eq!(v["source"]["page_updated"], "2024-03-03");
    assert!(
        v["source"]["csv"]
            .as_str()
            .unwrap()
            .ends_with("filer/Domeneliste tvungen TLS.CSV"),
        "{}",
        v["source"]
    );
    assert!(v["source"]["page"]
        .as_str()
        .unwrap()
        .ends_with("tvungen-tls.html"));
}

#[test]
fn page_with_inline_table() {
    let v = fetch_file("page-table.html");
    assert_eq!(
        domains(&v),
        ["bits.no", "kystbank.com", "kystbank.no", "kystbanken.no"]
    );
    assert_eq!(v["source"]["csv"], Value::Null);
    assert_eq!(v["source"]["page_updated"], "2021-11-16");
    assert!(
        warning_lines(&v).iter().all(|l| *l == Some(4)),
        "{}",
        v["warnings"]
    );
}

#[test]
fn page_without_a_list_is_an_error_naming_the_page() {
    bits()
        .args([
            "fetch",
            "--source",
            fixture("page-nolist.html").to_str().unwrap(),
        ])
        .assert()
        .code(1)
        .stdout("")
        .stderr(
            predicate::str::contains("error: found no list on the page")
                .and(predicate::str::contains("page-nolist.html"))
                .and(predicate::str::contains(
                    "hint: the page's layout may have changed",
                )),
        );
}

#[test]
fn page_with_two_equal_links_lists_both() {
    bits()
        .args([
            "fetch",
            "--source",
            fixture("page-ambiguous.html").to_str().unwrap(),
        ])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("liste-a.csv").and(predicate::str::contains("liste-b.csv")),
        );
}

#[test]
fn missing_file_is_a_clear_error() {
    bits()
        .args(["fetch", "--source", "/nonexistent/liste.csv"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("could not read `/nonexistent/liste.csv`")
                .and(predicate::str::contains("hint:")),
        );
}

#[test]
fn text_and_csv_formats() {
    let src = fixture("english-semicolon-bom-crlf.csv");
    let out = bits()
        .args(["fetch", "--source", src.to_str().unwrap()])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(text.starts_with("ORGANIZATION"), "{text}");
    assert!(text.contains("Bits AS") && text.contains("916960190"));
    assert!(
        text.contains("3 participants, 3 domains, 0 warnings"),
        "{text}"
    );

    let out = bits()
        .args([
            "fetch",
            "--format",
            "csv",
            "--source",
            src.to_str().unwrap(),
        ])
        .assert()
        .success();
    let csv_text = out.get_output().stdout.clone();
    assert!(String::from_utf8_lossy(&csv_text)
        .starts_with("Company name,Company Identification number,Domain with forced TLS"));
    // The normalised CSV reads back in to the same list.
    let dir = tempfile::tempdir().unwrap();
    let round = dir.path().join("round.csv");
    std::fs::write(&round, &csv_text).unwrap();
    let again = fetch_json(&["--source", round.to_str().unwrap()]);
    let first = fetch_file("english-semicolon-bom-crlf.csv");
    assert_eq!(again["participants"], first["participants"]);
}

#[test]
fn bundled_example_runs_offline() {
    let page = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tls.html");
    let v = fetch_json(&["--source", page.to_str().unwrap()]);
    assert_eq!(v["participants"].as_array().unwrap().len(), 14);
    assert_eq!(v["source"]["page_updated"], "2021-11-16");
    assert_eq!(warning_lines(&v), [Some(17)].to_vec());
}

// ---------------------------------------------------------------- over HTTP

const PAGE: &str = r#"<html><body><p>Oppdatert: 16. november 2021</p>
<a href="/files/Domeneliste%20tvungen%20TLS.csv?v=2">Domeneliste tvungen TLS i CSV</a></body></html>"#;

fn list_csv() -> Vec<u8> {
    fixture_bytes("english-semicolon-bom-crlf.csv")
}

fn http_fetch(server: &Server, path: &str, extra: &[&str]) -> assert_cmd::assert::Assert {
    bits()
        .args([
            "fetch",
            "--format",
            "json",
            "--allow-http",
            "--timeout",
            "2",
            "--source",
            &server.url(path),
        ])
        .args(extra)
        .assert()
}

#[test]
fn http_page_then_csv_with_redirect() {
    let server = Server::start(vec![
        ("/tls", vec![Reply::redirect("/no/tls/")]),
        (
            "/no/tls/",
            vec![Reply::html(PAGE).header("ETag", "\"page-1\"")],
        ),
        (
            "/files/Domeneliste%20tvungen%20TLS.csv",
            vec![Reply::csv(list_csv()).header("Last-Modified", "Tue, 16 Nov 2021 08:00:00 GMT")],
        ),
    ]);
    let out = http_fetch(&server, "/tls", &[]).success();
    let v = json_of(&out.get_output().stdout);
    assert_eq!(domains(&v), ["bits.no", "dnb.no", "fno.no"]);
    assert_eq!(v["source"]["page"], server.url("/no/tls/"));
    assert_eq!(
        v["source"]["csv"],
        server.url("/files/Domeneliste%20tvungen%20TLS.csv?v=2")
    );
    assert_eq!(v["source"]["page_updated"], "2021-11-16");
    let hit = &server.hits("/files/Domeneliste%20tvungen%20TLS.csv")[0];
    assert!(
        hit.headers["user-agent"].starts_with("bits-tls/"),
        "{:?}",
        hit.headers
    );
    assert!(hit.headers["accept"].starts_with("text/csv"));
}

#[test]
fn http_csv_given_directly_and_gzip() {
    let server = Server::start(vec![("/liste.csv", vec![Reply::csv(list_csv()).gzip()])]);
    let out = http_fetch(&server, "/liste.csv", &[]).success();
    let v = json_of(&out.get_output().stdout);
    assert_eq!(domains(&v), ["bits.no", "dnb.no", "fno.no"]);
    assert_eq!(v["source"]["page"], Value::Null);
    assert!(server.hits("/liste.csv")[0].headers["accept-encoding"].contains("gzip"));
}

#[test]
fn plain_http_needs_the_flag() {
    let server = Server::start(vec![("/liste.csv", vec![Reply::csv(list_csv())])]);
    bits()
        .args(["fetch", "--source", &server.url("/liste.csv")])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("refusing the plain-HTTP address")
                .and(predicate::str::contains("--allow-http")),
        );
    assert!(
        server.hits("/liste.csv").is_empty(),
        "no request may be sent"
    );
}

#[test]
fn http_404_fails_at_once() {
    let server = Server::start(vec![]);
    http_fetch(&server, "/tls", &[]).code(1).stdout("").stderr(
        predicate::str::contains("answered HTTP 404")
            .and(predicate::str::contains("hint: the list may have moved")),
    );
    assert_eq!(server.hits("/tls").len(), 1, "a 404 is not retried");
}

#[test]
fn http_500_then_200_is_retried() {
    let server = Server::start(vec![(
        "/liste.csv",
        vec![Reply::status(500), Reply::csv(list_csv())],
    )]);
    let out = http_fetch(&server, "/liste.csv", &[]).success();
    assert_eq!(domains(&json_of(&out.get_output().stdout)).len(), 3);
    assert_eq!(server.hits("/liste.csv").len(), 2);
}

#[test]
fn http_500_three_times_gives_up() {
    let server = Server::start(vec![("/liste.csv", vec![Reply::status(503)])]);
    http_fetch(&server, "/liste.csv", &[])
        .code(1)
        .stderr(predicate::str::contains("HTTP 503 (gave up after 3 tries)"));
    assert_eq!(server.hits("/liste.csv").len(), 3);
}

#[test]
fn http_429_honours_retry_after() {
    let server = Server::start(vec![(
        "/liste.csv",
        vec![
            Reply::status(429).header("Retry-After", "2"),
            Reply::csv(list_csv()),
        ],
    )]);
    let start = Instant::now();
    http_fetch(&server, "/liste.csv", &[]).success();
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "waited only {:?}",
        start.elapsed()
    );
    assert_eq!(server.hits("/liste.csv").len(), 2);
}

#[test]
fn http_retry_after_beyond_the_bound_fails_clearly() {
    let server = Server::start(vec![(
        "/liste.csv",
        vec![Reply::status(429).header("Retry-After", "86400")],
    )]);
    http_fetch(&server, "/liste.csv", &[])
        .code(1)
        .stderr(predicate::str::contains("asks us to wait 86400 s"));
    assert_eq!(server.hits("/liste.csv").len(), 1);
}

#[test]
fn http_slower_than_the_timeout() {
    let server = Server::start(vec![(
        "/liste.csv",
        vec![Reply::csv(list_csv()).delay(Duration::from_secs(4))],
    )]);
    let start = Instant::now();
    bits()
        .args([
            "fetch",
            "--allow-http",
            "--timeout",
            "1",
            "--source",
            &server.url("/liste.csv"),
        ])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains(
            "timed out after 1 s (gave up after 3 tries)",
        ));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
}

/// `--timeout` is a deadline for the whole request: a body sent at one byte every 0.3 s never trips
/// an idle timeout, and used to hold a sync (and its lock) for as long as the server liked.
#[test]
fn http_trickling_body_is_cut_off_at_the_timeout() {
    let server = Server::start(vec![(
        "/liste.csv",
        vec![Reply::csv(list_csv()).trickle(Duration::from_millis(300))],
    )]);
    let start = Instant::now();
    bits()
        .args([
            "fetch",
            "--allow-http",
            "--timeout",
            "1",
            "--source",
            &server.url("/liste.csv"),
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("timed out after 1 s"));
    // Three tries of at most 1 s, and the backoff between them (0.5 s, 1 s).
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "took {:?}",
        start.elapsed()
    );
}

/// All requests of a run together end at 6 × --timeout, however long the server asks us to wait.
#[test]
fn http_run_has_a_total_deadline() {
    let server = Server::start(vec![(
        "/liste.csv",
        vec![Reply::status(503).header("Retry-After", "5")],
    )]);
    let start = Instant::now();
    bits()
        .args([
            "fetch",
            "--allow-http",
            "--timeout",
            "1",
            "--source",
            &server.url("/liste.csv"),
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "the downloads of this run took longer than 6 s in all",
        ));
    assert!(
        start.elapsed() < Duration::from_secs(7),
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn http_body_cut_short_is_retried_then_fails() {
    let server = Server::start(vec![(
        "/liste.csv",
        vec![Reply::csv(list_csv()).cut_after(40), Reply::csv(list_csv())],
    )]);
    http_fetch(&server, "/liste.csv", &[]).success();
    assert_eq!(server.hits("/liste.csv").len(), 2);

    server.set("/liste.csv", vec![Reply::csv(list_csv()).cut_after(40)]);
    http_fetch(&server, "/liste.csv", &[])
        .code(1)
        .stderr(predicate::str::contains("cut short"));
}

#[test]
fn http_oversized_body_is_refused() {
    let big = vec![b'a'; 4096];
    let server = Server::start(vec![
        ("/declared.csv", vec![Reply::csv(big.clone())]),
        ("/undeclared.csv", vec![Reply::csv(big.clone()).no_length()]),
        ("/bomb.csv", vec![Reply::csv(vec![b'x'; 1 << 20]).gzip()]),
    ]);
    for path in ["/declared.csv", "/undeclared.csv", "/bomb.csv"] {
        http_fetch(&server, path, &["--max-size", "1000"])
            .code(1)
            .stderr(predicate::str::contains(
                "larger than the limit of 1000 bytes",
            ));
    }
}

#[test]
fn http_html_where_the_csv_should_be() {
    let server = Server::start(vec![
        ("/tls", vec![Reply::html(PAGE)]),
        (
            "/files/Domeneliste%20tvungen%20TLS.csv",
            vec![Reply::html(
                "<!DOCTYPE html><html><body>Logg inn</body></html>",
            )],
        ),
    ]);
    http_fetch(&server, "/tls", &[]).code(1).stdout("").stderr(
        predicate::str::contains("expected the CSV list at")
            .and(predicate::str::contains("got an HTML page")),
    );
}

#[test]
fn http_page_cannot_point_at_local_files() {
    let page = r#"<a href="file:///etc/passwd">Domeneliste tvungen TLS i CSV</a>"#;
    let server = Server::start(vec![("/tls", vec![Reply::html(page)])]);
    http_fetch(&server, "/tls", &[])
        .code(1)
        .stderr(predicate::str::contains("found no list on the page"));
}

/// A retry is said at the normal level, so a failing server never means minutes of silence.
#[test]
fn retries_are_said_without_verbose() {
    let server = Server::start(vec![(
        "/liste.csv",
        vec![Reply::status(503), Reply::csv(list_csv())],
    )]);
    http_fetch(&server, "/liste.csv", &[])
        .success()
        .stderr(predicate::str::contains("note: retrying"));
}

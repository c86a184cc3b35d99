//! HTTPS with certificate validation: an untrusted server is refused with a hint, and `--ca-file`
//! makes a private CA (a TLS-inspecting proxy's) trusted.

mod support;

use predicates::prelude::*;
use support::{bits, fixture_bytes, Reply, TestPki};

#[test]
fn untrusted_certificate_is_refused_and_ca_file_trusts_it() {
    let pki = TestPki::new();
    let server = pki.serve(vec![(
        "/liste.csv",
        vec![Reply::csv(fixture_bytes("english-semicolon-bom-crlf.csv"))],
    )]);
    let url = server.https_url("/liste.csv");

    bits()
        .args(["fetch", "--timeout", "5", "--source", &url])
        .assert()
        .code(1)
        .stdout("")
        .stderr(
            predicate::str::contains("could not reach")
                .and(predicate::str::contains("--ca-file"))
                .and(predicate::str::contains("tries").not())
                .and(predicate::str::contains("retrying").not()),
        );

    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("proxy-ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    bits()
        .args([
            "fetch",
            "--format",
            "csv",
            "--timeout",
            "5",
            "--source",
            &url,
            "--ca-file",
            ca.to_str().unwrap(),
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("Bits AS,916960190,bits.no"));
}

#[test]
fn ca_file_that_is_not_pem_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("not-a-cert.pem");
    std::fs::write(&ca, "hello").unwrap();
    bits()
        .args([
            "fetch",
            "--source",
            "https://localhost:1/x.csv",
            "--ca-file",
            ca.to_str().unwrap(),
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("holds no PEM certificate"));
}

/// Hints that match the error: TLS spoken to a plain-HTTP port is not a DNS problem.
#[test]
fn https_to_a_plain_http_port_says_so() {
    let server = support::Server::start(vec![("/liste.csv", vec![Reply::csv("x")])]);
    let url = format!("https://127.0.0.1:{}/liste.csv", server.addr.port());
    bits()
        .args(["fetch", "--timeout", "5", "--source", &url])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("did not answer in TLS")
                .and(predicate::str::contains("--allow-http")),
        );
}

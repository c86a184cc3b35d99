//! Proof that the generated configuration forces TLS when mail really flows (`cargo test --test delivery`).
//!
//! Each test builds a private mail world and tears it down afterwards: a network namespace of its own
//! (`ip netns add`), dnsmasq inside it answering MX and A records for a handful of `.test` domains, one
//! receiving server per domain on 127.0.0.X:25 inside it (tests/delivery/receiver.py: valid certificate
//! from a test CA, no STARTTLS, a certificate naming the wrong host, TLS 1.0/1.1 only, an expired
//! certificate), and the real Postfix sending inside it with bits-tls's output for a list of those
//! domains (Exim: tests/exim_delivery.rs). Nothing outside this machine is contacted; every address is
//! the namespace's own.

mod support;

use std::process::Command;
use std::time::Duration;
use support::mta::{
    postfix_root, text, try_sender, wiring_lines, write, PostfixDir, PostfixInstance,
};
use support::world::{poll, render_as_configured, run_ok, World, SERVERS};

#[test]
fn postfix_delivers_listed_domains_only_over_verified_tls() {
    let world = World::new();
    let policy = write(
        world.path(),
        "bits_tls_policy",
        &world.render("postfix-policy", &[]),
    );
    let ca = world.pki.ca();
    let pf = PostfixDir::new(&format!(
        "myhostname = sender.test\nmydestination =\n\
         smtp_tls_security_level = may\nsmtp_tls_CAfile = {}\nsmtp_tls_policy_maps = hash:{policy}\n\
         smtp_tls_loglevel = 1\nsmtp_connect_timeout = 5s\n",
        ca.display()
    ));
    let out = pf.postmap(&[&format!("hash:{policy}")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let postfix = PostfixInstance::start_in(pf, Some(&world.ns.name));
    // Mail is submitted over SMTP to the sender's own listener, from inside the namespace.
    for (name, ..) in SERVERS {
        let to = format!("pf@{name}.test");
        world.submit(postfix.port, &to);
    }
    let root = postfix_root();
    // Each recipient's outcome, from the log: status=sent or status=deferred, with the reason.
    let outcome = |name: &str| -> Option<String> {
        postfix
            .conf
            .log()
            .lines()
            .find(|l| l.contains(&format!("to=<pf@{name}.test>")) && l.contains("status="))
            .map(String::from)
    };
    let log = || postfix.conf.log();
    let mut results = Vec::new();
    for (name, ..) in SERVERS {
        results.push((
            name,
            poll(
                &format!("Postfix to {name}.test"),
                Duration::from_secs(60),
                || outcome(name),
                log,
            ),
        ));
    }
    for (name, line) in &results {
        match **name {
            "valid" => {
                assert!(line.contains("status=sent"), "{line}");
                assert!(
                    log().contains("Verified TLS connection established to mx.valid.test"),
                    "{}",
                    log()
                );
                let got = world.received("pf@valid.test");
                assert_eq!(got.len(), 1, "{got:?}");
                assert!(got[0].0, "delivered over TLS");
                assert!(
                    matches!(got[0].1.as_deref(), Some("TLSv1.2" | "TLSv1.3")),
                    "{got:?}"
                );
            }
            "open" => {
                assert!(
                    line.contains("status=sent"),
                    "an unlisted domain still gets mail without TLS: {line}"
                );
                assert_eq!(world.received("pf@open.test"), [(false, None)]);
            }
            _ => {
                assert!(line.contains("status=deferred"), "{name}: {line}");
                assert!(
                    world.received(&format!("pf@{name}.test")).is_empty(),
                    "{name}: the receiver must record no message"
                );
            }
        }
    }
    let reason = |name: &str| results.iter().find(|(n, _)| **n == name).unwrap().1.clone();
    assert!(
        reason("plain").contains("TLS is required, but was not offered"),
        "{}",
        reason("plain")
    );
    assert!(
        reason("wrongname").contains("Server certificate not verified"),
        "{}",
        reason("wrongname")
    );
    assert!(
        reason("expired").contains("Server certificate not verified"),
        "{}",
        reason("expired")
    );
    assert!(
        reason("oldtls").contains("Cannot start TLS: handshake failure"),
        "{}",
        reason("oldtls")
    );
    assert!(
        world.tls_failed("oldtls"),
        "the TLS 1.0/1.1 server saw the handshake fail"
    );
    // The four stay in the deferred queue.
    let queue = run_ok(
        Command::new(root.join("usr/sbin/postqueue"))
            .env("LD_LIBRARY_PATH", root.join("usr/lib/postfix"))
            .env("MAIL_CONFIG", postfix.conf.path())
            .arg("-j"),
    );
    let deferred: Vec<String> = queue
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["queue_name"] == "deferred")
        .flat_map(|m| {
            m["recipients"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["address"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut deferred = deferred;
    deferred.sort();
    assert_eq!(
        deferred,
        [
            "pf@expired.test",
            "pf@oldtls.test",
            "pf@plain.test",
            "pf@wrongname.test"
        ],
        "{queue}"
    );
}

#[test]
fn postfix_refuses_plaintext_from_listed_senders_and_accepts_tls() {
    let pki = support::TestPki::new();
    let senders = render_as_configured("postfix-senders", &support::example_csv(), &[]);
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
